//! Recurrent layers: Elman (tanh, relu), GRU and LSTM over whole sequences, with
//! backpropagation through time. One call runs one layer in one direction over a batch of
//! sequences; stacking layers and directions is the caller's loop (`python/nesy/rnn`).
//!
//! Formulas and gate order are PyTorch's (`torch.nn.RNN/GRU/LSTM`):
//! ```text
//! Elman: h' = act(W_ih x + b_ih + W_hh h + b_hh)                       act = tanh | relu
//! GRU:   r = s(W_ir x + b_ir + W_hr h + b_hr),  z = s(W_iz x + b_iz + W_hz h + b_hz)
//!        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
//! LSTM:  i, f, o = s(...), g = tanh(...)  (rows of W in the order i, f, g, o)
//!        c' = f * c + i * g,  h' = o * tanh(c')
//! ```
//! Variable lengths: row `b` is active at time `t` iff `t < lengths[b]`. An active step updates
//! the row's state and writes `y[t, b] = h'`; an inactive step keeps the state and writes 0.
//! Time runs `0..T`, or `T-1` down to 0 with `reverse`, so the reverse direction of a padded
//! sequence starts at its own last element. Padding never reaches outputs, states or gradients.
//!
//! Layout: `x (T, B, I)`, `y (T, B, H)`, states `(B, H)`, `w_ih (G*H, I)`, `w_hh (G*H, H)`,
//! biases `(G*H)`, all row-major. Each step makes one recurrent product (`product.rs`), and the
//! weight gradients are one GEMM each over all steps. The input projection of all time steps is
//! one GEMM, except where the per-step product is packed (f32 on AVX2 and AVX-512, but for one
//! sequence of one or two steps not worth splitting: [`product_level`]): there each row chunk
//! projects its own rows at each step with the same register-blocked kernel, so the projection
//! runs in parallel with the recurrence instead of before it on its own, and its block stays in
//! cache (measured 1.1-1.6x faster forward, 1.02-1.3x forward + backward). For Elman and the
//! LSTM, whose gates need only the sum of both parts, the step is then one product
//! `[x_t | h] [W_ih; W_hh]^T + (b_ih + b_hh)` (up to 1.1x more; the GRU's n gate needs the
//! recurrent part on its own).

mod backward;
mod forward;
mod product;
mod split;

pub use backward::{backward, Grads};
pub use forward::forward;
pub use split::stream_floor;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::PARALLEL_GEMM_MACS;
use crate::par::Par;
use crate::simd::{self, Kernel};

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    RnnTanh,
    RnnRelu,
    Gru,
    Lstm,
}

impl Cell {
    /// Parses the names used by the bindings: `rnn_tanh`, `rnn_relu`, `gru`, `lstm`.
    pub fn parse(name: &str) -> Result<Cell> {
        match name {
            "rnn_tanh" => Ok(Cell::RnnTanh),
            "rnn_relu" => Ok(Cell::RnnRelu),
            "gru" => Ok(Cell::Gru),
            "lstm" => Ok(Cell::Lstm),
            other => Err(Error::Value(format!(
                "cell: expected 'rnn_tanh', 'rnn_relu', 'gru' or 'lstm', got {other:?}"
            ))),
        }
    }
    /// Gates per hidden unit: the row blocks of the weight matrices.
    pub fn gates(self) -> usize {
        match self {
            Cell::RnnTanh | Cell::RnnRelu => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }
    /// Whether the cell carries a cell state `c` (LSTM).
    pub fn has_c(self) -> bool {
        self == Cell::Lstm
    }
}

/// Sizes of one call: time steps, batch, input features, hidden units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub t: usize,
    pub b: usize,
    pub i: usize,
    pub h: usize,
}

/// One layer-direction's weights.
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a, T> {
    pub cell: Cell,
    /// `(G*H, I)`.
    pub w_ih: &'a [T],
    /// `(G*H, H)`.
    pub w_hh: &'a [T],
    /// `(G*H)` or none.
    pub b_ih: Option<&'a [T]>,
    /// `(G*H)` or none.
    pub b_hh: Option<&'a [T]>,
}

