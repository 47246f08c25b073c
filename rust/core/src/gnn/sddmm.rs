//! SDDMM (sampled dense-dense matrix product): one score per edge and head from the features of
//! its source and destination, as attention layers need.
//!
//! - [`SddmmOp::Add`]: `u (n_src, H)`, `v (n_dst, H)`; `e[k, h] = u[s_k, h] + v[d_k, h]` (GAT's
//!   additive attention: `u = a_src . W x`, `v = a_dst . W x` per node).
//! - [`SddmmOp::Dot`]: `u (n_src, H * F)`, `v (n_dst, H * F)`; `e[k, h] = <u[s_k, h, :], v[d_k,
//!   h, :]>` (dot-product attention).
//!
//! Edges come in CSR order (`k` runs over destination rows), so every row block writes its own
//! slice of the output. The backward pass of `Dot` reuses the aggregation kernels: the gradient
//! of `v` is an aggregation over in-edges weighted by the upstream edge gradient, the gradient of
//! `u` the same gather over the transposed graph. `Add` sums each node's edge gradients directly
//! (`edge_sums`: per destination over its in-edges, per source over its out-edges in transposed
//! order). Both are deterministic for any thread count.

use super::aggregate::check_transposed;
use super::{aggregate, aggregate_backward, Csr, Reduce, Weights};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::par::Par;
use crate::simd::{dispatch, Kernel, Level};

/// Edges per parallel block.
const BLOCK_EDGES: usize = 1 << 12;

/// How an edge's score combines its endpoints' features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SddmmOp {
    Add,
    Dot,
}

impl SddmmOp {
    /// Parses `add` or `dot`.
    pub fn parse(name: &str) -> Result<SddmmOp> {
        match name {
            "add" => Ok(SddmmOp::Add),
            "dot" => Ok(SddmmOp::Dot),
            other => Err(Error::Value(format!(
                "op: expected 'add' or 'dot', got {other:?}"
            ))),
        }
    }
}

/// Checks `u (n_src, f)`, `v (n_dst, f)` and the head split; returns the features per head.
fn check(
    g: &Csr<'_>,
    u_len: usize,
    v_len: usize,
    f: usize,
    heads: usize,
    op: SddmmOp,
) -> Result<usize> {
    g.check_indices()?; // sources are indexed with checks (a no-op for a `Csr::new` graph)
    if heads == 0 {
        return Err(Error::Value("heads: must be >= 1".into()));
    }
    match op {
        SddmmOp::Add if f != heads => {
            return Err(Error::Value(format!(
                "u: op 'add' takes one value per node and head ({heads}), got {f} columns"
            )))
        }
        SddmmOp::Dot if !f.is_multiple_of(heads) => {
            return Err(Error::Value(format!(
                "u: {heads} heads do not divide {f} features"
            )))
        }
        _ => {}
    }
    if u_len != g.n_cols() * f {
        return Err(Error::Shape {
            arg: "u".into(),
            expected: vec![g.n_cols(), f],
            got: vec![u_len],
        });
    }
    if v_len != g.n_rows() * f {
        return Err(Error::Shape {
            arg: "v".into(),
            expected: vec![g.n_rows(), f],
            got: vec![v_len],
        });
    }
    Ok(f / heads)
}

/// `<a, b>` with 8 accumulators added in a fixed order, then the tail (vectorises, same result
/// at every SIMD level). Also the edge-weight gradient of the sum and mean aggregations.
#[inline(always)]
pub(super) fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    const L: usize = 8;
    let b = &b[..a.len()];
    let mut acc = [T::ZERO; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y): (&[T; L], &[T; L]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for l in 0..L {
            acc[l] = acc[l] + x[l] * y[l];
        }
    }
    // The tail in its own sum: a dynamic lane index would keep `acc` in memory.
    let tail = ra.iter().zip(rb).fold(T::ZERO, |s, (&x, &y)| s + x * y);
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])) + tail
}

/// One block of destination rows.
struct Rows<'a, T> {
    g: Csr<'a>,
    rows: std::ops::Range<usize>,
    u: &'a [T],
    v: &'a [T],
    f: usize,
    heads: usize,
    op: SddmmOp,
    out: &'a mut [T],
}

impl<T: Float> Kernel for Rows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (f, heads) = (self.f, self.heads);
        let fh = f / heads;
        let first = self.g.indptr()[self.rows.start] as usize;
        for d in self.rows.clone() {
            let vd = &self.v[d * f..(d + 1) * f];
            for e in self.g.row(d) {
                let s = self.g.indices()[e] as usize;
                let us = &self.u[s * f..(s + 1) * f];
                let o = &mut self.out[(e - first) * heads..(e - first + 1) * heads];
                match self.op {
                    SddmmOp::Add => {
                        for h in 0..heads {
                            o[h] = us[h] + vd[h];
                        }
                    }
                    SddmmOp::Dot => {
                        for h in 0..heads {
                            o[h] = dot(&us[h * fh..(h + 1) * fh], &vd[h * fh..(h + 1) * fh]);
                        }
                    }
                }
            }
        }
    }
}

