//! Forward pass of one recurrent layer over a batch of sequences (see the module docs).

use super::product::Recurrent;
use super::split;
use super::{
    active, check_inputs, chunk_len, chunk_rows, chunk_rows_mut, chunk_state_mut, n_chunks,
    split_ws_mut, time, workspace_len, zeroed, Cell, Dims, Weights,
};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, Gemm, Mat, MatMut};
use crate::simd::{self, Kernel};

/// Runs the layer over all `T` steps.
///
/// Writes every element of `y (T, B, H)` (zeros at padded steps), the final states `hn`,
/// `cn (B, H)` (`cn` for LSTM only) and, when given, the workspace for
/// [`backward`](super::backward) (`workspace_len` elements), so they may start uninitialised.
/// Without a workspace (inference) the per-step buffers are the only allocation. Everything is
/// validated before anything is written.
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Gemm>(
    d: Dims,
    w: &Weights<'_, T>,
    x: &[T],
    h0: &[T],
    c0: Option<&[T]>,
    lengths: Option<&[i64]>,
    reverse: bool,
    y: &mut [T],
    hn: &mut [T],
    mut cn: Option<&mut [T]>,
    mut ws: Option<&mut [T]>,
) -> Result<()> {
    check_inputs(d, w, x, h0, c0, lengths)?;
    let (cell, g, h) = (w.cell, w.cell.gates(), d.h);
    // Sequential loops and products when the call has nothing to share (it may then run on the
    // caller's thread, outside the pool).
    let par = super::par_for::<T>(cell, d);
    let gh = g * h;
    let tb = d.t * d.b;
    if y.len() != tb * h || hn.len() != d.b * h || cn.as_ref().is_some_and(|c| c.len() != d.b * h) {
        return Err(Error::Value(
            "y, hn, cn: output buffers of the wrong size".into(),
        ));
    }
    if cell.has_c() != cn.is_some() {
        return Err(Error::Value(
            "cn: needed for, and only for, the LSTM".into(),
        ));
    }
    if let Some(ws) = &ws {
        if ws.len() != workspace_len(cell, d) {
            return Err(Error::len("workspace", workspace_len(cell, d), ws.len()));
        }
    }
    if gh == 0 {
        // No hidden units: empty outputs; the LSTM's cell state is empty too.
        return Ok(());
    }

    // Gate pre-activations x W_ih^T + b_ih. Where the per-step product is packed (f32, AVX2 or
    // AVX-512) each chunk projects its own rows step by step, in parallel and into a block that
    // stays in cache (inference needs no gate buffer for the whole sequence then); for Elman and
    // the LSTM, whose gates need only the sum of both parts, together with the recurrent part as
    // one product `[x_t | h] [W_ih; W_hh]^T + (b_ih + b_hh)`. Otherwise one GEMM over all
    // steps, before the recurrence. Activations overwrite the pre-activations.
    let level = simd::detect();
    if split::applies(d, w)
        && split::forward(
            level,
            d,
            w,
            x,
            h0,
            c0,
            lengths,
            reverse,
            y,
            hn,
            cn.as_deref_mut(),
            ws.as_deref_mut(),
        )
    {
        return Ok(()); // one small batch on two threads (`split.rs`)
    }
    let products = StepProducts::new(super::product_level::<T>(level, cell, d), w, d);
    let per_step = products.per_step();
    let (gates, hprev_ws, extra_ws) = match ws.map(|ws| split_ws_mut(ws, cell, d)) {
        Some(p) => (Some(p.gates), Some(p.hprev), Some(p.extra)),
        None => (None, None, None),
    };
    let mut own_gates: Vec<T>;
    let mut gates: Option<&mut [T]> = match gates {
        Some(g) => Some(g),
        None if per_step => None, // each chunk keeps one step's block
        None => {
            own_gates = zeroed(tb * gh, "gate buffer")?;
            Some(&mut own_gates)
        }
    };
    if !per_step {
        let all = gates.as_deref_mut().unwrap_or_default();
        gemm(
            par,
            T::ONE,
            Mat::new(x, tb, d.i),
            Mat::new(w.w_ih, gh, d.i).t(),
            T::ZERO,
            MatMut::new(all, tb, gh),
        );
        if let Some(b) = w.b_ih {
            for row in all.chunks_exact_mut(gh) {
                for (v, &bv) in row.iter_mut().zip(b) {
                    *v = *v + bv;
                }
            }
        }
    }

    // The recurrence: chunks of batch rows run all steps independently, in parallel.
    let mut hprev_rows = match hprev_ws {
        Some(hp) => chunk_rows_mut(hp, d.t, d.b, h),
        None => chunk_rows_mut(&mut [], d.t, d.b, h),
    };
    let mut extra_rows = match extra_ws {
        Some(ex) => chunk_rows_mut(ex, d.t, d.b, h),
        None => chunk_rows_mut(&mut [], d.t, d.b, h),
    };
    let mut gate_rows = chunk_rows_mut(gates.unwrap_or_default(), d.t, d.b, gh);
    let mut x_rows = chunk_rows(x, d.t, d.b, d.i);
    let mut y_rows = chunk_rows_mut(y, d.t, d.b, h);
    let mut hn_rows = chunk_state_mut(hn, d.b, h);
    let cn_store = cn;
    let mut cn_rows = match cn_store {
        Some(c) => chunk_state_mut(c, d.b, h),
        None => chunk_state_mut(&mut [], d.b, h),
    };
    let mut jobs = Vec::with_capacity(n_chunks(d.b));
    for c in (0..n_chunks(d.b)).rev() {
        let start = c * chunk_len(d.b);
        jobs.push(Chunk {
            rows: start..(start + chunk_len(d.b)).min(d.b),
            x: x_rows.pop().unwrap_or_default(),
            gates: gate_rows.pop().unwrap_or_default(),
            y: y_rows.pop().unwrap_or_default(),
            hprev: hprev_rows.pop().unwrap_or_default(),
            extra: extra_rows.pop().unwrap_or_default(),
            hn: hn_rows.pop().unwrap_or_default(),
            cn: cn_rows.pop().unwrap_or_default(),
        });
    }
    let work = d.t * d.b * gh * (h + d.i + 8);
    let run = |job: Chunk<'_, T>| job.run(d, w, &products, h0, c0, lengths, reverse);
    par.for_work(work / 64).for_each(jobs, run);
    Ok(())
}

