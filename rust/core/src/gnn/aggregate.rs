//! Neighbourhood aggregation: `out[d] = reduce_{e = (s -> d)} w_e * x[s]`, forward and backward.
//! Weights may be per head ([`Weights`]): head `h` scales its own group of feature columns.
//!
//! Reductions: sum, mean (the weighted sum divided by the in-degree), max and min (element-wise;
//! `arg[d, j]` records the edge that won, -1 for a node without in-edges). A node without
//! in-edges aggregates to 0. Duplicate edges count once each; self-loops are ordinary edges.
//!
//! Backward: `grad_x[s] = sum over edges e = (s -> d) of w_e * g[d]` (divided by deg(d) for mean;
//! for max/min only where `arg[d, j] == e`). Sum and mean compute it as a gather over the
//! transposed CSR by the forward kernel itself (the weights permuted to transposed edge order);
//! max/min as a scatter of the winning entries in destination order, each thread owning a range
//! of sources (the same order of adds, so the same bits). Optionally `grad_w[e] = <g[d], x[s]>`
//! (restricted to the winning features for max/min), gathered per destination row.

use super::{heads_of, Csr, Weights};
use crate::error::{Error, Result};
use crate::float::Float;
#[cfg(target_arch = "x86_64")]
use crate::float::{as_f32, as_f32_mut};
use crate::par::{Par, CHUNK, MIN_PARALLEL_WORK};
use crate::simd::{dispatch, Kernel, Level};

/// Edges per parallel work block.
const BLOCK_EDGES: usize = 1 << 12;
/// Edges per block of the forward pass (x features: `FORWARD_BLOCK_EDGES / f` edges).
const FORWARD_BLOCK_EDGES: usize = 1 << 17;

/// The reduction over a node's in-edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
}

impl Reduce {
    /// Parses `sum`, `mean`, `max`, `min`.
    pub fn parse(name: &str) -> Result<Reduce> {
        match name {
            "sum" | "add" => Ok(Reduce::Sum),
            "mean" => Ok(Reduce::Mean),
            "max" => Ok(Reduce::Max),
            "min" => Ok(Reduce::Min),
            other => Err(Error::Value(format!(
                "reduce: expected 'sum', 'mean', 'max' or 'min', got {other:?}"
            ))),
        }
    }
    fn extremum(self) -> bool {
        matches!(self, Reduce::Max | Reduce::Min)
    }
}

fn check_weights<T: Copy>(g: &Csr<'_>, weights: &Option<Weights<'_, T>>, f: usize) -> Result<()> {
    match weights {
        Some(w) => w.check(g.nnz(), f, "edge_weight"),
        None => Ok(()),
    }
}

/// Source `s` as a row of an `n`-row matrix, or None: the sum kernels test each source as they
/// gather it and stop at the first bad one (the caller then reports an error).
///
/// The test is a branch that a valid graph never takes, out of the loop. (A conditional move
/// instead put it on the gathers' address path: 30 % slower. A cold function taking the flag by
/// reference made LLVM keep the gather limit's sums on the stack: that kernel 2-5x slower.)
/// With the sources prefetched ([`PREFETCH_EDGES`]), a first form of this test (a never-taken
/// branch setting a flag) cost nothing measurable: at (100k nodes, 2M edges, 16 features), one
/// process, calls interleaved, medians, the forward took 1.55-1.61 ms with it and 1.56-1.62 ms
/// with no test at all. The pass over each block's sources before its gathers that it replaces
/// took 1.81 ms (it read the indices from memory ahead of the loop). Before the prefetch, the
/// same in-loop test was no faster than that pass.
#[inline(always)]
fn source_row(s: i64, n: usize) -> Option<usize> {
    ((s as u64) < n as u64).then_some(s as usize)
}

/// How far ahead of the gathers the edge loops prefetch the sources, in edges (2 KiB of int64
/// indices): the gathers' addresses depend on these loads. At (100k nodes, 2M edges, 16
/// features), 2 threads, one process, calls interleaved, medians, with no test of the sources:
/// the forward 1.51 / 1.31 / 1.29 / 1.26 ms prefetching 0 / 64 / 128 / 256 edges ahead, the
/// gather loop alone 1.16 -> 0.87 ms; at 64 features 0.86-0.93x, at 256 0.96-1.0x.
const PREFETCH_EDGES: usize = 256;

/// Asks for the cache line of the source `PREFETCH_EDGES` edges after `e` (a hint: nothing is
/// read past the end of `sources`, and a line already cached costs a load slot).
#[inline(always)]
fn prefetch_source(sources: &[i64], e: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch never faults, and `wrapping_add` makes no reference past the end.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(
                sources.as_ptr().wrapping_add(e + PREFETCH_EDGES) as *const i8
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (sources, e);
}

/// How many edges ahead the max/min loop prefetches the source rows it will compare. Its
/// loop over a row's features is too long for the out-of-order window to reach the next
/// edges' gathers, which then wait for memory one after another. On AVX2 (Zen 3), uniform
/// random graphs, best of 24 calls in two runs: 8 edges ahead took 20-26 ms at (20k nodes,
/// 0.4M edges, 256 features) against 29-35 ms for 32 (rows of 1 KiB: 32 of them fill L1),
/// and the same within the noise at 16 and 64 features.
const GATHER_AHEAD: usize = 8;

/// Asks for every cache line of row `s` of `x (n, f)` (a hint: a prefetch never faults, so
/// an index out of range is harmless here; the gather itself is checked).
#[inline(always)]
fn prefetch_row<T>(x: &[T], s: i64, f: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = f * std::mem::size_of::<T>();
        let start = (x.as_ptr() as *const i8).wrapping_add((s as usize).wrapping_mul(bytes));
        for line in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults; `wrapping_add` makes no reference.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, s, f);
}

