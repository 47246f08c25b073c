//! Backpropagation through time for one recurrent layer (see the module docs).

use super::{active, check_inputs, split_ws, time, workspace_len, Cell, Dims, Weights};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, Gemm, Mat, MatMut};

/// Gradients of one layer-direction. `dx`, `dh0`, `dc0` are overwritten; `dw_ih`, `dw_hh`,
/// `db_ih`, `db_hh` are ACCUMULATED into (`+=`), as module parameter gradients are.
pub struct Grads<'a, T> {
    pub dx: &'a mut [T],
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
    out: Grads<'_, T>,
) -> Result<()> {
    check_inputs(d, w, x, h0, c0, lengths)?;
    let (cell, h) = (w.cell, d.h);
    let gh = cell.gates() * h;
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
    let sizes_ok = out.dx.len() == tb * d.i
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
        return Err(Error::Value("gradient buffers of the wrong size".into()));
    }
    let parts = split_ws(ws, cell, d);

    // Gate pre-activation gradients of every step. The input and recurrent paths differ only
    // for the GRU's n gate (its recurrent part is multiplied by r), so other cells share one.
    let mut dg_x = vec![T::ZERO; tb * gh];
    let mut dg_h = if cell == Cell::Gru {
        vec![T::ZERO; tb * gh]
    } else {
        Vec::new()
    };
    let mut dh = dhn.to_vec();
    let mut dc = dcn.map(|c| c.to_vec()).unwrap_or_default();
    let mut direct = vec![T::ZERO; bh]; // GRU: dh' / dh through z * h
    let mut back = vec![T::ZERO; bh]; // dG_h(t) W_hh

    for step in (0..d.t).rev() {
        let t = time(step, d.t, reverse);
        let rows = t * d.b..(t + 1) * d.b;
        let g_t = &parts.gates[rows.start * gh..rows.end * gh];
        let hp_t = &parts.hprev[rows.start * h..rows.end * h];
        let ex_t = &parts.extra[if parts.extra.is_empty() {
            0..0
        } else {
            rows.start * h..rows.end * h
        }];
        let dy_t = &dy[rows.start * h..rows.end * h];
        let dgx_t = &mut dg_x[rows.start * gh..rows.end * gh];
        for b in 0..d.b {
            if !active(lengths, t, b) {
                continue; // gradients pass through; dG rows stay 0
            }
            let gb = &g_t[b * gh..(b + 1) * gh];
            let dhb = &mut dh[b * h..(b + 1) * h];
            for (v, &u) in dhb.iter_mut().zip(&dy_t[b * h..(b + 1) * h]) {
                *v = *v + u;
            }
            let dgb = &mut dgx_t[b * gh..(b + 1) * gh];
            match cell {
                Cell::RnnTanh => {
                    for j in 0..h {
                        dgb[j] = dhb[j] * (T::ONE - gb[j] * gb[j]);
                    }
                }
                Cell::RnnRelu => {
                    for j in 0..h {
                        dgb[j] = if gb[j] > T::ZERO { dhb[j] } else { T::ZERO };
                    }
                }
                Cell::Gru => {
                    let hpb = &hp_t[b * h..(b + 1) * h];
                    let ghn = &ex_t[b * h..(b + 1) * h];
                    let dghb = &mut dg_h[(rows.start + b) * gh..(rows.start + b + 1) * gh];
                    for j in 0..h {
                        let (r, z, n) = (gb[j], gb[h + j], gb[2 * h + j]);
                        let dn = dhb[j] * (T::ONE - z);
                        let dz = dhb[j] * (hpb[j] - n);
                        direct[b * h + j] = dhb[j] * z;
                        let dn_pre = dn * (T::ONE - n * n);
                        let dr_pre = dn_pre * ghn[j] * r * (T::ONE - r);
                        let dz_pre = dz * z * (T::ONE - z);
                        dgb[j] = dr_pre;
                        dgb[h + j] = dz_pre;
                        dgb[2 * h + j] = dn_pre;
                        dghb[j] = dr_pre;
                        dghb[h + j] = dz_pre;
                        dghb[2 * h + j] = dn_pre * r;
                    }
                }
                Cell::Lstm => {
                    let cpb = &ex_t[b * h..(b + 1) * h];
                    let dcb = &mut dc[b * h..(b + 1) * h];
                    for j in 0..h {
                        let (i, f, g, o) = (gb[j], gb[h + j], gb[2 * h + j], gb[3 * h + j]);
                        let c = f * cpb[j] + i * g;
                        let tc = c.tanh();
                        let d_o = dhb[j] * tc;
                        let dct = dcb[j] + dhb[j] * o * (T::ONE - tc * tc);
                        dgb[j] = dct * g * i * (T::ONE - i);
                        dgb[h + j] = dct * cpb[j] * f * (T::ONE - f);
                        dgb[2 * h + j] = dct * i * (T::ONE - g * g);
                        dgb[3 * h + j] = d_o * o * (T::ONE - o);
                        dcb[j] = dct * f;
                    }
                }
            }
        }
        // Gradient reaching the previous state: dG_h(t) W_hh (+ the GRU's direct z path).
        let dgh_t: &[T] = if cell == Cell::Gru {
            &dg_h[rows.start * gh..rows.end * gh]
        } else {
            &dg_x[rows.start * gh..rows.end * gh]
        };
        gemm(
            T::ONE,
            Mat::new(dgh_t, d.b, gh),
            Mat::new(w.w_hh, gh, h),
            T::ZERO,
            MatMut::new(&mut back, d.b, h),
        );
        for b in 0..d.b {
            if !active(lengths, t, b) {
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
    out.dh0.copy_from_slice(&dh);
    if let Some(dc0) = out.dc0 {
        dc0.copy_from_slice(&dc);
    }
    let dg_h_all: &[T] = if cell == Cell::Gru { &dg_h } else { &dg_x };
    // dx = dG_x W_ih;  dW_ih += dG_x^T x;  dW_hh += dG_h^T h_prev.
    gemm(
        T::ONE,
        Mat::new(&dg_x, tb, gh),
        Mat::new(w.w_ih, gh, d.i),
        T::ZERO,
        MatMut::new(out.dx, tb, d.i),
    );
    gemm(
        T::ONE,
        Mat::new(&dg_x, tb, gh).t(),
        Mat::new(x, tb, d.i),
        T::ONE,
        MatMut::new(out.dw_ih, gh, d.i),
    );
    gemm(
        T::ONE,
        Mat::new(dg_h_all, tb, gh).t(),
        Mat::new(parts.hprev, tb, h),
        T::ONE,
        MatMut::new(out.dw_hh, gh, h),
    );
    if let Some(db) = out.db_ih {
        column_sums(&dg_x, gh, db);
    }
    if let Some(db) = out.db_hh {
        column_sums(dg_h_all, gh, db);
    }
    Ok(())
}

/// `acc[j] += sum_r m[r, j]`, rows in order.
fn column_sums<T: Float>(m: &[T], cols: usize, acc: &mut [T]) {
    for row in m.chunks_exact(cols) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a = *a + v;
        }
    }
}
