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
use crate::par::Par;

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

/// Every closed-path rule of length 2, `h(X, Y) <- a1(X, Z), a2(Z, Y)` for every head `h` and
/// atoms `a1`, `a2` (each relation forwards or inverted), with its metrics: `n_rel * (2 n_rel)^2`
/// rules ordered by head, then `a1`, then `a2` (atom code `2 * rel + inverse`). Each body is
/// walked once for all heads.
pub fn all_length2(par: Par, index: &Index) -> (Vec<Rule>, Vec<RuleMetrics>) {
    let n_rel = index.n_rel;
    let codes = 2 * n_rel as u32;
    let pairs: Vec<(u32, u32)> = (0..codes)
        .flat_map(|a| (0..codes).map(move |b| (a, b)))
        .collect();
    let work = pairs.len() * index.n_ent * 4;
    // Per body: (body pairs, per head (support, pca body pairs)).
    let per_body = par.for_work(work).map(pairs, |(a, b)| {
        let body = [Atom::from_code(a), Atom::from_code(b)];
        let mut walker = Walker::new(index.n_ent);
        let mut total = 0u64;
        let mut heads = vec![(0u64, 0u64); n_rel];
        for &x in index.sources(body[0].rel as usize, body[0].inverse) {
            let ys = walker.reach(index, &[x], &body).len() as u64;
            if ys == 0 {
                continue;
            }
            total += ys;
            for (h, acc) in heads.iter_mut().enumerate() {
                let hs = index.step(h, false, x as usize);
                if !hs.is_empty() {
                    acc.1 += ys;
                    acc.0 += hs.iter().filter(|&&y| walker.contains(y)).count() as u64;
                }
            }
        }
        (total, heads)
    });
    let mut rules = Vec::with_capacity(n_rel * per_body.len());
    let mut metrics = Vec::with_capacity(rules.capacity());
    for h in 0..n_rel {
        for (k, (total, heads)) in per_body.iter().enumerate() {
            let (a, b) = (k as u32 / codes, k as u32 % codes);
            rules.push(Rule::closed(
                h as u32,
                &[Atom::from_code(a), Atom::from_code(b)],
            ));
            metrics.push(
                RuleMetrics {
                    support: heads[h].0,
                    body_pairs: *total,
                    pca_body_pairs: heads[h].1,
                    head_facts: index.facts(h) as u64,
                    ..Default::default()
                }
                .finish(),
            );
        }
    }
    (rules, metrics)
}