/// `out[k, t0..t0 + N] = sum over edges e in indptr[k]..indptr[k + 1] of w_e * x[sources[e],
/// t0..t0 + N]` for every row `k` of a block (`indptr`: the block's `rows + 1` offsets into
/// `sources`), in one pass over the block's edges, the sums in registers (`weight(e)`: of edge
/// `e`).
///
/// One loop over the edges, not one per row: a row's end is a branch inside the edge stream,
/// so the gathers of the next row are already in the stream when it is taken. (A loop per row,
/// with each row's sources tested before its gathers, ended in branches of unpredictable trip
/// count, each mispredict draining the gathers in flight: ~90 cycles a row on Zen 4, the
/// forward pass 2.9x slower than its gathers alone. This loop made it 1.3-2.6x faster for 16-70
/// features, in one process with the calls interleaved, and the same for 128-256. Storing
/// every edge's running sum with a branchless reset at row ends instead was 1.1-4x slower.)
/// Edges alternate between two sets of sums, even and odd edges of the block, added when the
/// row ends: half the chain of dependent adds. Every tile width sums in this order, so the bits
/// depend on the graph alone, not on the tile widths (which depend on the SIMD level).
///
/// (Visiting rows by increasing in-degree, so that the per-row loop ended where the branch
/// predictor expected, was 1.2-1.5x faster on the Xeon and 1.3-1.9x slower on Zen 4. On Zen 4, in a
/// standalone AVX-512 loop of this shape at (100k, 2M, 16), one thread, against this loop in the
/// same run: masked stores at every edge with masked resets were 1.30-1.35x slower, two rows per
/// loop 1.19-1.36x, a fixed 32-slot loop per row with the slots past its end masked 1.08-1.13x; see
/// the README.)
///
/// Each source is tested as it is gathered ([`source_row`]); at one that is not a row of `x`, `bad`
/// is set and the loop stops (the output is then incomplete). The loop prefetches the sources ahead
/// ([`PREFETCH_EDGES`]), not the feature rows they name: prefetching the rows ahead was measured
/// and gained nothing on an Intel Xeon, and prefetching the next rows' feature rows on Zen 4 made
/// the forward 1.0-1.4x slower (the out-of-order core already overlaps these gathers).
///
/// # Safety
/// With `STREAM`, the tiles are whole lines ([`whole_lines`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn sum_rows<T: Float, const N: usize, const WEIGHTED: bool, const STREAM: bool>(
    indptr: &[i64],
    sources: &[i64],
    x: &[T],
    (f, t0): (usize, usize),
    weight: impl Fn(usize) -> T,
    mean: bool,
    out: &mut [T],
    bad: &mut bool,
) {
    let n_rows = indptr.len() - 1;
    assert!(t0 + N <= f && out.len() == n_rows * f, "tile outside out");
    let n_src = x.len() / f;
    let row = |s: usize| -> &[T; N] {
        // SAFETY: `s < n_src = x.len() / f` (tested by `source_row`), so
        // `s * f + t0 + N <= (s + 1) * f <= x.len()`.
        unsafe { &*(x.as_ptr().add(s * f + t0) as *const [T; N]) }
    };
    let mut store = |k: usize, v: [T; N]| {
        let dst = &mut out[k * f + t0..k * f + t0 + N];
        if STREAM {
            // SAFETY: the caller chose STREAM from `whole_lines` for this tile.
            unsafe { store_streaming(dst, &v) };
        } else {
            dst.copy_from_slice(&v);
        }
    };
    let end_of = |k: usize| indptr[k + 1] as usize;
    let (first, last) = (indptr[0] as usize, indptr[n_rows] as usize);
    // Row `k` is the next to finish; rows without edges are written as they are passed.
    let mut k = 0;
    while k < n_rows && end_of(k) == first {
        store(k, [T::ZERO; N]);
        k += 1;
    }
    let mut end = if k < n_rows { end_of(k) } else { last };
    let (mut even, mut odd) = ([T::ZERO; N], [T::ZERO; N]);
    let mut e = first;
    macro_rules! add {
        ($acc:ident) => {{
            let Some(s) = source_row(sources[e], n_src) else {
                *bad = true;
                return;
            };
            let (r, we) = (row(s), weight(e));
            for j in 0..N {
                $acc[j] = $acc[j] + if WEIGHTED { we * r[j] } else { r[j] };
            }
            e += 1;
            if e == end {
                let mut sum = [T::ZERO; N];
                for j in 0..N {
                    sum[j] = even[j] + odd[j];
                }
                if mean {
                    // Here, while the row is in registers: a pass after the streaming stores
                    // read the lines back from memory (0.52 against 0.29 ms at 5k x 256).
                    let n = T::of((end - indptr[k] as usize) as f64);
                    for v in sum.iter_mut() {
                        *v = *v / n;
                    }
                }
                store(k, sum);
                (even, odd) = ([T::ZERO; N], [T::ZERO; N]);
                k += 1;
                while k < n_rows && end_of(k) == e {
                    store(k, [T::ZERO; N]);
                    k += 1;
                }
                end = if k < n_rows { end_of(k) } else { last };
            }
        }};
    }
    while e < last {
        prefetch_source(sources, e);
        add!(even);
        if e < last {
            add!(odd);
        }
    }
}

/// [`sum_rows`] for float32 tiles of `16 K` features (`K` = 4 or 8) whose rows start `shift`
/// floats (1 to 15) past a 64-byte line, at the AVX-512 level. There every 64-byte load of a
/// row straddles two lines, and the gathers ran 1.1-1.3x slower than from rows on lines
/// (NumPy puts large arrays 16 bytes past a line). Here each edge loads the `K + 1` whole
/// lines its row's tile spans, the first and the last masked to the tile's lanes, into `K + 1`
/// sums in line coordinates; a row's sums are shifted into place once, when it is stored.
/// The same additions in the same order as [`sum_rows`]: the same bits. Its walk over the
/// edge stream (row ends, rows without edges) is [`sum_rows`]'s, written out again on purpose:
/// a shared driver taking the arithmetic as closures kept these sums on the stack (1.8x
/// slower). A change to one walk belongs in both (`tests/gnn.rs` compares their bits).
///
/// # Safety
/// As [`sum_rows`] with `N = 16 K`; the CPU runs AVX-512F; `x.as_ptr() + s f + t0` lies
/// `shift` floats past a 64-byte line for every row `s` of `x` (`f` a multiple of 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_rows_shifted<const K: usize, const WEIGHTED: bool, const STREAM: bool>(
    indptr: &[i64],
    sources: &[i64],
    x: &[f32],
    (f, t0, shift): (usize, usize, usize),
    weight: impl Fn(usize) -> f32,
    mean: bool,
    out: &mut [f32],
    bad: &mut bool,
) {
    use std::arch::x86_64::*;
    let n_rows = indptr.len() - 1;
    assert!(K == 4 || K == 8, "sum_rows_shifted: tiles of 4 or 8 lines");
    assert!(
        t0 + 16 * K <= f && out.len() == n_rows * f,
        "tile outside out"
    );
    assert!((1..16).contains(&shift), "shift: 1 to 15 floats");
    // Line 0 holds the tile's first 16 - shift floats in lanes shift..16, line K its last
    // `shift` floats in lanes 0..shift; lines 1..K lie inside the tile.
    let head: __mmask16 = !((1u16 << shift) - 1);
    let tail: __mmask16 = (1u16 << shift) - 1;
    // Output lane l of register i is lane shift + l of the sums of lines i, i + 1.
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(shift as i32));
    let zero = _mm512_setzero_ps();
    // The first line of the tile of row `s` of x (tested by [`source_row`]). Wrapping
    // arithmetic: for row 0 and t0 = 0 it starts before x; the lanes there are masked off and
    // never read.
    let n_src = x.len() / f;
    let line = |s: usize| x.as_ptr().wrapping_add(s * f + t0).wrapping_sub(shift);
    // A macro, not a closure: with the stores in a closure (and loops over the lines, below)
    // LLVM kept the sums on the stack (1.7x slower than sum_rows).
    macro_rules! store {
        ($k:expr, $v:expr) => {{
            let dst = out[$k * f + t0..$k * f + t0 + 16 * K].as_mut_ptr();
            each_line!(|i| {
                if i < K {
                    // SAFETY: `dst` holds 16 K floats; with STREAM the caller checked that the
                    // tile is whole lines (`whole_lines`), so each 16-float store is aligned.
                    unsafe {
                        if STREAM {
                            _mm512_stream_ps(dst.add(16 * i), $v[i]);
                        } else {
                            _mm512_storeu_ps(dst.add(16 * i), $v[i]);
                        }
                    }
                }
            });
        }};
    }
    // `$body` for each line j = 0..=K as a constant index: loops over the lines were not
    // unrolled, and indexing the sums with a variable kept them on the stack (1.8x slower).
    macro_rules! each_line {
        (|$j:ident| $body:block) => {{
            each_line!(@ $j $body; 0 1 2 3 4 5 6 7 8)
        }};
        (@ $j:ident $body:block; $($n:literal)*) => {{
            $(
                #[allow(unused_comparisons)]
                if $n <= K {
                    let $j: usize = $n;
                    $body
                }
            )*
        }};
    }
    let end_of = |k: usize| indptr[k + 1] as usize;
    let (first, last) = (indptr[0] as usize, indptr[n_rows] as usize);
    let mut k = 0;
    let zeros = [zero; 9];
    while k < n_rows && end_of(k) == first {
        store!(k, zeros);
        k += 1;
    }
    let mut end = if k < n_rows { end_of(k) } else { last };
    // K + 1 lines are used of 9 (generic array lengths cannot be K + 1 on stable Rust).
    let (mut even, mut odd) = ([zero; 9], [zero; 9]);
    let mut e = first;
    macro_rules! add {
        ($acc:ident) => {{
            let Some(s) = source_row(sources[e], n_src) else {
                *bad = true;
                return;
            };
            let (p, wv) = (line(s), _mm512_set1_ps(weight(e)));
            let add = |acc: __m512, v: __m512| {
                _mm512_add_ps(acc, if WEIGHTED { _mm512_mul_ps(wv, v) } else { v })
            };
            // SAFETY: `s` is a row of x (`source_row`); `p` is on a line (the caller's
            // guarantee on `shift`) and lines 1..K lie inside the row's tile, inside x; lines 0
            // and K load only the lanes in it.
            unsafe {
                each_line!(|j| {
                    let pj = p.wrapping_add(16 * j);
                    let v = if j == 0 {
                        _mm512_maskz_load_ps(head, pj)
                    } else if j == K {
                        _mm512_maskz_load_ps(tail, pj)
                    } else {
                        _mm512_load_ps(pj)
                    };
                    $acc[j] = add($acc[j], v);
                });
            }
            e += 1;
            if e == end {
                let mut sum = [zero; 10]; // K + 1 of them (10: sum[i + 1] below stays in range)
                each_line!(|j| {
                    sum[j] = _mm512_add_ps(even[j], odd[j]);
                });
                let mut v = [zero; 9]; // K of them
                each_line!(|i| {
                    if i < K {
                        v[i] = _mm512_permutex2var_ps(sum[i], idx, sum[i + 1]);
                    }
                });
                if mean {
                    let n = _mm512_set1_ps((end - indptr[k] as usize) as f64 as f32);
                    each_line!(|i| {
                        if i < K {
                            v[i] = _mm512_div_ps(v[i], n);
                        }
                    });
                }
                store!(k, v);
                // Constant indices: a loop here became a memset, which kept the sums in memory.
                even = [zero, zero, zero, zero, zero, zero, zero, zero, zero];
                odd = [zero, zero, zero, zero, zero, zero, zero, zero, zero];
                k += 1;
                while k < n_rows && end_of(k) == e {
                    store!(k, zeros);
                    k += 1;
                }
                end = if k < n_rows { end_of(k) } else { last };
            }
        }};
    }
    while e < last {
        prefetch_source(sources, e);
        add!(even);
        if e < last {
            add!(odd);
        }
    }
}

