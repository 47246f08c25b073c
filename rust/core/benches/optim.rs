//! Kernel-level timings of optimizer steps (no Python): `cargo bench -p nesy-core --bench optim`.
//! Prints ns per parameter and effective GB/s for each SIMD level, 1 thread (Seq) and the pool.

use std::time::Instant;

use nesy_core::optim::adam::Adam;
use nesy_core::optim::sgd::Sgd;
use nesy_core::optim::{self, Rule, Slot, State};
use nesy_core::simd::{supported_levels, Level};
use nesy_core::Par;

fn time<R: Rule<f32>>(rows: &[&[f64]], n: usize, n_state: usize, par: Par, level: Level) -> f64 {
    let rule = R::from_rows(rows).unwrap();
    let mut p = vec![0.5f32; n];
    let g = vec![0.01f32; n];
    let mut s: Vec<Vec<f32>> = (0..n_state).map(|_| vec![0.0f32; n]).collect();
    let mut scalar = 1.0;
    let mut best = f64::INFINITY;
    for step in 1..=50u64 {
        let mut st: State<'_, f32> = Default::default();
        for (d, v) in st.iter_mut().zip(s.iter_mut()) {
            *d = v.as_mut_slice();
        }
        let slot = Slot {
            param: &mut p,
            grad: &g,
            state: st,
            group: 0,
            step,
            scalar: &mut scalar,
        };
        let t = Instant::now();
        optim::step(par, level, &rule, vec![slot]).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    if std::env::var("MANY").is_ok() {
        return many();
    }
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let adam: &[f64] = &[1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0];
    let sgd: &[f64] = &[1e-3, 0.9, 0.0, 0.0, 0.0, 0.0];
    for level in supported_levels() {
        for par in [Par::Seq, Par::Rayon] {
            let ta = time::<Adam>(&[adam], n, 2, par, level);
            let ts = time::<Sgd>(&[sgd], n, 1, par, level);
            println!(
                "{:>8} {:?}: adam {:.3} ms ({:.1} GB/s)  sgd-momentum {:.3} ms ({:.1} GB/s)",
                level.name(),
                par,
                ta * 1e3,
                28.0 * n as f64 / ta / 1e9,
                ts * 1e3,
                20.0 * n as f64 / ts / 1e9
            );
        }
    }
}

/// Many small tensors: the per-tensor cost of one fused step (`MANY=1` to run).
#[allow(dead_code)]
pub fn many() {
    let rule = <Sgd as Rule<f32>>::from_rows(&[&[1e-3, 0.9, 0.0, 0.0, 0.0, 0.0]]).unwrap();
    let (k, n) = (1000, 1000);
    let mut ps = vec![vec![0.5f32; n]; k];
    let gs = vec![vec![0.01f32; n]; k];
    let mut bufs = vec![vec![0.0f32; n]; k];
    let mut scalars = vec![1.0; k];
    for par in [Par::Seq, Par::Rayon] {
        let mut best = f64::INFINITY;
        for step in 1..=50u64 {
            let t = Instant::now();
            let slots: Vec<Slot<'_, f32>> = ps
                .iter_mut()
                .zip(&gs)
                .zip(bufs.iter_mut())
                .zip(scalars.iter_mut())
                .map(|(((p, g), b), s)| Slot {
                    param: p,
                    grad: g,
                    state: [b.as_mut_slice(), &mut [], &mut []],
                    group: 0,
                    step,
                    scalar: s,
                })
                .collect();
            optim::step(par, nesy_core::simd::detect(), &rule, slots).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("sgd 1000 x 1000 {par:?}: {:.3} ms", best * 1e3);
    }
}
