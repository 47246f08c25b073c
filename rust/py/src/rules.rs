//! Bindings of `nesy_core::rules`: a knowledge graph indexed for rules (`RuleGraph`), exact
//! rule metrics, the exact and sampling miners, rule application, filtered ranks and
//! explanations. Rules cross as int64 rows `(m, 11)` (see `nesy_core::rules::rule`).

use std::sync::Arc;

use nesy_core::kge::rank::Filter;
use nesy_core::rules::apply::{Aggregation, Applier};
use nesy_core::rules::mine::{mine_exact, sample_rules, MineOptions, SampleOptions};
use nesy_core::rules::{all_length2, parse_rows, rule_metrics, Index, Rule, RuleMetrics, ROW};
use nesy_core::Par;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{py_shape, type_error, value_error};
use crate::runtime::run_kernel;

/// A knowledge graph indexed for rules: neighbours per relation and direction (CSR) and every
/// entity's edges over all relations. Immutable; build once, use for mining and application.
#[pyclass(frozen, module = "nesy._core")]
pub struct RuleGraph {
    index: Arc<Index>,
}

#[pymethods]
impl RuleGraph {
    /// From `triples (n, 3)` int64 `(head, relation, tail)`.
    #[new]
    fn new(
        py: Python<'_>,
        triples: &Bound<'_, PyAny>,
        n_entities: usize,
        n_relations: usize,
    ) -> PyResult<RuleGraph> {
        let t = int_table(triples, "triples", 3)?;
        let t = t
            .as_slice()
            .map_err(|_| value_error("triples: must be C-contiguous"))?;
        let index = run_kernel(py, 0, || Index::new(t, n_entities, n_relations))?;
        Ok(RuleGraph {
            index: Arc::new(index),
        })
    }

    #[getter]
    fn n_entities(&self) -> usize {
        self.index.n_ent
    }

    #[getter]
    fn n_relations(&self) -> usize {
        self.index.n_rel
    }

    /// Bytes held by the index.
    #[getter]
    fn nbytes(&self) -> usize {
        self.index.bytes()
    }
}

fn int_table<'py>(
    x: &Bound<'py, PyAny>,
    name: &str,
    cols: usize,
) -> PyResult<PyReadonlyArray2<'py, i64>> {
    let a = x
        .extract::<PyReadonlyArray2<'py, i64>>()
        .map_err(|_| type_error(format!("{name}: expected a 2-d int64 numpy array")))?;
    if a.shape()[1] != cols {
        return Err(value_error(format!(
            "{name}: expected shape (n, {cols}), got {}",
            py_shape(a.shape())
        )));
    }
    if !a.is_c_contiguous() {
        return Err(value_error(format!("{name}: must be C-contiguous")));
    }
    Ok(a)
}

fn parse(graph: &RuleGraph, rules: &Bound<'_, PyAny>) -> PyResult<Vec<Rule>> {
    let r = int_table(rules, "rules", ROW)?;
    let rows = r
        .as_slice()
        .map_err(|_| value_error("rules: must be C-contiguous"))?;
    parse_rows(rows, graph.index.n_ent, graph.index.n_rel).map_err(crate::errors::to_py)
}

fn heads_of(graph: &RuleGraph, heads: Option<Vec<i64>>) -> PyResult<Vec<u32>> {
    let n_rel = graph.index.n_rel;
    match heads {
        None => Ok((0..n_rel as u32).collect()),
        Some(h) => h
            .iter()
            .enumerate()
            .map(|(k, &r)| {
                if r < 0 || r as usize >= n_rel {
                    Err(pyo3::exceptions::PyIndexError::new_err(format!(
                        "heads[{k}]: index {r} is out of range for size {n_rel}"
                    )))
                } else {
                    Ok(r as u32)
                }
            })
            .collect(),
    }
}

fn rows_array<'py>(py: Python<'py>, rules: &[Rule]) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let flat: Vec<i64> = rules.iter().flat_map(|r| r.to_row()).collect();
    let a = Array2::from_shape_vec((rules.len(), ROW), flat)
        .map_err(|e| value_error(format!("rules: {e}")))?;
    Ok(a.into_pyarray(py))
}

