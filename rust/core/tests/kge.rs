//! Knowledge-graph embeddings: every model's gradient against finite differences, 1-vs-all
//! scores against per-triple scores for both sides, filtered ranks against brute force, the
//! regularisers, Seq vs Rayon and every SIMD level bitwise, and bad ids.

mod common;

use common::{on_three_threads, Rng};
use nesy_core::kge::{
    filtered_ranks, regularise, score_all, score_triples, score_triples_grad, Filter, Kind, Model,
    Regulariser, Side, Tables,
};
use nesy_core::simd::{supported_levels, Level};
use nesy_core::{with_model, Par};

const KINDS: [Kind; 5] = [
    Kind::TransEL1,
    Kind::TransEL2,
    Kind::DistMult,
    Kind::ComplEx,
    Kind::RotatE,
];

struct Kg {
    ent: Vec<f64>,
    rel: Vec<f64>,
    d_e: usize,
    d_r: usize,
}

fn kg<M: Model>(m: &M, n_ent: usize, n_rel: usize, rank: usize, seed: u64) -> Kg {
    let mut r = Rng::new(seed);
    // Complex models store rank complex numbers as 2 * rank reals.
    let d_e = if matches!(m.name(), "complex" | "rotate") {
        2 * rank
    } else {
        rank
    };
    let d_r = m.rel_width(d_e).unwrap();
    Kg {
        ent: r.vec(n_ent * d_e),
        rel: r.vec(n_rel * d_r).iter().map(|v| 3.0 * v).collect(),
        d_e,
        d_r,
    }
}

impl Kg {
    fn tables<M: Model>(&self, m: &M) -> Tables<'_, f64> {
        Tables::new(m, &self.ent, self.d_e, &self.rel, self.d_r).unwrap()
    }
}

fn triples(n: usize, n_ent: usize, n_rel: usize, seed: u64) -> Vec<i64> {
    let mut r = Rng::new(seed);
    (0..n)
        .flat_map(|_| {
            [
                (r.next_u64() % n_ent as u64) as i64,
                (r.next_u64() % n_rel as u64) as i64,
                (r.next_u64() % n_ent as u64) as i64,
            ]
        })
        .collect()
}

#[test]
fn gradients_match_finite_differences() {
    for kind in KINDS {
        with_model!(kind, m => {
            let g = kg(&m, 6, 3, 5, 1);
            let (de, dr) = (g.d_e, g.d_r);
            let tr = triples(9, 6, 3, 2);
            let up: Vec<f64> = Rng::new(3).vec(9);
            let (mut gh, mut gr, mut gt) = (vec![0.0; 9 * de], vec![0.0; 9 * dr], vec![0.0; 9 * de]);
            score_triples_grad(Par::Rayon, m, g.tables(&m), &tr, &up, &mut gh, &mut gr, &mut gt)
                .unwrap();
            let loss = |ent: &[f64], rel: &[f64]| -> f64 {
                let t = Tables::new(&m, ent, de, rel, dr).unwrap();
                let mut s = vec![0.0; 9];
                score_triples(Par::Seq, m, t, &tr, &mut s).unwrap();
                s.iter().zip(&up).map(|(a, b)| a * b).sum()
            };
            // Scatter the row gradients into table gradients.
            let mut d_ent = vec![0.0; g.ent.len()];
            let mut d_rel = vec![0.0; g.rel.len()];
            for (i, t) in tr.chunks_exact(3).enumerate() {
                let (h, r, tl) = (t[0] as usize, t[1] as usize, t[2] as usize);
                for j in 0..de {
                    d_ent[h * de + j] += gh[i * de + j];
                    d_ent[tl * de + j] += gt[i * de + j];
                }
                for j in 0..dr {
                    d_rel[r * dr + j] += gr[i * dr + j];
                }
            }
            let eps = 1e-6;
            for (k, want) in d_ent.iter().enumerate() {
                let (mut a, mut b) = (g.ent.clone(), g.ent.clone());
                a[k] += eps;
                b[k] -= eps;
                let num = (loss(&a, &g.rel) - loss(&b, &g.rel)) / (2.0 * eps);
                assert!((want - num).abs() < 1e-6, "{kind:?} d_ent[{k}]: {want} vs {num}");
            }
            for (k, want) in d_rel.iter().enumerate() {
                let (mut a, mut b) = (g.rel.clone(), g.rel.clone());
                a[k] += eps;
                b[k] -= eps;
                let num = (loss(&g.ent, &a) - loss(&g.ent, &b)) / (2.0 * eps);
                assert!((want - num).abs() < 1e-6, "{kind:?} d_rel[{k}]: {want} vs {num}");
            }
        })
    }
}

