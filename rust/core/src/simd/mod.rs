//! Run-time SIMD dispatch.
//!
//! Most kernels are written once as plain `#[inline(always)]` loops and compiled several times:
//! for the baseline ISA (always, and always tested) and, on x86-64, inside functions that enable
//! AVX2+FMA or AVX-512, where LLVM vectorises them with the wider registers. A few hot kernels
//! also have hand-written intrinsics for AVX-512/AVX2 (the f32 per-step recurrent product,
//! `rnn/product.rs`; the TransE-L1 and RotatE distances, `kge/l1.rs` and `kge/distance.rs`).
//! [`detect`] picks the best level the CPU supports at run time, so a wheel runs on any x86-64 or
//! aarch64 machine. No kernel is built for the build machine's own CPU (no native `target-cpu`
//! flag).
//!
//! Floating-point contraction (fusing `a * b + c` into an FMA) is never enabled by Rust, and the
//! loop kernels reduce in a fixed lane order, so for the element-wise, graph and distance kernels
//! every level gives the same bits as the scalar path (tested across levels in
//! `tests/{optim,grad,gnn,kge}.rs`). The f32 recurrent layers' packed product (AVX2 and AVX-512)
//! uses FMAs: its two levels give the same bits (one FMA chain per element), and they agree with
//! the baseline level's general GEMM to ~1e-6, not bitwise (checked in `rnn/product.rs`). Products
//! that go through the `gemm` crate (`linalg.rs`) follow that crate's own run-time ISA choice, not
//! [`Level`].

pub mod math;

use std::sync::OnceLock;

/// An instruction-set level a kernel can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The target's baseline (SSE2 on x86-64, NEON on aarch64).
    Scalar,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 (F + VL).
    Avx512,
}

impl Level {
    /// A short name for logs and `nesy info`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => {
                if cfg!(target_arch = "aarch64") {
                    "neon"
                } else {
                    "baseline"
                }
            }
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a name as printed by [`Level::name`] (case-insensitive).
    pub fn parse(name: &str) -> Option<Level> {
        match name.to_ascii_lowercase().as_str() {
            "baseline" | "scalar" | "neon" | "sse2" => Some(Level::Scalar),
            "avx2" => Some(Level::Avx2),
            "avx512" => Some(Level::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        self <= detect()
    }
}

/// The best level this CPU supports (detected once).
pub fn detect() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(detect_uncached)
}

fn detect_uncached() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if avx2 && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
            return Level::Avx512;
        }
        if avx2 {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

/// Every level this CPU supports, lowest first (for tests that compare levels).
pub fn supported_levels() -> Vec<Level> {
    [Level::Scalar, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

/// A piece of work compiled once per level. `run` must be `#[inline(always)]` and call only
/// `#[inline(always)]` code, so that it is inlined into (and vectorised for) each level's wrapper.
/// Use named types, not closures: LLVM does not inline a large closure body into the wrapper,
/// which then runs the baseline code.
pub trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

/// Runs `kernel` compiled for `level`, or for the best supported level below it.
#[inline(always)]
pub fn dispatch<K: Kernel>(level: Level, kernel: K) -> K::Output {
    let level = level.min(detect());
    #[cfg(target_arch = "x86_64")]
    {
        match level {
            // SAFETY: `level <= detect()`, so the CPU supports the features these functions enable.
            Level::Avx512 => return unsafe { run_avx512(kernel) },
            Level::Avx2 => return unsafe { run_avx2(kernel) },
            Level::Scalar => {}
        }
    }
    let _ = level;
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}

/// The AVX-512 mask of the first `min(n, 16)` lanes (for the tails of hand-written kernels).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn mask16(n: usize) -> std::arch::x86_64::__mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as std::arch::x86_64::__mmask16
    }
}

/// Lanes of the fixed-order reductions: partial sums are kept per lane and added in lane order,
/// so the result is the same whatever vector width runs the loop.
pub const LANES: usize = 64;

/// `sum_i f(a[i], b[i], c[i], d[i])` in `f64` with [`LANES`] fixed accumulators: element `i`
/// goes to lane `i % LANES` (the tail to lanes `0..n % LANES`), and lanes are added pairwise
/// in a fixed order. All slices are cut to `a.len()`. Loops run over fixed-size chunks, so they
/// vectorise without bounds checks.
#[inline(always)]
pub fn sum_lanes4<A: Copy, B: Copy, C: Copy, D: Copy>(
    a: &[A],
    b: &[B],
    c: &[C],
    d: &[D],
    f: impl Fn(A, B, C, D) -> f64,
) -> f64 {
    let n = a.len();
    let (b, c, d) = (&b[..n], &c[..n], &d[..n]);
    let mut acc = [0.0f64; LANES];
    let (ca, cb, cc, cd) = (
        a.chunks_exact(LANES),
        b.chunks_exact(LANES),
        c.chunks_exact(LANES),
        d.chunks_exact(LANES),
    );
    let (ra, rb, rc, rd) = (
        ca.remainder(),
        cb.remainder(),
        cc.remainder(),
        cd.remainder(),
    );
    for (((x, y), z), w) in ca.zip(cb).zip(cc).zip(cd) {
        for l in 0..LANES {
            acc[l] += f(x[l], y[l], z[l], w[l]);
        }
    }
    for l in 0..ra.len() {
        acc[l] += f(ra[l], rb[l], rc[l], rd[l]);
    }
    // Pairwise, fixed order.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

/// `sum_i f(a[i])` in `f64`, as [`sum_lanes4`].
#[inline(always)]
pub fn sum_lanes<A: Copy>(a: &[A], f: impl Fn(A) -> f64) -> f64 {
    sum_lanes4(a, a, a, a, |x, _, _, _| f(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_is_stable_and_supported() {
        assert_eq!(detect(), detect());
        assert!(detect().is_supported());
        assert!(Level::Scalar.is_supported());
        assert_eq!(supported_levels()[0], Level::Scalar);
    }

    #[test]
    fn parse_round_trips_names() {
        for l in [Level::Scalar, Level::Avx2, Level::Avx512] {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse("bogus"), None);
    }

    #[test]
    fn sum_lanes_matches_exact_sum_on_integers() {
        for n in [0usize, 1, 15, 16, 17, 100, 1001] {
            let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let s = sum_lanes(&v, |x| x);
            assert_eq!(s, (n * n.saturating_sub(1) / 2) as f64, "n={n}");
        }
    }
}
