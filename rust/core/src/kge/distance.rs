//! The distance kernel of 1-vs-all RotatE scoring: for a block of query rows and every entity
//! row, `-sum_j |q_j - e_j|` over complex components stored `[re | im]`. (TransE-L1 has its own
//! kernel, `l1.rs`.)
//!
//! Every sum has the same shape at every SIMD level, so results are bitwise identical: element
//! `j` goes to lane `j % 16` (the last chunk zero-padded), and the 16 lanes are added pairwise in
//! a fixed order (`l + 8`, then `l + 4`, then `(0 + 2) + (1 + 3)`). No fused multiply-adds. For
//! `f32`, AVX-512 and AVX2 versions are written with intrinsics (LLVM's auto-vectoriser split the
//! 16 lane accumulators into 2-wide pieces), four queries at a time against each entity chunk so
//! that four independent sums hide the add latency; other types and levels run the portable
//! lane code.

use crate::float::{as_f32, as_f32_mut, Float};
use crate::simd::Level;

/// Accumulator lanes.
pub(crate) const LANES: usize = 16;

/// `out[i * n_ent + e] = -dist(q_i, ent_e)` (complex modulus) for the query rows `q (nq, d)`
/// and every entity row of `ent (n_ent, d)`.
pub(crate) fn block<T: Float>(level: Level, q: &[T], ent: &[T], d: usize, out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(q32), Some(e32)) = (as_f32(q), as_f32(ent)) {
        let o32 = as_f32_mut(out).expect("out has the dtype of q");
        // Never above what this CPU supports, whatever the caller asked for.
        match level.min(crate::simd::detect()) {
            // SAFETY: the level is at most the detected one, so the CPU has these features.
            Level::Avx512 => return unsafe { x86::block_avx512(q32, e32, d, o32) },
            Level::Avx2 => return unsafe { x86::block_avx2(q32, e32, d, o32) },
            Level::Scalar => {}
        }
    }
    crate::simd::dispatch(level, Portable { q, ent, d, out })
}

/// Entity-major loop: each entity row is loaded once per query block.
#[inline(always)]
fn each_pair<T: Copy>(
    q: &[T],
    ent: &[T],
    d: usize,
    out: &mut [T],
    mut dist: impl FnMut(&[T], &[T]) -> T,
) {
    let n_ent = ent.len() / d;
    for (e, row) in ent.chunks_exact(d).enumerate() {
        for (i, qi) in q.chunks_exact(d).enumerate() {
            out[i * n_ent + e] = dist(qi, row);
        }
    }
}

/// Adds the 16 lanes in the fixed order.
#[inline(always)]
pub(crate) fn reduce_lanes<T: Float>(acc: [T; LANES]) -> T {
    let mut h8 = [T::ZERO; 8];
    for l in 0..8 {
        h8[l] = acc[l] + acc[l + 8];
    }
    let mut h4 = [T::ZERO; 4];
    for l in 0..4 {
        h4[l] = h8[l] + h8[l + 4];
    }
    (h4[0] + h4[2]) + (h4[1] + h4[3])
}

/// The last, partial chunk of `s` from `from`, zero-padded to 16 lanes.
#[inline(always)]
fn padded<T: Float>(s: &[T], from: usize, to: usize) -> [T; LANES] {
    let mut out = [T::ZERO; LANES];
    out[..to - from].copy_from_slice(&s[from..to]);
    out
}

/// `acc[l] += |(xr, xi)[l] - (yr, yi)[l]|`.
#[inline(always)]
fn add_modulus<T: Float>(acc: &mut [T; LANES], xr: &[T], xi: &[T], yr: &[T], yi: &[T]) {
    for (l, a) in acc.iter_mut().enumerate() {
        let (u, v) = (xr[l] - yr[l], xi[l] - yi[l]);
        *a = *a + (u * u + v * v).sqrt();
    }
}

/// `sum_j v_j` in the fixed lane order (the same order as every distance sum).
#[inline(always)]
pub(crate) fn lane_sum<T: Float>(v: &[T]) -> T {
    lane_sum_by(v, |x| x)
}