/// Length of the workspace the forward pass keeps for the backward pass:
/// gate activations `(T, B, G*H)`, the state before each step `(T, B, H)`, and for LSTM the
/// cell state before each step, for GRU `W_hn h + b_hn` of each step (`(T, B, H)` each).
pub fn workspace_len(cell: Cell, d: Dims) -> usize {
    let tb = d.t * d.b;
    let extra = if matches!(cell, Cell::Gru | Cell::Lstm) {
        tb * d.h
    } else {
        0
    };
    tb * cell.gates() * d.h + tb * d.h + extra
}

/// The multiply-adds of one [`forward`] call ([`backward`] makes about twice as many), or 0 when
/// the call has nothing to share between threads: one row chunk, too little streaming (or, below
/// AVX-512, too little work per step) to split the hidden units (`split.rs`), and whole-sequence
/// products below the threaded GEMM's size ([`PARALLEL_GEMM_MACS`]). Such a call runs its loops
/// sequentially wherever it runs, so the bindings run it on the calling thread and skip the
/// hand-off to a pool thread, which costs more than a short call's compute (at batch 1 and one
/// step, a GRU or LSTM of 128-256 units took 15-74 us on the calling thread against 33-141 us
/// through the pool, medians on a 2-vCPU virtual machine; see `split.rs`).
pub fn pool_work<T: 'static>(cell: Cell, d: Dims) -> usize {
    let macs = [d.b, d.i.saturating_add(d.h), cell.gates(), d.h]
        .iter()
        .fold(d.t, |m, &v| m.saturating_mul(v));
    let shared =
        n_chunks(d.b) > 1 || split::worth_splitting::<T>(cell, d) || macs >= PARALLEL_GEMM_MACS;
    if shared {
        macs
    } else {
        0
    }
}

/// How a call's loops and whole-sequence products run: sequentially when [`pool_work`] finds
/// nothing to share (the call may then be on a thread outside any pool).
pub(crate) fn par_for<T: 'static>(cell: Cell, d: Dims) -> Par {
    if pool_work::<T>(cell, d) == 0 {
        Par::Seq
    } else {
        Par::Rayon
    }
}

/// The SIMD level for a call's per-step products ([`simd::Level::Scalar`]: the general GEMM,
/// unpacked). One sequence of one or two steps that is not worth splitting takes the general GEMM's
/// matrix-vector products, which read the weights as they are, instead of the packed kernel, whose
/// packing pass (a transpose of all the weights, per call) costs more than such a call's steps: one
/// step of a GRU at (I, H) = (64, 256) took 23 us against 57 (median, kernel call, AVX-512 on Zen
/// 4; not measured on AVX2), of an LSTM 29 against 85; at (32, 128) 9 against 16 and 12 against 22;
/// two steps 1.1-1.5x faster. From four rows on, or at eight steps, the packed kernel was as fast
/// or faster. A call worth splitting keeps the packed kernel, which the split uses: it then gives
/// the same bits on one thread as on two. The sums run in another order, so such a call's results
/// may differ from the first steps of a longer sequence in the last bits (1e-7 to 1e-6 of the
/// outputs' scale in float32 at 128-256 units).
pub(crate) fn product_level<T: 'static>(level: simd::Level, cell: Cell, d: Dims) -> simd::Level {
    if d.b == 1 && d.t <= 2 && !split::worth_splitting::<T>(cell, d) {
        simd::Level::Scalar
    } else {
        level
    }
}

/// The parts of a workspace.
pub(crate) struct Parts<S> {
    pub gates: S,
    pub hprev: S,
    pub extra: S,
}

pub(crate) fn split_ws<T>(ws: &[T], cell: Cell, d: Dims) -> Parts<&[T]> {
    let tb = d.t * d.b;
    let (gates, rest) = ws.split_at(tb * cell.gates() * d.h);
    let (hprev, extra) = rest.split_at(tb * d.h);
    Parts {
        gates,
        hprev,
        extra,
    }
}

