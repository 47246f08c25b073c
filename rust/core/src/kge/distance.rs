//! The distance kernels of 1-vs-all scoring: for a block of query rows and every entity row,
//! `-sum_j |q_j - e_j|` (L1, TransE) or `-sum_j |q_j - e_j|` over complex components stored
//! `[re | im]` (RotatE).
//!
//! L1 uses `|a - b| = 2 max(a, b) - a - b`: the inner loop sums `max(q_j, e_j)` (two vector
//! operations per element instead of three: subtract, absolute value, add), and the score is
//! `-((M - Q) + (M - E))` with `M = sum max`, `Q = sum q`, `E = sum e`; the row sums `Q` and `E`
//! are computed once per row ([`lane_sum`]). Each bracket is a sum of non-negative terms
//! (`max(q, e) - q >= 0`), so the rounding error stays relative to the row magnitudes, as for
//! the direct sum.
//!
//! Every sum has the same shape at every SIMD level, so results are bitwise identical: element
//! `j` goes to lane `j % 16` (the last chunk zero-padded), and the 16 lanes are added pairwise in
//! a fixed order (`l + 8`, then `l + 4`, then `(0 + 2) + (1 + 3)`). No fused multiply-adds. For
//! `f32`, AVX-512 and AVX2 versions are written with intrinsics (LLVM's auto-vectoriser split the
//! 16 lane accumulators into 2-wide pieces), four queries at a time against each entity chunk so
//! that four independent sums hide the add latency; other types and levels run the portable
//! lane code.

use crate::float::Float;
use crate::simd::Level;
use std::any::TypeId;

/// Accumulator lanes.
pub(crate) const LANES: usize = 16;

/// `s` as `&[f32]` when `T` is `f32`.
fn as_f32<T: Float>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: T is f32 (same type, same layout).
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

/// `s` as `&mut [f32]` when `T` is `f32`.
fn as_f32_mut<T: Float>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: T is f32 (same type, same layout); the borrow is moved into the result.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) })
}

/// The row sums of `ent (n_ent, d)` that [`block`] needs for L1 (see the module notes).
pub(crate) fn entity_sums<T: Float>(ent: &[T], d: usize) -> Vec<T> {
    ent.chunks_exact(d.max(1)).map(lane_sum).collect()
}

/// `out[i * n_ent + e] = -dist(q_i, ent_e)` for the query rows `q (nq, d)` and every entity
/// row of `ent (n_ent, d)`; `ent_sums` from [`entity_sums`] for L1 (ignored for the modulus).
pub(crate) fn block<T: Float>(
    level: Level,
    q: &[T],
    ent: &[T],
    ent_sums: &[T],
    d: usize,
    modulus: bool,
    out: &mut [T],
) {
    let q_sums: Vec<T> = if modulus {
        Vec::new()
    } else {
        q.chunks_exact(d).map(lane_sum).collect()
    };
    #[cfg(target_arch = "x86_64")]
    if let (Some(q32), Some(e32)) = (as_f32(q), as_f32(ent)) {
        let o32 = as_f32_mut(out).expect("out has the dtype of q");
        let (qs32, es32) = (
            as_f32(&q_sums).expect("sums have the dtype of q"),
            as_f32(ent_sums).expect("sums have the dtype of q"),
        );
        let sums = (qs32, es32);
        // Never above what this CPU supports, whatever the caller asked for.
        match level.min(crate::simd::detect()) {
            // SAFETY: the level is at most the detected one, so the CPU has these features.
            Level::Avx512 => return unsafe { x86::block_avx512(q32, e32, sums, d, modulus, o32) },
            Level::Avx2 => return unsafe { x86::block_avx2(q32, e32, sums, d, modulus, o32) },
            Level::Scalar => {}
        }
    }
    crate::simd::dispatch(
        level,
        Portable {
            q,
            ent,
            q_sums: &q_sums,
            ent_sums,
            d,
            modulus,
            out,
        },
    )
}

/// `-sum_j |q_j - e_j|` from `m = sum_j max(q_j, e_j)` and the row sums (module notes).
#[inline(always)]
pub(crate) fn neg_l1_from_max<T: Float>(m: T, q_sum: T, e_sum: T) -> T {
    -((m - q_sum) + (m - e_sum))
}

