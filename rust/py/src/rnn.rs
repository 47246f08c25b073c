//! Bindings of `nesy_core::rnn`: one call per layer-direction over a whole batch of sequences.
//!
//! Inputs are borrowed read-only, outputs are new arrays (the gradients of the weights are
//! accumulated in place into the caller's arrays, as module gradients are). The dtype of `x`
//! picks the kernel; every other array must share it.

use nesy_core::linalg::Gemm;
use nesy_core::rnn::{self, Cell, Dims, Grads, Weights};
use numpy::{
    Element, PyArray1, PyArray2, PyArray3, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::arrays::{empty, slice, slice_mut, typed_array, Access};
use crate::errors::{py_shape, to_py, type_error, value_error};
use crate::runtime::run_kernel;

/// An optional array argument cast to the kernel dtype, with its rank checked.
fn arr<'py, T: Element>(
    x: Option<&Bound<'py, PyAny>>,
    name: &'static str,
    ndim: usize,
    dtype: &str,
) -> PyResult<Option<Bound<'py, PyArrayDyn<T>>>> {
    let Some(x) = x.filter(|x| !x.is_none()) else {
        return Ok(None);
    };
    typed_array::<T>(x, name, ndim, dtype).map(Some)
}

fn need<'py, T: Element>(
    x: &Bound<'py, PyAny>,
    name: &'static str,
    ndim: usize,
    dtype: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    arr::<T>(Some(x), name, ndim, dtype)?.ok_or_else(|| value_error(format!("{name}: required")))
}

/// The arguments shared by forward and backward, cast and shape-checked.
struct Layer<'py, T: Element> {
    cell: Cell,
    dtype: &'static str,
    d: Dims,
    x: Bound<'py, PyArrayDyn<T>>,
    h0: Bound<'py, PyArrayDyn<T>>,
    c0: Option<Bound<'py, PyArrayDyn<T>>>,
    w_ih: Bound<'py, PyArrayDyn<T>>,
    w_hh: Bound<'py, PyArrayDyn<T>>,
    b_ih: Option<Bound<'py, PyArrayDyn<T>>>,
    b_hh: Option<Bound<'py, PyArrayDyn<T>>>,
}

impl<'py, T: Element + Gemm> Layer<'py, T> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        cell: &str,
        x: &Bound<'py, PyAny>,
        h0: &Bound<'py, PyAny>,
        c0: Option<&Bound<'py, PyAny>>,
        w_ih: &Bound<'py, PyAny>,
        w_hh: &Bound<'py, PyAny>,
        b_ih: Option<&Bound<'py, PyAny>>,
        b_hh: Option<&Bound<'py, PyAny>>,
        dtype: &'static str,
    ) -> PyResult<Self> {
        let cell = Cell::parse(cell).map_err(to_py)?;
        let x = need::<T>(x, "x", 3, dtype)?;
        let w_hh = need::<T>(w_hh, "w_hh", 2, dtype)?;
        let (xs, hs) = (x.shape().to_vec(), w_hh.shape().to_vec());
        let d = Dims {
            t: xs[0],
            b: xs[1],
            i: xs[2],
            h: hs[1],
        };
        let l = Layer {
            cell,
            dtype,
            d,
            h0: need::<T>(h0, "h0", 2, dtype)?,
            c0: arr::<T>(c0, "c0", 2, dtype)?,
            w_ih: need::<T>(w_ih, "w_ih", 2, dtype)?,
            b_ih: arr::<T>(b_ih, "b_ih", 1, dtype)?,
            b_hh: arr::<T>(b_hh, "b_hh", 1, dtype)?,
            x,
            w_hh,
        };
        let gh = cell.gates() * d.h;
        let expect = |name: &str, got: &[usize], want: &[usize]| -> PyResult<()> {
            if got != want {
                return Err(value_error(format!(
                    "{name}: expected shape {}, got {}",
                    py_shape(want),
                    py_shape(got)
                )));
            }
            Ok(())
        };
        expect("w_hh", l.w_hh.shape(), &[gh, d.h])?;
        expect("w_ih", l.w_ih.shape(), &[gh, d.i])?;
        expect("h0", l.h0.shape(), &[d.b, d.h])?;
        if let Some(c0) = &l.c0 {
            expect("c0", c0.shape(), &[d.b, d.h])?;
        }
        if let Some(b) = &l.b_ih {
            expect("b_ih", b.shape(), &[gh])?;
        }
        if let Some(b) = &l.b_hh {
            expect("b_hh", b.shape(), &[gh])?;
        }
        Ok(l)
    }

    fn add_reads(&self, acc: &mut Access) -> PyResult<()> {
        acc.add_one(&self.x, false, "x")?;
        acc.add_one(&self.h0, false, "h0")?;
        acc.add_one(&self.w_ih, false, "w_ih")?;
        acc.add_one(&self.w_hh, false, "w_hh")?;
        for (a, name) in [(&self.c0, "c0"), (&self.b_ih, "b_ih"), (&self.b_hh, "b_hh")] {
            if let Some(a) = a {
                acc.add_one(a, false, name)?;
            }
        }
        Ok(())
    }

    /// # Safety
    /// `add_reads` must have registered these arrays with an `Access` that passed `check`.
    unsafe fn weights(&self) -> Weights<'_, T> {
        // SAFETY: the caller's contract (read-only views, no written array overlaps them).
        unsafe {
            Weights {
                cell: self.cell,
                w_ih: slice(&self.w_ih),
                w_hh: slice(&self.w_hh),
                b_ih: self.b_ih.as_ref().map(|b| slice(b)),
                b_hh: self.b_hh.as_ref().map(|b| slice(b)),
            }
        }
    }
}

