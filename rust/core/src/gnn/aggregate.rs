//! Neighbourhood aggregation: `out[d] = reduce_{e = (s -> d)} w_e * x[s]`, forward and backward.
//! Weights may be per head ([`Weights`]): head `h` scales its own group of feature columns.
//!
//! Reductions: sum, mean (the weighted sum divided by the in-degree), max and min (element-wise;
//! `arg[d, j]` records the edge that won, -1 for a node without in-edges). A node without
//! in-edges aggregates to 0. Duplicate edges count once each; self-loops are ordinary edges.
//!
//! Backward: `grad_x[s] = sum over edges e = (s -> d) of w_e * g[d]` (divided by deg(d) for mean;
//! for max/min only where `arg[d, j] == e`), computed as a gather over the transposed CSR (for sum
//! and mean by the forward kernel itself, with the weights permuted to transposed edge order); and
//! optionally `grad_w[e] = <g[d], x[s]>` (restricted to the winning features for max/min),
//! gathered per destination row.

use super::{heads_of, Csr, Weights};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::par::{Par, CHUNK, MIN_PARALLEL_WORK};
use crate::simd::{dispatch, Kernel, Level};

/// Edges per parallel work block.
const BLOCK_EDGES: usize = 1 << 12;
/// Edges per block of the forward pass (x features: `FORWARD_BLOCK_EDGES / f` edges).
const FORWARD_BLOCK_EDGES: usize = 1 << 17;

/// The reduction over a node's in-edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
}

impl Reduce {
    /// Parses `sum`, `mean`, `max`, `min`.
    pub fn parse(name: &str) -> Result<Reduce> {
        match name {
            "sum" | "add" => Ok(Reduce::Sum),
            "mean" => Ok(Reduce::Mean),
            "max" => Ok(Reduce::Max),
            "min" => Ok(Reduce::Min),
            other => Err(Error::Value(format!(
                "reduce: expected 'sum', 'mean', 'max' or 'min', got {other:?}"
            ))),
        }
    }
    fn extremum(self) -> bool {
        matches!(self, Reduce::Max | Reduce::Min)
    }
}

fn check_weights<T: Copy>(g: &Csr<'_>, weights: &Option<Weights<'_, T>>, f: usize) -> Result<()> {
    match weights {
        Some(w) => w.check(g.nnz(), f, "edge_weight"),
        None => Ok(()),
    }
}

/// `acc = sum over edges of w_e * x[s, t0..t0 + N]` with the sums in registers (`h`: the head
/// of columns `t0..t0 + N`). Returns false if a source was outside `0..n_cols` (its row is
/// then read as row 0 and the caller reports the error).
///
/// Edges go in pairs into two sets of sums (even and odd edges of the row, added at the end),
/// which halves the chain of dependent adds and the loop overhead per edge; the order of the
/// additions depends on the graph alone. (Software prefetching of the rows ahead was measured
/// and gained nothing on an Intel Xeon; prefetching the next rows' sources on Zen 4 made the
/// forward 1.0-1.4x slower: the out-of-order core already overlaps these gathers.)
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sum_tile<T: Float, const N: usize>(
    g: &Csr<'_>,
    edges: std::ops::Range<usize>,
    x: &[T],
    f: usize,
    t0: usize,
    w: Option<Weights<'_, T>>,
    h: usize,
    acc: &mut [T],
) -> bool {
    let first = edges.start;
    let sources = &g.indices()[edges];
    // The precondition of `sum_edges`.
    assert!(
        x.len() == g.n_cols() * f && t0 + N <= f && (g.n_cols() > 0 || sources.is_empty()),
        "tile outside x"
    );
    // SAFETY: as just asserted.
    let (sum, ok) = unsafe {
        match w {
            Some(w) => sum_edges::<T, N, true>(sources, x, f, t0, |k| w.at(first + k, h)),
            None => sum_edges::<T, N, false>(sources, x, f, t0, |_| T::ONE),
        }
    };
    acc[..N].copy_from_slice(&sum);
    ok
}

