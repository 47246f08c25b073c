//! Bindings of `nesy_core::gnn`: neighbourhood aggregation, SDDMM and edge softmax over a CSR
//! graph, forward and backward. Index arrays are int64 (the Python `Graph` keeps them so);
//! features float32 or float64 (the dtype of the first float argument picks the kernel).
//! Outputs are new arrays.

use nesy_core::gnn::{self, Csr, Reduce, SddmmOp, Weights};
use nesy_core::{Float, Par};
use numpy::{Element, PyArray1, PyArray2, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{by_dtype, empty, empty_aligned, slice, slice_mut, typed_array, zeros, Access};
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

/// Edge weights `(E)` (one per edge) or `(E, heads)` (one per edge and head); returns the
/// array and the number of heads.
fn edge_weight_array<'py, T: Element>(
    w: &Bound<'py, PyAny>,
    name: &'static str,
    dtype: &'static str,
) -> PyResult<(Bound<'py, PyArrayDyn<T>>, usize)> {
    let ndim: usize = w.getattr("ndim").and_then(|n| n.extract()).unwrap_or(1);
    let a = typed_array::<T>(w, name, if ndim == 2 { 2 } else { 1 }, dtype)?;
    let heads = if ndim == 2 { a.shape()[1] } else { 1 };
    Ok((a, heads))
}

/// `n_dst` from an `indptr` of `n_dst + 1` entries.
fn rows_of(indptr: &Bound<'_, PyArray1<i64>>) -> PyResult<usize> {
    indptr
        .len()
        .checked_sub(1)
        .ok_or_else(|| value_error("indptr: must hold n_dst + 1 >= 1 entries"))
}

#[allow(clippy::too_many_arguments)]
fn forward_typed<'py, T: Element + Float>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    reduce: Reduce,
    edge_weight: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
    simd: Option<&str>,
    dtype: &'static str,
) -> PyResult<AggOut<'py>> {
    let level = level(simd)?;
    let indptr = index_array(indptr, "indptr")?;
    let indices = index_array(indices, "indices")?;
    let x = typed_array::<T>(x, "x", 2, dtype)?;
    let w = edge_weight
        .filter(|w| !w.is_none())
        .map(|w| edge_weight_array::<T>(w, "edge_weight", dtype))
        .transpose()?;
    let (n_src, f) = (x.shape()[0], x.shape()[1]);
    let n_dst = rows_of(&indptr)?;
    let mut acc = Access::with_capacity(4);
    acc.add_one(&indptr, false, "indptr")?;
    acc.add_one(&indices, false, "indices")?;
    acc.add_one(&x, false, "x")?;
    if let Some((w, _)) = &w {
        acc.add_one(w, false, "edge_weight")?;
    }
    // The kernel writes every entry of both outputs (0 and -1 for a node without in-edges).
    // A new `out` is aligned: rows of a multiple of 64 bytes are then streamed to memory
    // (`gnn::aggregate`); a given one is written as it is.
    let out: Bound<'py, PyArrayDyn<T>> = match out.filter(|o| !o.is_none()) {
        Some(o) => {
            let o = typed_array::<T>(o, "out", 2, dtype)?;
            if o.shape() != [n_dst, f] {
                return Err(value_error(format!(
                    "out: expected shape ({n_dst}, {f}), got {}",
                    py_shape(o.shape())
                )));
            }
            o
        }
        None => empty_aligned(py, &[n_dst, f], dtype)?,
    };
    acc.add_one(&out, true, "out")?;
    acc.check()?;
    let extremum = matches!(reduce, Reduce::Max | Reduce::Min);
    let arg: Option<Bound<'py, PyArray2<i64>>> = if extremum {
        Some(empty(py, &[n_dst, f], "int64")?)
    } else {
        None
    };
    {
        // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
        let (ip, ix, xs) = unsafe { (slice(&indptr), slice(&indices), slice(&x)) };
        let ws = w.as_ref().map(|(w, heads)| Weights {
            w: unsafe { slice(w) },
            heads: *heads,
        });
        let os = unsafe { slice_mut(&out) };
        let args = arg.as_ref().map(|a| unsafe { slice_mut(a) });
        // The kernel checks the indices as it reads them (one pass over them saved).
        let g = Csr::with_lazy_indices(n_dst, n_src, ip, ix, "graph").map_err(to_py)?;
        run_kernel(py, g.nnz() * f.max(1), || {
            gnn::aggregate(Par::Rayon, level, g, xs, f, ws, reduce, os, args)
        })?;
    }
    Ok((out.into_any(), arg.map(|a| a.into_any())))
}

