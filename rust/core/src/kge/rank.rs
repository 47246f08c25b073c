//! Filtered link-prediction ranks, without ever holding the full queries x entities matrix.
//!
//! For a test triple `(h, r, t)` the tail query ranks `t` among all entities by
//! `score(h, r, e)`, after removing every other entity `e` with `(h, r, e)` known to be true
//! (train, valid and test); the head query likewise ranks `h` among `score(e, r, t)`. Ties:
//! optimistic rank `1 + #{better}`, pessimistic `1 + #{better or equal}` (the caller averages
//! them for the "realistic" rank). Queries are scored in fixed blocks (memory
//! `O(block x entities)`), counted in one pass over each score row, then corrected by the few
//! filtered entities. A NaN target score ranks last.

use super::score::{check_queries, form_rows, prepare, queries};
use super::{Model, Side, Tables};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::Gemm;
use crate::par::Par;
use crate::simd::{dispatch, Kernel, Level};

/// Score-matrix elements per block of queries (the block's working memory).
const BLOCK_ELEMENTS: usize = 1 << 21;
/// Queries per block at most.
const MAX_BLOCK: usize = 64;

/// Every known true triple, indexed for filtering: the tails known for each `(head, relation)`
/// and the heads known for each `(relation, tail)`, sorted and without duplicates.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `(head, relation, tail)`, sorted.
    by_head: Vec<[i64; 3]>,
    /// `(relation, tail, head)`, sorted.
    by_tail: Vec<[i64; 3]>,
}

impl Filter {
    /// From known triples `(m, 3)`; ids are checked against the table sizes.
    pub fn new(known: &[i64], n_ent: usize, n_rel: usize) -> Result<Filter> {
        if !known.len().is_multiple_of(3) {
            return Err(Error::Value("known: expected shape (m, 3)".into()));
        }
        let mut by_head = Vec::with_capacity(known.len() / 3);
        for (k, t) in known.chunks_exact(3).enumerate() {
            for (col, size) in [(0, n_ent), (1, n_rel), (2, n_ent)] {
                if t[col] < 0 || t[col] as usize >= size {
                    return Err(Error::Index {
                        arg: format!("known[{k}, {col}]"),
                        index: t[col],
                        size,
                    });
                }
            }
            by_head.push([t[0], t[1], t[2]]);
        }
        by_head.sort_unstable();
        by_head.dedup();
        let mut by_tail: Vec<[i64; 3]> = by_head.iter().map(|t| [t[1], t[2], t[0]]).collect();
        by_tail.sort_unstable();
        Ok(Filter { by_head, by_tail })
    }

    /// The triples of `index` whose first two entries are `(a, b)`.
    fn lookup(index: &[[i64; 3]], a: i64, b: i64) -> &[[i64; 3]] {
        let lo = index.partition_point(|t| (t[0], t[1]) < (a, b));
        let hi = index.partition_point(|t| (t[0], t[1]) <= (a, b));
        &index[lo..hi]
    }

    /// The known triples of a query: `(h, r, ?)` for a tail query with `fixed = h`, `(?, r, t)`
    /// for a head query with `fixed = t`; the answer entity is entry 2 of each.
    fn known(&self, side: Side, fixed: i64, rel: i64) -> &[[i64; 3]] {
        match side {
            Side::Tail => Self::lookup(&self.by_head, fixed, rel),
            Side::Head => Self::lookup(&self.by_tail, rel, fixed),
        }
    }

    /// Entities `e` with `(h, r, e)` known.
    pub fn tails(&self, h: i64, r: i64) -> impl Iterator<Item = i64> + '_ {
        Self::lookup(&self.by_head, h, r).iter().map(|t| t[2])
    }

    /// Entities `e` with `(e, r, t)` known.
    pub fn heads(&self, r: i64, t: i64) -> impl Iterator<Item = i64> + '_ {
        Self::lookup(&self.by_tail, r, t).iter().map(|t| t[2])
    }
}

/// Counts of one score row against the target's score: `(better, equal)` excluding the target.
struct Count<'a, T> {
    row: &'a [T],
    target: usize,
}

impl<T: Float> Kernel for Count<'_, T> {
    type Output = (usize, usize);
    #[inline(always)]
    fn run(self) -> (usize, usize) {
        let s = self.row[self.target];
        let (mut better, mut equal) = (0usize, 0usize);
        for &v in self.row {
            better += (v > s) as usize;
            equal += (v == s) as usize;
        }
        (better, equal - 1)
    }
}

/// `(optimistic, pessimistic)` rank of entity `target` in one score row, the `known` triples'
/// answers other than the target removed; a NaN target score ranks last.
fn rank_row<T: Float>(level: Level, row: &[T], target: i64, known: &[[i64; 3]]) -> (i64, i64) {
    let n_ent = row.len();
    let target = target as usize;
    let s = row[target];
    if s.is_nan() {
        return (n_ent as i64, n_ent as i64);
    }
    let (mut better, mut equal) = dispatch(level, Count { row, target });
    for e in known.iter().map(|t| t[2] as usize) {
        if e == target || e >= n_ent {
            continue;
        }
        if row[e] > s {
            better -= 1;
        } else if row[e] == s {
            equal -= 1;
        }
    }
    (1 + better as i64, 1 + (better + equal) as i64)
}

