//! Graph aggregation, SDDMM and edge softmax: against naive loops, finite differences of both gradients, Seq vs Rayon
//! and every SIMD level bitwise, empty rows, duplicate edges, and bad graphs.

mod common;

use common::{on_three_threads, Rng};
use nesy_core::gnn::{
    aggregate, aggregate_backward, edge_softmax, edge_softmax_backward, gather_sum, sddmm,
    sddmm_backward, Csr, Reduce, SddmmOp, Weights,
};
use nesy_core::simd::{supported_levels, Level};
use nesy_core::Par;

/// A random graph (with duplicate edges, self-loops and nodes without in-edges) as CSR by
/// destination, its transpose and the edge permutation.
struct Graph {
    n_dst: usize,
    n_src: usize,
    indptr: Vec<i64>,
    indices: Vec<i64>,
    t_indptr: Vec<i64>,
    t_indices: Vec<i64>,
    perm: Vec<i64>,
}

fn graph(n_dst: usize, n_src: usize, edges: usize, seed: u64) -> Graph {
    let mut r = Rng::new(seed);
    let mut pairs: Vec<(usize, usize)> = (0..edges)
        .map(|_| {
            (
                (r.next_u64() as usize) % n_dst.max(1),
                (r.next_u64() as usize) % n_src.max(1),
            )
        })
        .collect();
    if n_dst > 2 {
        pairs.retain(|&(d, _)| d != 1); // node 1 has no in-edges
    }
    if let Some(&p) = pairs.first() {
        pairs.push(p); // a duplicate edge
    }
    pairs.sort();
    let mut indptr = vec![0i64; n_dst + 1];
    for &(d, _) in &pairs {
        indptr[d + 1] += 1;
    }
    for i in 0..n_dst {
        indptr[i + 1] += indptr[i];
    }
    let indices: Vec<i64> = pairs.iter().map(|&(_, s)| s as i64).collect();
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&e| (pairs[e].1, e));
    let mut t_indptr = vec![0i64; n_src + 1];
    for &(_, s) in &pairs {
        t_indptr[s + 1] += 1;
    }
    for i in 0..n_src {
        t_indptr[i + 1] += t_indptr[i];
    }
    let t_indices = order.iter().map(|&e| pairs[e].0 as i64).collect();
    let perm = order.iter().map(|&e| e as i64).collect();
    Graph {
        n_dst,
        n_src,
        indptr,
        indices,
        t_indptr,
        t_indices,
        perm,
    }
}

impl Graph {
    fn csr(&self) -> Csr<'_> {
        Csr::new(self.n_dst, self.n_src, &self.indptr, &self.indices, "graph").unwrap()
    }
    fn csr_t(&self) -> Csr<'_> {
        Csr::new(
            self.n_src,
            self.n_dst,
            &self.t_indptr,
            &self.t_indices,
            "graph (transposed)",
        )
        .unwrap()
    }
}

fn forward(
    g: &Graph,
    x: &[f64],
    f: usize,
    w: Option<&[f64]>,
    red: Reduce,
    par: Par,
    level: Level,
) -> (Vec<f64>, Vec<i64>) {
    let mut out = vec![f64::NAN; g.n_dst * f];
    let mut arg = vec![-7i64; g.n_dst * f];
    let w = w.map(Weights::shared);
    aggregate(par, level, g.csr(), x, f, w, red, &mut out, Some(&mut arg)).unwrap();
    (out, arg)
}

/// `aggregate_backward` into fresh buffers: the gradients of `x` and (with weights) of `w`.
#[allow(clippy::too_many_arguments)]
fn backward<T: nesy_core::Float>(
    g: &Graph,
    x: &[T],
    f: usize,
    wt: Option<Weights<'_, T>>,
    red: Reduce,
    arg: &[i64],
    up: &[T],
    par: Par,
    level: Level,
) -> (Vec<T>, Vec<T>) {
    let mut gx = vec![T::of(f64::NAN); x.len()];
    let mut gw = vec![T::of(f64::NAN); wt.map_or(0, |w| w.w.len())];
    let argr = Some(arg).filter(|_| matches!(red, Reduce::Max | Reduce::Min));
    let gw_arg = wt.is_some().then_some(&mut gw[..]);
    aggregate_backward(
        par,
        level,
        g.csr(),
        g.csr_t(),
        &g.perm,
        x,
        f,
        wt,
        red,
        argr,
        up,
        &mut gx,
        gw_arg,
    )
    .unwrap();
    (gx, gw)
}

fn naive(g: &Graph, x: &[f64], f: usize, w: Option<&[f64]>, red: Reduce) -> Vec<f64> {
    let mut out = vec![0.0; g.n_dst * f];
    for d in 0..g.n_dst {
        let edges = g.indptr[d] as usize..g.indptr[d + 1] as usize;
        for j in 0..f {
            let vals: Vec<f64> = edges
                .clone()
                .map(|e| w.map_or(1.0, |w| w[e]) * x[g.indices[e] as usize * f + j])
                .collect();
            out[d * f + j] = match (red, vals.is_empty()) {
                (_, true) => 0.0,
                (Reduce::Sum, _) => vals.iter().sum(),
                (Reduce::Mean, _) => vals.iter().sum::<f64>() / vals.len() as f64,
                (Reduce::Max, _) => vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                (Reduce::Min, _) => vals.iter().cloned().fold(f64::INFINITY, f64::min),
            };
        }
    }
    out
}

const REDUCES: [Reduce; 4] = [Reduce::Sum, Reduce::Mean, Reduce::Max, Reduce::Min];

#[test]
fn forward_matches_naive_loops_and_is_deterministic() {
    // f: single columns, tiles of 8 and of 16 (max/min), and mixes of them
    for f in [7usize, 8, 16, 25, 40] {
        forward_matches_naive_loops_at(f);
    }
}

