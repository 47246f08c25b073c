//! RMSprop with momentum and the centered variant (`torch.optim.RMSprop`).
//!
//! ```text
//! g   = -grad if maximize else grad
//! g   = g + weight_decay * p
//! sq  = alpha * sq + (1 - alpha) * g * g
//! centered: ga = lerp(ga, g, 1 - alpha); avg = sqrt(sq - ga * ga) + eps
//! else:     avg = sqrt(sq) + eps
//! momentum > 0: buf = momentum * buf + g / avg; p = p - lr * buf
//! else:         p = p - lr * g / avg
//! ```

use super::{closed_unit, cut, cut_mut, flag, non_negative, row, Rule, State};
use crate::error::Result;
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct RmspropGroup {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

pub struct Rmsprop {
    pub groups: Vec<RmspropGroup>,
}

const COLUMNS: &[&str] = &[
    "lr",
    "alpha",
    "eps",
    "weight_decay",
    "momentum",
    "centered",
    "maximize",
];

#[derive(Clone, Copy, Debug)]
pub struct RmspropCoef<T> {
    pub neg_lr: T,
    pub alpha: T,
    pub w: T,
    pub eps: T,
    pub l2: T,
    /// Whether to add the L2 term, decided on the `f64` option as torch does.
    pub use_l2: bool,
    pub momentum: T,
    pub use_buf: bool,
    pub centered: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for Rmsprop {
    const COLUMNS: &'static [&'static str] = COLUMNS;
    const STATE: &'static [&'static str] = &["square_avg", "momentum_buffer", "grad_avg"];
    type Coef = RmspropCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| {
                let r = row(rows, g, COLUMNS)?;
                Ok(RmspropGroup {
                    lr: non_negative(g, "lr", r[0])?,
                    // Stricter than torch (alpha >= 0, momentum >= 0): an alpha above 1 makes
                    // the square average negative, a momentum above 1 grows without bound.
                    alpha: closed_unit(g, "alpha", r[1])?,
                    eps: non_negative(g, "eps", r[2])?,
                    weight_decay: non_negative(g, "weight_decay", r[3])?,
                    momentum: closed_unit(g, "momentum", r[4])?,
                    centered: flag(g, "centered", r[5])?,
                    maximize: flag(g, "maximize", r[6])?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Rmsprop { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, group: usize) -> usize {
        let g = &self.groups[group];
        if g.centered {
            3
        } else if g.momentum > 0.0 {
            2
        } else {
            1
        }
    }
    fn coef(&self, group: usize, _: u64, _: &mut f64) -> RmspropCoef<T> {
        let g = &self.groups[group];
        RmspropCoef {
            neg_lr: T::of(-g.lr),
            alpha: T::of(g.alpha),
            w: T::of(1.0 - g.alpha),
            eps: T::of(g.eps),
            l2: T::of(g.weight_decay),
            use_l2: g.weight_decay != 0.0,
            momentum: T::of(g.momentum),
            use_buf: g.momentum > 0.0,
            centered: g.centered,
            maximize: g.maximize,
        }
    }
    #[inline(always)]
    fn apply(c: &RmspropCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        let n = p.len();
        let c = *c;
        let [sq, buf, ga] = s;
        cut!(n; g);
        cut_mut!(n; p, sq);
        let use_buf = c.use_buf;
        let buf = if use_buf { &mut buf[..n] } else { &mut [][..] };
        let ga = if c.centered {
            &mut ga[..n]
        } else {
            &mut [][..]
        };
        for i in 0..n {
            let mut gi = if c.maximize { -g[i] } else { g[i] };
            if c.use_l2 {
                gi = gi + c.l2 * p[i];
            }
            sq[i] = sq[i] * c.alpha + c.w * gi * gi;
            let avg = if c.centered {
                ga[i] = ga[i].lerp(gi, c.w);
                (sq[i] + -ga[i] * ga[i]).sqrt() + c.eps
            } else {
                sq[i].sqrt() + c.eps
            };
            if use_buf {
                buf[i] = buf[i] * c.momentum + gi / avg;
                p[i] = p[i] + c.neg_lr * buf[i];
            } else {
                p[i] = p[i] + c.neg_lr * gi / avg;
            }
        }
    }
}
