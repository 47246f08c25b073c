//! The per-step recurrent product `out (rows, n) = a (rows, k) · B (k, n) (+ bias)` of the
//! forward pass (`h W_hh^T`) and of the backward pass (`dgates W_hh`).
//!
//! `B` is the same at every step of a sequence. For `f32` on AVX-512 it is packed once per call
//! into panels of 32 columns (two registers), each stored `k`-major with the last one
//! zero-padded, and each step runs a register-blocked microkernel: blocks of up to 8 rows, per
//! `k` two loads of the panel, one broadcast per row and two fused multiply-adds per row into
//! accumulators that stay in registers; the tile is written once, with the bias, straight into
//! the row-major output. A general GEMM re-packs `B` at every step and, for these thin products
//! (1 to 64 rows), spends about as long packing and transposing as multiplying. Other types and
//! levels use the general GEMM.
//!
//! Each output element is one chain of multiply-adds over `k` in order, so the result does not
//! depend on how rows are blocked, nor on the caller's thread count.

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
    transposed: bool,
    /// `B` in panels of [`NR`] columns (f32, AVX-512 only; empty otherwise).
    panels: Vec<f32>,
}

/// Panel width of the packed form (two AVX-512 registers of f32).
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

    fn new(level: Level, w: &'a [T], n: usize, k: usize, transposed: bool) -> Self {
        let fast = cfg!(target_arch = "x86_64")
            && TypeId::of::<T>() == TypeId::of::<f32>()
            && level.min(crate::simd::detect()) == Level::Avx512
            && k > 0;
        let mut panels = Vec::new();
        if fast {
            let panels_n = n.div_ceil(NR);
            panels = vec![0f32; panels_n * k * NR];
            // Read `w` along its rows (contiguous) in both forms; the panel (k * NR floats)
            // takes the strided writes.
            for (p, panel) in panels.chunks_exact_mut(k * NR).enumerate() {
                let cols = p * NR..p * NR + NR.min(n - p * NR);
                if transposed {
                    for (c, col) in cols.enumerate() {
                        for (kk, v) in w[col * k..(col + 1) * k].iter().enumerate() {
                            panel[kk * NR + c] = v.to_f64() as f32;
                        }
                    }
                } else {
                    for kk in 0..k {
                        for (c, v) in w[kk * n + cols.start..kk * n + cols.end].iter().enumerate() {
                            panel[kk * NR + c] = v.to_f64() as f32;
                        }
                    }
                }
            }
        }
        Recurrent {
            w,
            n,
            k,
            transposed,
            panels,
        }
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
            // SAFETY: `panels` is non-empty only for T = f32 on a CPU with AVX-512 (checked in
            // `new`); the casts below are between identical types.
            unsafe {
                let cast = |s: &[T]| std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len());
                let o = std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut f32, out.len());
                x86::product(cast(a), k, n, &self.panels, bias.map(cast), o);
            }
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::NR;
    use std::arch::x86_64::*;

    /// `out (rows, n) = a (rows, k) · B + bias` with `B` in panels of [`NR`] columns.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) fn product(
        a: &[f32],
        k: usize,
        n: usize,
        panels: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let rows = a.len() / k;
        // The rows of a block, transposed (k-major): the broadcasts of one `k` then read
        // neighbouring addresses through one pointer.
        let mut at = vec![0f32; 8 * k];
        let mut r0 = 0;
        while r0 < rows {
            let at = &mut at;
            match rows - r0 {
                8.. => r0 += block::<8>(a, k, n, panels, bias, out, r0, at),
                4..=7 => r0 += block::<4>(a, k, n, panels, bias, out, r0, at),
                2..=3 => r0 += block::<2>(a, k, n, panels, bias, out, r0, at),
                _ => r0 += block::<1>(a, k, n, panels, bias, out, r0, at),
            }
        }
    }

    /// Rows `r0..r0 + M` against every panel; returns `M`. `at`: scratch of `8 k` floats.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn block<const M: usize>(
        a: &[f32],
        k: usize,
        n: usize,
        panels: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
        r0: usize,
        at: &mut [f32],
    ) -> usize {
        let at = &mut at[..M * k];
        for r in 0..M {
            for (kk, &v) in a[(r0 + r) * k..(r0 + r + 1) * k].iter().enumerate() {
                at[kk * M + r] = v;
            }
        }
        for (p, panel) in panels.chunks_exact(k * NR).enumerate() {
            let mut acc = [[_mm512_setzero_ps(); 2]; M];
            for (b, av) in panel.chunks_exact(NR).zip(at.chunks_exact(M)) {
                // SAFETY: `b` holds NR = 32 floats (two 16-float loads), `av` M floats.
                unsafe {
                    let (b0, b1) = (
                        _mm512_loadu_ps(b.as_ptr()),
                        _mm512_loadu_ps(b.as_ptr().add(16)),
                    );
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let x = _mm512_set1_ps(*av.get_unchecked(r));
                        acc_r[0] = _mm512_fmadd_ps(x, b0, acc_r[0]);
                        acc_r[1] = _mm512_fmadd_ps(x, b1, acc_r[1]);
                    }
                }
            }
            let c0 = p * NR;
            let width = NR.min(n - c0);
            let masks = [
                crate::simd::mask16(width),
                crate::simd::mask16(width.saturating_sub(16)),
            ];
            for (r, acc_r) in acc.iter().enumerate() {
                let row = &mut out[(r0 + r) * n + c0..(r0 + r) * n + c0 + width];
                for h in 0..2 {
                    let mut v = acc_r[h];
                    // SAFETY: masked loads and stores touch only the first `width` columns
                    // from c0, which lie inside `bias` (n) and `row` (width).
                    unsafe {
                        if let Some(bias) = bias {
                            let bv =
                                _mm512_maskz_loadu_ps(masks[h], bias.as_ptr().add(c0 + 16 * h));
                            v = _mm512_add_ps(v, bv);
                        }
                        _mm512_mask_storeu_ps(row.as_mut_ptr().add(16 * h), masks[h], v);
                    }
                }
            }
        }
        M
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;

    #[test]
    fn packed_and_general_products_agree_with_a_plain_loop() {
        // Row counts around the 8/4/2/1 blocks, column counts around the 32-wide panels.
        for (rows, k, n) in [
            (1, 128, 512),
            (17, 7, 33),
            (8, 1, 32),
            (3, 40, 5),
            (16, 128, 96),
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
                for r in 0..rows {
                    for c in 0..n {
                        let dot: f64 = (0..k)
                            .map(|kk| a[r * k + kk] as f64 * b(kk, c) as f64)
                            .sum();
                        want[r * n + c] = dot + bias[c] as f64;
                    }
                }
                for level in crate::simd::supported_levels() {
                    let p = if transposed {
                        Recurrent::transposed(level, &w, n, k)
                    } else {
                        Recurrent::rows(level, &w, k, n)
                    };
                    let mut out = vec![f32::NAN; rows * n];
                    p.apply(&a, Some(&bias), &mut out, &mut Vec::new());
                    for (g, e) in out.iter().zip(&want) {
                        assert!(
                            (*g as f64 - e).abs() < 1e-4,
                            "{level:?} {transposed}: {g} vs {e}"
                        );
                    }
                }
            }
        }
    }
}
