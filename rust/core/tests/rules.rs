//! Knowledge-graph rules against brute force on small random graphs: the metrics of every rule
//! kind and direction, the exact miner against an enumeration of every possible rule, the
//! sampler's candidates, rule application and filtered ranks against set-based application,
//! groundings that exist; Seq vs Rayon; bad input.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{on_three_threads, Rng};
use nesy_core::kge::rank::Filter;
use nesy_core::rules::apply::{Aggregation, Applier};
use nesy_core::rules::mine::{mine_exact, sample_rules, MineOptions, SampleOptions};
use nesy_core::rules::{parse_rows, rule_metrics, Atom, Index, Kind, Length2, Rule, RuleMetrics};
use nesy_core::Par;

type Pairs = BTreeSet<(u32, u32)>;

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
fn atom_pairs(t: &[i64], a: Atom) -> Pairs {
    t.chunks_exact(3)
        .filter(|f| f[1] as u32 == a.rel)
        .map(|f| {
            let (h, tl) = (f[0] as u32, f[2] as u32);
            if a.inverse {
                (tl, h)
            } else {
                (h, tl)
            }
        })
        .collect()
}

fn body_pairs(t: &[i64], body: &[Atom]) -> Pairs {
    let mut pairs = atom_pairs(t, body[0]);
    for &a in &body[1..] {
        let next = atom_pairs(t, a);
        pairs = pairs
            .iter()
            .flat_map(|&(x, z)| next.iter().filter(move |p| p.0 == z).map(move |p| (x, p.1)))
            .collect();
    }
    pairs
}

/// The x with the body of an acyclic rule true.
fn acyclic_xs(t: &[i64], rule: &Rule) -> BTreeSet<u32> {
    body_pairs(t, rule.body())
        .into_iter()
        .filter(|&(_, y)| rule.kind == Kind::Dangling || y == rule.end)
        .map(|(x, _)| x)
        .collect()
}

fn brute_metrics(t: &[i64], rule: &Rule) -> (u64, u64, u64, u64) {
    let q = atom_pairs(t, rule.head_atom());
    let has_q = |x: u32| q.iter().any(|p| p.0 == x);
    if rule.kind == Kind::Closed {
        let body = body_pairs(t, rule.body());
        let support = body.iter().filter(|p| q.contains(p)).count() as u64;
        let pca = body.iter().filter(|p| has_q(p.0)).count() as u64;
        (support, body.len() as u64, pca, q.len() as u64)
    } else {
        let xs = acyclic_xs(t, rule);
        let head: BTreeSet<u32> = q
            .iter()
            .filter(|p| p.1 == rule.constant)
            .map(|p| p.0)
            .collect();
        let support = xs.intersection(&head).count() as u64;
        let pca = xs.iter().filter(|&&x| has_q(x)).count() as u64;
        (support, xs.len() as u64, pca, head.len() as u64)
    }
}

fn counts(m: &RuleMetrics) -> (u64, u64, u64, u64) {
    (m.support, m.body_pairs, m.pca_body_pairs, m.head_facts)
}

fn atoms(n_rel: u32) -> Vec<Atom> {
    (0..2 * n_rel).map(Atom::from_code).collect()
}

fn bodies(n_rel: u32, len: usize) -> Vec<Vec<Atom>> {
    let mut out: Vec<Vec<Atom>> = vec![vec![]];
    for _ in 0..len {
        out = out
            .into_iter()
            .flat_map(|b| {
                atoms(n_rel).into_iter().map(move |a| {
                    let mut b = b.clone();
                    b.push(a);
                    b
                })
            })
            .collect();
    }
    out
}

/// Every possible rule over `n_ent` entities and `n_rel` relations.
fn every_rule(n_ent: u32, n_rel: u32, max_closed: usize, max_acyclic: usize) -> Vec<Rule> {
    let mut rules = Vec::new();
    for head in 0..n_rel {
        for len in 1..=max_closed {
            for b in bodies(n_rel, len) {
                rules.push(Rule::closed(head, &b));
            }
        }
        for len in 1..=max_acyclic {
            for b in bodies(n_rel, len) {
                for hi in [false, true] {
                    for c in 0..n_ent {
                        rules.push(Rule::acyclic(Kind::Dangling, head, hi, c, 0, &b));
                        for d in 0..n_ent {
                            rules.push(Rule::acyclic(Kind::EndConstant, head, hi, c, d, &b));
                        }
                    }
                }
            }
        }
    }
    rules
}

