//! Backpropagation through time for one recurrent layer (see the module docs).

use super::product::Recurrent;
use super::split;
use super::{
    active, check_inputs, chunk_len, chunk_rows, chunk_rows_mut, chunk_state_mut, n_chunks,
    split_ws, time, workspace_len, zeroed, Cell, Dims, Weights,
};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, Gemm, Mat, MatMut};
use crate::simd::{self, Kernel};

/// Gradients of one layer-direction. `dx`, `dh0`, `dc0` are overwritten; `dw_ih`, `dw_hh`,
/// `db_ih`, `db_hh` are ACCUMULATED into (`+=`), as module parameter gradients are. Without
/// `dx` (a first layer, whose input is data) its product `dG W_ih` is not made.
pub struct Grads<'a, T> {
    pub dx: Option<&'a mut [T]>,
    pub dh0: &'a mut [T],
    pub dc0: Option<&'a mut [T]>,
    pub dw_ih: &'a mut [T],
    pub dw_hh: &'a mut [T],
    pub db_ih: Option<&'a mut [T]>,
    pub db_hh: Option<&'a mut [T]>,
}

/// Backward pass from the upstream gradients `dy (T, B, H)`, `dhn`, `dcn (B, H)` and the
/// workspace written by [`forward`](super::forward) with the same inputs. Validates everything
/// before writing. Three GEMMs over all steps give `dx`, `dW_ih`, `dW_hh`; each step makes one
/// GEMM for the gradient flowing to the previous state.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Gemm>(
    d: Dims,
    w: &Weights<'_, T>,
    x: &[T],
    h0: &[T],
    c0: Option<&[T]>,
    lengths: Option<&[i64]>,
    reverse: bool,
    ws: &[T],
    dy: &[T],
    dhn: &[T],
    dcn: Option<&[T]>,
    mut out: Grads<'_, T>,
) -> Result<()> {
    check_inputs(d, w, x, h0, c0, lengths)?;
    let (cell, h) = (w.cell, d.h);
    let gh = cell.gates() * h;
    // Sequential loops and products when the call has nothing to share (see `forward`).
    let par = super::par_for::<T>(cell, d);
    let tb = d.t * d.b;
    let bh = d.b * h;
    if ws.len() != workspace_len(cell, d) {
        return Err(Error::len("workspace", workspace_len(cell, d), ws.len()));
    }
    for (name, len, want) in [("dy", dy.len(), tb * h), ("dhn", dhn.len(), bh)] {
        if len != want {
            return Err(Error::len(name, want, len));
        }
    }
    if cell.has_c() != dcn.is_some() || dcn.is_some_and(|c| c.len() != bh) {
        return Err(Error::Value(format!(
            "dcn: expected {bh} values for the LSTM, none otherwise"
        )));
    }
    let dx_ok = out.dx.as_ref().is_none_or(|dx| dx.len() == tb * d.i);
    let sizes_ok = dx_ok
        && out.dh0.len() == bh
        && out.dc0.as_ref().map_or(!cell.has_c(), |c| c.len() == bh)
        && out.dw_ih.len() == gh * d.i
        && out.dw_hh.len() == gh * h
        && out
            .db_ih
            .as_ref()
            .map_or(w.b_ih.is_none(), |b| b.len() == gh)
        && out
            .db_hh
            .as_ref()
            .map_or(w.b_hh.is_none(), |b| b.len() == gh);
    if !sizes_ok {
        let names = [
            ("dx", dx_ok),
            ("dh0", out.dh0.len() == bh),
            (
                "dc0",
                out.dc0.as_ref().map_or(!cell.has_c(), |c| c.len() == bh),
            ),
            ("dw_ih", out.dw_ih.len() == gh * d.i),
            ("dw_hh", out.dw_hh.len() == gh * h),
            (
                "db_ih",
                out.db_ih
                    .as_ref()
                    .map_or(w.b_ih.is_none(), |b| b.len() == gh),
            ),
            (
                "db_hh",
                out.db_hh
                    .as_ref()
                    .map_or(w.b_hh.is_none(), |b| b.len() == gh),
            ),
        ];
        let bad = names
            .iter()
            .find(|(_, ok)| !ok)
            .map_or("gradients", |(n, _)| *n);
        return Err(Error::Value(format!(
            "{bad}: gradient buffer of the wrong size (or missing, or given where there is \
             nothing to accumulate)"
        )));
    }
    if gh == 0 {
        // No hidden units: nothing flows; the input gets no gradient.
        if let Some(dx) = out.dx {
            dx.fill(T::ZERO);
        }
        return Ok(());
    }
    let parts = split_ws(ws, cell, d);

    // Gate pre-activation gradients of every step. The input and recurrent paths differ only
    // for the GRU's n gate (its recurrent part is multiplied by r), so other cells share one.
    let mut dg_x = zeroed(tb * gh, "gate gradient buffer")?;
    let mut dg_h = if cell == Cell::Gru {
        zeroed(tb * gh, "gate gradient buffer")?
    } else {
        Vec::new()
    };
    // Padded positions of x never reach the weight gradient, not even as 0 * inf = NaN.
    let masked;
    let x = match lengths {
        Some(_) if d.i > 0 => {
            let mut m = zeroed(tb * d.i, "input copy")?;
            for (row, (dst, src)) in m.chunks_exact_mut(d.i).zip(x.chunks_exact(d.i)).enumerate() {
                if active(lengths, row / d.b, row % d.b) {
                    dst.copy_from_slice(src);
                }
            }
            masked = m;
            &masked[..]
        }
        _ => x,
    };
    // The recurrence backwards: chunks of batch rows run all steps independently, in parallel
    // (one small batch with large weights: two threads, the hidden units cut in two).
    let split = split::applies(d, w)
        && split::backward(
            d,
            w,
            &parts,
            dy,
            dhn,
            dcn,
            lengths,
            reverse,
            &mut dg_x,
            &mut dg_h,
            &mut *out.dh0,
            out.dc0.as_deref_mut(),
        );
    if !split {
        let g_rows = chunk_rows(parts.gates, d.t, d.b, gh);
        let hp_rows = chunk_rows(parts.hprev, d.t, d.b, h);
        let ex_rows = chunk_rows(parts.extra, d.t, d.b, h);
        let dy_rows = chunk_rows(dy, d.t, d.b, h);
        let mut dgx_rows = chunk_rows_mut(&mut dg_x, d.t, d.b, gh);
        let mut dgh_rows = chunk_rows_mut(&mut dg_h, d.t, d.b, gh);
        let mut dh0_rows = chunk_state_mut(out.dh0, d.b, h);
        let dc0_store = out.dc0;
        let mut dc0_rows = match dc0_store {
            Some(c) => chunk_state_mut(c, d.b, h),
            None => chunk_state_mut(&mut [], d.b, h),
        };
        let mut jobs = Vec::with_capacity(n_chunks(d.b));
        for (c, (((g, hp), ex), dyc)) in g_rows
            .into_iter()
            .zip(hp_rows)
            .zip(ex_rows)
            .zip(dy_rows)
            .enumerate()
            .rev()
        {
            let start = c * chunk_len(d.b);
            jobs.push(BackChunk {
                rows: start..(start + chunk_len(d.b)).min(d.b),
                g,
                hp,
                ex,
                dy: dyc,
                dgx: dgx_rows.pop().unwrap_or_default(),
                dgh: dgh_rows.pop().unwrap_or_default(),
                dh0: dh0_rows.pop().unwrap_or_default(),
                dc0: dc0_rows.pop().unwrap_or_default(),
            });
        }
        let work = d.t * d.b * gh * (h + 8);
        let w_hh = Recurrent::rows(
            super::product_level::<T>(simd::detect(), cell, d),
            w.w_hh,
            gh,
            h,
        );
        let sums = out.db_ih.is_some() || out.db_hh.is_some();
        let run = |job: BackChunk<'_, T>| job.run(d, w, &w_hh, dhn, dcn, lengths, reverse, sums);
        // Jobs were pushed last chunk first: the bias sums are added back in chunk order.
        let mut chunk_sums = par.for_work(work / 64).map(jobs, run);
        chunk_sums.reverse();
        add_bias_sums(
            cell,
            &chunk_sums,
            out.db_ih.as_deref_mut(),
            out.db_hh.as_deref_mut(),
        );
    } else if out.db_ih.is_some() || out.db_hh.is_some() {
        // The split path (one chunk): the same sums, in the same order, after the recurrence.
        let recurrent = match cell {
            Cell::Gru => bias_sums(d, gh, &dg_h, reverse),
            _ => Vec::new(), // the same as the input path's
        };
        let sums = [bias_sums(d, gh, &dg_x, reverse), recurrent];
        add_bias_sums(
            cell,
            &[sums],
            out.db_ih.as_deref_mut(),
            out.db_hh.as_deref_mut(),
        );
    }
    let dg_h_all: &[T] = if cell == Cell::Gru { &dg_h } else { &dg_x };
    // dx = dG_x W_ih;  dW_ih += dG_x^T x;  dW_hh += dG_h^T h_prev.
    if let Some(dx) = out.dx {
        gemm(
            par,
            T::ONE,
            Mat::new(&dg_x, tb, gh),
            Mat::new(w.w_ih, gh, d.i),
            T::ZERO,
            MatMut::new(dx, tb, d.i),
        );
    }
    gemm(
        par,
        T::ONE,
        Mat::new(&dg_x, tb, gh).t(),
        Mat::new(x, tb, d.i),
        T::ONE,
        MatMut::new(out.dw_ih, gh, d.i),
    );
    gemm(
        par,
        T::ONE,
        Mat::new(dg_h_all, tb, gh).t(),
        Mat::new(parts.hprev, tb, h),
        T::ONE,
        MatMut::new(out.dw_hh, gh, h),
    );
    Ok(())
}

