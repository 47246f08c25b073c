//! One small batch (one row chunk) on two threads: the hidden units are cut in two halves and
//! each step, forward and backward, runs as two tasks, one per half.
//!
//! With one chunk of rows (up to 8) there is no parallelism across rows, and the step is a thin
//! product that reads all of `[W_ih; W_hh]` once: from one core's L2 cache while it fits there,
//! from L3 beyond (the LSTM's weights are 328 KB at 128 hidden units and 32 inputs, 1.3 MB at
//! 256 and 64, 4.7 MB at 512).
//!
//! Forward ([`forward`]): task `p` of a step computes the gates of its half `U_p` of the units,
//! `[x_t | h] [W_ih; W_hh]_{U_p}^T + b_{U_p}` with the rows of every gate for those units packed
//! once per call (the GRU: `x_t W_ih^T + b_ih` and `h W_hh^T + b_hh` of those rows, as its n gate
//! needs `W_hn h` alone), then their gate arithmetic, and in training writes its units' share of
//! the workspace; the halves of `h` meet in a double buffer. Backward ([`backward`]): task `p`
//! computes its units' gate gradients and then, once both halves of the step's gate gradients
//! exist, its units of `dh = dG W_hh[:, U_p]`. Each thread streams half of the weights, which
//! then stay in its own L2. Used from [`MIN_SPLIT_BYTES`] of weights on, when a call streams at
//! least [`MIN_SPLIT_STREAM`] bytes of them over its steps, and below AVX-512 when a step
//! multiplies at least [`MIN_SPLIT_STEP_BYTES_AVX2`] of them.
//!
//! Scheduling ([`two_parts`]): the calling thread runs part 0 of every step, and part 1 too
//! until a second pool thread joins; from then on that thread runs every part 1. A task of step
//! `s` starts only once every task of step `s - 1` has finished. Nobody ever waits for a task that
//! no running thread has claimed, so a busy pool (or a pool of one thread) only makes the run
//! sequential, never stuck.
//!
//! Same bits as the one-chunk path: every product element is the same chain of multiply-adds
//! over `k` (the packed product's result does not depend on which columns share a product), and
//! the gate arithmetic and its gradients are element-wise.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::backward::BackStep;
use super::forward::StepKernel;
use super::product::Recurrent;
use super::{active, time, Cell, Dims, Weights};
use crate::linalg::Gemm;
use crate::simd::{self, Level};

/// Packed weights of at least this many bytes are split. Each step then streams half of the weights
/// per core (from L2: 1 MB per core on the AMD EPYC Zen 4 it was measured on), and the hand-over of
/// the halves of `h` between the cores costs less than the streaming it halves. Measured in one
/// process (an experimental build that read this threshold from the environment at each call,
/// toggled between the calls; `nesy.bench.rnn.nesy_fns` cases), with and without the split, calls
/// interleaved, 100 steps (200 for H = 32), 40 rounds, best times, 2026-11-26 (forward, forward +
/// backward): GRU (B, I, H) = (8, 64, 256) (983 KB) 1.71x, 1.10x; (1, 64, 256) 1.55x, 1.37x; (8,
/// 32, 128) (246 KB) 1.53x, 1.24x; (1, 32, 128) 1.33x, 1.21x; LSTM (8, 32, 128) (328 KB) 1.49x,
/// 1.04x; (1, 32, 128) 1.39x, 1.15x; Elman (4, 64, 256) (328 KB) 1.42x, 1.17x. Below, the hand-over
/// eats the gain: at 61-82 KB (LSTM/GRU/Elman at (16, 64), Elman at (32, 128)) 0.81-1.21x, at 15-20
/// KB (H = 32) 0.54-0.96x. Earlier measurements on larger weights (LSTM (1, 64, 512) 2.6-2.7x
/// faster forward) stand.
const MIN_SPLIT_BYTES: usize = 128 << 10;

/// A call is split only when it streams at least this many bytes of weights (steps x weight
/// bytes): a split call runs on the pool, and handing a call to a pool thread and back costs
/// 20-70 us (median, a worker waking up on this 2-vCPU virtual machine), more than the split
/// saves over a few steps; an unsplit call of one row chunk runs on the calling thread
/// ([`pool_work`](super::pool_work)). Measured 2026-11-27 at batch 1, split on the pool
/// against one thread on the calling thread, calls interleaved, medians of 300-15,000 calls,
/// T = 1-128: the split became the faster at T of about 45 (forward) and 70 (forward +
/// backward) for the GRU at (I, H) = (32, 128) (246 KB of weights), 20 and 22 at (64, 256)
/// (983 KB), the LSTM 50 and 60 at (32, 128) (328 KB), 22 and 16 at (64, 256) (1.3 MB), Elman 45
/// and 55 at (64, 256) (328 KB): 11-29 MB streamed forward, 17-22 MB forward + backward (MB =
/// 10^6 bytes). 16 MiB (16.8 MB) is a compromise: some calls above it (forward-only calls up to
/// 29 MB, training calls up to 22 MB) split where one thread was up to 1.1x faster. At T = 1
/// the calling thread took 15-74 us against 33-141 us through the pool.
const MIN_SPLIT_STREAM: usize = 16 << 20;

