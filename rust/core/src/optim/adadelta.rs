//! Adadelta (`torch.optim.Adadelta`).
//!
//! ```text
//! g     = -grad if maximize else grad
//! g     = g + weight_decay * p
//! sq    = rho * sq + (1 - rho) * g * g
//! delta = sqrt(acc + eps) / sqrt(sq + eps) * g
//! acc   = rho * acc + (1 - rho) * delta * delta
//! p     = p - lr * delta
//! ```

use super::{cut, cut_mut, flag, non_negative, row, Rule, State};
use crate::error::Result;
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct AdadeltaGroup {
    pub lr: f64,
    pub rho: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

pub struct Adadelta {
    pub groups: Vec<AdadeltaGroup>,
}

const COLUMNS: &[&str] = &["lr", "rho", "eps", "weight_decay", "maximize"];

#[derive(Clone, Copy, Debug)]
pub struct AdadeltaCoef<T> {
    pub neg_lr: T,
    pub rho: T,
    pub w: T,
    pub eps: T,
    pub l2: T,
    /// Whether to add the L2 term, decided on the `f64` option as torch does.
    pub use_l2: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for Adadelta {
    const COLUMNS: &'static [&'static str] = COLUMNS;
    const STATE: &'static [&'static str] = &["square_avg", "acc_delta"];
    type Coef = AdadeltaCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| {
                let r = row(rows, g, COLUMNS)?;
                Ok(AdadeltaGroup {
                    lr: non_negative(g, "lr", r[0])?,
                    rho: super::closed_unit(g, "rho", r[1])?,
                    eps: non_negative(g, "eps", r[2])?,
                    weight_decay: non_negative(g, "weight_decay", r[3])?,
                    maximize: flag(g, "maximize", r[4])?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Adadelta { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, _: usize) -> usize {
        2
    }
    fn coef(&self, group: usize, _: u64, _: &mut f64) -> AdadeltaCoef<T> {
        let g = &self.groups[group];
        AdadeltaCoef {
            neg_lr: T::of(-g.lr),
            rho: T::of(g.rho),
            w: T::of(1.0 - g.rho),
            eps: T::of(g.eps),
            l2: T::of(g.weight_decay),
            use_l2: g.weight_decay != 0.0,
            maximize: g.maximize,
        }
    }
    #[inline(always)]
    fn apply(c: &AdadeltaCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        let n = p.len();
        let c = *c;
        let [sq, acc, _] = s;
        cut!(n; g);
        cut_mut!(n; p, sq, acc);
        for i in 0..n {
            let mut gi = if c.maximize { -g[i] } else { g[i] };
            if c.use_l2 {
                gi = gi + c.l2 * p[i];
            }
            sq[i] = sq[i] * c.rho + c.w * gi * gi;
            let std = (sq[i] + c.eps).sqrt();
            let delta = (acc[i] + c.eps).sqrt() / std * gi;
            acc[i] = acc[i] * c.rho + c.w * delta * delta;
            p[i] = p[i] + c.neg_lr * delta;
        }
    }
}
