//! Branch-free `exp` and `tanh` for `f32`, written so that LLVM vectorises loops calling them
//! (libm's scalar calls cost ~10-20 ns each and dominated the recurrent kernels).
//!
//! Cody-Waite range reduction `x = n ln2 + r`, |r| <= ln2/2, and Cephes' `expf` polynomial;
//! `tanh` uses Cephes' odd polynomial for |x| < 0.625 and `(1 - e) / (1 + e)`, `e = exp(-2|x|)`,
//! above. Both are within 2 ulp of the correctly rounded result (checked against `f64` in the
//! tests below); NaN propagates, and large arguments saturate. `f64` keeps the platform libm.

// Coefficients are written as published (Cephes), even where f32 rounds the last digit.
#![allow(clippy::excessive_precision)]

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding then subtracting 1.5 * 2^23 rounds to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// `exp(x)` for `f32`, branch-free. Arguments are clamped to [-87.33, 88.3].
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.33, 88.3);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    // t = 1.5 * 2^23 + n exactly, so n is in t's low mantissa bits: integer ops only (a float
    // to int conversion would not vectorise as well).
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let p = p * r * r + r + 1.0;
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    p * scale
}

/// `tanh(x)` for `f32`, branch-free.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_908_9e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328_2e-1;
    let small = p * z * x + x;
    let e = exp_f32(-2.0 * a);
    let big = ((1.0 - e) / (1.0 + e)).copysign(x);
    if a < 0.625 {
        small
    } else {
        big
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        ((got as f64) - want).abs() / (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst: f64 = 0.0;
        let mut x = -87.0f32;
        while x < 88.0 {
            worst = worst.max(ulps(exp_f32(x), (x as f64).exp()));
            x += 0.000_37;
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(-1e4), exp_f32(-87.33));
        assert!(exp_f32(1e4).is_finite());
    }

    #[test]
    fn tanh_is_within_two_ulp() {
        let mut worst: f64 = 0.0;
        let mut x = -20.0f32;
        while x < 20.0 {
            let want = (x as f64).tanh();
            if want != 0.0 {
                worst = worst.max(ulps(tanh_f32(x), want));
            }
            x += 0.000_113;
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(1e30), 1.0);
        assert_eq!(tanh_f32(-1e30), -1.0);
        assert_eq!(tanh_f32(0.0), 0.0);
    }
}
