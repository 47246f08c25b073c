//! Hypergradient descent: SGD-HD and Adam-HD (Baydin et al. 2018, "Online learning rate
//! adaptation with hypergradient descent").
//!
//! Each group's learning rate is itself learned. If the previous step moved the parameters by
//! `-lr * u_{t-1}`, then `d loss(theta_t) / d lr = -g_t . u_{t-1}`, and one step of gradient
//! descent on the learning rate gives, before the usual update:
//!
//! ```text
//! lr_t = max(0, lr_{t-1} + hypergrad_lr * sum over the group's tensors of g_t . u_{t-1})
//! SGD-HD:  u = the direction SGD applied (g, or the momentum/Nesterov direction), kept as state
//! Adam-HD: u = (m / (1 - beta1^(t-1))) / (sqrt(v) / sqrt(1 - beta2^(t-1)) + eps), from m, v
//!          before this step's update
//! ```
//! `g_t` includes the L2 weight decay term. The dot product is accumulated in `f64` over fixed
//! pieces in a fixed order (same bits for any thread count). A non-finite hypergradient leaves
//! the learning rate unchanged. The first update of a tensor contributes nothing.

use super::adam::{adam_apply, AdamCoef, AdamGroup, ADAM_COLUMNS};
use super::sgd::{sgd_apply, SgdCoef, SgdGroup, SGD_COLUMNS};
use super::{
    non_negative, over_chunks, row, split, validate, Piece, PieceRef, ReadState, Rule, Slot, State,
};
use crate::error::Result;
use crate::float::Float;
use crate::par::Par;
use crate::simd::{self, sum_lanes4, Kernel, Level};

/// A rule whose groups' learning rates are adapted by hypergradient descent.
pub trait Hypergradient<T: Float>: Rule<T> {
    /// Per-tensor coefficients of the hypergradient dot product.
    type DotCoef: Copy + Send + Sync;
    fn dot_coef(&self, group: usize, step: u64) -> Self::DotCoef;
    /// `sum_i g_i * u_i` over one piece, in `f64`; `#[inline(always)]`.
    fn dot(c: &Self::DotCoef, p: &[T], g: &[T], s: &ReadState<'_, T>) -> f64;
    fn hypergrad_lr(&self, group: usize) -> f64;
    fn lr_mut(&mut self, group: usize) -> &mut f64;
}

fn read_hypergrad_lr(r: &[f64], g: usize) -> Result<f64> {
    non_negative(g, "hypergrad_lr", r[r.len() - 1])
}

// ----------------------------------------------------------------------------------------- SGD-HD

/// SGD with a learning rate adapted by hypergradient descent. State: `prev_update` (the applied
/// direction), then `momentum_buffer` when momentum is on.
pub struct SgdHd {
    pub groups: Vec<SgdGroup>,
    pub lrs: Vec<f64>,
    pub hypergrad_lrs: Vec<f64>,
}

pub(crate) const SGD_HD_COLUMNS: &[&str] = &[
    "lr",
    "momentum",
    "dampening",
    "weight_decay",
    "nesterov",
    "maximize",
    "hypergrad_lr",
];

#[derive(Clone, Copy, Debug)]
pub struct SgdDot<T> {
    pub l2: T,
    pub use_l2: bool,
    pub active: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for SgdHd {
    const COLUMNS: &'static [&'static str] = SGD_HD_COLUMNS;
    const STATE: &'static [&'static str] = &["prev_update", "momentum_buffer"];
    type Coef = SgdCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let mut rule = SgdHd {
            groups: vec![],
            lrs: vec![],
            hypergrad_lrs: vec![],
        };
        for g in 0..rows.len() {
            let r = row(rows, g, SGD_HD_COLUMNS)?;
            let grp = SgdGroup::read(&r[..SGD_COLUMNS.len()], g)?;
            rule.lrs.push(grp.lr);
            rule.groups.push(grp);
            rule.hypergrad_lrs.push(read_hypergrad_lr(r, g)?);
        }
        Ok(rule)
    }
    fn n_groups(&self) -> usize {
        self.groups.len()
    }
    fn n_state(&self, group: usize) -> usize {
        1 + usize::from(self.groups[group].momentum != 0.0)
    }
    /// The tensor's scalar state records whether its momentum buffer has started (as SGD).
    fn coef(&self, group: usize, _: u64, started: &mut f64) -> SgdCoef<T> {
        let g = &self.groups[group];
        let c = g.coef(self.lrs[group], *started != 0.0);
        if g.momentum != 0.0 {
            *started = 1.0;
        }
        c
    }
    #[inline(always)]
    fn apply(c: &SgdCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        let [dir, buf, _] = s;
        sgd_apply(c, p, g, buf, Some(dir))
    }
}