#[test]
fn metrics_match_brute_force_for_every_rule_kind() {
    for seed in 0..3 {
        let (n_ent, n_rel) = (7, 2);
        let t = random_graph(n_ent, n_rel, 24, seed);
        let index = Index::new(&t, n_ent, n_rel).unwrap();
        let rules = every_rule(n_ent as u32, n_rel as u32, 3, 2);
        let got = rule_metrics(Par::Seq, &index, &rules);
        for (rule, m) in rules.iter().zip(&got) {
            assert_eq!(counts(m), brute_metrics(&t, rule), "{rule:?}");
            let want = if m.body_pairs == 0 {
                0.0
            } else {
                m.support as f64 / m.body_pairs as f64
            };
            assert_eq!(m.std_confidence, want);
        }
        assert_eq!(rule_metrics(Par::Rayon, &index, &rules), got);
    }
}

#[test]
fn exact_miner_finds_every_rule_above_the_thresholds() {
    for seed in 0..3 {
        let (n_ent, n_rel) = (8, 2);
        let t = random_graph(n_ent, n_rel, 30, 10 + seed);
        let index = Index::new(&t, n_ent, n_rel).unwrap();
        for pca in [false, true] {
            let opts = MineOptions {
                max_length: 3,
                max_length_acyclic: 2,
                min_support: 2,
                min_head_coverage: 0.1,
                min_confidence: 0.2,
                pca,
            };
            let all = every_rule(n_ent as u32, n_rel as u32, 3, 2);
            let metrics = rule_metrics(Par::Seq, &index, &all);
            let mut want: Vec<Rule> = all
                .into_iter()
                .zip(&metrics)
                .filter(|(r, m)| !r.is_trivial() && opts.keeps(m))
                .map(|(r, _)| r)
                .collect();
            want.sort_unstable();
            let heads: Vec<u32> = (0..n_rel as u32).collect();
            let mined = mine_exact(Par::Seq, &index, &heads, &opts).unwrap();
            assert!(!want.is_empty());
            assert_eq!(mined.rules, want, "seed {seed} pca {pca}");
            assert_eq!(mined.metrics, rule_metrics(Par::Seq, &index, &want));
            let par = mine_exact(Par::Rayon, &index, &heads, &opts).unwrap();
            assert_eq!(par.rules, mined.rules);
        }
    }
}

#[test]
fn sampled_rules_are_real_paths_and_deterministic() {
    let (n_ent, n_rel) = (30, 3);
    let t = random_graph(n_ent, n_rel, 150, 5);
    let index = Index::new(&t, n_ent, n_rel).unwrap();
    let opts = SampleOptions {
        max_length: 3,
        max_length_acyclic: 2,
        paths: 200,
        seed: 7,
    };
    let heads = [0, 1, 2];
    let rules = sample_rules(Par::Seq, &index, &heads, 0, &opts).unwrap();
    assert_eq!(
        sample_rules(Par::Rayon, &index, &heads, 0, &opts).unwrap(),
        rules
    );
    assert_ne!(
        sample_rules(Par::Seq, &index, &heads, 1, &opts).unwrap(),
        rules
    );
    let kinds: BTreeSet<Kind> = rules.iter().map(|r| r.kind).collect();
    assert_eq!(kinds.len(), 3);
    // Every sampled rule has at least one supporting grounding and is not trivial.
    for (r, m) in rules.iter().zip(rule_metrics(Par::Seq, &index, &rules)) {
        assert!(m.support >= 1 && !r.is_trivial(), "{r:?}");
    }
}

#[test]
fn facts_are_enumerated_in_order() {
    let t = random_graph(20, 2, 60, 3);
    let index = Index::new(&t, 20, 2).unwrap();
    for r in 0..2u32 {
        let want: Vec<(u32, u32)> = atom_pairs(&t, Atom::new(r, false)).into_iter().collect();
        let got: Vec<(u32, u32)> = (0..index.facts(r as usize))
            .map(|k| index.fact(r as usize, k))
            .collect();
        assert_eq!(got, want);
    }
}

/// Candidates of `q(e, ?)` with the confidences of the rules firing, by set logic.
fn brute_apply(
    t: &[i64],
    rules: &[Rule],
    conf: &[f64],
    e: u32,
    q: Atom,
) -> BTreeMap<u32, Vec<f64>> {
    let mut out: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for (rule, &c) in rules.iter().zip(conf) {
        let mut ys = BTreeSet::new();
        match rule.kind {
            Kind::Closed if rule.head == q.rel => {
                for (x, y) in body_pairs(t, rule.body()) {
                    let (from, to) = if q.inverse { (y, x) } else { (x, y) };
                    if from == e {
                        ys.insert(to);
                    }
                }
            }
            Kind::Closed => {}
            _ => {
                let xs = acyclic_xs(t, rule);
                if rule.head_atom() == q && xs.contains(&e) {
                    ys.insert(rule.constant);
                }
                if rule.head_atom() == q.flipped() && rule.constant == e {
                    ys.extend(xs);
                }
            }
        }
        ys.remove(&e);
        for y in ys {
            out.entry(y).or_default().push(c);
        }
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| b.total_cmp(a));
    }
    out
}