/// The per-step products of one call, packed once and shared by the row chunks.
///
/// The GRU keeps two products a step: the input parts of all three gates (`I` values deep),
/// then their recurrent parts (`H` deep). Tried on AVX2 (Zen 3) and not kept: three, the r and
/// z gates as one product over `[x_t | h]` (`I + H` deep, like Elman's and the LSTM's step) and
/// the n gate's two parts apart. Its products alone ran 1.06-1.09x faster at (B, I, H) = (16,
/// 32, 128), one thread, but the whole forward 0.97-1.01x (200 rounds interleaved with this
/// form, three runs).
struct StepProducts<'a, T> {
    /// `[W_ih; W_hh]^T` with `b_ih + b_hh` (Elman and LSTM, packed kernel only).
    stacked: Option<(Recurrent<'a, T>, Option<Vec<T>>)>,
    /// `W_ih^T`, applied per step when packed (else the projection is one GEMM beforehand).
    input: Option<Recurrent<'a, T>>,
    /// `W_hh^T`, unless stacked.
    recurrent: Option<Recurrent<'a, T>>,
}

impl<'a, T: Gemm> StepProducts<'a, T> {
    fn new(level: simd::Level, w: &Weights<'a, T>, d: Dims) -> Self {
        let gh = w.cell.gates() * d.h;
        let stacked = if w.cell == Cell::Gru {
            None
        } else {
            Recurrent::stacked(level, w.w_ih, d.i, w.w_hh, d.h, gh)
        };
        if let Some(both) = stacked {
            let bias = match (w.b_ih, w.b_hh) {
                (Some(a), Some(b)) => Some(a.iter().zip(b).map(|(&u, &v)| u + v).collect()),
                (Some(a), None) | (None, Some(a)) => Some(a.to_vec()),
                (None, None) => None,
            };
            return StepProducts {
                stacked: Some((both, bias)),
                input: None,
                recurrent: None,
            };
        }
        let input = Recurrent::transposed(level, w.w_ih, gh, d.i);
        StepProducts {
            stacked: None,
            input: input.is_packed().then_some(input),
            recurrent: Some(Recurrent::transposed(level, w.w_hh, gh, d.h)),
        }
    }

