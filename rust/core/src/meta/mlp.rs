//! A batch of small multilayer perceptrons, one per task: every task `t` has its own parameters
//! `W_l[t] (n_in, n_out)`, `b_l[t] (n_out)` and data `x[t] (n_points, n_in)`; one call computes
//! every task's loss and, optionally, its parameter gradients.
//!
//! Layer `l`: `z = h W_l + b_l`, `h = act_l(z)` (ReLU, tanh or identity). Losses: mean squared
//! error over all outputs (`mean_{i,j} (out - y)^2`) or softmax cross-entropy averaged over the
//! points. Tasks run in parallel, each sequentially with its own workspace, so the result does
//! not depend on the thread count; products go to the GEMM crate.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, Gemm, Mat, MatMut};
use crate::par::Par;

/// An activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Relu,
    Tanh,
    Identity,
}

impl Act {
    pub fn parse(name: &str) -> Result<Act> {
        match name {
            "relu" => Ok(Act::Relu),
            "tanh" => Ok(Act::Tanh),
            "identity" => Ok(Act::Identity),
            other => Err(Error::Value(format!(
                "activations: expected 'relu', 'tanh' or 'identity', got {other:?}"
            ))),
        }
    }
}

/// The loss of each task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaLoss {
    Mse,
    CrossEntropy,
}

