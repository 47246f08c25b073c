//! TransE (Bordes et al. 2013): `s(h, r, t) = -||h + r - t||` with the L1 or the L2 norm (the
//! distance itself, not its square). Entity and relation rows have the same width.
//! 1-vs-all: tails `-||(h + r) - e||`, heads `-||e - (t - r)||`.

use super::{Form, Model, Side};
use crate::float::Float;

/// TransE with the L1 (`l1: true`) or the L2 norm.
#[derive(Clone, Copy, Debug)]
pub struct TransE {
    pub l1: bool,
}

impl Model for TransE {
    fn name(&self) -> &'static str {
        if self.l1 {
            "transe_l1"
        } else {
            "transe_l2"
        }
    }

    fn rel_width(&self, d_e: usize) -> Option<usize> {
        Some(d_e)
    }

    #[inline(always)]
    fn score<T: Float>(&self, h: &[T], r: &[T], t: &[T]) -> T {
        let mut acc = T::ZERO;
        for j in 0..h.len() {
            let v = h[j] + r[j] - t[j];
            acc = acc + if self.l1 { v.abs() } else { v * v };
        }
        if self.l1 {
            -acc
        } else {
            -acc.sqrt()
        }
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
        // d s / d v = -sign(v) (L1) or -v / ||v|| (L2), with v = h + r - t.
        let scale = if self.l1 {
            up
        } else {
            let norm = -self.score(h, r, t);
            if norm == T::ZERO {
                return;
            }
            up / norm
        };
        for j in 0..h.len() {
            let v = h[j] + r[j] - t[j];
            let g = scale * if self.l1 { v.sign() } else { v };
            gh[j] = gh[j] - g;
            gr[j] = gr[j] - g;
            gt[j] = gt[j] + g;
        }
    }

    fn form(&self) -> Form {
        if self.l1 {
            Form::NegL1
        } else {
            Form::NegL2
        }
    }

    #[inline(always)]
    fn query<T: Float>(&self, x: &[T], r: &[T], side: Side, q: &mut [T]) {
        for j in 0..q.len() {
            q[j] = match side {
                Side::Tail => x[j] + r[j],
                Side::Head => x[j] - r[j],
            };
        }
    }

    #[inline(always)]
    fn query_grad<T: Float>(
        &self,
        _x: &[T],
        _r: &[T],
        side: Side,
        dq: &[T],
        dx: &mut [T],
        dr: &mut [T],
    ) {
        for j in 0..dq.len() {
            dx[j] = dx[j] + dq[j];
            dr[j] = match side {
                Side::Tail => dr[j] + dq[j],
                Side::Head => dr[j] - dq[j],
            };
        }
    }
}