/// Aggregates `x (n_src, F)` over the in-edges of every destination of a CSR graph
/// (`indptr (n_dst + 1)`, `indices (E)` = sources) with `reduce` in sum/mean/max/min and
/// optional `edge_weight`: `(E)`, or `(E, heads)` where head `h` scales its own group of
/// `F / heads` columns. Returns `(out (n_dst, F), arg)`; `arg (n_dst, F)` holds the winning edge
/// of max/min (-1 for a node without in-edges) and is None for sum/mean. With `out` (an array of
/// x's dtype and shape `(n_dst, F)`, C-contiguous, writeable, overlapping no input) the result
/// is written there, every entry, and `out` itself is returned: no allocation per call.
#[pyfunction]
#[pyo3(signature = (indptr, indices, x, reduce="sum", edge_weight=None, simd=None, out=None))]
#[allow(clippy::too_many_arguments)]
pub fn gnn_aggregate<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    reduce: &str,
    edge_weight: Option<&Bound<'py, PyAny>>,
    simd: Option<&str>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<AggOut<'py>> {
    let reduce = Reduce::parse(reduce).map_err(to_py)?;
    by_dtype!(
        x,
        "x",
        forward_typed(py, indptr, indices, x, reduce, edge_weight, out, simd)
    )
}

fn gather_typed<'py, T: Element + Float>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    simd: Option<&str>,
    dtype: &'static str,
) -> PyResult<Bound<'py, PyAny>> {
    let level = level(simd)?;
    let indptr = index_array(indptr, "indptr")?;
    let indices = index_array(indices, "indices")?;
    let x = typed_array::<T>(x, "x", 2, dtype)?;
    let (n_src, f) = (x.shape()[0], x.shape()[1]);
    let n_dst = rows_of(&indptr)?;
    let mut acc = Access::with_capacity(3);
    acc.add_one(&indptr, false, "indptr")?;
    acc.add_one(&indices, false, "indices")?;
    acc.add_one(&x, false, "x")?;
    acc.check()?;
    // SAFETY: inputs covered by `acc`.
    let (ip, ix, xs) = unsafe { (slice(&indptr), slice(&indices), slice(&x)) };
    let g = Csr::with_lazy_indices(n_dst, n_src, ip, ix, "graph").map_err(to_py)?;
    let sums = run_kernel(py, g.nnz() * f.max(1), || {
        gnn::gather_sum(Par::Rayon, level, g, xs, f)
    })?;
    Ok(PyArray1::from_vec(py, sums).into_any())
}