impl<T: Float> Hypergradient<T> for SgdHd {
    type DotCoef = SgdDot<T>;
    fn dot_coef(&self, group: usize, step: u64) -> SgdDot<T> {
        let g = &self.groups[group];
        SgdDot {
            l2: T::of(g.weight_decay),
            use_l2: g.weight_decay != 0.0,
            active: step > 1,
            maximize: g.maximize,
        }
    }
    #[inline(always)]
    fn dot(c: &SgdDot<T>, p: &[T], g: &[T], s: &ReadState<'_, T>) -> f64 {
        if !c.active {
            return 0.0;
        }
        let c = *c;
        sum_lanes4(g, p, s[0], p, |gi, pi, ui, _| {
            let mut gi = if c.maximize { -gi } else { gi };
            if c.use_l2 {
                gi = gi + c.l2 * pi;
            }
            gi.to_f64() * ui.to_f64()
        })
    }
    fn hypergrad_lr(&self, group: usize) -> f64 {
        self.hypergrad_lrs[group]
    }
    fn lr_mut(&mut self, group: usize) -> &mut f64 {
        &mut self.lrs[group]
    }
}

// ---------------------------------------------------------------------------------------- Adam-HD

/// Adam with a learning rate adapted by hypergradient descent. State as Adam.
pub struct AdamHd {
    pub groups: Vec<AdamGroup>,
    pub lrs: Vec<f64>,
    pub hypergrad_lrs: Vec<f64>,
}

#[derive(Clone, Copy, Debug)]
pub struct AdamDot<T> {
    pub inv_bc1: T,
    pub bc2_sqrt: T,
    pub eps: T,
    pub l2: T,
    pub use_l2: bool,
    pub active: bool,
    pub amsgrad: bool,
    pub maximize: bool,
}

impl<T: Float> Rule<T> for AdamHd {
    const COLUMNS: &'static [&'static str] = &[
        "lr",
        "beta1",
        "beta2",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
        "decoupled_weight_decay",
        "hypergrad_lr",
    ];
    const STATE: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    type Coef = AdamCoef<T>;

    fn from_rows(rows: &[&[f64]]) -> Result<Self> {
        let cols = <Self as Rule<T>>::COLUMNS;
        let mut rule = AdamHd {
            groups: vec![],
            lrs: vec![],
            hypergrad_lrs: vec![],
        };
        for g in 0..rows.len() {
            let r = row(rows, g, cols)?;
            let grp = AdamGroup::read(&r[..ADAM_COLUMNS.len()], g)?;
            rule.lrs.push(grp.lr);
            rule.groups.push(grp);
            rule.hypergrad_lrs.push(read_hypergrad_lr(r, g)?);
        }
        Ok(rule)
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
        self.groups[group].coef(self.lrs[group], step)
    }
    #[inline(always)]
    fn apply(c: &AdamCoef<T>, p: &mut [T], g: &[T], s: &mut State<'_, T>) {
        adam_apply(c, p, g, s)
    }
}

impl<T: Float> Hypergradient<T> for AdamHd {
    type DotCoef = AdamDot<T>;
    fn dot_coef(&self, group: usize, step: u64) -> AdamDot<T> {
        let g = &self.groups[group];
        let prev = step.saturating_sub(1) as f64;
        let bc1 = 1.0 - g.beta1.powf(prev);
        let bc2 = 1.0 - g.beta2.powf(prev);
        AdamDot {
            inv_bc1: T::of(1.0 / bc1),
            bc2_sqrt: T::of(bc2.sqrt()),
            eps: T::of(g.eps),
            l2: T::of(if g.decoupled { 0.0 } else { g.weight_decay }),
            use_l2: !g.decoupled && g.weight_decay != 0.0,
            active: step > 1,
            amsgrad: g.amsgrad,
            maximize: g.maximize,
        }
    }
    #[inline(always)]
    fn dot(c: &AdamDot<T>, p: &[T], g: &[T], s: &ReadState<'_, T>) -> f64 {
        if !c.active {
            return 0.0;
        }
        let v: &[T] = if c.amsgrad { s[2] } else { s[1] };
        let c = *c;
        sum_lanes4(g, p, s[0], v, |gi, pi, mi, vi| {
            let mut gi = if c.maximize { -gi } else { gi };
            if c.use_l2 {
                gi = gi + c.l2 * pi;
            }
            let u = mi * c.inv_bc1 / (vi.sqrt() / c.bc2_sqrt + c.eps);
            gi.to_f64() * u.to_f64()
        })
    }
    fn hypergrad_lr(&self, group: usize) -> f64 {
        self.hypergrad_lrs[group]
    }
    fn lr_mut(&mut self, group: usize) -> &mut f64 {
        &mut self.lrs[group]
    }
}

