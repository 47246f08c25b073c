//! The per-step products `out (rows, n) = a (rows, k) · B (k, n) (+ bias)` of the forward pass
//! (`h W_hh^T`, `x_t W_ih^T`) and of the backward pass (`dgates W_hh`).
//!
//! `B` is the same at every step of a sequence. For `f32` on AVX2 and AVX-512 it is packed once
//! per call (but for one sequence of one or two steps: `rnn::product_level`) into panels of 32
//! columns, each stored `k`-major with the last one zero-padded, and each step runs a
//! register-blocked microkernel whose accumulators stay in registers: per `k`, one load per
//! register of a panel, one broadcast per row and one fused multiply-add per row and register;
//! the tile is written once, with the bias, straight into the row-major output.
//! - AVX-512 (32 registers of 16 lanes; a panel is two): blocks of up to 8 rows against 1 to 4
//!   panels (fewer rows, more panels: at least 8 independent chains).
//! - AVX2 (16 registers of 8 lanes; a panel is four): blocks of 6 rows against 16 columns (12
//!   accumulators), then 4 rows against 16, 2 against a panel or 1 against two (8 chains).
//!
//! The broadcasts read the rows of `a` where they are (a copy of the rows transposed k-major
//! cost a fifth of the product). A general GEMM re-packs `B` at every step and, for these thin
//! products (1 to 64 rows), spends about as long packing and transposing as multiplying. Other
//! types and levels use the general GEMM.
//!
//! A stacked `B = [w1^T; w2^T]` ([`Recurrent::stacked`]) takes its left operand as two parts,
//! `[a1 | a2]` row by row, without copying them together: the forward step's
//! `[x_t | h] [W_ih; W_hh]^T` is then one product.
//!
//! Each output element is one chain of fused multiply-adds over `k` in order from zero, then the
//! bias: the result depends neither on how rows are blocked, nor on the caller's thread count,
//! nor on which of the two levels runs it (the same bits on AVX2 as on AVX-512).

use crate::linalg::{gemm, Gemm, Mat, MatMut};
use crate::par::Par;
use crate::simd::Level;
use std::any::TypeId;

/// `B (k, n)`, either `w^T` for a row-major `w (n, k)` (the forward pass: `h W_hh^T`) or `w`
/// itself, row-major `(k, n)` (the backward pass: `dgates W_hh`), ready for
/// [`Recurrent::apply`].
pub(crate) struct Recurrent<'a, T> {
    w: &'a [T],
    n: usize,
    k: usize,
    /// Rows of `B` taken from the first operand (`k` but for [`Recurrent::stacked`]).
    k1: usize,
    transposed: bool,
    /// `B` in panels of [`NR`] columns (f32 on AVX2 or AVX-512 only; empty otherwise).
    panels: Vec<f32>,
    /// The level whose kernel runs the packed product (AVX2 or AVX-512; unused when unpacked).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    level: Level,
}

/// Panel width of the packed form (two AVX-512 or four AVX2 registers of f32).
const NR: usize = 32;

impl<'a, T: Gemm> Recurrent<'a, T> {
    /// `B = w^T` for `w (n, k)` row-major, packed when `level` allows.
    pub(crate) fn transposed(level: Level, w: &'a [T], n: usize, k: usize) -> Self {
        Self::new(level, w, n, k, true)
    }

    /// `B = w` for `w (k, n)` row-major, packed when `level` allows.
    pub(crate) fn rows(level: Level, w: &'a [T], k: usize, n: usize) -> Self {
        Self::new(level, w, n, k, false)
    }

    /// `B` = columns `c0..c0 + n` of `w (k, n_all)` row-major, packed (the backward step of one
    /// half of the hidden units in `split.rs`: `dgates W_hh[:, U]`). Only in packed form: `None`
    /// where the level or type has no packed kernel.
    pub(crate) fn rows_range(
        level: Level,
        w: &'a [T],
        k: usize,
        n_all: usize,
        c0: usize,
        n: usize,
    ) -> Option<Self> {
        if !Self::packs(level, k) || c0 + n > n_all || w.len() != k * n_all {
            return None;
        }
        let mut panels = vec![0f32; n.div_ceil(NR) * k * NR];
        pack_rows(as_f32(w), n_all, c0, n, k, &mut panels);
        Some(Recurrent {
            w,
            n,
            k,
            k1: k,
            transposed: false,
            panels,
            level: Self::packed_level(level),
        })
    }

    /// `B = [w1^T; w2^T]` (`k1 + k2` rows) for `w1 (n, k1)`, `w2 (n, k2)` row-major, applied to
    /// a row-wise concatenation `[a1 | a2]` by [`Recurrent::apply_stacked`] (the forward step's
    /// `[x_t | h] [W_ih; W_hh]^T` as one product). Only in packed form: `None` where the level
    /// or type has no packed kernel.
    pub(crate) fn stacked(
        level: Level,
        w1: &'a [T],
        k1: usize,
        w2: &'a [T],
        k2: usize,
        n: usize,
    ) -> Option<Self> {
        if w1.len() != n * k1 || w2.len() != n * k2 {
            return None;
        }
        Self::stacked_rows(level, w1, k1, w2, k2, &(0..n).collect::<Vec<_>>())
    }