/// Whether the tiles of `N` values at `out + k f + t0` are whole 64-byte cache lines (the output
/// aligned, rows and tiles multiples of a line), so that [`store_streaming`] may write them,
/// and at least four lines: streaming single-line tiles (16 float32 features) made the forward
/// 1.3x slower at (100k, 2M, 16), in one process, calls interleaved.
#[inline(always)]
fn whole_lines<T, const N: usize>(out: *const T, f: usize, t0: usize) -> bool {
    const LINE: usize = 64;
    let size = std::mem::size_of::<T>();
    cfg!(target_arch = "x86_64")
        && (out as usize + t0 * size).is_multiple_of(LINE)
        && (f * size).is_multiple_of(LINE)
        && (N * size).is_multiple_of(LINE)
        && N * size >= 4 * LINE
}

/// `dst = v` with non-temporal stores: whole lines go to memory without being read first (a
/// normal store reads each line of the output from memory before writing it: for a 25.6 MB
/// output, 51 MB of traffic instead of 26). The kernel that uses it ends with [`store_fence`].
///
/// # Safety
/// `dst` must start on a 64-byte line and `v` be whole lines ([`whole_lines`]).
#[inline(always)]
unsafe fn store_streaming<T: Copy, const N: usize>(dst: &mut [T], v: &[T; N]) {
    assert_eq!(dst.len(), N, "store_streaming: a tile of the wrong size");
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let (d, src) = (
            dst.as_mut_ptr() as *mut __m128i,
            v.as_ptr() as *const __m128i,
        );
        for i in 0..std::mem::size_of_val(v) / 16 {
            // SAFETY: `dst` and `v` hold `N` values each (asserted), `size_of_val(v)` bytes, a
            // multiple of 64, and `dst` starts on a line (the caller's guarantee), so each
            // 16-byte store is aligned and inside `dst`. SSE2 is part of x86_64.
            unsafe { _mm_stream_si128(d.add(i), _mm_loadu_si128(src.add(i))) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(v);
}

/// Orders the streaming stores before whatever the thread does next (they are weakly ordered:
/// the job's completion must not become visible before its output).
#[inline(always)]
fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// The last, narrower tile of one row (as [`sum_rows`], with bounds-checked gathers). False if a
/// source is not a row of `x`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sum_tile_dyn<T: Float>(
    sources: &[i64],
    edges: std::ops::Range<usize>,
    x: &[T],
    f: usize,
    t0: usize,
    w: Option<Weights<'_, T>>,
    h: usize,
    mean: bool,
    acc: &mut [T],
) -> bool {
    acc.fill(T::ZERO);
    let deg = edges.len();
    let n_src = x.len() / f;
    for e in edges {
        let Some(s) = usize::try_from(sources[e]).ok().filter(|&s| s < n_src) else {
            return false;
        };
        let xs = &x[s * f + t0..s * f + t0 + acc.len()];
        let we = w.map_or(T::ONE, |w| w.at(e, h));
        for (a, &v) in acc.iter_mut().zip(xs) {
            *a = *a + we * v;
        }
    }
    if mean && deg > 0 {
        let n = T::of(deg as f64);
        for a in acc.iter_mut() {
            *a = *a / n;
        }
    }
    true
}

/// Whether the kernels run at the AVX-512 level, where float32 tiles of 128 features
/// fit the 32 vector registers ([`Tiling`]).
fn wide_tiles(level: Level) -> bool {
    level.min(crate::simd::detect()) == Level::Avx512
}

/// How [`sum_tiles`] may run: `wide`, float32 tiles of 128 features (two sets of 8 AVX-512
/// registers; at the AVX2 level, with 16 registers of half the width, tiles of at most 64: a
/// 256-wide tile there was 1.2x slower than 64-wide ones at 256 features); `stream`, streaming
/// stores for the tiles of whole lines (for outputs of [`STREAM_MIN_BYTES`] and more: a smaller
/// one stays in cache for whoever reads it next); `mean`, each row divided by its in-degree as it
/// is stored.
#[derive(Clone, Copy, Debug)]
struct Tiling {
    wide: bool,
    stream: bool,
    mean: bool,
}

/// Outputs of at least this many bytes are streamed ([`Tiling`]): a quarter of the 32 MiB L3
/// of this machine kind. Measured: (100k nodes, 1M edges, 64 features), 25.6 MB, 1.2x faster
/// streamed; (20k, 0.4M, 256), 20.5 MB, unchanged.
const STREAM_MIN_BYTES: usize = 8 << 20;

/// `out[k, cols] = sum over edges e in indptr[k]..indptr[k + 1] of w_e * x[sources[e], cols]`
/// for every row `k` of a block, the columns in register tiles ([`sum_rows`]) of up to 128
/// float32 features (two sets of 8 AVX-512 registers; 16 at a single set of 256 was no faster)
/// or 32 float64; narrow fixed tiles keep small feature counts in registers too.
///
/// Sets `bad` if a source is not a row of `x`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sum_tiles<T: Float>(
    indptr: &[i64],
    sources: &[i64],
    x: &[T],
    f: usize,
    cols: std::ops::Range<usize>,
    w: Option<Weights<'_, T>>,
    h: usize,
    tiling: Tiling,
    out: &mut [T],
    bad: &mut bool,
) {
    // Features but no row of x to gather: every edge is bad (the callers refuse such a graph
    // first). With no features nothing is gathered.
    if f > 0 && x.len() < f && indptr[0] < indptr[indptr.len() - 1] {
        *bad = true;
        return;
    }
    let mut t0 = cols.start;
    let mean = tiling.mean;
    while t0 < cols.end {
        let width = cols.end - t0;
        macro_rules! tile {
            ($n:literal) => {{
                let at = (f, t0);
                let shifted =
                    sum_tile_shifted::<T, $n>(indptr, sources, x, at, w, h, tiling, out, bad);
                if !shifted {
                    // SAFETY: `stream` only for tiles of whole lines.
                    unsafe {
                        let stream = tiling.stream && whole_lines::<T, $n>(out.as_ptr(), f, t0);
                        match (w, stream) {
                            (Some(w), false) => {
                                let wt = |e| w.at(e, h);
                                sum_rows::<T, $n, true, false>(
                                    indptr, sources, x, at, wt, mean, out, bad,
                                )
                            }
                            (Some(w), true) => {
                                let wt = |e| w.at(e, h);
                                sum_rows::<T, $n, true, true>(
                                    indptr, sources, x, at, wt, mean, out, bad,
                                )
                            }
                            (None, false) => {
                                let one = |_| T::ONE;
                                sum_rows::<T, $n, false, false>(
                                    indptr, sources, x, at, one, mean, out, bad,
                                )
                            }
                            (None, true) => {
                                let one = |_| T::ONE;
                                sum_rows::<T, $n, false, true>(
                                    indptr, sources, x, at, one, mean, out, bad,
                                )
                            }
                        }
                    }
                }
                $n
            }};
        }
        let f32 = std::mem::size_of::<T>() <= 4;
        let wide = f32 && tiling.wide;
        let done = if width >= 128 && wide {
            tile!(128)
        } else if width >= 64 && f32 {
            tile!(64)
        } else if width >= 32 {
            tile!(32)
        } else if width >= 16 {
            tile!(16)
        } else if width >= 8 {
            tile!(8)
        } else {
            for k in 0..indptr.len() - 1 {
                let edges = indptr[k] as usize..indptr[k + 1] as usize;
                let acc = &mut out[k * f + t0..k * f + cols.end];
                *bad |= !sum_tile_dyn(sources, edges, x, f, t0, w, h, mean, acc);
            }
            width
        };
        t0 += done;
    }
}