#[test]
fn one_vs_all_matches_triple_scores_on_both_sides() {
    for kind in KINDS {
        with_model!(kind, m => {
            // 37 entities and rank 21: odd sizes that leave lane and block remainders.
            let (n_ent, n_rel) = (37, 4);
            let g = kg(&m, n_ent, n_rel, 21, 4);
            let t = g.tables(&m);
            let tr = triples(40, n_ent, n_rel, 5);
            let fixed_h: Vec<i64> = tr.chunks_exact(3).map(|t| t[0]).collect();
            let fixed_t: Vec<i64> = tr.chunks_exact(3).map(|t| t[2]).collect();
            let rels: Vec<i64> = tr.chunks_exact(3).map(|t| t[1]).collect();
            for side in [Side::Tail, Side::Head] {
                let fixed = if side == Side::Tail { &fixed_h } else { &fixed_t };
                let mut all = vec![f64::NAN; 40 * n_ent];
                score_all(Par::Seq, Level::Scalar, m, t, fixed, &rels, side, &mut all).unwrap();
                let mut want_tr = Vec::new();
                for i in 0..40 {
                    for e in 0..n_ent as i64 {
                        want_tr.extend(match side {
                            Side::Tail => [fixed[i], rels[i], e],
                            Side::Head => [e, rels[i], fixed[i]],
                        });
                    }
                }
                let mut want = vec![0.0; 40 * n_ent];
                score_triples(Par::Seq, m, t, &want_tr, &mut want).unwrap();
                for (k, (a, b)) in all.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{kind:?} {side:?} [{k}]: {a} vs {b}");
                }
                for level in supported_levels() {
                    let mut again = vec![0.0; 40 * n_ent];
                    score_all(Par::Rayon, level, m, t, fixed, &rels, side, &mut again).unwrap();
                    assert_eq!(again, all, "{kind:?} {side:?} {level:?}");
                }
            }
        })
    }
}

/// Brute-force filtered ranks from per-triple scores.
fn brute_ranks<M: Model>(m: M, t: Tables<'_, f64>, test: &[i64], known: &[i64]) -> Vec<(i64, i64)> {
    let n_ent = t.n_ent as i64;
    let mut out = Vec::new();
    for tr in test.chunks_exact(3) {
        for side in [Side::Head, Side::Tail] {
            let cand = |e: i64| match side {
                Side::Tail => [tr[0], tr[1], e],
                Side::Head => [e, tr[1], tr[2]],
            };
            let target = if side == Side::Tail { tr[2] } else { tr[0] };
            let score = |e: i64| {
                let c = cand(e);
                m.score(t.e(c[0] as usize), t.r(c[1] as usize), t.e(c[2] as usize))
            };
            let s = score(target);
            let (mut better, mut equal) = (0, 0);
            for e in 0..n_ent {
                let c = cand(e);
                let is_known = known.chunks_exact(3).any(|k| k == c);
                if e == target || is_known {
                    continue;
                }
                let v = score(e);
                better += (v > s) as i64;
                equal += (v == s) as i64;
            }
            out.push((1 + better, 1 + better + equal));
        }
    }
    out
}

