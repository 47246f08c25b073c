//! RotatE (Sun et al. 2019): `s(h, r, t) = -sum_j |h_j e^{i theta_j} - t_j|` (L1 over complex
//! moduli, as the authors' code); entity rows are `2k` reals `[re | im]`, relation rows the `k`
//! phases `theta` in radians (the rotation has modulus 1 by construction).
//! 1-vs-all: tails `-sum_j |q_j - e_j|` with `q = h e^{i theta}`; heads the same with
//! `q = t e^{-i theta}` (multiplying by `e^{-i theta}` keeps every modulus).

use super::{halves, halves_mut, Form, Model, Side};
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct RotatE;

impl Model for RotatE {
    fn name(&self) -> &'static str {
        "rotate"
    }

    fn rel_width(&self, d_e: usize) -> Option<usize> {
        d_e.is_multiple_of(2).then_some(d_e / 2)
    }

    #[inline(always)]
    fn score<T: Float>(&self, h: &[T], r: &[T], t: &[T]) -> T {
        score_with(h, t, r.len(), |j| r[j].sin_cos())
    }

    #[inline(always)]
    fn grad<T: Float>(
        &self,
        h: &[T],
        r: &[T],
        t: &[T],
        up: T,
        gh: &mut [T],
        gr: &mut [T],
        gt: &mut [T],
    ) {
        grad_with(h, t, r.len(), |j| r[j].sin_cos(), up, gh, gr, gt)
    }

    fn form(&self) -> Form {
        Form::NegModulus
    }

    #[inline(always)]
    fn query<T: Float>(&self, x: &[T], r: &[T], side: Side, q: &mut [T]) {
        let (xr, xi) = halves(x);
        let (qr, qi) = halves_mut(q);
        for j in 0..r.len() {
            let (mut s, c) = r[j].sin_cos();
            if side == Side::Head {
                s = -s;
            }
            qr[j] = xr[j] * c - xi[j] * s;
            qi[j] = xr[j] * s + xi[j] * c;
        }
    }

    #[inline(always)]
    fn query_grad<T: Float>(
        &self,
        x: &[T],
        r: &[T],
        side: Side,
        dq: &[T],
        dx: &mut [T],
        dr: &mut [T],
    ) {
        // q = x e^{i phi}, phi = +-theta: dq/dx is the rotation, dq/dphi = i q.
        let ((xr, xi), (gr, gi)) = (halves(x), halves(dq));
        let (dxr, dxi) = halves_mut(dx);
        for j in 0..r.len() {
            let (mut s, c) = r[j].sin_cos();
            let sign = if side == Side::Head { -T::ONE } else { T::ONE };
            s = sign * s;
            let (qr, qi) = (xr[j] * c - xi[j] * s, xr[j] * s + xi[j] * c);
            dxr[j] = dxr[j] + gr[j] * c + gi[j] * s;
            dxi[j] = dxi[j] - gr[j] * s + gi[j] * c;
            dr[j] = dr[j] + sign * (-gr[j] * qi + gi[j] * qr);
        }
    }

    fn complex_rows(&self) -> (bool, bool) {
        (true, false)
    }

    fn prepared_width(&self, d_r: usize) -> usize {
        2 * d_r
    }

    fn prepare<T: Float>(&self, r: &[T], out: &mut [T]) {
        let (c, s) = halves_mut(out);
        for j in 0..r.len() {
            (s[j], c[j]) = r[j].sin_cos();
        }
    }

    #[inline(always)]
    fn score_prepared<T: Float>(&self, h: &[T], rp: &[T], t: &[T]) -> T {
        let (c, s) = halves(rp);
        score_with(h, t, c.len(), |j| (s[j], c[j]))
    }

    #[inline(always)]
    fn grad_prepared<T: Float>(
        &self,
        h: &[T],
        rp: &[T],
        t: &[T],
        up: T,
        gh: &mut [T],
        gr: &mut [T],
        gt: &mut [T],
    ) {
        let (c, s) = halves(rp);
        grad_with(h, t, c.len(), |j| (s[j], c[j]), up, gh, gr, gt)
    }
}

/// The score with the rotation of component `j` given as `(sin, cos) = rot(j)` (computed from
/// the phase, or read from a prepared relation row).
#[inline(always)]
fn score_with<T: Float>(h: &[T], t: &[T], k: usize, rot: impl Fn(usize) -> (T, T)) -> T {
    let ((hr, hi), (tr, ti)) = (halves(h), halves(t));
    let mut acc = T::ZERO;
    for j in 0..k {
        let (s, c) = rot(j);
        let er = hr[j] * c - hi[j] * s - tr[j];
        let ei = hr[j] * s + hi[j] * c - ti[j];
        acc = acc + (er * er + ei * ei).sqrt();
    }
    -acc
}

/// The gradient, with the rotation as in [`score_with`]; `gr` receives d/d(phase).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn grad_with<T: Float>(
    h: &[T],
    t: &[T],
    k: usize,
    rot: impl Fn(usize) -> (T, T),
    up: T,
    gh: &mut [T],
    gr: &mut [T],
    gt: &mut [T],
) {
    let ((hr, hi), (tr, ti)) = (halves(h), halves(t));
    let (ghr, ghi) = halves_mut(gh);
    let (gtr, gti) = halves_mut(gt);
    for j in 0..k {
        let (s, c) = rot(j);
        let (ar, ai) = (hr[j] * c - hi[j] * s, hr[j] * s + hi[j] * c);
        let (er, ei) = (ar - tr[j], ai - ti[j]);
        let m = (er * er + ei * ei).sqrt();
        if m == T::ZERO {
            continue;
        }
        // d s / d e = -e / |e| per component.
        let (g_re, g_im) = (-up * er / m, -up * ei / m);
        ghr[j] = ghr[j] + g_re * c + g_im * s;
        ghi[j] = ghi[j] - g_re * s + g_im * c;
        gr[j] = gr[j] - g_re * ai + g_im * ar;
        gtr[j] = gtr[j] - g_re;
        gti[j] = gti[j] - g_im;
    }
}
