//! Adam and AdamW (`torch.optim.Adam` / `AdamW`, single-tensor formulas).
//!
//! ```text
//! g  = -grad if maximize else grad
//! Adam:  g = g + weight_decay * p          AdamW: p = p * (1 - lr * weight_decay)
//! m  = lerp(m, g, 1 - beta1)
//! v  = beta2 * v + (1 - beta2) * g * g
//! vmax = max(vmax, v); use vmax for v       (amsgrad)
//! p  = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```

use super::{cut, cut_mut, flag, non_negative, row, unit_interval, Rule, State};
use crate::error::Result;
use crate::float::Float;

/// One group's Adam hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamGroup {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    /// AdamW: decay the parameter directly instead of adding it to the gradient.
    pub decoupled: bool,
}

/// Adam over all groups.
pub struct Adam {
    pub groups: Vec<AdamGroup>,
}

impl AdamGroup {
    pub(crate) fn read(r: &[f64], g: usize) -> Result<Self> {
        Ok(AdamGroup {
            lr: non_negative(g, "lr", r[0])?,
            beta1: unit_interval(g, "beta1", r[1])?,
            beta2: unit_interval(g, "beta2", r[2])?,
            eps: non_negative(g, "eps", r[3])?,
            weight_decay: non_negative(g, "weight_decay", r[4])?,
            amsgrad: flag(g, "amsgrad", r[5])?,
            maximize: flag(g, "maximize", r[6])?,
            decoupled: flag(g, "decoupled_weight_decay", r[7])?,
        })
    }

    /// Per-tensor coefficients at update `step`, with the learning rate `lr`.
    pub(crate) fn coef<T: Float>(&self, lr: f64, step: u64) -> AdamCoef<T> {
        let t = step as f64;
        let bc1 = 1.0 - self.beta1.powf(t);
        let bc2 = 1.0 - self.beta2.powf(t);
        AdamCoef {
            neg_step_size: T::of(-(lr / bc1)),
            inv_bc2_sqrt: T::of(1.0 / bc2.sqrt()),
            w1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            w2: T::of(1.0 - self.beta2),
            eps: T::of(self.eps),
            l2: T::of(if self.decoupled {
                0.0
            } else {
                self.weight_decay
            }),
            decay: T::of(1.0 - lr * self.weight_decay),
            use_l2: !self.decoupled && self.weight_decay != 0.0,
            decoupled: self.decoupled && self.weight_decay != 0.0,
            amsgrad: self.amsgrad,
            maximize: self.maximize,
        }
    }
}

pub(crate) const ADAM_COLUMNS: &[&str] = &[
    "lr",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "amsgrad",
    "maximize",
    "decoupled_weight_decay",
];

/// Coefficients of one Adam update of one tensor.
#[derive(Clone, Copy, Debug)]
pub struct AdamCoef<T> {
    pub neg_step_size: T,
    /// `1 / sqrt(1 - beta2^t)`: a multiplication where torch divides by the square root (at
    /// most half an ulp apart), one division fewer per parameter.
    pub inv_bc2_sqrt: T,
    pub w1: T,
    pub beta2: T,
    pub w2: T,
    pub eps: T,
    pub l2: T,
    pub use_l2: bool,
    pub decay: T,
    pub decoupled: bool,
    pub amsgrad: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for Adam {
    const COLUMNS: &'static [&'static str] = ADAM_COLUMNS;
    const STATE: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    type Coef = AdamCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| AdamGroup::read(row(rows, g, ADAM_COLUMNS)?, g))
            .collect::<Result<_>>()?;
        Ok(Adam { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, group: usize) -> usize {
        if self.groups[group].amsgrad {
            3
        } else {
            2
        }
    }
    fn coef(&self, group: usize, step: u64, _: &mut f64) -> AdamCoef<T> {
        let g = &self.groups[group];
        g.coef(g.lr, step)
    }
    #[inline(always)]
    fn apply(c: &AdamCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        adam_apply(c, p, g, s)
    }
}

/// The Adam element loop (shared with Adam-HD). Loop-invariant options become const generics
/// so that every variant is a straight-line loop LLVM vectorises.
#[inline(always)]
pub(crate) fn adam_apply<T: Float>(c: &AdamCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
    let n = p.len();
    let [m, v, vmax] = s;
    cut!(n; g);
    cut_mut!(n; p, m, v);
    let vmax: &mut [T] = if c.amsgrad { &mut vmax[..n] } else { &mut [] };
    let l2 = c.use_l2;
    let low = c.w1 < T::of(0.5);
    macro_rules! go {
        ($($ams:literal $l2:literal $low:literal $dec:literal),*) => {
            match (c.amsgrad, l2, low, c.decoupled) {
                $(($ams, $l2, $low, $dec) => adam_loop::<T, $ams, $l2, $low, $dec>(c, p, g, m, v, vmax),)*
            }
        };
    }
    go!(false false false false, false false false true, false false true false, false false true true,
        false true false false, false true false true, false true true false, false true true true,
        true false false false, true false false true, true false true false, true false true true,
        true true false false, true true false true, true true true false, true true true true)
}

#[inline(always)]
fn adam_loop<T: Float, const AMS: bool, const L2: bool, const LOW: bool, const DEC: bool>(
    c: &AdamCoef<T>,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: &mut [T],
) {
    let n = p.len();
    let c = *c;
    let sign = if c.maximize { -T::ONE } else { T::ONE };
    for i in 0..n {
        let mut gi = g[i] * sign; // exact: multiplying by +-1 only flips the sign
        if DEC {
            p[i] = p[i] * c.decay;
        }
        if L2 {
            gi = gi + c.l2 * p[i];
        }
        // torch.lerp(m, g, w): the branch on w is decided outside the loop.
        m[i] = if LOW {
            m[i] + c.w1 * (gi - m[i])
        } else {
            gi - (gi - m[i]) * (T::ONE - c.w1)
        };
        v[i] = v[i] * c.beta2 + c.w2 * gi * gi;
        let vv = if AMS {
            vmax[i] = vmax[i].max_nan(v[i]);
            vmax[i]
        } else {
            v[i]
        };
        let denom = vv.sqrt() * c.inv_bc2_sqrt + c.eps;
        p[i] = p[i] + c.neg_step_size * m[i] / denom;
    }
}
