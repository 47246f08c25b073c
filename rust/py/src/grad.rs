//! Bindings of `nesy_core::optim::grad`: gradient utilities fused across a list of tensors of
//! either dtype (one parallel job for all of them).

use nesy_core::optim::grad::{self, Mixed};
use nesy_core::Par;
use numpy::PyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{slice, slice_mut, Access, Caster};
use crate::errors::{type_error, value_error};
use crate::optim::level;
use crate::runtime::run_kernel;

/// The arrays of one list argument, split by dtype.
struct Lists<'py> {
    f32: Vec<Bound<'py, PyArrayDyn<f32>>>,
    f64: Vec<Bound<'py, PyArrayDyn<f64>>>,
}

impl<'py> Lists<'py> {
    /// Collects `list` (float32/float64 arrays) into `acc`, as read-only or written arrays.
    fn collect(
        acc: &mut Access,
        list: &Bound<'py, PyList>,
        arg: &'static str,
        write: bool,
    ) -> PyResult<Self> {
        let mut out = Lists {
            f32: vec![],
            f64: vec![],
        };
        let caster = Caster::new(list.py());
        for (i, x) in list.iter().enumerate() {
            if let Some(a) = caster.cast::<f32>(&x) {
                acc.add(a, write, arg, i)?;
                out.f32.push(a.clone());
            } else if let Some(a) = caster.cast::<f64>(&x) {
                acc.add(a, write, arg, i)?;
                out.f64.push(a.clone());
            } else {
                return Err(not_float(arg, i, &x));
            }
        }
        Ok(out)
    }

    /// Read-only views.
    ///
    /// # Safety
    /// The `Access` that collected these arrays must have passed `check`.
    unsafe fn views(&self) -> (Vec<&[f32]>, Vec<&[f64]>) {
        // SAFETY: the caller's contract; read-only views of arrays no written array overlaps.
        unsafe {
            (
                self.f32.iter().map(|a| slice(a)).collect(),
                self.f64.iter().map(|a| slice(a)).collect(),
            )
        }
    }

    /// Mutable views.
    ///
    /// # Safety
    /// The `Access` that collected these arrays as written must have passed `check`; call once.
    unsafe fn views_mut(&self) -> Mixed<'_> {
        // SAFETY: the caller's contract; disjoint written arrays, each taken once.
        unsafe {
            Mixed {
                f32: self.f32.iter().map(|a| slice_mut(a)).collect(),
                f64: self.f64.iter().map(|a| slice_mut(a)).collect(),
            }
        }
    }
}

fn not_float(arg: &str, i: usize, x: &Bound<'_, PyAny>) -> PyErr {
    let what = x
        .getattr("dtype")
        .map_or_else(|_| "a non-array".to_string(), |d| format!("dtype {d}"));
    type_error(format!(
        "{arg}[{i}]: expected a numpy array of dtype float32 or float64, got {what}"
    ))
}

/// Collects one list argument and checks it: (arrays, written?).
fn one_list<'py>(
    list: &Bound<'py, PyList>,
    arg: &'static str,
    write: bool,
) -> PyResult<Lists<'py>> {
    let mut acc = Access::with_capacity(list.len());
    let lists = Lists::collect(&mut acc, list, arg, write)?;
    acc.check()?;
    Ok(lists)
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
    let lists = one_list(grads, "grads", true)?;
    // SAFETY: `one_list` checked the arrays; taken once.
    let m = unsafe { lists.views_mut() };
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
    let lists = one_list(grads, "grads", true)?;
    // SAFETY: `one_list` checked the arrays; taken once.
    let m = unsafe { lists.views_mut() };
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
    let lists = one_list(xs, "xs", false)?;
    // SAFETY: `one_list` checked the arrays.
    let (a, b) = unsafe { lists.views() };
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
    let lists = one_list(xs, "xs", false)?;
    // SAFETY: `one_list` checked the arrays.
    let (a, b) = unsafe { lists.views() };
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
    let lists = one_list(xs, "xs", true)?;
    // SAFETY: `one_list` checked the arrays; taken once.
    let m = unsafe { lists.views_mut() };
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
    let mut acc = Access::with_capacity(2 * params.len());
    let ps = Lists::collect(&mut acc, params, "params", false)?;
    let gs = Lists::collect(&mut acc, grads, "grads", true)?;
    acc.check()?;
    // SAFETY: `acc` covered both lists and passed `check`; the gradients are taken once.
    let ((a, b), m) = unsafe { (ps.views(), gs.views_mut()) };
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
