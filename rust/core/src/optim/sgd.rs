//! SGD with momentum, dampening, Nesterov, weight decay and maximize (`torch.optim.SGD`).
//!
//! ```text
//! g = -grad if maximize else grad
//! g = g + weight_decay * p
//! if momentum != 0:
//!     buf = g                                   (first update with momentum)
//!     buf = momentum * buf + (1 - dampening) * g (later updates)
//!     g = g + momentum * buf if nesterov else buf
//! p = p - lr * g
//! ```

use super::{closed_unit, cut, cut_mut, flag, non_negative, row, Rule, State};
use crate::error::{Error, Result};
use crate::float::Float;

#[derive(Clone, Copy, Debug)]
pub struct SgdGroup {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

pub struct Sgd {
    pub groups: Vec<SgdGroup>,
}

pub(crate) const SGD_COLUMNS: &[&str] = &[
    "lr",
    "momentum",
    "dampening",
    "weight_decay",
    "nesterov",
    "maximize",
];

impl SgdGroup {
    pub(crate) fn read(r: &[f64], g: usize) -> Result<Self> {
        let s = SgdGroup {
            lr: non_negative(g, "lr", r[0])?,
            // Stricter than torch, which takes any momentum >= 0 and any finite dampening:
            // outside [0, 1] either makes the momentum buffer grow without bound.
            momentum: closed_unit(g, "momentum", r[1])?,
            dampening: closed_unit(g, "dampening", r[2])?,
            weight_decay: non_negative(g, "weight_decay", r[3])?,
            nesterov: flag(g, "nesterov", r[4])?,
            maximize: flag(g, "maximize", r[5])?,
        };
        if s.nesterov && (s.momentum <= 0.0 || s.dampening != 0.0) {
            return Err(Error::Value(format!(
                "param_groups[{g}]: nesterov momentum requires a momentum > 0 and zero dampening"
            )));
        }
        Ok(s)
    }

    /// Coefficients with learning rate `lr`; `started` tells whether the tensor's momentum
    /// buffer exists (torch creates it at the first update with momentum, as `buf = g`).
    pub(crate) fn coef<T: Float>(&self, lr: f64, started: bool) -> SgdCoef<T> {
        SgdCoef {
            neg_lr: T::of(-lr),
            momentum: T::of(self.momentum),
            use_buf: self.momentum != 0.0,
            w: T::of(1.0 - self.dampening),
            l2: T::of(self.weight_decay),
            use_l2: self.weight_decay != 0.0,
            first: !started,
            nesterov: self.nesterov,
            maximize: self.maximize,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SgdCoef<T> {
    pub neg_lr: T,
    pub momentum: T,
    /// Whether a momentum buffer is used (`momentum != 0` in `f64`).
    pub use_buf: bool,
    pub w: T,
    pub l2: T,
    /// Whether to add the L2 term, decided on the `f64` option as torch does.
    pub use_l2: bool,
    pub first: bool,
    pub nesterov: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for Sgd {
    const COLUMNS: &'static [&'static str] = SGD_COLUMNS;
    const STATE: &'static [&'static str] = &["momentum_buffer"];
    type Coef = SgdCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let groups = (0..rows.len())
            .map(|g| SgdGroup::read(row(rows, g, SGD_COLUMNS)?, g))
            .collect::<Result<_>>()?;
        Ok(Sgd { groups })
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, group: usize) -> usize {
        usize::from(self.groups[group].momentum != 0.0)
    }
    /// The tensor's scalar state records whether its momentum buffer has started.
    fn coef(&self, group: usize, _: u64, started: &mut f64) -> SgdCoef<T> {
        let g = &self.groups[group];
        let c = g.coef(g.lr, *started != 0.0);
        if g.momentum != 0.0 {
            *started = 1.0;
        }
        c
    }
    #[inline(always)]
    fn apply(c: &SgdCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        sgd_apply(c, p, g, s[0], None)
    }
}

/// The SGD element loop; `dir` (SGD-HD) receives the direction that was applied.
#[inline(always)]
pub(crate) fn sgd_apply<T: Float>(
    c: &SgdCoef<T>,
    p: &mut [T],
    g: &[T],
    buf: &mut [T],
    mut dir: Option<&mut [T]>,
) {
    let n = p.len();
    let c = *c;
    cut!(n; g);
    cut_mut!(n; p);
    let use_buf = c.use_buf;
    let buf = if use_buf { &mut buf[..n] } else { &mut [][..] };
    for i in 0..n {
        let mut d = if c.maximize { -g[i] } else { g[i] };
        if c.use_l2 {
            d = d + c.l2 * p[i];
        }
        if use_buf {
            let b = if c.first {
                d
            } else {
                c.momentum * buf[i] + c.w * d
            };
            buf[i] = b;
            d = if c.nesterov { d + c.momentum * b } else { b };
        }
        if let Some(dir) = dir.as_deref_mut() {
            dir[i] = d;
        }
        p[i] = p[i] + c.neg_lr * d;
    }
}
