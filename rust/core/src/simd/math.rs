//! Branch-free `exp`, `tanh` and `sin_cos` for `f32`, written so that LLVM vectorises loops
//! calling them (libm's scalar calls cost ~10-20 ns each and dominated the recurrent kernels and
//! RotatE's rotations).
//!
//! `exp`: Cody-Waite range reduction `x = n ln2 + r`, |r| <= ln2/2, and Cephes' `expf`
//! polynomial, within 2 ulp of the correctly rounded result. `tanh`: one rational function,
//! `a P(a^2) / Q(a^2)` with `a = min(|x|, 9.2)` (degrees 11 and 8 in `a`, fitted here for relative
//! error, 1.6e-9 before rounding the coefficients to `f32`), within 6 ulp (5.1 at worst, checked
//! at every `f32`). Both are checked against `f64` in the tests below; NaN propagates, and large
//! arguments saturate. `sin_cos` reduces by quadrants of pi/2 (three-part Cody-Waite constant,
//! accurate for |x| up to ~1e4) and uses Cephes' `sinf` / `cosf` polynomials on [-pi/4, pi/4],
//! within 2e-7 absolute. `f64` keeps the platform libm.
//!
//! Their cost bounds the recurrent layers' gate arithmetic (a fifth to a quarter of an LSTM
//! forward step at 128 units, half at 32). Loops of 2,048 elements, one thread, AVX2 (Zen 3):
//! `exp` 0.38-0.51 ns an element, `sigmoid` 0.53-0.64. Tried there and not kept: Estrin's scheme
//! for the `exp` polynomial (no faster, so the loops seem bound by throughput rather than
//! latency).
//!
//! `tanh` was, until session 22, Cephes' odd polynomial below 0.625 and `(1 - e) / (1 + e)`, `e =
//! exp(-2|x|)`, above: within 2 ulp, but 1.1-1.3 ns an element against 0.40-0.74 for the rational
//! (loops of 32 to 512 elements, same machine). With the rational, Elman's forward at (T, B, I, H)
//! = (100, 32, 32, 128) ran 1.16-1.18x faster and the LSTM's 1.06-1.09x (calls interleaved in one
//! process). Near 1 every rounding of `P`, `Q`, the product and the quotient can cost an ulp of
//! the result, which is why the bound is 6 and not 2: at most 7.2e-7 relative, far below the
//! rounding of the products around it. The fit: Loeb's linearisation with Lawson's reweighting
//! for the minimax relative error, in `f64`, on 8,000 Chebyshev-spaced points of [0, 9.2]. Forms
//! that keep 2 ulp without `exp` were looked at and not built: `1 - tanh` decays like
//! `exp(-2a)`, and a rational of degree 5 over 5 fitted to it was still 1.8e-7 off. Also tried
//! before: `m / (m + 2)`, `m = expm1(2|x|)` (2.4 ulp below 0.625, 1.5x faster than the Cephes
//! form).

// Coefficients are written as published (Cephes) or fitted, even where f32 rounds the last digit.
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
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let p = (p * r).mul_add(r, r) + 1.0;
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    p * scale
}

/// Beyond this, `tanh` rounds to +-1 in `f32` (from 9.011).
const TANH_CLAMP: f32 = 9.2;

/// `tanh(x)` for `f32`, branch-free, within 6 ulp: `a P(a^2) / Q(a^2)`, `a = min(|x|, 9.2)`.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    // Comparisons, not `f32::min`, so that NaN goes through (`NaN > c` is false).
    let a = x.abs();
    let a = if a > TANH_CLAMP { TANH_CLAMP } else { a };
    let s = a * a;
    let mut p = -1.182_461_5e-11f32;
    p = p.mul_add(s, 3.007_049_5e-8);
    p = p.mul_add(s, 2.779_259_2e-5);
    p = p.mul_add(s, 3.857_660_1e-3);
    p = p.mul_add(s, 1.367_139_8e-1);
    p = p.mul_add(s, 1.0);
    let mut q = 1.272_380_2e-6f32;
    q = q.mul_add(s, 3.919_834_9e-4);
    q = q.mul_add(s, 2.720_678_6e-2);
    q = q.mul_add(s, 4.700_473e-1);
    q = q.mul_add(s, 1.0);
    let t = (a * p) / q;
    // Rounding takes the quotient an ulp above 1 for some arguments beyond 8.
    let t = if t > 1.0 { 1.0 } else { t };
    t.copysign(x)
}