/// Runs a tile of `N` features with [`sum_rows_shifted`] when that applies: float32 rows of
/// whole lines (`f` a multiple of 16) that start past a line, tiles of 64 or 128 features, at
/// the AVX-512 level (`tiling.wide`). False, having done nothing, otherwise. Sets `bad` as
/// [`sum_rows`] does.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sum_tile_shifted<T: Float, const N: usize>(
    indptr: &[i64],
    sources: &[i64],
    x: &[T],
    (f, t0): (usize, usize),
    w: Option<Weights<'_, T>>,
    h: usize,
    tiling: Tiling,
    out: &mut [T],
    bad: &mut bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !tiling.wide || (N != 64 && N != 128) || !f.is_multiple_of(16) {
            return false;
        }
        let (Some(x32), Some(out32)) = (as_f32(x), as_f32_mut(out)) else {
            return false;
        };
        let at = x32.as_ptr() as usize + 4 * t0;
        if at.is_multiple_of(64) {
            return false; // rows on lines: sum_rows
        }
        let shift = (at % 64) / 4;
        let stream = tiling.stream && whole_lines::<f32, N>(out32.as_ptr(), f, t0);
        let w32 = w.map(|w| {
            (
                as_f32(w.w).expect("float32 weights with float32 x"),
                w.heads,
            )
        });
        let (at, mean) = ((f, t0, shift), tiling.mean);
        macro_rules! run {
            ($k:literal) => {
                // SAFETY: AVX-512F from `tiling.wide`; every row starts `shift` floats past a
                // line (x does, and rows are whole lines); `stream` only for whole lines.
                unsafe {
                    match (w32, stream) {
                        (Some((ws, hs)), false) => {
                            let wt = |e: usize| ws[e * hs + h];
                            sum_rows_shifted::<$k, true, false>(
                                indptr, sources, x32, at, wt, mean, out32, bad,
                            )
                        }
                        (Some((ws, hs)), true) => {
                            let wt = |e: usize| ws[e * hs + h];
                            sum_rows_shifted::<$k, true, true>(
                                indptr, sources, x32, at, wt, mean, out32, bad,
                            )
                        }
                        (None, false) => {
                            let one = |_| 1.0;
                            sum_rows_shifted::<$k, false, false>(
                                indptr, sources, x32, at, one, mean, out32, bad,
                            )
                        }
                        (None, true) => {
                            let one = |_| 1.0;
                            sum_rows_shifted::<$k, false, true>(
                                indptr, sources, x32, at, one, mean, out32, bad,
                            )
                        }
                    }
                }
            };
        }
        if N == 128 {
            run!(8)
        } else {
            run!(4)
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (indptr, sources, x, f, t0, w, h, tiling, out, bad);
        false
    }
}

/// One block of destination rows of the forward pass.
struct Forward<'a, T> {
    g: Csr<'a>,
    rows: std::ops::Range<usize>,
    x: &'a [T],
    f: usize,
    w: Option<Weights<'a, T>>,
    reduce: Reduce,
    /// Wide tiles and streaming (see [`Tiling`]); `mean` follows `reduce`.
    wide: bool,
    stream: bool,
    out: &'a mut [T],
    arg: &'a mut [i64],
}