/// Field readers of [`RuleMetrics`].
type Count = fn(&RuleMetrics) -> u64;
type Ratio = fn(&RuleMetrics) -> f64;

fn metrics_dict<'py>(py: Python<'py>, metrics: &[RuleMetrics]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let ints: [(&str, Count); 4] = [
        ("support", |m| m.support),
        ("body_pairs", |m| m.body_pairs),
        ("pca_body_pairs", |m| m.pca_body_pairs),
        ("head_facts", |m| m.head_facts),
    ];
    for (name, f) in ints {
        let v: Vec<i64> = metrics.iter().map(|m| f(m) as i64).collect();
        d.set_item(name, PyArray1::from_vec(py, v))?;
    }
    let floats: [(&str, Ratio); 3] = [
        ("head_coverage", |m| m.head_coverage),
        ("std_confidence", |m| m.std_confidence),
        ("pca_confidence", |m| m.pca_confidence),
    ];
    for (name, f) in floats {
        let v: Vec<f64> = metrics.iter().map(f).collect();
        d.set_item(name, PyArray1::from_vec(py, v))?;
    }
    Ok(d)
}

/// Exact metrics of `rules (m, 11)`: a dict of arrays `support`, `body_pairs`,
/// `pca_body_pairs`, `head_facts` (int64), `head_coverage`, `std_confidence`,
/// `pca_confidence` (float64).
#[pyfunction]
pub fn rules_metrics<'py>(
    py: Python<'py>,
    graph: &RuleGraph,
    rules: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let parsed = parse(graph, rules)?;
    let index = &graph.index;
    let work = parsed.len() * index.n_ent * 4;
    let m = run_kernel(py, work, || Ok(rule_metrics(Par::Rayon, index, &parsed)))?;
    metrics_dict(py, &m)
}

/// Every closed-path rule of length 2 with its metrics, each body walked once for all heads:
/// `(rules (n_rel * (2 n_rel)^2, 11), metrics dict)`, ordered by head, then first atom, then
/// second atom (atom code `2 * relation + inverse`).
#[pyfunction]
pub fn rules_length2<'py>(
    py: Python<'py>,
    graph: &RuleGraph,
) -> PyResult<(Bound<'py, PyArray2<i64>>, Bound<'py, PyDict>)> {
    let index = &graph.index;
    let all = run_kernel(py, usize::MAX, || all_length2(Par::Rayon, index))?;
    let n = all.support.len();
    // Rows straight from the order (head, a1, a2), without intermediate rule structs.
    let codes = 2 * index.n_rel as i64;
    let mut flat = Vec::with_capacity(n * ROW);
    for k in 0..n as i64 {
        let (h, a, b) = (k / (codes * codes), (k / codes) % codes, k % codes);
        flat.extend_from_slice(&[0, h, 0, -1, -1, a / 2, a % 2, b / 2, b % 2, -1, 0]);
    }
    let rows = Array2::from_shape_vec((n, ROW), flat)
        .map_err(|e| value_error(format!("rules: {e}")))?
        .into_pyarray(py);
    let d = PyDict::new(py);
    let ratio = |a: &[u64], b: &[u64]| -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| if y == 0 { 0.0 } else { x as f64 / y as f64 })
            .collect()
    };
    d.set_item(
        "head_coverage",
        PyArray1::from_vec(py, ratio(&all.support, &all.head_facts)),
    )?;
    d.set_item(
        "std_confidence",
        PyArray1::from_vec(py, ratio(&all.support, &all.body_pairs)),
    )?;
    d.set_item(
        "pca_confidence",
        PyArray1::from_vec(py, ratio(&all.support, &all.pca_body_pairs)),
    )?;
    for (name, v) in [
        ("support", all.support),
        ("body_pairs", all.body_pairs),
        ("pca_body_pairs", all.pca_body_pairs),
        ("head_facts", all.head_facts),
    ] {
        let v: Vec<i64> = v.into_iter().map(|x| x as i64).collect();
        d.set_item(name, PyArray1::from_vec(py, v))?;
    }
    Ok((rows, d))
}

