//! 1-vs-all L1 scores (TransE-L1): `-sum_j |q_j - e_j|` for a block of query rows against
//! every entity.
//!
//! `|a - b| = 2 max(a, b) - a - b`, so the inner loop only sums `max(q_j, e_j)` (two vector
//! operations per element, max and add, instead of three: subtract, absolute value, add); the
//! score is `-((M - Q) + (M - E))` with `M = sum_j max(q_j, e_j)` and the row sums `Q = sum q`,
//! `E = sum e` computed once per row. The rounding error of `M - Q` is relative to the row
//! magnitudes, not to the distance: a score small enough for that to matter (`score.rs`'s
//! `REFINE`) is recomputed directly, `sum_j |q_j - e_j|`, as soon as it is formed (in the
//! kernel's last step, while its lanes are in registers: no second pass over the output).
//!
//! Entities run in the vector lanes: the entity table is transposed once per call into panels
//! of 32 entities ([`L1Table`]: per panel, `d` rows of 32 values, contiguous, the last panel
//! zero-padded), and for each dimension `j` a register of 16 entities takes `max(q_j, e_j)`
//! against one broadcast query value and adds it to its own lane. Every lane is
//! one entity's sum over `j = 0..d` in order, the same order as the portable code, so every
//! SIMD level gives the same bits; there is no horizontal reduction, and 16 consecutive scores
//! are stored at once. The AVX-512 kernel holds four queries x 32 entities (eight registers) per
//! block: two loads and four broadcasts per sixteen vector operations. Zen 4 runs `max` and
//! `add` on the same two pipes, so the sums are accumulated with `fma(max, 1, acc)` on the
//! other two (the same bits as `add`: `max * 1` is exact); 1.2x faster there.

use super::distance::{lane_distance, lane_sum, lane_sum_by};
use super::score::REFINE;
use crate::float::Float;
use crate::par::Par;
use crate::simd::{self, Kernel, Level};
use std::any::TypeId;

/// Entities per tile of the portable kernel (half a panel).
const W: usize = 16;
/// Entities per panel of the transposed table.
const P: usize = 32;
/// Alignment of the panels in bytes (a cache line, and an AVX-512 register).
const ALIGN: usize = 64;

/// The entity table prepared for L1 scoring: transposed in panels, with its row sums.
pub(crate) struct L1Table<T> {
    /// Panel `b`, dimension `j`, lane `l`: `panels()[(b * d + j) * P + l] = ent[(b * P + l), j]`
    /// (0 past the last entity), from element `start` of `buf` (see [`L1Table::panels`]).
    buf: Vec<T>,
    start: usize,
    /// `sum_j ent[e, j]` (in [`lane_sum`] order), zero-padded to whole panels.
    sums: Vec<T>,
    /// `sum_j |ent[e, j]|`, zero-padded to whole panels: the magnitude against which a score's
    /// cancellation is judged ([`REFINE`]).
    abs_sums: Vec<T>,
    n_ent: usize,
    d: usize,
}

impl<T: Float> L1Table<T> {
    /// Transposes `ent (n_ent, d)` into panels and sums its rows, in the same parallel jobs
    /// (one per panel); the panels are written once, not zeroed first.
    pub(crate) fn new(par: Par, ent: &[T], d: usize) -> Self {
        let n_ent = ent.len().checked_div(d).unwrap_or(0);
        let n_panels = n_ent.div_ceil(P);
        let len = n_panels * d * P;
        let mut buf: Vec<T> = Vec::with_capacity(len + ALIGN / std::mem::size_of::<T>());
        let start = buf.as_ptr().align_offset(ALIGN).min(buf.capacity() - len);
        let spare = buf.spare_capacity_mut();
        for x in &mut spare[..start] {
            x.write(T::ZERO);
        }
        let mut sums = vec![T::ZERO; n_panels * P];
        let mut abs_sums = vec![T::ZERO; n_panels * P];
        let jobs: Vec<_> = (spare[start..start + len])
            .chunks_mut((d * P).max(1))
            .zip(sums.chunks_mut(P).zip(abs_sums.chunks_mut(P)))
            .enumerate()
            .collect();
        par.for_work(n_ent * d)
            .for_each(jobs, |(b, (panel, (sums, abs_sums)))| {
                let rows = &ent[b * P * d..((b + 1) * P).min(n_ent) * d];
                for (l, row) in rows.chunks_exact(d).enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        panel[j * P + l].write(v);
                    }
                    sums[l] = lane_sum(row);
                    abs_sums[l] = abs_sum(row);
                }
                for l in rows.len() / d..P {
                    for j in 0..d {
                        panel[j * P + l].write(T::ZERO);
                    }
                }
            });
        // SAFETY: the first `start` elements were zeroed above and the jobs wrote the `len`
        // after them (each panel's `d` rows of P lanes, padding lanes as zero).
        unsafe { buf.set_len(start + len) };
        L1Table {
            buf,
            start,
            sums,
            abs_sums,
            n_ent,
            d,
        }
    }
}