fn forward_matches_naive_loops_at(f: usize) {
    let g = graph(50, 40, 300, 1);
    let mut r = Rng::new(2);
    let x = r.vec(g.n_src * f);
    let w = r.vec(g.indices.len());
    for red in REDUCES {
        for wt in [None, Some(&w[..])] {
            let (out, arg) = forward(&g, &x, f, wt, red, Par::Seq, Level::Scalar);
            for (a, b) in out.iter().zip(naive(&g, &x, f, wt, red)) {
                assert!((a - b).abs() < 1e-12, "{red:?}, f = {f}");
            }
            if matches!(red, Reduce::Max | Reduce::Min) {
                // The winner: the first in-edge whose weighted value is the result.
                for d in 0..g.n_dst {
                    let row = g.indptr[d] as usize..g.indptr[d + 1] as usize;
                    for j in 0..f {
                        let want = row.clone().find(|&e| {
                            let we = wt.map_or(1.0, |w| w[e]);
                            we * x[g.indices[e] as usize * f + j] == out[d * f + j]
                        });
                        assert_eq!(arg[d * f + j], want.map_or(-1, |e| e as i64), "f = {f}");
                    }
                }
            }
            assert!(
                out[f..2 * f].iter().all(|&v| v == 0.0),
                "node without in-edges is 0"
            );
            for level in supported_levels() {
                for par in [Par::Seq, Par::Rayon] {
                    assert_eq!(
                        forward(&g, &x, f, wt, red, par, level),
                        forward(&g, &x, f, wt, red, Par::Seq, Level::Scalar)
                    );
                }
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let g = graph(12, 9, 40, 3);
    let f = 3;
    let mut r = Rng::new(4);
    let x = r.vec(g.n_src * f);
    let w: Vec<f64> = r.vec(g.indices.len()).iter().map(|v| v + 1.5).collect();
    let up = r.vec(g.n_dst * f);
    let loss = |x: &[f64], w: &[f64], red| -> f64 {
        let (out, _) = forward(&g, x, f, Some(w), red, Par::Seq, Level::Scalar);
        out.iter().zip(&up).map(|(a, b)| a * b).sum()
    };
    for red in REDUCES {
        let (_, arg) = forward(&g, &x, f, Some(&w), red, Par::Seq, Level::Scalar);
        let mut gx = vec![f64::NAN; x.len()];
        let mut gw = vec![f64::NAN; w.len()];
        let argr = Some(&arg[..]).filter(|_| matches!(red, Reduce::Max | Reduce::Min));
        aggregate_backward(
            Par::Rayon,
            nesy_core::simd::detect(),
            g.csr(),
            g.csr_t(),
            &g.perm,
            &x,
            f,
            Some(Weights::shared(&w)),
            red,
            argr,
            &up,
            &mut gx,
            Some(&mut gw),
        )
        .unwrap();
        let eps = 1e-6;
        for k in 0..x.len() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[k] += eps;
            b[k] -= eps;
            let num = (loss(&a, &w, red) - loss(&b, &w, red)) / (2.0 * eps);
            assert!(
                (gx[k] - num).abs() < 1e-6,
                "{red:?} grad_x[{k}]: {} vs {num}",
                gx[k]
            );
        }
        for k in 0..w.len() {
            let (mut a, mut b) = (w.clone(), w.clone());
            a[k] += eps;
            b[k] -= eps;
            let num = (loss(&x, &a, red) - loss(&x, &b, red)) / (2.0 * eps);
            assert!(
                (gw[k] - num).abs() < 1e-6,
                "{red:?} grad_w[{k}]: {} vs {num}",
                gw[k]
            );
        }
    }
}

#[test]
fn bad_graphs_are_refused() {
    let indptr = [0i64, 2, 1];
    assert!(Csr::new(2, 3, &indptr, &[0, 1], "graph").is_err());
    // A decreasing row pointer is named by its row, short or long (the test is vectorised).
    let err = Csr::new(3, 3, &[0, 3, 1, 4], &[0; 4], "graph").unwrap_err();
    assert!(err.to_string().contains("decreases at row 1"), "{err}");
    let mut long: Vec<i64> = (0..=5000).collect();
    long[1001] = 999;
    let err = Csr::new(5000, 1, &long, &[0; 5000], "graph").unwrap_err();
    assert!(err.to_string().contains("decreases at row 1000"), "{err}");
    long[1001] = 1001;
    assert!(Csr::new(5000, 1, &long, &[0; 5000], "graph").is_ok());
    let err = Csr::new(2, 3, &[0, 1, 2], &[0, 3], "graph").unwrap_err();
    assert!(err.to_string().contains("indices[1]"), "{err}");
    assert!(Csr::new(2, 3, &[0, 1, 2], &[-1, 0], "graph").is_err());
    assert!(Csr::new(2, 3, &[0, 1], &[0], "graph").is_err());
    // An empty graph works: every node aggregates to 0.
    let g = Csr::new(3, 3, &[0, 0, 0, 0], &[], "graph").unwrap();
    let mut out = vec![1.0f32; 6];
    aggregate(
        Par::Rayon,
        Level::Scalar,
        g,
        &[1.0f32; 6],
        2,
        None,
        Reduce::Mean,
        &mut out,
        None,
    )
    .unwrap();
    assert_eq!(out, vec![0.0; 6]);
}

#[test]
fn max_and_min_keep_a_nan_from_any_in_edge() {
    // As NumPy's max and min: one NaN among a node's in-edges makes its value NaN, whichever
    // edge brings it (the kernels are reached with NaN when the caller skips the check). The
    // winning edge is the first NaN.
    let g = Csr::new(1, 3, &[0, 3], &[0, 1, 2], "graph").unwrap();
    for red in [Reduce::Max, Reduce::Min] {
        for nan_at in 0..3 {
            let mut x = vec![1.0f32, 5.0, -2.0];
            x[nan_at] = f32::NAN;
            let (mut out, mut arg) = ([0.0f32], [0i64]);
            aggregate(
                Par::Seq,
                Level::Scalar,
                g,
                &x,
                1,
                None,
                red,
                &mut out,
                Some(&mut arg),
            )
            .unwrap();
            assert!(
                out[0].is_nan(),
                "{red:?}, NaN from edge {nan_at}: {}",
                out[0]
            );
            assert_eq!(arg[0], nan_at as i64);
        }
    }
}

#[test]
fn max_backward_refuses_winners_that_are_not_in_edges() {
    let g = graph(6, 5, 20, 71);
    let f = 2;
    let x = Rng::new(72).vec(g.n_src * f);
    let up = vec![1.0; g.n_dst * f];
    let (_, arg) = forward(&g, &x, f, None, Reduce::Max, Par::Seq, Level::Scalar);
    let level = nesy_core::simd::detect();
    let good = backward(&g, &x, f, None, Reduce::Max, &arg, &up, Par::Seq, level);
    let d = (0..g.n_dst)
        .find(|&d| g.indptr[d + 1] > g.indptr[d])
        .unwrap();
    let other = (g.indptr[d + 1]) % g.indices.len() as i64; // an edge of another node
    for bad in [99, -5, other] {
        let mut a = arg.clone();
        a[d * f + 1] = bad;
        let mut gx = vec![7.0; x.len()];
        let err = aggregate_backward(
            Par::Seq,
            level,
            g.csr(),
            g.csr_t(),
            &g.perm,
            &x,
            f,
            None,
            Reduce::Max,
            Some(&a),
            &up,
            &mut gx,
            None,
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("arg[{d}, 1]")),
            "{err}"
        );
        assert_eq!(gx, vec![7.0; x.len()], "nothing written");
    }
    assert!(good.0.iter().all(|v| v.is_finite()));
}

/// Max/min backward by naive routing, in the kernel's order: each source's out-edges in
/// transposed order, every column compared with the winner; and each edge's weight gradient
/// over its destination's columns in increasing order.
#[allow(clippy::too_many_arguments)]
fn extreme_backward_naive<T: nesy_core::Float>(
    g: &Graph,
    x: &[T],
    f: usize,
    w: &[T],
    heads: usize,
    arg: &[i64],
    up: &[T],
) -> (Vec<T>, Vec<T>) {
    let fh = f / heads;
    let mut gx = vec![T::ZERO; g.n_src * f];
    for s in 0..g.n_src {
        for te in g.t_indptr[s] as usize..g.t_indptr[s + 1] as usize {
            let (d, e) = (g.t_indices[te] as usize, g.perm[te] as usize);
            for j in 0..f {
                if arg[d * f + j] == e as i64 {
                    gx[s * f + j] = gx[s * f + j] + w[e * heads + j / fh] * up[d * f + j];
                }
            }
        }
    }
    let mut gw = vec![T::ZERO; g.indices.len() * heads];
    for d in 0..g.n_dst {
        for e in g.indptr[d] as usize..g.indptr[d + 1] as usize {
            let s = g.indices[e] as usize;
            for j in 0..f {
                if arg[d * f + j] == e as i64 {
                    let k = e * heads + j / fh;
                    gw[k] = gw[k] + up[d * f + j] * x[s * f + j];
                }
            }
        }
    }
    (gx, gw)
}

#[test]
fn max_min_backward_route_to_the_winners_bitwise_at_every_width() {
    // Widths from 0 to 200 columns, shared and per-head weights, few and many in-edges a
    // node; both dtypes; one thread, and three (three source ranges, each scanning every row).
    on_three_threads(every_width);
}

fn every_width() {
    for (f, heads) in [
        (0, 1),
        (1, 1),
        (7, 1),
        (63, 1),
        (64, 2),
        (65, 1),
        (130, 2),
        (200, 4),
    ] {
        for (n, edges) in [(9, 30), (40, 1200)] {
            let g = graph(n, n - 2, edges, 81 + f as u64);
            let mut r = Rng::new(82);
            let x = r.vec(g.n_src * f);
            let w = r.vec(g.indices.len() * heads);
            let up = r.vec(g.n_dst * f);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let up32: Vec<f32> = up.iter().map(|&v| v as f32).collect();
            let level = nesy_core::simd::detect();
            for red in [Reduce::Max, Reduce::Min] {
                let (_, arg) = forward(&g, &x, f, None, red, Par::Seq, Level::Scalar);
                let want = extreme_backward_naive(&g, &x, f, &w, heads, &arg, &up);
                let want32 = extreme_backward_naive(&g, &x32, f, &w32, heads, &arg, &up32);
                for par in [Par::Seq, Par::Rayon] {
                    let wt = Some(Weights { w: &w, heads });
                    let got = backward(&g, &x, f, wt, red, &arg, &up, par, level);
                    assert_eq!(got, want, "f64 {red:?} f={f} heads={heads} {par:?}");
                    let wt32 = Some(Weights { w: &w32, heads });
                    let got32 = backward(&g, &x32, f, wt32, red, &arg, &up32, par, level);
                    assert_eq!(got32, want32, "f32 {red:?} f={f} heads={heads} {par:?}");
                }
            }
        }
    }
}

#[test]
fn sum_and_mean_weight_gradients_at_every_width() {
    // The edge-weight gradient of the sum and mean is a dot product per edge and head, with 8
    // accumulators: widths below, at and past 8 columns a head, against a naive f64 sum; the
    // same bits on every SIMD level and on one or three threads.
    on_three_threads(|| {
        for (f, heads) in [(1, 1), (7, 1), (8, 1), (17, 1), (64, 2), (130, 2), (200, 4)] {
            let g = graph(40, 38, 600, 91 + f as u64);
            let mut r = Rng::new(92);
            let x = r.vec(g.n_src * f);
            let w = r.vec(g.indices.len() * heads);
            let up = r.vec(g.n_dst * f);
            let fh = f / heads;
            for red in [Reduce::Sum, Reduce::Mean] {
                let mut want = vec![0.0f64; g.indices.len() * heads];
                for d in 0..g.n_dst {
                    let edges = g.indptr[d] as usize..g.indptr[d + 1] as usize;
                    let deg = edges.len() as f64;
                    for e in edges {
                        let s = g.indices[e] as usize;
                        for j in 0..f {
                            let v = up[d * f + j] * x[s * f + j];
                            want[e * heads + j / fh] +=
                                if red == Reduce::Mean { v / deg } else { v };
                        }
                    }
                }
                let wt = Some(Weights { w: &w, heads });
                let seq = backward(&g, &x, f, wt, red, &[], &up, Par::Seq, Level::Scalar);
                assert_close(
                    &seq.1,
                    &want,
                    1e-12,
                    &format!("{red:?} f={f} heads={heads}"),
                );
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                let up32: Vec<f32> = up.iter().map(|&v| v as f32).collect();
                let wt32 = Some(Weights { w: &w32, heads });
                let seq32 = backward(&g, &x32, f, wt32, red, &[], &up32, Par::Seq, Level::Scalar);
                let got32: Vec<f64> = seq32.1.iter().map(|&v| v as f64).collect();
                assert_close(
                    &got32,
                    &want,
                    1e-4,
                    &format!("f32 {red:?} f={f} heads={heads}"),
                );
                for level in supported_levels() {
                    for par in [Par::Seq, Par::Rayon] {
                        let got = backward(&g, &x, f, wt, red, &[], &up, par, level);
                        assert_eq!(got, seq, "{red:?} f={f} heads={heads} {par:?} {level:?}");
                        let got32 = backward(&g, &x32, f, wt32, red, &[], &up32, par, level);
                        assert_eq!(got32, seq32, "f32 {red:?} f={f} {par:?} {level:?}");
                    }
                }
            }
        }
    });
}

/// f32 aggregation of `x (n_cols, f)` along `g`, on the scalar level (the lazily checked paths
/// are the same code at every level).
fn aggregate_f32(g: Csr<'_>, x: &[f32], f: usize, red: Reduce) -> nesy_core::Result<Vec<f32>> {
    let n = g.n_rows() * f;
    let (mut out, mut arg) = (vec![0f32; n], vec![0i64; n]);
    aggregate(
        Par::Rayon,
        Level::Scalar,
        g,
        x,
        f,
        None,
        red,
        &mut out,
        Some(&mut arg),
    )?;
    Ok(out)
}

/// `g` with `indices` in place of its own, indices checked by the kernels.
fn lazy<'a>(g: &'a Graph, indices: &'a [i64]) -> Csr<'a> {
    Csr::with_lazy_indices(g.n_dst, g.n_src, &g.indptr, indices, "graph").unwrap()
}

#[test]
fn lazily_checked_graphs_match_and_refuse_bad_indices() {
    // Checked by the kernels instead of on construction: same results for a valid graph, and
    // the same error as `Csr::new` for a bad index, for every reduction, f32 tile width and
    // the backward pass.
    let g = graph(40, 30, 300, 5);
    let mut r = Rng::new(6);
    let reductions = [Reduce::Sum, Reduce::Mean, Reduce::Max];
    for f in [3usize, 8, 16, 64, 70] {
        let x: Vec<f32> = r.vec(g.n_src * f).iter().map(|&v| v as f32).collect();
        for red in reductions {
            let checked = aggregate_f32(g.csr(), &x, f, red).unwrap();
            assert_eq!(
                aggregate_f32(lazy(&g, &g.indices), &x, f, red).unwrap(),
                checked
            );
        }
        let mut bad = g.indices.clone();
        let at = bad.len() / 2;
        for wrong in [g.n_src as i64, -1] {
            bad[at] = wrong;
            for red in reductions {
                let err = aggregate_f32(lazy(&g, &bad), &x, f, red).unwrap_err();
                assert!(
                    err.to_string().contains(&format!("graph indices[{at}]")),
                    "{err}"
                );
            }
        }
    }
    // No source rows at all: an error, not a panic.
    let no_sources = Csr::with_lazy_indices(2, 0, &[0, 1, 1], &[0], "graph").unwrap();
    let err = aggregate_f32(no_sources, &[], 4, Reduce::Sum).unwrap_err();
    assert!(err.to_string().contains("graph indices[0]"), "{err}");
    // Backward (sum): the transposed graph's indices are checked as they are gathered.
    let f = 16;
    let grad: Vec<f32> = r.vec(g.n_dst * f).iter().map(|&v| v as f32).collect();
    let x = vec![0f32; g.n_src * f];
    let mut bad_t = g.t_indices.clone();
    bad_t[3] = g.n_dst as i64 + 5;
    let lazy_t =
        Csr::with_lazy_indices(g.n_src, g.n_dst, &g.t_indptr, &bad_t, "graph (transposed)")
            .unwrap();
    let mut gx = vec![0f32; g.n_src * f];
    let err = aggregate_backward(
        Par::Rayon,
        Level::Scalar,
        lazy(&g, &g.indices),
        lazy_t,
        &g.perm,
        &x,
        f,
        None,
        Reduce::Sum,
        None,
        &grad,
        &mut gx,
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("graph (transposed) indices[3]"),
        "{err}"
    );
}

/// Central finite difference of `loss` along coordinate `k` of `v`.
fn numeric(v: &[f64], k: usize, loss: &impl Fn(&[f64]) -> f64) -> f64 {
    let eps = 1e-6;
    let (mut a, mut b) = (v.to_vec(), v.to_vec());
    a[k] += eps;
    b[k] -= eps;
    (loss(&a) - loss(&b)) / (2.0 * eps)
}

/// Every coordinate of `analytic` against a finite difference of `loss` at `v`.
fn check_grad(analytic: &[f64], v: &[f64], loss: impl Fn(&[f64]) -> f64, tol: f64, what: &str) {
    for (k, a) in analytic.iter().enumerate() {
        let num = numeric(v, k, &loss);
        assert!((a - num).abs() < tol, "{what}[{k}]: {a} vs {num}");
    }
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol, "{what}[{k}]: {a} vs {b}");
    }
}

