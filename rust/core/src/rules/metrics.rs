//! Exact metrics of rules, as AMIE 3 (Lajus et al. 2020) defines them. Closed rules count
//! distinct pairs `(x, y)`, acyclic rules distinct `x` (their head has one variable):
//! - support: bindings with the body true and the head a fact;
//! - head coverage: support / bindings of the head (facts of `h`; for `q(X, c)` the `x` with
//!   `q(x, c)`);
//! - standard confidence: support / bindings with the body true;
//! - PCA confidence: support / bindings with the body true whose `x` has some `q(x, y')`.
//!
//! Variables are unconstrained (no object identity): a path may revisit entities. Counting is
//! exact and integer; rules are independent, so results do not depend on the thread count.

use super::rule::{reversed, Atom, Kind, Rule};
use super::walk::Walker;
use super::Index;
use crate::error::{Error, Result};
use crate::par::Par;

/// Sources of a first atom per work item of [`all_length2`].
const SOURCES_PER_ITEM: usize = 512;
/// [`all_length2`] de-duplicates with a stamp per (atom, entity) up to this many entries per
/// work item, and by sorting above (where allocating the stamps would cost more).
const STAMP_LIMIT: usize = 1 << 16;

/// Rules measured per work item (and per scratch [`Walker`]).
const RULES_PER_ITEM: usize = 16;

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

impl RuleMetrics {
    fn finish(mut self) -> RuleMetrics {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.head_coverage = ratio(self.support, self.head_facts);
        self.std_confidence = ratio(self.support, self.body_pairs);
        self.pca_confidence = ratio(self.support, self.pca_body_pairs);
        self
    }

    /// The confidence used for thresholds: PCA or standard.
    pub fn confidence(&self, pca: bool) -> f64 {
        if pca {
            self.pca_confidence
        } else {
            self.std_confidence
        }
    }
}

