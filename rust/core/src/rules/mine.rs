//! Two rule miners over one [`Index`]:
//! - [`mine_exact`] (AMIE-style, for small graphs): every rule above the thresholds. Candidate
//!   bodies are enumerated from the data (the paths that connect each head fact, or leave each
//!   head binding), so a rule no fact supports is never even counted; counting is then exact.
//! - [`sample_rules`] (AnyBURL-style, anytime): random walks from random head facts, each batch
//!   a deterministic function of `(seed, batch, head relation)`; the caller measures the new
//!   candidates and keeps calling until its time budget is spent.
//!
//! Both run head relations / constants in parallel and return rules in a fixed (sorted) order,
//! so results do not depend on the thread count.

use std::collections::HashMap;

use super::metrics::{rule_metrics, RuleMetrics};
use super::rule::{reversed, Atom, Kind, Rule, MAX_ACYCLIC, MAX_CLOSED};
use super::Index;
use crate::error::{Error, Result};
use crate::kge::rng::Rng;
use crate::par::Par;

/// Head facts per work item of the closed-path enumeration.
const FACTS_PER_ITEM: usize = 256;
/// Bytes per entry of a counting table (key, count and hash-table overhead), for the report.
const ENTRY_BYTES: usize = 32;

/// Which rules to look for and which to keep.
#[derive(Clone, Copy, Debug)]
pub struct MineOptions {
    /// Longest closed-path body (0 = none), at most 3.
    pub max_length: usize,
    /// Longest acyclic body (0 = none), at most 2.
    pub max_length_acyclic: usize,
    pub min_support: u64,
    pub min_head_coverage: f64,
    pub min_confidence: f64,
    /// Threshold the PCA confidence instead of the standard one.
    pub pca: bool,
}

impl Default for MineOptions {
    fn default() -> Self {
        MineOptions {
            max_length: 3,
            max_length_acyclic: 1,
            min_support: 2,
            min_head_coverage: 0.01,
            min_confidence: 0.1,
            pca: false,
        }
    }
}

impl MineOptions {
    pub fn check(&self) -> Result<()> {
        if self.max_length > MAX_CLOSED {
            return Err(Error::Value(format!(
                "max_length: at most {MAX_CLOSED}, got {}",
                self.max_length
            )));
        }
        if self.max_length_acyclic > MAX_ACYCLIC {
            return Err(Error::Value(format!(
                "max_length_acyclic: at most {MAX_ACYCLIC}, got {}",
                self.max_length_acyclic
            )));
        }
        if self.max_length == 0 && self.max_length_acyclic == 0 {
            return Err(Error::Value(
                "max_length and max_length_acyclic are both 0: nothing to mine".into(),
            ));
        }
        for (name, v) in [
            ("min_head_coverage", self.min_head_coverage),
            ("min_confidence", self.min_confidence),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::Value(format!(
                    "{name}: expected a value in [0, 1], got {v}"
                )));
            }
        }
        Ok(())
    }

    /// Whether measured metrics pass every threshold.
    pub fn keeps(&self, m: &RuleMetrics) -> bool {
        m.support >= self.min_support.max(1)
            && m.head_coverage >= self.min_head_coverage
            && m.confidence(self.pca) >= self.min_confidence
    }
}

/// Rules found, their metrics, and what finding them cost.
#[derive(Clone, Debug, Default)]
pub struct Mined {
    pub rules: Vec<Rule>,
    pub metrics: Vec<RuleMetrics>,
    /// Distinct candidate rules counted (before thresholds).
    pub candidates: u64,
    /// Candidates whose exact metrics were computed (support and head coverage passed).
    pub measured: u64,
    /// Largest counting table held at once, in bytes (estimate: entries x [`ENTRY_BYTES`]),
    /// summed over the work items that can run at once is at most threads x this.
    pub peak_table_bytes: usize,
}

fn check_heads(index: &Index, heads: &[u32]) -> Result<()> {
    for (k, &h) in heads.iter().enumerate() {
        if h as usize >= index.n_rel {
            return Err(Error::Index {
                arg: format!("heads[{k}]"),
                index: h as i64,
                size: index.n_rel,
            });
        }
    }
    Ok(())
}

