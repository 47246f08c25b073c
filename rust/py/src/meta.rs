//! Bindings of `nesy_core::meta`: every task's loss and gradients of a batch of per-task MLPs in
//! one call. Parameters carry the task axis first (`W_l (n_tasks, n_in, n_out)`,
//! `b_l (n_tasks, n_out)`), float32 or float64 (the dtype of `x` picks the kernel).

use nesy_core::linalg::Gemm;
use nesy_core::meta::{self, Act, Labels, MetaLoss};
use nesy_core::{Float, Par};
use numpy::{Element, PyArray1, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{by_dtype, slice, slice_mut, typed_array, zeros, Access};
use crate::errors::{py_shape, to_py, type_error, value_error};
use crate::runtime::run_kernel;

type Out<'py> = (Bound<'py, PyAny>, Option<Vec<Bound<'py, PyAny>>>);

#[allow(clippy::too_many_arguments)]
fn typed<'py, T: Element + Float + Gemm>(
    py: Python<'py>,
    params: &Bound<'py, PyList>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    acts: &[Act],
    loss: MetaLoss,
    need_grad: bool,
    dtype: &'static str,
) -> PyResult<Out<'py>> {
    let n_layers = acts.len();
    if params.len() != 2 * n_layers {
        return Err(value_error(format!(
            "params: {n_layers} layers need {} arrays (W, b per layer), got {}",
            2 * n_layers,
            params.len()
        )));
    }
    let p: Vec<Bound<'py, PyArrayDyn<T>>> = params
        .iter()
        .enumerate()
        .map(|(k, a)| typed_array::<T>(&a, "params", if k % 2 == 0 { 3 } else { 2 }, dtype))
        .collect::<PyResult<_>>()?;
    let x = typed_array::<T>(x, "x", 3, dtype)?;
    let n_tasks = x.shape()[0];
    let mut sizes = vec![x.shape()[2]];
    for l in 0..n_layers {
        let s = p[2 * l].shape();
        if s[0] != n_tasks || s[1] != sizes[l] || p[2 * l + 1].shape() != [n_tasks, s[2]] {
            return Err(value_error(format!(
                "params[{}]: layer {l} needs ({n_tasks}, {}, n_out) weights and ({n_tasks}, \
                 n_out) biases",
                2 * l,
                sizes[l]
            )));
        }
        sizes.push(s[2]);
    }
    let classes = y.cast::<PyArrayDyn<i64>>().ok().cloned();
    let values = if classes.is_none() {
        Some(typed_array::<T>(y, "y", 3, dtype)?)
    } else {
        None
    };
    let n_points = x.shape()[1];
    let (got, want): (&[usize], Vec<usize>) = match (&classes, &values) {
        (Some(c), _) => (c.shape(), vec![n_tasks, n_points]),
        (_, Some(v)) => (v.shape(), vec![n_tasks, n_points, sizes[n_layers]]),
        _ => unreachable!(),
    };
    if got != want.as_slice() {
        return Err(value_error(format!(
            "y: expected shape {}, got {}",
            py_shape(&want),
            py_shape(got)
        )));
    }
    let mut acc = Access::with_capacity(2 * n_layers + 2);
    for (i, a) in p.iter().enumerate() {
        acc.add(a, false, "params", i)?;
    }
    acc.add_one(&x, false, "x")?;
    if let Some(c) = &classes {
        acc.add_one(c, false, "y")?;
    }
    if let Some(v) = &values {
        acc.add_one(v, false, "y")?;
    }
    acc.check()?;
    let losses: Bound<'py, PyArray1<T>> = zeros(py, &[n_tasks], dtype)?;
    let grads: Vec<Bound<'py, PyArrayDyn<T>>> = if need_grad {
        p.iter()
            .map(|a| zeros(py, a.shape(), dtype))
            .collect::<PyResult<_>>()?
    } else {
        Vec::new()
    };
    {
        // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
        let ps: Vec<&[T]> = p.iter().map(|a| unsafe { slice(a) }).collect();
        let xs = unsafe { slice(&x) };
        let labels = match (&classes, &values) {
            (Some(c), _) => Labels::Classes(unsafe { slice(c) }),
            (_, Some(v)) => Labels::Values(unsafe { slice(v) }),
            _ => unreachable!(),
        };
        let ls = unsafe { slice_mut(&losses) };
        let gs: Option<Vec<&mut [T]>> =
            need_grad.then(|| grads.iter().map(|g| unsafe { slice_mut(g) }).collect());
        let work = xs.len() * sizes.iter().sum::<usize>();
        run_kernel(py, work, || {
            meta::loss_grad(
                Par::Rayon,
                &sizes,
                acts,
                &ps,
                xs,
                labels,
                n_tasks,
                loss,
                ls,
                gs,
            )
        })?;
    }
    let grads = need_grad.then(|| grads.into_iter().map(|g| g.into_any()).collect());
    Ok((losses.into_any(), grads))
}

/// Losses `(n_tasks,)` and, with `need_grad`, the gradients of every parameter (same shapes)
/// of a batch of per-task MLPs: `params = [W_1, b_1, ...]` with the task axis first,
/// `x (n_tasks, n_points, n_in)`, `y` real targets `(n_tasks, n_points, n_out)` (`loss="mse"`)
/// or int64 class ids `(n_tasks, n_points)` (`loss="cross_entropy"`), `activations` one of
/// `relu`, `tanh`, `identity` per layer.
#[pyfunction]
#[pyo3(signature = (params, x, y, activations, loss="mse", need_grad=true))]
pub fn meta_mlp_loss_grad<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyList>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    activations: Vec<String>,
    loss: &str,
    need_grad: bool,
) -> PyResult<Out<'py>> {
    let acts: Vec<Act> = activations
        .iter()
        .map(|a| Act::parse(a).map_err(to_py))
        .collect::<PyResult<_>>()?;
    let loss = match loss {
        "mse" => MetaLoss::Mse,
        "cross_entropy" => MetaLoss::CrossEntropy,
        other => {
            return Err(value_error(format!(
                "loss: expected 'mse' or 'cross_entropy', got {other:?}"
            )))
        }
    };
    if x.cast::<PyArrayDyn<f64>>().is_err() && x.cast::<PyArrayDyn<f32>>().is_err() {
        return Err(type_error("x: expected a float32 or float64 numpy array"));
    }
    by_dtype!(x, "x", typed(py, params, x, y, &acts, loss, need_grad))
}