#[test]
fn application_and_ranks_match_brute_force() {
    let (n_ent, n_rel) = (12, 3);
    let t = random_graph(n_ent, n_rel, 60, 21);
    let index = Index::new(&t, n_ent, n_rel).unwrap();
    let opts = MineOptions {
        max_length: 3,
        max_length_acyclic: 2,
        min_support: 1,
        min_head_coverage: 0.0,
        min_confidence: 0.05,
        pca: false,
    };
    let heads: Vec<u32> = (0..n_rel as u32).collect();
    let mined = mine_exact(Par::Seq, &index, &heads, &opts).unwrap();
    let conf: Vec<f64> = mined
        .metrics
        .iter()
        .map(|m| m.support as f64 / (m.body_pairs as f64 + 2.0))
        .collect();
    let app = Applier::new(&index, &mined.rules, &conf, true).unwrap();
    let test = random_graph(n_ent, n_rel, 20, 99);
    let filter = Filter::new(&t, n_ent, n_rel).unwrap();
    for agg in [
        Aggregation::MaxPlus,
        Aggregation::MaxNoisyOr,
        Aggregation::NoisyOr,
    ] {
        let (mut opt, mut pess) = (vec![0; test.len() / 3 * 2], vec![0; test.len() / 3 * 2]);
        app.filtered_ranks(Par::Seq, &test, &filter, agg, &mut opt, &mut pess)
            .unwrap();
        let (mut opt2, mut pess2) = (opt.clone(), pess.clone());
        app.filtered_ranks(Par::Rayon, &test, &filter, agg, &mut opt2, &mut pess2)
            .unwrap();
        assert_eq!((&opt, &pess), (&opt2, &pess2));
        for (k, f) in test.chunks_exact(3).enumerate() {
            for (col, inverse) in [(0, true), (1, false)] {
                let (e, r, target) = if inverse {
                    (f[2], f[1], f[0])
                } else {
                    (f[0], f[1], f[2])
                };
                let q = Atom::new(r as u32, inverse);
                let cands = brute_apply(&t, &mined.rules, &conf, e as u32, q);
                let got = &app.predict(Par::Seq, &[[e, r]], inverse, agg, 0).unwrap()[0];
                let got_set: BTreeSet<u32> = got.candidates.iter().copied().collect();
                assert_eq!(got_set, cands.keys().copied().collect());
                for (i, y) in got.candidates.iter().enumerate() {
                    assert_eq!(got.max[i], cands[y][0]);
                }
                // The brute-force key of a candidate (lexicographic, greater is better).
                let key = |y: u32| -> Vec<f64> {
                    let c = cands.get(&y).cloned().unwrap_or_default();
                    let noisy = 1.0 - c.iter().map(|v| 1.0 - v).product::<f64>();
                    match (agg, c.first()) {
                        (Aggregation::MaxPlus, _) => c.clone(),
                        (Aggregation::MaxNoisyOr, Some(&mx)) => vec![mx, noisy],
                        (Aggregation::NoisyOr, Some(_)) => vec![noisy],
                        (_, None) => vec![-1.0],
                    }
                };
                let better_than = |a: &Vec<f64>, b: &Vec<f64>| a > b;
                let kt = key(target as u32);
                let known: BTreeSet<u32> = (0..n_ent as u32)
                    .filter(|&y| {
                        let (h2, t2) = if inverse {
                            (y, e as u32)
                        } else {
                            (e as u32, y)
                        };
                        atom_pairs(&t, Atom::new(r as u32, false)).contains(&(h2, t2))
                    })
                    .collect();
                let (mut better, mut equal) = (0, 0);
                for y in 0..n_ent as u32 {
                    if y == target as u32 || known.contains(&y) {
                        continue;
                    }
                    let ky = key(y);
                    if better_than(&ky, &kt) {
                        better += 1;
                    } else if ky == kt {
                        equal += 1;
                    }
                }
                assert_eq!(opt[2 * k + col], 1 + better, "{agg:?} {k} {col}");
                assert_eq!(pess[2 * k + col], 1 + better + equal, "{agg:?} {k} {col}");
            }
        }
    }
}