#[test]
fn filtered_ranks_match_brute_force_with_ties() {
    for kind in KINDS {
        with_model!(kind, m => {
            let (n_ent, n_rel) = (23, 3);
            let mut g = kg(&m, n_ent, n_rel, 4, 6);
            // Entities 5, 6 and 7 are identical: their scores tie exactly.
            let de = g.d_e;
            let row5 = g.ent[5 * de..6 * de].to_vec();
            g.ent[6 * de..7 * de].copy_from_slice(&row5);
            g.ent[7 * de..8 * de].copy_from_slice(&row5);
            let t = g.tables(&m);
            let mut test = triples(30, n_ent, n_rel, 7);
            test.extend([5, 0, 6, 6, 1, 7, 7, 2, 5]);
            let known = [test.clone(), triples(60, n_ent, n_rel, 8)].concat();
            let filter = Filter::new(&known, n_ent, n_rel).unwrap();
            let n = test.len() / 3;
            let (mut opt, mut pess) = (vec![0; 2 * n], vec![0; 2 * n]);
            filtered_ranks(Par::Rayon, nesy_core::simd::detect(), m, t, &test, &filter, &mut opt, &mut pess)
                .unwrap();
            let want = brute_ranks(m, t, &test, &known);
            let got: Vec<(i64, i64)> = opt.iter().zip(&pess).map(|(&a, &b)| (a, b)).collect();
            let mut ties = 0;
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                if a != b {
                    // Only a last-bit difference between the two orders of summation may move
                    // a near-tie; both must then still bracket each other.
                    assert!((a.0 - b.0).abs() <= 1 && (a.1 - b.1).abs() <= 1, "{kind:?} [{k}]: {a:?} vs {b:?}");
                }
                ties += (a.1 > a.0) as usize;
            }
            assert!(ties >= 1, "{kind:?}: the identical entities give tied ranks");
            for level in supported_levels() {
                let (mut o2, mut p2) = (vec![0; 2 * n], vec![0; 2 * n]);
                filtered_ranks(Par::Seq, level, m, t, &test, &filter, &mut o2, &mut p2).unwrap();
                assert_eq!((o2, p2), (opt.clone(), pess.clone()));
            }
        })
    }
}

#[test]
fn regularisers_match_finite_differences() {
    let x = Rng::new(9).vec(24);
    for (kind, complex) in [
        (Regulariser::L2, false),
        (Regulariser::N3, false),
        (Regulariser::N3, true),
    ] {
        let mut g = vec![0.0; 24];
        let v = regularise(kind, 0.3, &x, 6, complex, &mut g).unwrap();
        let value = |x: &[f64]| regularise(kind, 0.3, x, 6, complex, &mut [0.0; 24]).unwrap();
        assert_eq!(v, value(&x));
        for (k, want) in g.iter().enumerate() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[k] += 1e-6;
            b[k] -= 1e-6;
            let num = (value(&a) - value(&b)) / 2e-6;
            assert!((want - num).abs() < 1e-6, "{kind:?} {complex} [{k}]");
        }
    }
    assert!(regularise(Regulariser::L2, -1.0, &x, 6, false, &mut [0.0; 24]).is_err());
    assert!(regularise(Regulariser::N3, 1.0, &x, 5, true, &mut [0.0; 24]).is_err());
}

#[test]
fn impossible_sizes_are_errors_not_aborts() {
    // Too many negatives per positive (a chunk holds 32 x num_negatives of them).
    let mut r = Rng::new(81);
    let mut ent: Vec<f32> = r.vec(10 * 4).iter().map(|&v| v as f32).collect();
    let mut rel: Vec<f32> = r.vec(3 * 4).iter().map(|&v| v as f32).collect();
    let (mut es, mut rs) = (vec![0.0f32; 2 * ent.len()], vec![0.0f32; 2 * rel.len()]);
    let before = (ent.clone(), rel.clone());
    let cfg = Config {
        loss: Loss::Softplus,
        n_neg: nesy_core::kge::train::MAX_NEGATIVES + 1,
        sampler: Sampler::Uniform,
        shared_negatives: false,
        batch_size: 8,
        opt: SparseOpt::Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        regulariser: None,
        normalize_entities: false,
        seed: 0,
    };
    let mut p = Params {
        ent: &mut ent,
        rel: &mut rel,
        d_e: 4,
        d_r: 4,
        ent_state: &mut es,
        rel_state: &mut rs,
        step: 0,
    };
    let m = nesy_core::kge::DistMult;
    let err = train_epoch(
        Par::Seq,
        Level::Scalar,
        m,
        &mut p,
        &toy_triples(10),
        &[],
        0,
        &cfg,
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("num_negatives: at most"),
        "{err}"
    );
    assert_eq!((ent, rel), before);
    // Bernoulli probabilities for more relations than memory holds.
    let err = bernoulli_probs(&[0, 0, 1], usize::MAX / 4).unwrap_err();
    assert!(
        err.to_string().starts_with("n_relations: cannot allocate"),
        "{err}"
    );
}

