//! Bindings of `nesy_core::kge`: knowledge-graph embedding scores, gradients, 1-vs-all scores,
//! filtered ranks and regularisers. Tables `ent (n_entities, d_e)` and `rel (n_relations, d_r)`
//! are float32 or float64 (the dtype of `ent` picks the kernel); triples and ids are int64.
//! Outputs are new arrays.

use nesy_core::kge::{self, Filter, Kind, Regulariser, Side, Tables};
use nesy_core::linalg::Gemm;
use nesy_core::{with_model, Float, Par};
use numpy::{Element, PyArray1, PyArray2, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{by_dtype, slice, slice_mut, typed_array, zeros, Access};
use crate::errors::{py_shape, to_py, type_error, value_error};
use crate::optim::level;
use crate::runtime::run_kernel;

/// An int64 array of `ndim` dimensions (`(n, 3)` triples or `(n,)` ids).
fn int_array<'py>(
    x: &Bound<'py, PyAny>,
    name: &'static str,
    ndim: usize,
) -> PyResult<Bound<'py, PyArrayDyn<i64>>> {
    let a = x
        .cast::<PyArrayDyn<i64>>()
        .map_err(|_| type_error(format!("{name}: expected an int64 numpy array")))?;
    let ok = a.ndim() == ndim && (ndim == 1 || a.shape()[1] == 3);
    if !ok {
        let want = if ndim == 1 { "(n,)" } else { "(n, 3)" };
        return Err(value_error(format!(
            "{name}: expected shape {want}, got {}",
            py_shape(a.shape())
        )));
    }
    Ok(a.clone())
}

/// The two tables, typed and 2-D.
type TablePair<'py, T> = (Bound<'py, PyArrayDyn<T>>, Bound<'py, PyArrayDyn<T>>);

fn tables_of<'py, T: Element>(
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    dtype: &'static str,
) -> PyResult<TablePair<'py, T>> {
    Ok((
        typed_array::<T>(ent, "ent", 2, dtype)?,
        typed_array::<T>(rel, "rel", 2, dtype)?,
    ))
}

fn parse_side(side: &str) -> PyResult<Side> {
    match side {
        "tail" => Ok(Side::Tail),
        "head" => Ok(Side::Head),
        other => Err(value_error(format!(
            "side: expected 'tail' or 'head', got {other:?}"
        ))),
    }
}

fn score_typed<'py, T: Element + Float>(
    py: Python<'py>,
    kind: Kind,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
    dtype: &'static str,
) -> PyResult<Bound<'py, PyAny>> {
    let (ent, rel) = tables_of::<T>(ent, rel, dtype)?;
    let tr = int_array(triples, "triples", 2)?;
    let mut acc = Access::with_capacity(3);
    acc.add(&ent, false, "ent", 0)?;
    acc.add(&rel, false, "rel", 0)?;
    acc.add(&tr, false, "triples", 0)?;
    acc.check()?;
    let n = tr.shape()[0];
    let out: Bound<'py, PyArray1<T>> = zeros(py, &[n], dtype)?;
    // SAFETY: inputs covered by `acc`; the output is a fresh array.
    let (es, rs, ts, os) = unsafe { (slice(&ent), slice(&rel), slice(&tr), slice_mut(&out)) };
    let (de, dr) = (ent.shape()[1], rel.shape()[1]);
    with_model!(kind, m => {
        let t = Tables::new(&m, es, de, rs, dr).map_err(to_py)?;
        run_kernel(py, n * de, || kge::score_triples(Par::Rayon, m, t, ts, os))?;
    });
    Ok(out.into_any())
}

/// Scores of `triples (n, 3)` (head, relation, tail) under `model`; higher is more plausible.
#[pyfunction]
pub fn kge_score<'py>(
    py: Python<'py>,
    model: &str,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = Kind::parse(model).map_err(to_py)?;
    by_dtype!(ent, "ent", score_typed(py, kind, ent, rel, triples))
}

type Grads<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