/// Below AVX-512, a call is split only when a step multiplies at least this many bytes of
/// weights (rows x weight bytes). Measured on an AVX2 machine (2 vCPUs of an AMD EPYC Zen 3,
/// 512 KB of L2 per core), 2026-11-27: split against unsplit in one process (an experimental
/// build toggling the split from the environment), 100 steps (50 for the GRU and the LSTM at
/// (1, 64, 256)), calls interleaved, medians of 30 rounds, forward and forward + backward,
/// ranges over two or three runs where repeated (an uncommitted script timing
/// `nesy.bench.rnn.nesy_fns`). From 983 KB per step: GRU (B, I, H) = (1, 64, 256) 1.24-1.25x,
/// 1.09-1.11x; (4, 32, 128) 1.01-1.13x, 0.89-1.11x; (6, 32, 128) 1.29x, 1.19x; (8, 32, 128)
/// 1.63x, 1.26x; LSTM (1, 64, 256) 1.09x, 1.07x; (3, 32, 128) 1.09x, 1.04x; (4, 32, 128)
/// 1.10-1.58x, 0.96-1.37x; (8, 32, 128) 1.42x, 1.14x; Elman (4, 64, 256) 1.18-1.22x,
/// 1.02-1.31x; (8, 64, 256) 1.17x, 1.16x. Below: batch 1 at (32, 128) (GRU 246 KB, LSTM 328
/// KB) 0.82-1.00x, 0.82-0.88x; Elman (1, 64, 256) (328 KB) 1.14x, 0.95x; 492-656 KB (GRU,
/// LSTM at (2, 32, 128), Elman at (2, 64, 256)) 0.96-1.02x, 0.85-0.98x. (On the Zen 4 of
/// [`MIN_SPLIT_BYTES`], with 1 MB of L2 per core, batch 1 at (32, 128) gained 1.3-1.4x.)
const MIN_SPLIT_STEP_BYTES_AVX2: usize = 768 << 10;

/// Whether [`forward`] and [`backward`] take a call: the sizes of [`worth_splitting`], and
/// running on a pool thread of a pool with at least two threads.
pub(super) fn applies<T: 'static>(d: Dims, w: &Weights<'_, T>) -> bool {
    worth_splitting::<T>(w.cell, d)
        && rayon::current_thread_index().is_some()
        && rayon::current_num_threads() >= 2
}

/// Whether a call of `d` is split when it runs on a pool of two or more threads: the split's
/// packed kernel exists (`f32` on AVX2 or AVX-512; elsewhere nothing splits), one row chunk, at
/// least two steps, weights of at least [`MIN_SPLIT_BYTES`], at least [`MIN_SPLIT_STREAM`]
/// bytes of them streamed over the steps, and below AVX-512 at least
/// [`MIN_SPLIT_STEP_BYTES_AVX2`] of work per step.
pub(super) fn worth_splitting<T: 'static>(cell: Cell, d: Dims) -> bool {
    worth_splitting_at::<T>(simd::detect(), cell, d)
}

/// [`worth_splitting`] on a CPU whose best level is `level` (tests ask for every level).
fn worth_splitting_at<T: 'static>(level: Level, cell: Cell, d: Dims) -> bool {
    let packed = cfg!(target_arch = "x86_64")
        && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && level >= Level::Avx2;
    let weight_bytes = [d.h, d.i.saturating_add(d.h), std::mem::size_of::<T>()]
        .iter()
        .fold(cell.gates(), |m, &v| m.saturating_mul(v));
    let step_bytes = d.b.saturating_mul(weight_bytes);
    packed
        && super::n_chunks(d.b) == 1
        && d.b > 0
        && d.h >= 32
        && d.t >= 2
        && weight_bytes >= MIN_SPLIT_BYTES
        && d.t.saturating_mul(weight_bytes) >= MIN_SPLIT_STREAM
        && (level == Level::Avx512 || step_bytes >= MIN_SPLIT_STEP_BYTES_AVX2)
}

/// The first unit of part 1: the multiple of 16 nearest to half (part 0's gate blocks are then
/// whole vectors; `applies` asks for h >= 32, so both parts get at least 8 units).
fn cut(h: usize) -> usize {
    (h / 2 + 8) / 16 * 16
}

/// One half of the hidden units, with everything its tasks touch besides the shared state.
struct Part<'a, T> {
    /// First unit and number of units.
    u0: usize,
    nu: usize,
    products: Products<'a, T>,
    /// Gate pre-activations, then activations, of the step: `(B, G * nu)`.
    gates: Vec<T>,
    /// The part's units of `h` (read back into the shared state after each step) and `c`, and
    /// of the step's output: `(B, nu)` each.
    h: Vec<T>,
    c: Vec<T>,
    y: Vec<T>,
    active: Vec<bool>,
}

