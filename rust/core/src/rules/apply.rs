//! Rule application: link prediction from the rules that fire, filtered ranks through the same
//! filter and tie counting as the embeddings (`kge::rank`), and explanations.
//!
//! A query asks for the `y` with `q(e, y)`, `q` an oriented relation: `(r, forward)` for a tail
//! query `(e, r, ?)`, `(r, inverse)` for a head query `(?, r, e)`. A rule fires for `y` when:
//! - closed `r(X, Y) <- path`: the path (reversed for head queries) leads from `e` to `y`;
//! - acyclic with oriented head `q` and constant `c`: its body holds for `e` (then `y = c`);
//! - acyclic with oriented head `q^-1` and constant `e`: its body holds for `y`.
//!
//! Each firing rule adds its confidence once per candidate. Candidates are ordered by one of
//! three [`Aggregation`]s; entities no rule reaches tie below every candidate.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::metrics::acyclic_body;
use super::rule::{reversed, Atom, Kind, Rule};
use super::walk::{groundings, Walker};
use super::Index;
use crate::error::{Error, Result};
use crate::kge::rank::Filter;
use crate::par::Par;

/// Queries ranked per work item (one scratch [`Walker`] each).
const QUERIES_PER_ITEM: usize = 8;

/// How the confidences of the rules firing for a candidate order the candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// AnyBURL: confidences sorted descending, compared lexicographically (a longer list wins
    /// when the other is its prefix).
    MaxPlus,
    /// The maximum, ties broken by noisy-or.
    MaxNoisyOr,
    /// Noisy-or `1 - prod(1 - conf)`.
    NoisyOr,
}

/// The candidates of one query, best first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ranked {
    pub candidates: Vec<u32>,
    /// Dense rank of the candidate's key: 0 for the best, equal keys share a level.
    pub level: Vec<u32>,
    /// Highest confidence of a rule firing for the candidate.
    pub max: Vec<f64>,
    /// Noisy-or of the confidences firing for the candidate.
    pub noisy_or: Vec<f64>,
}

/// One rule firing for a candidate, with up to `limit` groundings of its body.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    pub rule: u32,
    pub confidence: f64,
    /// The body as walked: from `start` along `atoms`.
    pub start: u32,
    pub atoms: Vec<Atom>,
    /// Entities visited by each grounding, `start` first.
    pub paths: Vec<Vec<u32>>,
}

/// A rule set prepared for answering queries over one graph.
pub struct Applier<'a> {
    index: &'a Index,
    rules: &'a [Rule],
    confidence: &'a [f64],
    /// Per oriented-head code: closed rules `(id, path from the query entity)`.
    closed: Vec<Vec<(u32, Vec<Atom>)>>,
    /// Per oriented-head code: acyclic rules grouped by body.
    forward: Vec<Vec<(Vec<Atom>, Vec<u32>)>>,
    /// `(oriented-head code, constant)`: acyclic rules fired from their constant.
    backward: HashMap<(u32, u32), Vec<u32>>,
    /// Never propose the query entity itself.
    pub exclude_query: bool,
    /// Position of every rule in the order of decreasing confidence (ties by index), so that
    /// `(candidate, position)` sorts as integers into each candidate's confidences, descending.
    position: Vec<u32>,
    /// Confidence by position.
    by_position: Vec<f64>,
}

