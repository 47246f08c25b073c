//! Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").
//!
//! ```text
//! g = -grad if maximize else grad
//! p = p * (1 - lr * weight_decay)
//! p = p - lr * sign(beta1 * m + (1 - beta1) * g)
//! m = beta2 * m + (1 - beta2) * g
//! ```
//! Defaults follow the paper's reference code: lr = 1e-4, betas = (0.9, 0.99).

use super::{cut, cut_mut, flag, non_negative, row, unit_interval, Rule, State};
use crate::error::Result;
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct LionGroup {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

pub struct Lion {
    pub groups: Vec<LionGroup>,
}

const COLUMNS: &[&str] = &["lr", "beta1", "beta2", "weight_decay", "maximize"];

#[derive(Clone, Copy, Debug)]
pub struct LionCoef<T> {
    pub neg_lr: T,
    pub beta1: T,
    pub w1: T,
    pub beta2: T,
    pub w2: T,
    pub decay: T,
    pub decayed: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for Lion {
    const COLUMNS: &'static [&'static str] = COLUMNS;
    const STATE: &'static [&'static str] = &["exp_avg"];
    type Coef = LionCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| {
                let r = row(rows, g, COLUMNS)?;
                Ok(LionGroup {
                    lr: non_negative(g, "lr", r[0])?,
                    beta1: unit_interval(g, "beta1", r[1])?,
                    beta2: unit_interval(g, "beta2", r[2])?,
                    weight_decay: non_negative(g, "weight_decay", r[3])?,
                    maximize: flag(g, "maximize", r[4])?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Lion { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, _: usize) -> usize {
        1
    }
    fn coef(&self, group: usize, _: u64, _: &mut f64) -> LionCoef<T> {
        let g = &self.groups[group];
        LionCoef {
            neg_lr: T::of(-g.lr),
            beta1: T::of(g.beta1),
            w1: T::of(1.0 - g.beta1),
            beta2: T::of(g.beta2),
            w2: T::of(1.0 - g.beta2),
            decay: T::of(1.0 - g.lr * g.weight_decay),
            decayed: g.weight_decay != 0.0,
            maximize: g.maximize,
        }
    }
    #[inline(always)]
    fn apply(c: &LionCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        let n = p.len();
        let c = *c;
        let m = &mut s[0];
        cut!(n; g);
        cut_mut!(n; p, m);
        for i in 0..n {
            let gi = if c.maximize { -g[i] } else { g[i] };
            if c.decayed {
                p[i] = p[i] * c.decay;
            }
            let u = c.beta1 * m[i] + c.w1 * gi;
            p[i] = p[i] + c.neg_lr * u.sign();
            m[i] = c.beta2 * m[i] + c.w2 * gi;
        }
    }
}