/// Every rule above the thresholds with a head in `heads` (default: all relations). Returns
/// `(rules (m, 11), metrics dict, stats dict)`; stats: `candidates`, `measured`,
/// `peak_table_bytes`.
#[pyfunction]
#[pyo3(signature = (graph, heads, max_length, max_length_acyclic, min_support, min_head_coverage, min_confidence, pca))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn rules_mine_exact<'py>(
    py: Python<'py>,
    graph: &RuleGraph,
    heads: Option<Vec<i64>>,
    max_length: usize,
    max_length_acyclic: usize,
    min_support: u64,
    min_head_coverage: f64,
    min_confidence: f64,
    pca: bool,
) -> PyResult<(
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyDict>,
    Bound<'py, PyDict>,
)> {
    let heads = heads_of(graph, heads)?;
    let opts = MineOptions {
        max_length,
        max_length_acyclic,
        min_support,
        min_head_coverage,
        min_confidence,
        pca,
    };
    let index = &graph.index;
    let mined = run_kernel(py, usize::MAX, || {
        mine_exact(Par::Rayon, index, &heads, &opts)
    })?;
    let stats = PyDict::new(py);
    stats.set_item("candidates", mined.candidates)?;
    stats.set_item("measured", mined.measured)?;
    stats.set_item("peak_table_bytes", mined.peak_table_bytes)?;
    Ok((
        rows_array(py, &mined.rules)?,
        metrics_dict(py, &mined.metrics)?,
        stats,
    ))
}

/// Candidate rules `(m, 11)` from batch `batch` of random walks (`paths` per head relation).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn rules_sample<'py>(
    py: Python<'py>,
    graph: &RuleGraph,
    heads: Option<Vec<i64>>,
    batch: u64,
    max_length: usize,
    max_length_acyclic: usize,
    paths: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let heads = heads_of(graph, heads)?;
    let opts = SampleOptions {
        max_length,
        max_length_acyclic,
        paths,
        seed,
    };
    let index = &graph.index;
    let work = heads.len().saturating_mul(paths).saturating_mul(64);
    let rules = run_kernel(py, work, || {
        sample_rules(Par::Rayon, index, &heads, batch, &opts)
    })?;
    rows_array(py, &rules)
}

fn parse_aggregation(name: &str) -> PyResult<Aggregation> {
    match name {
        "maxplus" => Ok(Aggregation::MaxPlus),
        "max_noisy_or" => Ok(Aggregation::MaxNoisyOr),
        "noisy_or" => Ok(Aggregation::NoisyOr),
        _ => Err(value_error(format!(
            "aggregation: expected 'maxplus', 'max_noisy_or' or 'noisy_or', got {name:?}"
        ))),
    }
}

fn confidences<'py>(c: &Bound<'py, PyAny>) -> PyResult<Vec<f64>> {
    c.extract::<numpy::PyReadonlyArray1<'py, f64>>()
        .map_err(|_| type_error("confidence: expected a 1-d float64 numpy array"))
        .map(|a| a.as_array().to_vec())
}

/// Candidates of each query `queries (n, 2)` `(entity, relation)`: tail queries, or head
/// queries when `inverse`; `k > 0` keeps the best `k` (ties at the cut included). Returns
/// `(offsets (n + 1,), candidates, level, max, noisy_or)`: query `i` owns
/// `offsets[i]..offsets[i + 1]`, best first.
#[pyfunction]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn rules_predict<'py>(
    py: Python<'py>,
    graph: &RuleGraph,
    rules: &Bound<'py, PyAny>,
    confidence: &Bound<'py, PyAny>,
    queries: &Bound<'py, PyAny>,
    inverse: bool,
    aggregation: &str,
    k: usize,
    exclude_query: bool,
) -> PyResult<(
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
)> {
    let parsed = parse(graph, rules)?;
    let conf = confidences(confidence)?;
    let agg = parse_aggregation(aggregation)?;
    let q = int_table(queries, "queries", 2)?;
    let qs: Vec<[i64; 2]> = q
        .as_slice()
        .map_err(|_| value_error("queries: must be C-contiguous"))?
        .chunks_exact(2)
        .map(|c| [c[0], c[1]])
        .collect();
    let index = &graph.index;
    let work = qs.len().saturating_mul(parsed.len()).saturating_mul(16);
    let ranked = run_kernel(py, work, || {
        let app = Applier::new(index, &parsed, &conf, exclude_query)?;
        app.predict(Par::Rayon, &qs, inverse, agg, k)
    })?;
    let mut offsets = vec![0i64];
    let (mut cands, mut level, mut max, mut noisy) = (vec![], vec![], vec![], vec![]);
    for r in &ranked {
        cands.extend(r.candidates.iter().map(|&c| c as i64));
        level.extend(r.level.iter().map(|&l| l as i64));
        max.extend_from_slice(&r.max);
        noisy.extend_from_slice(&r.noisy_or);
        offsets.push(cands.len() as i64);
    }
    Ok((
        PyArray1::from_vec(py, offsets),
        PyArray1::from_vec(py, cands),
        PyArray1::from_vec(py, level),
        PyArray1::from_vec(py, max),
        PyArray1::from_vec(py, noisy),
    ))
}