/// `sum_j f(v_j)` in the fixed lane order of [`lane_sum`].
#[inline(always)]
pub(crate) fn lane_sum_by<T: Float>(v: &[T], f: impl Fn(T) -> T) -> T {
    let n = v.len();
    let full = n - n % LANES;
    let mut acc = [T::ZERO; LANES];
    for c in (0..full).step_by(LANES) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(v[c + l]);
        }
    }
    for (l, &x) in v[full..].iter().enumerate() {
        acc[l] = acc[l] + f(x);
    }
    reduce_lanes(acc)
}

/// `sum_j f(a_j - b_j)` in the fixed lane order of [`lane_sum`] (independent lanes, so it
/// vectorises, with the same bits however it is compiled).
#[inline(always)]
pub(crate) fn lane_distance<T: Float>(a: &[T], b: &[T], f: impl Fn(T) -> T) -> T {
    let n = a.len().min(b.len());
    let full = n - n % LANES;
    let mut acc = [T::ZERO; LANES];
    for c in (0..full).step_by(LANES) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(a[c + l] - b[c + l]);
        }
    }
    for j in full..n {
        acc[j - full] = acc[j - full] + f(a[j] - b[j]);
    }
    reduce_lanes(acc)
}

/// `sum_j |a_j - b_j|` over complex components `[re | im]`, portable.
#[inline(always)]
pub(crate) fn modulus<T: Float>(a: &[T], b: &[T]) -> T {
    let k = a.len() / 2;
    let full = k - k % LANES;
    let mut acc = [T::ZERO; LANES];
    for c in (0..full).step_by(LANES) {
        let (x, y) = (c..c + LANES, k + c..k + c + LANES);
        add_modulus(&mut acc, &a[x.clone()], &a[y.clone()], &b[x], &b[y]);
    }
    if full < k {
        let (ar, ai) = (padded(a, full, k), padded(a, k + full, 2 * k));
        let (br, bi) = (padded(b, full, k), padded(b, k + full, 2 * k));
        add_modulus(&mut acc, &ar, &ai, &br, &bi);
    }
    reduce_lanes(acc)
}

/// The portable kernel (every type, every level; compiled per level by `dispatch`).
struct Portable<'a, T> {
    q: &'a [T],
    ent: &'a [T],
    d: usize,
    out: &'a mut [T],
}