fn grad_typed<'py, T: Element + Float>(
    py: Python<'py>,
    kind: Kind,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
    upstream: &Bound<'py, PyAny>,
    dtype: &'static str,
) -> PyResult<Grads<'py>> {
    let (ent, rel) = tables_of::<T>(ent, rel, dtype)?;
    let tr = int_array(triples, "triples", 2)?;
    let up = typed_array::<T>(upstream, "upstream", 1, dtype)?;
    let n = tr.shape()[0];
    if up.shape()[0] != n {
        return Err(value_error(format!(
            "upstream: expected shape ({n},), got {}",
            py_shape(up.shape())
        )));
    }
    let mut acc = Access::with_capacity(4);
    acc.add(&ent, false, "ent", 0)?;
    acc.add(&rel, false, "rel", 0)?;
    acc.add(&tr, false, "triples", 0)?;
    acc.add(&up, false, "upstream", 0)?;
    acc.check()?;
    let (de, dr) = (ent.shape()[1], rel.shape()[1]);
    let gh: Bound<'py, PyArray2<T>> = zeros(py, &[n, de], dtype)?;
    let gr: Bound<'py, PyArray2<T>> = zeros(py, &[n, dr], dtype)?;
    let gt: Bound<'py, PyArray2<T>> = zeros(py, &[n, de], dtype)?;
    {
        // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
        let (es, rs, ts, us) = unsafe { (slice(&ent), slice(&rel), slice(&tr), slice(&up)) };
        let (a, b, c) = unsafe { (slice_mut(&gh), slice_mut(&gr), slice_mut(&gt)) };
        with_model!(kind, m => {
            let t = Tables::new(&m, es, de, rs, dr).map_err(to_py)?;
            run_kernel(py, n * de * 2, || {
                kge::score_triples_grad(Par::Rayon, m, t, ts, us, a, b, c)
            })?;
        });
    }
    Ok((gh.into_any(), gr.into_any(), gt.into_any()))
}

/// Row gradients `(grad_head (n, d_e), grad_rel (n, d_r), grad_tail (n, d_e))` of
/// `sum(upstream * score(triples))`, one row per triple.
#[pyfunction]
pub fn kge_score_grad<'py>(
    py: Python<'py>,
    model: &str,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
    upstream: &Bound<'py, PyAny>,
) -> PyResult<Grads<'py>> {
    let kind = Kind::parse(model).map_err(to_py)?;
    by_dtype!(
        ent,
        "ent",
        grad_typed(py, kind, ent, rel, triples, upstream)
    )
}

#[allow(clippy::too_many_arguments)]
fn score_all_typed<'py, T: Element + Float + Gemm>(
    py: Python<'py>,
    kind: Kind,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    entities: &Bound<'py, PyAny>,
    relations: &Bound<'py, PyAny>,
    side: Side,
    simd: Option<&str>,
    dtype: &'static str,
) -> PyResult<Bound<'py, PyAny>> {
    let level = level(simd)?;
    let (ent, rel) = tables_of::<T>(ent, rel, dtype)?;
    let fx = int_array(entities, "entities", 1)?;
    let rl = int_array(relations, "relations", 1)?;
    let mut acc = Access::with_capacity(4);
    acc.add(&ent, false, "ent", 0)?;
    acc.add(&rel, false, "rel", 0)?;
    acc.add(&fx, false, "entities", 0)?;
    acc.add(&rl, false, "relations", 0)?;
    acc.check()?;
    let (nq, n_ent, de, dr) = (
        fx.shape()[0],
        ent.shape()[0],
        ent.shape()[1],
        rel.shape()[1],
    );
    let out: Bound<'py, PyArray2<T>> = zeros(py, &[nq, n_ent], dtype)?;
    {
        // SAFETY: inputs covered by `acc`; the output is a fresh array.
        let (es, rs, fs, ls) = unsafe { (slice(&ent), slice(&rel), slice(&fx), slice(&rl)) };
        let os = unsafe { slice_mut(&out) };
        with_model!(kind, m => {
            let t = Tables::new(&m, es, de, rs, dr).map_err(to_py)?;
            run_kernel(py, nq * n_ent * de, || {
                kge::score_all(Par::Rayon, level, m, t, fs, ls, side, os)
            })?;
        });
    }
    Ok(out.into_any())
}

/// 1-vs-all scores `(n_queries, n_entities)`: for `side="tail"`, row `i` scores
/// `(entities[i], relations[i], e)` for every entity `e`; for `side="head"`,
/// `(e, relations[i], entities[i])`.
#[pyfunction]
#[pyo3(signature = (model, ent, rel, entities, relations, side="tail", simd=None))]
#[allow(clippy::too_many_arguments)]
pub fn kge_score_all<'py>(
    py: Python<'py>,
    model: &str,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    entities: &Bound<'py, PyAny>,
    relations: &Bound<'py, PyAny>,
    side: &str,
    simd: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = Kind::parse(model).map_err(to_py)?;
    let side = parse_side(side)?;
    by_dtype!(
        ent,
        "ent",
        score_all_typed(py, kind, ent, rel, entities, relations, side, simd)
    )
}