/// A part's per-step products, over the gate rows of its units.
enum Products<'a, T> {
    /// Elman and LSTM: `[x_t | h] [W_ih; W_hh]^T + (b_ih + b_hh)` into the gates.
    Stacked(Recurrent<'a, T>, Option<Vec<T>>),
    /// GRU (its n gate needs `W_hn h` alone): `x_t W_ih^T + b_ih` into the gates, `h W_hh^T +
    /// b_hh` into `hp (B, 3 nu)`; `ghn (B, nu)` takes the kernel's copy of `W_hn h + b_hn`.
    Gru {
        input: Recurrent<'a, T>,
        b_ih: Option<Vec<T>>,
        recurrent: Recurrent<'a, T>,
        b_hh: Option<Vec<T>>,
        hp: Vec<T>,
        ghn: Vec<T>,
    },
}

/// A raw view of a buffer the two tasks of a step share (see [`forward`] for who touches what).
#[derive(Clone, Copy)]
struct Shared<T>(*mut T, usize);

impl<T> Shared<T> {
    /// `len` elements from `at`.
    ///
    /// # Safety
    /// In bounds, and no other live reference to them may write (or, for `slice_mut`, read).
    unsafe fn slice<'s>(self, at: usize, len: usize) -> &'s [T] {
        assert!(at + len <= self.1);
        // SAFETY: in bounds (checked); aliasing is the caller's contract.
        unsafe { std::slice::from_raw_parts(self.0.add(at), len) }
    }

    /// # Safety
    /// As for [`Shared::slice`].
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut<'s>(self, at: usize, len: usize) -> &'s mut [T] {
        assert!(at + len <= self.1);
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(at), len) }
    }
}
// SAFETY: access is coordinated by `two_parts`; see the SAFETY notes at each use.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