impl<T: Float> crate::simd::Kernel for Portable<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        each_pair(self.q, self.ent, self.d, self.out, |a, b| -modulus(a, b));
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// `(h4[0] + h4[2]) + (h4[1] + h4[3])` of a 4-lane vector.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn finish4(h4: __m128) -> f32 {
        // [h0 + h2, h1 + h3, ..] then lane 0 + lane 1.
        let t = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)))
    }

    /// The fixed-order sum of 8 lanes (`h8[l] + h8[l + 4]` first).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn finish8(h8: __m256) -> f32 {
        finish4(_mm_add_ps(
            _mm256_castps256_ps128(h8),
            _mm256_extractf128_ps(h8, 1),
        ))
    }

    /// The fixed-order sum of 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn reduce_512(acc: __m512) -> f32 {
        let lo = _mm512_castps512_ps256(acc);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
        finish8(_mm256_add_ps(lo, hi))
    }

    /// Groups of up to four query rows against each entity row, entity-major.
    #[inline(always)]
    fn each_group(
        q: &[f32],
        ent: &[f32],
        d: usize,
        out: &mut [f32],
        mut dist4: impl FnMut([&[f32]; 4], &[f32]) -> [f32; 4],
    ) {
        let n_ent = ent.len() / d;
        let nq = q.len() / d;
        for (e, row) in ent.chunks_exact(d).enumerate() {
            let mut i = 0;
            while i < nq {
                let take = (nq - i).min(4);
                // Short groups repeat their last query (its result is dropped).
                let qs: [&[f32]; 4] = std::array::from_fn(|g| {
                    &q[(i + g.min(take - 1)) * d..(i + g.min(take - 1) + 1) * d]
                });
                let r = dist4(qs, row);
                for g in 0..take {
                    out[(i + g) * n_ent + e] = -r[g];
                }
                i += take;
            }
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn block_avx512(q: &[f32], ent: &[f32], d: usize, out: &mut [f32]) {
        each_group(q, ent, d, out, |qs, e| unsafe { modulus_512(qs, e) });
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_avx2(q: &[f32], ent: &[f32], d: usize, out: &mut [f32]) {
        each_group(q, ent, d, out, |qs, e| unsafe { modulus_256(qs, e) });
    }

    /// Loads 16 floats at `p`; only the first `n` (<= 16) are read, the rest are zero.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn load16(p: *const f32, n: usize) -> __m512 {
        // SAFETY: the caller's `p..p + n` is inside a slice; masked lanes are not read.
        unsafe {
            if n >= LANES {
                _mm512_loadu_ps(p)
            } else {
                _mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p)
            }
        }
    }

    /// Loads 8 floats at `p`; only the first `n` (may be <= 0 or >= 8) are read.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load8(p: *const f32, n: isize) -> __m256 {
        // SAFETY: the caller's `p..p + n` is inside a slice; masked lanes are not read.
        unsafe {
            if n >= 8 {
                _mm256_loadu_ps(p)
            } else if n <= 0 {
                _mm256_setzero_ps()
            } else {
                let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx);
                _mm256_maskload_ps(p, mask)
            }
        }
    }

    /// Four complex-modulus sums against one entity row.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn modulus_512(qs: [&[f32]; 4], e: &[f32]) -> [f32; 4] {
        let k = e.len() / 2;
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut j = 0;
        while j < k {
            let m = (k - j).min(LANES);
            // SAFETY: j + m <= k and k + j + m <= 2k = the length of every row.
            unsafe {
                let yr = load16(e.as_ptr().add(j), m);
                let yi = load16(e.as_ptr().add(k + j), m);
                for g in 0..4 {
                    let u = _mm512_sub_ps(load16(qs[g].as_ptr().add(j), m), yr);
                    let v = _mm512_sub_ps(load16(qs[g].as_ptr().add(k + j), m), yi);
                    let s = _mm512_add_ps(_mm512_mul_ps(u, u), _mm512_mul_ps(v, v));
                    acc[g] = _mm512_add_ps(acc[g], _mm512_sqrt_ps(s));
                }
            }
            j += LANES;
        }
        std::array::from_fn(|g| reduce_512(acc[g]))
    }

    /// Four complex-modulus sums against one entity row, AVX2.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn modulus_256(qs: [&[f32]; 4], e: &[f32]) -> [f32; 4] {
        let k = e.len() / 2;
        let mut lo = [_mm256_setzero_ps(); 4];
        let mut hi = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j < k {
            let (m0, m1) = ((k - j) as isize, (k - j) as isize - 8);
            // SAFETY: the masked loads read at most k - j elements from offsets j and k + j.
            unsafe {
                let (er, ei) = (e.as_ptr().add(j), e.as_ptr().add(k + j));
                let yr = [load8(er, m0), load8(er.wrapping_add(8), m1)];
                let yi = [load8(ei, m0), load8(ei.wrapping_add(8), m1)];
                for g in 0..4 {
                    let (qr, qi) = (qs[g].as_ptr().add(j), qs[g].as_ptr().add(k + j));
                    for h in 0..2 {
                        let m = if h == 0 { m0 } else { m1 };
                        let u = _mm256_sub_ps(load8(qr.wrapping_add(8 * h), m), yr[h]);
                        let v = _mm256_sub_ps(load8(qi.wrapping_add(8 * h), m), yi[h]);
                        let s = _mm256_add_ps(_mm256_mul_ps(u, u), _mm256_mul_ps(v, v));
                        let acc = if h == 0 { &mut lo[g] } else { &mut hi[g] };
                        *acc = _mm256_add_ps(*acc, _mm256_sqrt_ps(s));
                    }
                }
            }
            j += LANES;
        }
        std::array::from_fn(|g| finish8(_mm256_add_ps(lo[g], hi[g])))
    }
}