    /// Whether the chunks project the inputs themselves, step by step.
    fn per_step(&self) -> bool {
        self.stacked.is_some() || self.input.is_some()
    }
}

/// The rows of one chunk: its blocks of every step's gates, outputs and workspace, and of the
/// final states.
struct Chunk<'a, T> {
    rows: std::ops::Range<usize>,
    /// The rows' inputs at every step.
    x: Vec<&'a [T]>,
    /// Gate blocks of every step (the workspace's, or the whole-sequence projection's); empty
    /// blocks when the chunk projects step by step without a workspace.
    gates: Vec<&'a mut [T]>,
    y: Vec<&'a mut [T]>,
    hprev: Vec<&'a mut [T]>,
    extra: Vec<&'a mut [T]>,
    hn: &'a mut [T],
    cn: &'a mut [T],
}

impl<T: Gemm> Chunk<'_, T> {
    /// Runs all steps for the chunk's rows (sequentially: the chunks are the parallelism).
    #[allow(clippy::too_many_arguments)]
    fn run(
        mut self,
        d: Dims,
        w: &Weights<'_, T>,
        products: &StepProducts<'_, T>,
        h0: &[T],
        c0: Option<&[T]>,
        lengths: Option<&[i64]>,
        reverse: bool,
    ) {
        let (cell, h) = (w.cell, d.h);
        let gh = cell.gates() * h;
        let rb = self.rows.len();
        let span = self.rows.start * h..self.rows.end * h;
        let mut hcur = h0[span.clone()].to_vec();
        let mut ccur = c0.map(|c| c[span].to_vec()).unwrap_or_default();
        let fused = products.stacked.is_some();
        let mut hp = vec![T::ZERO; if fused { 0 } else { rb * gh }];
        let mut scratch = Vec::new();
        // GRU without a workspace: W_hn h + b_hn of the step goes to a scratch block.
        let mut ghn_scratch = vec![T::ZERO; if cell == Cell::Gru { rb * h } else { 0 }];
        let mut on = vec![true; rb];
        let stored = self.gates.first().is_some_and(|b| !b.is_empty());
        let mut own_gates = vec![T::ZERO; if stored { 0 } else { rb * gh }];
        let level = simd::detect();
        for step in 0..d.t {
            let t = time(step, d.t, reverse);
            let gates: &mut [T] = match self.gates.get_mut(t) {
                Some(block) if stored => block,
                _ => &mut own_gates,
            };
            if let Some(p) = &products.input {
                // This step's input projection x_t W_ih^T + b_ih for the chunk's rows.
                p.apply(self.x[t], w.b_ih, gates, &mut scratch);
            }
            if let Some(block) = self.hprev.get_mut(t).filter(|b| !b.is_empty()) {
                block.copy_from_slice(&hcur);
            }
            if cell.has_c() {
                if let Some(block) = self.extra.get_mut(t).filter(|b| !b.is_empty()) {
                    block.copy_from_slice(&ccur);
                }
            }
            match (&products.stacked, &products.recurrent) {
                // The whole pre-activation: [x_t | h] [W_ih; W_hh]^T + b_ih + b_hh.
                (Some((both, bias)), _) => {
                    both.apply_stacked(self.x[t], &hcur, bias.as_deref(), gates)
                }
                // Recurrent projection of this step: h W_hh^T + b_hh.
                (None, Some(p)) => p.apply(&hcur, w.b_hh, &mut hp, &mut scratch),
                (None, None) => unreachable!("a step has a recurrent product"),
            }
            for (i, a) in on.iter_mut().enumerate() {
                *a = active(lengths, t, self.rows.start + i);
            }
            let ghn: &mut [T] = match self.extra.get_mut(t) {
                Some(block) if cell == Cell::Gru && !block.is_empty() => block,
                _ => &mut ghn_scratch,
            };
            let kernel = StepKernel {
                cell,
                h,
                active: &on,
                gates,
                hp: &hp,
                hcur: &mut hcur,
                ccur: &mut ccur,
                y: &mut *self.y[t],
                ghn,
            };
            simd::dispatch(level, kernel);
        }
        self.hn.copy_from_slice(&hcur);
        if !self.cn.is_empty() {
            self.cn.copy_from_slice(&ccur);
        }
    }
}