/// The bias gradients of one row chunk, `[input path, recurrent path]` (the recurrent path's
/// only for the GRU; the other cells' are the input path's): its rows' gate gradients summed
/// step by step in the order the recurrence visits them (last step first), each step's rows
/// in order.
type ChunkSums<T> = [Vec<T>; 2];

/// Adds the chunks' bias sums to `db_ih` and `db_hh`, chunk by chunk in order. The chunks
/// depend only on the batch size, so the bits do not depend on the thread count.
fn add_bias_sums<T: Float>(
    cell: Cell,
    chunks: &[ChunkSums<T>],
    db_ih: Option<&mut [T]>,
    db_hh: Option<&mut [T]>,
) {
    for (db, path) in [(db_ih, 0), (db_hh, if cell == Cell::Gru { 1 } else { 0 })] {
        if let Some(db) = db {
            for sums in chunks {
                for (a, &v) in db.iter_mut().zip(&sums[path]) {
                    *a = *a + v;
                }
            }
        }
    }
}

/// The bias sums of a batch that is one row chunk (the split path), from its gate gradients
/// `dg (T, B, G*H)`, in the order [`BackChunk::run`] adds them.
fn bias_sums<T: Float>(d: Dims, gh: usize, dg: &[T], reverse: bool) -> Vec<T> {
    debug_assert_eq!(n_chunks(d.b), 1);
    let mut acc = vec![T::ZERO; gh];
    for step in (0..d.t).rev() {
        let t = time(step, d.t, reverse);
        column_sums(&dg[t * d.b * gh..(t + 1) * d.b * gh], gh, &mut acc);
    }
    acc
}