/// Runs the layer like [`super::forward::forward`] (which checked the inputs, the outputs and
/// the workspace, if any) when [`applies`] holds. Returns false, having written nothing, if the
/// parts cannot be packed.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward<T: Gemm>(
    level: Level,
    d: Dims,
    w: &Weights<'_, T>,
    x: &[T],
    h0: &[T],
    c0: Option<&[T]>,
    lengths: Option<&[i64]>,
    reverse: bool,
    y: &mut [T],
    hn: &mut [T],
    cn: Option<&mut [T]>,
    ws: Option<&mut [T]>,
) -> bool {
    let (cell, g, h, b) = (w.cell, w.cell.gates(), d.h, d.b);
    let cut = cut(h);
    let mut parts = Vec::with_capacity(2);
    for (u0, nu) in [(0, cut), (cut, h - cut)] {
        let rows: Vec<usize> = (0..g).flat_map(|q| q * h + u0..q * h + u0 + nu).collect();
        let pick_bias = |bias: Option<&[T]>| bias.map(|v| rows.iter().map(|&r| v[r]).collect());
        let products = if cell == Cell::Gru {
            let input = Recurrent::stacked_rows(level, w.w_ih, d.i, &[], 0, &rows);
            let recurrent = Recurrent::stacked_rows(level, w.w_hh, h, &[], 0, &rows);
            let (Some(input), Some(recurrent)) = (input, recurrent) else {
                return false;
            };
            Products::Gru {
                input,
                b_ih: pick_bias(w.b_ih),
                recurrent,
                b_hh: pick_bias(w.b_hh),
                hp: vec![T::ZERO; b * g * nu],
                ghn: vec![T::ZERO; b * nu],
            }
        } else {
            let Some(both) = Recurrent::stacked_rows(level, w.w_ih, d.i, w.w_hh, h, &rows) else {
                return false;
            };
            // As the one-chunk path: one bias is copied (not added to zero: -0.0 stays -0.0).
            let bias = match (w.b_ih, w.b_hh) {
                (Some(bi), Some(bh)) => Some(rows.iter().map(|&r| bi[r] + bh[r]).collect()),
                (Some(v), None) | (None, Some(v)) => pick_bias(Some(v)),
                (None, None) => None,
            };
            Products::Stacked(both, bias)
        };
        let pick = |s: &[T]| -> Vec<T> {
            (0..b)
                .flat_map(|r| s[r * h + u0..r * h + u0 + nu].iter().copied())
                .collect()
        };
        parts.push(Padded(Mutex::new(Part {
            u0,
            nu,
            products,
            gates: vec![T::ZERO; b * g * nu],
            h: pick(h0),
            c: c0.map(pick).unwrap_or_default(),
            y: vec![T::ZERO; b * nu],
            active: vec![true; b],
        })));
    }
    // The state before each step and after it: step `s` reads block `s % 2` and writes its
    // units of block `(s + 1) % 2`.
    let mut hbuf = vec![T::ZERO; 2 * b * h];
    hbuf[..b * h].copy_from_slice(h0);
    let hs = Shared(hbuf.as_mut_ptr(), hbuf.len());
    let ys = Shared(y.as_mut_ptr(), y.len());
    // Training: the workspace's gate activations `(T, B, G*H)`, states before each step
    // `(T, B, H)` and, for the LSTM and the GRU, the extra block `(T, B, H)`.
    let wss = ws.map(|ws| {
        let p = super::split_ws_mut(ws, cell, d);
        let sh = |s: &mut [T]| Shared(s.as_mut_ptr(), s.len());
        (sh(p.gates), sh(p.hprev), sh(p.extra))
    });
    let task = |s: usize, p: usize| {
        let mut guard = parts[p].0.lock().unwrap_or_else(|e| e.into_inner());
        let Part {
            u0,
            nu,
            products,
            gates,
            h: hpart,
            c,
            y: ypart,
            active: on,
            ..
        } = &mut *guard;
        let t = time(s, d.t, reverse);
        let (read, write) = ((s % 2) * b * h, ((s + 1) % 2) * b * h);
        // SAFETY: during step `s` both tasks only read block `s % 2` (written during step
        // `s - 1`, which finished before this step's tasks started), and `two_parts` runs the
        // next step's tasks (which write it) only after both of this step's have finished.
        let hprev = unsafe { hs.slice(read, b * h) };
        let x_t = &x[t * b * d.i..(t + 1) * b * d.i];
        let (hp, ghn): (&[T], &mut [T]) = match products {
            Products::Stacked(both, bias) => {
                both.apply_stacked(x_t, hprev, bias.as_deref(), gates);
                (&[], &mut [])
            }
            Products::Gru {
                input,
                b_ih,
                recurrent,
                b_hh,
                hp,
                ghn,
            } => {
                input.apply_stacked(x_t, &[], b_ih.as_deref(), gates);
                recurrent.apply_stacked(hprev, &[], b_hh.as_deref(), hp);
                (hp, ghn)
            }
        };
        for (r, a) in on.iter_mut().enumerate() {
            *a = active(lengths, t, r);
        }
        let (u0, nu) = (*u0, *nu);
        if let Some((_, ws_hprev, ws_extra)) = wss {
            for r in 0..b {
                let (at, own) = ((t * b + r) * h + u0, r * nu..(r + 1) * nu);
                // SAFETY: the part's own units of row `r` at time `t`: written by this task
                // only, read by nobody during the call.
                unsafe {
                    ws_hprev
                        .slice_mut(at, nu)
                        .copy_from_slice(&hpart[own.clone()]);
                    if cell == Cell::Lstm {
                        ws_extra.slice_mut(at, nu).copy_from_slice(&c[own]);
                    }
                }
            }
        }
        simd::dispatch(
            level,
            StepKernel {
                cell,
                h: nu,
                active: on,
                gates: &mut gates[..],
                hp,
                hcur: hpart,
                ccur: c,
                y: ypart,
                ghn: &mut *ghn,
            },
        );
        if let Some((ws_gates, _, ws_extra)) = wss {
            for r in 0..b {
                for q in 0..g {
                    let at = (t * b + r) * g * h + q * h + u0;
                    let src = &gates[(r * g + q) * nu..(r * g + q + 1) * nu];
                    // SAFETY: as above (gate `q` of the part's units).
                    unsafe { ws_gates.slice_mut(at, nu).copy_from_slice(src) };
                }
                if cell == Cell::Gru {
                    let at = (t * b + r) * h + u0;
                    // SAFETY: as above.
                    unsafe {
                        ws_extra
                            .slice_mut(at, nu)
                            .copy_from_slice(&ghn[r * nu..(r + 1) * nu])
                    };
                }
            }
        }
        let part = &*guard;
        for r in 0..b {
            let (at, len) = (r * h + part.u0, part.nu);
            // SAFETY: the part's own units of row `r` in block `(s + 1) % 2` and of `y[t, r]`:
            // the other task of the step writes the other units, and nobody reads them before
            // both tasks have finished (the next step reads the block; `y` only after the call).
            unsafe {
                hs.slice_mut(write + at, len)
                    .copy_from_slice(&part.h[r * len..(r + 1) * len]);
                ys.slice_mut(t * b * h + at, len)
                    .copy_from_slice(&part.y[r * len..(r + 1) * len]);
            }
        }
    };
    two_parts(d.t, &task);
    let mut cn = cn;
    for part in parts {
        let part = part.0.into_inner().unwrap_or_else(|e| e.into_inner());
        put_units(hn, &part.h, h, part.u0);
        if let Some(cn) = cn.as_deref_mut() {
            put_units(cn, &part.c, h, part.u0);
        }
    }
    true
}

/// Copies a part's `(B, nu)` block into its units `u0..u0 + nu` of the `(B, h)` state `dst`.
fn put_units<T: Copy>(dst: &mut [T], src: &[T], h: usize, u0: usize) {
    let nu = src.len() / (dst.len() / h).max(1);
    for (row, part) in dst.chunks_exact_mut(h).zip(src.chunks_exact(nu.max(1))) {
        row[u0..u0 + nu].copy_from_slice(part);
    }
}

/// One half of the hidden units in the backward pass: its product `dG W_hh[:, U]` and the
/// part's rows of every per-step block, gathered from and scattered to the full layouts.
struct BackPart<'a, T> {
    u0: usize,
    nu: usize,
    product: Recurrent<'a, T>,
    /// The step's gate activations `(B, G * nu)`, state before the step, extra block (LSTM:
    /// `c` before the step; GRU: `W_hn h + b_hn`) and `dy` (`(B, nu)` each).
    g: Vec<T>,
    hp: Vec<T>,
    ex: Vec<T>,
    dy: Vec<T>,
    /// Running gradients of `h` and `c`, the GRU's direct path, and `dG W_hh[:, U]`: `(B, nu)`.
    dh: Vec<T>,
    dc: Vec<T>,
    direct: Vec<T>,
    back: Vec<T>,
    /// The step's gate gradients `(B, G * nu)` (input path; the GRU's recurrent path).
    dgx: Vec<T>,
    dgh: Vec<T>,
    active: Vec<bool>,
    scratch: Vec<T>,
}