pub(crate) fn split_ws_mut<T>(ws: &mut [T], cell: Cell, d: Dims) -> Parts<&mut [T]> {
    let tb = d.t * d.b;
    let (gates, rest) = ws.split_at_mut(tb * cell.gates() * d.h);
    let (hprev, extra) = rest.split_at_mut(tb * d.h);
    Parts {
        gates,
        hprev,
        extra,
    }
}

fn check_len(arg: &str, got: usize, shape: &[usize]) -> Result<()> {
    // A product that overflows matches no slice (the sizes then fit no array in memory).
    let want = shape.iter().try_fold(1usize, |p, &v| p.checked_mul(v));
    if want != Some(got) {
        return Err(Error::Shape {
            arg: arg.into(),
            expected: shape.to_vec(),
            got: vec![got],
        });
    }
    Ok(())
}

/// Validates weights, inputs and lengths against `d` (before anything is written).
pub(crate) fn check_inputs<T: Float>(
    d: Dims,
    w: &Weights<'_, T>,
    x: &[T],
    h0: &[T],
    c0: Option<&[T]>,
    lengths: Option<&[i64]>,
) -> Result<()> {
    let gh = w.cell.gates().saturating_mul(d.h);
    check_len("x", x.len(), &[d.t, d.b, d.i])?;
    check_len("h0", h0.len(), &[d.b, d.h])?;
    check_len("w_ih", w.w_ih.len(), &[gh, d.i])?;
    check_len("w_hh", w.w_hh.len(), &[gh, d.h])?;
    if let Some(b) = w.b_ih {
        check_len("b_ih", b.len(), &[gh])?;
    }
    if let Some(b) = w.b_hh {
        check_len("b_hh", b.len(), &[gh])?;
    }
    match (w.cell.has_c(), c0) {
        (true, Some(c)) => check_len("c0", c.len(), &[d.b, d.h])?,
        (true, None) => {
            return Err(Error::Value(
                "c0: the LSTM needs an initial cell state".into(),
            ))
        }
        (false, Some(_)) => return Err(Error::Value("c0: only the LSTM has a cell state".into())),
        (false, None) => {}
    }
    if let Some(l) = lengths {
        check_len("lengths", l.len(), &[d.b])?;
        for (b, &v) in l.iter().enumerate() {
            if v < 1 || v as usize > d.t {
                return Err(Error::Value(format!(
                    "lengths[{b}]: must be in 1..={} (the number of time steps), got {v}",
                    d.t
                )));
            }
        }
    }
    for (name, xs) in [("h0", h0), ("c0", c0.unwrap_or(&[]))] {
        if has_non_finite(xs) {
            return Err(Error::Value(format!("{name}: contains NaN or infinity")));
        }
    }
    // Only real (active) positions of x must be numbers: padding is never read as data.
    if d.i > 0 && (lengths.is_some() || has_non_finite(x)) {
        for (row, xs) in x.chunks_exact(d.i).enumerate() {
            let (t, b) = (row / d.b.max(1), row % d.b.max(1));
            if active(lengths, t, b) && has_non_finite(xs) {
                return Err(Error::Value(format!(
                    "x: contains NaN or infinity (at step {t}, sequence {b})"
                )));
            }
        }
    }
    Ok(())
}

/// Whether `xs` holds a NaN or an infinity (either makes every later step NaN): one vectorised
/// pass (an early-exit search does not vectorise and was 2-4 % of a forward call).
fn has_non_finite<T: Float>(xs: &[T]) -> bool {
    struct Scan<'a, T>(&'a [T]);
    impl<T: Float> Kernel for Scan<'_, T> {
        type Output = bool;
        #[inline(always)]
        fn run(self) -> bool {
            self.0
                .chunks(256)
                .any(|c| c.iter().fold(false, |seen, v| seen | !v.is_finite()))
        }
    }
    simd::dispatch(simd::detect(), Scan(xs))
}

