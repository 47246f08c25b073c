//! Forward pass of one recurrent layer over a batch of sequences (see the module docs).

use super::{active, check_inputs, split_ws_mut, time, workspace_len, Cell, Dims, Weights};
use crate::error::{Error, Result};
use crate::linalg::{gemm, Gemm, Mat, MatMut};

/// Runs the layer over all `T` steps.
///
/// Writes `y (T, B, H)`, the final states `hn`, `cn (B, H)` (`cn` for LSTM only) and, when given,
/// the workspace for [`backward`](super::backward) (`workspace_len` elements). Without a
/// workspace (inference) the per-step buffers are the only allocation. Everything is validated
/// before anything is written.
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
    cn: Option<&mut [T]>,
    ws: Option<&mut [T]>,
) -> Result<()> {
    check_inputs(d, w, x, h0, c0, lengths)?;
    let (cell, g, h) = (w.cell, w.cell.gates(), d.h);
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

    // Gate pre-activations of all steps: x W_ih^T + b_ih, one GEMM; activations overwrite them.
    // Without a workspace (inference) the gates live in a buffer of our own.
    let mut own_gates: Vec<T> = if ws.is_none() {
        vec![T::ZERO; tb * gh]
    } else {
        Vec::new()
    };
    let (gates, mut hprev_ws, mut extra_ws): (&mut [T], Option<&mut [T]>, Option<&mut [T]>) =
        match ws.map(|ws| split_ws_mut(ws, cell, d)) {
            Some(p) => (p.gates, Some(p.hprev), Some(p.extra)),
            None => (&mut own_gates, None, None),
        };
    gemm(
        T::ONE,
        Mat::new(x, tb, d.i),
        Mat::new(w.w_ih, gh, d.i).t(),
        T::ZERO,
        MatMut::new(gates, tb, gh),
    );
    if let Some(b) = w.b_ih {
        for row in gates.chunks_exact_mut(gh) {
            for (v, &bv) in row.iter_mut().zip(b) {
                *v = *v + bv;
            }
        }
    }

    let mut hcur = h0.to_vec();
    let mut ccur = c0.map(|c| c.to_vec()).unwrap_or_default();
    let mut hp = vec![T::ZERO; d.b * gh];
    for step in 0..d.t {
        let t = time(step, d.t, reverse);
        let here = t * d.b * h..(t + 1) * d.b * h;
        if let Some(hp_ws) = hprev_ws.as_deref_mut() {
            hp_ws[here.clone()].copy_from_slice(&hcur);
        }
        if let (true, Some(ex)) = (cell.has_c(), extra_ws.as_deref_mut()) {
            ex[here.clone()].copy_from_slice(&ccur);
        }
        // Recurrent projection of this step: h W_hh^T + b_hh.
        gemm(
            T::ONE,
            Mat::new(&hcur, d.b, h),
            Mat::new(w.w_hh, gh, h).t(),
            T::ZERO,
            MatMut::new(&mut hp, d.b, gh),
        );
        if let Some(b) = w.b_hh {
            for row in hp.chunks_exact_mut(gh) {
                for (v, &bv) in row.iter_mut().zip(b) {
                    *v = *v + bv;
                }
            }
        }
        let gates_t = &mut gates[t * d.b * gh..(t + 1) * d.b * gh];
        let y_t = &mut y[here.clone()];
        let mut ghn_t = extra_ws
            .as_deref_mut()
            .filter(|_| cell == Cell::Gru)
            .map(|ex| &mut ex[here]);
        for b in 0..d.b {
            let yb = &mut y_t[b * h..(b + 1) * h];
            let gb = &mut gates_t[b * gh..(b + 1) * gh];
            let hb = &mut hcur[b * h..(b + 1) * h];
            let hpb = &hp[b * gh..(b + 1) * gh];
            if !active(lengths, t, b) {
                yb.fill(T::ZERO);
                gb.fill(T::ZERO);
                continue;
            }
            match cell {
                Cell::RnnTanh | Cell::RnnRelu => {
                    for j in 0..h {
                        let pre = gb[j] + hpb[j];
                        let v = if cell == Cell::RnnTanh {
                            pre.tanh()
                        } else if pre > T::ZERO {
                            pre
                        } else {
                            T::ZERO
                        };
                        gb[j] = v;
                        hb[j] = v;
                        yb[j] = v;
                    }
                }
                Cell::Gru => {
                    for j in 0..h {
                        let r = (gb[j] + hpb[j]).sigmoid();
                        let z = (gb[h + j] + hpb[h + j]).sigmoid();
                        let hn_pre = hpb[2 * h + j];
                        let n = (gb[2 * h + j] + r * hn_pre).tanh();
                        let v = (T::ONE - z) * n + z * hb[j];
                        gb[j] = r;
                        gb[h + j] = z;
                        gb[2 * h + j] = n;
                        if let Some(ghn) = ghn_t.as_deref_mut() {
                            ghn[b * h + j] = hn_pre;
                        }
                        hb[j] = v;
                        yb[j] = v;
                    }
                }
                Cell::Lstm => {
                    let cb = &mut ccur[b * h..(b + 1) * h];
                    for j in 0..h {
                        let i = (gb[j] + hpb[j]).sigmoid();
                        let f = (gb[h + j] + hpb[h + j]).sigmoid();
                        let gg = (gb[2 * h + j] + hpb[2 * h + j]).tanh();
                        let o = (gb[3 * h + j] + hpb[3 * h + j]).sigmoid();
                        let c = f * cb[j] + i * gg;
                        let v = o * c.tanh();
                        gb[j] = i;
                        gb[h + j] = f;
                        gb[2 * h + j] = gg;
                        gb[3 * h + j] = o;
                        cb[j] = c;
                        hb[j] = v;
                        yb[j] = v;
                    }
                }
            }
        }
    }
    hn.copy_from_slice(&hcur);
    if let Some(cn) = cn {
        cn.copy_from_slice(&ccur);
    }
    Ok(())
}
