//! Bindings of `nesy_core::optim::grad`: gradient utilities fused across a list of tensors of
//! either dtype (one parallel job for all of them).

use nesy_core::optim::grad::{self, Mixed};
use nesy_core::Par;
use numpy::{
    PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::errors::{type_error, value_error};
use crate::optim::level;
use crate::runtime::run_kernel;

/// Read-write borrows of a list of arrays, split by dtype.
type Rw<'py> = (
    Vec<PyReadwriteArrayDyn<'py, f32>>,
    Vec<PyReadwriteArrayDyn<'py, f64>>,
);
/// Read-only borrows of a list of arrays, split by dtype.
type Ro<'py> = (
    Vec<PyReadonlyArrayDyn<'py, f32>>,
    Vec<PyReadonlyArrayDyn<'py, f64>>,
);

fn not_float(arg: &str, i: usize, x: &Bound<'_, PyAny>) -> PyErr {
    let what = x
        .getattr("dtype")
        .map_or_else(|_| "a non-array".to_string(), |d| format!("dtype {d}"));
    type_error(format!(
        "{arg}[{i}]: expected a numpy array of dtype float32 or float64, got {what}"
    ))
}

fn borrow_rw<'py>(list: &Bound<'py, PyList>, arg: &str) -> PyResult<Rw<'py>> {
    let (mut a, mut b) = (vec![], vec![]);
    for (i, x) in list.iter().enumerate() {
        let err = |e: String| value_error(format!("{arg}[{i}]: {e}"));
        if let Ok(arr) = x.cast::<PyArrayDyn<f32>>() {
            check_contiguous(arr.is_c_contiguous(), arg, i)?;
            a.push(arr.try_readwrite().map_err(|e| err(e.to_string()))?);
        } else if let Ok(arr) = x.cast::<PyArrayDyn<f64>>() {
            check_contiguous(arr.is_c_contiguous(), arg, i)?;
            b.push(arr.try_readwrite().map_err(|e| err(e.to_string()))?);
        } else {
            return Err(not_float(arg, i, &x));
        }
    }
    Ok((a, b))
}

fn borrow_ro<'py>(list: &Bound<'py, PyList>, arg: &str) -> PyResult<Ro<'py>> {
    let (mut a, mut b) = (vec![], vec![]);
    for (i, x) in list.iter().enumerate() {
        let err = |e: String| value_error(format!("{arg}[{i}]: {e}"));
        if let Ok(arr) = x.cast::<PyArrayDyn<f32>>() {
            check_contiguous(arr.is_c_contiguous(), arg, i)?;
            a.push(arr.try_readonly().map_err(|e| err(e.to_string()))?);
        } else if let Ok(arr) = x.cast::<PyArrayDyn<f64>>() {
            check_contiguous(arr.is_c_contiguous(), arg, i)?;
            b.push(arr.try_readonly().map_err(|e| err(e.to_string()))?);
        } else {
            return Err(not_float(arg, i, &x));
        }
    }
    Ok((a, b))
}

fn check_contiguous(ok: bool, arg: &str, i: usize) -> PyResult<()> {
    if ok {
        Ok(())
    } else {
        Err(value_error(format!("{arg}[{i}]: must be C-contiguous")))
    }
}

fn mixed<'a>(rw: &'a mut Rw<'_>) -> Mixed<'a> {
    Mixed {
        f32: rw
            .0
            .iter_mut()
            .filter_map(|x| x.as_slice_mut().ok())
            .collect(),
        f64: rw
            .1
            .iter_mut()
            .filter_map(|x| x.as_slice_mut().ok())
            .collect(),
    }
}

/// Scales `grads` in place so that their joint norm is at most `max_norm`; returns the norm.
#[pyfunction]
#[pyo3(signature = (grads, max_norm, norm_type=2.0, error_if_nonfinite=false, simd=None))]
pub fn clip_grad_norm(
    py: Python<'_>,
    grads: &Bound<'_, PyList>,
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
    simd: Option<&str>,
) -> PyResult<f64> {
    let level = level(simd)?;
    let mut rw = borrow_rw(grads, "grads")?;
    let m = mixed(&mut rw);
    let work = m.len();
    run_kernel(py, work, || {
        grad::clip_grad_norm(
            Par::Rayon,
            level,
            m,
            max_norm,
            norm_type,
            error_if_nonfinite,
        )
    })
}

/// Clamps every gradient element to `[-clip_value, clip_value]` in place.
#[pyfunction]
#[pyo3(signature = (grads, clip_value, simd=None))]
pub fn clip_grad_value(
    py: Python<'_>,
    grads: &Bound<'_, PyList>,
    clip_value: f64,
    simd: Option<&str>,
) -> PyResult<()> {
    let level = level(simd)?;
    if clip_value.is_nan() || clip_value < 0.0 {
        return Err(value_error(format!(
            "clip_value: must be >= 0, got {clip_value}"
        )));
    }
    let mut rw = borrow_rw(grads, "grads")?;
    let m = mixed(&mut rw);
    let work = m.len();
    run_kernel(py, work, || {
        grad::clip_value(Par::Rayon, level, m.f32, clip_value);
        grad::clip_value(Par::Rayon, level, m.f64, clip_value);
        Ok(())
    })
}