/// A body of up to three atoms as one integer: `code + 1` of each atom in 21 bits.
fn pack(atoms: &[u32]) -> u64 {
    atoms
        .iter()
        .enumerate()
        .fold(0u64, |acc, (k, &c)| acc | ((c as u64 + 1) << (21 * k)))
}

fn unpack(sig: u64) -> Vec<Atom> {
    (0..MAX_CLOSED)
        .map(|k| (sig >> (21 * k)) & ((1 << 21) - 1))
        .take_while(|&c| c > 0)
        .map(|c| Atom::from_code(c as u32 - 1))
        .collect()
}

/// Every rule above the thresholds, for the head relations `heads`.
pub fn mine_exact(par: Par, index: &Index, heads: &[u32], opts: &MineOptions) -> Result<Mined> {
    opts.check()?;
    check_heads(index, heads)?;
    // Work items: closed paths per chunk of head facts; acyclic rules per (head, side, constant).
    enum Item {
        Closed {
            head: u32,
            first: usize,
            len: usize,
        },
        Acyclic {
            head: u32,
            inverse: bool,
            constant: u32,
        },
    }
    let mut items = Vec::new();
    for &h in heads {
        let facts = index.facts(h as usize);
        if opts.max_length > 0 {
            for first in (0..facts).step_by(FACTS_PER_ITEM) {
                let len = FACTS_PER_ITEM.min(facts - first);
                items.push(Item::Closed {
                    head: h,
                    first,
                    len,
                });
            }
        }
        if opts.max_length_acyclic > 0 {
            for inverse in [false, true] {
                for &c in index.sources(h as usize, !inverse) {
                    items.push(Item::Acyclic {
                        head: h,
                        inverse,
                        constant: c,
                    });
                }
            }
        }
    }
    let found = par.for_work(usize::MAX).map(items, |item| match item {
        Item::Closed { head, first, len } => closed_counts(index, head, first, len, opts),
        Item::Acyclic {
            head,
            inverse,
            constant,
        } => acyclic_candidates(index, head, inverse, constant, opts),
    });
    // Closed counts of one head are summed over its fact chunks.
    let mut closed: HashMap<(u32, u64), u64> = HashMap::new();
    let mut candidates = Vec::new();
    let mut n_candidates = 0u64;
    let mut peak = 0usize;
    for f in found {
        peak = peak.max(f.table_entries * ENTRY_BYTES);
        match f.kind {
            Found::Closed(counts) => {
                for (key, c) in counts {
                    *closed.entry(key).or_insert(0) += c;
                }
            }
            Found::Acyclic(rules, n) => {
                n_candidates += n;
                candidates.extend(rules);
            }
        }
    }
    peak = peak.max(closed.len() * ENTRY_BYTES);
    n_candidates += closed.len() as u64;
    for ((head, sig), support) in closed {
        let facts = index.facts(head as usize) as f64;
        if support >= opts.min_support && support as f64 / facts >= opts.min_head_coverage {
            candidates.push(Rule::closed(head, &unpack(sig)));
        }
    }
    candidates.sort_unstable();
    let metrics = rule_metrics(par, index, &candidates);
    let measured = candidates.len() as u64;
    let (rules, metrics) = candidates
        .into_iter()
        .zip(metrics)
        .filter(|(_, m)| opts.keeps(m))
        .unzip();
    Ok(Mined {
        rules,
        metrics,
        candidates: n_candidates,
        measured,
        peak_table_bytes: peak,
    })
}

enum Found {
    Closed(HashMap<(u32, u64), u64>),
    /// Rules passing support and head coverage, and the number of distinct candidates.
    Acyclic(Vec<Rule>, u64),
}

struct Counted {
    kind: Found,
    table_entries: usize,
}

