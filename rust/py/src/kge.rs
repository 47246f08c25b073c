//! Bindings of `nesy_core::kge`: knowledge-graph embedding scores, gradients, 1-vs-all scores,
//! filtered ranks and regularisers. Tables `ent (n_entities, d_e)` and `rel (n_relations, d_r)`
//! are float32 or float64 (the dtype of `ent` picks the kernel); triples and ids are int64.
//! Outputs are new arrays, except for training, which updates the tables and the optimizer state
//! in place.

use nesy_core::kge::loss::Loss;
use nesy_core::kge::sparse::SparseOpt;
use nesy_core::kge::{self, Config, Filter, Kind, Params, Regulariser, Sampler, Side, Tables};
use nesy_core::linalg::Gemm;
use nesy_core::{with_model, Float, Par};
use numpy::{Element, PyArray1, PyArray2, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{by_dtype, empty, slice, slice_mut, typed_array, zeros, Access};
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
    acc.add_one(&ent, false, "ent")?;
    acc.add_one(&rel, false, "rel")?;
    acc.add_one(&tr, false, "triples")?;
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
    acc.add_one(&ent, false, "ent")?;
    acc.add_one(&rel, false, "rel")?;
    acc.add_one(&tr, false, "triples")?;
    acc.add_one(&up, false, "upstream")?;
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
    acc.add_one(&ent, false, "ent")?;
    acc.add_one(&rel, false, "rel")?;
    acc.add_one(&fx, false, "entities")?;
    acc.add_one(&rl, false, "relations")?;
    acc.check()?;
    let (nq, n_ent, de, dr) = (
        fx.shape()[0],
        ent.shape()[0],
        ent.shape()[1],
        rel.shape()[1],
    );
    // Every score is written (the GEMM forms do not read the output).
    let out: Bound<'py, PyArray2<T>> = empty(py, &[nq, n_ent], dtype)?;
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
    acc.add_one(&ent, false, "ent")?;
    acc.add_one(&rel, false, "rel")?;
    acc.add_one(&tr, false, "triples")?;
    acc.add_one(&kn, false, "known")?;
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

/// `(optimistic, pessimistic)` ranks, one per query.
type RankPair<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

fn ranks_of_scores_typed<'py, T: Element + Float>(
    py: Python<'py>,
    scores: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
    known: &Bound<'py, PyAny>,
    side: Side,
    dtype: &'static str,
) -> PyResult<RankPair<'py>> {
    let sc = typed_array::<T>(scores, "scores", 2, dtype)?;
    let tr = int_array(triples, "triples", 2)?;
    let kn = int_array(known, "known", 2)?;
    let mut acc = Access::with_capacity(3);
    acc.add_one(&sc, false, "scores")?;
    acc.add_one(&tr, false, "triples")?;
    acc.add_one(&kn, false, "known")?;
    acc.check()?;
    let (n, n_ent) = (sc.shape()[0], sc.shape()[1]);
    if tr.shape()[0] != n {
        return Err(value_error(format!(
            "triples: expected {n} rows (one per score row), got {}",
            tr.shape()[0]
        )));
    }
    let opt = PyArray1::<i64>::zeros(py, n, false);
    let pess = PyArray1::<i64>::zeros(py, n, false);
    let simd = level(None)?;
    {
        // SAFETY: inputs covered by `acc`; outputs are fresh arrays, each taken once.
        let (ss, ts, ks) = unsafe { (slice(&sc), slice(&tr), slice(&kn)) };
        let (os, ps) = unsafe { (slice_mut(&opt), slice_mut(&pess)) };
        run_kernel(py, n * n_ent, || {
            // Relation ids of the filter need no upper bound here: no table is indexed.
            let filter = Filter::new(ks, n_ent, usize::MAX)?;
            kge::ranks_of_scores(Par::Rayon, simd, ss, n_ent, ts, side, &filter, os, ps)
        })?;
    }
    Ok((opt, pess))
}

