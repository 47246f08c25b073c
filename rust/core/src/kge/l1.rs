//! 1-vs-all L1 scores (TransE-L1): `-sum_j |q_j - e_j|` for a block of query rows against
//! every entity.
//!
//! `|a - b| = 2 max(a, b) - a - b`, so the inner loop only sums `max(q_j, e_j)` (two vector
//! operations per element, max and add, instead of three: subtract, absolute value, add); the
//! score is `-((M - Q) + (M - E))` with `M = sum_j max(q_j, e_j)` and the row sums `Q = sum q`,
//! `E = sum e` computed once per row. The rounding error of `M - Q` is relative to the row
//! magnitudes, not to the distance: `score.rs` recomputes directly the scores small enough
//! for that to matter (its `REFINE`).
//!
//! Entities run in the vector lanes: the entity table is transposed once per call into panels
//! of 32 entities ([`L1Table`]: per panel, `d` rows of 32 values, contiguous, the last panel
//! zero-padded), and for each dimension `j` a register of 16 entities takes `max(q_j, e_j)`
//! against one broadcast query value and adds it to its own lane. Every lane is
//! one entity's sum over `j = 0..d` in order, the same order as the portable code, so every
//! SIMD level gives the same bits; there is no horizontal reduction, and 16 consecutive scores
//! are stored at once. The AVX-512 kernel holds four queries x 32 entities (eight registers) per
//! block: two loads and four broadcasts per sixteen vector operations.

use super::distance::lane_sum;
use crate::float::Float;
use crate::par::Par;
use crate::simd::{self, Kernel, Level};
use std::any::TypeId;

/// Entities per tile of the portable kernel (half a panel).
const W: usize = 16;
/// Entities per panel of the transposed table.
const P: usize = 32;

/// The entity table prepared for L1 scoring: transposed in panels, with its row sums.
pub(crate) struct L1Table<T> {
    /// Panel `b`, dimension `j`, lane `l`: `panels[(b * d + j) * P + l] = ent[(b * P + l), j]`
    /// (0 past the last entity).
    panels: Vec<T>,
    /// `sum_j ent[e, j]` (in [`lane_sum`] order), zero-padded to whole panels.
    sums: Vec<T>,
    /// `sum_j |ent[e, j]|`: the magnitude against which `score.rs` judges the cancellation in
    /// a score (and recomputes it directly when it is too small).
    pub(crate) abs_sums: Vec<T>,
    n_ent: usize,
    d: usize,
}

impl<T: Float> L1Table<T> {
    /// Transposes `ent (n_ent, d)` into panels (in parallel over panels) and sums its rows.
    pub(crate) fn new(par: Par, ent: &[T], d: usize) -> Self {
        let n_ent = ent.len().checked_div(d).unwrap_or(0);
        let n_panels = n_ent.div_ceil(P);
        let mut panels = vec![T::ZERO; n_panels * d * P];
        let jobs: Vec<(usize, &mut [T])> = panels.chunks_mut((d * P).max(1)).enumerate().collect();
        par.for_work(n_ent * d).for_each(jobs, |(b, panel)| {
            for l in 0..P.min(n_ent - b * P) {
                let row = &ent[(b * P + l) * d..(b * P + l + 1) * d];
                for (j, &v) in row.iter().enumerate() {
                    panel[j * P + l] = v;
                }
            }
        });
        let mut sums: Vec<T> = ent.chunks_exact(d.max(1)).map(lane_sum).collect();
        sums.resize(n_panels * P, T::ZERO);
        let abs_sums = (ent.chunks_exact(d.max(1)))
            .map(|row| row.iter().fold(T::ZERO, |a, &v| a + v.abs()))
            .take(n_ent)
            .collect();
        L1Table {
            panels,
            sums,
            abs_sums,
            n_ent,
            d,
        }
    }
}

/// `-sum_j |q_j - e_j|` from `m = sum_j max(q_j, e_j)` and the row sums (module notes).
#[inline(always)]
fn neg_l1_from_max<T: Float>(m: T, q_sum: T, e_sum: T) -> T {
    -((m - q_sum) + (m - e_sum))
}

/// `max(q, e)` as the x86 `max` instructions take it: `q` if greater, else `e`.
#[inline(always)]
fn max<T: Float>(q: T, e: T) -> T {
    if q > e {
        q
    } else {
        e
    }
}

/// `out[i * n_ent + e] = -sum_j |q[i, j] - ent[e, j]|` for the query rows `q (nq, d)`.
pub(crate) fn block<T: Float>(level: Level, q: &[T], table: &L1Table<T>, out: &mut [T]) {
    let d = table.d;
    let q_sums: Vec<T> = q.chunks_exact(d.max(1)).map(lane_sum).collect();
    assert_eq!(
        out.len(),
        q_sums.len() * table.n_ent,
        "l1 block: out has the wrong size"
    );
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>()
        && level.min(simd::detect()) == Level::Avx512
        && d > 0
    {
        // SAFETY: T is f32 (same type, same layout); the CPU has AVX-512 (checked just above).
        unsafe {
            let f = |s: &[T]| std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len());
            let o = std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut f32, out.len());
            let (et, es) = (f(&table.panels), f(&table.sums));
            x86::block_avx512(f(q), f(&q_sums), et, es, table.n_ent, d, o);
        }
        return;
    }
    simd::dispatch(
        level,
        Portable {
            q,
            q_sums: &q_sums,
            table,
            out,
        },
    )
}