/// Scores `out (E, heads)` in CSR edge order from `u (n_src, f)` and `v (n_dst, f)`; `f` is
/// `heads` for [`SddmmOp::Add`] and `heads * F` for [`SddmmOp::Dot`].
#[allow(clippy::too_many_arguments)]
pub fn sddmm<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    u: &[T],
    v: &[T],
    f: usize,
    heads: usize,
    op: SddmmOp,
    out: &mut [T],
) -> Result<()> {
    check(&g, u.len(), v.len(), f, heads, op)?;
    if out.len() != g.nnz() * heads {
        return Err(Error::len("out", g.nnz() * heads, out.len()));
    }
    let mut jobs = Vec::new();
    let mut rest = out;
    for rows in g.blocks(BLOCK_EDGES / f.max(1)) {
        let n = (g.indptr()[rows.end] - g.indptr()[rows.start]) as usize;
        let (o, r) = std::mem::take(&mut rest).split_at_mut(n * heads);
        rest = r;
        jobs.push(Rows {
            g,
            rows,
            u,
            v,
            f,
            heads,
            op,
            out: o,
        });
    }
    par.for_work(g.nnz() * f.max(1))
        .for_each(jobs, |job| dispatch(level, job));
    Ok(())
}

/// `out (n_rows, heads)`: per row of `csr`, the sum of `grad (E, heads)` over the row's edges
/// (edge `perm[k]` for the row's `k`-th entry when given). Rows in blocks of balanced edge
/// counts; each sum in edge order (same bits for any thread count).
fn edge_sums<T: Float>(
    par: Par,
    csr: &Csr<'_>,
    perm: Option<&[i64]>,
    grad: &[T],
    heads: usize,
    out: &mut [T],
) {
    let ip = csr.indptr();
    let mut jobs = Vec::new();
    let mut rest = out;
    for rows in csr.blocks(BLOCK_EDGES) {
        let (o, r) = std::mem::take(&mut rest).split_at_mut(rows.len() * heads);
        rest = r;
        jobs.push((rows, o));
    }
    par.for_work(csr.nnz() * heads).for_each(jobs, |(rows, o)| {
        for (row, acc) in rows.zip(o.chunks_exact_mut(heads)) {
            acc.fill(T::ZERO);
            for k in ip[row] as usize..ip[row + 1] as usize {
                let e = perm.map_or(k, |p| p[k] as usize);
                for (a, &x) in acc.iter_mut().zip(&grad[e * heads..(e + 1) * heads]) {
                    *a = *a + x;
                }
            }
        }
    });
}

/// Backward of [`sddmm`]: `grad_u (n_src, f)` and `grad_v (n_dst, f)` from `grad (E, heads)`,
/// with the transposed graph `gt` and `perm` as in [`aggregate_backward`].
#[allow(clippy::too_many_arguments)]
pub fn sddmm_backward<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    gt: Csr<'_>,
    perm: &[i64],
    u: &[T],
    v: &[T],
    f: usize,
    heads: usize,
    op: SddmmOp,
    grad: &[T],
    grad_u: &mut [T],
    grad_v: &mut [T],
) -> Result<()> {
    check(&g, u.len(), v.len(), f, heads, op)?;
    if grad.len() != g.nnz() * heads {
        return Err(Error::Shape {
            arg: "grad".into(),
            expected: vec![g.nnz(), heads],
            got: vec![grad.len()],
        });
    }
    if grad_u.len() != u.len() {
        return Err(Error::len("grad_u", u.len(), grad_u.len()));
    }
    if grad_v.len() != v.len() {
        return Err(Error::len("grad_v", v.len(), grad_v.len()));
    }
    let w = Some(Weights { w: grad, heads });
    match op {
        SddmmOp::Dot => {
            // grad_v[d, h] = sum over in-edges of grad[e, h] * u[s, h]: an aggregation.
            aggregate(par, level, g, u, f, w, Reduce::Sum, grad_v, None)?;
            // grad_u[s, h] = sum over out-edges of grad[e, h] * v[d, h]: its transposed gather.
            aggregate_backward(
                par,
                level,
                g,
                gt,
                perm,
                u,
                f,
                w,
                Reduce::Sum,
                None,
                v,
                grad_u,
                None,
            )
        }
        SddmmOp::Add => {
            // Sums of the edge gradients per node: over each destination's in-edges in forward
            // order, and over each source's out-edges in transposed order (the sums the
            // aggregation kernels make of a feature of ones, without the aggregation: 9x the
            // forward's time that way).
            check_transposed(&g, &gt, perm, true)?;
            edge_sums(par, &g, None, grad, heads, grad_v); // f == heads for 'add'
            edge_sums(par, &gt, Some(perm), grad, heads, grad_u);
            Ok(())
        }
    }
}
