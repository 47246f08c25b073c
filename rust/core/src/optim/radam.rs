//! RAdam (`torch.optim.RAdam`), Adam with a rectified adaptive step (Liu et al. 2020, "On the
//! Variance of the Adaptive Learning Rate and Beyond").
//!
//! ```text
//! g  = -grad if maximize else grad
//! g  = g + weight_decay * p      or p = p * (1 - lr * weight_decay) (decoupled_weight_decay)
//! m  = lerp(m, g, 1 - beta1);   v = beta2 * v + (1 - beta2) * g * g
//! rho_inf = 2 / (1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
//! rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
//!             p = p - lr * r * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
//! otherwise:  p = p - lr / (1 - beta1^t) * m          (SGD with momentum while v is unreliable)
//! ```
//! The step's scalars (and which branch) are computed once per tensor in `f64`.

use super::{cut, cut_mut, flag, non_negative, row, unit_interval, Rule, State};
use crate::error::Result;
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct RadamGroup {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    pub maximize: bool,
}

pub struct Radam {
    pub groups: Vec<RadamGroup>,
}

const COLUMNS: &[&str] = &[
    "lr",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "decoupled_weight_decay",
    "maximize",
];

#[derive(Clone, Copy, Debug)]
pub struct RadamCoef<T> {
    /// `-lr * r * sqrt(bc2) / bc1` (rectified) or `-lr / bc1` (not).
    pub c: T,
    pub rectified: bool,
    pub w1: T,
    pub beta2: T,
    pub w2: T,
    pub eps: T,
    pub l2: T,
    pub use_l2: bool,
    pub decay: T,
    pub decoupled: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for Radam {
    const COLUMNS: &'static [&'static str] = COLUMNS;
    const STATE: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    type Coef = RadamCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| {
                let r = row(rows, g, COLUMNS)?;
                Ok(RadamGroup {
                    lr: non_negative(g, "lr", r[0])?,
                    beta1: unit_interval(g, "beta1", r[1])?,
                    beta2: unit_interval(g, "beta2", r[2])?,
                    eps: non_negative(g, "eps", r[3])?,
                    weight_decay: non_negative(g, "weight_decay", r[4])?,
                    decoupled: flag(g, "decoupled_weight_decay", r[5])?,
                    maximize: flag(g, "maximize", r[6])?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Radam { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, _: usize) -> usize {
        2
    }
    fn coef(&self, group: usize, step: u64, _: &mut f64) -> RadamCoef<T> {
        let g = &self.groups[group];
        let t = step as f64;
        let bc1 = 1.0 - g.beta1.powf(t);
        let beta2_t = g.beta2.powf(t);
        let bc2 = 1.0 - beta2_t;
        let rho_inf = 2.0 / (1.0 - g.beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * t * beta2_t / bc2;
        let rectified = rho_t > 5.0;
        let c = if rectified {
            let r = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt();
            -g.lr * r * bc2.sqrt() / bc1
        } else {
            -g.lr / bc1
        };
        RadamCoef {
            c: T::of(c),
            rectified,
            w1: T::of(1.0 - g.beta1),
            beta2: T::of(g.beta2),
            w2: T::of(1.0 - g.beta2),
            eps: T::of(g.eps),
            l2: T::of(if g.decoupled { 0.0 } else { g.weight_decay }),
            use_l2: !g.decoupled && g.weight_decay != 0.0,
            decay: T::of(1.0 - g.lr * g.weight_decay),
            decoupled: g.decoupled && g.weight_decay != 0.0,
            maximize: g.maximize,
        }
    }
    #[inline(always)]
    fn apply(c: &RadamCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        let n = p.len();
        let c = *c;
        let [m, v, _] = s;
        cut!(n; g);
        cut_mut!(n; p, m, v);
        for i in 0..n {
            let mut gi = if c.maximize { -g[i] } else { g[i] };
            if c.decoupled {
                p[i] = p[i] * c.decay;
            }
            if c.use_l2 {
                gi = gi + c.l2 * p[i];
            }
            m[i] = m[i].lerp(gi, c.w1);
            v[i] = v[i] * c.beta2 + c.w2 * gi * gi;
            p[i] = if c.rectified {
                p[i] + c.c * m[i] / (v[i].sqrt() + c.eps)
            } else {
                p[i] + c.c * m[i]
            };
        }
    }
}
