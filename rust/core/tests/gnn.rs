//! Graph aggregation: against naive loops, finite differences of both gradients, Seq vs Rayon
//! and every SIMD level bitwise, empty rows, duplicate edges, and bad graphs.

mod common;

use common::Rng;
use nesy_core::gnn::{aggregate, aggregate_backward, Csr, Reduce};
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
    aggregate(par, level, g.csr(), x, f, w, red, &mut out, Some(&mut arg)).unwrap();
    (out, arg)
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
    let g = graph(50, 40, 300, 1);
    let f = 7;
    let mut r = Rng::new(2);
    let x = r.vec(g.n_src * f);
    let w = r.vec(g.indices.len());
    for red in REDUCES {
        for wt in [None, Some(&w[..])] {
            let (out, _) = forward(&g, &x, f, wt, red, Par::Seq, Level::Scalar);
            for (a, b) in out.iter().zip(naive(&g, &x, f, wt, red)) {
                assert!((a - b).abs() < 1e-12, "{red:?}");
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
            Some(&w),
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