impl<T> L1Table<T> {
    /// The panels, starting on a 64-byte boundary: unaligned, every 64-byte load of a panel
    /// row straddles two cache lines, which made a C loop of the AVX-512 kernel's shape 1.9x
    /// slower on Zen 4 (52 against 28 G elements/s on one core).
    fn panels(&self) -> &[T] {
        &self.buf[self.start..]
    }
}

/// `sum_j |v_j|` (in lane order): a row's magnitude for [`REFINE`].
#[inline(always)]
fn abs_sum<T: Float>(v: &[T]) -> T {
    lane_sum_by(v, T::abs)
}

/// Whether the score `s` of a query and an entity with magnitudes `q_abs`, `e_abs` lost too
/// many digits to cancellation ([`REFINE`]; `s <= 0`, so `-s` is the distance).
#[inline(always)]
fn needs_refine<T: Float>(s: T, q_abs: T, e_abs: T) -> bool {
    -s < T::of(REFINE) * (q_abs + e_abs)
}

/// The score computed directly, `-sum_j |q_j - e_j|` (used where [`needs_refine`]).
#[inline(always)]
fn direct<T: Float>(q: &[T], e: &[T]) -> T {
    -lane_distance(q, e, T::abs)
}

/// `-sum_j |q_j - e_j|` from `m = sum_j max(q_j, e_j)` and the row sums (module notes).
#[inline(always)]
fn neg_l1_from_max<T: Float>(m: T, q_sum: T, e_sum: T) -> T {
    -((m - q_sum) + (m - e_sum))
}

/// `max(q, e)` as the AVX-512 kernel's `vmaxps e, q` takes it: `e` if greater, else `q`.
#[inline(always)]
fn max<T: Float>(q: T, e: T) -> T {
    if e > q {
        e
    } else {
        q
    }
}

/// `out[i * n_ent + e] = -sum_j |q[i, j] - ent[e, j]|` for the query rows `q (nq, d)`;
/// `ent (n_ent, d)` is the table `table` was made from (its rows recompute the scores that
/// cancelled).
pub(crate) fn block<T: Float>(level: Level, q: &[T], table: &L1Table<T>, ent: &[T], out: &mut [T]) {
    let d = table.d;
    let q_sums: Vec<T> = q.chunks_exact(d.max(1)).map(lane_sum).collect();
    let q_abs: Vec<T> = q.chunks_exact(d.max(1)).map(abs_sum).collect();
    assert_eq!(
        out.len(),
        q_sums.len() * table.n_ent,
        "l1 block: out has the wrong size"
    );
    assert_eq!(
        ent.len(),
        table.n_ent * d,
        "l1 block: ent is not the table's"
    );
    let rows = Rows {
        q,
        q_sums: &q_sums,
        q_abs: &q_abs,
        ent,
    };
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>()
        && level.min(simd::detect()) == Level::Avx512
        && d > 0
        && table.n_ent > 0
    {
        // SAFETY: T is f32 (same type, same layout); the CPU has AVX-512 (checked just above).
        unsafe {
            let rows = &*(&rows as *const Rows<'_, T> as *const Rows<'_, f32>);
            let table = &*(table as *const L1Table<T> as *const L1Table<f32>);
            let o = std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut f32, out.len());
            x86::block_avx512(rows, table, o);
        }
        return;
    }
    simd::dispatch(level, Portable { rows, table, out })
}

/// A block's query rows with their sums and magnitudes, and the entity rows.
struct Rows<'a, T> {
    q: &'a [T],
    q_sums: &'a [T],
    q_abs: &'a [T],
    ent: &'a [T],
}

impl<T: Float> Rows<'_, T> {
    fn q(&self, i: usize) -> &[T] {
        let d = self.q.len() / self.q_sums.len();
        &self.q[i * d..(i + 1) * d]
    }

    /// Replaces the score of query `i` and entity `e` (`*s`) by its direct value if it
    /// cancelled ([`needs_refine`]).
    #[inline(always)]
    fn refine(&self, i: usize, e: usize, e_abs: T, s: &mut T) {
        if needs_refine(*s, self.q_abs[i], e_abs) {
            let q = self.q(i);
            *s = direct(q, &self.ent[e * q.len()..(e + 1) * q.len()]);
        }
    }
}