/// The rows of one chunk in the backward pass.
struct BackChunk<'a, T> {
    rows: std::ops::Range<usize>,
    g: Vec<&'a [T]>,
    hp: Vec<&'a [T]>,
    ex: Vec<&'a [T]>,
    dy: Vec<&'a [T]>,
    dgx: Vec<&'a mut [T]>,
    dgh: Vec<&'a mut [T]>,
    dh0: &'a mut [T],
    dc0: &'a mut [T],
}

impl<T: Gemm> BackChunk<'_, T> {
    /// Runs all steps backwards for the chunk's rows.
    #[allow(clippy::too_many_arguments)]
    fn run(
        mut self,
        d: Dims,
        w: &Weights<'_, T>,
        w_hh: &Recurrent<'_, T>,
        dhn: &[T],
        dcn: Option<&[T]>,
        lengths: Option<&[i64]>,
        reverse: bool,
        sums: bool,
    ) -> ChunkSums<T> {
        let (cell, h) = (w.cell, d.h);
        let gh = cell.gates() * h;
        let rb = self.rows.len();
        // Bias gradients: each step's gate gradients are added while they are in cache.
        let n_sums = if sums { gh } else { 0 };
        let n_rec = if cell == Cell::Gru { n_sums } else { 0 };
        let mut db = [vec![T::ZERO; n_sums], vec![T::ZERO; n_rec]];
        let span = self.rows.start * h..self.rows.end * h;
        let mut dh = dhn[span.clone()].to_vec();
        let mut dc = dcn.map(|c| c[span].to_vec()).unwrap_or_default();
        let mut direct = vec![T::ZERO; rb * h]; // GRU: dh' / dh through z * h
        let mut back = vec![T::ZERO; rb * h]; // dG_h(t) W_hh
        let mut scratch = Vec::new();
        let mut on = vec![true; rb];
        let level = simd::detect();
        for step in (0..d.t).rev() {
            let t = time(step, d.t, reverse);
            for (i, a) in on.iter_mut().enumerate() {
                *a = active(lengths, t, self.rows.start + i);
            }
            let dgh: &mut [T] = if cell == Cell::Gru {
                &mut *self.dgh[t]
            } else {
                &mut []
            };
            simd::dispatch(
                level,
                BackStep {
                    cell,
                    h,
                    active: &on,
                    g: self.g[t],
                    hp: self.hp[t],
                    ex: self.ex[t],
                    dy: self.dy[t],
                    dh: &mut dh,
                    dc: &mut dc,
                    dgx: &mut *self.dgx[t],
                    dgh,
                    direct: &mut direct,
                },
            );
            // Gradient reaching the previous state: dG_h(t) W_hh (+ the GRU's direct z path).
            let dgh_t: &[T] = if cell == Cell::Gru {
                &*self.dgh[t]
            } else {
                &*self.dgx[t]
            };
            if sums {
                column_sums(self.dgx[t], gh, &mut db[0]);
                if cell == Cell::Gru {
                    column_sums(dgh_t, gh, &mut db[1]);
                }
            }
            w_hh.apply(dgh_t, None, &mut back, &mut scratch);
            for (b, &a) in on.iter().enumerate() {
                if !a {
                    continue;
                }
                for j in 0..h {
                    let k = b * h + j;
                    dh[k] = if cell == Cell::Gru {
                        back[k] + direct[k]
                    } else {
                        back[k]
                    };
                }
            }
        }
        self.dh0.copy_from_slice(&dh);
        if !self.dc0.is_empty() {
            self.dc0.copy_from_slice(&dc);
        }
        db
    }
}