/// The gate arithmetic of one time step for all rows, compiled per SIMD level. `h` is the
/// number of units the blocks hold per row (all of them, or one part's in `split.rs`).
pub(super) struct StepKernel<'a, T> {
    pub(super) cell: Cell,
    pub(super) h: usize,
    pub(super) active: &'a [bool],
    /// Gate pre-activations `x W_ih^T + b_ih` of the step in, activations out: `(B, G*H)`.
    pub(super) gates: &'a mut [T],
    /// `h W_hh^T + b_hh`: `(B, G*H)`.
    pub(super) hp: &'a [T],
    pub(super) hcur: &'a mut [T],
    pub(super) ccur: &'a mut [T],
    pub(super) y: &'a mut [T],
    /// GRU: `W_hn h + b_hn` is kept here for the backward pass.
    pub(super) ghn: &'a mut [T],
}

impl<T: Float> Kernel for StepKernel<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (h, gh) = (self.h, self.cell.gates() * self.h);
        for (b, &on) in self.active.iter().enumerate() {
            let yb = &mut self.y[b * h..(b + 1) * h];
            let gb = &mut self.gates[b * gh..(b + 1) * gh];
            if !on {
                // Padding: zeros everywhere the step writes (outputs may start uninitialised).
                yb.fill(T::ZERO);
                gb.fill(T::ZERO);
                if let Some(ghn) = self.ghn.get_mut(b * h..(b + 1) * h) {
                    ghn.fill(T::ZERO);
                }
                continue;
            }
            let hb = &mut self.hcur[b * h..(b + 1) * h];
            // Empty `hp`: the gate blocks already hold the whole pre-activation (the stacked
            // product of Elman and LSTM steps).
            let fused = self.hp.is_empty();
            let hpb = if fused {
                &[][..]
            } else {
                &self.hp[b * gh..(b + 1) * gh]
            };
            // Each gate block goes in as its own argument: `&mut` arguments are known not to
            // alias, which lets LLVM vectorise without run-time overlap checks.
            match (self.cell, fused) {
                (Cell::RnnTanh, false) => elman::<T, false>(gb, hpb, hb, yb, true),
                (Cell::RnnTanh, true) => elman::<T, true>(gb, hpb, hb, yb, true),
                (Cell::RnnRelu, false) => elman::<T, false>(gb, hpb, hb, yb, false),
                (Cell::RnnRelu, true) => elman::<T, true>(gb, hpb, hb, yb, false),
                (Cell::Lstm, true) => {
                    let (gi, rest) = gb.split_at_mut(h);
                    let (gf, rest) = rest.split_at_mut(h);
                    let (gg, go) = rest.split_at_mut(h);
                    let cb = &mut self.ccur[b * h..(b + 1) * h];
                    lstm::<T, true>(gi, gf, gg, go, [&[]; 4], hb, yb, cb)
                }
                (Cell::Gru, _) => {
                    let (gr, rest) = gb.split_at_mut(h);
                    let (gz, gn) = rest.split_at_mut(h);
                    let (pr, rest) = hpb.split_at(h);
                    let (pz, pn) = rest.split_at(h);
                    let ghn = &mut self.ghn[b * h..(b + 1) * h];
                    gru(gr, gz, gn, [pr, pz, pn], hb, yb, ghn)
                }
                (Cell::Lstm, false) => {
                    let (gi, rest) = gb.split_at_mut(h);
                    let (gf, rest) = rest.split_at_mut(h);
                    let (gg, go) = rest.split_at_mut(h);
                    let (pi, rest) = hpb.split_at(h);
                    let (pf, rest) = rest.split_at(h);
                    let (pg, po) = rest.split_at(h);
                    let cb = &mut self.ccur[b * h..(b + 1) * h];
                    lstm::<T, false>(gi, gf, gg, go, [pi, pf, pg, po], hb, yb, cb)
                }
            }
        }
    }
}

