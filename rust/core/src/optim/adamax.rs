//! Adamax (`torch.optim.Adamax`), Adam with the infinity norm.
//!
//! ```text
//! g = -grad if maximize else grad
//! g = g + weight_decay * p
//! m = lerp(m, g, 1 - beta1)
//! u = max(beta2 * u, |g| + eps)
//! p = p - (lr / (1 - beta1^t)) * m / u
//! ```

use super::{cut, cut_mut, flag, non_negative, row, unit_interval, Rule, State};
use crate::error::Result;
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct AdamaxGroup {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

pub struct Adamax {
    pub groups: Vec<AdamaxGroup>,
}

const COLUMNS: &[&str] = &["lr", "beta1", "beta2", "eps", "weight_decay", "maximize"];

#[derive(Clone, Copy, Debug)]
pub struct AdamaxCoef<T> {
    pub neg_clr: T,
    pub w1: T,
    pub beta2: T,
    pub eps: T,
    pub l2: T,
    /// Whether to add the L2 term, decided on the `f64` option as torch does.
    pub use_l2: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for Adamax {
    const COLUMNS: &'static [&'static str] = COLUMNS;
    const STATE: &'static [&'static str] = &["exp_avg", "exp_inf"];
    type Coef = AdamaxCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| {
                let r = row(rows, g, COLUMNS)?;
                Ok(AdamaxGroup {
                    lr: non_negative(g, "lr", r[0])?,
                    beta1: unit_interval(g, "beta1", r[1])?,
                    beta2: unit_interval(g, "beta2", r[2])?,
                    eps: non_negative(g, "eps", r[3])?,
                    weight_decay: non_negative(g, "weight_decay", r[4])?,
                    maximize: flag(g, "maximize", r[5])?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Adamax { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, _: usize) -> usize {
        2
    }
    fn coef(&self, group: usize, step: u64, _: &mut f64) -> AdamaxCoef<T> {
        let g = &self.groups[group];
        let bc1 = 1.0 - g.beta1.powf(step as f64);
        AdamaxCoef {
            neg_clr: T::of(-(g.lr / bc1)),
            w1: T::of(1.0 - g.beta1),
            beta2: T::of(g.beta2),
            eps: T::of(g.eps),
            l2: T::of(g.weight_decay),
            use_l2: g.weight_decay != 0.0,
            maximize: g.maximize,
        }
    }
    #[inline(always)]
    fn apply(c: &AdamaxCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        let n = p.len();
        let c = *c;
        let [m, u, _] = s;
        cut!(n; g);
        cut_mut!(n; p, m, u);
        for i in 0..n {
            let mut gi = if c.maximize { -g[i] } else { g[i] };
            if c.use_l2 {
                gi = gi + c.l2 * p[i];
            }
            m[i] = m[i].lerp(gi, c.w1);
            u[i] = (u[i] * c.beta2).max_nan(gi.abs() + c.eps);
            p[i] = p[i] + c.neg_clr * m[i] / u[i];
        }
    }
}