/// The recurrence of [`super::backward::backward`] for one small batch on two threads, when
/// [`applies`] holds: fills `dg_x` (and the GRU's `dg_h`), both zeroed by the caller, and the
/// initial-state gradients. Task `s` of a part first finishes backward step `s - 1` (its units of
/// `dh = dG W_hh`, which needs both parts' gate gradients of that step) and then runs the gate
/// gradients of backward step `s` for its units; `T + 1` steps in all. Returns false, having
/// written nothing, if the parts cannot be packed. Same bits as the chunk path.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<T: Gemm>(
    d: Dims,
    w: &Weights<'_, T>,
    ws: &super::Parts<&[T]>,
    dy: &[T],
    dhn: &[T],
    dcn: Option<&[T]>,
    lengths: Option<&[i64]>,
    reverse: bool,
    dg_x: &mut [T],
    dg_h: &mut [T],
    dh0: &mut [T],
    dc0: Option<&mut [T]>,
) -> bool {
    let level = simd::detect();
    let (cell, g, h, b) = (w.cell, w.cell.gates(), d.h, d.b);
    let gh = g * h;
    let cut = cut(h);
    let mut parts = Vec::with_capacity(2);
    for (u0, nu) in [(0, cut), (cut, h - cut)] {
        let Some(product) = Recurrent::rows_range(level, w.w_hh, gh, h, u0, nu) else {
            return false;
        };
        let pick = |s: &[T]| -> Vec<T> {
            (0..b)
                .flat_map(|r| s[r * h + u0..r * h + u0 + nu].iter().copied())
                .collect()
        };
        let gru = cell == Cell::Gru;
        parts.push(Padded(Mutex::new(BackPart {
            u0,
            nu,
            product,
            g: vec![T::ZERO; b * g * nu],
            hp: vec![T::ZERO; b * nu],
            ex: vec![T::ZERO; if ws.extra.is_empty() { 0 } else { b * nu }],
            dy: vec![T::ZERO; b * nu],
            dh: pick(dhn),
            dc: dcn.map(pick).unwrap_or_default(),
            direct: vec![T::ZERO; b * nu],
            back: vec![T::ZERO; b * nu],
            dgx: vec![T::ZERO; b * g * nu],
            dgh: vec![T::ZERO; if gru { b * g * nu } else { 0 }],
            active: vec![true; b],
            scratch: Vec::new(),
        })));
    }
    let gx = Shared(dg_x.as_mut_ptr(), dg_x.len());
    let ghs = Shared(dg_h.as_mut_ptr(), dg_h.len());
    // The block the previous state's gradient comes from: dG_h for the GRU, else dG_x.
    let recurrent_path = if cell == Cell::Gru { ghs } else { gx };
    let steps = d.t;
    // Backward step `k` is time `t(k)`.
    let t_of = |k: usize| time(steps - 1 - k, steps, reverse);
    let task = |s: usize, p: usize| {
        let mut guard = parts[p].0.lock().unwrap_or_else(|e| e.into_inner());
        let part = &mut *guard;
        let (u0, nu) = (part.u0, part.nu);
        if s > 0 {
            // Finish backward step `s - 1`: dh(U) = dG_h(t) W_hh[:, U] (+ the GRU's direct path).
            let t = t_of(s - 1);
            // SAFETY: rows of time `t`, written by both parts' tasks of step `s - 1` (finished
            // before this step started) and by nobody after.
            let rows = unsafe { recurrent_path.slice(t * b * gh, b * gh) };
            part.product
                .apply(rows, None, &mut part.back, &mut part.scratch);
            for r in 0..b {
                if !active(lengths, t, r) {
                    continue;
                }
                for j in r * nu..(r + 1) * nu {
                    part.dh[j] = if cell == Cell::Gru {
                        part.back[j] + part.direct[j]
                    } else {
                        part.back[j]
                    };
                }
            }
        }
        if s == steps {
            return;
        }
        // Gate gradients of backward step `s` for the part's units.
        let t = t_of(s);
        for r in 0..b {
            let (row, own) = (t * b + r, r * nu..(r + 1) * nu);
            for q in 0..g {
                let at = row * gh + q * h + u0;
                part.g[(r * g + q) * nu..(r * g + q + 1) * nu]
                    .copy_from_slice(&ws.gates[at..at + nu]);
            }
            let at = row * h + u0;
            part.hp[own.clone()].copy_from_slice(&ws.hprev[at..at + nu]);
            if !part.ex.is_empty() {
                part.ex[own.clone()].copy_from_slice(&ws.extra[at..at + nu]);
            }
            part.dy[own].copy_from_slice(&dy[at..at + nu]);
            part.active[r] = active(lengths, t, r);
        }
        part.dgx.fill(T::ZERO);
        part.dgh.fill(T::ZERO);
        simd::dispatch(
            level,
            BackStep {
                cell,
                h: nu,
                active: &part.active,
                g: &part.g,
                hp: &part.hp,
                ex: &part.ex,
                dy: &part.dy,
                dh: &mut part.dh,
                dc: &mut part.dc,
                dgx: &mut part.dgx,
                dgh: &mut part.dgh,
                direct: &mut part.direct,
            },
        );
        for r in 0..b {
            for q in 0..g {
                let at = (t * b + r) * gh + q * h + u0;
                let own = (r * g + q) * nu..(r * g + q + 1) * nu;
                // SAFETY: gate `q` of the part's units in row `r` at time `t`: written by this
                // task only, read only by tasks of the next step.
                unsafe {
                    gx.slice_mut(at, nu).copy_from_slice(&part.dgx[own.clone()]);
                    if cell == Cell::Gru {
                        ghs.slice_mut(at, nu).copy_from_slice(&part.dgh[own]);
                    }
                }
            }
        }
    };
    two_parts(steps + 1, &task);
    let mut dc0 = dc0;
    for part in parts {
        let part = part.0.into_inner().unwrap_or_else(|e| e.into_inner());
        put_units(dh0, &part.dh, h, part.u0);
        if let Some(dc0) = dc0.as_deref_mut() {
            put_units(dc0, &part.dc, h, part.u0);
        }
    }
    true
}