/// `(sin x, cos x)` for `f32`, branch-free (quadrant selection by integer masks).
#[inline(always)]
pub fn sin_cos_f32(x: f32) -> (f32, f32) {
    // Beyond ~1e5 the three-part reduction loses accuracy: exact (libm, in f64) there.
    if x.abs() > 1e5 {
        let (s, c) = (x as f64).sin_cos();
        return (s as f32, c as f32);
    }
    const TWO_OVER_PI: f32 = std::f32::consts::FRAC_2_PI;
    // pi/2 = C1 + C2 + C3, C1 and C2 with few mantissa bits so q * C1, q * C2 are exact.
    const C1: f32 = 1.570_312_5;
    const C2: f32 = 4.837_512_969_970_703_125e-4;
    const C3: f32 = 7.549_789_954_891_882_16e-8;
    let t = x * TWO_OVER_PI + ROUND;
    let q = t - ROUND;
    let qi = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = ((x - q * C1) - q * C2) - q * C3;
    let z = r * r;
    let mut ps = -1.951_529_589_1e-4f32;
    ps = ps * z + 8.332_160_873_6e-3;
    ps = ps * z - 1.666_665_461_1e-1;
    let s = ps * z * r + r;
    let mut pc = 2.443_315_711_809_948e-5f32;
    pc = pc * z - 1.388_731_625_493_765e-3;
    pc = pc * z + 4.166_664_568_298_827e-2;
    let c = pc * z * z - 0.5 * z + 1.0;
    // Quadrant q mod 4: (s, c), (c, -s), (-s, -c), (-c, s).
    let swap = qi & 1 != 0;
    let (sin, cos) = if swap { (c, s) } else { (s, c) };
    let sin_sign = ((qi & 2) as u32) << 30;
    let cos_sign = (((qi + 1) & 2) as u32) << 30;
    (
        f32::from_bits(sin.to_bits() ^ sin_sign),
        f32::from_bits(cos.to_bits() ^ cos_sign),
    )
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

    /// The worst error of `tanh_f32` in ulp over every `step`-th `f32` in [0, 9.5) (both signs:
    /// the function is odd by construction), and whether any result left [-1, 1].
    fn tanh_worst_ulp(step: usize) -> (f64, bool) {
        let (mut worst, mut outside) = (0.0f64, false);
        for b in (0..9.5f32.to_bits()).step_by(step) {
            let x = f32::from_bits(b);
            let want = (x as f64).tanh();
            for (got, want) in [(tanh_f32(x), want), (tanh_f32(-x), -want)] {
                outside |= got.abs() > 1.0;
                worst = worst.max(if want == 0.0 {
                    (got as f64).abs()
                } else {
                    ulps(got, want)
                });
            }
        }
        (worst, outside)
    }

    #[test]
    fn tanh_is_within_six_ulp() {
        // Every 997th f32: about a million arguments, every binade.
        let (worst, outside) = tanh_worst_ulp(997);
        assert!(worst <= 6.0, "{worst} ulp");
        assert!(!outside);
        let mut x = -20.0f32;
        while x < 20.0 {
            let want = (x as f64).tanh();
            if want != 0.0 {
                assert!(ulps(tanh_f32(x), want) <= 6.0, "{x}");
            }
            x += 0.000_113;
        }
        assert!(tanh_f32(f32::NAN).is_nan());
        assert!(tanh_f32(-f32::NAN).is_nan());
        assert_eq!(tanh_f32(1e30), 1.0);
        assert_eq!(tanh_f32(-1e30), -1.0);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(9.2), 1.0);
        assert_eq!(tanh_f32(-9.3), -1.0);
        assert_eq!(tanh_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        // Below ~2^-12 tanh(x) rounds to x itself.
        for x in [1e-30f32, 1e-10, f32::MIN_POSITIVE, 1e-40, 2e-4] {
            assert_eq!(tanh_f32(x), x);
        }
    }

    /// Every `f32` below 9.5 (and its negative): `cargo test --release -- --ignored` (~1 min).
    #[test]
    #[ignore]
    fn tanh_is_within_six_ulp_at_every_f32() {
        let (worst, outside) = tanh_worst_ulp(1);
        assert!(worst <= 6.0, "{worst} ulp");
        assert!(!outside);
    }

    #[test]
    fn sin_cos_is_within_two_e_minus_seven() {
        let (mut worst_s, mut worst_c) = (0.0f64, 0.0f64);
        let mut x = -200.0f32;
        while x < 200.0 {
            let (s, c) = sin_cos_f32(x);
            let (ws, wc) = (x as f64).sin_cos();
            worst_s = worst_s.max((s as f64 - ws).abs());
            worst_c = worst_c.max((c as f64 - wc).abs());
            x += 0.000_71;
        }
        assert!(worst_s < 2e-7 && worst_c < 2e-7, "{worst_s} {worst_c}");
        for x in [
            0.0f32,
            -0.0,
            1e-30,
            std::f32::consts::PI,
            1e4,
            2e5,
            -1e9,
            3e38,
        ] {
            let (s, c) = sin_cos_f32(x);
            let (ws, wc) = (x as f64).sin_cos();
            assert!(
                (s as f64 - ws).abs() < 1e-6 && (c as f64 - wc).abs() < 1e-6,
                "{x}"
            );
        }
        assert!(sin_cos_f32(f32::NAN).0.is_nan());
    }
}