impl<T: Float> Forward<'_, T> {
    /// Max (`MAX`) or min aggregation of the block's rows: the first in-edge's values, then
    /// every later edge's where they are greater (smaller). Each row goes through its
    /// features in tiles of [`EXTREME_TILE`] kept in registers over all its edges, with
    /// selects rather than branches. A branch per element took ~2 ns an element on AVX2
    /// (Zen 3), 8x the time of the sum at (100k nodes, 1M edges, 64 features).
    #[inline(always)]
    fn extremes<const MAX: bool>(self, heads: usize, fh: usize) {
        let (f, x, sources, w) = (self.f, self.x, self.g.indices(), self.w);
        for k in 0..self.rows.len() {
            let acc = &mut self.out[k * f..(k + 1) * f];
            let arg = &mut self.arg[k * f..(k + 1) * f];
            let edges = self.g.row(self.rows.start + k);
            if edges.is_empty() {
                acc.fill(T::ZERO);
                arg.fill(-1);
                continue;
            }
            for h in 0..heads {
                let weight = |e: usize| w.map_or(T::ONE, |w| w.at(e, h));
                // Tiles of 16, then of 8, then single columns: two or more independent
                // compare-and-select chains per edge where the head is wide enough.
                let (mut c, end) = (h * fh, (h + 1) * fh);
                while c < end {
                    let prefetch = c == 0; // the first tile's pass asks for the whole rows
                    let width = match end - c {
                        n if n >= 2 * EXTREME_TILE => 2 * EXTREME_TILE,
                        n if n >= EXTREME_TILE => EXTREME_TILE,
                        _ => 1,
                    };
                    let (a, g) = (&mut acc[c..c + width], &mut arg[c..c + width]);
                    let edges = edges.clone();
                    match width {
                        16 => extreme_tile::<T, MAX, 16>(
                            edges, sources, x, f, c, weight, prefetch, a, g,
                        ),
                        8 => extreme_tile::<T, MAX, 8>(
                            edges, sources, x, f, c, weight, prefetch, a, g,
                        ),
                        _ => extreme_tile::<T, MAX, 1>(
                            edges, sources, x, f, c, weight, prefetch, a, g,
                        ),
                    }
                    c += width;
                }
            }
        }
    }
}

/// Features per register tile of the max/min forward: one AVX2 register of f32 (the loop
/// takes two where a head has 16 columns left).
const EXTREME_TILE: usize = 8;

/// Max (`MAX`) or min over `edges` of `weight(e) * x[sources[e], c..c + W]` into `acc`, and
/// the winning edge of each column into `arg`. The first edge wins ties (strict
/// comparisons); a NaN wins over any number, as in NumPy's max (reachable with the
/// finiteness check off), and the first NaN stays.
///
/// The winners are kept as 32-bit offsets from the row's first edge, so that one compare mask
/// selects both the values and the offsets (64-bit edge numbers took a conversion of every
/// mask); a row of more in-edges than that takes [`extreme_column`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn extreme_tile<T: Float, const MAX: bool, const W: usize>(
    edges: std::ops::Range<usize>,
    sources: &[i64],
    x: &[T],
    f: usize,
    c: usize,
    weight: impl Fn(usize) -> T,
    prefetch: bool,
    acc: &mut [T],
    arg: &mut [i64],
) {
    if edges.len() > u32::MAX as usize {
        for l in 0..W {
            extreme_column::<T, MAX>(
                edges.clone(),
                sources,
                x,
                f,
                c + l,
                &weight,
                &mut acc[l],
                &mut arg[l],
            );
        }
        return;
    }
    let gather = |e: usize| {
        let s = sources[e] as usize;
        &x[s * f + c..s * f + c + W]
    };
    let (mut a, mut g) = ([T::ZERO; W], [0u32; W]);
    let (we, xs) = (weight(edges.start), gather(edges.start));
    for l in 0..W {
        a[l] = we * xs[l];
    }
    for e in edges.start + 1..edges.end {
        if prefetch {
            if let Some(&ahead) = sources.get(e + GATHER_AHEAD) {
                prefetch_row(x, ahead, f);
            }
        }
        let (we, xs) = (weight(e), gather(e));
        let offset = (e - edges.start) as u32;
        for l in 0..W {
            let v = we * xs[l];
            // Greater (smaller), or a NaN, unless the value kept is a NaN already: a compare
            // that is true when unordered, and one for the kept value (`a == a`: not NaN).
            #[allow(clippy::eq_op, clippy::neg_cmp_op_on_partial_ord)]
            let take = (if MAX { !(v <= a[l]) } else { !(v >= a[l]) }) & (a[l] == a[l]);
            a[l] = if take { v } else { a[l] };
            g[l] = if take { offset } else { g[l] };
        }
    }
    acc.copy_from_slice(&a);
    for (dst, &o) in arg.iter_mut().zip(&g) {
        *dst = (edges.start + o as usize) as i64;
    }
}

/// [`extreme_tile`] for one column, with 64-bit edge numbers (rows of more than `u32::MAX`
/// in-edges).
#[allow(clippy::too_many_arguments)]
fn extreme_column<T: Float, const MAX: bool>(
    edges: std::ops::Range<usize>,
    sources: &[i64],
    x: &[T],
    f: usize,
    c: usize,
    weight: &impl Fn(usize) -> T,
    acc: &mut T,
    arg: &mut i64,
) {
    for e in edges.clone() {
        let v = weight(e) * x[sources[e] as usize * f + c];
        let better = if MAX { v > *acc } else { v < *acc };
        if e == edges.start || (!acc.is_nan() && (better || v.is_nan())) {
            (*acc, *arg) = (v, e as i64);
        }
    }
}

impl<T: Float> Kernel for Forward<'_, T> {
    /// False if a source index was out of range (sum and mean test them as they gather).
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let f = self.f;
        let heads = heads_of(&self.w);
        let fh = f / heads;
        if matches!(self.reduce, Reduce::Sum | Reduce::Mean) {
            if self.rows.is_empty() {
                return true;
            }
            let indptr = &self.g.indptr()[self.rows.start..=self.rows.end];
            let (sources, x, w) = (self.g.indices(), self.x, self.w);
            let tiling = Tiling {
                wide: self.wide,
                stream: self.stream,
                mean: self.reduce == Reduce::Mean,
            };
            // Tiles never cross a head's columns. The sources are tested as they are gathered.
            let mut bad = false;
            for h in 0..heads {
                let cols = h * fh..(h + 1) * fh;
                sum_tiles(
                    indptr, sources, x, f, cols, w, h, tiling, self.out, &mut bad,
                );
            }
            store_fence();
            return !bad;
        }
        // Max/min: rows in CSR order, features in register tiles (`extremes`).
        if self.reduce == Reduce::Max {
            self.extremes::<true>(heads, fh);
        } else {
            self.extremes::<false>(heads, fh);
        }
        true
    }
}

