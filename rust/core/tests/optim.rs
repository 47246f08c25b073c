//! Optimizer kernels: against naive per-element loops, Seq vs Rayon and every SIMD level vs the
//! scalar path (bitwise), validation before any write, hypergradient learning rates, and what a
//! step allocates (this binary counts allocations per thread).

mod common;

use common::{Rng, SIZES};
use nesy_core::optim::adadelta::Adadelta;
use nesy_core::optim::adagrad::Adagrad;
use nesy_core::optim::adam::Adam;
use nesy_core::optim::adamax::Adamax;
use nesy_core::optim::hd::{hd_step, AdamHd, SgdHd};
use nesy_core::optim::lion::Lion;
use nesy_core::optim::nadam::Nadam;
use nesy_core::optim::radam::Radam;
use nesy_core::optim::rmsprop::Rmsprop;
use nesy_core::optim::sgd::Sgd;
use nesy_core::optim::{self, Rule, Slot, State, MAX_STATE};
use nesy_core::simd::{supported_levels, Level};
use nesy_core::{Error, Float, Par};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes allocated so far by this thread.
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting what each thread allocates.
struct Counting;

// SAFETY: forwards to the system allocator; the counter is a const-initialised thread-local
// `Cell` (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes `f` allocates on this thread.
fn allocated_by(f: impl FnOnce()) -> usize {
    let before = ALLOCATED.with(Cell::get);
    f();
    ALLOCATED.with(Cell::get) - before
}

/// Parameters, gradients (one set per step) and state of a multi-tensor problem.
#[derive(Clone, PartialEq, Debug)]
struct Problem<T> {
    params: Vec<Vec<T>>,
    state: Vec<[Vec<T>; MAX_STATE]>,
    scalars: Vec<f64>,
}

fn problem<T: Float>(seed: u64, init: f64) -> (Problem<T>, Vec<Vec<Vec<T>>>) {
    let mut rng = Rng::new(seed);
    let conv = |v: Vec<f64>| v.into_iter().map(T::of).collect::<Vec<T>>();
    let params: Vec<Vec<T>> = SIZES.iter().map(|&n| conv(rng.vec(n))).collect();
    let grads = (0..5)
        .map(|_| SIZES.iter().map(|&n| conv(rng.vec(n))).collect())
        .collect();
    let state = SIZES
        .iter()
        .map(|&n| std::array::from_fn(|_| vec![T::of(init); n]))
        .collect();
    // NAdam's running product starts at 1 (SGD's "momentum started" flag at 0: see `sgd0`).
    let scalars = vec![1.0; SIZES.len()];
    (
        Problem {
            params,
            state,
            scalars,
        },
        grads,
    )
}

fn slots<'a, T: Float>(
    pr: &'a mut Problem<T>,
    grads: &'a [Vec<T>],
    step: u64,
    groups: usize,
) -> Vec<Slot<'a, T>> {
    pr.params
        .iter_mut()
        .zip(pr.state.iter_mut())
        .zip(pr.scalars.iter_mut())
        .zip(grads)
        .enumerate()
        .map(|(i, (((p, s), scalar), g))| {
            let mut st: State<'a, T> = Default::default();
            for (dst, src) in st.iter_mut().zip(s.iter_mut()) {
                *dst = src.as_mut_slice();
            }
            Slot {
                param: p,
                grad: g,
                state: st,
                group: i % groups,
                step,
                scalar,
            }
        })
        .collect()
}

/// Runs 5 steps of a rule, numbered from `first`, and returns the final problem. State buffers
/// start at `init`, the per-tensor scalar at `scalar0` (NAdam's product 1, SGD's "momentum
/// started" flag 0).
fn run<T: Float, R: Rule<T>>(
    rows: &[&[f64]],
    par: Par,
    level: Level,
    (init, scalar0, first): (f64, f64, u64),
) -> Problem<T> {
    let rule = R::from_rows(rows).unwrap();
    let (mut pr, grads) = problem::<T>(42, init);
    pr.scalars.fill(scalar0);
    for (t, g) in grads.iter().enumerate() {
        optim::step(
            par,
            level,
            &rule,
            slots(&mut pr, g, t as u64 + first, rows.len()),
        )
        .unwrap();
    }
    pr
}