impl<'a> Applier<'a> {
    /// `rules` valid for `index`, `confidence[k]` in `[0, 1]` the weight of rule `k`.
    pub fn new(
        index: &'a Index,
        rules: &'a [Rule],
        confidence: &'a [f64],
        exclude_query: bool,
    ) -> Result<Applier<'a>> {
        if confidence.len() != rules.len() {
            return Err(Error::len("confidence", rules.len(), confidence.len()));
        }
        if let Some(k) = confidence.iter().position(|c| !(0.0..=1.0).contains(c)) {
            return Err(Error::Value(format!(
                "confidence[{k}]: expected a value in [0, 1], got {}",
                confidence[k]
            )));
        }
        let codes = 2 * index.n_rel;
        let mut closed = vec![Vec::new(); codes];
        let mut groups: Vec<HashMap<Vec<Atom>, Vec<u32>>> = vec![HashMap::new(); codes];
        let mut backward: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for (id, rule) in rules.iter().enumerate() {
            let id = id as u32;
            match rule.kind {
                Kind::Closed => {
                    let body = rule.body();
                    closed[2 * rule.head as usize].push((id, body.to_vec()));
                    closed[2 * rule.head as usize + 1].push((id, reversed(body)));
                }
                Kind::EndConstant | Kind::Dangling => {
                    let q = rule.head_atom().code();
                    groups[q as usize]
                        .entry(rule.body().to_vec())
                        .or_default()
                        .push(id);
                    backward.entry((q, rule.constant)).or_default().push(id);
                }
            }
        }
        let forward = groups
            .into_iter()
            .map(|g| {
                let mut g: Vec<_> = g.into_iter().collect();
                g.sort_unstable();
                g
            })
            .collect();
        let mut order: Vec<u32> = (0..rules.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            confidence[b as usize]
                .total_cmp(&confidence[a as usize])
                .then(a.cmp(&b))
        });
        let mut position = vec![0u32; rules.len()];
        for (p, &id) in order.iter().enumerate() {
            position[id as usize] = p as u32;
        }
        let by_position = order.iter().map(|&id| confidence[id as usize]).collect();
        Ok(Applier {
            index,
            rules,
            confidence,
            closed,
            forward,
            backward,
            exclude_query,
            position,
            by_position,
        })
    }

    fn check_query(&self, e: i64, q: Atom, what: &str) -> Result<()> {
        if e < 0 || e as usize >= self.index.n_ent {
            return Err(Error::Index {
                arg: format!("{what} (entity)"),
                index: e,
                size: self.index.n_ent,
            });
        }
        if q.rel as usize >= self.index.n_rel {
            return Err(Error::Index {
                arg: format!("{what} (relation)"),
                index: q.rel as i64,
                size: self.index.n_rel,
            });
        }
        Ok(())
    }

    /// Every `(candidate, rule)` firing for the query `q(e, ?)`.
    fn fire(&self, walker: &mut Walker, e: u32, q: Atom, out: &mut Vec<(u32, u32)>) {
        out.clear();
        let index = self.index;
        for (id, path) in &self.closed[q.code() as usize] {
            out.extend(walker.reach(index, &[e], path).iter().map(|&y| (y, *id)));
        }
        for (body, ids) in &self.forward[q.code() as usize] {
            if walker.reach(index, &[e], body).is_empty() {
                continue;
            }
            for &id in ids {
                let rule = &self.rules[id as usize];
                if rule.kind == Kind::Dangling || walker.contains(rule.end) {
                    out.push((rule.constant, id));
                }
            }
        }
        if let Some(ids) = self.backward.get(&(q.flipped().code(), e)) {
            for &id in ids {
                acyclic_body(walker, index, &self.rules[id as usize]);
                out.extend(walker.set().iter().map(|&y| (y, id)));
            }
        }
        if self.exclude_query {
            out.retain(|&(y, _)| y != e);
        }
    }

    /// The candidates of `q(e, ?)` in order.
    fn rank_candidates(
        &self,
        walker: &mut Walker,
        e: u32,
        q: Atom,
        agg: Aggregation,
        pairs: &mut Vec<(u32, u32)>,
    ) -> Ranked {
        self.fire(walker, e, q, pairs);
        // Per candidate, its confidences descending: integer keys (candidate, position in the
        // confidence order); a rule reached along several paths counts once.
        let mut keys: Vec<u64> = pairs
            .iter()
            .map(|&(y, id)| ((y as u64) << 32) | self.position[id as usize] as u64)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut confs: Vec<f64> = Vec::with_capacity(keys.len());
        // (candidate, first, end) into `confs`.
        let mut spans: Vec<(u32, usize, usize)> = Vec::new();
        for &k in &keys {
            let y = (k >> 32) as u32;
            match spans.last_mut() {
                Some(s) if s.0 == y => s.2 += 1,
                _ => spans.push((y, confs.len(), confs.len() + 1)),
            }
            confs.push(self.by_position[(k & 0xFFFF_FFFF) as usize]);
        }
        let noisy: Vec<f64> = spans
            .iter()
            .map(|&(_, a, b)| 1.0 - confs[a..b].iter().map(|c| 1.0 - c).product::<f64>())
            .collect();
        let key = |i: usize, j: usize| -> Ordering {
            let (a, b) = (
                &confs[spans[i].1..spans[i].2],
                &confs[spans[j].1..spans[j].2],
            );
            match agg {
                // Descending: "greater" keys come first.
                Aggregation::MaxPlus => {
                    for (x, y) in a.iter().zip(b) {
                        match y.total_cmp(x) {
                            Ordering::Equal => continue,
                            o => return o,
                        }
                    }
                    b.len().cmp(&a.len())
                }
                Aggregation::MaxNoisyOr => {
                    b[0].total_cmp(&a[0]).then(noisy[j].total_cmp(&noisy[i]))
                }
                Aggregation::NoisyOr => noisy[j].total_cmp(&noisy[i]),
            }
        };
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_unstable_by(|&i, &j| key(i, j).then(spans[i].0.cmp(&spans[j].0)));
        let mut out = Ranked::default();
        let mut level = 0u32;
        for (k, &i) in order.iter().enumerate() {
            if k > 0 && key(order[k - 1], i) != Ordering::Equal {
                level += 1;
            }
            out.candidates.push(spans[i].0);
            out.level.push(level);
            out.max.push(confs[spans[i].1]);
            out.noisy_or.push(noisy[i]);
        }
        out
    }

    /// Candidates of each query `(entity, relation)`; `inverse`: head queries `(?, r, e)`.
    /// `k > 0` keeps the best `k` (ties at the cut included).
    pub fn predict(
        &self,
        par: Par,
        queries: &[[i64; 2]],
        inverse: bool,
        agg: Aggregation,
        k: usize,
    ) -> Result<Vec<Ranked>> {
        for (i, &[e, r]) in queries.iter().enumerate() {
            let rel = u32::try_from(r).unwrap_or(u32::MAX);
            self.check_query(e, Atom::new(rel, inverse), &format!("queries[{i}]"))?;
        }
        let items: Vec<&[[i64; 2]]> = queries.chunks(QUERIES_PER_ITEM).collect();
        let work = queries.len() * self.rules.len() * 16;
        Ok(par
            .for_work(work)
            .map(items, |chunk| {
                let mut walker = Walker::new(self.index.n_ent);
                let mut pairs = Vec::new();
                chunk
                    .iter()
                    .map(|&[e, r]| {
                        let q = Atom::new(r as u32, inverse);
                        let mut ranked =
                            self.rank_candidates(&mut walker, e as u32, q, agg, &mut pairs);
                        if k > 0 && ranked.candidates.len() > k {
                            let cut = ranked.level[k - 1];
                            let keep = ranked.level.partition_point(|&l| l <= cut);
                            ranked.candidates.truncate(keep);
                            ranked.level.truncate(keep);
                            ranked.max.truncate(keep);
                            ranked.noisy_or.truncate(keep);
                        }
                        ranked
                    })
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .flatten()
            .collect())
    }

    /// Filtered ranks of `test (n, 3)`, as [`crate::kge::rank::filtered_ranks`]: `optimistic`
    /// and `pessimistic` `(n, 2)`, column 0 the head query, column 1 the tail query. Returns
    /// the largest number of candidates one query had.
    pub fn filtered_ranks(
        &self,
        par: Par,
        test: &[i64],
        filter: &Filter,
        agg: Aggregation,
        optimistic: &mut [i64],
        pessimistic: &mut [i64],
    ) -> Result<usize> {
        if !test.len().is_multiple_of(3) {
            return Err(Error::Value("triples: expected shape (n, 3)".into()));
        }
        let n = test.len() / 3;
        for (name, out) in [("optimistic", &optimistic), ("pessimistic", &pessimistic)] {
            if out.len() != 2 * n {
                return Err(Error::Shape {
                    arg: name.into(),
                    expected: vec![n, 2],
                    got: vec![out.len()],
                });
            }
        }
        for (k, t) in test.chunks_exact(3).enumerate() {
            let rel = u32::try_from(t[1]).unwrap_or(u32::MAX);
            self.check_query(t[0], Atom::new(rel, false), &format!("triples[{k}]"))?;
            self.check_query(t[2], Atom::new(rel, false), &format!("triples[{k}]"))?;
        }
        // Items: (first triple, count) x both sides.
        let items: Vec<(usize, usize)> = (0..n)
            .step_by(QUERIES_PER_ITEM)
            .map(|s| (s, QUERIES_PER_ITEM.min(n - s)))
            .collect();
        let work = n * self.rules.len() * 16;
        let results = par.for_work(work).map(items, |(start, len)| {
            let mut walker = Walker::new(self.index.n_ent);
            let mut pairs = Vec::new();
            let mut filtered: Vec<u32> = Vec::new();
            let mut out = Vec::with_capacity(len);
            let mut widest = 0;
            for t in test[3 * start..3 * (start + len)].chunks_exact(3) {
                let (h, r, tl) = (t[0], t[1], t[2]);
                let mut both = [(0i64, 0i64); 2];
                for (col, inverse) in [(0, true), (1, false)] {
                    let (e, target) = if inverse { (tl, h) } else { (h, tl) };
                    filtered.clear();
                    if inverse {
                        filtered.extend(filter.heads(r, tl).map(|x| x as u32));
                    } else {
                        filtered.extend(filter.tails(h, r).map(|x| x as u32));
                    }
                    filtered.retain(|&x| x as i64 != target);
                    filtered.sort_unstable();
                    filtered.dedup();
                    let q = Atom::new(r as u32, inverse);
                    let ranked = self.rank_candidates(&mut walker, e as u32, q, agg, &mut pairs);
                    widest = widest.max(ranked.candidates.len());
                    both[col] = rank_of(&ranked, target as u32, &filtered, self.index.n_ent);
                }
                out.push(both);
            }
            (out, widest)
        });
        let mut widest = 0;
        for (k, both) in results
            .into_iter()
            .flat_map(|(o, w)| {
                widest = widest.max(w);
                o
            })
            .enumerate()
        {
            for col in 0..2 {
                optimistic[2 * k + col] = both[col].0;
                pessimistic[2 * k + col] = both[col].1;
            }
        }
        Ok(widest)
    }

    /// The rules firing for `y` on the query `q(e, ?)` (highest confidence first), each with up
    /// to `limit` groundings.
    pub fn explain(
        &self,
        e: i64,
        r: i64,
        inverse: bool,
        y: i64,
        limit: usize,
    ) -> Result<Vec<Explanation>> {
        let rel = u32::try_from(r).unwrap_or(u32::MAX);
        let q = Atom::new(rel, inverse);
        self.check_query(e, q, "query")?;
        self.check_query(y, q, "candidate")?;
        let (e, y) = (e as u32, y as u32);
        let mut walker = Walker::new(self.index.n_ent);
        let mut pairs = Vec::new();
        self.fire(&mut walker, e, q, &mut pairs);
        let mut ids: Vec<u32> = pairs.iter().filter(|p| p.0 == y).map(|p| p.1).collect();
        ids.sort_unstable_by(|&a, &b| {
            self.confidence[b as usize]
                .total_cmp(&self.confidence[a as usize])
                .then(a.cmp(&b))
        });
        ids.dedup();
        let index = self.index;
        Ok(ids
            .into_iter()
            .map(|id| {
                let rule = &self.rules[id as usize];
                let (start, atoms, target) = match rule.kind {
                    Kind::Closed => {
                        let path = if inverse {
                            reversed(rule.body())
                        } else {
                            rule.body().to_vec()
                        };
                        (e, path, Some(y))
                    }
                    // Fired forwards (head q, constant y: the body from e) or backwards (head
                    // q^-1, constant e: the body from y).
                    _ => {
                        let start = if rule.head_atom() == q && rule.constant == y {
                            e
                        } else {
                            y
                        };
                        let end = (rule.kind == Kind::EndConstant).then_some(rule.end);
                        (start, rule.body().to_vec(), end)
                    }
                };
                let paths = groundings(index, start, &atoms, target, limit);
                Explanation {
                    rule: id,
                    confidence: self.confidence[id as usize],
                    start,
                    atoms,
                    paths,
                }
            })
            .collect())
    }
}

/// Optimistic and pessimistic rank of `target` among `ranked`, `filtered` (sorted) removed.
fn rank_of(ranked: &Ranked, target: u32, filtered: &[u32], n_ent: usize) -> (i64, i64) {
    let live = |y: &u32| *y != target && filtered.binary_search(y).is_err();
    let at = ranked.candidates.iter().position(|&y| y == target);
    let (better, equal) = match at {
        Some(i) => {
            let lt = ranked.level[i];
            let mut better = 0;
            let mut equal = 0;
            for (y, &l) in ranked.candidates.iter().zip(&ranked.level) {
                if live(y) {
                    if l < lt {
                        better += 1;
                    } else if l == lt {
                        equal += 1;
                    }
                }
            }
            (better, equal)
        }
        None => {
            let better = ranked.candidates.iter().filter(|y| live(y)).count();
            // Non-candidates other than the target and the filtered ones tie with it.
            let filtered_inside = ranked
                .candidates
                .iter()
                .filter(|y| filtered.binary_search(y).is_ok())
                .count();
            let filtered_outside = filtered.len() - filtered_inside;
            let outside = n_ent - ranked.candidates.len() - filtered_outside - 1;
            (better, outside)
        }
    };
    (1 + better as i64, 1 + (better + equal) as i64)
}
