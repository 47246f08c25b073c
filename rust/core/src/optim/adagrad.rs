//! Adagrad (`torch.optim.Adagrad`).
//!
//! ```text
//! g   = -grad if maximize else grad
//! g   = g + weight_decay * p
//! clr = lr / (1 + (t - 1) * lr_decay)
//! sum = sum + g * g                       (sum starts at initial_accumulator_value)
//! p   = p - clr * g / (sqrt(sum) + eps)
//! ```

use super::{cut, cut_mut, flag, non_negative, row, Rule, State};
use crate::error::Result;
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct AdagradGroup {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub maximize: bool,
}

pub struct Adagrad {
    pub groups: Vec<AdagradGroup>,
}

const COLUMNS: &[&str] = &["lr", "lr_decay", "weight_decay", "eps", "maximize"];

#[derive(Clone, Copy, Debug)]
pub struct AdagradCoef<T> {
    pub neg_clr: T,
    pub l2: T,
    /// Whether to add the L2 term, decided on the `f64` option as torch does.
    pub use_l2: bool,
    pub eps: T,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for Adagrad {
    const COLUMNS: &'static [&'static str] = COLUMNS;
    const STATE: &'static [&'static str] = &["sum"];
    type Coef = AdagradCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| {
                let r = row(rows, g, COLUMNS)?;
                Ok(AdagradGroup {
                    lr: non_negative(g, "lr", r[0])?,
                    lr_decay: non_negative(g, "lr_decay", r[1])?,
                    weight_decay: non_negative(g, "weight_decay", r[2])?,
                    eps: non_negative(g, "eps", r[3])?,
                    maximize: flag(g, "maximize", r[4])?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Adagrad { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, _: usize) -> usize {
        1
    }
    fn coef(&self, group: usize, step: u64, _: &mut f64) -> AdagradCoef<T> {
        let g = &self.groups[group];
        let clr = g.lr / (1.0 + (step as f64 - 1.0) * g.lr_decay);
        AdagradCoef {
            neg_clr: T::of(-clr),
            l2: T::of(g.weight_decay),
            use_l2: g.weight_decay != 0.0,
            eps: T::of(g.eps),
            maximize: g.maximize,
        }
    }
    #[inline(always)]
    fn apply(c: &AdagradCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        let n = p.len();
        let c = *c;
        let sum = &mut s[0];
        cut!(n; g);
        cut_mut!(n; p, sum);
        for i in 0..n {
            let mut gi = if c.maximize { -g[i] } else { g[i] };
            if c.use_l2 {
                gi = gi + c.l2 * p[i];
            }
            sum[i] = sum[i] + gi * gi;
            let std = sum[i].sqrt() + c.eps;
            p[i] = p[i] + c.neg_clr * gi / std;
        }
    }
}
