//! Recurrent layers: finite-difference checks of every gradient (f64), for every cell, both
//! directions, with and without bias and variable lengths; inference equals training forward;
//! padding never leaks; bad input is refused; which calls have work for a pool.

mod common;

use common::Rng;
use nesy_core::linalg::PARALLEL_GEMM_MACS;
use nesy_core::rnn::{backward, forward, pool_work, workspace_len, Cell, Dims, Grads, Weights};

struct Case {
    cell: Cell,
    d: Dims,
    x: Vec<f64>,
    h0: Vec<f64>,
    c0: Option<Vec<f64>>,
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Option<Vec<f64>>,
    b_hh: Option<Vec<f64>>,
    lengths: Option<Vec<i64>>,
    reverse: bool,
    // upstream gradients defining the scalar loss L = dy.y + dhn.hn (+ dcn.cn)
    dy: Vec<f64>,
    dhn: Vec<f64>,
    dcn: Option<Vec<f64>>,
}

fn case(cell: Cell, bias: bool, lengths: bool, reverse: bool, seed: u64) -> Case {
    let d = Dims {
        t: 4,
        b: 3,
        i: 2,
        h: 3,
    };
    let gh = cell.gates() * d.h;
    let mut r = Rng::new(seed);
    let c = cell.has_c();
    Case {
        cell,
        d,
        x: r.vec(d.t * d.b * d.i),
        h0: r.vec(d.b * d.h),
        c0: c.then(|| r.vec(d.b * d.h)),
        w_ih: r.vec(gh * d.i),
        w_hh: r.vec(gh * d.h),
        b_ih: bias.then(|| r.vec(gh)),
        b_hh: bias.then(|| r.vec(gh)),
        lengths: lengths.then(|| vec![4, 2, 1]),
        reverse,
        dy: r.vec(d.t * d.b * d.h),
        dhn: r.vec(d.b * d.h),
        dcn: c.then(|| r.vec(d.b * d.h)),
    }
}

fn weights(c: &Case) -> Weights<'_, f64> {
    Weights {
        cell: c.cell,
        w_ih: &c.w_ih,
        w_hh: &c.w_hh,
        b_ih: c.b_ih.as_deref(),
        b_hh: c.b_hh.as_deref(),
    }
}

/// Runs forward; returns (y, hn, cn, workspace).
fn run(c: &Case) -> (Vec<f64>, Vec<f64>, Option<Vec<f64>>, Vec<f64>) {
    let d = c.d;
    let mut y = vec![0.0; d.t * d.b * d.h];
    let mut hn = vec![0.0; d.b * d.h];
    let mut cn = c.c0.as_ref().map(|_| vec![0.0; d.b * d.h]);
    let mut ws = vec![0.0; workspace_len(c.cell, d)];
    forward(
        d,
        &weights(c),
        &c.x,
        &c.h0,
        c.c0.as_deref(),
        c.lengths.as_deref(),
        c.reverse,
        &mut y,
        &mut hn,
        cn.as_deref_mut(),
        Some(&mut ws),
    )
    .unwrap();
    (y, hn, cn, ws)
}

fn loss(c: &Case) -> f64 {
    let (y, hn, cn, _) = run(c);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    dot(&y, &c.dy) + dot(&hn, &c.dhn) + cn.map_or(0.0, |cn| dot(&cn, c.dcn.as_ref().unwrap()))
}

fn grads(c: &Case) -> Vec<Vec<f64>> {
    grads_with(c, true)
}

/// The gradients of `grads`; without `dx` (`with_dx` false) its place holds an empty vector.
fn grads_with(c: &Case, with_dx: bool) -> Vec<Vec<f64>> {
    let d = c.d;
    let gh = c.cell.gates() * d.h;
    let (_, _, _, ws) = run(c);
    let mut dx = vec![0.0; if with_dx { c.x.len() } else { 0 }];
    let mut dh0 = vec![0.0; c.h0.len()];
    let mut dc0 = c.c0.as_ref().map(|v| vec![0.0; v.len()]);
    let mut dw_ih = vec![0.0; gh * d.i];
    let mut dw_hh = vec![0.0; gh * d.h];
    let mut db_ih = c.b_ih.as_ref().map(|_| vec![0.0; gh]);
    let mut db_hh = c.b_hh.as_ref().map(|_| vec![0.0; gh]);
    let out = Grads {
        dx: with_dx.then_some(&mut dx[..]),
        dh0: &mut dh0,
        dc0: dc0.as_deref_mut(),
        dw_ih: &mut dw_ih,
        dw_hh: &mut dw_hh,
        db_ih: db_ih.as_deref_mut(),
        db_hh: db_hh.as_deref_mut(),
    };
    backward(
        d,
        &weights(c),
        &c.x,
        &c.h0,
        c.c0.as_deref(),
        c.lengths.as_deref(),
        c.reverse,
        &ws,
        &c.dy,
        &c.dhn,
        c.dcn.as_deref(),
        out,
    )
    .unwrap();
    let mut all = vec![dx, dh0, dw_ih, dw_hh];
    all.extend(dc0);
    all.extend(db_ih);
    all.extend(db_hh);
    all
}