/// `acc[j] += sum_r m[r, j]`, rows in order (the same bits at every SIMD level).
fn column_sums<T: Float>(m: &[T], cols: usize, acc: &mut [T]) {
    struct Sums<'a, T> {
        m: &'a [T],
        cols: usize,
        acc: &'a mut [T],
    }
    impl<T: Float> Kernel for Sums<'_, T> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            for row in self.m.chunks_exact(self.cols) {
                for (a, &v) in self.acc.iter_mut().zip(row) {
                    *a = *a + v;
                }
            }
        }
    }
    simd::dispatch(simd::detect(), Sums { m, cols, acc });
}

/// The gate gradients of one time step for all rows, compiled per SIMD level. Writes the gate
/// pre-activation gradients (`dgx`, and for the GRU the recurrent-path `dgh`), adds `dy` into
/// `dh`, and advances the LSTM's `dc` and the GRU's direct path `direct`.
/// `h` is the number of units the blocks hold per row (all of them, or one part's in
/// `split.rs`).
pub(super) struct BackStep<'a, T> {
    pub(super) cell: Cell,
    pub(super) h: usize,
    pub(super) active: &'a [bool],
    pub(super) g: &'a [T],
    pub(super) hp: &'a [T],
    pub(super) ex: &'a [T],
    pub(super) dy: &'a [T],
    pub(super) dh: &'a mut [T],
    pub(super) dc: &'a mut [T],
    pub(super) dgx: &'a mut [T],
    pub(super) dgh: &'a mut [T],
    pub(super) direct: &'a mut [T],
}