    /// [`Recurrent::stacked`] of the rows `rows` of `w1` and `w2` only (in that order): column
    /// `c` of `B` is row `rows[c]` of both. The two-part step of the forward pass takes one
    /// half of every gate's rows each.
    pub(crate) fn stacked_rows(
        level: Level,
        w1: &'a [T],
        k1: usize,
        w2: &'a [T],
        k2: usize,
        rows: &[usize],
    ) -> Option<Self> {
        let (k, n) = (k1 + k2, rows.len());
        let fits = |w: &[T], kw: usize| rows.iter().all(|&r| (r + 1) * kw <= w.len());
        if !Self::packs(level, k) || !fits(w1, k1) || !fits(w2, k2) {
            return None;
        }
        let mut panels = vec![0f32; n.div_ceil(NR) * k * NR];
        let level = Self::packed_level(level);
        #[cfg(target_arch = "x86_64")]
        {
            x86::pack_transposed(level, as_f32(w1), rows, k1, 0, k, &mut panels);
            x86::pack_transposed(level, as_f32(w2), rows, k2, k1, k, &mut panels);
        }
        Some(Recurrent {
            w: w2,
            n,
            k,
            k1,
            transposed: true,
            panels,
            level,
        })
    }

    /// Whether `level` and `T` have the packed kernel (f32 on AVX2 or AVX-512, `k > 0`).
    fn packs(level: Level, k: usize) -> bool {
        cfg!(target_arch = "x86_64")
            && TypeId::of::<T>() == TypeId::of::<f32>()
            && Self::packed_level(level) >= Level::Avx2
            && k > 0
    }

    /// The level the packed kernel runs at: `level`, or the CPU's best below it.
    fn packed_level(level: Level) -> Level {
        level.min(crate::simd::detect())
    }

    fn new(level: Level, w: &'a [T], n: usize, k: usize, transposed: bool) -> Self {
        // The packing reads every element of `w` (n x k either way) without bounds checks.
        assert_eq!(
            w.len(),
            n * k,
            "recurrent product: weights of the wrong size"
        );
        let mut panels = Vec::new();
        let level = Self::packed_level(level);
        #[cfg(target_arch = "x86_64")]
        if Self::packs(level, k) {
            panels = vec![0f32; n.div_ceil(NR) * k * NR];
            if transposed {
                let rows: Vec<usize> = (0..n).collect();
                x86::pack_transposed(level, as_f32(w), &rows, k, 0, k, &mut panels);
            } else {
                pack_rows(as_f32(w), n, 0, n, k, &mut panels);
            }
        }
        Recurrent {
            w,
            n,
            k,
            k1: k,
            transposed,
            panels,
            level,
        }
    }

    /// Whether `B` is packed for the register-blocked kernel (small products are then cheap
    /// enough to make one per step).
    pub(crate) fn is_packed(&self) -> bool {
        !self.panels.is_empty()
    }

    /// `out (rows, n) = a (rows, k) · B + bias` (`bias (n)`, optional); `scratch` is reused
    /// by the general path.
    pub(crate) fn apply(&self, a: &[T], bias: Option<&[T]>, out: &mut [T], scratch: &mut Vec<T>) {
        let (n, k) = (self.n, self.k);
        let rows = out.len().checked_div(n).unwrap_or(0);
        assert!(
            a.len() == rows * k && out.len() == rows * n && bias.is_none_or(|b| b.len() == n),
            "recurrent product: operands of the wrong size"
        );
        #[cfg(target_arch = "x86_64")]
        if !self.panels.is_empty() {
            let o = as_f32_mut(out);
            let bias = bias.map(as_f32);
            x86::product(self.level, as_f32(a), &[], k, k, n, &self.panels, bias, o);
            return;
        }
        if !self.transposed {
            let b = Mat::new(self.w, k, n);
            gemm(
                Par::Seq,
                T::ONE,
                Mat::new(a, rows, k),
                b,
                T::ZERO,
                MatMut::new(out, rows, n),
            );
            if let Some(bias) = bias {
                for row in out.chunks_exact_mut(n.max(1)) {
                    for (v, &bv) in row.iter_mut().zip(bias) {
                        *v = *v + bv;
                    }
                }
            }
            return;
        }
        // General path: W h^T as (n, rows) (the constant weight as the left operand runs faster
        // in the GEMM), then transposed into `out` with the bias.
        scratch.resize(rows * n, T::ZERO);
        gemm(
            Par::Seq,
            T::ONE,
            Mat::new(self.w, n, k),
            Mat::new(a, rows, k).t(),
            T::ZERO,
            MatMut::new(scratch, n, rows),
        );
        for (b, row) in out.chunks_exact_mut(n.max(1)).enumerate() {
            for (r, v) in row.iter_mut().enumerate() {
                *v = scratch[r * rows + b];
            }
            if let Some(bias) = bias {
                for (v, &bv) in row.iter_mut().zip(bias) {
                    *v = *v + bv;
                }
            }
        }
    }
}

