//! Training losses on the scores of a chunk of positives and their negatives, with the
//! gradient with respect to every score. `scale` is the reduction factor of the whole batch
//! (`"mean"` divides by the batch's term count), so chunks add up to the batch loss.
//!
//! Scores follow `nesy.kge` (higher is better; the distance models give negative distances).
//! - margin ranking: `max(0, margin - pos_i + neg_ij)` per pair;
//! - softplus: `softplus(-pos_i) + sum_j softplus(neg_ij)` (logistic loss);
//! - self-adversarial (Sun et al. 2019): `softplus(-(gamma + pos_i)) +
//!   sum_j w_ij softplus(gamma + neg_ij)`, `w_i = softmax(temperature * neg_i)` held constant;
//! - 1-vs-all BCE: `softplus(s) - y s` over every (query, entity) score, targets `y` smoothed
//!   as `(1 - ls) y + ls / n_entities`;
//! - 1-vs-all cross-entropy: `-log softmax(s)[a]` for every known answer `a` of a query (the
//!   per-triple softmax loss of Lacroix et al. 2018, both directions).

use crate::error::{Error, Result};
use crate::float::Float;

/// A training loss and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    MarginRanking { margin: f64 },
    Softplus,
    SelfAdversarial { gamma: f64, temperature: f64 },
    Bce { label_smoothing: f64 },
    CrossEntropy,
}

impl Loss {
    /// From a name and its parameters (`margin`, `gamma`, `temperature`, `label_smoothing`).
    pub fn parse(
        name: &str,
        margin: f64,
        gamma: f64,
        temperature: f64,
        smoothing: f64,
    ) -> Result<Loss> {
        let finite = |v: f64, what: &str| -> Result<f64> {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(Error::Value(format!("{what}: must be finite, got {v}")))
            }
        };
        Ok(match name {
            "margin" => Loss::MarginRanking {
                margin: finite(margin, "margin")?,
            },
            "softplus" => Loss::Softplus,
            "self_adversarial" => {
                if temperature < 0.0 {
                    return Err(Error::Value(format!(
                        "adversarial_temperature: must be >= 0, got {temperature}"
                    )));
                }
                Loss::SelfAdversarial {
                    gamma: finite(gamma, "gamma")?,
                    temperature: finite(temperature, "adversarial_temperature")?,
                }
            }
            "ce" => Loss::CrossEntropy,
            "bce" => {
                if !(0.0..1.0).contains(&smoothing) {
                    return Err(Error::Value(format!(
                        "label_smoothing: expected a value in [0, 1), got {smoothing}"
                    )));
                }
                Loss::Bce {
                    label_smoothing: smoothing,
                }
            }
            other => {
                return Err(Error::Value(format!(
                "loss: expected 'margin', 'softplus', 'self_adversarial', 'bce' or 'ce', got {other:?}"
            )))
            }
        })
    }

    /// The reduction factor of `"mean"` for a batch of `b` positives with `n_neg` negatives
    /// each (or, for BCE, `b` queries over `n_neg` entities).
    pub fn mean_scale(&self, b: usize, n_neg: usize) -> f64 {
        let terms = match self {
            Loss::MarginRanking { .. } | Loss::Bce { .. } => b * n_neg,
            // One term per (query, answer): the caller passes the number of answers as `b`.
            Loss::CrossEntropy => b,
            Loss::Softplus => b + b * n_neg,
            Loss::SelfAdversarial { .. } => 2 * b,
        };
        1.0 / terms.max(1) as f64
    }
}

/// `log(1 + exp(x))` without overflow.
#[inline]
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// The logistic function.
#[inline]
fn sigmoid(x: f64) -> f64 {
    0.5 * (1.0 + (0.5 * x).tanh())
}