/// Seq/scalar vs Rayon at every level: same bits; and something changed.
fn check_deterministic<R: Rule<f32> + Rule<f64>>(rows: &[&[f64]], init: f64, scalar0: f64) {
    check_deterministic_from::<R>(rows, (init, scalar0, 1));
}

/// As [`check_deterministic`], the steps numbered from `start.2` (a rule whose update changes
/// form after some steps, as RAdam's rectification).
fn check_deterministic_from<R: Rule<f32> + Rule<f64>>(rows: &[&[f64]], start: (f64, f64, u64)) {
    let (init, _, _) = start;
    let base32 = run::<f32, R>(rows, Par::Seq, Level::Scalar, start);
    let base64 = run::<f64, R>(rows, Par::Seq, Level::Scalar, start);
    let (before, _) = problem::<f64>(42, init);
    assert_ne!(base64.params, before.params, "the rule changed nothing");
    for level in supported_levels() {
        for par in [Par::Seq, Par::Rayon] {
            assert_eq!(
                run::<f32, R>(rows, par, level, start),
                base32,
                "f32 {par:?} {level:?}"
            );
            assert_eq!(
                run::<f64, R>(rows, par, level, start),
                base64,
                "f64 {par:?} {level:?}"
            );
        }
    }
}

#[test]
fn every_rule_is_bitwise_identical_across_threads_and_simd_levels() {
    let two = |a: &'static [f64], b: &'static [f64]| [a, b];
    check_deterministic::<Sgd>(
        &two(
            &[0.1, 0.9, 0.1, 0.01, 0.0, 0.0],
            &[0.05, 0.9, 0.0, 0.0, 1.0, 1.0],
        ),
        0.0,
        0.0,
    );
    check_deterministic::<Adam>(
        &two(
            &[1e-2, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0],
            &[1e-3, 0.8, 0.99, 1e-6, 0.1, 1.0, 1.0, 1.0],
        ),
        0.0,
        1.0,
    );
    check_deterministic::<Adagrad>(
        &two(&[0.1, 0.0, 0.0, 1e-10, 0.0], &[0.1, 0.01, 0.1, 1e-8, 1.0]),
        0.1,
        1.0,
    );
    check_deterministic::<Rmsprop>(
        &two(
            &[0.01, 0.99, 1e-8, 0.0, 0.0, 0.0, 0.0],
            &[0.01, 0.9, 1e-8, 0.1, 0.9, 1.0, 1.0],
        ),
        0.0,
        1.0,
    );
    check_deterministic::<Adadelta>(
        &two(&[1.0, 0.9, 1e-6, 0.0, 0.0], &[0.5, 0.95, 1e-6, 0.1, 1.0]),
        0.0,
        1.0,
    );
    check_deterministic::<Adamax>(
        &two(
            &[2e-3, 0.9, 0.999, 1e-8, 0.0, 0.0],
            &[2e-3, 0.9, 0.99, 1e-8, 0.1, 1.0],
        ),
        0.0,
        1.0,
    );
    check_deterministic::<Nadam>(
        &two(
            &[2e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3, 0.0, 0.0],
            &[2e-3, 0.9, 0.999, 1e-8, 0.1, 4e-3, 1.0, 1.0],
        ),
        0.0,
        1.0,
    );
    // Steps 1-5 (not rectified: plain momentum) and 9-13 (rectified, at beta2 = 0.9).
    let radam = two(
        &[1e-3, 0.9, 0.9, 1e-8, 0.0, 0.0, 0.0],
        &[1e-3, 0.9, 0.9, 1e-8, 0.1, 1.0, 1.0],
    );
    check_deterministic_from::<Radam>(&radam, (0.0, 0.0, 1));
    check_deterministic_from::<Radam>(&radam, (0.0, 0.0, 9));
    check_deterministic::<Lion>(
        &two(&[1e-4, 0.9, 0.99, 0.0, 0.0], &[1e-4, 0.9, 0.99, 0.1, 1.0]),
        0.0,
        1.0,
    );
}