/// Entity-major loop shared by every version: each entity row is loaded once per query block.
/// `dist(i, e, q_i, ent_e)`.
#[inline(always)]
fn each_pair<T: Copy>(
    q: &[T],
    ent: &[T],
    d: usize,
    out: &mut [T],
    mut dist: impl FnMut(usize, usize, &[T], &[T]) -> T,
) {
    let n_ent = ent.len() / d;
    for (e, row) in ent.chunks_exact(d).enumerate() {
        for (i, qi) in q.chunks_exact(d).enumerate() {
            out[i * n_ent + e] = dist(i, e, qi, row);
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

/// `acc[l] += max(x[l], y[l])` (`x[l]` if greater, else `y[l]`: as the x86 `max` instructions).
#[inline(always)]
fn add_max<T: Float>(acc: &mut [T; LANES], x: &[T], y: &[T]) {
    for (l, a) in acc.iter_mut().enumerate() {
        *a = *a + if x[l] > y[l] { x[l] } else { y[l] };
    }
}

/// `acc[l] += |(xr, xi)[l] - (yr, yi)[l]|`.
#[inline(always)]
fn add_modulus<T: Float>(acc: &mut [T; LANES], xr: &[T], xi: &[T], yr: &[T], yi: &[T]) {
    for (l, a) in acc.iter_mut().enumerate() {
        let (u, v) = (xr[l] - yr[l], xi[l] - yi[l]);
        *a = *a + (u * u + v * v).sqrt();
    }
}

/// `sum_j max(a_j, b_j)` in the fixed lane order, portable.
#[inline(always)]
pub(crate) fn max_sum<T: Float>(a: &[T], b: &[T]) -> T {
    let n = a.len();
    let full = n - n % LANES;
    let mut acc = [T::ZERO; LANES];
    for c in (0..full).step_by(LANES) {
        add_max(&mut acc, &a[c..c + LANES], &b[c..c + LANES]);
    }
    if full < n {
        add_max(&mut acc, &padded(a, full, n), &padded(b, full, n));
    }
    reduce_lanes(acc)
}

/// `sum_j v_j` in the fixed lane order (the same order as every distance sum).
#[inline(always)]
pub(crate) fn lane_sum<T: Float>(v: &[T]) -> T {
    let n = v.len();
    let full = n - n % LANES;
    let mut acc = [T::ZERO; LANES];
    for c in (0..full).step_by(LANES) {
        for l in 0..LANES {
            acc[l] = acc[l] + v[c + l];
        }
    }
    for (l, &x) in v[full..].iter().enumerate() {
        acc[l] = acc[l] + x;
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
    q_sums: &'a [T],
    ent_sums: &'a [T],
    d: usize,
    modulus: bool,
    out: &'a mut [T],
}

impl<T: Float> crate::simd::Kernel for Portable<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (qs, es) = (self.q_sums, self.ent_sums);
        if self.modulus {
            each_pair(self.q, self.ent, self.d, self.out, |_, _, a, b| {
                -modulus(a, b)
            });
        } else {
            each_pair(self.q, self.ent, self.d, self.out, |i, e, a, b| {
                neg_l1_from_max(max_sum(a, b), qs[i], es[e])
            });
        }
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

    /// Row sums of the query block and of every entity (for L1).
    pub(super) type Sums<'a> = (&'a [f32], &'a [f32]);

    /// Groups of up to four query rows against each entity row, entity-major;
    /// `finish(i, e, raw)` turns the raw sum of query `i` and entity `e` into the score.
    #[inline(always)]
    fn each_group(
        q: &[f32],
        ent: &[f32],
        d: usize,
        out: &mut [f32],
        mut dist4: impl FnMut([&[f32]; 4], &[f32]) -> [f32; 4],
        finish: impl Fn(usize, usize, f32) -> f32,
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
                    out[(i + g) * n_ent + e] = finish(i + g, e, r[g]);
                }
                i += take;
            }
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn block_avx512(
        q: &[f32],
        ent: &[f32],
        (q_sums, ent_sums): Sums<'_>,
        d: usize,
        modulus: bool,
        out: &mut [f32],
    ) {
        if modulus {
            each_group(
                q,
                ent,
                d,
                out,
                |qs, e| unsafe { modulus_512(qs, e) },
                |_, _, r| -r,
            );
        } else {
            // SAFETY: this function's features are the ones `l1_pairs_512` needs.
            unsafe { l1_pairs_512(q, ent, (q_sums, ent_sums), d, out) };
        }
    }

    /// Query rows `i..i + 4` of `q`; a short group (`take < 4`) repeats its last row, whose
    /// results are then dropped.
    #[inline(always)]
    fn group4(q: &[f32], d: usize, i: usize, take: usize) -> [&[f32]; 4] {
        let row = |g: usize| {
            let k = i + g.min(take - 1);
            &q[k * d..(k + 1) * d]
        };
        [row(0), row(1), row(2), row(3)]
    }

    /// The fixed-order sums of eight accumulators at once (the order of [`reduce_512`], with the
    /// adds of several accumulators sharing one instruction): `a[k]` lands in lane `4 k`, `b[k]`
    /// in lane `4 k + 1` of the result.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn reduce_8x512(a: [__m512; 4], b: [__m512; 4]) -> [f32; 16] {
        // Lane l + lane l + 8 of two accumulators: [x h8 (8 lanes) | y h8 (8 lanes)].
        let h8 = |x: __m512, y: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(x, y),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(x, y),
            )
        };
        // Lane l + lane l + 4 of the h8 halves of four accumulators: [w | x | y | z] h4.
        let h4 = |xy: __m512, zw: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(xy, zw),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(xy, zw),
            )
        };
        let p = h4(h8(a[0], a[1]), h8(a[2], a[3]));
        let q = h4(h8(b[0], b[1]), h8(b[2], b[3]));
        // Per 128-bit lane k: [p0 + p2, p1 + p3, q0 + q2, q1 + q3], then the two pairs added.
        let u = _mm512_add_ps(
            _mm512_shuffle_ps::<0b01_00_01_00>(p, q),
            _mm512_shuffle_ps::<0b11_10_11_10>(p, q),
        );
        let w = _mm512_add_ps(
            _mm512_shuffle_ps::<0b10_00_10_00>(u, u),
            _mm512_shuffle_ps::<0b11_01_11_01>(u, u),
        );
        let mut out = [0f32; 16];
        // SAFETY: `out` holds 16 floats.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), w) };
        out
    }

    /// L1 scores (max form) with four queries against two entity rows at a time: eight
    /// accumulators, six loads per sixteen vector operations, the partial last chunk of a row
    /// handled once after the loop (not tested in it). An odd last entity goes through
    /// [`max_512`].
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn l1_pairs_512(
        q: &[f32],
        ent: &[f32],
        (q_sums, ent_sums): Sums<'_>,
        d: usize,
        out: &mut [f32],
    ) {
        let n_ent = ent.len() / d;
        let nq = q.len() / d;
        let (full, rest) = (d - d % LANES, d % LANES);
        let tail = ((1u32 << rest) - 1) as __mmask16;
        let pairs = n_ent / 2;
        for p in 0..pairs {
            let (e0, e1) = (2 * p, 2 * p + 1);
            let (r0, r1) = (&ent[e0 * d..(e0 + 1) * d], &ent[e1 * d..(e1 + 1) * d]);
            let mut i = 0;
            while i < nq {
                let take = (nq - i).min(4);
                let qs = group4(q, d, i, take);
                let mut a0 = [_mm512_setzero_ps(); 4];
                let mut a1 = [_mm512_setzero_ps(); 4];
                let mut j = 0;
                // SAFETY: every load reads 16 floats at j < full <= d, or (the tail) only the
                // `rest` floats from `full`, inside rows of length d.
                unsafe {
                    while j < full {
                        let y0 = _mm512_loadu_ps(r0.as_ptr().add(j));
                        let y1 = _mm512_loadu_ps(r1.as_ptr().add(j));
                        for g in 0..4 {
                            let x = _mm512_loadu_ps(qs[g].as_ptr().add(j));
                            a0[g] = _mm512_add_ps(a0[g], _mm512_max_ps(x, y0));
                            a1[g] = _mm512_add_ps(a1[g], _mm512_max_ps(x, y1));
                        }
                        j += LANES;
                    }
                    if rest > 0 {
                        let y0 = _mm512_maskz_loadu_ps(tail, r0.as_ptr().add(full));
                        let y1 = _mm512_maskz_loadu_ps(tail, r1.as_ptr().add(full));
                        for g in 0..4 {
                            let x = _mm512_maskz_loadu_ps(tail, qs[g].as_ptr().add(full));
                            a0[g] = _mm512_add_ps(a0[g], _mm512_max_ps(x, y0));
                            a1[g] = _mm512_add_ps(a1[g], _mm512_max_ps(x, y1));
                        }
                    }
                }
                let m = reduce_8x512(a0, a1);
                for g in 0..take {
                    let row = &mut out[(i + g) * n_ent..(i + g + 1) * n_ent];
                    let qsum = q_sums[i + g];
                    row[e0] = super::neg_l1_from_max(m[4 * g], qsum, ent_sums[e0]);
                    row[e1] = super::neg_l1_from_max(m[4 * g + 1], qsum, ent_sums[e1]);
                }
                i += take;
            }
        }
        if n_ent % 2 == 1 {
            let e = n_ent - 1;
            let row = &ent[e * d..];
            let mut i = 0;
            while i < nq {
                let take = (nq - i).min(4);
                let qs = group4(q, d, i, take);
                // SAFETY: this function's features are the ones `max_512` needs.
                let m = unsafe { max_512(qs, row) };
                for g in 0..take {
                    out[(i + g) * n_ent + e] =
                        super::neg_l1_from_max(m[g], q_sums[i + g], ent_sums[e]);
                }
                i += take;
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_avx2(
        q: &[f32],
        ent: &[f32],
        (q_sums, ent_sums): Sums<'_>,
        d: usize,
        modulus: bool,
        out: &mut [f32],
    ) {
        if modulus {
            each_group(
                q,
                ent,
                d,
                out,
                |qs, e| unsafe { modulus_256(qs, e) },
                |_, _, r| -r,
            );
        } else {
            let finish =
                |i: usize, e: usize, m: f32| super::neg_l1_from_max(m, q_sums[i], ent_sums[e]);
            each_group(q, ent, d, out, |qs, e| unsafe { max_256(qs, e) }, finish);
        }
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

    /// Four sums of `max(q, e)` against one entity row.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn max_512(qs: [&[f32]; 4], e: &[f32]) -> [f32; 4] {
        let n = e.len();
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut j = 0;
        while j < n {
            let m = (n - j).min(LANES);
            // SAFETY: j + m <= n = the length of every row.
            unsafe {
                let y = load16(e.as_ptr().add(j), m);
                for g in 0..4 {
                    let x = load16(qs[g].as_ptr().add(j), m);
                    acc[g] = _mm512_add_ps(acc[g], _mm512_max_ps(x, y));
                }
            }
            j += LANES;
        }
        std::array::from_fn(|g| reduce_512(acc[g]))
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

    /// Four sums of `max(q, e)` against one entity row, lanes 0-7 and 8-15 in two registers.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn max_256(qs: [&[f32]; 4], e: &[f32]) -> [f32; 4] {
        let n = e.len();
        let mut lo = [_mm256_setzero_ps(); 4];
        let mut hi = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j < n {
            let (m0, m1) = ((n - j) as isize, (n - j) as isize - 8);
            // SAFETY: the masked loads read at most n - j elements from offset j.
            unsafe {
                let y0 = load8(e.as_ptr().add(j), m0);
                let y1 = load8(e.as_ptr().wrapping_add(j + 8), m1);
                for g in 0..4 {
                    let x0 = load8(qs[g].as_ptr().add(j), m0);
                    let x1 = load8(qs[g].as_ptr().wrapping_add(j + 8), m1);
                    lo[g] = _mm256_add_ps(lo[g], _mm256_max_ps(x0, y0));
                    hi[g] = _mm256_add_ps(hi[g], _mm256_max_ps(x1, y1));
                }
            }
            j += LANES;
        }
        std::array::from_fn(|g| finish8(_mm256_add_ps(lo[g], hi[g])))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::supported_levels;
    use crate::testing::values;

    #[test]
    fn l1_block_is_the_same_at_every_level_and_close_to_the_direct_sum() {
        // Odd entity counts (the unpaired last entity), short query groups, and widths with
        // and without a partial last chunk.
        for (nq, n_ent, d) in [(5, 7, 16), (4, 9, 200), (7, 3, 21), (1, 1, 7), (6, 10, 33)] {
            let (q, ent) = (values(nq * d, 1), values(n_ent * d, 2));
            let sums = entity_sums(&ent, d);
            let mut want = vec![0f32; nq * n_ent];
            block(Level::Scalar, &q, &ent, &sums, d, false, &mut want);
            for i in 0..nq {
                for e in 0..n_ent {
                    let direct: f64 = (0..d)
                        .map(|j| (q[i * d + j] as f64 - ent[e * d + j] as f64).abs())
                        .sum();
                    let got = -want[i * n_ent + e] as f64;
                    assert!(
                        (got - direct).abs() <= 1e-5 * (1.0 + direct),
                        "{got} vs {direct}"
                    );
                }
            }
            for level in supported_levels() {
                let mut got = vec![f32::NAN; nq * n_ent];
                block(level, &q, &ent, &sums, d, false, &mut got);
                assert_eq!(got, want, "{level:?} ({nq}, {n_ent}, {d})");
            }
        }
    }
}