/// `lengths` as int64 values: any 1-D integer array is accepted.
fn lengths_vec(lengths: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    let Some(l) = lengths.filter(|l| !l.is_none()) else {
        return Ok(None);
    };
    let kind: String = l
        .getattr("dtype")
        .and_then(|d| d.getattr("kind"))
        .and_then(|k| k.extract())
        .map_err(|_| type_error("lengths: expected a 1-D numpy array of integers"))?;
    if kind != "i" && kind != "u" {
        return Err(type_error(format!(
            "lengths: expected integers, got dtype kind {kind:?}"
        )));
    }
    let as_i64 = l.call_method1("astype", ("int64",))?;
    let arr = as_i64
        .cast::<PyArray1<i64>>()
        .map_err(|_| value_error("lengths: expected a 1-D array"))?;
    Ok(Some(arr.to_vec()?))
}

/// `x` must be a float32 or float64 array (the dtype every other argument then follows).
fn check_float(x: &Bound<'_, PyAny>) -> PyResult<()> {
    if x.cast::<PyArrayDyn<f32>>().is_ok() || x.cast::<PyArrayDyn<f64>>().is_ok() {
        return Ok(());
    }
    let got = x
        .getattr("dtype")
        .map_or_else(|_| x.get_type().to_string(), |d| format!("dtype {d}"));
    Err(type_error(format!(
        "x: expected a numpy array of dtype float32 or float64, got {got}"
    )))
}

type ForwardOut<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
);