type Ranks<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

#[allow(clippy::too_many_arguments)]
fn ranks_typed<'py, T: Element + Float + Gemm>(
    py: Python<'py>,
    kind: Kind,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
    known: &Bound<'py, PyAny>,
    simd: Option<&str>,
    dtype: &'static str,
) -> PyResult<Ranks<'py>> {
    let level = level(simd)?;
    let (ent, rel) = tables_of::<T>(ent, rel, dtype)?;
    let tr = int_array(triples, "triples", 2)?;
    let kn = int_array(known, "known", 2)?;
    let mut acc = Access::with_capacity(4);
    acc.add(&ent, false, "ent", 0)?;
    acc.add(&rel, false, "rel", 0)?;
    acc.add(&tr, false, "triples", 0)?;
    acc.add(&kn, false, "known", 0)?;
    acc.check()?;
    let (n, n_ent, de, dr) = (
        tr.shape()[0],
        ent.shape()[0],
        ent.shape()[1],
        rel.shape()[1],
    );
    let opt: Bound<'py, PyArray2<i64>> = zeros(py, &[n, 2], "int64")?;
    let pess: Bound<'py, PyArray2<i64>> = zeros(py, &[n, 2], "int64")?;
    {
        // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
        let (es, rs, ts, ks) = unsafe { (slice(&ent), slice(&rel), slice(&tr), slice(&kn)) };
        let (os, ps) = unsafe { (slice_mut(&opt), slice_mut(&pess)) };
        with_model!(kind, m => {
            let t = Tables::new(&m, es, de, rs, dr).map_err(to_py)?;
            run_kernel(py, 2 * n * n_ent * de, || {
                let filter = Filter::new(ks, t.n_ent, t.n_rel)?;
                kge::filtered_ranks(Par::Rayon, level, m, t, ts, &filter, os, ps)
            })?;
        });
    }
    Ok((opt.into_any(), pess.into_any()))
}

/// Filtered ranks of `triples (n, 3)` against every entity, filtering the true triples in
/// `known (m, 3)`: `(optimistic, pessimistic)`, each `(n, 2)` int64 with column 0 the head
/// query `(?, r, t)` and column 1 the tail query `(h, r, ?)`.
#[pyfunction]
#[pyo3(signature = (model, ent, rel, triples, known, simd=None))]
#[allow(clippy::too_many_arguments)]
pub fn kge_ranks<'py>(
    py: Python<'py>,
    model: &str,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
    known: &Bound<'py, PyAny>,
    simd: Option<&str>,
) -> PyResult<Ranks<'py>> {
    let kind = Kind::parse(model).map_err(to_py)?;
    by_dtype!(
        ent,
        "ent",
        ranks_typed(py, kind, ent, rel, triples, known, simd)
    )
}

fn regularise_typed<'py, T: Element + Float>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kind: Regulariser,
    weight: f64,
    complex: bool,
    dtype: &'static str,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    let x = typed_array::<T>(x, "x", 2, dtype)?;
    let mut acc = Access::with_capacity(1);
    acc.add(&x, false, "x", 0)?;
    acc.check()?;
    let d = x.shape()[1];
    let grad: Bound<'py, PyArrayDyn<T>> = zeros(py, x.shape(), dtype)?;
    // SAFETY: the input is covered by `acc`; the output is a fresh array.
    let (xs, gs) = unsafe { (slice(&x), slice_mut(&grad)) };
    let value = run_kernel(py, xs.len(), || {
        kge::regularise(kind, weight, xs, d, complex, gs)
    })?;
    Ok((value, grad.into_any()))
}

/// `(value, grad)` of the L2 (`weight * sum x^2`) or N3 (`weight * sum |x_j|^3`, complex
/// moduli with `complex=True`) penalty of the rows `x (n, d)`.
#[pyfunction]
#[pyo3(signature = (x, kind="l2", weight=1.0, complex=false))]
pub fn kge_regularise<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kind: &str,
    weight: f64,
    complex: bool,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    let kind = Regulariser::parse(kind).map_err(to_py)?;
    by_dtype!(x, "x", regularise_typed(py, x, kind, weight, complex))
}
