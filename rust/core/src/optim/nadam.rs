//! NAdam (`torch.optim.NAdam`), Adam with Nesterov momentum (Dozat 2016).
//!
//! ```text
//! g  = -grad if maximize else grad
//! g  = g + weight_decay * p      or p = p * (1 - lr * weight_decay) (decoupled_weight_decay)
//! mu_t  = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));  prod_t = prod_{t-1} * mu_t
//! m  = lerp(m, g, 1 - beta1);   v = beta2 * v + (1 - beta2) * g * g
//! denom = sqrt(v / (1 - beta2^t)) + eps
//! p  = p - lr * (1 - mu_t) / (1 - prod_t) * g / denom
//!        - lr * mu_{t+1} / (1 - prod_t * mu_{t+1}) * m / denom
//! ```
//! The running product `prod_t` is the tensor's scalar state (`mu_product`, starting at 1).

use super::{cut, cut_mut, flag, non_negative, row, unit_interval, Rule, State};
use crate::error::Result;
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct NadamGroup {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum_decay: f64,
    pub decoupled: bool,
    pub maximize: bool,
}

pub struct Nadam {
    pub groups: Vec<NadamGroup>,
}

const COLUMNS: &[&str] = &[
    "lr",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "momentum_decay",
    "decoupled_weight_decay",
    "maximize",
];

#[derive(Clone, Copy, Debug)]
pub struct NadamCoef<T> {
    pub c_grad: T,
    pub c_avg: T,
    pub bc2: T,
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

impl<T: Float> Rule<T> for Nadam {
    const COLUMNS: &'static [&'static str] = COLUMNS;
    const STATE: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    type Coef = NadamCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| {
                let r = row(rows, g, COLUMNS)?;
                Ok(NadamGroup {
                    lr: non_negative(g, "lr", r[0])?,
                    beta1: unit_interval(g, "beta1", r[1])?,
                    beta2: unit_interval(g, "beta2", r[2])?,
                    eps: non_negative(g, "eps", r[3])?,
                    weight_decay: non_negative(g, "weight_decay", r[4])?,
                    momentum_decay: non_negative(g, "momentum_decay", r[5])?,
                    decoupled: flag(g, "decoupled_weight_decay", r[6])?,
                    maximize: flag(g, "maximize", r[7])?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Nadam { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, _: usize) -> usize {
        2
    }
    fn coef(&self, group: usize, step: u64, mu_product: &mut f64) -> NadamCoef<T> {
        let g = &self.groups[group];
        let t = step as f64;
        let mu = g.beta1 * (1.0 - 0.5 * 0.96f64.powf(t * g.momentum_decay));
        let mu_next = g.beta1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * g.momentum_decay));
        *mu_product *= mu;
        let prod = *mu_product;
        let prod_next = prod * mu_next;
        NadamCoef {
            c_grad: T::of(-g.lr * (1.0 - mu) / (1.0 - prod)),
            c_avg: T::of((-g.lr * mu_next) / (1.0 - prod_next)),
            bc2: T::of(1.0 - g.beta2.powf(t)),
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
    fn apply(c: &NadamCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
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
            let denom = (v[i] / c.bc2).sqrt() + c.eps;
            p[i] = p[i] + c.c_grad * gi / denom;
            p[i] = p[i] + c.c_avg * m[i] / denom;
        }
    }
}