/// Filtered ranks from given scores: `scores (n, n_entities)` row `i` scores every entity as
/// the answer of the `side` (`"head"` or `"tail"`) query of `triples[i]`, higher better;
/// `known (m, 3)` are filtered as in `kge_ranks`. Returns `(optimistic, pessimistic)` `(n,)`.
#[pyfunction]
pub fn kge_ranks_of_scores<'py>(
    py: Python<'py>,
    scores: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
    known: &Bound<'py, PyAny>,
    side: &str,
) -> PyResult<RankPair<'py>> {
    let side = match side {
        "head" => Side::Head,
        "tail" => Side::Tail,
        _ => {
            return Err(value_error(format!(
                "side: expected 'head' or 'tail', got {side:?}"
            )))
        }
    };
    by_dtype!(
        scores,
        "scores",
        ranks_of_scores_typed(py, scores, triples, known, side)
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
    acc.add_one(&x, false, "x")?;
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

/// Hyper-parameters of a training epoch as Python passes them.
#[derive(FromPyObject)]
pub struct TrainArgs {
    loss: String,
    margin: f64,
    gamma: f64,
    adversarial_temperature: f64,
    label_smoothing: f64,
    num_negatives: usize,
    sampler: String,
    shared_negatives: bool,
    batch_size: usize,
    optimizer: String,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    regulariser: Option<String>,
    regulariser_weight: f64,
    normalize_entities: bool,
    seed: u64,
}

impl TrainArgs {
    fn config(&self) -> PyResult<Config> {
        let loss = Loss::parse(
            &self.loss,
            self.margin,
            self.gamma,
            self.adversarial_temperature,
            self.label_smoothing,
        )
        .map_err(to_py)?;
        let sampler = match self.sampler.as_str() {
            "uniform" => Sampler::Uniform,
            "bernoulli" => Sampler::Bernoulli,
            other => {
                return Err(value_error(format!(
                    "sampler: expected 'uniform' or 'bernoulli', got {other:?}"
                )))
            }
        };
        let opt = SparseOpt::parse(
            &self.optimizer,
            self.lr,
            self.betas.0,
            self.betas.1,
            self.eps,
        )
        .map_err(to_py)?;
        let regulariser = match &self.regulariser {
            None => None,
            Some(name) => {
                let w = self.regulariser_weight;
                if !(w.is_finite() && w >= 0.0) {
                    return Err(value_error(format!(
                        "regulariser_weight: must be finite and >= 0, got {w}"
                    )));
                }
                Some((Regulariser::parse(name).map_err(to_py)?, w))
            }
        };
        Ok(Config {
            loss,
            n_neg: self.num_negatives,
            sampler,
            shared_negatives: self.shared_negatives,
            batch_size: self.batch_size,
            opt,
            regulariser,
            normalize_entities: self.normalize_entities,
            seed: self.seed,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn train_typed<'py, T: Element + Float + Gemm>(
    py: Python<'py>,
    kind: Kind,
    arrays: [&Bound<'py, PyAny>; 4],
    step: u64,
    triples: &Bound<'py, PyAny>,
    head_prob: &Bound<'py, PyAny>,
    epoch: u64,
    cfg: &Config,
    dtype: &'static str,
) -> PyResult<(f64, u64)> {
    let names = ["ent", "rel", "ent_state", "rel_state"];
    let ndims = [2, 2, 3, 3];
    let a: Vec<Bound<'py, PyArrayDyn<T>>> = arrays
        .iter()
        .zip(names)
        .zip(ndims)
        .map(|((x, n), d)| typed_array::<T>(x, n, d, dtype))
        .collect::<PyResult<_>>()?;
    let tr = int_array(triples, "triples", 2)?;
    let hp = head_prob
        .cast::<PyArray1<f64>>()
        .map_err(|_| type_error("head_prob: expected a 1-D float64 numpy array"))?
        .clone();
    let mut acc = Access::with_capacity(6);
    for (x, n) in a.iter().zip(names) {
        acc.add_one(x, true, n)?;
    }
    acc.add_one(&tr, false, "triples")?;
    acc.add_one(&hp, false, "head_prob")?;
    acc.check()?;
    let (d_e, d_r) = (a[0].shape()[1], a[1].shape()[1]);
    let k = cfg.opt.n_states();
    for (state, table, name) in [(&a[2], &a[0], "ent_state"), (&a[3], &a[1], "rel_state")] {
        let want = [k, table.shape()[0], table.shape()[1]];
        if state.shape() != want {
            return Err(value_error(format!(
                "{name}: expected shape {} ({k} optimizer state arrays shaped as the table), got {}",
                py_shape(&want),
                py_shape(state.shape())
            )));
        }
    }
    let work = tr.shape()[0] * cfg.n_neg.max(1) * d_e;
    // SAFETY: every array is covered by `acc`; each written array is taken once.
    let (ent, rel) = unsafe { (slice_mut(&a[0]), slice_mut(&a[1])) };
    let (ent_state, rel_state) = unsafe { (slice_mut(&a[2]), slice_mut(&a[3])) };
    let (ts, hs) = unsafe { (slice(&tr), slice(&hp)) };
    let level = level(None)?;
    with_model!(kind, m => {
        run_kernel(py, work.max(nesy_core::par::MIN_PARALLEL_WORK), || {
            let mut p = Params { ent, rel, d_e, d_r, ent_state, rel_state, step };
            let loss = kge::train_epoch(Par::Rayon, level, m, &mut p, ts, hs, epoch, cfg)?;
            Ok((loss, p.step))
        })
    })
}

/// One training epoch, updating `ent`, `rel` and the optimizer state arrays
/// (`(n_states, n, d)`: 1 for Adagrad, 2 for Adam) in place; returns `(mean batch loss, step)`.
/// `head_prob` holds per relation the Bernoulli sampler's probability of corrupting the head.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn kge_train_epoch<'py>(
    py: Python<'py>,
    model: &str,
    ent: &Bound<'py, PyAny>,
    rel: &Bound<'py, PyAny>,
    ent_state: &Bound<'py, PyAny>,
    rel_state: &Bound<'py, PyAny>,
    step: u64,
    triples: &Bound<'py, PyAny>,
    head_prob: &Bound<'py, PyAny>,
    epoch: u64,
    args: TrainArgs,
) -> PyResult<(f64, u64)> {
    let kind = Kind::parse(model).map_err(to_py)?;
    let cfg = args.config()?;
    let arrays = [ent, rel, ent_state, rel_state];
    by_dtype!(
        ent,
        "ent",
        train_typed(py, kind, arrays, step, triples, head_prob, epoch, &cfg)
    )
}

/// Per relation, the Bernoulli sampler's probability of corrupting the head,
/// `tph / (tph + hpt)`.
#[pyfunction]
pub fn kge_bernoulli_probs(triples: &Bound<'_, PyAny>, n_relations: usize) -> PyResult<Vec<f64>> {
    let tr = int_array(triples, "triples", 2)?;
    let mut acc = Access::with_capacity(1);
    acc.add_one(&tr, false, "triples")?;
    acc.check()?;
    // SAFETY: covered by `acc`.
    let ts = unsafe { slice(&tr) };
    if let Some((k, r)) = ts
        .chunks_exact(3)
        .map(|t| t[1])
        .enumerate()
        .find(|&(_, r)| r < 0 || r as usize >= n_relations)
    {
        return Err(pyo3::exceptions::PyIndexError::new_err(format!(
            "triples[{k}] (relation): index {r} is out of range for size {n_relations}"
        )));
    }
    kge::train::bernoulli_probs(ts, n_relations).map_err(to_py)
}