#[test]
fn bad_ids_and_widths_are_refused() {
    let m = nesy_core::kge::RotatE;
    let ent = vec![0.0f32; 10 * 8];
    let rel = vec![0.0f32; 2 * 4];
    assert!(Tables::new(&m, &ent, 8, &rel, 8).is_err());
    assert!(Tables::new(&m, &ent[..63], 7, &rel, 4).is_err());
    let t = Tables::new(&m, &ent, 8, &rel, 4).unwrap();
    let mut out = vec![0.0f32; 1];
    let err = score_triples(Par::Seq, m, t, &[0, 2, 1], &mut out).unwrap_err();
    assert!(err.to_string().contains("relation"), "{err}");
    let err = score_triples(Par::Seq, m, t, &[0, 1, 10], &mut out).unwrap_err();
    assert!(err.to_string().contains("tail"), "{err}");
    let mut all = vec![0.0f32; 10];
    let err = score_all(
        Par::Seq,
        Level::Scalar,
        m,
        t,
        &[-1],
        &[0],
        Side::Tail,
        &mut all,
    );
    assert!(err.unwrap_err().to_string().contains("entities[0]"));
    assert!(Filter::new(&[0, 0, 11], 10, 2).is_err());
    assert!(Kind::parse("transh").is_err());
}

// ---------------------------------------------------------------- training

use nesy_core::kge::loss::{bce_rows, ce_rows, negative_sampling, Loss};
use nesy_core::kge::sparse::SparseOpt;
use nesy_core::kge::train::bernoulli_probs;
use nesy_core::kge::{train_epoch, Config, Params, Sampler};

#[test]
fn query_gradients_match_finite_differences() {
    for kind in KINDS {
        with_model!(kind, m => {
            let g = kg(&m, 3, 2, 5, 11);
            let (de, dr) = (g.d_e, g.d_r);
            let (x, r) = (&g.ent[..de], &g.rel[..dr]);
            let dq = Rng::new(12).vec(de);
            for side in [Side::Tail, Side::Head] {
                let f = |x: &[f64], r: &[f64]| -> f64 {
                    let mut q = vec![0.0; de];
                    m.query(x, r, side, &mut q);
                    q.iter().zip(&dq).map(|(a, b)| a * b).sum()
                };
                let (mut dx, mut drr) = (vec![0.0; de], vec![0.0; dr]);
                m.query_grad(x, r, side, &dq, &mut dx, &mut drr);
                for (k, want) in dx.iter().enumerate() {
                    let (mut a, mut b) = (x.to_vec(), x.to_vec());
                    a[k] += 1e-6;
                    b[k] -= 1e-6;
                    let num = (f(&a, r) - f(&b, r)) / 2e-6;
                    assert!((want - num).abs() < 1e-6, "{kind:?} {side:?} dx[{k}]");
                }
                for (k, want) in drr.iter().enumerate() {
                    let (mut a, mut b) = (r.to_vec(), r.to_vec());
                    a[k] += 1e-6;
                    b[k] -= 1e-6;
                    let num = (f(x, &a) - f(x, &b)) / 2e-6;
                    assert!((want - num).abs() < 1e-6, "{kind:?} {side:?} dr[{k}]");
                }
            }
        })
    }
}