/// Supports of the closed-path bodies connecting facts `first..first + len` of `head`.
fn closed_counts(
    index: &Index,
    head: u32,
    first: usize,
    len: usize,
    opts: &MineOptions,
) -> Counted {
    let mut counts: HashMap<(u32, u64), u64> = HashMap::new();
    let mut sigs: Vec<u64> = Vec::new();
    let trivial = pack(&[2 * head]);
    for k in first..first + len {
        let (x, y) = index.fact(head as usize, k);
        sigs.clear();
        let ex = index.edges(x as usize);
        let ey = index.edges(y as usize);
        for &(_, code) in index.edges_to(x as usize, y) {
            sigs.push(pack(&[code]));
        }
        if opts.max_length >= 2 {
            // Paths x -a-> z -b-> y: the edges of x and of y that meet at the same z.
            let (mut i, mut j) = (0, 0);
            while i < ex.len() && j < ey.len() {
                let (zx, zy) = (ex[i].0, ey[j].0);
                if zx < zy {
                    i += 1;
                } else if zy < zx {
                    j += 1;
                } else {
                    let gi = i + ex[i..].partition_point(|e| e.0 == zx);
                    let gj = j + ey[j..].partition_point(|e| e.0 == zy);
                    for &(_, a) in &ex[i..gi] {
                        for &(_, b) in &ey[j..gj] {
                            sigs.push(pack(&[a, b ^ 1]));
                        }
                    }
                    i = gi;
                    j = gj;
                }
            }
        }
        if opts.max_length >= 3 {
            // x -a-> z1 -m-> z2 -b-> y.
            for &(z1, a) in ex {
                for &(z2, b) in ey {
                    for &(_, m) in index.edges_to(z1 as usize, z2) {
                        sigs.push(pack(&[a, m, b ^ 1]));
                    }
                }
            }
        }
        sigs.sort_unstable();
        sigs.dedup();
        for &s in &sigs {
            if s != trivial {
                *counts.entry((head, s)).or_insert(0) += 1;
            }
        }
    }
    let table_entries = counts.len();
    Counted {
        kind: Found::Closed(counts),
        table_entries,
    }
}

/// The least support `s` with `s / n >= min_hc`, the test [`MineOptions::keeps`] applies to
/// head coverage (`ceil(min_hc * n)` can be one more: 0.28 * 25 = 7.000000000000001).
fn least_support(min_hc: f64, n: usize) -> u64 {
    if n == 0 || min_hc.is_nan() {
        return 0;
    }
    let mut s = (min_hc * n as f64).ceil().max(0.0) as u64;
    while s > 0 && (s - 1) as f64 / n as f64 >= min_hc {
        s -= 1;
    }
    s
}

/// Acyclic rules `q(X, constant) <- ...` with enough support and head coverage.
fn acyclic_candidates(
    index: &Index,
    head: u32,
    inverse: bool,
    constant: u32,
    opts: &MineOptions,
) -> Counted {
    let xs = index.step(head as usize, !inverse, constant as usize);
    let need = opts
        .min_support
        .max(least_support(opts.min_head_coverage, xs.len()))
        .max(1);
    if (xs.len() as u64) < need {
        return Counted {
            kind: Found::Acyclic(Vec::new(), 0),
            table_entries: 0,
        };
    }
    // Key: (packed body, end constant or u32::MAX for a dangling end).
    let mut counts: HashMap<(u64, u32), u64> = HashMap::new();
    let mut sigs: Vec<(u64, u32)> = Vec::new();
    let q = Atom::new(head, inverse).code();
    for &x in xs {
        sigs.clear();
        for &(z, a) in index.edges(x as usize) {
            if !(a == q && z == constant) {
                sigs.push((pack(&[a]), z));
            }
            sigs.push((pack(&[a]), u32::MAX));
            if opts.max_length_acyclic >= 2 {
                for &(z2, b) in index.edges(z as usize) {
                    sigs.push((pack(&[a, b]), z2));
                    sigs.push((pack(&[a, b]), u32::MAX));
                }
            }
        }
        sigs.sort_unstable();
        sigs.dedup();
        for &s in &sigs {
            *counts.entry(s).or_insert(0) += 1;
        }
    }
    let table_entries = counts.len();
    let n = counts.len() as u64;
    let rules = counts
        .into_iter()
        .filter(|&(_, c)| c >= need)
        .map(|((sig, end), _)| {
            let kind = if end == u32::MAX {
                Kind::Dangling
            } else {
                Kind::EndConstant
            };
            Rule::acyclic(kind, head, inverse, constant, end, &unpack(sig))
        })
        .collect();
    Counted {
        kind: Found::Acyclic(rules, n),
        table_entries,
    }
}

