//! Scores: of given triples (with their row gradients), and 1-vs-all scores of many queries
//! against every entity through the model's [`Form`]: one GEMM for the dot form (DistMult,
//! ComplEx) and the squared-L2 expansion (TransE-L2), SIMD distance kernels for L1 (TransE-L1)
//! and complex moduli (RotatE).
//!
//! The RotatE distance kernel (`distance.rs`) keeps a block of query rows in L1 cache and
//! streams the entity table past it; TransE-L1 (`l1.rs`) transposes the entity table into
//! panels with entities in the vector lanes. Both sum in a fixed shape, so every SIMD level and
//! thread count gives the same bits. The GEMM forms follow the `gemm` crate's ISA choice.

use super::l1::{self, L1Table};
use super::{distance, Form, Model, Side, Tables};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, Gemm, Mat, MatMut};
use crate::par::Par;
use crate::simd::{self, Kernel, Level};

/// Triples per parallel job of the per-triple kernels.
const TRIPLE_BLOCK: usize = 1 << 10;
/// Query rows per block of the distance kernels (their rows stay in L1 cache).
pub(crate) const QUERY_BLOCK: usize = 16;
/// At most this many query rows per job of the TransE-L1 kernel (see `form_rows`).
const L1_QUERY_BLOCK: usize = 128;

/// The fast 1-vs-all distances are expansions: TransE-L2's `|q|^2 + |e|^2 - 2 q.e` (one GEMM)
/// and TransE-L1's `2 sum max(q, e) - sum q - sum e` (`l1.rs`). Their rounding error is a few
/// units of the operands' magnitude (`|q|^2 + |e|^2`, `sum |q| + sum |e|`), so a distance that
/// is small against that magnitude, which is where the answer of a query usually lies, loses
/// its digits to cancellation (in f32, a TransE-L2 distance of 2e-3 between unit vectors came
/// out 10 % wrong and reordered neighbours). Every distance below this fraction of the
/// magnitude is recomputed directly, `sum_j (q_j - e_j)^2` (here, in the rows where one
/// cancelled) or `sum_j |q_j - e_j|` (in `l1.rs`'s kernel, as each score is formed), in the
/// lane order of `distance::lane_distance`, whose error
/// is relative to the distance itself. Above it the expansion's error relative to the distance
/// is at most `d eps / REFINE` (8e-4 in f32 at d = 200), typically `sqrt(d) eps / REFINE`
/// (5e-5). Cost, measured on 1,000 queries x 14,541 entities at d = 200: within noise for
/// spread-out tables, where few distances qualify; in the worst case, a table whose entities
/// all lie close together against their norms, every distance is recomputed: 0.52 s for L2
/// and 0.74 s for L1 against 37 and 41 ms (`torch.cdist`: 0.09 and 0.92 s).
pub(crate) const REFINE: f64 = 1.0 / 64.0;

/// TransE-L2's scores of a block of query rows from their GEMM products, compiled per SIMD
/// level by `dispatch`: row by row, `d2 = |q|^2 + |e|^2 - 2 q.e` (vectorised, noting whether
/// any lost too much to cancellation, module notes of [`REFINE`]); in the rare rows where one
/// did, those distances recomputed directly; then `-sqrt(max(d2, 0))`.
struct PostL2<'a, T> {
    /// The block's query rows `(nb, d)`.
    q: &'a [T],
    /// `|e|^2` of every entity.
    e_norms: &'a [T],
    tables: &'a Tables<'a, T>,
    /// `(nb, n_ent)`: the products `q.e` in, the scores out.
    out: &'a mut [T],
}

impl<T: Float> Kernel for PostL2<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (two, refine, inf) = (T::of(2.0), T::of(REFINE), T::of(f64::INFINITY));
        let n_ent = self.e_norms.len();
        let d = self.tables.d_e;
        for (row, qi) in self.out.chunks_mut(n_ent).zip(self.q.chunks_exact(d)) {
            let qn = sq_norm(qi);
            let mut cancelled = false;
            // Where the squared norms overflow (entries from ~1e18 in f32) the expansion is
            // `inf` or `inf - inf`: those are recomputed directly too, giving what the direct
            // formula gives (finite, or `-inf` where its own squares overflow, as `score` and
            // torch.cdist), never a clamped 0 (the best score) or a spurious `-inf`.
            // (False for NaN: the comparisons say what is kept.)
            let kept = |d2: T, m: T| (d2 >= refine * m) & (m < inf);
            for (s, &en) in row.iter_mut().zip(self.e_norms) {
                let m = qn + en;
                let d2 = m - two * *s;
                *s = d2;
                cancelled |= !kept(d2, m);
            }
            if cancelled {
                for (e, (s, &en)) in row.iter_mut().zip(self.e_norms).enumerate() {
                    if !kept(*s, qn + en) {
                        *s = distance::lane_distance(qi, self.tables.e(e), |v| v * v);
                    }
                }
            }
            // Negative rounding clamped to 0; NaN (from NaN entries) stays NaN.
            for s in row.iter_mut() {
                *s = -(if *s < T::ZERO { T::ZERO } else { *s }).sqrt();
            }
        }
    }
}