#[allow(clippy::too_many_arguments)]
fn forward_typed<'py, T: Element + Gemm>(
    py: Python<'py>,
    l: Layer<'py, T>,
    lengths: Option<Vec<i64>>,
    reverse: bool,
    training: bool,
) -> PyResult<ForwardOut<'py>> {
    let d = l.d;
    let mut acc = Access::with_capacity(8);
    l.add_reads(&mut acc)?;
    acc.check()?;
    // Outputs come from numpy.empty (running out of memory raises MemoryError): the kernel
    // writes every element of them, padding included, and on error they are dropped.
    let dt = l.dtype;
    let y: Bound<'py, PyArray3<T>> = empty(py, &[d.t, d.b, d.h], dt)?;
    let hn: Bound<'py, PyArray2<T>> = empty(py, &[d.b, d.h], dt)?;
    let cn: Option<Bound<'py, PyArray2<T>>> = match l.cell.has_c() {
        true => Some(empty(py, &[d.b, d.h], dt)?),
        false => None,
    };
    let ws: Option<Bound<'py, PyArray1<T>>> = match training {
        true => Some(empty(py, &[rnn::workspace_len(l.cell, d)], dt)?),
        false => None,
    };
    {
        // SAFETY: inputs checked by `acc`; outputs are fresh arrays, each taken once.
        let (w, x, h0, c0) = unsafe {
            (
                l.weights(),
                slice(&l.x),
                slice(&l.h0),
                l.c0.as_ref().map(|c| slice(c)),
            )
        };
        let (ys, hns) = unsafe { (slice_mut(&y), slice_mut(&hn)) };
        let cns = cn.as_ref().map(|c| unsafe { slice_mut(c) });
        let wss = ws.as_ref().map(|w| unsafe { slice_mut(w) });
        // 0 (the calling thread) when the call has nothing to share between threads.
        let work = rnn::pool_work::<T>(l.cell, d);
        run_kernel(py, work, || {
            rnn::forward(
                d,
                &w,
                x,
                h0,
                c0,
                lengths.as_deref(),
                reverse,
                ys,
                hns,
                cns,
                wss,
            )
        })?;
    }
    Ok((
        y.into_any(),
        hn.into_any(),
        cn.map(|c| c.into_any()),
        ws.map(|w| w.into_any()),
    ))
}

/// Forward pass of one recurrent layer in one direction. Returns `(y, h_n, c_n, workspace)`;
/// `c_n` is None except for the LSTM, `workspace` is None unless `training`.
#[pyfunction]
#[pyo3(signature = (cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=false, training=true))]
#[allow(clippy::too_many_arguments)]
pub fn rnn_forward<'py>(
    py: Python<'py>,
    cell: &str,
    x: &Bound<'py, PyAny>,
    h0: &Bound<'py, PyAny>,
    c0: Option<&Bound<'py, PyAny>>,
    w_ih: &Bound<'py, PyAny>,
    w_hh: &Bound<'py, PyAny>,
    b_ih: Option<&Bound<'py, PyAny>>,
    b_hh: Option<&Bound<'py, PyAny>>,
    lengths: Option<&Bound<'py, PyAny>>,
    reverse: bool,
    training: bool,
) -> PyResult<ForwardOut<'py>> {
    let lengths = lengths_vec(lengths)?;
    if x.cast::<PyArrayDyn<f64>>().is_ok() {
        let l = Layer::<f64>::new(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, "float64")?;
        forward_typed(py, l, lengths, reverse, training)
    } else {
        check_float(x)?;
        let l = Layer::<f32>::new(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, "float32")?;
        forward_typed(py, l, lengths, reverse, training)
    }
}

type BackwardOut<'py> = (
    Option<Bound<'py, PyAny>>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
);