#[test]
fn adam_matches_a_naive_f64_loop() {
    let row: &[f64] = &[1e-2, 0.9, 0.999, 1e-8, 0.05, 0.0, 0.0, 0.0];
    let got = run::<f64, Adam>(&[row], Par::Rayon, nesy_core::simd::detect(), (0.0, 1.0, 1));
    let (mut want, grads) = problem::<f64>(42, 0.0);
    for (t, gs) in grads.iter().enumerate() {
        let t = t as f64 + 1.0;
        for (i, g) in gs.iter().enumerate() {
            let p = &mut want.params[i];
            let [m, v, _] = &mut want.state[i];
            for j in 0..p.len() {
                let gj = g[j] + 0.05 * p[j];
                m[j] = 0.9 * m[j] + 0.1 * gj;
                v[j] = 0.999 * v[j] + 0.001 * gj * gj;
                let mh = m[j] / (1.0 - 0.9f64.powf(t));
                // torch adds eps after un-biasing the root: sqrt(v) / sqrt(1 - beta2^t) + eps.
                let denom = v[j].sqrt() / (1.0 - 0.999f64.powf(t)).sqrt() + 1e-8;
                p[j] -= 1e-2 * mh / denom;
            }
        }
    }
    for (a, b) in got
        .params
        .iter()
        .flatten()
        .zip(want.params.iter().flatten())
    {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn sgd_momentum_matches_a_naive_loop() {
    let row: &[f64] = &[0.1, 0.9, 0.1, 0.0, 0.0, 0.0];
    let got = run::<f64, Sgd>(&[row], Par::Rayon, nesy_core::simd::detect(), (0.0, 0.0, 1));
    let (mut want, grads) = problem::<f64>(42, 0.0);
    for (t, gs) in grads.iter().enumerate() {
        for (i, g) in gs.iter().enumerate() {
            let buf = &mut want.state[i][0];
            for j in 0..g.len() {
                buf[j] = if t == 0 {
                    g[j]
                } else {
                    0.9 * buf[j] + 0.9 * g[j]
                };
                want.params[i][j] -= 0.1 * buf[j];
            }
        }
    }
    assert_eq!(got.params, want.params);
}

#[test]
fn a_bad_slot_is_rejected_before_anything_is_written() {
    let rule =
        <Adam as Rule<f64>>::from_rows(&[&[1e-2, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0]]).unwrap();
    let (mut pr, mut grads) = problem::<f64>(7, 0.0);
    grads[0][3].pop(); // tensor 3's gradient is one element short
    let before = pr.clone();
    let err = optim::step(
        Par::Rayon,
        Level::Scalar,
        &rule,
        slots(&mut pr, &grads[0], 1, 1),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Shape { ref arg, .. } if arg == "grads[3]"),
        "{err}"
    );
    assert_eq!(pr, before);
}

#[test]
fn bad_hyper_parameters_name_group_and_option() {
    let err = <Adam as Rule<f32>>::from_rows(&[
        &[1e-2, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0],
        &[-1.0, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0],
    ])
    .err()
    .unwrap();
    assert!(err.to_string().contains("param_groups[1]['lr']"), "{err}");
    let err = <Adam as Rule<f32>>::from_rows(&[&[1e-2, 1.0, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0]])
        .err()
        .unwrap();
    assert!(err.to_string().contains("beta1"), "{err}");
    let err = <Sgd as Rule<f32>>::from_rows(&[&[0.1, 0.0, 0.0, 0.0, 1.0, 0.0]])
        .err()
        .unwrap();
    assert!(err.to_string().contains("nesterov"), "{err}");
    let err = <Sgd as Rule<f32>>::from_rows(&[&[0.1, 0.0, 0.0]])
        .err()
        .unwrap();
    assert!(matches!(err, Error::Shape { .. }));
    let err = <Adam as Rule<f32>>::from_rows(&[&[f64::NAN, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0]])
        .err()
        .unwrap();
    assert!(err.to_string().contains("lr"), "{err}");
    // Stricter than torch: momentum, dampening and RMSprop's alpha in [0, 1] (outside, the
    // buffers grow without bound or the square average turns negative).
    let sgd = |m: f64, d: f64| <Sgd as Rule<f32>>::from_rows(&[&[0.1, m, d, 0.0, 0.0, 0.0]]);
    assert!(sgd(1.0, 1.0).is_ok() && sgd(0.9, 0.0).is_ok());
    for (m, d, name) in [
        (1.5, 0.0, "momentum"),
        (0.9, -0.5, "dampening"),
        (0.9, 1.5, "dampening"),
    ] {
        let err = sgd(m, d).err().unwrap().to_string();
        assert!(
            err.contains(&format!("param_groups[0]['{name}'] must be in [0, 1]")),
            "{err}"
        );
    }
    let err = <SgdHd as Rule<f32>>::from_rows(&[&[0.1, 1.5, 0.0, 0.0, 0.0, 0.0, 1e-3]])
        .err()
        .unwrap();
    assert!(err.to_string().contains("'momentum'"), "{err}");
    let rms =
        |a: f64, m: f64| <Rmsprop as Rule<f32>>::from_rows(&[&[0.01, a, 1e-8, 0.0, m, 0.0, 0.0]]);
    assert!(rms(1.0, 1.0).is_ok() && rms(0.99, 0.0).is_ok());
    for (a, m, name) in [(1.5, 0.0, "alpha"), (0.99, 1.5, "momentum")] {
        let err = rms(a, m).err().unwrap().to_string();
        assert!(
            err.contains(&format!("param_groups[0]['{name}'] must be in [0, 1]")),
            "{err}"
        );
    }
}

/// Runs 5 hypergradient steps, half the tensors in f32 and the rest in f64; returns lrs per step.
fn run_hd<
    R: nesy_core::optim::hd::Hypergradient<f32> + nesy_core::optim::hd::Hypergradient<f64>,
>(
    row: &[f64],
    par: Par,
    level: Level,
) -> (Vec<Vec<f64>>, Problem<f32>, Problem<f64>) {
    let mut rule = <R as Rule<f32>>::from_rows(&[row]).unwrap();
    let (mut a, ga) = problem::<f32>(3, 0.0);
    let (mut b, gb) = problem::<f64>(4, 0.0);
    let mut lrs = vec![];
    for t in 0..5 {
        let s32 = slots(&mut a, &ga[t], t as u64 + 1, 1);
        let s64 = slots(&mut b, &gb[t], t as u64 + 1, 1);
        lrs.push(hd_step(par, level, &mut rule, s32, s64).unwrap());
    }
    (lrs, a, b)
}

#[test]
fn hypergradient_rules_adapt_lr_deterministically() {
    let sgd_row: &[f64] = &[0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1e-3];
    let adam_row: &[f64] = &[0.01, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0, 1e-4];
    let base_sgd = run_hd::<SgdHd>(sgd_row, Par::Seq, Level::Scalar);
    let base_adam = run_hd::<AdamHd>(adam_row, Par::Seq, Level::Scalar);
    // First step: no previous update, so the rate is unchanged; later it moves and stays >= 0.
    assert_eq!(base_sgd.0[0], vec![0.01]);
    assert_eq!(base_adam.0[0], vec![0.01]);
    assert_ne!(base_sgd.0[1], vec![0.01]);
    assert_ne!(base_adam.0[1], vec![0.01]);
    assert!(base_sgd.0.iter().flatten().all(|&lr| lr >= 0.0));
    for level in supported_levels() {
        for par in [Par::Seq, Par::Rayon] {
            assert_eq!(
                run_hd::<SgdHd>(sgd_row, par, level),
                base_sgd,
                "{par:?} {level:?}"
            );
            assert_eq!(
                run_hd::<AdamHd>(adam_row, par, level),
                base_adam,
                "{par:?} {level:?}"
            );
        }
    }
}

#[test]
fn sgd_hd_rate_moves_by_the_gradient_dot_product() {
    // One tensor, plain SGD-HD: lr_2 = lr_1 + beta * g_2 . g_1.
    let mut rule =
        <SgdHd as Rule<f64>>::from_rows(&[&[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]]).unwrap();
    let mut p = vec![1.0, 2.0];
    let mut dir = vec![0.0; 2];
    let mut s = 1.0;
    let g1 = [1.0, -1.0];
    let g2 = [2.0, 3.0];
    for (t, g) in [g1, g2].iter().enumerate() {
        let state: State<'_, f64> = [dir.as_mut_slice(), &mut [], &mut []];
        let slot = Slot {
            param: &mut p,
            grad: g,
            state,
            group: 0,
            step: t as u64 + 1,
            scalar: &mut s,
        };
        hd_step::<SgdHd>(Par::Seq, Level::Scalar, &mut rule, vec![], vec![slot]).unwrap();
    }
    let lr2: f64 = 0.1 + 0.5 * (2.0 - 3.0); // g2 . g1 = 2*1 + 3*(-1)
    assert_eq!(rule.lrs, vec![lr2.max(0.0)]);
    // And the rate never goes negative: a large opposite dot product clamps it at 0.
    let g3 = [-100.0, -100.0];
    let state: State<'_, f64> = [dir.as_mut_slice(), &mut [], &mut []];
    let slot = Slot {
        param: &mut p,
        grad: &g3,
        state,
        group: 0,
        step: 3,
        scalar: &mut s,
    };
    hd_step::<SgdHd>(Par::Seq, Level::Scalar, &mut rule, vec![], vec![slot]).unwrap();
    assert_eq!(rule.lrs, vec![0.0]);
}

#[test]
fn a_step_allocates_nothing_that_grows_with_the_elements() {
    // Bytes a sequential step allocates (all of it on this thread), for `n` tensors of `len`
    // elements: the bookkeeping of the step may grow with the number of tensors, never with
    // their size (no temporaries, no list of chunks).
    fn bytes(n: usize, len: usize) -> (usize, usize) {
        let sgd = <Sgd as Rule<f32>>::from_rows(&[&[0.1, 0.9, 0.0, 0.0, 0.0, 0.0]]).unwrap();
        let mut hd = <AdamHd as Rule<f32>>::from_rows(&[&[
            0.01, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0, 0.0, 1e-4,
        ]])
        .unwrap();
        let mut params = vec![vec![1f32; len]; n];
        let grads = vec![vec![0.5f32; len]; n];
        let mut state = vec![[vec![0f32; len], vec![0f32; len], vec![]]; n];
        let mut scalars = vec![0.0; n];
        let mut measure = |step: u64, hd_rule: Option<&mut AdamHd>| {
            let slots: Vec<Slot<'_, f32>> = (params.iter_mut())
                .zip(&grads)
                .zip(state.iter_mut())
                .zip(scalars.iter_mut())
                .map(|(((p, g), [s0, s1, s2]), scalar)| Slot {
                    param: p,
                    grad: g,
                    state: [s0, s1, s2],
                    group: 0,
                    step,
                    scalar,
                })
                .collect();
            allocated_by(|| match hd_rule {
                None => optim::step(Par::Seq, Level::Scalar, &sgd, slots).unwrap(),
                Some(rule) => {
                    hd_step::<AdamHd>(Par::Seq, Level::Scalar, rule, slots, vec![]).unwrap();
                }
            })
        };
        (measure(1, None), measure(2, Some(&mut hd)))
    }
    let (sgd_small, hd_small) = bytes(100, 10);
    let (sgd_big, hd_big) = bytes(100, 100_000); // 10 M elements, 610 chunks
    assert_eq!(sgd_small, sgd_big);
    assert_eq!(hd_small, hd_big);
    assert!(
        sgd_big <= 100 * 256 && hd_big <= 100 * 512,
        "{sgd_big} {hd_big}"
    );
    let (one, _) = bytes(1, 4 << 20);
    assert!(one <= 256, "{one} bytes for one tensor");
}