/// The joint norm (1, 2 or inf) of a list of arrays, computed in float64.
#[pyfunction]
#[pyo3(signature = (xs, norm_type=2.0, simd=None))]
pub fn grad_norm(
    py: Python<'_>,
    xs: &Bound<'_, PyList>,
    norm_type: f64,
    simd: Option<&str>,
) -> PyResult<f64> {
    let level = level(simd)?;
    let ro = borrow_ro(xs, "xs")?;
    let a: Vec<&[f32]> = ro.0.iter().filter_map(|x| x.as_slice().ok()).collect();
    let b: Vec<&[f64]> = ro.1.iter().filter_map(|x| x.as_slice().ok()).collect();
    let work = len(&a) + len(&b);
    run_kernel(py, work, || {
        grad::norm(Par::Rayon, level, &a, &b, norm_type)
    })
}

/// Whether every element of every array is finite.
#[pyfunction]
#[pyo3(signature = (xs, simd=None))]
pub fn all_finite(py: Python<'_>, xs: &Bound<'_, PyList>, simd: Option<&str>) -> PyResult<bool> {
    let level = level(simd)?;
    let ro = borrow_ro(xs, "xs")?;
    let a: Vec<&[f32]> = ro.0.iter().filter_map(|x| x.as_slice().ok()).collect();
    let b: Vec<&[f64]> = ro.1.iter().filter_map(|x| x.as_slice().ok()).collect();
    let work = len(&a) + len(&b);
    run_kernel(py, work, || {
        Ok(grad::all_finite(Par::Rayon, level, &a) && grad::all_finite(Par::Rayon, level, &b))
    })
}

/// Multiplies every array in place by `factor` (decoupled weight decay: `1 - lr * wd`).
#[pyfunction]
#[pyo3(signature = (xs, factor, simd=None))]
pub fn scale(
    py: Python<'_>,
    xs: &Bound<'_, PyList>,
    factor: f64,
    simd: Option<&str>,
) -> PyResult<()> {
    let level = level(simd)?;
    let mut rw = borrow_rw(xs, "xs")?;
    let m = mixed(&mut rw);
    let work = m.len();
    run_kernel(py, work, || {
        m.scale(Par::Rayon, level, factor);
        Ok(())
    })
}

/// Adds the gradient of `l1 * sum|p| + l2 / 2 * sum p^2` to `grads` and returns the penalty.
#[pyfunction]
#[pyo3(signature = (grads, params, l1=0.0, l2=0.0, simd=None))]
pub fn penalty(
    py: Python<'_>,
    grads: &Bound<'_, PyList>,
    params: &Bound<'_, PyList>,
    l1: f64,
    l2: f64,
    simd: Option<&str>,
) -> PyResult<f64> {
    let level = level(simd)?;
    for (name, v) in [("l1", l1), ("l2", l2)] {
        if v.is_nan() || v < 0.0 {
            return Err(value_error(format!("{name}: must be >= 0, got {v}")));
        }
    }
    if grads.len() != params.len() {
        return Err(value_error(format!(
            "grads: expected {} arrays (one per parameter), got {}",
            params.len(),
            grads.len()
        )));
    }
    for (i, (g, p)) in grads.iter().zip(params.iter()).enumerate() {
        let (gs, ps): (Vec<usize>, Vec<usize>) = (shape(&g)?, shape(&p)?);
        let (gd, pd) = (
            g.getattr("dtype")?.str()?.to_string(),
            p.getattr("dtype")?.str()?.to_string(),
        );
        if gs != ps || gd != pd {
            return Err(value_error(format!(
                "grads[{i}]: shape {gs:?} and dtype {gd} must match params[{i}] ({ps:?}, {pd})"
            )));
        }
    }
    let ro = borrow_ro(params, "params")?;
    let mut rw = borrow_rw(grads, "grads")?;
    let m = mixed(&mut rw);
    let a: Vec<&[f32]> = ro.0.iter().filter_map(|x| x.as_slice().ok()).collect();
    let b: Vec<&[f64]> = ro.1.iter().filter_map(|x| x.as_slice().ok()).collect();
    let work = 2 * (len(&a) + len(&b));
    run_kernel(py, work, || {
        Ok(grad::penalty(Par::Rayon, level, m.f32, &a, l1, l2)
            + grad::penalty(Par::Rayon, level, m.f64, &b, l1, l2))
    })
}

fn shape(x: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    x.getattr("shape")
        .and_then(|s| s.extract())
        .map_err(|_| type_error("expected numpy arrays"))
}

fn len<T>(xs: &[&[T]]) -> usize {
    xs.iter().map(|x| x.len()).sum()
}