/// `|v|^2`, summed in order: the magnitude TransE-L2's expansion rounds against.
fn sq_norm<T: Float>(v: &[T]) -> T {
    v.iter().fold(T::ZERO, |a, &x| a + x * x)
}

/// Scores of `triples (n, 3)` into `out (n)`.
pub fn score_triples<T: Float, M: Model>(
    par: Par,
    model: M,
    tables: Tables<'_, T>,
    triples: &[i64],
    out: &mut [T],
) -> Result<()> {
    let n = tables.check_triples(triples, "triples")?;
    if out.len() != n {
        return Err(Error::len("out", n, out.len()));
    }
    let jobs: Vec<_> = out
        .chunks_mut(TRIPLE_BLOCK)
        .zip(triples.chunks(3 * TRIPLE_BLOCK))
        .collect();
    par.for_work(n * tables.d_e * 4).for_each(jobs, |(o, tr)| {
        for (s, t) in o.iter_mut().zip(tr.chunks_exact(3)) {
            let (h, r, t) = (t[0] as usize, t[1] as usize, t[2] as usize);
            *s = model.score(tables.e(h), tables.r(r), tables.e(t));
        }
    });
    Ok(())
}

/// Row gradients of `sum(upstream * score)`: `gh (n, d_e)`, `gr (n, d_r)`, `gt (n, d_e)`, one
/// row per triple (overwritten; scatter them into the tables with the triples' ids).
#[allow(clippy::too_many_arguments)]
pub fn score_triples_grad<T: Float, M: Model>(
    par: Par,
    model: M,
    tables: Tables<'_, T>,
    triples: &[i64],
    upstream: &[T],
    gh: &mut [T],
    gr: &mut [T],
    gt: &mut [T],
) -> Result<()> {
    let n = tables.check_triples(triples, "triples")?;
    let (de, dr) = (tables.d_e, tables.d_r);
    if upstream.len() != n {
        return Err(Error::len("upstream", n, upstream.len()));
    }
    for (name, g, d) in [
        ("grad_head", &gh, de),
        ("grad_rel", &gr, dr),
        ("grad_tail", &gt, de),
    ] {
        if g.len() != n * d {
            return Err(Error::Shape {
                arg: name.into(),
                expected: vec![n, d],
                got: vec![g.len()],
            });
        }
    }
    let b = TRIPLE_BLOCK;
    let jobs: Vec<_> = triples
        .chunks(3 * b)
        .zip(upstream.chunks(b))
        .zip(gh.chunks_mut(b * de.max(1)))
        .zip(gr.chunks_mut(b * dr.max(1)))
        .zip(gt.chunks_mut(b * de.max(1)))
        .collect();
    par.for_work(n * de * 8)
        .for_each(jobs, |((((tr, up), gh), gr), gt)| {
            gh.fill(T::ZERO);
            gr.fill(T::ZERO);
            gt.fill(T::ZERO);
            for (i, t) in tr.chunks_exact(3).enumerate() {
                let (h, r, t) = (t[0] as usize, t[1] as usize, t[2] as usize);
                model.grad(
                    tables.e(h),
                    tables.r(r),
                    tables.e(t),
                    up[i],
                    &mut gh[i * de..(i + 1) * de],
                    &mut gr[i * dr..(i + 1) * dr],
                    &mut gt[i * de..(i + 1) * de],
                );
            }
        });
    Ok(())
}

/// Query rows `q (n, d_e)` for the fixed entities and relations of 1-vs-all queries.
pub(crate) fn queries<T: Float, M: Model>(
    model: M,
    tables: &Tables<'_, T>,
    fixed: &[i64],
    rels: &[i64],
    side: Side,
) -> Vec<T> {
    let d = tables.d_e;
    let mut q = vec![T::ZERO; fixed.len() * d];
    for ((row, &x), &r) in q.chunks_exact_mut(d.max(1)).zip(fixed).zip(rels) {
        model.query(tables.e(x as usize), tables.r(r as usize), side, row);
    }
    q
}

/// Checks the ids of 1-vs-all queries.
pub(crate) fn check_queries<T>(tables: &Tables<'_, T>, fixed: &[i64], rels: &[i64]) -> Result<()> {
    if fixed.len() != rels.len() {
        return Err(Error::len("relations", fixed.len(), rels.len()));
    }
    for (name, ids, size) in [
        ("entities", fixed, tables.n_ent),
        ("relations", rels, tables.n_rel),
    ] {
        if let Some((k, &i)) = ids
            .iter()
            .enumerate()
            .find(|(_, &i)| i < 0 || i as usize >= size)
        {
            return Err(Error::Index {
                arg: format!("{name}[{k}]"),
                index: i,
                size,
            });
        }
    }
    Ok(())
}