/// Batch rows per recurrence chunk for a batch of `b` rows. Rows of a batch never interact, so
/// chunks of rows run the whole sequence in parallel with no synchronisation between steps. The
/// chunking depends only on the batch size, never on the thread count, so results do not either.
/// Up to 8 rows make one chunk (the product's register block holds 8 rows and costs almost as
/// much for one); 9 to 64 rows make two, one per core of a small machine (16 rows: 1.2-1.4x
/// faster than one chunk); larger batches chunks of 32 (chunks of 8 measured 5-10 % slower at 32
/// and 64 rows).
pub(crate) fn chunk_len(b: usize) -> usize {
    match b {
        0..=8 => b.max(1),
        9..=64 => b.div_ceil(2),
        _ => 32,
    }
}

/// Number of row chunks of a batch of `b` rows.
pub(crate) fn n_chunks(b: usize) -> usize {
    b.div_ceil(chunk_len(b)).max(1)
}

/// Splits a `(T, B, w)` row-major buffer into, for every row chunk, its `T` blocks of
/// `rows * w` elements (empty blocks for an empty buffer).
pub(crate) fn chunk_rows_mut<T>(buf: &mut [T], t: usize, b: usize, w: usize) -> Vec<Vec<&mut [T]>> {
    let nc = n_chunks(b);
    let mut out: Vec<Vec<&mut [T]>> = (0..nc).map(|_| Vec::with_capacity(t)).collect();
    if buf.is_empty() || w == 0 || b == 0 {
        for v in out.iter_mut() {
            v.extend((0..t).map(|_| <&mut [T]>::default()));
        }
        return out;
    }
    let len = chunk_len(b);
    for step in buf.chunks_mut(b * w).take(t) {
        let mut rest = step;
        for (c, v) in out.iter_mut().enumerate() {
            let rows = len.min(b - c * len);
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(rows * w);
            v.push(head);
            rest = tail;
        }
    }
    out
}

/// Read-only [`chunk_rows_mut`].
pub(crate) fn chunk_rows<T>(buf: &[T], t: usize, b: usize, w: usize) -> Vec<Vec<&[T]>> {
    let nc = n_chunks(b);
    let mut out: Vec<Vec<&[T]>> = (0..nc).map(|_| Vec::with_capacity(t)).collect();
    if buf.is_empty() || w == 0 || b == 0 {
        for v in out.iter_mut() {
            v.extend((0..t).map(|_| &[][..]));
        }
        return out;
    }
    let len = chunk_len(b);
    for step in buf.chunks(b * w).take(t) {
        for (c, v) in out.iter_mut().enumerate() {
            let start = c * len * w;
            let rows = len.min(b - c * len);
            v.push(&step[start..start + rows * w]);
        }
    }
    out
}

/// Splits a `(B, w)` buffer into the row chunks' blocks.
pub(crate) fn chunk_state_mut<T>(buf: &mut [T], b: usize, w: usize) -> Vec<&mut [T]> {
    if buf.is_empty() {
        return (0..n_chunks(b)).map(|_| <&mut [T]>::default()).collect();
    }
    buf.chunks_mut(chunk_len(b) * w.max(1)).collect()
}

/// A zeroed buffer of `n` elements, or an error (not an abort) when memory runs out.
pub(crate) fn zeroed<T: Float>(n: usize, what: &str) -> Result<Vec<T>> {
    crate::mem::try_vec(n, T::ZERO, what)
}

/// Whether row `b` is active at time `t`.
#[inline(always)]
pub(crate) fn active(lengths: Option<&[i64]>, t: usize, b: usize) -> bool {
    lengths.is_none_or(|l| (t as i64) < l[b])
}

/// Time index of the `step`-th step of the forward pass.
#[inline(always)]
pub(crate) fn time(step: usize, t: usize, reverse: bool) -> usize {
    if reverse {
        t - 1 - step
    } else {
        step
    }
}