/// Benchmark limit of the sum aggregation: reads every edge's source row with the forward
/// kernel's gather loop and nothing else (no output rows, no row walk); returns the column sums
/// `(F)` of `gnn_aggregate(..., "sum")`'s output.
#[pyfunction]
#[pyo3(signature = (indptr, indices, x, simd=None))]
pub fn gnn_gather_sum<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    simd: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    by_dtype!(x, "x", gather_typed(py, indptr, indices, x, simd))
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
        .map(|w| edge_weight_array::<T>(w, "edge_weight", dtype))
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
    let n_dst = rows_of(&idx[0])?;
    if grad.shape() != [n_dst, f] {
        return Err(value_error(format!(
            "grad_out: expected shape {}, got {}",
            py_shape(&[n_dst, f]),
            py_shape(grad.shape())
        )));
    }
    let mut acc = Access::with_capacity(9);
    for (a, n) in idx.iter().zip(names) {
        acc.add_one(a, false, n)?;
    }
    acc.add_one(&x, false, "x")?;
    acc.add_one(&grad, false, "grad_out")?;
    if let Some((w, _)) = &w {
        acc.add_one(w, false, "edge_weight")?;
    }
    if let Some(a) = &arg {
        acc.add_one(a, false, "arg")?;
    }
    acc.check()?;
    // The kernels write every entry of grad_x (every source row) and grad_w (every edge).
    let grad_x: Bound<'py, PyArray2<T>> = empty_aligned(py, &[n_src, f], dtype)?;
    let n_edges = idx[1].len();
    let grad_w: Option<Bound<'py, PyArrayDyn<T>>> = match (&w, weight_grad) {
        (_, false) => None,
        (Some((w, heads)), true) if w.ndim() == 2 => Some(empty(py, &[n_edges, *heads], dtype)?),
        (_, true) => Some(empty(py, &[n_edges], dtype)?),
    };
    {
        // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
        let s: Vec<&[i64]> = idx.iter().map(|a| unsafe { slice(a) }).collect();
        let (xs, gs) = unsafe { (slice(&x), slice(&grad)) };
        let ws = w.as_ref().map(|(w, heads)| Weights {
            w: unsafe { slice(w) },
            heads: *heads,
        });
        let args = arg.as_ref().map(|a| unsafe { slice(a) });
        let gx = unsafe { slice_mut(&grad_x) };
        let gw = grad_w.as_ref().map(|g| unsafe { slice_mut(g) });
        // The kernels check the indices they use (see `Csr`).
        let g = Csr::with_lazy_indices(n_dst, n_src, s[0], s[1], "graph").map_err(to_py)?;
        let gt = Csr::with_lazy_indices(n_src, n_dst, s[2], s[3], "graph (transposed)")
            .map_err(to_py)?;
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

/// Backward of `gnn_aggregate`: returns `(grad_x (n_src, F), grad_weight)` (`grad_weight`
/// shaped as `edge_weight`, `(E)` without weights, None unless `weight_grad`), from
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
    by_dtype!(
        x,
        "x",
        backward_typed(
            py,
            graph,
            x,
            grad_out,
            reduce,
            edge_weight,
            arg,
            weight_grad,
            simd
        )
    )
}

/// The int64 index arrays of a graph (and of its transpose), named as the arguments.
fn index_arrays<'py>(
    arrays: &[&Bound<'py, PyAny>],
    names: &[&'static str],
) -> PyResult<Vec<Bound<'py, PyArray1<i64>>>> {
    arrays
        .iter()
        .zip(names)
        .map(|(a, n)| index_array(a, n))
        .collect()
}

const GRAPH_NAMES: [&str; 5] = ["indptr", "indices", "t_indptr", "t_indices", "perm"];

#[allow(clippy::too_many_arguments)]
fn sddmm_typed<'py, T: Element + Float>(
    py: Python<'py>,
    graph: &[&Bound<'py, PyAny>],
    u: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    grad: Option<&Bound<'py, PyAny>>,
    op: SddmmOp,
    heads: usize,
    simd: Option<&str>,
    dtype: &'static str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let level = level(simd)?;
    let idx = index_arrays(graph, &GRAPH_NAMES[..graph.len()])?;
    let u = typed_array::<T>(u, "u", 2, dtype)?;
    let v = typed_array::<T>(v, "v", 2, dtype)?;
    let grad = grad
        .map(|g| typed_array::<T>(g, "grad", 2, dtype))
        .transpose()?;
    let (n_src, f) = (u.shape()[0], u.shape()[1]);
    let n_dst = rows_of(&idx[0])?;
    if v.shape() != [n_dst, f] {
        return Err(value_error(format!(
            "v: expected shape {} (destination nodes, the columns of u), got {}",
            py_shape(&[n_dst, f]),
            py_shape(v.shape())
        )));
    }
    let n_edges = idx[1].len();
    if let Some(g) = &grad {
        if g.shape() != [n_edges, heads] {
            return Err(value_error(format!(
                "grad: expected shape {}, got {}",
                py_shape(&[n_edges, heads]),
                py_shape(g.shape())
            )));
        }
    }
    let mut acc = Access::with_capacity(8);
    for (a, n) in idx.iter().zip(GRAPH_NAMES) {
        acc.add_one(a, false, n)?;
    }
    acc.add_one(&u, false, "u")?;
    acc.add_one(&v, false, "v")?;
    if let Some(g) = &grad {
        acc.add_one(g, false, "grad")?;
    }
    acc.check()?;
    // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
    let s: Vec<&[i64]> = idx.iter().map(|a| unsafe { slice(a) }).collect();
    let (us, vs) = unsafe { (slice(&u), slice(&v)) };
    let g = Csr::new(n_dst, n_src, s[0], s[1], "graph").map_err(to_py)?;
    let work = n_edges * f.max(1);
    match &grad {
        None => {
            let out: Bound<'py, PyArray2<T>> = zeros(py, &[n_edges, heads], dtype)?;
            let os = unsafe { slice_mut(&out) };
            run_kernel(py, work, || {
                gnn::sddmm(Par::Rayon, level, g, us, vs, f, heads, op, os)
            })?;
            Ok(vec![out.into_any()])
        }
        Some(grad) => {
            let gt = Csr::new(n_src, n_dst, s[2], s[3], "graph (transposed)").map_err(to_py)?;
            let gu: Bound<'py, PyArray2<T>> = zeros(py, &[n_src, f], dtype)?;
            let gv: Bound<'py, PyArray2<T>> = zeros(py, &[n_dst, f], dtype)?;
            let (gs, gus, gvs) = unsafe { (slice(grad), slice_mut(&gu), slice_mut(&gv)) };
            run_kernel(py, work, || {
                gnn::sddmm_backward(
                    Par::Rayon,
                    level,
                    g,
                    gt,
                    s[4],
                    us,
                    vs,
                    f,
                    heads,
                    op,
                    gs,
                    gus,
                    gvs,
                )
            })?;
            Ok(vec![gu.into_any(), gv.into_any()])
        }
    }
}

