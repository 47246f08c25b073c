//! ComplEx (Trouillon et al. 2016): `s(h, r, t) = Re(sum_j h_j r_j conj(t_j))` over `k` complex
//! components; entity and relation rows are `2k` reals stored `[re | im]`.
//! 1-vs-all (one GEMM): tails `<q, e>` with `q = h r` (`[re | im]`), heads `<q, e>` with
//! `q = [Re(r conj t) | -Im(r conj t)]`, since `Re(e r conj t) = e_re b_re - e_im b_im`.

use super::{halves, halves_mut, Form, Model, Side};
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct ComplEx;

impl Model for ComplEx {
    fn name(&self) -> &'static str {
        "complex"
    }

    fn rel_width(&self, d_e: usize) -> Option<usize> {
        d_e.is_multiple_of(2).then_some(d_e)
    }

    #[inline(always)]
    fn score<T: Float>(&self, h: &[T], r: &[T], t: &[T]) -> T {
        let ((hr, hi), (rr, ri), (tr, ti)) = (halves(h), halves(r), halves(t));
        let mut acc = T::ZERO;
        for j in 0..hr.len() {
            acc = acc + hr[j] * rr[j] * tr[j] + hi[j] * rr[j] * ti[j] + hr[j] * ri[j] * ti[j]
                - hi[j] * ri[j] * tr[j];
        }
        acc
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
        let ((hr, hi), (rr, ri), (tr, ti)) = (halves(h), halves(r), halves(t));
        let (ghr, ghi) = halves_mut(gh);
        let (grr, gri) = halves_mut(gr);
        let (gtr, gti) = halves_mut(gt);
        for j in 0..hr.len() {
            ghr[j] = ghr[j] + up * (rr[j] * tr[j] + ri[j] * ti[j]);
            ghi[j] = ghi[j] + up * (rr[j] * ti[j] - ri[j] * tr[j]);
            grr[j] = grr[j] + up * (hr[j] * tr[j] + hi[j] * ti[j]);
            gri[j] = gri[j] + up * (hr[j] * ti[j] - hi[j] * tr[j]);
            gtr[j] = gtr[j] + up * (hr[j] * rr[j] - hi[j] * ri[j]);
            gti[j] = gti[j] + up * (hi[j] * rr[j] + hr[j] * ri[j]);
        }
    }

    fn form(&self) -> Form {
        Form::Dot
    }

    #[inline(always)]
    fn query<T: Float>(&self, x: &[T], r: &[T], side: Side, q: &mut [T]) {
        let ((xr, xi), (rr, ri)) = (halves(x), halves(r));
        let (qr, qi) = halves_mut(q);
        for j in 0..xr.len() {
            match side {
                Side::Tail => {
                    qr[j] = xr[j] * rr[j] - xi[j] * ri[j];
                    qi[j] = xr[j] * ri[j] + xi[j] * rr[j];
                }
                Side::Head => {
                    qr[j] = rr[j] * xr[j] + ri[j] * xi[j];
                    qi[j] = rr[j] * xi[j] - ri[j] * xr[j];
                }
            }
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
        let ((xr, xi), (rr, ri), (gr, gi)) = (halves(x), halves(r), halves(dq));
        let (dxr, dxi) = halves_mut(dx);
        let (drr, dri) = halves_mut(dr);
        for j in 0..xr.len() {
            match side {
                // q = [xr rr - xi ri, xr ri + xi rr]
                Side::Tail => {
                    dxr[j] = dxr[j] + gr[j] * rr[j] + gi[j] * ri[j];
                    dxi[j] = dxi[j] - gr[j] * ri[j] + gi[j] * rr[j];
                    drr[j] = drr[j] + gr[j] * xr[j] + gi[j] * xi[j];
                    dri[j] = dri[j] - gr[j] * xi[j] + gi[j] * xr[j];
                }
                // q = [rr xr + ri xi, rr xi - ri xr]
                Side::Head => {
                    dxr[j] = dxr[j] + gr[j] * rr[j] - gi[j] * ri[j];
                    dxi[j] = dxi[j] + gr[j] * ri[j] + gi[j] * rr[j];
                    drr[j] = drr[j] + gr[j] * xr[j] + gi[j] * xi[j];
                    dri[j] = dri[j] + gr[j] * xi[j] - gi[j] * xr[j];
                }
            }
        }
    }

    fn complex_rows(&self) -> (bool, bool) {
        (true, true)
    }
}