/// Loss of `pos (c)` against `neg (c, n_neg)` times `scale`; writes `dpos` and `dneg`.
/// Arithmetic in `f64` (the scores are few; precision is free).
pub fn negative_sampling<T: Float>(
    loss: Loss,
    scale: f64,
    pos: &[T],
    neg: &[T],
    dpos: &mut [T],
    dneg: &mut [T],
) -> f64 {
    let n_neg = neg.len() / pos.len().max(1);
    let mut total = 0.0;
    let mut w = vec![0.0f64; n_neg];
    for i in 0..pos.len() {
        let p = pos[i].to_f64();
        let ni = &neg[i * n_neg..(i + 1) * n_neg];
        let di = &mut dneg[i * n_neg..(i + 1) * n_neg];
        match loss {
            Loss::MarginRanking { margin } => {
                let mut dp = 0.0;
                for (d, &n) in di.iter_mut().zip(ni) {
                    let term = margin - p + n.to_f64();
                    let active = if term > 0.0 { 1.0 } else { 0.0 };
                    total += term.max(0.0);
                    *d = T::of(active * scale);
                    dp -= active;
                }
                dpos[i] = T::of(dp * scale);
            }
            Loss::Softplus => {
                total += softplus(-p);
                dpos[i] = T::of(-sigmoid(-p) * scale);
                for (d, &n) in di.iter_mut().zip(ni) {
                    let n = n.to_f64();
                    total += softplus(n);
                    *d = T::of(sigmoid(n) * scale);
                }
            }
            Loss::SelfAdversarial { gamma, temperature } => {
                let m = ni
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &n| m.max(temperature * n.to_f64()));
                let mut z = 0.0;
                for (wj, &n) in w.iter_mut().zip(ni) {
                    *wj = (temperature * n.to_f64() - m).exp();
                    z += *wj;
                }
                total += softplus(-(gamma + p));
                dpos[i] = T::of(-sigmoid(-(gamma + p)) * scale);
                for ((d, &n), wj) in di.iter_mut().zip(ni).zip(&w) {
                    let (n, wj) = (n.to_f64(), wj / z);
                    total += wj * softplus(gamma + n);
                    *d = T::of(wj * sigmoid(gamma + n) * scale);
                }
            }
            Loss::Bce { .. } | Loss::CrossEntropy => {
                unreachable!("1-vs-all losses are not negative-sampling losses")
            }
        }
    }
    total * scale
}

/// 1-vs-all BCE of the score rows `scores (c, n_ent)` against the known entities of each row
/// (`labels[i]`, sorted ids), times `scale`; writes `dscores`.
pub fn bce_rows<T: Float>(
    label_smoothing: f64,
    scale: f64,
    scores: &[T],
    n_ent: usize,
    labels: &[&[i64]],
    dscores: &mut [T],
) -> f64 {
    let base = label_smoothing / n_ent as f64;
    let mut total = 0.0;
    for (i, (row, drow)) in scores
        .chunks_exact(n_ent)
        .zip(dscores.chunks_exact_mut(n_ent))
        .enumerate()
    {
        let mut next = labels[i].iter().peekable();
        for (e, (&s, d)) in row.iter().zip(drow.iter_mut()).enumerate() {
            let mut y = base;
            while next.peek().is_some_and(|&&l| (l as usize) < e) {
                next.next();
            }
            if next.peek().is_some_and(|&&l| l as usize == e) {
                y += 1.0 - label_smoothing;
            }
            let s = s.to_f64();
            total += softplus(s) - y * s;
            *d = T::of((sigmoid(s) - y) * scale);
        }
    }
    total * scale
}

/// 1-vs-all cross-entropy of the score rows `scores (c, n_ent)`: `-log softmax(row)[a]` summed
/// over the known answers `a` of each row (`labels[i]`, sorted ids), times `scale`; writes
/// `dscores = scale * (|labels| softmax(row) - indicator(labels))`.
pub fn ce_rows<T: Float>(
    scale: f64,
    scores: &[T],
    n_ent: usize,
    labels: &[&[i64]],
    dscores: &mut [T],
) -> f64 {
    let mut total = 0.0;
    // exp(s - m) once per score, kept in f64 for the gradient (two exps per score before: a
    // fifth of a 1-vs-all epoch on WN18RR).
    let mut e = vec![0.0f64; n_ent];
    for (i, (row, drow)) in scores
        .chunks_exact(n_ent)
        .zip(dscores.chunks_exact_mut(n_ent))
        .enumerate()
    {
        let m = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &s| m.max(s.to_f64()));
        let mut z = 0.0;
        for (&s, e) in row.iter().zip(e.iter_mut()) {
            *e = (s.to_f64() - m).exp();
            z += *e;
        }
        let log_z = m + z.ln();
        let c = labels[i].len() as f64 / z * scale;
        for (&e, d) in e.iter().zip(drow.iter_mut()) {
            *d = T::of(c * e);
        }
        for &a in labels[i] {
            total += log_z - row[a as usize].to_f64();
            drow[a as usize] = drow[a as usize] - T::of(scale);
        }
    }
    total * scale
}