/// Runs `task(s, p)` for steps `s` in `0..steps` and parts `p` in `{0, 1}`, every task of step
/// `s` after every task of step `s - 1`, on the calling thread and at most one other thread of
/// the current pool (see the module docs).
fn two_parts(steps: usize, task: &(dyn Fn(usize, usize) + Sync)) {
    // Steps finished per part, each on its own cache line: one writer at a time (whoever runs
    // the part), and the waiting thread reads only the line the other one writes.
    let done = [Padded(AtomicUsize::new(0)), Padded(AtomicUsize::new(0))];
    let next1 = Padded(AtomicUsize::new(0)); // first step whose part 1 nobody has claimed
    let joined = AtomicBool::new(false); // a second thread runs part 1 from now on
                                         // A task panicked: the other thread stops waiting.
    let failed = AtomicBool::new(false);
    // Until step `s - 1` of part `p` is done. False if a task panicked (the panic then reaches
    // the caller through `join`).
    let wait_for = |p: usize, s: usize| {
        let mut spins = 0u32;
        while done[p].0.load(Ordering::Acquire) < s {
            if failed.load(Ordering::Relaxed) {
                return false;
            }
            // The task waited for is running on the other thread (it was claimed).
            if spins < 1 << 14 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        true
    };
    let run = |s: usize, p: usize| {
        struct OnPanic<'f>(&'f AtomicBool);
        impl Drop for OnPanic<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
        }
        let _guard = OnPanic(&failed);
        task(s, p);
        done[p].0.store(s + 1, Ordering::Release);
    };
    let claim1 = |s: usize| {
        next1
            .0
            .compare_exchange(s, s + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    };
    rayon::join(
        || {
            for s in 0..steps {
                // Part 0 of step `s - 1` is this thread's own.
                if !wait_for(1, s) {
                    return;
                }
                run(s, 0);
                if !joined.load(Ordering::Acquire) && claim1(s) {
                    run(s, 1);
                }
            }
        },
        || {
            joined.store(true, Ordering::Release);
            loop {
                let s = next1.0.load(Ordering::Acquire);
                if s >= steps {
                    break;
                }
                // Part 1 of step `s - 1` is done: it was claimed before `next1` passed `s`, by
                // this thread (done) or by the other before this one joined (wait for it).
                if !wait_for(0, s) || !wait_for(1, s) {
                    return;
                }
                if claim1(s) {
                    run(s, 1);
                }
            }
        },
    );
}

/// Benchmark floor of the two-part step: `steps` steps scheduled as [`forward`]'s are (by
/// [`two_parts`], with its hand-over between the steps), in each of which task `p` reads half
/// `p` of `w` once (a sum over it) and does nothing else. With `w` as large as a layer's packed
/// weights this is the least a step of the split forward pass can take: it reads all the
/// weights once, each thread its half from its own L2 cache, and the two threads meet once.
///
/// Returns the sum over all steps of both halves' sums (f64; the same bits for any thread count:
/// each half is summed in a fixed order).
pub fn stream_floor(w: &[f32], steps: usize) -> f64 {
    // Halves cut on a 64-byte boundary (whole vectors).
    let cut = (w.len() / 2).div_ceil(16) * 16;
    let halves = [&w[..cut.min(w.len())], &w[cut.min(w.len())..]];
    let totals = [Padded(Mutex::new(0f64)), Padded(Mutex::new(0f64))];
    let task = |_s: usize, p: usize| {
        let sum = simd::dispatch(simd::detect(), ReadSum(halves[p]));
        *totals[p].0.lock().unwrap_or_else(|e| e.into_inner()) += sum;
    };
    two_parts(steps, &task);
    let [t0, t1] = totals.map(|t| t.0.into_inner().unwrap_or_else(|e| e.into_inner()));
    t0 + t1
}

/// The sum of a slice, 128 lanes at a time (eight 16-lane chains at the AVX-512 level: one
/// vector load per add), the lanes then added in order.
struct ReadSum<'a>(&'a [f32]);

