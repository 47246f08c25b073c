//! DistMult (Yang et al. 2015): `s(h, r, t) = sum_j h_j r_j t_j`. Entity and relation rows have
//! the same width. 1-vs-all: `<h o r, e>` for tails, `<r o t, e>` for heads (one GEMM).

use super::{Form, Model, Side};
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct DistMult;

impl Model for DistMult {
    fn name(&self) -> &'static str {
        "distmult"
    }

    fn rel_width(&self, d_e: usize) -> Option<usize> {
        Some(d_e)
    }

    #[inline(always)]
    fn score<T: Float>(&self, h: &[T], r: &[T], t: &[T]) -> T {
        let mut acc = T::ZERO;
        for j in 0..h.len() {
            acc = acc + h[j] * r[j] * t[j];
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
        for j in 0..h.len() {
            gh[j] = gh[j] + up * r[j] * t[j];
            gr[j] = gr[j] + up * h[j] * t[j];
            gt[j] = gt[j] + up * h[j] * r[j];
        }
    }

    fn form(&self) -> Form {
        Form::Dot
    }

    #[inline(always)]
    fn query<T: Float>(&self, x: &[T], r: &[T], _side: Side, q: &mut [T]) {
        for j in 0..q.len() {
            q[j] = x[j] * r[j];
        }
    }

    #[inline(always)]
    fn query_grad<T: Float>(
        &self,
        x: &[T],
        r: &[T],
        _side: Side,
        dq: &[T],
        dx: &mut [T],
        dr: &mut [T],
    ) {
        for j in 0..dq.len() {
            dx[j] = dx[j] + dq[j] * r[j];
            dr[j] = dr[j] + dq[j] * x[j];
        }
    }
}