/// Metrics of every rule over the index (rules must be valid for it: see
/// [`super::rule::parse_rows`]).
pub fn rule_metrics(par: Par, index: &Index, rules: &[Rule]) -> Vec<RuleMetrics> {
    let items: Vec<&[Rule]> = rules.chunks(RULES_PER_ITEM).collect();
    let work = rules.len() * index.n_ent * 4;
    par.for_work(work)
        .map(items, |chunk| {
            let mut walker = Walker::new(index.n_ent);
            chunk
                .iter()
                .map(|rule| metrics_with(&mut walker, index, rule))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect()
}

/// Metrics of one rule with the caller's scratch.
pub fn metrics_with(walker: &mut Walker, index: &Index, rule: &Rule) -> RuleMetrics {
    match rule.kind {
        Kind::Closed => closed(walker, index, rule),
        Kind::EndConstant | Kind::Dangling => acyclic(walker, index, rule),
    }
}

fn closed(walker: &mut Walker, index: &Index, rule: &Rule) -> RuleMetrics {
    let head = rule.head as usize;
    let mut m = RuleMetrics {
        head_facts: index.facts(head) as u64,
        ..Default::default()
    };
    let body = rule.body();
    // Only entities with an edge along the first atom can start a body path.
    for &x in index.sources(body[0].rel as usize, body[0].inverse) {
        let ys = walker.reach(index, &[x], body).len() as u64;
        m.body_pairs += ys;
        let heads = index.step(head, false, x as usize);
        if ys > 0 && !heads.is_empty() {
            m.pca_body_pairs += ys;
            m.support += heads.iter().filter(|&&y| walker.contains(y)).count() as u64;
        }
    }
    m.finish()
}

/// Marks in `walker` every `x` with the body of an acyclic rule true, and returns how many.
pub fn acyclic_body(walker: &mut Walker, index: &Index, rule: &Rule) -> usize {
    let body = rule.body();
    match rule.kind {
        Kind::EndConstant => walker.reach(index, &[rule.end], &reversed(body)).len(),
        _ => {
            // The entities where the last atom can start, walked back along the others.
            let last = body[body.len() - 1];
            let ends = index.sources(last.rel as usize, last.inverse);
            if body.len() == 1 {
                walker.mark(ends).len()
            } else {
                walker
                    .reach(index, ends, &reversed(&body[..body.len() - 1]))
                    .len()
            }
        }
    }
}

fn acyclic(walker: &mut Walker, index: &Index, rule: &Rule) -> RuleMetrics {
    let q = rule.head_atom();
    let (head, hi) = (q.rel as usize, q.inverse);
    // The x with q(x, c): walk q backwards from c.
    let xs = index.step(head, !hi, rule.constant as usize);
    let body_pairs = acyclic_body(walker, index, rule) as u64;
    let support = xs.iter().filter(|&&x| walker.contains(x)).count() as u64;
    let pca_body_pairs = walker
        .set()
        .iter()
        .filter(|&&x| !index.step(head, hi, x as usize).is_empty())
        .count() as u64;
    RuleMetrics {
        support,
        body_pairs,
        pca_body_pairs,
        head_facts: xs.len() as u64,
        ..Default::default()
    }
    .finish()
}

/// The metrics of every closed-path rule of length 2 (see [`all_length2`]), as columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Length2 {
    pub support: Vec<u64>,
    pub body_pairs: Vec<u64>,
    pub pca_body_pairs: Vec<u64>,
    pub head_facts: Vec<u64>,
}

impl Length2 {
    /// Rule `k` of the order of [`all_length2`].
    pub fn rule(n_rel: usize, k: usize) -> Rule {
        let codes = 2 * n_rel;
        let (h, body) = (k / (codes * codes), k % (codes * codes));
        let (a, b) = (body / codes, body % codes);
        Rule::closed(
            h as u32,
            &[Atom::from_code(a as u32), Atom::from_code(b as u32)],
        )
    }

    /// The metrics of rule `k`.
    pub fn metrics(&self, k: usize) -> RuleMetrics {
        RuleMetrics {
            support: self.support[k],
            body_pairs: self.body_pairs[k],
            pca_body_pairs: self.pca_body_pairs[k],
            head_facts: self.head_facts[k],
            ..Default::default()
        }
        .finish()
    }
}

/// Every closed-path rule of length 2, `h(X, Y) <- a1(X, Z), a2(Z, Y)` for every head `h` and
/// atoms `a1`, `a2` (each relation forwards or inverted), with its metrics: `n_rel * (2 n_rel)^2`
/// rules ordered by head, then `a1`, then `a2` (atom code `2 * rel + inverse`; see
/// [`Length2::rule`]).
///
/// Per first atom `a1` and chunk of its sources (in parallel), per source `x`: `a1` is walked
/// once, every edge of every reached `z` extends the path by its own atom `a2` at once (the
/// `(a2, y)` de-duplicated by a stamp array on small graphs, by sorting on large ones), and each
/// reached `y` is looked up among the facts
/// `(x, h, y)` for the support of every head at once.
pub fn all_length2(par: Par, index: &Index) -> Result<Length2> {
    all_length2_with(par, index, STAMP_LIMIT)
}

/// [`all_length2`] with the stamp-array limit given (0: always sort), so both ways of
/// de-duplicating can be tested on one graph.
pub fn all_length2_with(par: Par, index: &Index, stamp_limit: usize) -> Result<Length2> {
    let n_rel = index.n_rel;
    let codes = 2 * n_rel;
    let n_ent = index.n_ent;
    // `n_rel (2 n_rel)^2` rules: the results, and the per-atom sums below, are allocated before
    // any work, so that too many relations is an error rather than an abort.
    let what = "n_relations (all length-2 rules: n_relations^3 x 4 of them)";
    let total = crate::mem::elements(&[n_rel, codes, codes], what)?;
    let reserve = |v: &mut Vec<u64>| {
        v.try_reserve_exact(total)
            .map_err(|_| Error::Value(format!("{what}: cannot allocate {total} rules")))
    };
    let mut out = Length2 {
        support: Vec::new(),
        body_pairs: Vec::new(),
        pca_body_pairs: Vec::new(),
        head_facts: Vec::new(),
    };
    for v in [
        &mut out.support,
        &mut out.body_pairs,
        &mut out.pca_body_pairs,
        &mut out.head_facts,
    ] {
        reserve(v)?;
    }
    let per_atom = crate::mem::elements(&[codes, n_rel], what)?;
    let mut per_a1 = crate::mem::try_vec(codes, (Vec::new(), Vec::new(), Vec::new()), what)?;
    for acc in per_a1.iter_mut() {
        *acc = (
            crate::mem::try_vec(codes, 0u64, what)?,
            crate::mem::try_vec(per_atom, 0u64, what)?,
            crate::mem::try_vec(per_atom, 0u64, what)?,
        );
    }
    let work = codes * n_ent * 16;
    // Items: (first atom, a chunk of its sources), so that heavy atoms spread over threads.
    let mut items = Vec::new();
    for a1 in 0..codes {
        let first = Atom::from_code(a1 as u32);
        let n = index.sources(first.rel as usize, first.inverse).len();
        for start in (0..n).step_by(SOURCES_PER_ITEM) {
            items.push((a1, start, SOURCES_PER_ITEM.min(n - start)));
        }
    }
    // Per item: body pairs per a2, and per (a2, head) support and PCA body pairs.
    let parts = par.for_work(work).map(items, |(a1, start, len)| {
        let first = Atom::from_code(a1 as u32);
        let mut body = vec![0u64; codes];
        let mut support = vec![0u64; codes * n_rel];
        let mut pca = vec![0u64; codes * n_rel];
        let mut keys: Vec<u64> = Vec::new();
        let mut heads: Vec<usize> = Vec::new();
        let mut reached: Vec<Vec<u32>> = vec![Vec::new(); codes];
        // Small graphs: a stamp per (a2, y) (no sorting); large ones: sort (a2, y) keys.
        let mut stamp = if codes * n_ent <= stamp_limit {
            vec![0u32; codes * n_ent]
        } else {
            Vec::new()
        };
        // Entities x has a forward edge to (stamped with the source's number): a reached y
        // that is not one cannot support any head, so its facts are not looked up.
        let mut tails = vec![0u32; n_ent];
        let sources = &index.sources(first.rel as usize, first.inverse)[start..start + len];
        for (gen, &x) in sources.iter().enumerate() {
            let gen = gen as u32 + 1;
            // Every (a2, y) one step past the z reached along a1, without repeats.
            for r in reached.iter_mut() {
                r.clear();
            }
            let zs = index.step(first.rel as usize, first.inverse, x as usize);
            if stamp.is_empty() {
                keys.clear();
                for &z in zs {
                    keys.extend(
                        index
                            .edges(z as usize)
                            .iter()
                            .map(|&(y, a2)| ((a2 as u64) << 32) | y as u64),
                    );
                }
                keys.sort_unstable();
                keys.dedup();
                for &k in &keys {
                    reached[(k >> 32) as usize].push(k as u32);
                }
            } else {
                for &z in zs {
                    for &(y, a2) in index.edges(z as usize) {
                        let seen = &mut stamp[a2 as usize * n_ent + y as usize];
                        if *seen != gen {
                            *seen = gen;
                            reached[a2 as usize].push(y);
                        }
                    }
                }
            }
            // The relations x is a subject of (its forward edge codes), without repeats.
            heads.clear();
            for &(y, c) in index.edges(x as usize) {
                if c % 2 == 0 {
                    heads.push(c as usize / 2);
                    tails[y as usize] = gen;
                }
            }
            heads.sort_unstable();
            heads.dedup();
            for (a2, ys) in reached.iter().enumerate() {
                if ys.is_empty() {
                    continue;
                }
                body[a2] += ys.len() as u64;
                let row = a2 * n_rel;
                for &h in &heads {
                    pca[row + h] += ys.len() as u64;
                }
                for &y in ys.iter().filter(|&&y| tails[y as usize] == gen) {
                    for &(_, c) in index.edges_to(x as usize, y) {
                        if c % 2 == 0 {
                            support[row + c as usize / 2] += 1;
                        }
                    }
                }
            }
        }
        (a1, body, support, pca)
    });
    // Sum the chunks of each first atom (integer sums: any order gives the same counts).
    for (a1, body, support, pca) in parts {
        let acc = &mut per_a1[a1];
        for (t, v) in acc.0.iter_mut().zip(body) {
            *t += v;
        }
        for (t, v) in acc.1.iter_mut().zip(support) {
            *t += v;
        }
        for (t, v) in acc.2.iter_mut().zip(pca) {
            *t += v;
        }
    }
    for h in 0..n_rel {
        for (body, support, pca) in &per_a1 {
            for a2 in 0..codes {
                out.support.push(support[a2 * n_rel + h]);
                out.body_pairs.push(body[a2]);
                out.pca_body_pairs.push(pca[a2 * n_rel + h]);
                out.head_facts.push(index.facts(h) as u64);
            }
        }
    }
    Ok(out)
}