/// Scores of entities `e0..e0 + w` (`e0` a multiple of [`W`], `w <= W`) for query `i`, in
/// lanes.
#[inline(always)]
fn tile<T: Float>(
    rows: &Rows<'_, T>,
    i: usize,
    table: &L1Table<T>,
    e0: usize,
    w: usize,
    out_i: &mut [T],
) {
    let q_i = rows.q(i);
    let d = q_i.len();
    let (b, l0) = (e0 / P, e0 % P);
    let panel = &table.panels()[b * d * P..(b + 1) * d * P];
    let mut acc = [T::ZERO; W];
    for (j, &qj) in q_i.iter().enumerate() {
        let row: &[T; W] = panel[j * P + l0..j * P + l0 + W]
            .try_into()
            .expect("tile in range");
        for l in 0..W {
            acc[l] = acc[l] + max(qj, row[l]);
        }
    }
    for (l, &m) in acc.iter().enumerate().take(w) {
        let e = e0 + l;
        out_i[e] = neg_l1_from_max(m, rows.q_sums[i], table.sums[e]);
        rows.refine(i, e, table.abs_sums[e], &mut out_i[e]);
    }
}

/// The portable kernel (every type and level; compiled per level by `dispatch`).
struct Portable<'a, T> {
    rows: Rows<'a, T>,
    table: &'a L1Table<T>,
    out: &'a mut [T],
}