impl simd::Kernel for ReadSum<'_> {
    type Output = f64;

    #[inline(always)]
    fn run(self) -> f64 {
        let mut lanes = [0f32; 128];
        let mut blocks = self.0.chunks_exact(128);
        for block in &mut blocks {
            for (acc, &v) in lanes.iter_mut().zip(block) {
                *acc += v;
            }
        }
        let tail: f64 = blocks.remainder().iter().map(|&v| v as f64).sum();
        lanes.iter().map(|&v| v as f64).sum::<f64>() + tail
    }
}

/// A value alone on its cache line(s).
#[repr(align(128))]
struct Padded<T>(T);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::{workspace_len, Grads};
    use std::sync::atomic::AtomicU64;

    #[test]
    fn stream_floor_sums_both_halves_at_every_step_on_any_thread_count() {
        // Sizes around the 64-byte cut and the 128-value blocks; one and two threads.
        for n in [0, 1, 17, 128, 1000, 40_960, 82_001] {
            let w = crate::testing::values(n, 9);
            let steps = 5;
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| stream_floor(&w, steps))
            };
            let (one, two) = (on(1), on(2));
            assert_eq!(one.to_bits(), two.to_bits(), "{n}");
            let plain: f64 = w.iter().map(|&v| v as f64).sum::<f64>() * steps as f64;
            assert!(
                (one - plain).abs() <= 1e-3 * (1.0 + plain.abs()),
                "{n}: {one} vs {plain}"
            );
        }
    }

    #[test]
    fn split_passes_equal_the_one_chunk_path() {
        // Against the one-chunk path (a one-thread pool never splits), with lengths, reverse and
        // one bias only, inference and training (the workspace, and the backward pass from it);
        // on two threads, and with the second thread busy (it joins late). The split forward
        // runs its products at every packed level the CPU has (the same bits at each).
        use crate::testing::values;
        let level = simd::detect();
        for (cell, i, h, b) in [
            (Cell::Lstm, 32, 256, 3),
            (Cell::RnnTanh, 8, 520, 1),
            (Cell::Gru, 16, 330, 2),
        ] {
            // 16 steps: each case streams at least MIN_SPLIT_STREAM bytes of weights.
            let d = Dims { t: 16, b, i, h };
            let g = cell.gates();
            let scaled = |n, seed| -> Vec<f32> {
                values(n, seed)
                    .iter()
                    .map(|v| v / (h as f32).sqrt())
                    .collect()
            };
            let (w_ih, w_hh, b_hh) = (scaled(g * h * i, 1), scaled(g * h * h, 2), values(g * h, 3));
            let w = Weights {
                cell,
                w_ih: &w_ih,
                w_hh: &w_hh,
                b_ih: None,
                b_hh: Some(&b_hh),
            };
            let (x, h0, c0) = (values(d.t * b * i, 5), values(b * h, 6), values(b * h, 7));
            let c0 = cell.has_c().then_some(&c0[..]);
            let lengths: Vec<i64> = (0..b as i64).map(|r| (16 - 7 * r).max(1)).collect();
            let lengths = Some(&lengths[..]);
            let run = |split: Option<Level>, training: bool| {
                let mut y = vec![f32::NAN; d.t * b * h];
                let mut hn = vec![f32::NAN; b * h];
                let mut cn = vec![f32::NAN; if c0.is_some() { b * h } else { 0 }];
                let mut ws = vec![f32::NAN; if training { workspace_len(cell, d) } else { 0 }];
                let cn_arg = c0.is_some().then_some(&mut cn[..]);
                let ws_arg = training.then_some(&mut ws[..]);
                let (yv, hv) = (&mut y[..], &mut hn[..]);
                if let Some(level) = split {
                    let ran = forward(
                        level, d, &w, &x, &h0, c0, lengths, true, yv, hv, cn_arg, ws_arg,
                    );
                    if !ran {
                        return None; // no packed kernel on this CPU
                    }
                } else {
                    let f = super::super::forward;
                    f(d, &w, &x, &h0, c0, lengths, true, yv, hv, cn_arg, ws_arg).unwrap();
                }
                // Training: the backward pass from the workspace (split where `applies`).
                let mut grads = vec![vec![]; 6];
                if training {
                    let (dy, dhn, dcn) =
                        (values(d.t * b * h, 8), values(b * h, 9), values(b * h, 10));
                    let dcn = c0.is_some().then_some(&dcn[..]);
                    let [dx, dh0, dc0, dw_ih, dw_hh, db_hh] = &mut grads[..] else {
                        unreachable!()
                    };
                    dx.resize(d.t * b * i, f32::NAN);
                    dh0.resize(b * h, f32::NAN);
                    dc0.resize(if c0.is_some() { b * h } else { 0 }, f32::NAN);
                    dw_ih.resize(g * h * i, 0.0);
                    dw_hh.resize(g * h * h, 0.0);
                    db_hh.resize(g * h, 0.0);
                    let out = Grads {
                        dx: Some(dx),
                        dh0,
                        dc0: c0.is_some().then_some(&mut dc0[..]),
                        dw_ih,
                        dw_hh,
                        db_ih: None,
                        db_hh: Some(db_hh),
                    };
                    let f = super::super::backward;
                    f(d, &w, &x, &h0, c0, lengths, true, &ws, &dy, &dhn, dcn, out).unwrap();
                }
                Some((y, hn, cn, ws, grads))
            };
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let two = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            for training in [false, true] {
                let want = one.install(|| {
                    assert!(!applies(d, &w));
                    run(None, training).unwrap()
                });
                let levels = simd::supported_levels();
                for (busy, split_level) in [false, true]
                    .into_iter()
                    .flat_map(|busy| levels.iter().map(move |&l| (busy, l)))
                {
                    let got = two.install(|| {
                        // Where the packed kernel exists (else `run(Some(..), ..)` gives None);
                        // each case has enough work per step to split on AVX2 too.
                        assert_eq!(applies(d, &w), level >= Level::Avx2);
                        if !busy {
                            return run(Some(split_level), training);
                        }
                        let mut got = None;
                        rayon::scope(|sc| {
                            sc.spawn(|_| std::thread::sleep(std::time::Duration::from_millis(20)));
                            got = run(Some(split_level), training);
                        });
                        got
                    });
                    let Some(got) = got else {
                        assert_eq!(split_level, Level::Scalar, "no split at {split_level:?}");
                        continue;
                    };
                    let what = format!(
                        "{cell:?} h = {h}, training = {training}, busy = {busy}, \
                         products at {split_level:?}"
                    );
                    assert_eq!(got, want, "{what}");
                    let finite = got.0.iter().chain(&got.3).chain(got.4.iter().flatten());
                    assert!(finite.clone().all(|v| v.is_finite()), "{what}");
                }
            }
        }
    }

    #[test]
    fn splits_only_calls_that_stream_enough_weights() {
        // The LSTM at (I, H) = (32, 128): 328 KB of f32 weights, split from 52 steps on (16 MiB
        // streamed), on AVX2 from 3 rows on (983 KB a step); one step never; more than one
        // chunk of rows never. Only where the packed kernel exists (f32 on AVX2 or AVX-512).
        // The rules of every level, whatever this CPU has; then this CPU's.
        let d = |t, b| Dims {
            t,
            b,
            i: 32,
            h: 128,
        };
        assert!(!worth_splitting_at::<f32>(
            Level::Scalar,
            Cell::Lstm,
            d(1000, 1)
        ));
        let bytes = 4 * 128 * 160 * 4;
        let t_min = MIN_SPLIT_STREAM.div_ceil(bytes);
        assert_eq!(t_min, 52);
        assert_eq!(
            3 * bytes >= MIN_SPLIT_STEP_BYTES_AVX2,
            2 * bytes < MIN_SPLIT_STEP_BYTES_AVX2
        );
        for level in [Level::Avx2, Level::Avx512] {
            let worth = |d: Dims| worth_splitting_at::<f32>(level, Cell::Lstm, d);
            let b_min = if level == Level::Avx512 { 1 } else { 3 };
            assert!(worth(d(t_min, b_min)), "{level:?}");
            assert!(worth(d(t_min, 8)), "{level:?}");
            assert!(!worth(d(t_min - 1, b_min)), "{level:?}");
            assert_eq!(worth(d(1000, 2)), level == Level::Avx512);
            assert!(!worth(d(1000, 9)), "{level:?}");
            // f64 has no packed kernel: never split, however much it streams.
            assert!(!worth_splitting_at::<f64>(level, Cell::Lstm, d(1000, 1)));
            // Huge weights still need two steps; small ones never split (below
            // MIN_SPLIT_BYTES).
            let big = Dims {
                t: 1,
                b: 1,
                i: 1024,
                h: 2048,
            };
            assert!(!worth(big), "{level:?}");
            assert!(worth(Dims { t: 2, ..big }), "{level:?}");
            let small = Dims {
                t: 1 << 20,
                b: 1,
                i: 32,
                h: 64,
            };
            assert!(!worth_splitting_at::<f32>(level, Cell::RnnTanh, small));
        }
        let level = simd::detect();
        for t in [1, 51, 52, 1000] {
            for b in [1, 2, 3, 8, 9] {
                assert_eq!(
                    worth_splitting::<f32>(Cell::Lstm, d(t, b)),
                    worth_splitting_at::<f32>(level, Cell::Lstm, d(t, b))
                );
            }
        }
    }

    #[test]
    fn two_parts_runs_each_task_once_after_the_previous_step() {
        // Each task checks that both tasks of the previous step are done; on pools of 1-3
        // threads, and when a second thread is busy elsewhere.
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let steps = 500;
                let done: Vec<AtomicU64> = (0..steps).map(|_| AtomicU64::new(0)).collect();
                two_parts(steps, &|s, p| {
                    if s > 0 {
                        assert_eq!(done[s - 1].load(Ordering::Acquire), 0b11, "step {s}");
                    }
                    let before = done[s].fetch_or(1 << p, Ordering::AcqRel);
                    assert_eq!(before & (1 << p), 0, "step {s} part {p} ran twice");
                });
                assert!(done.iter().all(|d| d.load(Ordering::Acquire) == 0b11));
            });
        }
    }
}