/// The loop of [`sum_tile`] over the `sources` of one row (`weight(k)`: of its `k`-th edge),
/// compiled once with and once without weights; false if a source is not a row of `x`. The
/// sources are tested here, as they are used (so the graph's indices need no separate pass),
/// and the gathers are then unchecked: the loop is bound by instruction throughput, and a
/// bounds check would be a third of its instructions.
///
/// # Safety
/// `x.len()` must be `n * f` with `n >= 1` rows (or `sources` empty), and `t0 + N <= f`.
#[inline(always)]
unsafe fn sum_edges<T: Float, const N: usize, const WEIGHTED: bool>(
    sources: &[i64],
    x: &[T],
    f: usize,
    t0: usize,
    weight: impl Fn(usize) -> T,
) -> ([T; N], bool) {
    // One vectorised test of the row's sources first, so the gathers below depend on nothing
    // but the loaded index (a conditional move per gather was measured 30 % slower).
    let n = (x.len() / f.max(1)) as u64;
    if !sources.iter().fold(true, |ok, &s| ok & ((s as u64) < n)) {
        return ([T::ZERO; N], false);
    }
    let row = |s: i64| -> &[T; N] {
        // SAFETY: `s < n` (tested above), so `s * f + t0 + N <= (s + 1) * f <= x.len()`.
        unsafe { &*(x.as_ptr().add(s as usize * f + t0) as *const [T; N]) }
    };
    let (mut even, mut odd) = ([T::ZERO; N], [T::ZERO; N]);
    let pairs = sources.chunks_exact(2);
    let last = pairs.remainder().first().copied();
    for (k, pair) in pairs.enumerate() {
        let (r0, r1) = (row(pair[0]), row(pair[1]));
        if WEIGHTED {
            let (w0, w1) = (weight(2 * k), weight(2 * k + 1));
            for j in 0..N {
                even[j] = even[j] + w0 * r0[j];
                odd[j] = odd[j] + w1 * r1[j];
            }
        } else {
            for j in 0..N {
                even[j] = even[j] + r0[j];
                odd[j] = odd[j] + r1[j];
            }
        }
    }
    if let Some(s) = last {
        let (r, we) = (row(s), weight(sources.len() - 1));
        for j in 0..N {
            even[j] = even[j] + if WEIGHTED { we * r[j] } else { r[j] };
        }
    }
    for j in 0..N {
        even[j] = even[j] + odd[j];
    }
    (even, true)
}

/// The last, narrower tile (as [`sum_tile`], with bounds-checked gathers).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sum_tile_dyn<T: Float>(
    g: &Csr<'_>,
    edges: std::ops::Range<usize>,
    x: &[T],
    f: usize,
    t0: usize,
    width: usize,
    w: Option<Weights<'_, T>>,
    h: usize,
    acc: &mut [T],
) -> bool {
    let acc = &mut acc[..width];
    acc.fill(T::ZERO);
    for e in edges {
        let s = g.indices()[e];
        if s < 0 || s as usize >= g.n_cols() {
            return false;
        }
        let s = s as usize;
        let xs = &x[s * f + t0..s * f + t0 + width];
        let we = w.map_or(T::ONE, |w| w.at(e, h));
        for (a, &v) in acc.iter_mut().zip(xs) {
            *a = *a + we * v;
        }
    }
    true
}

/// One block of destination rows of the forward pass.
struct Forward<'a, T> {
    g: Csr<'a>,
    rows: std::ops::Range<usize>,
    x: &'a [T],
    f: usize,
    w: Option<Weights<'a, T>>,
    reduce: Reduce,
    out: &'a mut [T],
    arg: &'a mut [i64],
}