#[allow(clippy::too_many_arguments)]
fn backward_typed<'py, T: Element + Gemm>(
    py: Python<'py>,
    l: Layer<'py, T>,
    lengths: Option<Vec<i64>>,
    reverse: bool,
    ws: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    dhn: &Bound<'py, PyAny>,
    dcn: Option<&Bound<'py, PyAny>>,
    dw_ih: &Bound<'py, PyAny>,
    dw_hh: &Bound<'py, PyAny>,
    db_ih: Option<&Bound<'py, PyAny>>,
    db_hh: Option<&Bound<'py, PyAny>>,
    input_grad: bool,
    dtype: &str,
) -> PyResult<BackwardOut<'py>> {
    let d = l.d;
    let ws = need::<T>(ws, "workspace", 1, dtype)?;
    let dy = need::<T>(dy, "dy", 3, dtype)?;
    let dhn = need::<T>(dhn, "dh_n", 2, dtype)?;
    let dcn = arr::<T>(dcn, "dc_n", 2, dtype)?;
    let dw_ih = need::<T>(dw_ih, "dw_ih", 2, dtype)?;
    let dw_hh = need::<T>(dw_hh, "dw_hh", 2, dtype)?;
    let db_ih = arr::<T>(db_ih, "db_ih", 1, dtype)?;
    let db_hh = arr::<T>(db_hh, "db_hh", 1, dtype)?;
    for (a, name) in [(&dy, "dy"), (&dhn, "dh_n")] {
        let want: &[usize] = if name == "dy" {
            &[d.t, d.b, d.h]
        } else {
            &[d.b, d.h]
        };
        if a.shape() != want {
            return Err(value_error(format!(
                "{name}: expected shape {}, got {}",
                py_shape(want),
                py_shape(a.shape())
            )));
        }
    }
    match (&dcn, l.cell.has_c()) {
        (Some(a), true) if a.shape() != [d.b, d.h] => {
            return Err(value_error(format!(
                "dc_n: expected shape {}, got {}",
                py_shape(&[d.b, d.h]),
                py_shape(a.shape())
            )))
        }
        (None, true) => return Err(value_error("dc_n: required for the LSTM")),
        (Some(_), false) => {
            return Err(value_error(
                "dc_n: only the LSTM has a cell state (pass None)",
            ))
        }
        _ => {}
    }
    for (a, src, name) in [(&dw_ih, &l.w_ih, "dw_ih"), (&dw_hh, &l.w_hh, "dw_hh")] {
        if a.shape() != src.shape() {
            return Err(value_error(format!(
                "{name}: shape {} differs from the weight's {}",
                py_shape(a.shape()),
                py_shape(src.shape())
            )));
        }
    }
    for (a, src, name, bias) in [
        (&db_ih, &l.b_ih, "db_ih", "b_ih"),
        (&db_hh, &l.b_hh, "db_hh", "b_hh"),
    ] {
        match (a, src) {
            (Some(a), Some(b)) if a.shape() != b.shape() => {
                return Err(value_error(format!(
                    "{name}: shape {} differs from {bias}'s {}",
                    py_shape(a.shape()),
                    py_shape(b.shape())
                )))
            }
            (None, Some(_)) => {
                return Err(value_error(format!(
                    "{name}: required (the layer has {bias})"
                )))
            }
            (Some(_), None) => {
                return Err(value_error(format!(
                    "{name}: the layer has no {bias} (pass None)"
                )))
            }
            _ => {}
        }
    }
    let mut acc = Access::with_capacity(16);
    l.add_reads(&mut acc)?;
    acc.add_one(&ws, false, "workspace")?;
    acc.add_one(&dy, false, "dy")?;
    acc.add_one(&dhn, false, "dh_n")?;
    if let Some(a) = &dcn {
        acc.add_one(a, false, "dc_n")?;
    }
    acc.add_one(&dw_ih, true, "dw_ih")?;
    acc.add_one(&dw_hh, true, "dw_hh")?;
    for (a, name) in [(&db_ih, "db_ih"), (&db_hh, "db_hh")] {
        if let Some(a) = a {
            acc.add_one(a, true, name)?;
        }
    }
    acc.check()?;
    // Written in full by the kernel (see the forward's outputs).
    let dx: Option<Bound<'py, PyArray3<T>>> = match input_grad {
        true => Some(empty(py, &[d.t, d.b, d.i], dtype)?),
        false => None,
    };
    let dh0: Bound<'py, PyArray2<T>> = empty(py, &[d.b, d.h], dtype)?;
    let dc0: Option<Bound<'py, PyArray2<T>>> = match l.cell.has_c() {
        true => Some(empty(py, &[d.b, d.h], dtype)?),
        false => None,
    };
    {
        // SAFETY: every array was registered with `acc`, which passed `check`; outputs are fresh;
        // each written array is taken once.
        let (w, x, h0, c0) = unsafe {
            (
                l.weights(),
                slice(&l.x),
                slice(&l.h0),
                l.c0.as_ref().map(|c| slice(c)),
            )
        };
        let (wss, dys, dhns) = unsafe { (slice(&ws), slice(&dy), slice(&dhn)) };
        let dcns = dcn.as_ref().map(|c| unsafe { slice(c) });
        let out = unsafe {
            Grads {
                dx: dx.as_ref().map(|a| slice_mut(a)),
                dh0: slice_mut(&dh0),
                dc0: dc0.as_ref().map(|c| slice_mut(c)),
                dw_ih: slice_mut(&dw_ih),
                dw_hh: slice_mut(&dw_hh),
                db_ih: db_ih.as_ref().map(|b| slice_mut(b)),
                db_hh: db_hh.as_ref().map(|b| slice_mut(b)),
            }
        };
        let work = rnn::pool_work::<T>(l.cell, d).saturating_mul(3);
        run_kernel(py, work, || {
            rnn::backward(
                d,
                &w,
                x,
                h0,
                c0,
                lengths.as_deref(),
                reverse,
                wss,
                dys,
                dhns,
                dcns,
                out,
            )
        })?;
    }
    Ok((
        dx.map(|a| a.into_any()),
        dh0.into_any(),
        dc0.map(|c| c.into_any()),
    ))
}

