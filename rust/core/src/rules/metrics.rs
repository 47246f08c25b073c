//! Exact metrics of closed-path rules, as AMIE 3 (Lajus et al. 2020) defines them, for a head
//! `h(X, Y)` and a body path from `X` to `Y`:
//! - support: distinct pairs `(x, y)` with the body true and `h(x, y)` a fact;
//! - head coverage: support / facts of `h`;
//! - standard confidence: support / pairs with the body true;
//! - PCA confidence: support / pairs with the body true whose `x` has some `h(x, y')` fact.
//!
//! Counting is exact and integer; rules run in parallel, each on its own, so the results do not
//! depend on the thread count.

use super::Index;
use crate::error::{Error, Result};
use crate::par::Par;

/// One body atom: a relation, read forwards (`r(Z_{i-1}, Z_i)`) or inverted (`r(Z_i, Z_{i-1})`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Atom {
    pub rel: usize,
    pub inverse: bool,
}

/// `head(X, Y) <- body[0](X, Z_1), ..., body[k-1](Z_{k-1}, Y)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    pub head: usize,
    pub body: Vec<Atom>,
}

/// The counts and ratios of one rule.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RuleMetrics {
    pub support: u64,
    pub body_pairs: u64,
    pub pca_body_pairs: u64,
    pub head_facts: u64,
    pub head_coverage: f64,
    pub std_confidence: f64,
    pub pca_confidence: f64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Metrics of every rule (body length 1 or 2) over the index.
pub fn closed_path_metrics(
    par: Par,
    index: &Index,
    rules: &[PathRule],
) -> Result<Vec<RuleMetrics>> {
    for (k, rule) in rules.iter().enumerate() {
        if rule.head >= index.n_rel {
            return Err(Error::Index {
                arg: format!("rules[{k}] (head)"),
                index: rule.head as i64,
                size: index.n_rel,
            });
        }
        if !(1..=2).contains(&rule.body.len()) {
            return Err(Error::Value(format!(
                "rules[{k}]: closed-path bodies of length 1 or 2 are supported, got {}",
                rule.body.len()
            )));
        }
        if let Some(a) = rule.body.iter().find(|a| a.rel >= index.n_rel) {
            return Err(Error::Index {
                arg: format!("rules[{k}] (body)"),
                index: a.rel as i64,
                size: index.n_rel,
            });
        }
    }
    let work = rules.len() * index.n_ent * 16;
    Ok(par
        .for_work(work)
        .map_slice(rules, |rule| one_rule(index, rule)))
}

fn one_rule(index: &Index, rule: &PathRule) -> RuleMetrics {
    let mut m = RuleMetrics {
        head_facts: index.facts(rule.head) as u64,
        ..Default::default()
    };
    let mut ys: Vec<u32> = Vec::new();
    let first = rule.body[0];
    // Only entities with an edge along the first atom can start a body path.
    for &x in index.sources(first.rel, first.inverse) {
        let x = x as usize;
        ys.clear();
        match rule.body.get(1) {
            None => ys.extend_from_slice(index.step(first.rel, first.inverse, x)),
            Some(&second) => {
                for &z in index.step(first.rel, first.inverse, x) {
                    ys.extend_from_slice(index.step(second.rel, second.inverse, z as usize));
                }
                ys.sort_unstable();
                ys.dedup();
            }
        }
        if ys.is_empty() {
            continue;
        }
        let heads = index.step(rule.head, false, x);
        m.body_pairs += ys.len() as u64;
        if !heads.is_empty() {
            m.pca_body_pairs += ys.len() as u64;
            // Both lists sorted: count the intersection by merging.
            let (mut i, mut j) = (0, 0);
            while i < ys.len() && j < heads.len() {
                match ys[i].cmp(&heads[j]) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        m.support += 1;
                        i += 1;
                        j += 1;
                    }
                }
            }
        }
    }
    m.head_coverage = ratio(m.support, m.head_facts);
    m.std_confidence = ratio(m.support, m.body_pairs);
    m.pca_confidence = ratio(m.support, m.pca_body_pairs);
    m
}