impl<T: Float> Kernel for Forward<'_, T> {
    /// False if a source index was out of range (sum and mean test them as they gather).
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let mut ok = true;
        let f = self.f;
        let heads = heads_of(&self.w);
        let fh = f / heads;
        // Rows in CSR order. (Visiting a block's rows by increasing in-degree, so that each
        // row's edge loop ends where the branch predictor expects, was 1.2-1.5x faster on an
        // Intel Xeon, and 1.3-1.9x slower on this machine kind's AMD EPYC (Zen 4): measured in
        // one process, calls interleaved, 2026-11-26, forward at (nodes, edges, F) = (100k, 2M,
        // 16) 4.04 -> 2.13 ms, (100k, 1M, 64) 5.13 -> 2.78 ms, (20k, 0.4M, 256) 4.35 -> 3.39
        // ms in CSR order.)
        for k in 0..self.rows.len() {
            let d = self.rows.start + k;
            let acc = &mut self.out[k * f..(k + 1) * f];
            let edges = self.g.row(d);
            let deg = edges.len();
            match self.reduce {
                Reduce::Sum | Reduce::Mean => {
                    // Features in register tiles: the running sums stay in registers while the
                    // row's edges stream by (instead of a load and store per edge). Tiles never
                    // cross a head's columns.
                    for h in 0..heads {
                        let end = (h + 1) * fh;
                        let mut t0 = h * fh;
                        while t0 < end {
                            let width = end - t0;
                            let (g, x, w) = (&self.g, self.x, self.w);
                            let tile = &mut acc[t0..t0 + width];
                            // Narrower fixed tiles keep small feature counts in registers too.
                            // 256 bytes of sums (4 AVX-512 registers) at most.
                            let wide = std::mem::size_of::<T>() <= 4;
                            let done = if width >= 64 && wide {
                                ok &= sum_tile::<T, 64>(g, edges.clone(), x, f, t0, w, h, tile);
                                64
                            } else if width >= 32 {
                                ok &= sum_tile::<T, 32>(g, edges.clone(), x, f, t0, w, h, tile);
                                32
                            } else if width >= 16 {
                                ok &= sum_tile::<T, 16>(g, edges.clone(), x, f, t0, w, h, tile);
                                16
                            } else if width >= 8 {
                                ok &= sum_tile::<T, 8>(g, edges.clone(), x, f, t0, w, h, tile);
                                8
                            } else {
                                ok &= sum_tile_dyn(g, edges.clone(), x, f, t0, width, w, h, tile);
                                width
                            };
                            t0 += done;
                        }
                    }
                    if self.reduce == Reduce::Mean && deg > 0 {
                        let n = T::of(deg as f64);
                        for a in acc.iter_mut() {
                            *a = *a / n;
                        }
                    }
                }
                Reduce::Max | Reduce::Min => {
                    let arg = &mut self.arg[k * f..(k + 1) * f];
                    if deg == 0 {
                        acc.fill(T::ZERO);
                        arg.fill(-1);
                        continue;
                    }
                    let max = self.reduce == Reduce::Max;
                    for (i, e) in edges.enumerate() {
                        let s = self.g.indices()[e] as usize;
                        let xs = &self.x[s * f..(s + 1) * f];
                        for h in 0..heads {
                            let we = self.w.map_or(T::ONE, |w| w.at(e, h));
                            for j in h * fh..(h + 1) * fh {
                                let v = we * xs[j];
                                // The first edge wins ties: strict comparisons.
                                if i == 0 || (max && v > acc[j]) || (!max && v < acc[j]) {
                                    acc[j] = v;
                                    arg[j] = e as i64;
                                }
                            }
                        }
                    }
                }
            }
        }
        ok
    }
}

/// Forward aggregation of `x (n_src, f)` into `out (n_dst, f)` along `g` (rows = destinations).
/// `arg (n_dst, f)` receives the winning edge for max/min (and is not touched otherwise).
#[allow(clippy::too_many_arguments)]
pub fn aggregate<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    x: &[T],
    f: usize,
    weights: Option<Weights<'_, T>>,
    reduce: Reduce,
    out: &mut [T],
    arg: Option<&mut [i64]>,
) -> Result<()> {
    if x.len() != g.n_cols() * f {
        return Err(Error::Shape {
            arg: "x".into(),
            expected: vec![g.n_cols(), f],
            got: vec![x.len()],
        });
    }
    if out.len() != g.n_rows() * f {
        return Err(Error::len("out", g.n_rows() * f, out.len()));
    }
    check_weights(&g, &weights, f)?;
    let mut no_arg: [i64; 0] = [];
    let arg: &mut [i64] = match (reduce.extremum(), arg) {
        (true, Some(a)) if a.len() == g.n_rows() * f => a,
        (true, _) => {
            return Err(Error::Value(
                "arg: max/min need an (n_dst, f) int64 buffer".into(),
            ))
        }
        (false, _) => &mut no_arg,
    };
    // Blocks of about FORWARD_BLOCK_EDGES * 4 bytes of gathered features each.
    let blocks = g.blocks(FORWARD_BLOCK_EDGES / f.max(1));
    let mut jobs = Vec::with_capacity(blocks.len());
    let (mut out_rest, mut arg_rest) = (out, arg);
    for rows in blocks {
        let (o, orest) = std::mem::take(&mut out_rest).split_at_mut(rows.len() * f);
        let a_len = if reduce.extremum() { rows.len() * f } else { 0 };
        let (a, arest) = std::mem::take(&mut arg_rest).split_at_mut(a_len);
        out_rest = orest;
        arg_rest = arest;
        jobs.push(Forward {
            g,
            rows,
            x,
            f,
            w: weights,
            reduce,
            out: o,
            arg: a,
        });
    }
    // Max/min gather with checked indexing; with no source rows at all, every edge is bad (the
    // sum kernel's in-loop test needs at least one row to fall back on).
    if reduce.extremum() || (g.n_cols() == 0 && g.nnz() > 0) {
        g.check_indices()?;
    }
    let ok = par
        .for_work(g.nnz() * f)
        .map(jobs, |job| dispatch(level, job));
    if ok.contains(&false) {
        g.check_indices()?;
        return Err(Error::Value(
            "graph: an index out of range was not found again".into(),
        ));
    }
    Ok(())
}