/// Scores of entities `e0..e0 + w` (`e0` a multiple of [`W`], `w <= W`) for query `i` (`q_i`
/// its row), in lanes.
#[inline(always)]
fn tile<T: Float>(
    q_i: &[T],
    q_sum: T,
    table_panels: &[T],
    sums: &[T],
    e0: usize,
    w: usize,
    out_i: &mut [T],
) {
    let d = q_i.len();
    let (b, l0) = (e0 / P, e0 % P);
    let panel = &table_panels[b * d * P..(b + 1) * d * P];
    let mut acc = [T::ZERO; W];
    for (j, &qj) in q_i.iter().enumerate() {
        let row: &[T; W] = panel[j * P + l0..j * P + l0 + W]
            .try_into()
            .expect("tile in range");
        for l in 0..W {
            acc[l] = acc[l] + max(qj, row[l]);
        }
    }
    for l in 0..w {
        out_i[e0 + l] = neg_l1_from_max(acc[l], q_sum, sums[e0 + l]);
    }
}

/// The portable kernel (every type and level; compiled per level by `dispatch`).
struct Portable<'a, T> {
    q: &'a [T],
    q_sums: &'a [T],
    table: &'a L1Table<T>,
    out: &'a mut [T],
}

impl<T: Float> Kernel for Portable<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (n_ent, d) = (self.table.n_ent, self.table.d);
        let (et, es) = (&self.table.panels, &self.table.sums);
        for e0 in (0..n_ent).step_by(W) {
            let w = W.min(n_ent - e0);
            for (i, out_i) in self.out.chunks_exact_mut(n_ent.max(1)).enumerate() {
                let q_i = &self.q[i * d..(i + 1) * d];
                tile(q_i, self.q_sums[i], et, es, e0, w, out_i);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{tile, P, W};
    use std::arch::x86_64::*;

    /// Blocks of four queries x one panel of 32 entities (the last panel's padding lanes are
    /// computed but not stored); the queries past the last group of four go through the
    /// portable tile.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) fn block_avx512(
        q: &[f32],
        q_sums: &[f32],
        panels: &[f32],
        sums: &[f32],
        n_ent: usize,
        d: usize,
        out: &mut [f32],
    ) {
        let nq = q_sums.len();
        let full_q = nq - nq % 4;
        let sign = _mm512_set1_epi32(i32::MIN);
        for (b, panel) in panels.chunks_exact(d * P).enumerate() {
            let e0 = b * P;
            let width = P.min(n_ent - e0);
            let masks = [
                crate::simd::mask16(width),
                crate::simd::mask16(width.saturating_sub(16)),
            ];
            for i0 in (0..full_q).step_by(4) {
                let mut acc = [[_mm512_setzero_ps(); 2]; 4];
                let rows: [&[f32]; 4] = std::array::from_fn(|g| &q[(i0 + g) * d..(i0 + g + 1) * d]);
                for (j, y) in panel.chunks_exact(P).enumerate() {
                    // SAFETY: `y` holds P = 32 floats: two 16-float loads.
                    let (y0, y1) = unsafe {
                        (
                            _mm512_loadu_ps(y.as_ptr()),
                            _mm512_loadu_ps(y.as_ptr().add(16)),
                        )
                    };
                    for (acc_g, row) in acc.iter_mut().zip(&rows) {
                        let x = _mm512_set1_ps(row[j]);
                        acc_g[0] = _mm512_add_ps(acc_g[0], _mm512_max_ps(x, y0));
                        acc_g[1] = _mm512_add_ps(acc_g[1], _mm512_max_ps(x, y1));
                    }
                }
                for (g, acc_g) in acc.iter().enumerate() {
                    let qs = _mm512_set1_ps(q_sums[i0 + g]);
                    let row = &mut out[(i0 + g) * n_ent + e0..(i0 + g) * n_ent + e0 + width];
                    for h in 0..2 {
                        // SAFETY: `sums` is padded to whole panels (16 floats at e0 + 16 h);
                        // the masked store writes only the `width` lanes inside `row`.
                        unsafe {
                            let es = _mm512_loadu_ps(sums.as_ptr().add(e0 + 16 * h));
                            let m = acc_g[h];
                            let s = _mm512_add_ps(_mm512_sub_ps(m, qs), _mm512_sub_ps(m, es));
                            // Negation as a sign flip (as `-x`; `0 - x` differs at zero).
                            let neg =
                                _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s), sign));
                            _mm512_mask_storeu_ps(row.as_mut_ptr().add(16 * h), masks[h], neg);
                        }
                    }
                }
            }
        }
        for (i, out_i) in out.chunks_exact_mut(n_ent).enumerate().skip(full_q) {
            let q_i = &q[i * d..(i + 1) * d];
            for e0 in (0..n_ent).step_by(W) {
                tile(q_i, q_sums[i], panels, sums, e0, W.min(n_ent - e0), out_i);
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
            block(Level::Scalar, &q, &table, &mut want);
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
                block(level, &q, &table, &mut got);
                assert_eq!(got, want, "{level:?} ({nq}, {n_ent}, {d})");
            }
            assert_eq!(L1Table::new(Par::Seq, &ent, d).panels, table.panels);
        }
    }
}
