//! Gradient utilities: against naive loops, Seq vs Rayon and SIMD levels bitwise.

mod common;

use common::{Rng, SIZES};
use nesy_core::optim::grad::{self, clip_grad_norm, Mixed};
use nesy_core::simd::{supported_levels, Level};
use nesy_core::Par;

fn tensors(seed: u64) -> (Vec<Vec<f32>>, Vec<Vec<f64>>) {
    let mut rng = Rng::new(seed);
    let a = SIZES
        .iter()
        .map(|&n| rng.vec(n).into_iter().map(|x| x as f32).collect())
        .collect();
    let b = SIZES.iter().map(|&n| rng.vec(n)).collect();
    (a, b)
}

fn naive_sq(a: &[Vec<f32>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        + b.iter().flatten().map(|x| x * x).sum::<f64>()
}

#[test]
fn norms_match_naive_sums_and_are_deterministic() {
    let (a, b) = tensors(1);
    let av: Vec<&[f32]> = a.iter().map(|x| x.as_slice()).collect();
    let bv: Vec<&[f64]> = b.iter().map(|x| x.as_slice()).collect();
    let want2 = naive_sq(&a, &b).sqrt();
    let want1: f64 = a.iter().flatten().map(|x| x.abs() as f64).sum::<f64>()
        + b.iter().flatten().map(|x| x.abs()).sum::<f64>();
    let wantinf = a
        .iter()
        .flatten()
        .map(|x| x.abs() as f64)
        .chain(b.iter().flatten().map(|x| x.abs()))
        .fold(0.0, f64::max);
    let base = [1.0, 2.0, f64::INFINITY]
        .map(|p| grad::norm(Par::Seq, Level::Scalar, &av, &bv, p).unwrap());
    assert!((base[1] - want2).abs() < 1e-12 * want2);
    assert!((base[0] - want1).abs() < 1e-12 * want1);
    assert_eq!(base[2], wantinf);
    for level in supported_levels() {
        for par in [Par::Seq, Par::Rayon] {
            let got =
                [1.0, 2.0, f64::INFINITY].map(|p| grad::norm(par, level, &av, &bv, p).unwrap());
            assert_eq!(
                got.map(f64::to_bits),
                base.map(f64::to_bits),
                "{par:?} {level:?}"
            );
        }
    }
    assert!(grad::norm(Par::Seq, Level::Scalar, &av, &bv, 3.0).is_err());
}

#[test]
fn clip_grad_norm_scales_to_max_norm_and_returns_the_norm() {
    let (mut a, mut b) = tensors(2);
    let before = naive_sq(&a, &b).sqrt();
    let m = Mixed {
        f32: a.iter_mut().map(|x| x.as_mut_slice()).collect(),
        f64: b.iter_mut().map(|x| x.as_mut_slice()).collect(),
    };
    let norm = clip_grad_norm(Par::Rayon, nesy_core::simd::detect(), m, 1.0, 2.0, false).unwrap();
    assert!((norm - before).abs() < 1e-12 * before);
    let after = naive_sq(&a, &b).sqrt();
    assert!((after - 1.0).abs() < 1e-5, "{after}");
}

#[test]
fn clip_grad_norm_refuses_non_finite_norms_without_writing() {
    let (mut a, mut b) = tensors(3);
    a[2][0] = f32::NAN;
    let (a0, b0) = (a.clone(), b.clone());
    let m = Mixed {
        f32: a.iter_mut().map(|x| x.as_mut_slice()).collect(),
        f64: b.iter_mut().map(|x| x.as_mut_slice()).collect(),
    };
    assert!(clip_grad_norm(Par::Rayon, Level::Scalar, m, 1.0, 2.0, true).is_err());
    assert_eq!(format!("{a:?}{b:?}"), format!("{a0:?}{b0:?}"));
    let m = Mixed {
        f32: vec![],
        f64: vec![],
    };
    assert!(clip_grad_norm(Par::Rayon, Level::Scalar, m, -1.0, 2.0, false).is_err());
}

#[test]
fn clip_value_scale_penalty_and_finiteness() {
    let (a, _) = tensors(4);
    for level in supported_levels() {
        for par in [Par::Seq, Par::Rayon] {
            let mut x = a.clone();
            x[3][5] = f32::NAN;
            grad::clip_value(
                par,
                level,
                x.iter_mut().map(|v| v.as_mut_slice()).collect(),
                0.5,
            );
            for (got, orig) in x.iter().flatten().zip(a.iter().flatten()) {
                if got.is_nan() {
                    continue;
                }
                assert_eq!(*got, orig.clamp(-0.5, 0.5));
            }
            assert!(x[3][5].is_nan());
            let views: Vec<&[f32]> = x.iter().map(|v| v.as_slice()).collect();
            assert!(!grad::all_finite(par, level, &views));
            let views: Vec<&[f32]> = a.iter().map(|v| v.as_slice()).collect();
            assert!(grad::all_finite(par, level, &views));

            let mut g = [vec![0.0f32; 3]];
            let p = [vec![-2.0f32, 0.0, 3.0]];
            let pv: Vec<&[f32]> = p.iter().map(|v| v.as_slice()).collect();
            let value = grad::penalty(
                par,
                level,
                g.iter_mut().map(|v| v.as_mut_slice()).collect(),
                &pv,
                0.1,
                0.2,
            );
            assert!((value - (0.1 * 5.0 + 0.5 * 0.2 * 13.0)).abs() < 1e-12);
            assert_eq!(g[0], vec![-0.1 + 0.2 * -2.0, 0.0, 0.1 + 0.2 * 3.0]);

            let mut s = a.clone();
            grad::scale(
                par,
                level,
                s.iter_mut().map(|v| v.as_mut_slice()).collect(),
                0.5,
            );
            assert!(s
                .iter()
                .flatten()
                .zip(a.iter().flatten())
                .all(|(x, y)| *x == y * 0.5));
        }
    }
}