/// One block of source rows of the backward pass (a gather over the transposed graph).
struct Backward<'a, T> {
    gt: Csr<'a>,
    perm: &'a [i64],
    deg: &'a [i64],
    rows: std::ops::Range<usize>,
    grad: &'a [T],
    f: usize,
    w: Option<Weights<'a, T>>,
    reduce: Reduce,
    arg: &'a [i64],
    grad_x: &'a mut [T],
}

impl<T: Float> Kernel for Backward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let f = self.f;
        let heads = heads_of(&self.w);
        let fh = f / heads;
        for (k, s) in self.rows.clone().enumerate() {
            let acc = &mut self.grad_x[k * f..(k + 1) * f];
            acc.fill(T::ZERO);
            for te in self.gt.row(s) {
                let d = self.gt.indices()[te] as usize;
                let e = self.perm[te] as usize;
                for h in 0..heads {
                    let cols = h * fh..(h + 1) * fh;
                    let gd = &self.grad[d * f + cols.start..d * f + cols.end];
                    let mut scale = self.w.map_or(T::ONE, |w| w.at(e, h));
                    if self.reduce == Reduce::Mean {
                        scale = scale / T::of(self.deg[d] as f64);
                    }
                    let acc = &mut acc[cols.clone()];
                    if self.reduce.extremum() {
                        let ad = &self.arg[d * f + cols.start..d * f + cols.end];
                        for j in 0..fh {
                            if ad[j] == e as i64 {
                                acc[j] = acc[j] + scale * gd[j];
                            }
                        }
                    } else {
                        for (a, &v) in acc.iter_mut().zip(gd) {
                            *a = *a + scale * v;
                        }
                    }
                }
            }
        }
    }
}

/// Gradient of the edge weights, per destination row block.
struct WeightGrad<'a, T> {
    g: Csr<'a>,
    rows: std::ops::Range<usize>,
    x: &'a [T],
    grad: &'a [T],
    f: usize,
    heads: usize,
    reduce: Reduce,
    arg: &'a [i64],
    grad_w: &'a mut [T],
    first_edge: usize,
}

impl<T: Float> Kernel for WeightGrad<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (f, heads) = (self.f, self.heads);
        let fh = f / heads;
        for d in self.rows.clone() {
            let edges = self.g.row(d);
            let deg = edges.len();
            for e in edges {
                let s = self.g.indices()[e] as usize;
                for h in 0..heads {
                    let (lo, hi) = (h * fh, (h + 1) * fh);
                    let gd = &self.grad[d * f + lo..d * f + hi];
                    let xs = &self.x[s * f + lo..s * f + hi];
                    let mut dot = T::ZERO;
                    if self.reduce.extremum() {
                        let ad = &self.arg[d * f + lo..d * f + hi];
                        for j in 0..fh {
                            if ad[j] == e as i64 {
                                dot = dot + gd[j] * xs[j];
                            }
                        }
                    } else {
                        for j in 0..fh {
                            dot = dot + gd[j] * xs[j];
                        }
                        if self.reduce == Reduce::Mean {
                            dot = dot / T::of(deg as f64);
                        }
                    }
                    self.grad_w[(e - self.first_edge) * heads + h] = dot;
                }
            }
        }
    }
}