/// Targets: real values `(n_tasks, n_points, n_out)` for MSE, class ids `(n_tasks, n_points)`
/// for cross-entropy.
#[derive(Clone, Copy, Debug)]
pub enum Labels<'a, T> {
    Values(&'a [T]),
    Classes(&'a [i64]),
}

/// Per-task losses `(n_tasks)` and, with `grads`, per-task gradients of every parameter (the
/// shapes of `params`, written over). `sizes = [n_in, n_1, .., n_out]`, `acts` one per layer,
/// `params = [W_1, b_1, ..]` each with the task axis first.
#[allow(clippy::too_many_arguments)]
pub fn loss_grad<T: Float + Gemm>(
    par: Par,
    sizes: &[usize],
    acts: &[Act],
    params: &[&[T]],
    x: &[T],
    labels: Labels<'_, T>,
    n_tasks: usize,
    loss: MetaLoss,
    losses: &mut [T],
    grads: Option<Vec<&mut [T]>>,
) -> Result<()> {
    let n_layers = acts.len();
    if sizes.len() != n_layers + 1 || n_layers == 0 {
        return Err(Error::Value(format!(
            "activations: {} layers need {} sizes, got {}",
            n_layers,
            n_layers + 1,
            sizes.len()
        )));
    }
    if params.len() != 2 * n_layers {
        return Err(Error::len("params", 2 * n_layers, params.len()));
    }
    if let Some(l) = sizes.iter().position(|&s| s == 0) {
        return Err(Error::Value(format!(
            "params: layer widths must be >= 1 (width {l} is 0)"
        )));
    }
    for l in 0..n_layers {
        let (w, b) = (sizes[l] * sizes[l + 1], sizes[l + 1]);
        if params[2 * l].len() != n_tasks * w || params[2 * l + 1].len() != n_tasks * b {
            return Err(Error::Value(format!(
                "params[{}]: layer {l} needs ({n_tasks}, {}, {}) weights and ({n_tasks}, {}) biases",
                2 * l,
                sizes[l],
                sizes[l + 1],
                sizes[l + 1]
            )));
        }
    }
    let (n_in, n_out) = (sizes[0], sizes[n_layers]);
    if n_tasks == 0 || n_in == 0 || !x.len().is_multiple_of(n_tasks * n_in) {
        return Err(Error::Value(format!(
            "x: expected (n_tasks={n_tasks}, n_points, {n_in})"
        )));
    }
    let n_points = x.len() / (n_tasks * n_in);
    if n_points == 0 {
        return Err(Error::Value(
            "x: every task needs at least one point".into(),
        ));
    }
    match labels {
        Labels::Values(y) if y.len() != n_tasks * n_points * n_out => {
            return Err(Error::Shape {
                arg: "y".into(),
                expected: vec![n_tasks, n_points, n_out],
                got: vec![y.len()],
            })
        }
        Labels::Classes(c) => {
            if c.len() != n_tasks * n_points {
                return Err(Error::Shape {
                    arg: "y".into(),
                    expected: vec![n_tasks, n_points],
                    got: vec![c.len()],
                });
            }
            if let Some((k, &v)) = c
                .iter()
                .enumerate()
                .find(|(_, &v)| v < 0 || v as usize >= n_out)
            {
                return Err(Error::Index {
                    arg: format!("y[{k}]"),
                    index: v,
                    size: n_out,
                });
            }
        }
        _ => {}
    }
    if matches!(
        (loss, labels),
        (MetaLoss::Mse, Labels::Classes(_)) | (MetaLoss::CrossEntropy, Labels::Values(_))
    ) {
        return Err(Error::Value(
            "y: MSE needs real targets, cross-entropy class ids".into(),
        ));
    }
    if losses.len() != n_tasks {
        return Err(Error::len("losses", n_tasks, losses.len()));
    }
    // One job per task: its slices of every parameter and gradient.
    let mut grad_rows: Vec<Vec<&mut [T]>> = (0..n_tasks).map(|_| Vec::new()).collect();
    let want_grads = grads.is_some();
    if let Some(g) = grads {
        if g.len() != 2 * n_layers {
            return Err(Error::len("grads", 2 * n_layers, g.len()));
        }
        for (k, arr) in g.into_iter().enumerate() {
            let per = params[k].len() / n_tasks;
            if arr.len() != params[k].len() {
                return Err(Error::len("grads", params[k].len(), arr.len()));
            }
            for (t, chunk) in arr.chunks_mut(per.max(1)).enumerate().take(n_tasks) {
                grad_rows[t].push(chunk);
            }
        }
    }
    let jobs: Vec<_> = losses.iter_mut().zip(grad_rows).enumerate().collect();
    let work = n_tasks * n_points * sizes.iter().sum::<usize>() * 16;
    par.for_work(work).for_each(jobs, |(t, (loss_t, g))| {
        let p: Vec<&[T]> = params
            .iter()
            .map(|a| {
                let per = a.len() / n_tasks;
                &a[t * per..(t + 1) * per]
            })
            .collect();
        let xt = &x[t * n_points * n_in..(t + 1) * n_points * n_in];
        let lt = match labels {
            Labels::Values(y) => {
                Labels::Values(&y[t * n_points * n_out..(t + 1) * n_points * n_out])
            }
            Labels::Classes(c) => Labels::Classes(&c[t * n_points..(t + 1) * n_points]),
        };
        *loss_t = one_task(
            sizes,
            acts,
            &p,
            xt,
            lt,
            n_points,
            loss,
            want_grads.then_some(g),
        );
    });
    Ok(())
}

/// One task's loss and (optionally) gradients.
#[allow(clippy::too_many_arguments)]
fn one_task<T: Float + Gemm>(
    sizes: &[usize],
    acts: &[Act],
    p: &[&[T]],
    x: &[T],
    labels: Labels<'_, T>,
    n: usize,
    loss: MetaLoss,
    grads: Option<Vec<&mut [T]>>,
) -> T {
    let n_layers = acts.len();
    // Forward: hs[l] = input of layer l, hs[n_layers] = output.
    let mut hs: Vec<Vec<T>> = vec![x.to_vec()];
    for l in 0..n_layers {
        let (a, b) = (sizes[l], sizes[l + 1]);
        let mut z = vec![T::ZERO; n * b];
        for row in z.chunks_exact_mut(b) {
            row.copy_from_slice(p[2 * l + 1]);
        }
        gemm(
            Par::Seq,
            T::ONE,
            Mat::new(&hs[l], n, a),
            Mat::new(p[2 * l], a, b),
            T::ONE,
            MatMut::new(&mut z, n, b),
        );
        for v in z.iter_mut() {
            *v = match acts[l] {
                Act::Relu => {
                    if *v > T::ZERO {
                        *v
                    } else {
                        T::ZERO
                    }
                }
                Act::Tanh => v.tanh(),
                Act::Identity => *v,
            };
        }
        hs.push(z);
    }
    let out = &hs[n_layers];
    let n_out = sizes[n_layers];
    let mut g = vec![T::ZERO; n * n_out];
    let value = match (loss, labels) {
        (MetaLoss::Mse, Labels::Values(y)) => {
            let scale = 1.0 / (n * n_out) as f64;
            let mut s = 0.0;
            for ((gi, &o), &yi) in g.iter_mut().zip(out).zip(y) {
                let d = o - yi;
                s += (d * d).to_f64();
                *gi = d * T::of(2.0 * scale);
            }
            T::of(s * scale)
        }
        (_, Labels::Classes(c)) => {
            let mut s = 0.0;
            for ((row, grow), &ci) in out
                .chunks_exact(n_out)
                .zip(g.chunks_exact_mut(n_out))
                .zip(c)
            {
                let m = row
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| m.max(v.to_f64()));
                let z: f64 = row.iter().map(|&v| (v.to_f64() - m).exp()).sum();
                let log_z = m + z.ln();
                s += log_z - row[ci as usize].to_f64();
                for (gv, &v) in grow.iter_mut().zip(row) {
                    *gv = T::of((v.to_f64() - log_z).exp() / n as f64);
                }
                grow[ci as usize] = grow[ci as usize] - T::of(1.0 / n as f64);
            }
            T::of(s / n as f64)
        }
        _ => unreachable!("checked by loss_grad"),
    };
    let Some(mut grads) = grads else {
        return value;
    };
    // Backward.
    for l in (0..n_layers).rev() {
        let (a, b) = (sizes[l], sizes[l + 1]);
        // Through the activation of layer l, given its output hs[l + 1].
        for (gv, &h) in g.iter_mut().zip(&hs[l + 1]) {
            *gv = match acts[l] {
                Act::Relu => {
                    if h > T::ZERO {
                        *gv
                    } else {
                        T::ZERO
                    }
                }
                Act::Tanh => *gv * (T::ONE - h * h),
                Act::Identity => *gv,
            };
        }
        // dW = h^T g (a, b); db = sum over points of g.
        gemm(
            Par::Seq,
            T::ONE,
            Mat::new(&hs[l], n, a).t(),
            Mat::new(&g, n, b),
            T::ZERO,
            MatMut::new(grads[2 * l], a, b),
        );
        let db = &mut grads[2 * l + 1];
        db.fill(T::ZERO);
        for row in g.chunks_exact(b) {
            for (d, &v) in db.iter_mut().zip(row) {
                *d = *d + v;
            }
        }
        if l > 0 {
            let mut gin = vec![T::ZERO; n * a];
            gemm(
                Par::Seq,
                T::ONE,
                Mat::new(&g, n, b),
                Mat::new(p[2 * l], a, b).t(),
                T::ZERO,
                MatMut::new(&mut gin, n, a),
            );
            g = gin;
        }
    }
    value
}