/// SDDMM: a score per edge and head, `(E, heads)` in CSR edge order, from `u (n_src, F)` (source
/// features) and `v (n_dst, F)`. `op="add"`: `F == heads`, `e[k, h] = u[s, h] + v[d, h]`;
/// `op="dot"`: `F = heads * F_h`, `e[k, h] = <u[s, h, :], v[d, h, :]>`.
#[pyfunction]
#[pyo3(signature = (indptr, indices, u, v, op="dot", heads=1, simd=None))]
#[allow(clippy::too_many_arguments)]
pub fn gnn_sddmm<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    u: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    op: &str,
    heads: usize,
    simd: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let op = SddmmOp::parse(op).map_err(to_py)?;
    let graph = [indptr, indices];
    let out = by_dtype!(u, "u", sddmm_typed(py, &graph, u, v, None, op, heads, simd))?;
    out.into_iter()
        .next()
        .ok_or_else(|| value_error("internal: sddmm returned no output"))
}

/// Backward of `gnn_sddmm`: `(grad_u, grad_v)` from `grad (E, heads)`, with the transposed
/// graph as in `gnn_aggregate_backward`.
#[pyfunction]
#[pyo3(signature = (indptr, indices, t_indptr, t_indices, perm, u, v, grad, op="dot", heads=1, simd=None))]
#[allow(clippy::too_many_arguments)]
pub fn gnn_sddmm_backward<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    t_indptr: &Bound<'py, PyAny>,
    t_indices: &Bound<'py, PyAny>,
    perm: &Bound<'py, PyAny>,
    u: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    op: &str,
    heads: usize,
    simd: Option<&str>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let op = SddmmOp::parse(op).map_err(to_py)?;
    let graph = [indptr, indices, t_indptr, t_indices, perm];
    let out = by_dtype!(
        u,
        "u",
        sddmm_typed(py, &graph, u, v, Some(grad), op, heads, simd)
    )?;
    match <[_; 2]>::try_from(out) {
        Ok([gu, gv]) => Ok((gu, gv)),
        Err(_) => Err(value_error(
            "internal: sddmm backward returned the wrong outputs",
        )),
    }
}