/// Backward of [`aggregate`]: writes `grad_x (n_src, f)` from `grad (n_dst, f)` using the
/// transposed graph `gt` (rows = sources, `indices` = destinations, `perm[k]` = the forward
/// edge of transposed edge `k`) and, when given, the edge-weight gradient `grad_w (E, heads)`
/// (`heads` of the weights, 1 without weights).
/// `x` is needed only for `grad_w`; `arg` only for max/min.
#[allow(clippy::too_many_arguments)]
pub fn aggregate_backward<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    gt: Csr<'_>,
    perm: &[i64],
    x: &[T],
    f: usize,
    weights: Option<Weights<'_, T>>,
    reduce: Reduce,
    arg: Option<&[i64]>,
    grad: &[T],
    grad_x: &mut [T],
    grad_w: Option<&mut [T]>,
) -> Result<()> {
    check_transposed(&g, &gt, perm)?;
    if grad.len() != g.n_rows() * f {
        return Err(Error::Shape {
            arg: "grad_out".into(),
            expected: vec![g.n_rows(), f],
            got: vec![grad.len()],
        });
    }
    if grad_x.len() != g.n_cols() * f {
        return Err(Error::len("grad_x", g.n_cols() * f, grad_x.len()));
    }
    check_weights(&g, &weights, f)?;
    let heads = heads_of(&weights);
    let arg: &[i64] = match (reduce.extremum(), arg) {
        (true, Some(a)) if a.len() == g.n_rows() * f => a,
        (true, _) => {
            return Err(Error::Value(
                "arg: max/min need the forward pass's arg".into(),
            ))
        }
        (false, _) => &[],
    };
    if reduce.extremum() {
        check_winners(par, g, arg, f)?;
    }
    if grad_w.is_some() && x.len() != g.n_cols() * f {
        return Err(Error::Shape {
            arg: "x".into(),
            expected: vec![g.n_cols(), f],
            got: vec![x.len()],
        });
    }
    if grad_w
        .as_ref()
        .is_some_and(|gw| gw.len() != g.nnz() * heads)
    {
        return Err(Error::len(
            "grad_weight",
            g.nnz() * heads,
            grad_w.as_ref().map_or(0, |gw| gw.len()),
        ));
    }
    // Sum and mean check the transposed graph's indices as they gather; the other kernels
    // index with checks and need them valid first.
    if reduce.extremum() {
        gt.check_indices()?;
    }
    if grad_w.is_some() {
        g.check_indices()?;
    }
    let deg: Vec<i64> = g.indptr().windows(2).map(|w| w[1] - w[0]).collect();
    let par = par.for_work(g.nnz() * f);
    if reduce.extremum() {
        // grad_x: a gather over the transposed graph, routed to the winning edges.
        let mut jobs = Vec::new();
        let mut rest = &mut *grad_x;
        for rows in gt.blocks(BLOCK_EDGES / f.max(1)) {
            let (o, r) = std::mem::take(&mut rest).split_at_mut(rows.len() * f);
            rest = r;
            jobs.push(Backward {
                gt,
                perm,
                deg: &deg,
                rows,
                grad,
                f,
                w: weights,
                reduce,
                arg,
                grad_x: o,
            });
        }
        par.for_each(jobs, |job| dispatch(level, job));
    } else {
        // Sum and mean: grad_x is the forward sum aggregation over the transposed graph, with
        // the weights in transposed edge order and (mean) the gradient rows divided by the
        // in-degree first, so it runs on the register-tiled forward kernel.
        let w_t: Option<Vec<T>> = weights.map(|w| permuted(par, w.w, perm, heads));
        let scaled: Option<Vec<T>> = (reduce == Reduce::Mean).then(|| {
            let mut v = grad.to_vec();
            for (row, &d) in v.chunks_exact_mut(f.max(1)).zip(&deg) {
                if d > 0 {
                    let inv = T::ONE / T::of(d as f64);
                    row.iter_mut().for_each(|x| *x = *x * inv);
                }
            }
            v
        });
        let wt = w_t.as_deref().map(|w| Weights { w, heads });
        let source = scaled.as_deref().unwrap_or(grad);
        aggregate(par, level, gt, source, f, wt, Reduce::Sum, grad_x, None)?;
    }
    // grad_w: per destination row, in forward edge order.
    if let Some(gw) = grad_w {
        let mut jobs = Vec::new();
        let mut rest = gw;
        for rows in g.blocks(BLOCK_EDGES / f.max(1)) {
            let first_edge = g.indptr()[rows.start] as usize;
            let n = g.indptr()[rows.end] as usize - first_edge;
            let (o, r) = std::mem::take(&mut rest).split_at_mut(n * heads);
            rest = r;
            jobs.push(WeightGrad {
                g,
                rows,
                x,
                grad,
                f,
                heads,
                reduce,
                arg,
                grad_w: o,
                first_edge,
            });
        }
        par.for_each(jobs, |job| dispatch(level, job));
    }
    Ok(())
}

