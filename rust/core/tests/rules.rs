//! Rule metrics against brute force on small random graphs: every closed-path rule of length 1
//! and 2 with every direction; Seq vs Rayon; bad input.

mod common;

use std::collections::BTreeSet;

use common::Rng;
use nesy_core::rules::{closed_path_metrics, Atom, Index, PathRule};
use nesy_core::Par;

fn random_graph(n_ent: usize, n_rel: usize, n: usize, seed: u64) -> Vec<i64> {
    let mut r = Rng::new(seed);
    let mut t: Vec<i64> = (0..n)
        .flat_map(|_| {
            [
                (r.next_u64() % n_ent as u64) as i64,
                (r.next_u64() % n_rel as u64) as i64,
                (r.next_u64() % n_ent as u64) as i64,
            ]
        })
        .collect();
    t.extend_from_within(..6); // duplicate facts count once
    t
}

/// Pairs (x, y) along one atom.
fn atom_pairs(t: &[i64], a: Atom) -> BTreeSet<(i64, i64)> {
    t.chunks_exact(3)
        .filter(|f| f[1] as usize == a.rel)
        .map(|f| {
            if a.inverse {
                (f[2], f[0])
            } else {
                (f[0], f[2])
            }
        })
        .collect()
}

fn brute(t: &[i64], rule: &PathRule) -> (u64, u64, u64, u64) {
    let mut body = atom_pairs(t, rule.body[0]);
    if let Some(&b2) = rule.body.get(1) {
        let second = atom_pairs(t, b2);
        body = body
            .iter()
            .flat_map(|&(x, z)| {
                second
                    .iter()
                    .filter(move |&&(z2, _)| z2 == z)
                    .map(move |&(_, y)| (x, y))
            })
            .collect();
    }
    let head = atom_pairs(
        t,
        Atom {
            rel: rule.head,
            inverse: false,
        },
    );
    let support = body.iter().filter(|p| head.contains(p)).count() as u64;
    let pca = body
        .iter()
        .filter(|(x, _)| head.iter().any(|(hx, _)| hx == x))
        .count() as u64;
    (support, body.len() as u64, pca, head.len() as u64)
}

#[test]
fn metrics_match_brute_force_for_every_short_rule() {
    let (n_ent, n_rel) = (12, 3);
    let t = random_graph(n_ent, n_rel, 60, 7);
    let index = Index::new(&t, n_ent, n_rel).unwrap();
    let mut rules = Vec::new();
    for head in 0..n_rel {
        for r1 in 0..n_rel {
            for inv1 in [false, true] {
                let a1 = Atom {
                    rel: r1,
                    inverse: inv1,
                };
                rules.push(PathRule {
                    head,
                    body: vec![a1],
                });
                for r2 in 0..n_rel {
                    for inv2 in [false, true] {
                        let a2 = Atom {
                            rel: r2,
                            inverse: inv2,
                        };
                        rules.push(PathRule {
                            head,
                            body: vec![a1, a2],
                        });
                    }
                }
            }
        }
    }
    let got = closed_path_metrics(Par::Seq, &index, &rules).unwrap();
    for (rule, m) in rules.iter().zip(&got) {
        let (support, body, pca, head) = brute(&t, rule);
        assert_eq!(
            (m.support, m.body_pairs, m.pca_body_pairs, m.head_facts),
            (support, body, pca, head),
            "{rule:?}"
        );
        if body > 0 {
            assert_eq!(m.std_confidence, support as f64 / body as f64);
        }
    }
    // The trivial rule h(X, Y) <- h(X, Y) has every metric 1 (when h has facts).
    let m = &got[0];
    assert_eq!(
        (m.head_coverage, m.std_confidence, m.pca_confidence),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(
        closed_path_metrics(Par::Rayon, &index, &rules).unwrap(),
        got
    );
}

#[test]
fn bad_input_is_refused() {
    assert!(Index::new(&[0, 0, 5], 5, 1).is_err());
    assert!(Index::new(&[0, 1, 2], 5, 1)
        .unwrap_err()
        .to_string()
        .contains("relation"));
    let index = Index::new(&[0, 0, 1], 2, 1).unwrap();
    let a = Atom {
        rel: 0,
        inverse: false,
    };
    let too_long = PathRule {
        head: 0,
        body: vec![a, a, a],
    };
    assert!(closed_path_metrics(Par::Seq, &index, &[too_long]).is_err());
    let bad_head = PathRule {
        head: 3,
        body: vec![a],
    };
    assert!(closed_path_metrics(Par::Seq, &index, &[bad_head]).is_err());
}