/// Forward aggregation of `x (n_src, f)` into `out (n_dst, f)` along `g` (rows = destinations).
/// `arg (n_dst, f)` receives the winning edge for max/min (and is not touched otherwise).
#[allow(clippy::too_many_arguments)]
pub fn aggregate<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    x: &[T],
    f: usize,
    weights: Option<Weights<'_, T>>,
    reduce: Reduce,
    out: &mut [T],
    arg: Option<&mut [i64]>,
) -> Result<()> {
    if x.len() != g.n_cols() * f {
        return Err(Error::Shape {
            arg: "x".into(),
            expected: vec![g.n_cols(), f],
            got: vec![x.len()],
        });
    }
    if out.len() != g.n_rows() * f {
        return Err(Error::len("out", g.n_rows() * f, out.len()));
    }
    check_weights(&g, &weights, f)?;
    let mut no_arg: [i64; 0] = [];
    let arg: &mut [i64] = match (reduce.extremum(), arg) {
        (true, Some(a)) if a.len() == g.n_rows() * f => a,
        (true, _) => {
            return Err(Error::Value(
                "arg: max/min need an (n_dst, f) int64 buffer".into(),
            ))
        }
        (false, _) => &mut no_arg,
    };
    // Blocks of about FORWARD_BLOCK_EDGES * 4 bytes of gathered features each.
    let blocks = g.blocks(FORWARD_BLOCK_EDGES / f.max(1));
    let wide = wide_tiles(level);
    let stream = std::mem::size_of_val(&*out) >= STREAM_MIN_BYTES;
    let mut jobs = Vec::with_capacity(blocks.len());
    let (mut out_rest, mut arg_rest) = (out, arg);
    for rows in blocks {
        let (o, orest) = std::mem::take(&mut out_rest).split_at_mut(rows.len() * f);
        let a_len = if reduce.extremum() { rows.len() * f } else { 0 };
        let (a, arest) = std::mem::take(&mut arg_rest).split_at_mut(a_len);
        out_rest = orest;
        arg_rest = arest;
        jobs.push(Forward {
            g,
            rows,
            x,
            f,
            w: weights,
            reduce,
            wide,
            stream,
            out: o,
            arg: a,
        });
    }
    // Max/min gather with checked indexing; with no source rows at all, every edge is bad (the
    // sum kernel's test of each source would find that too; this names the first one the same
    // way).
    if reduce.extremum() || (g.n_cols() == 0 && g.nnz() > 0) {
        g.check_indices()?;
    }
    let ok = par
        .for_work(g.nnz() * f)
        .map(jobs, |job| dispatch(level, job));
    if ok.contains(&false) {
        g.check_indices()?;
        return Err(Error::Value(
            "graph: an index out of range was not found again".into(),
        ));
    }
    Ok(())
}

/// One block of edges of [`gather_sum`].
struct Gather<'a, T> {
    g: Csr<'a>,
    edges: std::ops::Range<usize>,
    x: &'a [T],
    f: usize,
    wide: bool,
}

impl<T: Float> Kernel for Gather<'_, T> {
    type Output = (Vec<T>, bool);
    #[inline(always)]
    fn run(self) -> (Vec<T>, bool) {
        let mut acc = vec![T::ZERO; self.f];
        let (g, x, f) = (&self.g, self.x, self.f);
        // The block's edges as one row.
        let indptr = [self.edges.start as i64, self.edges.end as i64];
        let tiling = Tiling {
            wide: self.wide,
            stream: false,
            mean: false,
        };
        let mut bad = false;
        sum_tiles(
            &indptr,
            g.indices(),
            x,
            f,
            0..f,
            None,
            0,
            tiling,
            &mut acc,
            &mut bad,
        );
        (acc, !bad)
    }
}

/// The gathers of the sum aggregation alone, for benchmarks: the column sums of every edge's source
/// row, `sum over edges e = (s -> d) of x[s]` (the column sums of [`aggregate`]'s sum), made by the
/// forward kernel's own register-tiled gather loop ([`sum_rows`], sources tested as they are
/// gathered) over blocks of edges of the same size as the forward's, each block taken as one row:
/// no row ends, no output rows to write. Every sum aggregation must read every edge's source row;
/// this reads them with the forward's loads on the same threads, so its time is the limit of the
/// forward's gather loop on this machine (a kernel with a better loop could beat it: it is a bound
/// on this design, measured, not a law). Blocks are added in order: the same bits for any thread
/// count.
pub fn gather_sum<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    x: &[T],
    f: usize,
) -> Result<Vec<T>> {
    if x.len() != g.n_cols() * f {
        return Err(Error::Shape {
            arg: "x".into(),
            expected: vec![g.n_cols(), f],
            got: vec![x.len()],
        });
    }
    if g.n_cols() == 0 && g.nnz() > 0 {
        g.check_indices()?;
    }
    let block = (FORWARD_BLOCK_EDGES / f.max(1)).max(1);
    let jobs: Vec<_> = (0..g.nnz())
        .step_by(block)
        .map(|e0| Gather {
            g,
            edges: e0..(e0 + block).min(g.nnz()),
            x,
            f,
            wide: wide_tiles(level),
        })
        .collect();
    let parts = par
        .for_work(g.nnz() * f)
        .map(jobs, |job| dispatch(level, job));
    if parts.iter().any(|(_, ok)| !ok) {
        g.check_indices()?;
        return Err(Error::Value(
            "graph: an index out of range was not found again".into(),
        ));
    }
    let mut total = vec![T::ZERO; f];
    for (part, _) in parts {
        for (t, v) in total.iter_mut().zip(part) {
            *t = *t + v;
        }
    }
    Ok(total)
}

/// Max/min backward for one range of source rows (`sources`, whose rows of `grad_x` it
/// owns): `grad_x[s, j] += w_e * grad[d, j]` for every entry `(d, j)` whose winner
/// `e = arg[d, j]` is an edge from `s`, in increasing `d`.
///
/// A scatter in destination order: it reads `arg` and `grad` once, in order, and adds only the
/// entries that won. Every range scans all destinations and keeps the entries of its own
/// sources, so the ranges (one per thread) change who adds, never the order of the adds: each
/// `grad_x[s, j]` sums its terms by increasing `d`, hence by increasing forward edge, which is
/// also the transposed graph's order.
///
/// It replaced a gather over the transposed graph that read `arg[d]` (8 bytes a feature) at
/// every edge to find the few columns the edge had won. Best of 8 calls, Zen 3, 2 threads,
/// gather against scatter: the bench's power-law graphs (100k nodes, 1M edges, 64 features)
/// 270 against 23 ms, (100k, 2M, 16) 134 against 7.9, (20k, 0.4M, 256) 191 against 19;
/// uniform random graphs of those sizes 151 against 42, 86 against 11, 119 against 28.
struct ExtremeScatter<'a, T> {
    g: Csr<'a>,
    sources: std::ops::Range<usize>,
    grad: &'a [T],
    f: usize,
    w: Option<Weights<'a, T>>,
    arg: &'a [i64],
    grad_x: &'a mut [T],
}

impl<T: Float> Kernel for ExtremeScatter<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (f, lo, hi) = (self.f, self.sources.start, self.sources.end);
        if f == 0 {
            return; // no entries, and `chunks_exact` needs a non-zero size
        }
        let fh = f / heads_of(&self.w);
        let indices = self.g.indices();
        self.grad_x.fill(T::ZERO);
        // The adds for other ranges' sources go to `spare` instead of being skipped: a test
        // per entry mispredicted about half the time with two ranges (1.5-2x slower).
        let mut spare = vec![T::ZERO; f];
        for (winners, gd) in self.arg.chunks_exact(f).zip(self.grad.chunks_exact(f)) {
            for (j, (&e, &v)) in winners.iter().zip(gd).enumerate() {
                // -1: no in-edge. Every other winner is an in-edge of this row
                // (`check_winners`), so an index of `indices`.
                if e < 0 {
                    continue;
                }
                let s = indices[e as usize] as usize;
                let scale = self.w.map_or(T::ONE, |w| w.at(e as usize, j / fh));
                let (buf, k) = if s >= lo && s < hi {
                    (&mut *self.grad_x, s.wrapping_sub(lo) * f + j)
                } else {
                    (&mut spare[..], j)
                };
                buf[k] = buf[k] + scale * v;
            }
        }
    }
}