/// Walks per head relation per batch at most (a batch is meant to take seconds; the rules a
/// batch finds are held in memory until it ends). `nesy.rules.kg.MAX_PATHS` is the same.
pub const MAX_PATHS: usize = 10_000_000;

/// What the path sampler draws.
#[derive(Clone, Copy, Debug)]
pub struct SampleOptions {
    pub max_length: usize,
    pub max_length_acyclic: usize,
    /// Random walks per head relation per batch.
    pub paths: usize,
    pub seed: u64,
}

/// Candidate rules from one batch of random walks (AnyBURL's bottom-up sampling): for each
/// head relation, `paths` times: a uniform fact `h(x, y)`, a side (predict `y` from `x` or `x`
/// from `y`), and a walk from the known entity that never takes the fact itself as its first
/// step. A walk that ends on the other entity gives a closed rule; its prefixes give acyclic
/// rules with that entity as constant (end constant and dangling). Distinct rules, sorted.
pub fn sample_rules(
    par: Par,
    index: &Index,
    heads: &[u32],
    batch: u64,
    opts: &SampleOptions,
) -> Result<Vec<Rule>> {
    MineOptions {
        max_length: opts.max_length,
        max_length_acyclic: opts.max_length_acyclic,
        ..Default::default()
    }
    .check()?;
    check_heads(index, heads)?;
    if opts.paths == 0 || opts.paths > MAX_PATHS {
        return Err(Error::Value(format!(
            "paths: expected 1 to {MAX_PATHS} walks per head relation per batch, got {}",
            opts.paths
        )));
    }
    let longest = opts.max_length.max(opts.max_length_acyclic);
    let per_head = par
        .for_work(heads.len() * opts.paths * 64)
        .map_slice(heads, |&head| {
            let facts = index.facts(head as usize);
            let mut out = Vec::new();
            if facts == 0 {
                return out;
            }
            let mut rng = Rng::new(opts.seed, batch, head as u64, 0);
            let mut atoms = Vec::with_capacity(longest);
            for _ in 0..opts.paths {
                let (x, y) = index.fact(head as usize, rng.below(facts));
                let inverse = rng.below(2) == 1;
                let (start, target) = if inverse { (y, x) } else { (x, y) };
                let steps = 1 + rng.below(longest);
                let fact = (target, Atom::new(head, inverse).code());
                atoms.clear();
                let mut here = start;
                for step in 0..steps {
                    let edges = index.edges(here as usize);
                    // The first step must not be the head fact itself.
                    let usable = edges.len() - (step == 0) as usize;
                    if usable == 0 {
                        break;
                    }
                    let mut pick = rng.below(usable);
                    if step == 0 && edges.binary_search(&fact).is_ok_and(|f| pick >= f) {
                        pick += 1;
                    }
                    let (z, code) = edges[pick];
                    atoms.push(Atom::from_code(code));
                    here = z;
                    let l = atoms.len();
                    if l <= opts.max_length_acyclic {
                        out.push(Rule::acyclic(
                            Kind::EndConstant,
                            head,
                            inverse,
                            target,
                            here,
                            &atoms,
                        ));
                        out.push(Rule::acyclic(
                            Kind::Dangling,
                            head,
                            inverse,
                            target,
                            0,
                            &atoms,
                        ));
                    }
                    if l == steps && l <= opts.max_length && here == target {
                        let body = if inverse {
                            reversed(&atoms)
                        } else {
                            atoms.clone()
                        };
                        out.push(Rule::closed(head, &body));
                    }
                }
            }
            out.retain(|r| !r.is_trivial());
            out.sort_unstable();
            out.dedup();
            out
        });
    let mut rules: Vec<Rule> = per_head.into_iter().flatten().collect();
    rules.sort_unstable();
    rules.dedup();
    Ok(rules)
}