/// Filtered ranks from given scores (any predictor: rules, a hybrid, an external model):
/// `scores (n, n_ent)` row `i` scores every entity as the answer of the `side` query of
/// `test[i]` (higher is better); `optimistic` and `pessimistic` are `(n,)`. Same filter and
/// tie counting as [`filtered_ranks`].
#[allow(clippy::too_many_arguments)]
pub fn ranks_of_scores<T: Float>(
    par: Par,
    level: Level,
    scores: &[T],
    n_ent: usize,
    test: &[i64],
    side: Side,
    filter: &Filter,
    optimistic: &mut [i64],
    pessimistic: &mut [i64],
) -> Result<()> {
    if !test.len().is_multiple_of(3) {
        return Err(Error::Value("triples: expected shape (n, 3)".into()));
    }
    let n = test.len() / 3;
    if scores.len() != n * n_ent {
        return Err(Error::Shape {
            arg: "scores".into(),
            expected: vec![n, n_ent],
            got: vec![scores.len()],
        });
    }
    for (name, out) in [("optimistic", &optimistic), ("pessimistic", &pessimistic)] {
        if out.len() != n {
            return Err(Error::len(name, n, out.len()));
        }
    }
    let (fixed_col, target_col) = match side {
        Side::Tail => (0, 2),
        Side::Head => (2, 0),
    };
    for (k, t) in test.chunks_exact(3).enumerate() {
        if t[target_col] < 0 || t[target_col] as usize >= n_ent {
            return Err(Error::Index {
                arg: format!("triples[{k}, {target_col}]"),
                index: t[target_col],
                size: n_ent,
            });
        }
    }
    let rows: Vec<usize> = (0..n).collect();
    let ranks = par.for_work(n * n_ent).map(rows, |i| {
        let t = &test[3 * i..3 * i + 3];
        let row = &scores[i * n_ent..(i + 1) * n_ent];
        rank_row(
            level,
            row,
            t[target_col],
            filter.known(side, t[fixed_col], t[1]),
        )
    });
    for (i, (o, p)) in ranks.into_iter().enumerate() {
        optimistic[i] = o;
        pessimistic[i] = p;
    }
    Ok(())
}

/// Filtered ranks of `test (n, 3)`: `optimistic` and `pessimistic`, each `(n, 2)` with column
/// 0 the head query `(?, r, t)` and column 1 the tail query `(h, r, ?)`.
#[allow(clippy::too_many_arguments)]
pub fn filtered_ranks<T: Float + Gemm, M: Model>(
    par: Par,
    level: Level,
    model: M,
    tables: Tables<'_, T>,
    test: &[i64],
    filter: &Filter,
    optimistic: &mut [i64],
    pessimistic: &mut [i64],
) -> Result<()> {
    let n = tables.check_triples(test, "triples")?;
    for (name, out) in [("optimistic", &optimistic), ("pessimistic", &pessimistic)] {
        if out.len() != 2 * n {
            return Err(Error::Shape {
                arg: name.into(),
                expected: vec![n, 2],
                got: vec![out.len()],
            });
        }
    }
    let n_ent = tables.n_ent;
    let block = (BLOCK_ELEMENTS / n_ent.max(1)).clamp(1, MAX_BLOCK);
    let prep = prepare(par, model.form(), &tables);
    // Jobs: (side, first triple, number of triples); fixed by n alone.
    let mut jobs = Vec::new();
    for side in [Side::Head, Side::Tail] {
        for start in (0..n).step_by(block) {
            jobs.push((side, start, block.min(n - start)));
        }
    }
    let ranks = par
        .for_work(2 * n * n_ent * tables.d_e)
        .map(jobs, |(side, start, len)| {
            let tr = &test[3 * start..3 * (start + len)];
            let col = |c: usize| -> Vec<i64> { tr.chunks_exact(3).map(|t| t[c]).collect() };
            let (fixed, rels, targets) = match side {
                Side::Tail => (col(0), col(1), col(2)),
                Side::Head => (col(2), col(1), col(0)),
            };
            debug_assert!(check_queries(&tables, &fixed, &rels).is_ok());
            let q = queries(model, &tables, &fixed, &rels, side);
            let mut scores = vec![T::ZERO; len * n_ent];
            form_rows(
                Par::Seq,
                level,
                model.form(),
                &q,
                &tables,
                &prep,
                &mut scores,
            );
            let out = scores
                .chunks_exact(n_ent)
                .enumerate()
                .map(|(i, row)| {
                    rank_row(
                        level,
                        row,
                        targets[i],
                        filter.known(side, fixed[i], rels[i]),
                    )
                })
                .collect::<Vec<_>>();
            (side, start, out)
        });
    for (side, start, out) in ranks {
        let c = if side == Side::Head { 0 } else { 1 };
        for (k, (o, p)) in out.into_iter().enumerate() {
            optimistic[2 * (start + k) + c] = o;
            pessimistic[2 * (start + k) + c] = p;
        }
    }
    Ok(())
}