#[test]
fn losses_match_finite_differences() {
    let mut r = Rng::new(13);
    let pos = r.vec(4);
    let neg: Vec<f64> = r.vec(12).iter().map(|v| 2.0 * v).collect();
    for loss in [
        Loss::MarginRanking { margin: 1.0 },
        Loss::Softplus,
        Loss::SelfAdversarial {
            gamma: 0.5,
            temperature: 0.0,
        },
    ] {
        let (mut dp, mut dn) = (vec![0.0; 4], vec![0.0; 12]);
        let value = negative_sampling(loss, 0.1, &pos, &neg, &mut dp, &mut dn);
        let f = |p: &[f64], n: &[f64]| {
            negative_sampling(loss, 0.1, p, n, &mut [0.0; 4], &mut [0.0; 12])
        };
        assert_eq!(value, f(&pos, &neg));
        for (k, want) in dp.iter().enumerate() {
            let (mut a, mut b) = (pos.clone(), pos.clone());
            a[k] += 1e-6;
            b[k] -= 1e-6;
            assert!(
                (want - (f(&a, &neg) - f(&b, &neg)) / 2e-6).abs() < 1e-6,
                "{loss:?}"
            );
        }
        for (k, want) in dn.iter().enumerate() {
            let (mut a, mut b) = (neg.clone(), neg.clone());
            a[k] += 1e-6;
            b[k] -= 1e-6;
            assert!(
                (want - (f(&pos, &a) - f(&pos, &b)) / 2e-6).abs() < 1e-6,
                "{loss:?}"
            );
        }
    }
}

#[test]
fn bernoulli_probabilities_follow_tph_and_hpt() {
    // Relation 0: one head with three tails (1-to-N: corrupt the head more often).
    // Relation 1: three heads with one tail (N-to-1).
    let tr = [0, 0, 1, 0, 0, 2, 0, 0, 3, 1, 1, 0, 2, 1, 0, 3, 1, 0];
    let p = bernoulli_probs(&tr, 3).unwrap();
    assert!((p[0] - 0.75).abs() < 1e-12 && (p[1] - 0.25).abs() < 1e-12 && p[2] == 0.5);
}

/// A small knowledge graph with structure: relation 0 maps i -> i + 1, relation 1 its inverse,
/// relation 2 maps i -> i + 2 (mod n).
fn toy_triples(n: i64) -> Vec<i64> {
    (0..n)
        .flat_map(|i| [i, 0, (i + 1) % n, (i + 1) % n, 1, i, i, 2, (i + 2) % n])
        .collect()
}

/// Trains on `toy_triples(n_ent)` (3 relations) in batches of `batch`.
fn train(
    kind: Kind,
    loss: Loss,
    shared: bool,
    par: Par,
    epochs: u64,
    (n_ent, batch): (usize, usize),
) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
    with_model!(kind, m => {
        let rank = 16;
        let d_e = if matches!(kind, Kind::ComplEx | Kind::RotatE) { 2 * rank } else { rank };
        let d_r = m.rel_width(d_e).unwrap();
        let mut r = Rng::new(14);
        let mut ent: Vec<f32> = r.vec(n_ent * d_e).iter().map(|v| (0.3 * v) as f32).collect();
        let mut rel: Vec<f32> = r.vec(3 * d_r).iter().map(|v| (0.3 * v) as f32).collect();
        let opt = SparseOpt::Adam { lr: 0.02, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        let mut es = vec![0.0f32; 2 * ent.len()];
        let mut rs = vec![0.0f32; 2 * rel.len()];
        let tr = toy_triples(n_ent as i64);
        let cfg = Config {
            loss,
            n_neg: 8,
            // A shared set of negatives takes the side per chunk: uniform only.
            sampler: if shared {
                Sampler::Uniform
            } else {
                Sampler::Bernoulli
            },
            shared_negatives: shared,
            batch_size: batch,
            opt,
            regulariser: None,
            normalize_entities: false,
            seed: 5,
        };
        let probs = bernoulli_probs(&tr, 3).unwrap();
        let mut p = Params { ent: &mut ent, rel: &mut rel, d_e, d_r, ent_state: &mut es, rel_state: &mut rs, step: 0 };
        let losses: Vec<f64> = (0..epochs)
            .map(|e| train_epoch(par, nesy_core::simd::detect(), m, &mut p, &tr, &probs, e, &cfg).unwrap())
            .collect();
        (ent, rel, losses)
    })
}