/// Central differences of the loss with respect to every input, in the order of `grads`.
fn numeric(c: &Case) -> Vec<Vec<f64>> {
    let eps = 1e-6;
    let fd = |get: &dyn Fn(&mut Case) -> &mut Vec<f64>| -> Vec<f64> {
        let mut cc = Case { ..clone(c) };
        let n = get(&mut cc).len();
        (0..n)
            .map(|k| {
                let orig = get(&mut cc)[k];
                get(&mut cc)[k] = orig + eps;
                let up = loss(&cc);
                get(&mut cc)[k] = orig - eps;
                let down = loss(&cc);
                get(&mut cc)[k] = orig;
                (up - down) / (2.0 * eps)
            })
            .collect()
    };
    let mut all = vec![
        fd(&|c| &mut c.x),
        fd(&|c| &mut c.h0),
        fd(&|c| &mut c.w_ih),
        fd(&|c| &mut c.w_hh),
    ];
    if c.c0.is_some() {
        all.push(fd(&|c| c.c0.as_mut().unwrap()));
    }
    if c.b_ih.is_some() {
        all.push(fd(&|c| c.b_ih.as_mut().unwrap()));
        all.push(fd(&|c| c.b_hh.as_mut().unwrap()));
    }
    all
}

fn clone(c: &Case) -> Case {
    Case {
        cell: c.cell,
        d: c.d,
        x: c.x.clone(),
        h0: c.h0.clone(),
        c0: c.c0.clone(),
        w_ih: c.w_ih.clone(),
        w_hh: c.w_hh.clone(),
        b_ih: c.b_ih.clone(),
        b_hh: c.b_hh.clone(),
        lengths: c.lengths.clone(),
        reverse: c.reverse,
        dy: c.dy.clone(),
        dhn: c.dhn.clone(),
        dcn: c.dcn.clone(),
    }
}