// ---------------------------------------------------------------------------------------- driver

struct Dot<'c, 'a, T: Float, R: Hypergradient<T>> {
    coef: &'c R::DotCoef,
    run: PieceRef<'a, T>,
}

impl<T: Float, R: Hypergradient<T>> Kernel for Dot<'_, '_, T, R> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        R::dot(self.coef, self.run.param, self.run.grad, &self.run.state)
    }
}

/// Pieces of one dtype with the dot-product coefficients of their slots.
struct Prepared<'a, T: Float, R: Hypergradient<T>> {
    dot_coefs: Vec<R::DotCoef>,
    /// (group, step, scalar state before this step) of every slot.
    steps: Vec<(usize, u64, f64)>,
    pieces: Vec<Piece<'a, T>>,
    total: usize,
}

fn prepare<'a, T: Float, R: Hypergradient<T>>(
    rule: &R,
    mut slots: Vec<Slot<'a, T>>,
) -> Prepared<'a, T, R> {
    let dot_coefs = slots
        .iter()
        .map(|s| rule.dot_coef(s.group, s.step))
        .collect();
    // The scalar state advances now; `finish` recomputes the coefficients with the adapted
    // learning rate from the value the scalar had before this step.
    let steps = slots
        .iter_mut()
        .map(|s| {
            let before = *s.scalar;
            let _ = rule.coef(s.group, s.step, s.scalar);
            (s.group, s.step, before)
        })
        .collect();
    let (pieces, total) = split(slots);
    Prepared {
        dot_coefs,
        steps,
        pieces,
        total,
    }
}

fn add_dots<T: Float, R: Hypergradient<T>>(
    par: Par,
    level: Level,
    prep: &Prepared<'_, T, R>,
    h: &mut [f64],
) {
    let par = par.for_work(prep.total);
    let partial = par.map_slice(&prep.pieces, |piece| {
        let coef = &prep.dot_coefs[piece.slot];
        let leaf = |run| simd::dispatch(level, Dot::<T, R> { coef, run });
        over_chunks(par, piece.view(), &leaf, &|a, b| a + b)
    });
    for (piece, d) in prep.pieces.iter().zip(&partial) {
        h[piece.group] += d;
    }
}

fn finish<T: Float, R: Hypergradient<T>>(
    par: Par,
    level: Level,
    rule: &R,
    prep: Prepared<'_, T, R>,
) {
    let coefs: Vec<R::Coef> = prep
        .steps
        .iter()
        .map(|&(g, t, before)| rule.coef(g, t, &mut before.clone()))
        .collect();
    super::apply_pieces::<T, R>(par, level, &coefs, prep.pieces, prep.total);
}

/// One hypergradient step over tensors of both dtypes: adapt every group's learning rate from
/// the dot products of all its tensors (`f32` ones first, then `f64`), then update every tensor
/// with the new rate. Returns the new learning rate of every group.
pub fn hd_step<R: Hypergradient<f32> + Hypergradient<f64>>(
    par: Par,
    level: Level,
    rule: &mut R,
    slots32: Vec<Slot<'_, f32>>,
    slots64: Vec<Slot<'_, f64>>,
) -> Result<Vec<f64>> {
    validate::<f32, R>(rule, &slots32)?;
    validate::<f64, R>(rule, &slots64)?;
    let n_groups = <R as Rule<f32>>::n_groups(rule);
    let p32 = prepare::<f32, R>(rule, slots32);
    let p64 = prepare::<f64, R>(rule, slots64);
    let mut h = vec![0.0f64; n_groups];
    add_dots(par, level, &p32, &mut h);
    add_dots(par, level, &p64, &mut h);
    for (g, hg) in h.iter().enumerate() {
        let beta = <R as Hypergradient<f32>>::hypergrad_lr(rule, g);
        let lr = <R as Hypergradient<f32>>::lr_mut(rule, g);
        let next = *lr + beta * hg;
        if next.is_finite() {
            *lr = next.max(0.0);
        }
    }
    finish(par, level, rule, p32);
    finish(par, level, rule, p64);
    Ok((0..n_groups)
        .map(|g| *<R as Hypergradient<f32>>::lr_mut(rule, g))
        .collect())
}