/// Gradient of the edge weights, per destination row block: for the sum and mean, per edge the
/// dot product of the destination's gradient row with the source's row (`sddmm::dot`, the
/// source rows prefetched `GATHER_AHEAD` edges ahead); for max/min, each row's columns added to
/// the weights of the edges that won them.
///
/// Timed on AVX2 (Zen 3), float32, two threads, in one process, interleaved with the previous
/// kernel (a per-edge sequential dot; for max/min that dot over the columns each edge won,
/// testing `arg` at every column of every edge). The weight gradient's time is the best of 6-10
/// calls of `aggregate_backward` with it minus the best without. On the bench's power-law graphs
/// (nodes, edges, F) = (100k, 1M, 64), (100k, 2M, 16), (20k, 0.4M, 256): sum 24 / 10-12 / 47-49
/// ms before, 12 / 9-9.5 / 16 after; max 42 / 17 / 42 ms before, 9.5 / 3.0 / 9.5 after (the
/// same bits). The prefetch took a uniform random graph (100k, 1M, 64) from 34 to 21 ms and was
/// within the noise on the power-law graphs (medians 0-5 % slower or faster in four runs).
struct WeightGrad<'a, T> {
    g: Csr<'a>,
    rows: std::ops::Range<usize>,
    x: &'a [T],
    grad: &'a [T],
    f: usize,
    heads: usize,
    reduce: Reduce,
    arg: &'a [i64],
    grad_w: &'a mut [T],
    first_edge: usize,
}

impl<T: Float> Kernel for WeightGrad<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (f, heads) = (self.f, self.heads);
        let fh = f / heads;
        if self.reduce.extremum() {
            // Each column of a row went to one in-edge (its winner, or none: -1), so the
            // row's columns are scattered to their winners' weights, each in increasing
            // column order: O(f) a row rather than a pass over the row for every edge.
            self.grad_w.fill(T::ZERO);
            for d in self.rows.clone() {
                let (gd, ad) = (
                    &self.grad[d * f..(d + 1) * f],
                    &self.arg[d * f..(d + 1) * f],
                );
                for (j, (&g, &a)) in gd.iter().zip(ad).enumerate() {
                    if a >= 0 {
                        let (e, h) = (a as usize, j / fh);
                        let s = self.g.indices()[e] as usize;
                        let w = &mut self.grad_w[(e - self.first_edge) * heads + h];
                        *w = *w + g * self.x[s * f + j];
                    }
                }
            }
            return;
        }
        for d in self.rows.clone() {
            let edges = self.g.row(d);
            let deg = edges.len();
            for e in edges {
                if let Some(&ahead) = self.g.indices().get(e + GATHER_AHEAD) {
                    prefetch_row(self.x, ahead, f);
                }
                let s = self.g.indices()[e] as usize;
                for h in 0..heads {
                    let (lo, hi) = (h * fh, (h + 1) * fh);
                    let gd = &self.grad[d * f + lo..d * f + hi];
                    let xs = &self.x[s * f + lo..s * f + hi];
                    let dot = super::sddmm::dot(xs, gd);
                    self.grad_w[(e - self.first_edge) * heads + h] = if self.reduce == Reduce::Mean
                    {
                        dot / T::of(deg as f64)
                    } else {
                        dot
                    };
                }
            }
        }
    }
}

/// Backward of [`aggregate`]: writes `grad_x (n_src, f)` from `grad (n_dst, f)` using the
/// transposed graph `gt` (rows = sources, `indices` = destinations, `perm[k]` = the forward
/// edge of transposed edge `k`) and, when given, the edge-weight gradient `grad_w (E, heads)`
/// (`heads` of the weights, 1 without weights).
/// `x` is needed only for `grad_w`; `arg` only for max/min (whose scatter reads of `gt` only
/// its row offsets, to balance the threads' source ranges).
#[allow(clippy::too_many_arguments)]
pub fn aggregate_backward<T: Float>(
    par: Par,
    level: Level,
    g: Csr<'_>,
    gt: Csr<'_>,
    perm: &[i64],
    x: &[T],
    f: usize,
    weights: Option<Weights<'_, T>>,
    reduce: Reduce,
    arg: Option<&[i64]>,
    grad: &[T],
    grad_x: &mut [T],
    grad_w: Option<&mut [T]>,
) -> Result<()> {
    // `perm` is read only to reorder the weights for the sum and mean.
    check_transposed(&g, &gt, perm, weights.is_some() && !reduce.extremum())?;
    if grad.len() != g.n_rows() * f {
        return Err(Error::Shape {
            arg: "grad_out".into(),
            expected: vec![g.n_rows(), f],
            got: vec![grad.len()],
        });
    }
    if grad_x.len() != g.n_cols() * f {
        return Err(Error::len("grad_x", g.n_cols() * f, grad_x.len()));
    }
    check_weights(&g, &weights, f)?;
    let heads = heads_of(&weights);
    let arg: &[i64] = match (reduce.extremum(), arg) {
        (true, Some(a)) if a.len() == g.n_rows() * f => a,
        (true, _) => {
            return Err(Error::Value(
                "arg: max/min need the forward pass's arg".into(),
            ))
        }
        (false, _) => &[],
    };
    if reduce.extremum() {
        check_winners(par, g, arg, f)?;
    }
    if grad_w.is_some() && x.len() != g.n_cols() * f {
        return Err(Error::Shape {
            arg: "x".into(),
            expected: vec![g.n_cols(), f],
            got: vec![x.len()],
        });
    }
    if grad_w
        .as_ref()
        .is_some_and(|gw| gw.len() != g.nnz() * heads)
    {
        return Err(Error::len(
            "grad_weight",
            g.nnz() * heads,
            grad_w.as_ref().map_or(0, |gw| gw.len()),
        ));
    }
    // Sum and mean check the transposed graph's indices as they gather; the max/min scatter
    // and the weight gradient take the sources from the graph itself and need them valid
    // first (the scatter would skip a source out of range).
    if reduce.extremum() || grad_w.is_some() {
        g.check_indices()?;
    }
    let par = par.for_work(g.nnz() * f);
    if reduce.extremum() {
        // grad_x: a scatter in destination order, one range of source rows a thread, the
        // ranges of about equal out-edges (`ExtremeScatter`).
        let parts = if f == 0 { 1 } else { par.threads().max(1) };
        let (t_ip, nnz) = (gt.indptr(), g.nnz());
        let mut bounds = vec![0usize];
        for k in 1..parts {
            let at = t_ip.partition_point(|&p| (p as usize) < nnz * k / parts);
            bounds.push(at.clamp(*bounds.last().unwrap(), g.n_cols()));
        }
        bounds.push(g.n_cols());
        let mut jobs = Vec::new();
        let mut rest = &mut *grad_x;
        for r in bounds.windows(2) {
            let (o, tail) = std::mem::take(&mut rest).split_at_mut((r[1] - r[0]) * f);
            rest = tail;
            jobs.push(ExtremeScatter {
                g,
                sources: r[0]..r[1],
                grad,
                f,
                w: weights,
                arg,
                grad_x: o,
            });
        }
        par.for_each(jobs, |job| dispatch(level, job));
    } else {
        // Sum and mean: grad_x is the forward sum aggregation over the transposed graph, with
        // the weights in transposed edge order and (mean) the gradient rows divided by the
        // in-degree first, so it runs on the register-tiled forward kernel.
        let w_t: Option<Vec<T>> = weights.map(|w| permuted(par, w.w, perm, heads));
        let scaled: Option<Vec<T>> = (reduce == Reduce::Mean).then(|| {
            let mut v = grad.to_vec();
            let deg = g.indptr().windows(2).map(|w| w[1] - w[0]);
            for (row, d) in v.chunks_exact_mut(f.max(1)).zip(deg) {
                if d > 0 {
                    let inv = T::ONE / T::of(d as f64);
                    row.iter_mut().for_each(|x| *x = *x * inv);
                }
            }
            v
        });
        let wt = w_t.as_deref().map(|w| Weights { w, heads });
        let source = scaled.as_deref().unwrap_or(grad);
        aggregate(par, level, gt, source, f, wt, Reduce::Sum, grad_x, None)?;
    }
    // grad_w: per destination row, in forward edge order.
    if let Some(gw) = grad_w {
        let mut jobs = Vec::new();
        let mut rest = gw;
        for rows in g.blocks(BLOCK_EDGES / f.max(1)) {
            let first_edge = g.indptr()[rows.start] as usize;
            let n = g.indptr()[rows.end] as usize - first_edge;
            let (o, r) = std::mem::take(&mut rest).split_at_mut(n * heads);
            rest = r;
            jobs.push(WeightGrad {
                g,
                rows,
                x,
                grad,
                f,
                heads,
                reduce,
                arg,
                grad_w: o,
                first_edge,
            });
        }
        par.for_each(jobs, |job| dispatch(level, job));
    }
    Ok(())
}