#[test]
fn training_is_deterministic_across_threads_and_learns() {
    for (kind, loss, shared) in [
        (Kind::TransEL1, Loss::MarginRanking { margin: 1.0 }, false),
        (Kind::DistMult, Loss::Softplus, true),
        (
            Kind::ComplEx,
            Loss::Bce {
                label_smoothing: 0.0,
            },
            false,
        ),
        (
            Kind::RotatE,
            Loss::SelfAdversarial {
                gamma: 6.0,
                temperature: 1.0,
            },
            false,
        ),
        (
            Kind::RotatE,
            Loss::SelfAdversarial {
                gamma: 6.0,
                temperature: 1.0,
            },
            true,
        ),
    ] {
        // Batches of 256 x 8 negatives x 16+ values are above `MIN_PARALLEL_WORK`: each runs
        // as 8 chunks of positives on three threads (the last batch, 88, sequentially).
        let big = (200, 256);
        let seq = train(kind, loss, shared, Par::Seq, 2, big);
        let ray = on_three_threads(|| train(kind, loss, shared, Par::Rayon, 2, big));
        assert_eq!(seq.0, ray.0, "{kind:?} entities");
        assert_eq!(seq.1, ray.1, "{kind:?} relations");
        assert_eq!(seq.2, ray.2, "{kind:?} losses");
        let long = train(kind, loss, shared, Par::Rayon, 60, (40, 50));
        let (first, last) = (long.2[0], *long.2.last().unwrap());
        assert!(
            last < 0.7 * first,
            "{kind:?} {loss:?}: loss {first} -> {last}"
        );
    }
}

#[test]
fn sparse_adam_and_adagrad_update_only_touched_rows() {
    use nesy_core::kge::sparse::RowGrads;
    for opt in [
        SparseOpt::Adagrad {
            lr: 0.1,
            eps: 1e-10,
        },
        SparseOpt::Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
        },
    ] {
        let mut table = vec![1.0f64; 5 * 2];
        let mut state = vec![0.0f64; opt.n_states() * 10];
        let mut g = RowGrads::new(5, 2);
        g.add(3, &[0.5, -1.0]);
        g.add(1, &[2.0, 0.0]);
        g.add(3, &[0.5, 0.0]);
        opt.apply(Par::Seq, &mut table, &mut state, 1, &g).unwrap();
        assert!(opt
            .apply(Par::Seq, &mut table, &mut state[1..], 2, &g)
            .is_err());
        assert_eq!(&table[0..2], &[1.0, 1.0]);
        assert_eq!(&table[4..6], &[1.0, 1.0]);
        // Row 3 got g = (1, -1): both update rules move by -lr * sign(g) on the first step.
        assert!(
            (table[6] - 0.9).abs() < 1e-6 && (table[7] - 1.1).abs() < 1e-6,
            "{opt:?} {table:?}"
        );
        assert!((table[2] - 0.9).abs() < 1e-6 && table[3] == 1.0, "{opt:?}");
    }
    assert!(SparseOpt::parse("sgd", 0.1, 0.9, 0.99, 1e-8).is_err());
    assert!(SparseOpt::parse("adam", -0.1, 0.9, 0.99, 1e-8).is_err());
}

