//! Batched per-task MLPs: every task's gradients against finite differences of its own loss
//! (MSE and cross-entropy, ReLU / tanh / identity), tasks independent, Seq vs Rayon bitwise,
//! and bad shapes.

mod common;

use common::{on_three_threads, Rng};
use nesy_core::meta::{loss_grad, Act, Labels, MetaLoss};
use nesy_core::Par;

const SIZES: [usize; 4] = [3, 5, 4, 2];
const ACTS: [Act; 3] = [Act::Tanh, Act::Relu, Act::Identity];

fn params(n_tasks: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut r = Rng::new(seed);
    (0..3)
        .flat_map(|l| {
            [
                r.vec(n_tasks * SIZES[l] * SIZES[l + 1]),
                r.vec(n_tasks * SIZES[l + 1]),
            ]
        })
        .collect()
}

fn run(
    p: &[Vec<f64>],
    x: &[f64],
    y: Labels<'_, f64>,
    loss: MetaLoss,
    t: usize,
    par: Par,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let views: Vec<&[f64]> = p.iter().map(|v| &v[..]).collect();
    let mut losses = vec![0.0; t];
    let mut grads: Vec<Vec<f64>> = p.iter().map(|v| vec![f64::NAN; v.len()]).collect();
    let g: Vec<&mut [f64]> = grads.iter_mut().map(|v| &mut v[..]).collect();
    loss_grad(
        par,
        &SIZES,
        &ACTS,
        &views,
        x,
        y,
        t,
        loss,
        &mut losses,
        Some(g),
    )
    .unwrap();
    (losses, grads)
}

/// Inputs `(t * n, 3)`, regression targets `(t * n, 2)` and class labels for `t` tasks of `n`
/// points.
fn data(t: usize, n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<i64>) {
    let mut r = Rng::new(seed);
    let x = r.vec(t * n * SIZES[0]);
    let yv = r.vec(t * n * SIZES[3]);
    (x, yv, (0..t * n).map(|i| (i % 2) as i64).collect())
}

#[test]
fn gradients_match_finite_differences_for_every_task() {
    let (t, n) = (3, 6);
    let (x, yv, yc) = data(t, n, 1);
    for (loss, y) in [
        (MetaLoss::Mse, Labels::Values(&yv[..])),
        (MetaLoss::CrossEntropy, Labels::Classes(&yc[..])),
    ] {
        let p = params(t, 2);
        let (losses, grads) = run(&p, &x, y, loss, t, Par::Seq);
        for (k, arr) in p.iter().enumerate() {
            let per = arr.len() / t;
            for i in 0..arr.len() {
                let task = i / per;
                let (mut a, mut b) = (p.clone(), p.clone());
                a[k][i] += 1e-6;
                b[k][i] -= 1e-6;
                let (la, _) = run(&a, &x, y, loss, t, Par::Seq);
                let (lb, _) = run(&b, &x, y, loss, t, Par::Seq);
                let num = (la[task] - lb[task]) / 2e-6;
                assert!(
                    (grads[k][i] - num).abs() < 1e-6,
                    "{loss:?} param {k}[{i}]: {} vs {num}",
                    grads[k][i]
                );
                // Other tasks' losses do not move.
                for o in (0..t).filter(|&o| o != task) {
                    assert_eq!(la[o], losses[o]);
                }
            }
        }
        assert_eq!(run(&p, &x, y, loss, t, Par::Rayon), (losses, grads));
    }
}

#[test]
fn tasks_split_over_threads_give_the_sequential_bits() {
    // 40 tasks x 60 points x 14 units x 16 is above `MIN_PARALLEL_WORK` (the finite-difference
    // test above runs sequentially).
    let (t, n) = (40, 60);
    let (x, yv, yc) = data(t, n, 5);
    let p = params(t, 6);
    for (loss, y) in [
        (MetaLoss::Mse, Labels::Values(&yv[..])),
        (MetaLoss::CrossEntropy, Labels::Classes(&yc[..])),
    ] {
        let seq = run(&p, &x, y, loss, t, Par::Seq);
        assert_eq!(
            on_three_threads(|| run(&p, &x, y, loss, t, Par::Rayon)),
            seq
        );
    }
}

#[test]
fn bad_shapes_and_labels_are_refused() {
    let p = params(2, 3);
    let views: Vec<&[f64]> = p.iter().map(|v| &v[..]).collect();
    let x = vec![0.0; 2 * 4 * 3];
    let mut losses = vec![0.0; 2];
    let bad = [0i64, 1, 2, 0, 0, 0, 0, 0];
    let err = loss_grad(
        Par::Seq,
        &SIZES,
        &ACTS,
        &views,
        &x,
        Labels::Classes(&bad),
        2,
        MetaLoss::CrossEntropy,
        &mut losses,
        None,
    );
    assert!(err.unwrap_err().to_string().contains("y[2]"));
    let err = loss_grad(
        Par::Seq,
        &SIZES,
        &ACTS,
        &views[..5],
        &x,
        Labels::Classes(&[0; 8]),
        2,
        MetaLoss::CrossEntropy,
        &mut losses,
        None,
    );
    assert!(err.is_err());
    let err = loss_grad(
        Par::Seq,
        &SIZES,
        &ACTS,
        &views,
        &x[1..],
        Labels::Classes(&[0; 8]),
        2,
        MetaLoss::CrossEntropy,
        &mut losses,
        None,
    );
    assert!(err.unwrap_err().to_string().contains('x'));
    let err = loss_grad(
        Par::Seq,
        &SIZES,
        &ACTS,
        &views,
        &x,
        Labels::Values(&[0.0; 16]),
        2,
        MetaLoss::CrossEntropy,
        &mut losses,
        None,
    );
    assert!(err.is_err());
    assert!(Act::parse("sigmoid").is_err());
}