/// Filtered ranks of `triples (n, 3)` by rule application, filtering `known (m, 3)`: returns
/// `(optimistic, pessimistic, widest)`, the ranks `(n, 2)` int64 (column 0 head queries,
/// column 1 tail queries) and the most candidates one query had.
#[pyfunction]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn rules_ranks<'py>(
    py: Python<'py>,
    graph: &RuleGraph,
    rules: &Bound<'py, PyAny>,
    confidence: &Bound<'py, PyAny>,
    triples: &Bound<'py, PyAny>,
    known: &Bound<'py, PyAny>,
    aggregation: &str,
    exclude_query: bool,
) -> PyResult<(Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<i64>>, usize)> {
    let parsed = parse(graph, rules)?;
    let conf = confidences(confidence)?;
    let agg = parse_aggregation(aggregation)?;
    let t = int_table(triples, "triples", 3)?;
    let k = int_table(known, "known", 3)?;
    let ts = t
        .as_slice()
        .map_err(|_| value_error("triples: must be C-contiguous"))?;
    let ks = k
        .as_slice()
        .map_err(|_| value_error("known: must be C-contiguous"))?;
    let n = ts.len() / 3;
    let index = &graph.index;
    let work = n.saturating_mul(parsed.len()).saturating_mul(16);
    let (opt, pess, widest) = run_kernel(py, work, || {
        let filter = Filter::new(ks, index.n_ent, index.n_rel)?;
        let app = Applier::new(index, &parsed, &conf, exclude_query)?;
        let (mut opt, mut pess) = (vec![0i64; 2 * n], vec![0i64; 2 * n]);
        let widest = app.filtered_ranks(Par::Rayon, ts, &filter, agg, &mut opt, &mut pess)?;
        Ok((opt, pess, widest))
    })?;
    let shape = |v: Vec<i64>| {
        Array2::from_shape_vec((n, 2), v)
            .map(|a| a.into_pyarray(py))
            .map_err(|e| value_error(format!("ranks: {e}")))
    };
    Ok((shape(opt)?, shape(pess)?, widest))
}

/// Why `candidate` answers the query `(entity, relation, ?)` (or `(?, relation, entity)` when
/// `inverse`): a list of `(rule index, confidence, start, atoms, paths)`, highest confidence
/// first; `atoms` are codes `2 * relation + inverse` walked from `start`, `paths` up to
/// `limit` groundings, each the entities visited.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn rules_explain<'py>(
    py: Python<'py>,
    graph: &RuleGraph,
    rules: &Bound<'py, PyAny>,
    confidence: &Bound<'py, PyAny>,
    entity: i64,
    relation: i64,
    inverse: bool,
    candidate: i64,
    limit: usize,
    exclude_query: bool,
) -> PyResult<Bound<'py, PyList>> {
    let parsed = parse(graph, rules)?;
    let conf = confidences(confidence)?;
    let index = &graph.index;
    let found = run_kernel(py, 0, || {
        let app = Applier::new(index, &parsed, &conf, exclude_query)?;
        app.explain(entity, relation, inverse, candidate, limit)
    })?;
    let out = PyList::empty(py);
    for e in found {
        let atoms: Vec<u32> = e.atoms.iter().map(|a| a.code()).collect();
        out.append((e.rule, e.confidence, e.start, atoms, e.paths))?;
    }
    Ok(out)
}