#[test]
fn one_vs_all_losses_match_finite_differences() {
    let scores: Vec<f64> = Rng::new(15).vec(2 * 7).iter().map(|v| 3.0 * v).collect();
    let labels: [&[i64]; 2] = [&[1, 4], &[6]];
    for ce in [false, true] {
        let f = |s: &[f64], d: &mut [f64]| {
            if ce {
                ce_rows(0.2, s, 7, &labels, d)
            } else {
                bce_rows(0.1, 0.2, s, 7, &labels, d)
            }
        };
        let mut d = vec![0.0; 14];
        f(&scores, &mut d);
        for (k, want) in d.iter().enumerate() {
            let (mut a, mut b) = (scores.clone(), scores.clone());
            a[k] += 1e-6;
            b[k] -= 1e-6;
            let num = (f(&a, &mut [0.0; 14]) - f(&b, &mut [0.0; 14])) / 2e-6;
            assert!((want - num).abs() < 1e-7, "ce={ce} [{k}]: {want} vs {num}");
        }
    }
}

#[test]
fn prepared_relations_give_the_same_scores_and_gradients() {
    for kind in KINDS {
        with_model!(kind, m => {
            let g = kg(&m, 2, 1, 19, 16);
            let (de, dr) = (g.d_e, g.d_r);
            let (h, r, t) = (&g.ent[..de], &g.rel[..dr], &g.ent[de..2 * de]);
            let mut rp = vec![0.0; m.prepared_width(dr)];
            m.prepare(r, &mut rp);
            assert!((m.score(h, r, t) - m.score_prepared(h, &rp, t)).abs() < 1e-12, "{kind:?}");
            let mut a = (vec![0.0; de], vec![0.0; dr], vec![0.0; de]);
            let mut b = a.clone();
            m.grad(h, r, t, 0.7, &mut a.0, &mut a.1, &mut a.2);
            m.grad_prepared(h, &rp, t, 0.7, &mut b.0, &mut b.1, &mut b.2);
            for (x, y) in a.0.iter().chain(&a.1).chain(&a.2).zip(b.0.iter().chain(&b.1).chain(&b.2)) {
                assert!((x - y).abs() < 1e-12, "{kind:?}");
            }
        })
    }
}

#[test]
fn scoring_and_ranking_split_over_threads_give_the_sequential_bits() {
    // Sizes above `MIN_PARALLEL_WORK` for every kernel (the tests above run sequentially).
    let (n_ent, n_rel, n) = (700, 5, 3000);
    for kind in KINDS {
        with_model!(kind, m => {
            let g = kg(&m, n_ent, n_rel, 8, 61);
            let t = g.tables(&m);
            let (de, dr) = (g.d_e, g.d_r);
            let tr = triples(n, n_ent, n_rel, 62);
            let up = Rng::new(63).vec(n);
            let known = [tr.clone(), triples(2000, n_ent, n_rel, 64)].concat();
            let filter = Filter::new(&known, n_ent, n_rel).unwrap();
            let fixed: Vec<i64> = tr.chunks_exact(3).map(|t| t[0]).collect();
            let rels: Vec<i64> = tr.chunks_exact(3).map(|t| t[1]).collect();
            let level = nesy_core::simd::detect();
            let all = |par: Par| {
                let mut s = vec![0.0; n];
                score_triples(par, m, t, &tr, &mut s).unwrap();
                let mut grads = (vec![0.0; n * de], vec![0.0; n * dr], vec![0.0; n * de]);
                let (gh, gr, gt) = (&mut grads.0, &mut grads.1, &mut grads.2);
                score_triples_grad(par, m, t, &tr, &up, gh, gr, gt).unwrap();
                let mut one_vs_all = vec![0.0; n * n_ent];
                score_all(par, level, m, t, &fixed, &rels, Side::Tail, &mut one_vs_all).unwrap();
                let (mut opt, mut pess) = (vec![0; 2 * n], vec![0; 2 * n]);
                filtered_ranks(par, level, m, t, &tr, &filter, &mut opt, &mut pess).unwrap();
                (s, grads, one_vs_all, opt, pess)
            };
            let seq = all(Par::Seq);
            assert_eq!(on_three_threads(|| all(Par::Rayon)), seq, "{kind:?}");
        })
    }
}