/// `FUSED`: `g` holds the whole pre-activation and `hp` is empty.
#[inline(always)]
fn elman<T: Float, const FUSED: bool>(
    g: &mut [T],
    hp: &[T],
    hb: &mut [T],
    y: &mut [T],
    tanh: bool,
) {
    let h = hb.len();
    let (g, hp, y) = (&mut g[..h], if FUSED { hp } else { &hp[..h] }, &mut y[..h]);
    for j in 0..h {
        let pre = if FUSED { g[j] } else { g[j] + hp[j] };
        let v = if tanh {
            pre.tanh()
        } else if pre > T::ZERO {
            pre
        } else {
            T::ZERO
        };
        g[j] = v;
        hb[j] = v;
        y[j] = v;
    }
}

#[inline(always)]
fn gru<T: Float>(
    gr: &mut [T],
    gz: &mut [T],
    gn: &mut [T],
    p: [&[T]; 3],
    hb: &mut [T],
    y: &mut [T],
    ghn: &mut [T],
) {
    let h = hb.len();
    let (gr, gz, gn, y, ghn) = (
        &mut gr[..h],
        &mut gz[..h],
        &mut gn[..h],
        &mut y[..h],
        &mut ghn[..h],
    );
    let (pr, pz, pn) = (&p[0][..h], &p[1][..h], &p[2][..h]);
    // One activation per loop (see `lstm`; 1.3x faster than one loop for all three).
    activate::<T, false>(gr, pr, T::sigmoid);
    activate::<T, false>(gz, pz, T::sigmoid);
    for j in 0..h {
        let (r, z) = (gr[j], gz[j]);
        let n = (gn[j] + r * pn[j]).tanh();
        let v = (T::ONE - z) * n + z * hb[j];
        gn[j] = n;
        ghn[j] = pn[j];
        hb[j] = v;
        y[j] = v;
    }
}

/// `FUSED`: the gate blocks hold the whole pre-activations and `p` is empty.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm<T: Float, const FUSED: bool>(
    gi: &mut [T],
    gf: &mut [T],
    gg: &mut [T],
    go: &mut [T],
    p: [&[T]; 4],
    hb: &mut [T],
    y: &mut [T],
    cb: &mut [T],
) {
    let h = hb.len();
    let (gi, gf, gg, go) = (&mut gi[..h], &mut gf[..h], &mut gg[..h], &mut go[..h]);
    let (y, cb) = (&mut y[..h], &mut cb[..h]);
    let [pi, pf, pg, po] = p.map(|q| if FUSED { q } else { &q[..h] });
    // One activation per loop (as in `gru`): each element's chain of dependent operations is
    // then short enough for the out-of-order core to overlap many elements. One loop with all
    // five activations waited on its chain: 1.3x slower for rows of 256 units (about the same
    // at 128). Every element sees the same operations either way, so the bits do not change.
    activate::<T, FUSED>(gi, pi, T::sigmoid);
    activate::<T, FUSED>(gf, pf, T::sigmoid);
    activate::<T, FUSED>(gg, pg, T::tanh);
    activate::<T, FUSED>(go, po, T::sigmoid);
    for j in 0..h {
        let c = gf[j] * cb[j] + gi[j] * gg[j];
        let v = go[j] * c.tanh();
        cb[j] = c;
        hb[j] = v;
        y[j] = v;
    }
}

/// `g = f(g + p)` element-wise (`FUSED`: `g = f(g)`, `p` unused).
#[inline(always)]
fn activate<T: Float, const FUSED: bool>(g: &mut [T], p: &[T], f: impl Fn(T) -> T) {
    if FUSED {
        for v in g.iter_mut() {
            *v = f(*v);
        }
    } else {
        for (v, &q) in g.iter_mut().zip(p) {
            *v = f(*v + q);
        }
    }
}