/// Each winner `arg[d, j]` must be -1 or one of node `d`'s in-edges: the gradient is routed by
/// it. Rows in blocks, in parallel; each row's test is branch-free (it vectorises), the
/// offending column is looked for only in a failing row (the first one, in row order).
fn check_winners(par: Par, g: Csr<'_>, arg: &[i64], f: usize) -> Result<()> {
    const ROWS: usize = 4096;
    let (ip, rows) = (g.indptr(), g.n_rows());
    if f == 0 {
        return Ok(());
    }
    let fits = |d: usize| {
        let (lo, hi) = (ip[d], ip[d + 1]);
        arg[d * f..(d + 1) * f]
            .iter()
            .fold(true, |ok, &a| ok & ((a == -1) | ((a >= lo) & (a < hi))))
    };
    let blocks: Vec<usize> = (0..rows).step_by(ROWS).collect();
    let bad = par
        .for_work(rows * f)
        .map(blocks, |s| (s..(s + ROWS).min(rows)).find(|&d| !fits(d)));
    let Some(d) = bad.into_iter().flatten().next() else {
        return Ok(());
    };
    let (lo, hi) = (ip[d], ip[d + 1]);
    let winners = &arg[d * f..(d + 1) * f];
    let j = winners
        .iter()
        .position(|&a| a != -1 && !(lo..hi).contains(&a))
        .unwrap_or(0);
    Err(Error::Value(format!(
        "arg[{d}, {j}]: {} is neither one of node {d}'s in-edges ({lo}..{hi}) nor -1; pass the \
         arg of the forward pass",
        winners[j]
    )))
}

/// That `gt` is shaped as `g`'s transpose and `perm` maps its edges to `g`'s (in range).
pub(super) fn check_transposed(g: &Csr<'_>, gt: &Csr<'_>, perm: &[i64]) -> Result<()> {
    if gt.n_rows() != g.n_cols() || gt.n_cols() != g.n_rows() || gt.nnz() != g.nnz() {
        return Err(Error::Value(
            "graph: the transposed CSR does not match the graph".into(),
        ));
    }
    if perm.len() != g.nnz() {
        return Err(Error::len("perm", g.nnz(), perm.len()));
    }
    if let Some((k, &p)) = perm
        .iter()
        .enumerate()
        .find(|(_, &p)| p < 0 || p as usize >= g.nnz())
    {
        return Err(Error::Index {
            arg: format!("perm[{k}]"),
            index: p,
            size: g.nnz(),
        });
    }
    Ok(())
}

/// `w`'s rows of `heads` values in the order `perm` (checked in range): the weights in
/// transposed edge order. A gather in parallel blocks (one `memmove` call per edge, serially,
/// took as long as the aggregation it prepares for 2M edges).
fn permuted<T: Float>(par: Par, w: &[T], perm: &[i64], heads: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; perm.len() * heads];
    let block = (CHUNK / heads.max(1)).max(1);
    let jobs: Vec<_> = out
        .chunks_mut(block * heads)
        .zip(perm.chunks(block))
        .collect();
    let par = if perm.len() * heads >= MIN_PARALLEL_WORK {
        par
    } else {
        Par::Seq
    };
    par.for_each(jobs, |(o, p)| {
        if heads == 1 {
            for (o, &e) in o.iter_mut().zip(p) {
                *o = w[e as usize];
            }
        } else {
            for (o, &e) in o.chunks_exact_mut(heads).zip(p) {
                let e = e as usize * heads;
                o.copy_from_slice(&w[e..e + heads]);
            }
        }
    });
    out
}