#[test]
fn explanations_are_groundings_in_the_graph() {
    let (n_ent, n_rel) = (15, 3);
    let t = random_graph(n_ent, n_rel, 70, 8);
    let index = Index::new(&t, n_ent, n_rel).unwrap();
    let opts = MineOptions {
        min_support: 1,
        min_head_coverage: 0.0,
        min_confidence: 0.05,
        max_length_acyclic: 2,
        ..Default::default()
    };
    let mined = mine_exact(Par::Seq, &index, &[0, 1, 2], &opts).unwrap();
    let conf: Vec<f64> = mined.metrics.iter().map(|m| m.std_confidence).collect();
    let app = Applier::new(&index, &mined.rules, &conf, true).unwrap();
    let mut checked = 0;
    for e in 0..n_ent as i64 {
        for r in 0..n_rel as i64 {
            for inverse in [false, true] {
                let ranked = &app
                    .predict(Par::Seq, &[[e, r]], inverse, Aggregation::MaxPlus, 0)
                    .unwrap()[0];
                for &y in &ranked.candidates {
                    let ex = app.explain(e, r, inverse, y as i64, 3).unwrap();
                    assert!(!ex.is_empty());
                    for x in &ex {
                        assert!(
                            !x.paths.is_empty(),
                            "rule {} fired without a grounding",
                            x.rule
                        );
                        for path in &x.paths {
                            assert_eq!(path[0], x.start);
                            for (k, a) in x.atoms.iter().enumerate() {
                                let p = atom_pairs(&t, *a);
                                assert!(p.contains(&(path[k], path[k + 1])));
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 50);
}

#[test]
fn sizes_beyond_memory_are_errors_not_aborts() {
    // Declared sizes whose lists cannot be allocated: an error naming them.
    let err = Index::new(&[0, 0, 1], (1 << 31) + 7, (1 << 19) + 3).unwrap_err();
    assert!(
        err.to_string().starts_with("n_entities x n_relations"),
        "{err}"
    );
    // 10^5 relations: 4 x 10^15 length-2 rules.
    let index = Index::new(&[0, 0, 1, 1, 3, 2], 20, 100_000).unwrap();
    let err = nesy_core::rules::all_length2(Par::Seq, &index).unwrap_err();
    assert!(err.to_string().starts_with("n_relations"), "{err}");
    // The sampler's walks per batch are bounded.
    let opts = SampleOptions {
        max_length: 2,
        max_length_acyclic: 1,
        paths: nesy_core::rules::mine::MAX_PATHS + 1,
        seed: 0,
    };
    let err = sample_rules(Par::Seq, &index, &[0], 0, &opts).unwrap_err();
    assert!(err.to_string().starts_with("paths:"), "{err}");
}

#[test]
fn bad_input_is_refused() {
    assert!(Index::new(&[0, 0, 5], 5, 1).is_err());
    assert!(Index::new(&[0, 1, 2], 5, 1)
        .unwrap_err()
        .to_string()
        .contains("relation"));
    let ok = [0, 0, 0, -1, -1, 0, 0, -1, 0, -1, 0];
    assert!(parse_rows(&ok, 2, 1).is_ok());
    let bad = |col: usize, v: i64| {
        let mut row = ok;
        row[col] = v;
        parse_rows(&row, 2, 1).unwrap_err().to_string()
    };
    assert!(bad(0, 3).contains("kind"));
    assert!(bad(1, 1).contains("head"));
    assert!(bad(2, 1).contains("head_inverse"));
    assert!(
        bad(3, 0).contains("a closed rule has no constant"),
        "{}",
        bad(3, 0)
    );
    assert!(bad(5, 4).contains("body relation"));
    assert!(bad(6, 2).contains("inverse"));
    // A gap in the body, and an acyclic rule that is too long.
    let mut gap = ok;
    gap[9] = 0;
    assert!(parse_rows(&gap, 2, 1).is_err());
    // Kinds are named in the Python layer's words, not the Rust enum's.
    let long = [2, 0, 0, 1, -1, 0, 0, 0, 0, 0, 0];
    let err = parse_rows(&long, 2, 1).unwrap_err().to_string();
    assert!(
        err.contains("a dangling rule needs 1 to 2 body atoms"),
        "{err}"
    );
    let long = [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    let err = parse_rows(&long, 2, 1).unwrap_err().to_string();
    assert!(
        err.contains("an end-constant rule needs 1 to 2 body atoms"),
        "{err}"
    );
    let index = Index::new(&[0, 0, 1], 2, 1).unwrap();
    let opts = MineOptions {
        max_length: 4,
        ..Default::default()
    };
    assert!(mine_exact(Par::Seq, &index, &[0], &opts).is_err());
    assert!(mine_exact(Par::Seq, &index, &[1], &MineOptions::default()).is_err());
    let rules = [Rule::closed(0, &[Atom::new(0, true)])];
    assert!(Applier::new(&index, &rules, &[1.5], true).is_err());
    assert!(Applier::new(&index, &rules, &[], true).is_err());
    let app = Applier::new(&index, &rules, &[0.5], true).unwrap();
    assert!(app
        .predict(Par::Seq, &[[2, 0]], false, Aggregation::MaxPlus, 0)
        .is_err());
    assert!(app
        .predict(Par::Seq, &[[0, 1]], false, Aggregation::MaxPlus, 0)
        .is_err());
}

#[test]
fn all_length2_rules_match_their_one_by_one_metrics() {
    let (n_ent, n_rel) = (25, 3);
    let t = random_graph(n_ent, n_rel, 120, 77);
    let index = Index::new(&t, n_ent, n_rel).unwrap();
    let all = nesy_core::rules::all_length2(Par::Seq, &index).unwrap();
    let n = n_rel * (2 * n_rel) * (2 * n_rel);
    assert_eq!(all.support.len(), n);
    let rules: Vec<Rule> = (0..n).map(|k| Length2::rule(n_rel, k)).collect();
    let metrics: Vec<RuleMetrics> = (0..n).map(|k| all.metrics(k)).collect();
    let mut sorted = rules.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, rules, "head-major, then a1, then a2");
    assert_eq!(metrics, rule_metrics(Par::Seq, &index, &rules));
    assert_eq!(
        nesy_core::rules::all_length2(Par::Rayon, &index).unwrap(),
        all
    );
    // De-duplicating by sorting (large graphs) counts the same as by stamps (small ones).
    assert_eq!(
        nesy_core::rules::all_length2_with(Par::Rayon, &index, 0).unwrap(),
        all
    );
}

#[test]
fn mining_metrics_and_ranks_split_over_threads_give_the_sequential_bits() {
    // A graph large enough that every kernel runs in parallel (work above
    // `MIN_PARALLEL_WORK`); the brute-force tests above are small and run sequentially.
    let (n_ent, n_rel) = (1500, 4);
    let t = random_graph(n_ent, n_rel, 20_000, 91);
    let index = Index::new(&t, n_ent, n_rel).unwrap();
    let heads: Vec<u32> = (0..n_rel as u32).collect();
    let mine = MineOptions {
        max_length: 2,
        max_length_acyclic: 1,
        min_support: 2,
        min_head_coverage: 0.0,
        min_confidence: 0.0,
        pca: false,
    };
    let sample = SampleOptions {
        max_length: 3,
        max_length_acyclic: 2,
        paths: 2000,
        seed: 3,
    };
    let test = random_graph(n_ent, n_rel, 400, 92);
    let filter = Filter::new(&t, n_ent, n_rel).unwrap();
    let run = |par: Par| {
        let mined = mine_exact(par, &index, &heads, &mine).unwrap();
        let metrics = rule_metrics(par, &index, &mined.rules);
        let sampled = sample_rules(par, &index, &heads, 0, &sample).unwrap();
        let length2 = nesy_core::rules::all_length2(par, &index).unwrap();
        let conf: Vec<f64> = metrics.iter().map(|m| m.std_confidence).collect();
        let app = Applier::new(&index, &mined.rules, &conf, true).unwrap();
        let mut ranks = Vec::new();
        for agg in [
            Aggregation::MaxPlus,
            Aggregation::MaxNoisyOr,
            Aggregation::NoisyOr,
        ] {
            let n = test.len() / 3 * 2;
            let (mut opt, mut pess) = (vec![0; n], vec![0; n]);
            app.filtered_ranks(par, &test, &filter, agg, &mut opt, &mut pess)
                .unwrap();
            ranks.push((opt, pess));
        }
        let queries: Vec<[i64; 2]> = test.chunks_exact(3).map(|f| [f[0], f[1]]).collect();
        let predicted = app
            .predict(par, &queries, false, Aggregation::MaxPlus, 10)
            .unwrap();
        (
            (mined.rules, mined.metrics, metrics),
            (sampled, length2),
            (ranks, predicted),
        )
    };
    let seq = run(Par::Seq);
    assert!(seq.0 .0.len() > 20, "{} rules mined", seq.0 .0.len());
    assert_eq!(on_three_threads(|| run(Par::Rayon)), seq);
}