#[test]
fn every_gradient_matches_finite_differences() {
    let mut seed = 1;
    for cell in [Cell::RnnTanh, Cell::RnnRelu, Cell::Gru, Cell::Lstm] {
        for bias in [true, false] {
            for lengths in [false, true] {
                for reverse in [false, true] {
                    seed += 1;
                    let c = case(cell, bias, lengths, reverse, seed);
                    let (a, n) = (grads(&c), numeric(&c));
                    assert_eq!(a.len(), n.len());
                    for (k, (ga, gn)) in a.iter().zip(&n).enumerate() {
                        for (u, v) in ga.iter().zip(gn) {
                            assert!((u - v).abs() <= 1e-6 * (1.0 + v.abs()), "{cell:?} bias={bias} lengths={lengths} reverse={reverse} grad #{k}: {u} vs {v}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn without_dx_every_other_gradient_has_the_same_bits() {
    // A first layer skips `dG W_ih`; nothing else may change. Padding and both directions too.
    for cell in [Cell::RnnTanh, Cell::RnnRelu, Cell::Gru, Cell::Lstm] {
        for (lengths, reverse) in [(false, false), (true, true)] {
            let c = case(cell, true, lengths, reverse, 11);
            let (with, without) = (grads_with(&c, true), grads_with(&c, false));
            assert_eq!(with[0].len(), c.x.len());
            assert!(without[0].is_empty());
            for (k, (a, b)) in with.iter().zip(&without).enumerate().skip(1) {
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b), "{cell:?} gradient {k}");
            }
        }
    }
}

#[test]
fn padding_gives_zero_outputs_and_never_changes_real_ones() {
    for cell in [Cell::RnnTanh, Cell::Gru, Cell::Lstm] {
        for reverse in [false, true] {
            let mut c = case(cell, true, true, reverse, 99);
            let (y, hn, _, _) = run(&c);
            // Row 2 has length 1: only t = 0 is real.
            for t in 1..4 {
                assert!(y[(t * 3 + 2) * 3..(t * 3 + 3) * 3]
                    .iter()
                    .all(|&v| v == 0.0));
            }
            // Changing padded inputs changes nothing.
            for t in 1..4 {
                for k in 0..2 {
                    c.x[(t * 3 + 2) * 2 + k] = 1e3;
                }
            }
            let (y2, hn2, _, _) = run(&c);
            assert_eq!(y, y2);
            assert_eq!(hn, hn2);
        }
    }
}

#[test]
fn inference_forward_equals_training_forward() {
    for cell in [Cell::RnnRelu, Cell::Gru, Cell::Lstm] {
        let c = case(cell, true, true, false, 5);
        let (y, hn, cn, _) = run(&c);
        let d = c.d;
        let mut y2 = vec![0.0; y.len()];
        let mut hn2 = vec![0.0; hn.len()];
        let mut cn2 = cn.as_ref().map(|v| vec![0.0; v.len()]);
        forward(
            d,
            &weights(&c),
            &c.x,
            &c.h0,
            c.c0.as_deref(),
            c.lengths.as_deref(),
            false,
            &mut y2,
            &mut hn2,
            cn2.as_deref_mut(),
            None,
        )
        .unwrap();
        assert_eq!((y, hn, cn), (y2, hn2, cn2));
    }
}

#[test]
fn bad_input_is_refused_before_writing() {
    let mut c = case(Cell::Lstm, true, true, false, 3);
    let d = c.d;
    let mut y = vec![7.0; d.t * d.b * d.h];
    let mut hn = vec![7.0; d.b * d.h];
    let mut cn = vec![7.0; d.b * d.h];
    let mut call = |c: &Case| {
        forward(
            d,
            &weights(c),
            &c.x,
            &c.h0,
            c.c0.as_deref(),
            c.lengths.as_deref(),
            false,
            &mut y,
            &mut hn,
            Some(&mut cn),
            None,
        )
        .unwrap_err()
        .to_string()
    };
    let mut bad = clone(&c);
    bad.lengths = Some(vec![4, 0, 1]);
    assert!(call(&bad).contains("lengths[1]"));
    bad.lengths = Some(vec![5, 1, 1]);
    assert!(call(&bad).contains("lengths[0]"));
    let mut bad = clone(&c);
    bad.x[3] = f64::NAN;
    assert!(call(&bad).contains("x: contains NaN"));
    let mut bad = clone(&c);
    bad.x[3] = f64::NEG_INFINITY;
    assert!(call(&bad).contains("x: contains NaN or infinity"));
    let mut bad = clone(&c);
    bad.h0[0] = f64::INFINITY;
    assert!(call(&bad).contains("h0: contains NaN or infinity"));
    let mut bad = clone(&c);
    bad.w_hh.pop();
    assert!(call(&bad).contains("w_hh"));
    c.c0 = None;
    assert!(call(&c).contains("c0"));
    assert!(y.iter().chain(&hn).chain(&cn).all(|&v| v == 7.0));
}

#[test]
fn only_calls_with_something_to_share_go_to_the_pool() {
    let d = |t, b, h| Dims { t, b, i: 32, h };
    let macs = |t: usize, b: usize, h: usize| t * b * (32 + h) * 3 * h;
    // One row chunk, a few steps: nothing to share (run on the calling thread).
    for (t, b, h) in [(1, 1, 128), (1, 1, 256), (20, 1, 128), (8, 8, 128)] {
        assert_eq!(pool_work::<f32>(Cell::Gru, d(t, b, h)), 0, "{t} {b} {h}");
    }
    // Two row chunks; enough steps to split the hidden units (246 KB of weights, 69 steps),
    // where the split's packed kernel exists (f32 on AVX-512; on AVX2 a step needs more rows;
    // never for f64).
    assert_eq!(pool_work::<f32>(Cell::Gru, d(1, 9, 16)), macs(1, 9, 16));
    let splits = nesy_core::simd::detect() == nesy_core::simd::Level::Avx512;
    let want = if splits { macs(69, 1, 128) } else { 0 };
    assert_eq!(pool_work::<f32>(Cell::Gru, d(69, 1, 128)), want);
    assert_eq!(pool_work::<f32>(Cell::Gru, d(68, 1, 128)), 0);
    assert_eq!(pool_work::<f64>(Cell::Gru, d(69, 1, 128)), 0);
    // At (32, 256) (864 KiB of weights, above AVX2's 768 KiB a step) batch 1 splits from 19
    // steps on at both packed levels.
    let packs = nesy_core::simd::detect() >= nesy_core::simd::Level::Avx2;
    let want = if packs { macs(19, 1, 256) } else { 0 };
    assert_eq!(pool_work::<f32>(Cell::Gru, d(19, 1, 256)), want);
    assert_eq!(pool_work::<f32>(Cell::Gru, d(18, 1, 256)), 0);
    // Weights too small to split: only the size of a threaded GEMM counts.
    let small = |t| Dims {
        t,
        b: 4,
        i: 4,
        h: 8,
    };
    let m = |t: usize| t * 4 * 12 * 8;
    assert_eq!(pool_work::<f64>(Cell::RnnTanh, small(1000)), 0);
    let t = PARALLEL_GEMM_MACS.div_ceil(4 * 12 * 8);
    assert_eq!(pool_work::<f64>(Cell::RnnTanh, small(t)), m(t));
    // Sizes whose products overflow saturate (the size checks of forward refuse them later).
    let huge = Dims {
        t: usize::MAX / 2,
        b: 1,
        i: 1,
        h: 1 << 20,
    };
    assert_eq!(pool_work::<f32>(Cell::Lstm, huge), usize::MAX);
    // ... and forward refuses them, naming x (the shape's product overflows: it fits no slice).
    let one = vec![0f32; 1];
    let w = Weights {
        cell: Cell::Lstm,
        w_ih: &one,
        w_hh: &one,
        b_ih: None,
        b_hh: None,
    };
    let (mut y, mut hn, mut cn) = (vec![0f32; 1], vec![0f32; 1], vec![0f32; 1]);
    let err = forward(
        Dims { i: 3, h: 4, ..huge },
        &w,
        &one,
        &one,
        Some(&one),
        None,
        false,
        &mut y,
        &mut hn,
        Some(&mut cn),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("x:"), "{err}");
}