impl<T: Float> Kernel for Portable<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let n_ent = self.table.n_ent;
        for e0 in (0..n_ent).step_by(W) {
            let w = W.min(n_ent - e0);
            for (i, out_i) in self.out.chunks_exact_mut(n_ent.max(1)).enumerate() {
                tile(&self.rows, i, self.table, e0, w, out_i);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{tile, L1Table, Rows, P, REFINE, W};
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// `max(y, *x)` per lane (`y` where greater, else `*x`) with the query value `*x`
    /// broadcast inside the instruction (`vmaxps` with an embedded `{1to16}` memory operand).
    /// LLVM keeps a broadcast used twice in a register of its own; on Zen 4 that extra
    /// instruction per query and dimension made a C loop of this kernel's shape 1.45x slower
    /// (36 against 52 G elements/s on one core).
    ///
    /// # Safety
    /// `x` must be valid for reading one `f32`; the CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn max_broadcast(y: __m512, x: *const f32) -> __m512 {
        let r: __m512;
        // SAFETY: reads one f32 at `x` (the caller's promise); no other memory, stack or flags.
        unsafe {
            asm!(
                "vmaxps {r}, {y}, dword ptr [{x}]{{1to16}}",
                r = lateout(zmm_reg) r,
                y = in(zmm_reg) y,
                x = in(reg) x,
                // Not `preserves_flags`: vmaxps may set MXCSR's exception flags.
                options(pure, readonly, nostack),
            );
        }
        r
    }

    /// Blocks of four queries x one panel of 32 entities (the last panel's padding lanes are
    /// computed but not stored); the queries past the last group of four go through the
    /// portable tile.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) fn block_avx512(rows: &Rows<'_, f32>, table: &L1Table<f32>, out: &mut [f32]) {
        let (n_ent, d) = (table.n_ent, table.d);
        let q_sums = rows.q_sums;
        let nq = q_sums.len();
        let full_q = nq - nq % 4;
        let sign = _mm512_set1_epi32(i32::MIN);
        // An opaque 1: the compiler would turn `fma(x, 1, acc)` back into `add` (module notes).
        let one = _mm512_set1_ps(std::hint::black_box(1.0f32));
        let refine = _mm512_set1_ps(REFINE as f32);
        for (b, panel) in table.panels().chunks_exact(d * P).enumerate() {
            let e0 = b * P;
            let width = P.min(n_ent - e0);
            let masks = [
                crate::simd::mask16(width),
                crate::simd::mask16(width.saturating_sub(16)),
            ];
            for i0 in (0..full_q).step_by(4) {
                let mut acc = [[_mm512_setzero_ps(); 2]; 4];
                let q0 = rows.q(i0).as_ptr();
                // SAFETY: the four rows `i0..i0 + 4` of `d` floats each are inside `q`
                // (`i0 + 4 <= full_q <= nq`); `panel` holds `d` rows of P = 32 floats.
                unsafe {
                    let qr = [q0, q0.add(d), q0.add(2 * d), q0.add(3 * d)];
                    let mut y = panel.as_ptr();
                    for j in 0..d {
                        let (y0, y1) = (_mm512_loadu_ps(y), _mm512_loadu_ps(y.add(16)));
                        y = y.add(P);
                        for (acc_g, row) in acc.iter_mut().zip(qr) {
                            let x = row.add(j);
                            acc_g[0] = _mm512_fmadd_ps(max_broadcast(y0, x), one, acc_g[0]);
                            acc_g[1] = _mm512_fmadd_ps(max_broadcast(y1, x), one, acc_g[1]);
                        }
                    }
                }
                for (g, acc_g) in acc.iter().enumerate() {
                    let i = i0 + g;
                    let (qs, qa) = (_mm512_set1_ps(q_sums[i]), _mm512_set1_ps(rows.q_abs[i]));
                    let row = &mut out[i * n_ent + e0..i * n_ent + e0 + width];
                    for h in 0..2 {
                        if masks[h] == 0 {
                            continue; // a last panel of <= 16 entities: no second half
                        }
                        // SAFETY: `sums` and `abs_sums` are padded to whole panels (16 floats
                        // at e0 + 16 h); the masked store writes only the `width` lanes inside
                        // `row`.
                        let refined = unsafe {
                            let es = _mm512_loadu_ps(table.sums.as_ptr().add(e0 + 16 * h));
                            let ea = _mm512_loadu_ps(table.abs_sums.as_ptr().add(e0 + 16 * h));
                            let m = acc_g[h];
                            let s = _mm512_add_ps(_mm512_sub_ps(m, qs), _mm512_sub_ps(m, es));
                            // Negation as a sign flip (as `-x`; `0 - x` differs at zero).
                            let neg =
                                _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s), sign));
                            _mm512_mask_storeu_ps(row.as_mut_ptr().add(16 * h), masks[h], neg);
                            // `needs_refine`: distance `s` < REFINE (q_abs + e_abs).
                            let limit = _mm512_mul_ps(refine, _mm512_add_ps(qa, ea));
                            _mm512_mask_cmp_ps_mask::<_CMP_LT_OQ>(masks[h], s, limit)
                        };
                        let mut bits = refined;
                        while bits != 0 {
                            let l = 16 * h + bits.trailing_zeros() as usize;
                            bits &= bits - 1;
                            let e = e0 + l;
                            row[l] = super::direct(rows.q(i), &rows.ent[e * d..(e + 1) * d]);
                        }
                    }
                }
            }
        }
        for (i, out_i) in out.chunks_exact_mut(n_ent).enumerate().skip(full_q) {
            for e0 in (0..n_ent).step_by(W) {
                tile(rows, i, table, e0, W.min(n_ent - e0), out_i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::supported_levels;
    use crate::testing::values;

    #[test]
    fn same_bits_at_every_level_and_close_to_the_direct_sum() {
        // Entity counts around the 32-entity blocks and 16-entity tiles, query counts around
        // the groups of four, widths of 1 to 200.
        for (nq, n_ent, d) in [
            (5, 7, 16),
            (4, 70, 200),
            (7, 33, 21),
            (1, 1, 7),
            (9, 64, 33),
        ] {
            let (q, ent) = (values(nq * d, 1), values(n_ent * d, 2));
            let table = L1Table::new(Par::Rayon, &ent, d);
            let mut want = vec![0f32; nq * n_ent];
            block(Level::Scalar, &q, &table, &ent, &mut want);
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
                block(level, &q, &table, &ent, &mut got);
                assert_eq!(got, want, "{level:?} ({nq}, {n_ent}, {d})");
            }
            assert_eq!(L1Table::new(Par::Seq, &ent, d).panels(), table.panels());
            assert_eq!(table.panels().as_ptr().align_offset(ALIGN), 0);
        }
    }

    #[test]
    fn cancelled_scores_are_recomputed_at_every_level() {
        // Values around 10; some entities 1e-3 per component from a query, in the first and
        // second half of a panel and in the last, partial one: their expansions cancel.
        let (nq, n_ent, d) = (9, 70, 33);
        let q: Vec<f32> = values(nq * d, 3).iter().map(|v| 10.0 + v).collect();
        let mut ent: Vec<f32> = values(n_ent * d, 4).iter().map(|v| 10.0 - v).collect();
        let close = [(0, 3), (2, 20), (5, 31), (8, 69), (4, 40)];
        for &(i, e) in &close {
            for j in 0..d {
                ent[e * d + j] = q[i * d + j] + if j % 2 == 0 { 1e-3 } else { -1e-3 };
            }
        }
        let table = L1Table::new(Par::Seq, &ent, d);
        let mut want = vec![0f32; nq * n_ent];
        block(Level::Scalar, &q, &table, &ent, &mut want);
        for &(i, e) in &close {
            let direct: f64 = (0..d)
                .map(|j| (q[i * d + j] as f64 - ent[e * d + j] as f64).abs())
                .sum();
            let got = -want[i * n_ent + e] as f64;
            assert!((got - direct).abs() <= 1e-4 * direct, "{got} vs {direct}");
        }
        for level in supported_levels() {
            let mut got = vec![f32::NAN; nq * n_ent];
            block(level, &q, &table, &ent, &mut got);
            assert_eq!(got, want, "{level:?}");
        }
    }
}
