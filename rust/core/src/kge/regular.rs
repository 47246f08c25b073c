//! Regularisers of embedding rows: value and gradient.
//! - L2: `w * sum x^2`, gradient `2 w x`;
//! - N3 (Lacroix et al. 2018): `w * sum |x_j|^3`, gradient `3 w |x_j| x_j`; for complex rows
//!   (`[re | im]`) `|x_j|` is the modulus of component `j`.

use crate::error::{Error, Result};
use crate::float::Float;

/// Which penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regulariser {
    L2,
    N3,
}

impl Regulariser {
    /// Parses `l2` or `n3`.
    pub fn parse(name: &str) -> Result<Regulariser> {
        match name {
            "l2" => Ok(Regulariser::L2),
            "n3" => Ok(Regulariser::N3),
            other => Err(Error::Value(format!(
                "regulariser: expected 'l2' or 'n3', got {other:?}"
            ))),
        }
    }
}

/// Adds the gradient of the penalty of the rows `x (n, d)` to `grad` and returns its value (in
/// `f64`). `complex` rows need an even `d`.
pub fn regularise<T: Float>(
    kind: Regulariser,
    weight: f64,
    x: &[T],
    d: usize,
    complex: bool,
    grad: &mut [T],
) -> Result<f64> {
    if grad.len() != x.len() {
        return Err(Error::len("grad", x.len(), grad.len()));
    }
    if !weight.is_finite() || weight < 0.0 {
        return Err(Error::Value(format!(
            "weight: must be finite and >= 0, got {weight}"
        )));
    }
    if d == 0 || !x.len().is_multiple_of(d) || (complex && !d.is_multiple_of(2)) {
        return Err(Error::Value(format!(
            "x: rows of {d} columns do not fit (complex rows need an even width)"
        )));
    }
    let mut value = 0.0f64;
    match (kind, complex) {
        (Regulariser::L2, _) => {
            let two_w = T::of(2.0 * weight);
            for (g, &v) in grad.iter_mut().zip(x) {
                value += (v * v).to_f64();
                *g = *g + two_w * v;
            }
        }
        (Regulariser::N3, false) => {
            let three_w = T::of(3.0 * weight);
            for (g, &v) in grad.iter_mut().zip(x) {
                let a = v.abs();
                value += (a * a * a).to_f64();
                *g = *g + three_w * a * v;
            }
        }
        (Regulariser::N3, true) => {
            let three_w = T::of(3.0 * weight);
            let k = d / 2;
            for (row, g) in x.chunks_exact(d).zip(grad.chunks_exact_mut(d)) {
                for j in 0..k {
                    let (re, im) = (row[j], row[k + j]);
                    let m = (re * re + im * im).sqrt();
                    value += (m * m * m).to_f64();
                    g[j] = g[j] + three_w * m * re;
                    g[k + j] = g[k + j] + three_w * m * im;
                }
            }
        }
    }
    Ok(weight * value)
}