impl<T: Float> Kernel for BackStep<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (h, gh) = (self.h, self.cell.gates() * self.h);
        for (b, &on) in self.active.iter().enumerate() {
            if !on {
                continue; // gradients pass through; the step's dG rows stay 0
            }
            let row = b * h..(b + 1) * h;
            let gb = &self.g[b * gh..(b + 1) * gh];
            let dhb = &mut self.dh[row.clone()];
            for (v, &u) in dhb.iter_mut().zip(&self.dy[row.clone()]) {
                *v = *v + u;
            }
            let dgb = &mut self.dgx[b * gh..(b + 1) * gh];
            match self.cell {
                Cell::RnnTanh => {
                    let (dgb, gb) = (&mut dgb[..h], &gb[..h]);
                    for j in 0..h {
                        dgb[j] = dhb[j] * (T::ONE - gb[j] * gb[j]);
                    }
                }
                Cell::RnnRelu => {
                    let (dgb, gb) = (&mut dgb[..h], &gb[..h]);
                    for j in 0..h {
                        dgb[j] = if gb[j] > T::ZERO { dhb[j] } else { T::ZERO };
                    }
                }
                Cell::Gru => {
                    let (dr, rest) = dgb.split_at_mut(h);
                    let (dz, dn) = rest.split_at_mut(h);
                    let dghb = &mut self.dgh[b * gh..(b + 1) * gh];
                    let (hr, rest) = dghb.split_at_mut(h);
                    let (hz, hn) = rest.split_at_mut(h);
                    let gates = [&gb[..h], &gb[h..2 * h], &gb[2 * h..3 * h]];
                    let inputs = [&self.hp[row.clone()], &self.ex[row.clone()]];
                    gru_back(
                        gates,
                        inputs,
                        dhb,
                        dr,
                        dz,
                        dn,
                        hr,
                        hz,
                        hn,
                        &mut self.direct[row],
                    );
                }
                Cell::Lstm => {
                    let (di, rest) = dgb.split_at_mut(h);
                    let (df, rest) = rest.split_at_mut(h);
                    let (dg, d_o) = rest.split_at_mut(h);
                    let gates = [
                        &gb[..h],
                        &gb[h..2 * h],
                        &gb[2 * h..3 * h],
                        &gb[3 * h..4 * h],
                    ];
                    lstm_back(
                        gates,
                        &self.ex[row.clone()],
                        dhb,
                        &mut self.dc[row],
                        di,
                        df,
                        dg,
                        d_o,
                    );
                }
            }
        }
    }
}

/// Each output block is its own `&mut` argument: only arguments carry LLVM's no-alias
/// attribute (references inside an array do not), and without it this loop stayed scalar.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_back<T: Float>(
    g: [&[T]; 3],
    inputs: [&[T]; 2],
    dh: &[T],
    xr: &mut [T],
    xz: &mut [T],
    xn: &mut [T],
    hr: &mut [T],
    hz: &mut [T],
    hn: &mut [T],
    direct: &mut [T],
) {
    let h = dh.len();
    let (r, z, n) = (&g[0][..h], &g[1][..h], &g[2][..h]);
    let (hp, ghn) = (&inputs[0][..h], &inputs[1][..h]);
    let (xr, xz, xn) = (&mut xr[..h], &mut xz[..h], &mut xn[..h]);
    let (hr, hz, hn, direct) = (&mut hr[..h], &mut hz[..h], &mut hn[..h], &mut direct[..h]);
    for j in 0..h {
        let dn = dh[j] * (T::ONE - z[j]);
        let dz = dh[j] * (hp[j] - n[j]);
        direct[j] = dh[j] * z[j];
        let dn_pre = dn * (T::ONE - n[j] * n[j]);
        let dr_pre = dn_pre * ghn[j] * r[j] * (T::ONE - r[j]);
        let dz_pre = dz * z[j] * (T::ONE - z[j]);
        xr[j] = dr_pre;
        xz[j] = dz_pre;
        xn[j] = dn_pre;
        hr[j] = dr_pre;
        hz[j] = dz_pre;
        hn[j] = dn_pre * r[j];
    }
}

#[inline(always)]
fn lstm_back<T: Float>(
    g: [&[T]; 4],
    cprev: &[T],
    dh: &[T],
    dc: &mut [T],
    di: &mut [T],
    df: &mut [T],
    dg: &mut [T],
    d_o: &mut [T],
) {
    let h = dh.len();
    let (i, f, gg, o) = (&g[0][..h], &g[1][..h], &g[2][..h], &g[3][..h]);
    let (cprev, dc) = (&cprev[..h], &mut dc[..h]);
    let (di, df, dg, d_o) = (&mut di[..h], &mut df[..h], &mut dg[..h], &mut d_o[..h]);
    for j in 0..h {
        let c = f[j] * cprev[j] + i[j] * gg[j];
        let tc = c.tanh();
        let dct = dc[j] + dh[j] * o[j] * (T::ONE - tc * tc);
        di[j] = dct * gg[j] * i[j] * (T::ONE - i[j]);
        df[j] = dct * cprev[j] * f[j] * (T::ONE - f[j]);
        dg[j] = dct * i[j] * (T::ONE - gg[j] * gg[j]);
        d_o[j] = dh[j] * tc * o[j] * (T::ONE - o[j]);
        dc[j] = dct * f[j];
    }
}