/// Edge softmax forward (`grad` None: returns alpha from `scores`) or backward (returns the
/// score gradient from `alpha` = `scores` and `grad`). Shapes `(E)` or `(E, heads)`.
fn softmax_typed<'py, T: Element + Float>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    scores: &Bound<'py, PyAny>,
    grad: Option<&Bound<'py, PyAny>>,
    simd: Option<&str>,
    dtype: &'static str,
) -> PyResult<Bound<'py, PyAny>> {
    let level = level(simd)?;
    let name = if grad.is_some() { "alpha" } else { "scores" };
    let idx = index_arrays(&[indptr, indices], &["indptr", "indices"])?;
    let (sc, heads) = edge_weight_array::<T>(scores, name, dtype)?;
    let grad = grad
        .map(|g| typed_array::<T>(g, "grad", sc.ndim(), dtype))
        .transpose()?;
    if let Some(g) = &grad {
        if g.shape() != sc.shape() {
            return Err(value_error(format!(
                "grad: expected shape {} (as {name}), got {}",
                py_shape(sc.shape()),
                py_shape(g.shape())
            )));
        }
    }
    let n_dst = rows_of(&idx[0])?;
    let mut acc = Access::with_capacity(4);
    acc.add_one(&idx[0], false, "indptr")?;
    acc.add_one(&idx[1], false, "indices")?;
    acc.add_one(&sc, false, name)?;
    if let Some(g) = &grad {
        acc.add_one(g, false, "grad")?;
    }
    acc.check()?;
    let out: Bound<'py, PyArrayDyn<T>> = zeros(py, sc.shape(), dtype)?;
    // SAFETY: inputs covered by `acc`; the output is a fresh array.
    let (ip, ix, ss) = unsafe { (slice(&idx[0]), slice(&idx[1]), slice(&sc)) };
    let os = unsafe { slice_mut(&out) };
    // Softmax needs only the row structure: sources are never indexed, nor checked.
    let g = Csr::with_lazy_indices(n_dst, usize::MAX, ip, ix, "graph").map_err(to_py)?;
    let work = ss.len() * 8;
    match &grad {
        None => run_kernel(py, work, || {
            gnn::edge_softmax(Par::Rayon, level, g, ss, heads, os)
        })?,
        Some(grad) => {
            let gs = unsafe { slice(grad) };
            run_kernel(py, work, || {
                gnn::edge_softmax_backward(Par::Rayon, level, g, ss, gs, heads, os)
            })?
        }
    }
    Ok(out.into_any())
}

/// Softmax of `scores (E)` or `(E, heads)` (CSR edge order) over the in-edges of every
/// destination.
#[pyfunction]
#[pyo3(signature = (indptr, indices, scores, simd=None))]
pub fn gnn_edge_softmax<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    scores: &Bound<'py, PyAny>,
    simd: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    by_dtype!(
        scores,
        "scores",
        softmax_typed(py, indptr, indices, scores, None, simd)
    )
}

/// Backward of `gnn_edge_softmax`: the score gradient from the forward output `alpha` and the
/// upstream gradient `grad` (both shaped as the scores).
#[pyfunction]
#[pyo3(signature = (indptr, indices, alpha, grad, simd=None))]
pub fn gnn_edge_softmax_backward<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    alpha: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    simd: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    by_dtype!(
        alpha,
        "alpha",
        softmax_typed(py, indptr, indices, alpha, Some(grad), simd)
    )
}

/// Six int64 arrays: `(indptr, order, indices, t_indptr, perm, t_indices)`.
type CsrOut<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// Sorts the edges `src (E) -> dst (E)` (int64, every id in `0..num_nodes`) into CSR by
/// destination and its transpose, both stable: returns `(indptr, order, indices, t_indptr,
/// perm, t_indices)` as `nesy_core::gnn::build` documents them.
#[pyfunction]
pub fn gnn_build_csr<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    dst: &Bound<'py, PyAny>,
    num_nodes: usize,
) -> PyResult<CsrOut<'py>> {
    let ids = index_arrays(&[src, dst], &["src", "dst"])?;
    if num_nodes > i64::MAX as usize {
        return Err(value_error(format!(
            "num_nodes: {num_nodes} nodes cannot be indexed by int64 ids"
        )));
    }
    let mut acc = Access::with_capacity(2);
    acc.add_one(&ids[0], false, "src")?;
    acc.add_one(&ids[1], false, "dst")?;
    acc.check()?;
    let (n1, e) = (num_nodes + 1, ids[0].len());
    let new = |len: usize| empty::<i64, _>(py, &[len], "int64");
    let out = (new(n1)?, new(e)?, new(e)?, new(n1)?, new(e)?, new(e)?);
    // SAFETY: inputs covered by `acc`; the outputs are fresh arrays, each borrowed once.
    let (s, d) = unsafe { (slice(&ids[0]), slice(&ids[1])) };
    let arrays = unsafe {
        gnn::CsrArrays {
            indptr: slice_mut(&out.0),
            order: slice_mut(&out.1),
            indices: slice_mut(&out.2),
            t_indptr: slice_mut(&out.3),
            perm: slice_mut(&out.4),
            t_indices: slice_mut(&out.5),
        }
    };
    // One pass of scattered writes per order: sequential, on the calling thread.
    run_kernel(py, 0, || gnn::build_csr(s, d, num_nodes, arrays))?;
    Ok(out)
}
