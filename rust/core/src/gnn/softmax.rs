//! Edge softmax: attention scores `(E, heads)` normalised over the in-edges of each destination,
//! `alpha[e, h] = exp(s[e, h] - m) / sum_{e' -> d} exp(s[e', h] - m)` with `m` the row maximum
//! (so large scores do not overflow). Backward:
//! `grad_s[e, h] = alpha[e, h] * (g[e, h] - sum_{e' -> d} alpha[e', h] g[e', h])`.
//! Rows are independent: every block writes its own slice, identical for any thread count.

use super::Csr;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::par::Par;
use crate::simd::{dispatch, Kernel, Level};

/// Edges per parallel block.
const BLOCK_EDGES: usize = 1 << 13;

fn check_len(g: &Csr<'_>, len: usize, heads: usize, name: &str) -> Result<()> {
    if heads == 0 {
        return Err(Error::Value("heads: must be >= 1".into()));
    }
    if len != g.nnz() * heads {
        return Err(Error::Shape {
            arg: name.into(),
            expected: vec![g.nnz(), heads],
            got: vec![len],
        });
    }
    Ok(())
}

/// Splits the `(E, heads)` output into blocks of whole destination rows, makes one kernel per
/// block and runs them.
fn run_row_blocks<'a, T: Float, K: Kernel<Output = ()> + Send>(
    par: Par,
    level: Level,
    g: &Csr<'_>,
    heads: usize,
    out: &'a mut [T],
    make: impl Fn(std::ops::Range<usize>, &'a mut [T]) -> K,
) {
    let mut jobs = Vec::new();
    let mut rest = out;
    for rows in g.blocks(BLOCK_EDGES / heads) {
        let n = (g.indptr()[rows.end] - g.indptr()[rows.start]) as usize;
        let (o, r) = std::mem::take(&mut rest).split_at_mut(n * heads);
        rest = r;
        jobs.push(make(rows, o));
    }
    par.for_work(g.nnz() * heads * 8)
        .for_each(jobs, |job| dispatch(level, job));
}

struct Forward<'a, T> {
    g: Csr<'a>,
    rows: std::ops::Range<usize>,
    heads: usize,
    scores: &'a [T],
    out: &'a mut [T],
}

impl<T: Float> Kernel for Forward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let heads = self.heads;
        let first = self.g.indptr()[self.rows.start] as usize;
        for d in self.rows.clone() {
            let r = self.g.row(d);
            let lo = (r.start - first) * heads;
            let hi = (r.end - first) * heads;
            let s = &self.scores[r.start * heads..r.end * heads];
            let o = &mut self.out[lo..hi];
            for h in 0..heads {
                let mut m = T::of(f64::NEG_INFINITY);
                for k in (h..s.len()).step_by(heads) {
                    if s[k] > m {
                        m = s[k];
                    }
                }
                let mut sum = T::ZERO;
                for k in (h..s.len()).step_by(heads) {
                    let e = (s[k] - m).exp();
                    o[k] = e;
                    sum = sum + e;
                }
                let inv = T::ONE / sum;
                for k in (h..s.len()).step_by(heads) {
                    o[k] = o[k] * inv;
                }
            }
        }
    }
}

/// Softmax of `scores (E, heads)` (CSR edge order) over each destination's in-edges, into
/// `out (E, heads)`. Scores must be finite (the caller checks).
pub fn edge_softmax<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    scores: &[T],
    heads: usize,
    out: &mut [T],
) -> Result<()> {
    check_len(&g, scores.len(), heads, "scores")?;
    check_len(&g, out.len(), heads, "out")?;
    run_row_blocks(par, level, &g, heads, out, |rows, out| Forward {
        g,
        rows,
        heads,
        scores,
        out,
    });
    Ok(())
}

struct Backward<'a, T> {
    g: Csr<'a>,
    rows: std::ops::Range<usize>,
    heads: usize,
    alpha: &'a [T],
    grad: &'a [T],
    out: &'a mut [T],
}

impl<T: Float> Kernel for Backward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let heads = self.heads;
        let first = self.g.indptr()[self.rows.start] as usize;
        for d in self.rows.clone() {
            let r = self.g.row(d);
            let a = &self.alpha[r.start * heads..r.end * heads];
            let g = &self.grad[r.start * heads..r.end * heads];
            let o = &mut self.out[(r.start - first) * heads..(r.end - first) * heads];
            for h in 0..heads {
                let mut dot = T::ZERO;
                for k in (h..a.len()).step_by(heads) {
                    dot = dot + a[k] * g[k];
                }
                for k in (h..a.len()).step_by(heads) {
                    o[k] = a[k] * (g[k] - dot);
                }
            }
        }
    }
}

/// Backward of [`edge_softmax`]: `grad_scores (E, heads)` from the forward output `alpha` and
/// the upstream gradient `grad (E, heads)`.
pub fn edge_softmax_backward<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    alpha: &[T],
    grad: &[T],
    heads: usize,
    grad_scores: &mut [T],
) -> Result<()> {
    check_len(&g, alpha.len(), heads, "alpha")?;
    check_len(&g, grad.len(), heads, "grad")?;
    check_len(&g, grad_scores.len(), heads, "grad_scores")?;
    run_row_blocks(par, level, &g, heads, grad_scores, |rows, out| Backward {
        g,
        rows,
        heads,
        alpha,
        grad,
        out,
    });
    Ok(())
}