/// Each winner `arg[d, j]` must be -1 or one of node `d`'s in-edges: the gradient is routed by
/// it. Rows in blocks, in parallel; each row's test is branch-free (it vectorises), the
/// offending column is looked for only in a failing row (the first one, in row order).
fn check_winners(par: Par, g: Csr<'_>, arg: &[i64], f: usize) -> Result<()> {
    const ROWS: usize = 4096;
    let (ip, rows) = (g.indptr(), g.n_rows());
    if f == 0 {
        return Ok(());
    }
    let fits = |d: usize| {
        let (lo, hi) = (ip[d], ip[d + 1]);
        arg[d * f..(d + 1) * f]
            .iter()
            .fold(true, |ok, &a| ok & ((a == -1) | ((a >= lo) & (a < hi))))
    };
    let blocks: Vec<usize> = (0..rows).step_by(ROWS).collect();
    let bad = par
        .for_work(rows * f)
        .map(blocks, |s| (s..(s + ROWS).min(rows)).find(|&d| !fits(d)));
    let Some(d) = bad.into_iter().flatten().next() else {
        return Ok(());
    };
    let (lo, hi) = (ip[d], ip[d + 1]);
    let winners = &arg[d * f..(d + 1) * f];
    let j = winners
        .iter()
        .position(|&a| a != -1 && !(lo..hi).contains(&a))
        .unwrap_or(0);
    Err(Error::Value(format!(
        "arg[{d}, {j}]: {} is neither one of node {d}'s in-edges ({lo}..{hi}) nor -1; pass the \
         arg of the forward pass",
        winners[j]
    )))
}

/// That `gt` is shaped as `g`'s transpose and, when the caller reads it (`read_perm`), that
/// `perm` maps its edges to `g`'s (in range: one vectorised pass; the unweighted sum and mean
/// backward never read it, and skip the pass: 16 MB at 2M edges).
pub(super) fn check_transposed(
    g: &Csr<'_>,
    gt: &Csr<'_>,
    perm: &[i64],
    read_perm: bool,
) -> Result<()> {
    if gt.n_rows() != g.n_cols() || gt.n_cols() != g.n_rows() || gt.nnz() != g.nnz() {
        return Err(Error::Value(
            "graph: the transposed CSR does not match the graph".into(),
        ));
    }
    if perm.len() != g.nnz() {
        return Err(Error::len("perm", g.nnz(), perm.len()));
    }
    let out_of_range = |p: i64| p as u64 >= g.nnz() as u64;
    if !read_perm || !perm.iter().fold(false, |bad, &p| bad | out_of_range(p)) {
        return Ok(());
    }
    if let Some((k, &p)) = perm.iter().enumerate().find(|(_, &p)| out_of_range(p)) {
        return Err(Error::Index {
            arg: format!("perm[{k}]"),
            index: p,
            size: g.nnz(),
        });
    }
    Ok(())
}

/// `w`'s rows of `heads` values in the order `perm` (checked in range): the weights in
/// transposed edge order. A gather in parallel blocks (one `memmove` call per edge, serially,
/// took as long as the aggregation it prepares for 2M edges).
fn permuted<T: Float>(par: Par, w: &[T], perm: &[i64], heads: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; perm.len() * heads];
    let block = (CHUNK / heads.max(1)).max(1);
    let jobs: Vec<_> = out
        .chunks_mut(block * heads)
        .zip(perm.chunks(block))
        .collect();
    let par = if perm.len() * heads >= MIN_PARALLEL_WORK {
        par
    } else {
        Par::Seq
    };
    par.for_each(jobs, |(o, p)| {
        if heads == 1 {
            for (o, &e) in o.iter_mut().zip(p) {
                *o = w[e as usize];
            }
        } else {
            for (o, &e) in o.chunks_exact_mut(heads).zip(p) {
                let e = e as usize * heads;
                o.copy_from_slice(&w[e..e + heads]);
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(tile's value, tile's winner, column's value, column's winner)` for one column.
    fn tile_and_column<const MAX: bool>(
        edges: std::ops::Range<usize>,
        sources: &[i64],
        x: &[f32],
        f: usize,
        c: usize,
        weight: impl Fn(usize) -> f32,
    ) -> (u32, i64, u32, i64) {
        let (mut a1, mut g1) = ([0f32], [0i64]);
        let (mut a2, mut g2) = (0f32, 0i64);
        extreme_tile::<f32, MAX, 1>(
            edges.clone(),
            sources,
            x,
            f,
            c,
            &weight,
            false,
            &mut a1,
            &mut g1,
        );
        extreme_column::<f32, MAX>(edges, sources, x, f, c, &weight, &mut a2, &mut g2);
        (a1[0].to_bits(), g1[0], a2.to_bits(), g2)
    }

    /// The one-column fallback for rows of more than `u32::MAX` in-edges (too many to build
    /// in a test) gives the tiles' values and winners, NaN and ties included.
    #[test]
    fn extreme_column_agrees_with_the_tiles() {
        let sources: Vec<i64> = vec![3, 0, 2, 2, 1, 3, 0];
        let (f, n) = (3usize, 4usize);
        let mut x: Vec<f32> = (0..n * f).map(|v| ((v * 7) % 5) as f32 - 2.0).collect();
        x[2 * f + 1] = f32::NAN; // row 2, column 1: edges 2 and 3
        let weight = |e: usize| [1.0f32, 0.5, -1.0, 2.0, 1.0, 1.0, 3.0][e];
        for (edges, c) in [(0..7, 0), (1..5, 1), (4..7, 2), (2..3, 1)] {
            for (max, (a1, g1, a2, g2)) in [
                (
                    true,
                    tile_and_column::<true>(edges.clone(), &sources, &x, f, c, weight),
                ),
                (
                    false,
                    tile_and_column::<false>(edges.clone(), &sources, &x, f, c, weight),
                ),
            ] {
                assert_eq!((a1, g1), (a2, g2), "{edges:?}, column {c}, max {max}");
            }
        }
    }
}