impl<T: Gemm> Recurrent<'_, T> {
    /// `out (rows, n) = [a1 | a2] · B + bias` for a [`Recurrent::stacked`] `B`: `a1 (rows, k1)`
    /// and `a2 (rows, k2)` are the two halves of each row, never copied together.
    pub(crate) fn apply_stacked(&self, a1: &[T], a2: &[T], bias: Option<&[T]>, out: &mut [T]) {
        let (n, k, k1) = (self.n, self.k, self.k1);
        let rows = out.len().checked_div(n).unwrap_or(0);
        assert!(
            !self.panels.is_empty()
                && a1.len() == rows * k1
                && a2.len() == rows * (k - k1)
                && out.len() == rows * n
                && bias.is_none_or(|b| b.len() == n),
            "recurrent product: operands of the wrong size"
        );
        #[cfg(target_arch = "x86_64")]
        x86::product(
            self.level,
            as_f32(a1),
            as_f32(a2),
            k1,
            k,
            n,
            &self.panels,
            bias.map(as_f32),
            as_f32_mut(out),
        );
    }
}

/// `s` as `&[f32]`. Panics unless `T` is `f32` (only packed products, which exist for `f32`
/// alone, call it).
fn as_f32<T: 'static>(s: &[T]) -> &[f32] {
    assert!(
        TypeId::of::<T>() == TypeId::of::<f32>(),
        "packed product: not f32"
    );
    // SAFETY: T is f32 (checked): the same type, length and alignment.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) }
}

/// `s` as `&mut [f32]`; as [`as_f32`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn as_f32_mut<T: 'static>(s: &mut [T]) -> &mut [f32] {
    assert!(
        TypeId::of::<T>() == TypeId::of::<f32>(),
        "packed product: not f32"
    );
    // SAFETY: as in `as_f32`.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) }
}

