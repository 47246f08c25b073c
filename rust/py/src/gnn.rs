//! Bindings of `nesy_core::gnn`: neighbourhood aggregation over a CSR graph, forward and
//! backward. Index arrays are int64 (the Python `Graph` keeps them so); features float32 or
//! float64 (the dtype of `x` picks the kernel). Outputs are new arrays.

use nesy_core::gnn::{self, Csr, Reduce};
use nesy_core::{Float, Par};
use numpy::{Element, PyArray1, PyArray2, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{slice, slice_mut, typed_array, zeros, Access};
use crate::errors::{py_shape, to_py, type_error, value_error};
use crate::optim::level;
use crate::runtime::run_kernel;

/// A 1-D int64 index array.
fn index_array<'py>(
    x: &Bound<'py, PyAny>,
    name: &'static str,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    x.cast::<PyArray1<i64>>()
        .cloned()
        .map_err(|_| type_error(format!("{name}: expected a 1-D int64 numpy array")))
}

type AggOut<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

#[allow(clippy::too_many_arguments)]
fn forward_typed<'py, T: Element + Float>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    reduce: Reduce,
    edge_weight: Option<&Bound<'py, PyAny>>,
    simd: Option<&str>,
    dtype: &'static str,
) -> PyResult<AggOut<'py>> {
    let level = level(simd)?;
    let indptr = index_array(indptr, "indptr")?;
    let indices = index_array(indices, "indices")?;
    let x = typed_array::<T>(x, "x", 2, dtype)?;
    let w = edge_weight
        .filter(|w| !w.is_none())
        .map(|w| typed_array::<T>(w, "edge_weight", 1, dtype))
        .transpose()?;
    let (n_src, f) = (x.shape()[0], x.shape()[1]);
    let n_dst = indptr
        .len()
        .checked_sub(1)
        .ok_or_else(|| value_error("indptr: must hold n_dst + 1 >= 1 entries"))?;
    let mut acc = Access::with_capacity(4);
    acc.add(&indptr, false, "indptr", 0)?;
    acc.add(&indices, false, "indices", 0)?;
    acc.add(&x, false, "x", 0)?;
    if let Some(w) = &w {
        acc.add(w, false, "edge_weight", 0)?;
    }
    acc.check()?;
    let out: Bound<'py, PyArray2<T>> = zeros(py, &[n_dst, f], dtype)?;
    let extremum = matches!(reduce, Reduce::Max | Reduce::Min);
    let arg: Option<Bound<'py, PyArray2<i64>>> = if extremum {
        Some(zeros(py, &[n_dst, f], "int64")?)
    } else {
        None
    };
    {
        // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
        let (ip, ix, xs) = unsafe { (slice(&indptr), slice(&indices), slice(&x)) };
        let ws = w.as_ref().map(|w| unsafe { slice(w) });
        let os = unsafe { slice_mut(&out) };
        let args = arg.as_ref().map(|a| unsafe { slice_mut(a) });
        let g = Csr::new(n_dst, n_src, ip, ix, "graph").map_err(to_py)?;
        run_kernel(py, g.nnz() * f.max(1), || {
            gnn::aggregate(Par::Rayon, level, g, xs, f, ws, reduce, os, args)
        })?;
    }
    Ok((out.into_any(), arg.map(|a| a.into_any())))
}

/// Aggregates `x (n_src, F)` over the in-edges of every destination of a CSR graph
/// (`indptr (n_dst + 1)`, `indices (E)` = sources) with `reduce` in sum/mean/max/min and
/// optional `edge_weight (E)`. Returns `(out (n_dst, F), arg)`; `arg (n_dst, F)` holds the winning
/// edge of max/min (-1 for a node without in-edges) and is None for sum/mean.
#[pyfunction]
#[pyo3(signature = (indptr, indices, x, reduce="sum", edge_weight=None, simd=None))]
pub fn gnn_aggregate<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    reduce: &str,
    edge_weight: Option<&Bound<'py, PyAny>>,
    simd: Option<&str>,
) -> PyResult<AggOut<'py>> {
    let reduce = Reduce::parse(reduce).map_err(to_py)?;
    if x.cast::<PyArrayDyn<f64>>().is_ok() {
        forward_typed::<f64>(py, indptr, indices, x, reduce, edge_weight, simd, "float64")
    } else if x.cast::<PyArrayDyn<f32>>().is_ok() {
        forward_typed::<f32>(py, indptr, indices, x, reduce, edge_weight, simd, "float32")
    } else {
        Err(type_error("x: expected a float32 or float64 numpy array"))
    }
}