/// Per-head weights: head h scales its own column group; gradients by finite differences.
#[test]
fn per_head_weights_forward_and_gradients() {
    // Heads of 2 columns, and of 27: a tile of 16, one of 8 and 3 single columns (max/min)
    for (heads, fh) in [(3, 2), (2, 27)] {
        per_head_weights_at(heads, fh);
    }
}

fn per_head_weights_at(heads: usize, fh: usize) {
    let g = graph(11, 9, 45, 21);
    let f = heads * fh;
    let mut r = Rng::new(22);
    let x = r.vec(g.n_src * f);
    let w = r.vec(g.indices.len() * heads);
    let up = r.vec(g.n_dst * f);
    let run = |x: &[f64], w: &[f64], red: Reduce, par: Par, level: Level| {
        let mut out = vec![f64::NAN; g.n_dst * f];
        let mut arg = vec![0i64; g.n_dst * f];
        let wt = Some(Weights { w, heads });
        aggregate(par, level, g.csr(), x, f, wt, red, &mut out, Some(&mut arg)).unwrap();
        (out, arg)
    };
    for red in REDUCES {
        // Against the shared-weight kernel run head by head on that head's columns.
        let (out, arg) = run(&x, &w, red, Par::Seq, Level::Scalar);
        for h in 0..heads {
            let xh: Vec<f64> = (0..g.n_src)
                .flat_map(|s| x[s * f + h * fh..s * f + (h + 1) * fh].to_vec())
                .collect();
            let wh: Vec<f64> = (0..g.indices.len()).map(|e| w[e * heads + h]).collect();
            let want = naive(&g, &xh, fh, Some(&wh), red);
            for d in 0..g.n_dst {
                let got = &out[d * f + h * fh..d * f + (h + 1) * fh];
                assert_close(got, &want[d * fh..(d + 1) * fh], 1e-12, "per-head forward");
            }
        }
        for level in supported_levels() {
            assert_eq!(
                run(&x, &w, red, Par::Rayon, level),
                (out.clone(), arg.clone())
            );
        }
        let wt = Some(Weights { w: &w, heads });
        let level = nesy_core::simd::detect();
        let (gx, gw) = backward(&g, &x, f, wt, red, &arg, &up, Par::Rayon, level);
        let loss = |x: &[f64], w: &[f64]| -> f64 {
            let out = run(x, w, red, Par::Seq, Level::Scalar).0;
            out.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        check_grad(&gx, &x, |x| loss(x, &w), 1e-6, &format!("{red:?} grad_x"));
        check_grad(&gw, &w, |w| loss(&x, w), 1e-6, &format!("{red:?} grad_w"));
    }
    // Heads must divide the features.
    let mut out = vec![0.0; g.n_dst * f];
    let w4 = vec![1.0; g.indices.len() * 4];
    let bad = Some(Weights { w: &w4, heads: 4 });
    let err = aggregate(
        Par::Seq,
        Level::Scalar,
        g.csr(),
        &x,
        f,
        bad,
        Reduce::Sum,
        &mut out,
        None,
    );
    assert!(err.unwrap_err().to_string().contains("heads"));
}

fn sddmm_naive(g: &Graph, u: &[f64], v: &[f64], f: usize, heads: usize, op: SddmmOp) -> Vec<f64> {
    let fh = f / heads;
    let mut out = Vec::new();
    for d in 0..g.n_dst {
        for e in g.indptr[d] as usize..g.indptr[d + 1] as usize {
            let s = g.indices[e] as usize;
            for h in 0..heads {
                out.push(match op {
                    SddmmOp::Add => u[s * f + h] + v[d * f + h],
                    SddmmOp::Dot => (0..fh)
                        .map(|j| u[s * f + h * fh + j] * v[d * f + h * fh + j])
                        .sum(),
                });
            }
        }
    }
    out
}

#[test]
fn sddmm_matches_naive_loops_and_finite_differences() {
    let g = graph(13, 10, 60, 31);
    let mut r = Rng::new(32);
    for (op, heads, f) in [
        (SddmmOp::Add, 1, 1),
        (SddmmOp::Add, 4, 4),
        (SddmmOp::Dot, 1, 5),
        (SddmmOp::Dot, 2, 6),
        (SddmmOp::Dot, 3, 27),
    ] {
        let u = r.vec(g.n_src * f);
        let v = r.vec(g.n_dst * f);
        let up = r.vec(g.indices.len() * heads);
        let run = |u: &[f64], v: &[f64], par: Par, level: Level| {
            let mut out = vec![f64::NAN; g.indices.len() * heads];
            sddmm(par, level, g.csr(), u, v, f, heads, op, &mut out).unwrap();
            out
        };
        let out = run(&u, &v, Par::Seq, Level::Scalar);
        assert_close(&out, &sddmm_naive(&g, &u, &v, f, heads, op), 1e-12, "sddmm");
        for level in supported_levels() {
            assert_eq!(run(&u, &v, Par::Rayon, level), out, "{op:?} {level:?}");
        }
        let mut gu = vec![f64::NAN; u.len()];
        let mut gv = vec![f64::NAN; v.len()];
        let (csr, csr_t) = (g.csr(), g.csr_t());
        let level = nesy_core::simd::detect();
        sddmm_backward(
            Par::Rayon,
            level,
            csr,
            csr_t,
            &g.perm,
            &u,
            &v,
            f,
            heads,
            op,
            &up,
            &mut gu,
            &mut gv,
        )
        .unwrap();
        let loss = |u: &[f64], v: &[f64]| -> f64 {
            let out = run(u, v, Par::Seq, Level::Scalar);
            out.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        check_grad(&gu, &u, |u| loss(u, &v), 1e-6, &format!("{op:?} grad_u"));
        check_grad(&gv, &v, |v| loss(&u, v), 1e-6, &format!("{op:?} grad_v"));
    }
    // Shapes are checked.
    let mut out = vec![0.0; g.indices.len()];
    let u = vec![0.0; g.n_src * 2];
    let v = vec![0.0; g.n_dst * 2];
    let err = sddmm(
        Par::Seq,
        Level::Scalar,
        g.csr(),
        &u,
        &v,
        2,
        1,
        SddmmOp::Add,
        &mut out,
    );
    assert!(err.is_err());
    let err = sddmm(
        Par::Seq,
        Level::Scalar,
        g.csr(),
        &u[1..],
        &v,
        2,
        1,
        SddmmOp::Dot,
        &mut out,
    );
    assert!(err.unwrap_err().to_string().contains('u'));
}

#[test]
fn edge_softmax_matches_naive_and_finite_differences() {
    let g = graph(17, 12, 90, 41);
    let heads = 3;
    let mut r = Rng::new(42);
    // Large offsets: the row maximum keeps exp from overflowing.
    let scores: Vec<f64> = r
        .vec(g.indices.len() * heads)
        .iter()
        .map(|v| 300.0 * v)
        .collect();
    let run = |s: &[f64], par: Par, level: Level| {
        let mut out = vec![f64::NAN; s.len()];
        edge_softmax(par, level, g.csr(), s, heads, &mut out).unwrap();
        out
    };
    let alpha = run(&scores, Par::Seq, Level::Scalar);
    for d in 0..g.n_dst {
        let edges = g.indptr[d] as usize..g.indptr[d + 1] as usize;
        for h in 0..heads {
            let m = edges
                .clone()
                .map(|e| scores[e * heads + h])
                .fold(f64::MIN, f64::max);
            let z: f64 = edges
                .clone()
                .map(|e| (scores[e * heads + h] - m).exp())
                .sum();
            for e in edges.clone() {
                let want = (scores[e * heads + h] - m).exp() / z;
                assert!((alpha[e * heads + h] - want).abs() < 1e-14);
            }
        }
    }
    for level in supported_levels() {
        assert_eq!(run(&scores, Par::Rayon, level), alpha);
    }
    // Gradient on moderate scores.
    let scores: Vec<f64> = r.vec(g.indices.len() * heads);
    let up = r.vec(scores.len());
    let alpha = run(&scores, Par::Seq, Level::Scalar);
    let mut gs = vec![f64::NAN; scores.len()];
    let level = nesy_core::simd::detect();
    edge_softmax_backward(Par::Rayon, level, g.csr(), &alpha, &up, heads, &mut gs).unwrap();
    let loss = |s: &[f64]| -> f64 {
        run(s, Par::Seq, Level::Scalar)
            .iter()
            .zip(&up)
            .map(|(a, b)| a * b)
            .sum()
    };
    check_grad(&gs, &scores, loss, 1e-7, "grad_scores");
    // f32 follows the f64 result closely.
    let s32: Vec<f32> = scores.iter().map(|&v| v as f32).collect();
    let mut a32 = vec![0f32; s32.len()];
    edge_softmax(Par::Rayon, level, g.csr(), &s32, heads, &mut a32).unwrap();
    for (a, b) in a32.iter().zip(&alpha) {
        assert!((*a as f64 - b).abs() < 1e-6);
    }
    let err = edge_softmax(
        Par::Seq,
        Level::Scalar,
        g.csr(),
        &scores[1..],
        heads,
        &mut gs,
    );
    assert!(err.unwrap_err().to_string().contains("scores"));
}

#[test]
fn kernels_split_over_threads_give_the_sequential_bits() {
    // Large enough that every kernel runs in parallel (work above `MIN_PARALLEL_WORK`) over
    // several blocks of edges; the small tests above stay below that and run sequentially.
    let g = graph(3000, 2500, 60_000, 51);
    let (heads, fh) = (2, 8);
    let f = heads * fh;
    assert!(g.indices.len() * f >= 16 * nesy_core::par::MIN_PARALLEL_WORK);
    let mut r = Rng::new(52);
    let x = r.vec(g.n_src * f);
    let v = r.vec(g.n_dst * f);
    let w_shared: Vec<f64> = r.vec(g.indices.len()).iter().map(|v| v + 1.5).collect();
    let w_heads = r.vec(g.indices.len() * heads);
    let up = r.vec(g.n_dst * f);
    let up_edges = r.vec(g.indices.len() * heads);
    let level = nesy_core::simd::detect();
    let all = |par: Par| {
        let mut results: Vec<Vec<f64>> = Vec::new();
        let mut args: Vec<Vec<i64>> = Vec::new();
        for red in REDUCES {
            let shared = Weights::shared(&w_shared);
            let per_head = Weights { w: &w_heads, heads };
            for wt in [None, Some(shared), Some(per_head)] {
                let mut out = vec![f64::NAN; g.n_dst * f];
                let mut arg = vec![-7i64; g.n_dst * f];
                aggregate(
                    par,
                    level,
                    g.csr(),
                    &x,
                    f,
                    wt,
                    red,
                    &mut out,
                    Some(&mut arg),
                )
                .unwrap();
                let (gx, gw) = backward(&g, &x, f, wt, red, &arg, &up, par, level);
                results.extend([out, gx, gw]);
                args.push(arg);
            }
        }
        // Add: one value per node and head; Dot: a head's `fh` features.
        for (op, fo) in [(SddmmOp::Add, heads), (SddmmOp::Dot, f)] {
            let (u, v) = (&x[..g.n_src * fo], &v[..g.n_dst * fo]);
            let mut s = vec![f64::NAN; g.indices.len() * heads];
            sddmm(par, level, g.csr(), u, v, fo, heads, op, &mut s).unwrap();
            let (mut gu, mut gv) = (vec![f64::NAN; u.len()], vec![f64::NAN; v.len()]);
            let (csr, csr_t) = (g.csr(), g.csr_t());
            sddmm_backward(
                par, level, csr, csr_t, &g.perm, u, v, fo, heads, op, &up_edges, &mut gu, &mut gv,
            )
            .unwrap();
            let mut alpha = vec![f64::NAN; s.len()];
            edge_softmax(par, level, g.csr(), &s, heads, &mut alpha).unwrap();
            let mut gs = vec![f64::NAN; s.len()];
            edge_softmax_backward(par, level, g.csr(), &alpha, &up_edges, heads, &mut gs).unwrap();
            results.extend([s, gu, gv, alpha, gs]);
        }
        (results, args)
    };
    let seq = all(Par::Seq);
    let par = on_three_threads(|| all(Par::Rayon));
    assert!(seq.0.iter().flatten().all(|v| v.is_finite()));
    for (k, (a, b)) in seq.0.iter().zip(&par.0).enumerate() {
        assert!(a == b, "result {k} differs between 1 and 3 threads");
    }
    assert_eq!(seq.1, par.1);
}

#[test]
fn gather_sum_is_the_column_sum_of_the_aggregation() {
    // The benchmark's limit kernel reads every edge's source row: its result is the column sum
    // of the sum aggregation, the same bits for 1 and 3 threads and every SIMD level, and a bad
    // index is an error. Large enough for several blocks of edges at every tile width.
    let g = graph(3_000, 2_000, 60_000, 11);
    let mut r = Rng::new(12);
    for f in [3usize, 8, 16, 64, 70] {
        let x: Vec<f32> = r.vec(g.n_src * f).iter().map(|&v| v as f32).collect();
        let out = aggregate_f32(g.csr(), &x, f, Reduce::Sum).unwrap();
        let mut want = vec![0f64; f];
        for (k, v) in out.iter().enumerate() {
            want[k % f] += *v as f64;
        }
        let seq = gather_sum(Par::Seq, Level::Scalar, g.csr(), &x, f).unwrap();
        for (a, b) in seq.iter().zip(&want) {
            assert!(
                (*a as f64 - b).abs() <= 1e-3 * (1.0 + b.abs()),
                "f={f}: {a} vs {b}"
            );
        }
        for level in supported_levels() {
            let par = on_three_threads(|| gather_sum(Par::Rayon, level, g.csr(), &x, f).unwrap());
            assert_eq!(
                par.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                seq.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "f={f} {level:?}"
            );
        }
        let mut bad = g.indices.clone();
        bad[1234] = -1;
        let err = gather_sum(Par::Rayon, Level::Scalar, lazy(&g, &bad), &x, f).unwrap_err();
        assert!(err.to_string().contains("graph indices[1234]"), "{err}");
        let err = gather_sum(Par::Seq, Level::Scalar, g.csr(), &x[1..], f).unwrap_err();
        assert!(err.to_string().contains('x'), "{err}");
    }
    // An empty graph sums to zero.
    let empty = Csr::new(0, 0, &[0], &[], "graph").unwrap();
    assert_eq!(
        gather_sum::<f64>(Par::Rayon, Level::Scalar, empty, &[], 4).unwrap(),
        vec![0.0; 4]
    );
}

#[test]
fn streamed_outputs_on_whole_cache_lines_are_the_same_bits() {
    // An output starting on a 64-byte line with rows of whole lines is written with streaming
    // stores (tiles of 256 bytes and more): the same values as into an unaligned buffer, for
    // every reduction that sums, every SIMD level, 1 and 3 threads.
    let g = graph(700, 500, 20_000, 21);
    let mut r = Rng::new(22);
    for f in [64usize, 128, 256, 320] {
        let x: Vec<f32> = r.vec(g.n_src * f).iter().map(|&v| v as f32).collect();
        let n = g.n_dst * f;
        let mut buf = vec![f32::NAN; n + 32];
        let at = buf.as_ptr().align_offset(64);
        for red in [Reduce::Sum, Reduce::Mean] {
            let want = aggregate_f32(g.csr(), &x, f, red).unwrap();
            for level in supported_levels() {
                for (off, threads) in [(at, 1), (at, 3), (at + 1, 3)] {
                    buf.fill(f32::NAN);
                    let out = &mut buf[off..off + n];
                    let run = |out: &mut [f32]| {
                        aggregate(Par::Rayon, level, g.csr(), &x, f, None, red, out, None)
                    };
                    if threads == 1 {
                        rayon::ThreadPoolBuilder::new()
                            .num_threads(1)
                            .build()
                            .unwrap()
                            .install(|| run(out))
                            .unwrap();
                    } else {
                        on_three_threads(|| run(out)).unwrap();
                    }
                    assert!(
                        out.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "f={f} {red:?} {level:?} offset {off}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_tile_width_matches_a_naive_sum_around_runs_of_empty_rows() {
    // The edge-stream kernel against plain loops, at tile widths from 8 to 128 and a remainder,
    // sum and mean, with and without weights, both dtypes, every SIMD level: a graph whose rows
    // without in-edges come in runs at the start, in the middle and at the end, with blocks of
    // several rows (large f makes small blocks, so runs also straddle block boundaries).
    let (n_dst, n_src) = (400usize, 90usize);
    let empty = |d: usize| d < 5 || (150..170).contains(&d) || d >= 385 || d.is_multiple_of(37);
    let mut r = Rng::new(31);
    let mut indptr = vec![0i64];
    let mut indices = Vec::new();
    for d in 0..n_dst {
        if !empty(d) {
            for _ in 0..1 + (r.next_u64() % 9) as usize {
                indices.push((r.next_u64() % n_src as u64) as i64);
            }
        }
        indptr.push(indices.len() as i64);
    }
    let g = Csr::new(n_dst, n_src, &indptr, &indices, "graph").unwrap();
    let w: Vec<f64> = (0..indices.len())
        .map(|_| 0.5 + r.vec(1)[0].abs())
        .collect();
    for f in [8usize, 16, 24, 64, 128, 136, 300, 2100] {
        let x: Vec<f64> = r.vec(n_src * f);
        for red in [Reduce::Sum, Reduce::Mean] {
            for weighted in [false, true] {
                let mut want = vec![0f64; n_dst * f];
                for d in 0..n_dst {
                    let edges = indptr[d] as usize..indptr[d + 1] as usize;
                    for e in edges.clone() {
                        let s = indices[e] as usize;
                        let we = if weighted { w[e] } else { 1.0 };
                        for j in 0..f {
                            want[d * f + j] += we * x[s * f + j];
                        }
                    }
                    if red == Reduce::Mean && !edges.is_empty() {
                        for j in 0..f {
                            want[d * f + j] /= edges.len() as f64;
                        }
                    }
                }
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                for level in supported_levels() {
                    let mut out = vec![f64::NAN; n_dst * f];
                    let wt = weighted.then(|| Weights::shared(&w[..]));
                    aggregate(Par::Rayon, level, g, &x, f, wt, red, &mut out, None).unwrap();
                    for (k, (a, b)) in out.iter().zip(&want).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                            "f64 f={f} {red:?} w={weighted} {level:?} [{k}]: {a} vs {b}"
                        );
                    }
                    let mut out = vec![f32::NAN; n_dst * f];
                    let wt = weighted.then(|| Weights::shared(&w32[..]));
                    aggregate(Par::Rayon, level, g, &x32, f, wt, red, &mut out, None).unwrap();
                    for (k, (a, b)) in out.iter().zip(&want).enumerate() {
                        assert!(
                            (*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()),
                            "f32 f={f} {red:?} w={weighted} {level:?} [{k}]: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn rows_starting_anywhere_past_a_cache_line_give_the_bits_of_rows_on_lines() {
    // float32 rows of whole lines that start `shift` floats past a 64-byte line are summed
    // from whole-line loads shifted into place per row (AVX-512, tiles of 64 and 128): the same
    // bits as the scalar kernel for every shift, sum and mean, shared and per-head weights,
    // 1 and 3 threads, outputs streamed (8 MiB and more) or not; and the backward's gathers of
    // a shifted `grad` as well.
    let mut r = Rng::new(41);
    // f = 144 with 2 heads: head 1's tile of 64 starts at column 72, not a multiple of 16.
    for (n_dst, f, edges) in [
        (300usize, 64usize, 3000usize),
        (200, 256, 2500),
        (120, 192, 900),
        (150, 144, 1500),
    ]
    .into_iter()
    .chain([(8300, 256, 30_000)])
    {
        let g = graph(n_dst, 150, edges, f as u64);
        let n = g.n_src * f;
        let x: Vec<f32> = r.vec(n).iter().map(|&v| v as f32).collect();
        let w: Vec<f32> = (0..g.indices.len() * 2)
            .map(|_| 0.5 + r.vec(1)[0].abs() as f32)
            .collect();
        let up: Vec<f32> = r.vec(g.n_dst * f).iter().map(|&v| v as f32).collect();
        let mut xbuf = vec![f32::NAN; n + 32];
        let mut ubuf = vec![f32::NAN; up.len() + 32];
        let (xa, ua) = (
            xbuf.as_ptr().align_offset(64),
            ubuf.as_ptr().align_offset(64),
        );
        let shifts: Vec<usize> = if n_dst > 1000 {
            vec![4]
        } else {
            (0..16).collect()
        };
        for red in [Reduce::Sum, Reduce::Mean] {
            for heads in [0usize, 1, 2] {
                let wt = (heads > 0).then(|| Weights {
                    w: &w[..g.indices.len() * heads],
                    heads,
                });
                let run_fwd = |level: Level, xs: &[f32]| {
                    // the output on a line, so that outputs of 8 MiB and more are streamed
                    let m = g.n_dst * f;
                    let mut buf = vec![f32::NAN; m + 16];
                    let at = buf.as_ptr().align_offset(64);
                    let out = &mut buf[at..at + m];
                    aggregate(Par::Rayon, level, g.csr(), xs, f, wt, red, out, None).unwrap();
                    out.to_vec()
                };
                let run_bwd = |level: Level, us: &[f32]| {
                    let mut gx = vec![f32::NAN; n];
                    aggregate_backward(
                        Par::Rayon,
                        level,
                        g.csr(),
                        g.csr_t(),
                        &g.perm,
                        &x,
                        f,
                        wt,
                        red,
                        None,
                        us,
                        &mut gx,
                        None,
                    )
                    .unwrap();
                    gx
                };
                let (want, want_bwd) = (run_fwd(Level::Scalar, &x), run_bwd(Level::Scalar, &up));
                for &shift in &shifts {
                    xbuf[xa + shift..xa + shift + n].copy_from_slice(&x);
                    ubuf[ua + shift..ua + shift + up.len()].copy_from_slice(&up);
                    let xs = &xbuf[xa + shift..xa + shift + n];
                    let us = &ubuf[ua + shift..ua + shift + up.len()];
                    for level in supported_levels() {
                        for threads in [1, 3] {
                            let (got, got_bwd) = if threads == 1 {
                                rayon::ThreadPoolBuilder::new()
                                    .num_threads(1)
                                    .build()
                                    .unwrap()
                                    .install(|| (run_fwd(level, xs), run_bwd(level, us)))
                            } else {
                                on_three_threads(|| (run_fwd(level, xs), run_bwd(level, us)))
                            };
                            let same = |a: &[f32], b: &[f32]| {
                                a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
                            };
                            let what = format!("f={f} {red:?} heads={heads} shift={shift} {level:?} {threads} threads");
                            assert!(same(&got, &want), "forward {what}");
                            assert!(same(&got_bwd, &want_bwd), "backward {what}");
                        }
                    }
                }
            }
        }
    }
}