/// Backward pass of one recurrent layer in one direction (BPTT), from the workspace of the
/// matching `rnn_forward(..., training=True)`. Returns `(dx, dh0, dc0)` (`dx` None with
/// `input_grad=False`, which skips its product); ACCUMULATES the weight and bias gradients into
/// `dw_ih`, `dw_hh`, `db_ih`, `db_hh` in place. The inputs, weights,
/// `lengths` and `reverse` must be those of that forward call: the workspace does not record
/// them (`nesy.rnn` layers keep them from their forward pass).
#[pyfunction]
#[pyo3(signature = (cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, workspace, dy, dh_n, dc_n, dw_ih, dw_hh, db_ih, db_hh, lengths=None, reverse=false, input_grad=true))]
#[allow(clippy::too_many_arguments)]
pub fn rnn_backward<'py>(
    py: Python<'py>,
    cell: &str,
    x: &Bound<'py, PyAny>,
    h0: &Bound<'py, PyAny>,
    c0: Option<&Bound<'py, PyAny>>,
    w_ih: &Bound<'py, PyAny>,
    w_hh: &Bound<'py, PyAny>,
    b_ih: Option<&Bound<'py, PyAny>>,
    b_hh: Option<&Bound<'py, PyAny>>,
    workspace: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    dh_n: &Bound<'py, PyAny>,
    dc_n: Option<&Bound<'py, PyAny>>,
    dw_ih: &Bound<'py, PyAny>,
    dw_hh: &Bound<'py, PyAny>,
    db_ih: Option<&Bound<'py, PyAny>>,
    db_hh: Option<&Bound<'py, PyAny>>,
    lengths: Option<&Bound<'py, PyAny>>,
    reverse: bool,
    input_grad: bool,
) -> PyResult<BackwardOut<'py>> {
    let lengths = lengths_vec(lengths)?;
    if x.cast::<PyArrayDyn<f64>>().is_err() {
        check_float(x)?;
    }
    if x.cast::<PyArrayDyn<f64>>().is_ok() {
        let l = Layer::<f64>::new(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, "float64")?;
        backward_typed(
            py, l, lengths, reverse, workspace, dy, dh_n, dc_n, dw_ih, dw_hh, db_ih, db_hh,
            input_grad, "float64",
        )
    } else {
        let l = Layer::<f32>::new(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, "float32")?;
        backward_typed(
            py, l, lengths, reverse, workspace, dy, dh_n, dc_n, dw_ih, dw_hh, db_ih, db_hh,
            input_grad, "float32",
        )
    }
}

/// Benchmark floor of the split forward step (one small batch on two threads): `steps` steps,
/// in each of which each of two threads reads its half of `w` once (nothing else), with the
/// same hand-over between steps. `w` (1-D float32) stands for a layer's weights. Returns the
/// sum of both halves' sums over all steps.
#[pyfunction]
pub fn rnn_stream_floor(py: Python<'_>, w: &Bound<'_, PyAny>, steps: i64) -> PyResult<f64> {
    let w = w.cast::<PyArray1<f32>>().map_err(|_| {
        type_error("w: expected a 1-D numpy array of dtype float32 (the packed weights' size)")
    })?;
    let steps = usize::try_from(steps)
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| value_error(format!("steps: must be at least 1, got {steps}")))?;
    let mut acc = Access::with_capacity(1);
    acc.add_one(w, false, "w")?;
    acc.check()?;
    // SAFETY: `w` is covered by `acc` (read only).
    let ws = unsafe { slice(w) };
    // Always on the pool (the floor of the two-thread step), however small `w` is.
    run_kernel(py, usize::MAX, || Ok(rnn::stream_floor(ws, steps)))
}