#[allow(clippy::too_many_arguments)]
fn backward_typed<'py, T: Element + Float>(
    py: Python<'py>,
    graph: [&Bound<'py, PyAny>; 5],
    x: &Bound<'py, PyAny>,
    grad_out: &Bound<'py, PyAny>,
    reduce: Reduce,
    edge_weight: Option<&Bound<'py, PyAny>>,
    arg: Option<&Bound<'py, PyAny>>,
    weight_grad: bool,
    simd: Option<&str>,
    dtype: &'static str,
) -> PyResult<AggOut<'py>> {
    let level = level(simd)?;
    let names = ["indptr", "indices", "t_indptr", "t_indices", "perm"];
    let idx: Vec<Bound<'py, PyArray1<i64>>> = graph
        .iter()
        .zip(names)
        .map(|(a, n)| index_array(a, n))
        .collect::<PyResult<_>>()?;
    let x = typed_array::<T>(x, "x", 2, dtype)?;
    let grad = typed_array::<T>(grad_out, "grad_out", 2, dtype)?;
    let w = edge_weight
        .filter(|w| !w.is_none())
        .map(|w| typed_array::<T>(w, "edge_weight", 1, dtype))
        .transpose()?;
    let arg = arg
        .filter(|a| !a.is_none())
        .map(|a| {
            a.cast::<PyArray2<i64>>().cloned().map_err(|_| {
                type_error("arg: expected the (n_dst, F) int64 array of the forward pass")
            })
        })
        .transpose()?;
    let (n_src, f) = (x.shape()[0], x.shape()[1]);
    let n_dst = idx[0]
        .len()
        .checked_sub(1)
        .ok_or_else(|| value_error("indptr: must hold n_dst + 1 >= 1 entries"))?;
    if grad.shape() != [n_dst, f] {
        return Err(value_error(format!(
            "grad_out: expected shape {}, got {}",
            py_shape(&[n_dst, f]),
            py_shape(grad.shape())
        )));
    }
    let mut acc = Access::with_capacity(9);
    for (a, n) in idx.iter().zip(names) {
        acc.add(a, false, n, 0)?;
    }
    acc.add(&x, false, "x", 0)?;
    acc.add(&grad, false, "grad_out", 0)?;
    if let Some(w) = &w {
        acc.add(w, false, "edge_weight", 0)?;
    }
    if let Some(a) = &arg {
        acc.add(a, false, "arg", 0)?;
    }
    acc.check()?;
    let grad_x: Bound<'py, PyArray2<T>> = zeros(py, &[n_src, f], dtype)?;
    let n_edges = idx[1].len();
    let grad_w: Option<Bound<'py, PyArray1<T>>> = if weight_grad {
        Some(zeros(py, &[n_edges], dtype)?)
    } else {
        None
    };
    {
        // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
        let s: Vec<&[i64]> = idx.iter().map(|a| unsafe { slice(a) }).collect();
        let (xs, gs) = unsafe { (slice(&x), slice(&grad)) };
        let ws = w.as_ref().map(|w| unsafe { slice(w) });
        let args = arg.as_ref().map(|a| unsafe { slice(a) });
        let gx = unsafe { slice_mut(&grad_x) };
        let gw = grad_w.as_ref().map(|g| unsafe { slice_mut(g) });
        let g = Csr::new(n_dst, n_src, s[0], s[1], "graph").map_err(to_py)?;
        let gt = Csr::new(n_src, n_dst, s[2], s[3], "graph (transposed)").map_err(to_py)?;
        run_kernel(py, g.nnz() * f.max(1), || {
            gnn::aggregate_backward(
                Par::Rayon,
                level,
                g,
                gt,
                s[4],
                xs,
                f,
                ws,
                reduce,
                args,
                gs,
                gx,
                gw,
            )
        })?;
    }
    Ok((grad_x.into_any(), grad_w.map(|g| g.into_any())))
}

/// Backward of `gnn_aggregate`: returns `(grad_x (n_src, F), grad_weight (E) or None)`, from
/// the graph, its transposed CSR (`t_indptr`, `t_indices` = destinations, `perm` = forward edge
/// of every transposed edge), the forward inputs and `grad_out (n_dst, F)`.
#[pyfunction]
#[pyo3(signature = (indptr, indices, t_indptr, t_indices, perm, x, grad_out, reduce="sum", edge_weight=None, arg=None, weight_grad=false, simd=None))]
#[allow(clippy::too_many_arguments)]
pub fn gnn_aggregate_backward<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    t_indptr: &Bound<'py, PyAny>,
    t_indices: &Bound<'py, PyAny>,
    perm: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    grad_out: &Bound<'py, PyAny>,
    reduce: &str,
    edge_weight: Option<&Bound<'py, PyAny>>,
    arg: Option<&Bound<'py, PyAny>>,
    weight_grad: bool,
    simd: Option<&str>,
) -> PyResult<AggOut<'py>> {
    let reduce = Reduce::parse(reduce).map_err(to_py)?;
    let graph = [indptr, indices, t_indptr, t_indices, perm];
    if x.cast::<PyArrayDyn<f64>>().is_ok() {
        backward_typed::<f64>(
            py,
            graph,
            x,
            grad_out,
            reduce,
            edge_weight,
            arg,
            weight_grad,
            simd,
            "float64",
        )
    } else if x.cast::<PyArrayDyn<f32>>().is_ok() {
        backward_typed::<f32>(
            py,
            graph,
            x,
            grad_out,
            reduce,
            edge_weight,
            arg,
            weight_grad,
            simd,
            "float32",
        )
    } else {
        Err(type_error("x: expected a float32 or float64 numpy array"))
    }
}