/// Packs `B` = columns `c0..c0 + n` of `w (k, stride)` into `panels`: panel `p` holds columns
/// `32 p..32 p + 32` of `B`, `k`-major, zero-padded.
fn pack_rows(w: &[f32], stride: usize, c0: usize, n: usize, k: usize, panels: &mut [f32]) {
    for (p, panel) in panels.chunks_exact_mut(k * NR).enumerate() {
        let first = c0 + p * NR;
        let width = NR.min(n - p * NR);
        for (kk, dst) in panel.chunks_exact_mut(NR).enumerate() {
            dst[..width].copy_from_slice(&w[kk * stride + first..kk * stride + first + width]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::NR;
    use crate::simd::Level;
    use std::arch::x86_64::*;

    /// Packs the transpose of the rows `rows` of `w (_, k)` (column `c` of `B` is row `rows[c]`
    /// of `w`) into rows `kk0..kk0 + k` of panels of `k_all` rows (the layout of
    /// [`super::pack_rows`]; two calls fill a stacked `[w1^T; w2^T]`), with `level`'s
    /// transposes in registers. Panics unless this CPU has `level`, AVX2 or AVX-512.
    pub(super) fn pack_transposed(
        level: Level,
        w: &[f32],
        rows: &[usize],
        k: usize,
        kk0: usize,
        k_all: usize,
        panels: &mut [f32],
    ) {
        assert!(
            level.is_supported(),
            "packed product: {level:?} on this CPU"
        );
        match level {
            // SAFETY: the CPU has the level's features (checked above).
            Level::Avx512 => unsafe { pack_transposed_512(w, rows, k, kk0, k_all, panels) },
            Level::Avx2 => unsafe { pack_transposed_256(w, rows, k, kk0, k_all, panels) },
            Level::Scalar => panic!("packed product: no kernel at the baseline level"),
        }
    }

    /// `out (rows, n) = [a1 | a2] · B + bias` with `B` (`k` rows) in panels of [`NR`] columns:
    /// row `r` of the left operand is `a1`'s row (`k1` values) followed by `a2`'s (`k - k1`).
    /// Runs `level`'s kernel; panics unless this CPU has `level`, AVX2 or AVX-512.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn product(
        level: Level,
        a1: &[f32],
        a2: &[f32],
        k1: usize,
        k: usize,
        n: usize,
        panels: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        assert!(
            level.is_supported(),
            "packed product: {level:?} on this CPU"
        );
        // The tiles load `n` bias values and index the rows without further checks.
        let rows = out.len() / n;
        assert!(
            bias.is_none_or(|b| b.len() == n)
                && a1.len() >= rows * k1
                && a2.len() >= rows * (k - k1)
                && panels.len() == n.div_ceil(NR) * k * NR,
            "packed product: operands of the wrong size"
        );
        let mut r0 = 0;
        while r0 < rows {
            let t = Tile {
                a1,
                a2,
                k1,
                k,
                n,
                panels,
                bias,
                r0,
            };
            // SAFETY: the CPU has the level's features (checked above).
            r0 += match level {
                Level::Avx512 => unsafe { t.block_512(rows - r0, out) },
                Level::Avx2 => unsafe { t.block_256(rows - r0, out) },
                Level::Scalar => panic!("packed product: no kernel at the baseline level"),
            };
        }
    }

    /// The layout work of [`pack_transposed`] for groups of `G` columns of a panel: each
    /// group takes `G` values of each of its `G` rows of `w` at a time, `block(src, kk, dst)`
    /// writing the transpose of `src[c][kk..kk + G]` (`c < G`) to `dst[j * NR + c]`
    /// (`j, c < G`); the rest (a last group of fewer than `G` columns, the last `k % G`
    /// values) element by element.
    #[inline(always)]
    fn pack_groups<const G: usize>(
        w: &[f32],
        rows: &[usize],
        k: usize,
        kk0: usize,
        k_all: usize,
        panels: &mut [f32],
        block: impl Fn(&[&[f32]; G], usize, &mut [f32]),
    ) {
        let n = rows.len();
        for (p, panel) in panels.chunks_exact_mut(k_all * NR).enumerate() {
            let c0 = p * NR;
            let width = NR.min(n - c0);
            let panel = &mut panel[kk0 * NR..(kk0 + k) * NR];
            for group in 0..NR / G {
                let (lane0, cols) = (G * group, width.saturating_sub(G * group).min(G));
                if cols == 0 {
                    break;
                }
                // The group's rows of `w` (the first `cols` entries; no allocation per group).
                let mut src: [&[f32]; G] = [&[]; G];
                for (s, &r) in src.iter_mut().zip(&rows[c0 + lane0..c0 + lane0 + cols]) {
                    *s = &w[r * k..(r + 1) * k];
                }
                let mut kk = 0;
                if cols == G {
                    while kk + G <= k {
                        block(
                            &src,
                            kk,
                            &mut panel[kk * NR + lane0..(kk + G - 1) * NR + lane0 + G],
                        );
                        kk += G;
                    }
                }
                for kk in kk..k {
                    for (c, row) in src[..cols].iter().enumerate() {
                        panel[kk * NR + lane0 + c] = row[kk];
                    }
                }
            }
        }
    }

    /// [`pack_transposed`] on AVX-512: groups of 16 columns, 16 loads, a 16 x 16 transpose in
    /// registers ([`transpose16`]) and 16 stores at a time. It runs once per call, before the
    /// first step: for the LSTM's weights at (I, H) = (32, 128) (82k values) it took 7.6 us
    /// against 27 us with one 16-lane gather per `k` (Zen 4; gathers there cost about a load per
    /// lane).
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn pack_transposed_512(
        w: &[f32],
        rows: &[usize],
        k: usize,
        kk0: usize,
        k_all: usize,
        panels: &mut [f32],
    ) {
        pack_groups::<16>(w, rows, k, kk0, k_all, panels, |src, kk, dst| {
            let block: [__m512; 16] = std::array::from_fn(|c| {
                // SAFETY: `src[c]` has `k >= kk + 16` values.
                unsafe { _mm512_loadu_ps(src[c][kk..].as_ptr()) }
            });
            for (j, v) in transpose16(block).into_iter().enumerate() {
                let dst = &mut dst[j * NR..j * NR + 16];
                // SAFETY: `dst` holds 16 values.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), v) };
            }
        });
    }

    /// The transpose of the 16 x 16 matrix whose rows are `r`: element `j` of output `i` is
    /// element `i` of `r[j]`.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
        // Pairs of rows interleaved by 32-bit elements, then pairs of those by 64-bit elements:
        // `u[4 i + j]` holds, in its 128-bit lane `l`, element `4 l + j` of rows `4 i..4 i + 4`.
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        let pd = _mm512_castps_pd;
        let ps = _mm512_castpd_ps;
        let mut u = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
            u[4 * i] = ps(_mm512_unpacklo_pd(pd(a), pd(c)));
            u[4 * i + 1] = ps(_mm512_unpackhi_pd(pd(a), pd(c)));
            u[4 * i + 2] = ps(_mm512_unpacklo_pd(pd(b), pd(d)));
            u[4 * i + 3] = ps(_mm512_unpackhi_pd(pd(b), pd(d)));
        }
        // Then the 128-bit lanes: output `4 l + j` is lane `l` of `u[j], u[4 + j], u[8 + j],
        // u[12 + j]`.
        let mut v = [_mm512_setzero_ps(); 16];
        for j in 0..4 {
            let (a, b, c, d) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
            let ab_lo = _mm512_shuffle_f32x4::<0x44>(a, b); // lanes a0 a1 b0 b1
            let ab_hi = _mm512_shuffle_f32x4::<0xee>(a, b); // a2 a3 b2 b3
            let cd_lo = _mm512_shuffle_f32x4::<0x44>(c, d);
            let cd_hi = _mm512_shuffle_f32x4::<0xee>(c, d);
            v[j] = _mm512_shuffle_f32x4::<0x88>(ab_lo, cd_lo); // a0 b0 c0 d0
            v[4 + j] = _mm512_shuffle_f32x4::<0xdd>(ab_lo, cd_lo); // a1 b1 c1 d1
            v[8 + j] = _mm512_shuffle_f32x4::<0x88>(ab_hi, cd_hi);
            v[12 + j] = _mm512_shuffle_f32x4::<0xdd>(ab_hi, cd_hi);
        }
        v
    }

    /// [`pack_transposed`] on AVX2: groups of 8 columns with 8 x 8 transposes
    /// ([`transpose8`]).
    #[target_feature(enable = "avx2,fma")]
    fn pack_transposed_256(
        w: &[f32],
        rows: &[usize],
        k: usize,
        kk0: usize,
        k_all: usize,
        panels: &mut [f32],
    ) {
        pack_groups::<8>(w, rows, k, kk0, k_all, panels, |src, kk, dst| {
            let block: [__m256; 8] = std::array::from_fn(|c| {
                // SAFETY: `src[c]` has `k >= kk + 8` values.
                unsafe { _mm256_loadu_ps(src[c][kk..].as_ptr()) }
            });
            for (j, v) in transpose8(block).into_iter().enumerate() {
                let dst = &mut dst[j * NR..j * NR + 8];
                // SAFETY: `dst` holds 8 values.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) };
            }
        });
    }

    /// The transpose of the 8 x 8 matrix whose rows are `r`: element `j` of output `i` is
    /// element `i` of `r[j]`.
    #[target_feature(enable = "avx2,fma")]
    fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        // Pairs of rows interleaved by 32-bit elements, then by 64-bit pairs: `u[4 i + j]`
        // holds, in its 128-bit lane `l`, element `4 l + j` of rows `4 i..4 i + 4`.
        let mut t = [_mm256_setzero_ps(); 8];
        for i in 0..4 {
            t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        let mut u = [_mm256_setzero_ps(); 8];
        for i in 0..2 {
            let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
            u[4 * i] = _mm256_shuffle_ps::<0x44>(a, c);
            u[4 * i + 1] = _mm256_shuffle_ps::<0xee>(a, c);
            u[4 * i + 2] = _mm256_shuffle_ps::<0x44>(b, d);
            u[4 * i + 3] = _mm256_shuffle_ps::<0xee>(b, d);
        }
        // Output `j` is lane 0 of `u[j]` and of `u[4 + j]`, output `4 + j` their lane 1.
        std::array::from_fn(|o| {
            let j = o % 4;
            if o < 4 {
                _mm256_permute2f128_ps::<0x20>(u[j], u[4 + j])
            } else {
                _mm256_permute2f128_ps::<0x31>(u[j], u[4 + j])
            }
        })
    }

    /// The operands of one row block starting at row `r0`.
    struct Tile<'a> {
        a1: &'a [f32],
        a2: &'a [f32],
        /// Values of a row taken from `a1`; the other `k - k1` come from `a2`.
        k1: usize,
        k: usize,
        n: usize,
        panels: &'a [f32],
        bias: Option<&'a [f32]>,
        r0: usize,
    }

    impl Tile<'_> {
        /// The next block of rows (`left` rows remain from `r0`) against every panel on AVX-512;
        /// returns its row count. Row blocks of 8, 4, 2, 1. A tile keeps 16 accumulators in
        /// registers; a block of fewer than 8 rows takes 2 or 4 panels at once so that there
        /// are still at least 8 independent multiply-add chains (one panel per tile left the
        /// 1-row product of a batch of one waiting on the FMA latency).
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn block_512(&self, left: usize, out: &mut [f32]) -> usize {
            match left {
                8.. => self.block::<8, 1>(out),
                4..=7 => self.block::<4, 2>(out),
                2..=3 => self.block::<2, 4>(out),
                _ => self.block::<1, 4>(out),
            }
        }

        /// Rows `r0..r0 + M` against every panel, `P` panels at a time (then one at a time for
        /// the last ones); returns `M`.
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn block<const M: usize, const P: usize>(&self, out: &mut [f32]) -> usize {
            let (k1, k2) = (self.k1, self.k - self.k1);
            let r0 = self.r0;
            let rows1: [&[f32]; M] = std::array::from_fn(|r| &self.a1[(r0 + r) * k1..][..k1]);
            let rows2: [&[f32]; M] = std::array::from_fn(|r| &self.a2[(r0 + r) * k2..][..k2]);
            let n_panels = self.panels.len() / (self.k * NR);
            let mut p = 0;
            while p + P <= n_panels {
                self.panels_at::<M, P>([&rows1, &rows2], p, out);
                p += P;
            }
            while p < n_panels {
                self.panels_at::<M, 1>([&rows1, &rows2], p, out);
                p += 1;
            }
            M
        }

        /// Panels `p0..p0 + P` for the block's `M` rows (`rows[0]`: their first `k1` values,
        /// `rows[1]`: the rest).
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn panels_at<const M: usize, const P: usize>(
            &self,
            rows: [&[&[f32]; M]; 2],
            p0: usize,
            out: &mut [f32],
        ) {
            let (k, n) = (self.k, self.n);
            let panels = &self.panels[p0 * k * NR..(p0 + P) * k * NR];
            let mut acc = [[[_mm512_setzero_ps(); 2]; P]; M];
            // The two parts of the rows in turn, each `kk` of `B` once, in order.
            for (part, kks) in [(rows[0], 0..self.k1), (rows[1], self.k1..k)] {
                let off = kks.start;
                for kk in kks {
                    // SAFETY: `panels` holds P panels of k * NR floats, so panel q's floats
                    // `kk * NR..kk * NR + 32` are inside it; each row of `part` holds
                    // `kk - off` and more values.
                    unsafe {
                        let mut b = [[_mm512_setzero_ps(); 2]; P];
                        for (q, b_q) in b.iter_mut().enumerate() {
                            let ptr = panels.as_ptr().add(q * k * NR + kk * NR);
                            *b_q = [_mm512_loadu_ps(ptr), _mm512_loadu_ps(ptr.add(16))];
                        }
                        for (r, acc_r) in acc.iter_mut().enumerate() {
                            let x = _mm512_set1_ps(*part[r].get_unchecked(kk - off));
                            for (acc_q, b_q) in acc_r.iter_mut().zip(&b) {
                                acc_q[0] = _mm512_fmadd_ps(x, b_q[0], acc_q[0]);
                                acc_q[1] = _mm512_fmadd_ps(x, b_q[1], acc_q[1]);
                            }
                        }
                    }
                }
            }
            for (q, c0) in (0..P).map(|q| (q, (p0 + q) * NR)) {
                let width = NR.min(n - c0);
                let masks = [
                    crate::simd::mask16(width),
                    crate::simd::mask16(width.saturating_sub(16)),
                ];
                for (r, acc_r) in acc.iter().enumerate() {
                    let row0 = (self.r0 + r) * n + c0;
                    let row = &mut out[row0..row0 + width];
                    for h in 0..2 {
                        let mut v = acc_r[q][h];
                        // SAFETY: masked loads and stores touch only the first `width`
                        // columns from c0, which lie inside `bias` (n) and `row` (width).
                        unsafe {
                            if let Some(bias) = self.bias {
                                let bv =
                                    _mm512_maskz_loadu_ps(masks[h], bias.as_ptr().add(c0 + 16 * h));
                                v = _mm512_add_ps(v, bv);
                            }
                            _mm512_mask_storeu_ps(row.as_mut_ptr().add(16 * h), masks[h], v);
                        }
                    }
                }
            }
        }

        /// The next block of rows against every panel on AVX2, as [`Tile::block_512`], in
        /// groups of 8 V columns (V registers): blocks of 6 rows against 16 columns (12
        /// accumulators, 2 registers of `B` and a broadcast: 15 of the 16 registers), 4 rows
        /// against 16, 2 rows against a panel, 1 row against two panels (8 chains, as many as
        /// two FMA units with a latency of 4 cycles keep busy). Blocks of 3 rows against a
        /// panel, whose 12 accumulators and 4 registers of `B` leave none for the broadcast,
        /// ran at half the speed.
        #[target_feature(enable = "avx2,fma")]
        fn block_256(&self, left: usize, out: &mut [f32]) -> usize {
            match left {
                6.. => self.block256::<6, 2>(out),
                4..=5 => self.block256::<4, 2>(out),
                2..=3 => self.block256::<2, 4>(out),
                _ => self.block256::<1, 8>(out),
            }
        }

        /// Rows `r0..r0 + M` against every column, `8 V` at a time (the last panel, if an odd
        /// one is left over from groups of two, with `V = 4`); returns `M`.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn block256<const M: usize, const V: usize>(&self, out: &mut [f32]) -> usize {
            let (k1, k2) = (self.k1, self.k - self.k1);
            let r0 = self.r0;
            let rows1: [&[f32]; M] = std::array::from_fn(|r| &self.a1[(r0 + r) * k1..][..k1]);
            let rows2: [&[f32]; M] = std::array::from_fn(|r| &self.a2[(r0 + r) * k2..][..k2]);
            let cols = self.panels.len() / self.k; // every panel's columns, padding included
            let mut c0 = 0;
            while c0 + 8 * V <= cols {
                self.group256::<M, V>([&rows1, &rows2], c0, out);
                c0 += 8 * V;
            }
            while c0 < cols {
                self.group256::<M, 4>([&rows1, &rows2], c0, out);
                c0 += NR;
            }
            M
        }

        /// The block's `M` rows (`rows[0]`: their first `k1` values, `rows[1]`: the rest)
        /// against the `8 V` columns from `c0` (a multiple of 8; 8 V divides [`NR`] or is a
        /// multiple of it), each register's 8 columns inside one panel.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn group256<const M: usize, const V: usize>(
            &self,
            rows: [&[&[f32]; M]; 2],
            c0: usize,
            out: &mut [f32],
        ) {
            let (k, n) = (self.k, self.n);
            // Register v's columns `c0 + 8 v..` are at `kk * NR` from the start of its panel.
            let base: [usize; V] = std::array::from_fn(|v| {
                let c = c0 + 8 * v;
                (c / NR) * k * NR + c % NR
            });
            assert!(base
                .iter()
                .all(|&b| b + (k - 1) * NR + 8 <= self.panels.len()));
            let mut acc = [[_mm256_setzero_ps(); V]; M];
            for (part, kks) in [(rows[0], 0..self.k1), (rows[1], self.k1..k)] {
                let off = kks.start;
                for kk in kks {
                    // SAFETY: `base[v] + kk * NR + 8 <= panels.len()` (asserted for the last
                    // `kk`); each row of `part` holds `kk - off` and more values.
                    unsafe {
                        let b: [__m256; V] = std::array::from_fn(|v| {
                            _mm256_loadu_ps(self.panels.as_ptr().add(base[v] + kk * NR))
                        });
                        for (r, acc_r) in acc.iter_mut().enumerate() {
                            let x = _mm256_set1_ps(*part[r].get_unchecked(kk - off));
                            for (a, &bv) in acc_r.iter_mut().zip(&b) {
                                *a = _mm256_fmadd_ps(x, bv, *a);
                            }
                        }
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let row = &mut out[(self.r0 + r) * n..(self.r0 + r + 1) * n];
                for (v, &sum) in acc_r.iter().enumerate() {
                    let at = c0 + 8 * v;
                    let lanes = n.saturating_sub(at).min(8);
                    if lanes == 8 {
                        // SAFETY: columns `at..at + 8` lie inside `bias` and `row` (n each).
                        unsafe {
                            let mut sum = sum;
                            if let Some(bias) = self.bias {
                                sum = _mm256_add_ps(sum, _mm256_loadu_ps(bias.as_ptr().add(at)));
                            }
                            _mm256_storeu_ps(row.as_mut_ptr().add(at), sum);
                        }
                    } else if lanes > 0 {
                        // The last register of the last panel: its first `lanes` columns.
                        let mut vals = [0f32; 8];
                        // SAFETY: `vals` holds 8 values.
                        unsafe { _mm256_storeu_ps(vals.as_mut_ptr(), sum) };
                        if let Some(bias) = self.bias {
                            for (s, &bv) in vals.iter_mut().zip(&bias[at..at + lanes]) {
                                *s += bv;
                            }
                        }
                        row[at..at + lanes].copy_from_slice(&vals[..lanes]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;

    #[test]
    fn stacked_product_is_the_product_of_the_concatenated_rows() {
        // `[a1 | a2] [w1; w2]^T + bias` against a plain loop, and bitwise against one FMA chain
        // over `a1`'s part, then `a2`'s, then the bias; k1 = 0 and odd sizes included.
        for (rows, k1, k2, n) in [
            (1, 32, 128, 512),
            (17, 3, 5, 33),
            (8, 0, 7, 64),
            (5, 9, 1, 70),
            (7, 4, 6, 101),
        ] {
            let (a1, a2) = (values(rows * k1, 1), values(rows * k2, 2));
            let (w1, w2) = (values(n * k1, 3), values(n * k2, 4));
            let bias = values(n, 5);
            for level in crate::simd::supported_levels() {
                let Some(p) = Recurrent::stacked(level, &w1, k1, &w2, k2, n) else {
                    assert_eq!(level, Level::Scalar, "every SIMD level packs f32");
                    continue; // no packed kernel: `stacked` is never used there
                };
                assert_eq!(p.level, level);
                let mut out = vec![f32::NAN; rows * n];
                p.apply_stacked(&a1, &a2, Some(&bias), &mut out);
                for r in 0..rows {
                    for c in 0..n {
                        let dot: f64 = (0..k1)
                            .map(|kk| a1[r * k1 + kk] as f64 * w1[c * k1 + kk] as f64)
                            .chain(
                                (0..k2).map(|kk| a2[r * k2 + kk] as f64 * w2[c * k2 + kk] as f64),
                            )
                            .sum();
                        let want = dot + bias[c] as f64;
                        let got = out[r * n + c] as f64;
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{level:?} {rows} {k1} {k2} {n}: {got} vs {want}"
                        );
                        let chain =
                            (0..k1).fold(0f32, |s, kk| a1[r * k1 + kk].mul_add(w1[c * k1 + kk], s));
                        let chain = (0..k2)
                            .fold(chain, |s, kk| a2[r * k2 + kk].mul_add(w2[c * k2 + kk], s));
                        assert_eq!(
                            out[r * n + c].to_bits(),
                            (chain + bias[c]).to_bits(),
                            "{level:?} {rows} {k1} {k2} {n} at ({r}, {c})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn packed_panels_hold_the_transposed_rows_and_zero_padding() {
        // Every element of a stacked pack against its definition, for row subsets like the
        // split path's (every gate's rows of one half of the units), widths around the 16-lane
        // (AVX-512) and 8-lane (AVX2) groups and `k` around the blocks of the transposes.
        for (n_all, pick_every, k1, k2) in [
            (512, 1, 32, 128),
            (96, 2, 15, 17),
            (40, 1, 16, 0),
            (70, 3, 1, 31),
            (33, 1, 0, 40),
            (256, 2, 8, 32),
        ] {
            let rows: Vec<usize> = (0..n_all).filter(|r| r % pick_every == 0).collect();
            let (w1, w2) = (values(n_all * k1, 1), values(n_all * k2, 2));
            for level in crate::simd::supported_levels() {
                let Some(p) = Recurrent::stacked_rows(level, &w1, k1, &w2, k2, &rows) else {
                    assert_eq!(level, Level::Scalar, "every SIMD level packs f32");
                    continue;
                };
                let (k, n) = (k1 + k2, rows.len());
                assert_eq!(p.panels.len(), n.div_ceil(NR) * k * NR);
                for c in 0..n.div_ceil(NR) * NR {
                    for kk in 0..k {
                        let got = p.panels[(c / NR) * k * NR + kk * NR + c % NR];
                        let want = match (c < n, kk < k1) {
                            (false, _) => 0.0,
                            (true, true) => w1[rows[c] * k1 + kk],
                            (true, false) => w2[rows[c] * k2 + kk - k1],
                        };
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{level:?} {n_all} {k1} {k2}: ({kk}, {c})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn packed_and_general_products_agree_with_a_plain_loop() {
        // Row counts around the AVX-512 (8/4/2/1) and AVX2 (6/4/2/1) blocks, column counts around
        // the 32-wide panels, the 16-column groups and the 8-lane registers. Every packed level
        // gives exactly the bits of one fused multiply-add chain over `k` in order, then the bias
        // (so AVX2 and AVX-512 agree bitwise), with and without a bias.
        for (rows, k, n) in [
            (1, 128, 512),
            (17, 7, 33),
            (8, 1, 32),
            (3, 40, 5),
            (16, 128, 96),
            (2, 9, 160),
            (6, 33, 200),
            (1, 17, 97),
            (5, 16, 44),
            (4, 3, 61),
            (7, 12, 70),
            (1, 9, 70),
        ] {
            let a = values(rows * k, 1);
            let w = values(n * k, 2); // (n, k) for the transposed form, (k, n) for the other
            let bias = values(n, 3);
            for transposed in [true, false] {
                let b = |kk: usize, c: usize| {
                    if transposed {
                        w[c * k + kk]
                    } else {
                        w[kk * n + c]
                    }
                };
                let mut want = vec![0f64; rows * n];
                let mut chain = vec![0f32; rows * n];
                for r in 0..rows {
                    for c in 0..n {
                        let dot: f64 = (0..k)
                            .map(|kk| a[r * k + kk] as f64 * b(kk, c) as f64)
                            .sum();
                        want[r * n + c] = dot + bias[c] as f64;
                        chain[r * n + c] =
                            (0..k).fold(0f32, |s, kk| a[r * k + kk].mul_add(b(kk, c), s));
                    }
                }
                for level in crate::simd::supported_levels() {
                    let p = if transposed {
                        Recurrent::transposed(level, &w, n, k)
                    } else {
                        Recurrent::rows(level, &w, k, n)
                    };
                    assert_eq!(p.is_packed(), level >= Level::Avx2, "{level:?}");
                    for with_bias in [true, false] {
                        let mut out = vec![f32::NAN; rows * n];
                        let b = with_bias.then_some(&bias[..]);
                        p.apply(&a, b, &mut out, &mut Vec::new());
                        for (i, (g, e)) in out.iter().zip(&want).enumerate() {
                            let e = e - if with_bias { 0.0 } else { bias[i % n] as f64 };
                            assert!(
                                (*g as f64 - e).abs() < 1e-4,
                                "{level:?} {transposed} {with_bias}: {g} vs {e}"
                            );
                            if p.is_packed() {
                                let exact = b.map_or(chain[i], |b| chain[i] + b[i % n]);
                                assert_eq!(
                                    g.to_bits(),
                                    exact.to_bits(),
                                    "{level:?} {transposed} {with_bias} ({rows}, {k}, {n}) at {i}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
