//! Bindings of `nesy_core::rules`: exact metrics of closed-path rules over a knowledge graph.

use nesy_core::rules::{closed_path_metrics, Atom, Index, PathRule, RuleMetrics};
use nesy_core::Par;
use numpy::{PyArray1, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{slice, Access};
use crate::errors::{py_shape, type_error, value_error};
use crate::runtime::run_kernel;

/// Field readers of [`RuleMetrics`].
type Count = fn(&RuleMetrics) -> u64;
type Ratio = fn(&RuleMetrics) -> f64;

fn int_table<'py>(
    x: &Bound<'py, PyAny>,
    name: &'static str,
    cols: usize,
) -> PyResult<Bound<'py, PyArrayDyn<i64>>> {
    let a = x
        .cast::<PyArrayDyn<i64>>()
        .map_err(|_| type_error(format!("{name}: expected an int64 numpy array")))?;
    if a.ndim() != 2 || a.shape()[1] != cols {
        return Err(value_error(format!(
            "{name}: expected shape (n, {cols}), got {}",
            py_shape(a.shape())
        )));
    }
    Ok(a.clone())
}

/// Metrics of closed-path rules over `triples (n, 3)`: `rules (m, 5)` int64 rows
/// `(head, r1, inverse1, r2, inverse2)`, `r2 = -1` for a body of length 1. Returns a dict of
/// arrays: `support`, `body_pairs`, `pca_body_pairs`, `head_facts` (int64) and `head_coverage`,
/// `std_confidence`, `pca_confidence` (float64).
#[pyfunction]
pub fn rules_path_metrics<'py>(
    py: Python<'py>,
    triples: &Bound<'py, PyAny>,
    n_entities: usize,
    n_relations: usize,
    rules: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let tr = int_table(triples, "triples", 3)?;
    let rl = int_table(rules, "rules", 5)?;
    let mut acc = Access::with_capacity(2);
    acc.add(&tr, false, "triples", 0)?;
    acc.add(&rl, false, "rules", 0)?;
    acc.check()?;
    // SAFETY: both covered by `acc`; nothing is written.
    let (ts, rs) = unsafe { (slice(&tr), slice(&rl)) };
    let mut parsed = Vec::with_capacity(rs.len() / 5);
    for (k, r) in rs.chunks_exact(5).enumerate() {
        let rel = |v: i64, what: &str| -> PyResult<usize> {
            usize::try_from(v).map_err(|_| {
                pyo3::exceptions::PyIndexError::new_err(format!(
                    "rules[{k}] ({what}): index {v} is out of range for size {n_relations}"
                ))
            })
        };
        let mut body = vec![Atom {
            rel: rel(r[1], "r1")?,
            inverse: r[2] != 0,
        }];
        if r[3] >= 0 {
            body.push(Atom {
                rel: rel(r[3], "r2")?,
                inverse: r[4] != 0,
            });
        }
        parsed.push(PathRule {
            head: rel(r[0], "head")?,
            body,
        });
    }
    let work = parsed.len() * n_entities * 16;
    let metrics = run_kernel(py, work, || {
        let index = Index::new(ts, n_entities, n_relations)?;
        closed_path_metrics(Par::Rayon, &index, &parsed)
    })?;
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