/// 1-vs-all scores: `out[i, e] = score(fixed[i], rels[i], e)` for `Side::Tail` (the fixed
/// entity is the head) or `score(e, rels[i], fixed[i])` for `Side::Head`; `out (n, n_ent)`.
#[allow(clippy::too_many_arguments)]
pub fn score_all<T: Float + Gemm, M: Model>(
    par: Par,
    level: Level,
    model: M,
    tables: Tables<'_, T>,
    fixed: &[i64],
    rels: &[i64],
    side: Side,
    out: &mut [T],
) -> Result<()> {
    check_queries(&tables, fixed, rels)?;
    let n = fixed.len();
    if out.len() != n * tables.n_ent {
        return Err(Error::Shape {
            arg: "out".into(),
            expected: vec![n, tables.n_ent],
            got: vec![out.len()],
        });
    }
    let q = queries(model, &tables, fixed, rels, side);
    let prep = prepare(par, model.form(), &tables);
    form_rows(par, level, model.form(), &q, &tables, &prep, out);
    Ok(())
}

/// What a form needs of the entity table besides its rows, computed once per call (not per
/// block of queries): the squared row norms for L2, the transposed panels and row sums for L1.
pub(crate) enum EntityPrep<T> {
    Nothing,
    Norms(Vec<T>),
    L1(L1Table<T>),
}

/// [`EntityPrep`] data of `tables` for `form`.
pub(crate) fn prepare<T: Float>(par: Par, form: Form, tables: &Tables<'_, T>) -> EntityPrep<T> {
    match form {
        Form::NegL2 => EntityPrep::Norms(
            (0..tables.n_ent)
                .map(|e| {
                    let row = tables.e(e);
                    sq_norm(row)
                })
                .collect(),
        ),
        Form::NegL1 => EntityPrep::L1(L1Table::new(par, tables.ent, tables.d_e)),
        Form::Dot | Form::NegModulus => EntityPrep::Nothing,
    }
}

/// `out (nq, n_ent)` = `form(q_i, e)` for the query rows `q (nq, d_e)` and every entity.
/// Parallel over fixed blocks of query rows (and inside the GEMM for the dot forms).
pub(crate) fn form_rows<T: Float + Gemm>(
    par: Par,
    level: Level,
    form: Form,
    q: &[T],
    tables: &Tables<'_, T>,
    prep: &EntityPrep<T>,
    out: &mut [T],
) {
    let (d, n_ent) = (tables.d_e, tables.n_ent);
    let nq = q.len().checked_div(d).unwrap_or(0);
    if nq == 0 || n_ent == 0 {
        return;
    }
    match form {
        Form::Dot | Form::NegL2 => {
            let qm = Mat::new(q, nq, d);
            let em = Mat::new(tables.ent, n_ent, d).t();
            gemm(par, T::ONE, qm, em, T::ZERO, MatMut::new(out, nq, n_ent));
            if form == Form::NegL2 {
                let EntityPrep::Norms(norms) = prep else {
                    panic!("form_rows: L2 needs the entity norms from `prepare`");
                };
                let blocks: Vec<_> = out
                    .chunks_mut(QUERY_BLOCK * n_ent)
                    .zip(q.chunks(QUERY_BLOCK * d))
                    .collect();
                par.for_work(nq * n_ent).for_each(blocks, |(out, q)| {
                    let kernel = PostL2 {
                        q,
                        e_norms: norms,
                        tables,
                        out,
                    };
                    simd::dispatch(level, kernel);
                });
            }
        }
        Form::NegL1 | Form::NegModulus => {
            // Each job of the TransE-L1 kernel streams the whole panel table (11.6 MB at
            // 14,541 x 200): up to 128 query rows per job read it 8x less often than 16 (from
            // L3, or from memory when other processes crowd the L3), while >= 4 jobs per thread
            // keep the threads busy. A score's arithmetic does not depend on the job size, so
            // the bits do not depend on the thread count either.
            let rows = match form {
                Form::NegL1 => {
                    let jobs = 4 * par.threads();
                    (nq / jobs).clamp(QUERY_BLOCK, L1_QUERY_BLOCK) / 4 * 4
                }
                _ => QUERY_BLOCK,
            };
            let jobs: Vec<_> = out
                .chunks_mut(rows * n_ent)
                .zip(q.chunks(rows * d))
                .collect();
            let par = par.for_work(nq * n_ent * d);
            if form == Form::NegL1 {
                let EntityPrep::L1(table) = prep else {
                    panic!("form_rows: L1 needs the entity panels from `prepare`");
                };
                par.for_each(jobs, |(out, q)| l1::block(level, q, table, tables.ent, out));
            } else {
                par.for_each(jobs, |(out, q)| {
                    distance::block(level, q, tables.ent, d, out)
                });
            }
        }
    }
}
