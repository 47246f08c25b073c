//! Optimizer update rules, applied to many tensors in one call.
//!
//! A step receives every tensor of the optimizer as a [`Slot`] (parameter, gradient, state
//! slices, group, step number). The driver validates all of them before writing anything, cuts
//! every tensor at fixed [`CHUNK`](crate::par::CHUNK) boundaries into pieces, and runs the rule's
//! element-wise kernel over all pieces of all tensors as one parallel job. Element-wise rules give
//! the same bits for any thread count and SIMD level.
//!
//! Each rule lives in its own file and implements [`Rule`]: hyper-parameters are read from one
//! row of `f64` per parameter group (columns named by [`Rule::COLUMNS`], the same names as
//! `torch.optim`), per-tensor coefficients are computed once per step ([`Rule::coef`]), and
//! [`Rule::apply`] is the vectorisable loop over one piece.

pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod grad;
pub mod hd;
pub mod lion;
pub mod nadam;
pub mod rmsprop;
pub mod sgd;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::par::{Par, CHUNK};
use crate::simd::{self, Kernel, Level};

/// Most state buffers any rule keeps per tensor.
pub const MAX_STATE: usize = 3;

/// A tensor's state slices, in the order of [`Rule::STATE`]; unused ones are empty.
pub type State<'a, T> = [&'a mut [T]; MAX_STATE];

/// One tensor handed to a step.
pub struct Slot<'a, T> {
    /// Updated in place.
    pub param: &'a mut [T],
    pub grad: &'a [T],
    /// State buffers, each as long as `param` (or empty when the rule does not use it).
    pub state: State<'a, T>,
    /// Index of the tensor's parameter group (row of the hyper-parameter table).
    pub group: usize,
    /// Number of this update for this tensor, starting at 1.
    pub step: u64,
    /// One scalar of per-tensor state (NAdam's running product of momentum factors).
    pub scalar: &'a mut f64,
}

/// An update rule: its hyper-parameters for every group and its element-wise kernel.
pub trait Rule<T: Float>: Sized + Sync {
    /// Hyper-parameter columns of one group's row, as named in `torch.optim`.
    const COLUMNS: &'static [&'static str];
    /// State buffer names (as in torch's `state_dict`), in [`State`] order.
    const STATE: &'static [&'static str];
    /// Per-tensor coefficients of one step.
    type Coef: Copy + Send + Sync;

    /// Reads and validates one row per group; errors name the group and column.
    fn from_rows(rows: &[&[f64]]) -> Result<Self>;
    /// Number of groups.
    fn n_groups(&self) -> usize;
    /// How many of [`Rule::STATE`] the tensors of `group` use (the first `n`).
    fn n_state(&self, group: usize) -> usize;
    /// Coefficients for a tensor of `group` at update number `step` (may update `scalar`).
    fn coef(&self, group: usize, step: u64, scalar: &mut f64) -> Self::Coef;
    /// The update of one piece; `#[inline(always)]`, element-wise.
    fn apply(c: &Self::Coef, p: &mut [T], g: &[T], s: &mut State<'_, T>);
}

/// Reads a row and checks it has the rule's columns.
pub(crate) fn row<'r>(rows: &[&'r [f64]], g: usize, columns: &[&str]) -> Result<&'r [f64]> {
    let r = rows[g];
    if r.len() != columns.len() {
        return Err(Error::Shape {
            arg: format!("hyper[{g}]"),
            expected: vec![columns.len()],
            got: vec![r.len()],
        });
    }
    Ok(r)
}

/// Validation helpers for hyper-parameters; messages name the group and the option.
pub(crate) fn check(ok: bool, g: usize, name: &str, value: f64, rule: &str) -> Result<()> {
    if ok && !value.is_nan() {
        Ok(())
    } else {
        Err(Error::Value(format!(
            "param_groups[{g}]['{name}'] must be {rule}, got {value}"
        )))
    }
}

pub(crate) fn non_negative(g: usize, name: &str, v: f64) -> Result<f64> {
    check(
        v >= 0.0 && v.is_finite(),
        g,
        name,
        v,
        "a finite number >= 0",
    )?;
    Ok(v)
}

pub(crate) fn finite(g: usize, name: &str, v: f64) -> Result<f64> {
    check(v.is_finite(), g, name, v, "a finite number")?;
    Ok(v)
}

pub(crate) fn unit_interval(g: usize, name: &str, v: f64) -> Result<f64> {
    check((0.0..1.0).contains(&v), g, name, v, "in [0, 1)")?;
    Ok(v)
}

pub(crate) fn closed_unit(g: usize, name: &str, v: f64) -> Result<f64> {
    check((0.0..=1.0).contains(&v), g, name, v, "in [0, 1]")?;
    Ok(v)
}

pub(crate) fn flag(g: usize, name: &str, v: f64) -> Result<bool> {
    check(v == 0.0 || v == 1.0, g, name, v, "0 or 1 (a bool)")?;
    Ok(v == 1.0)
}

/// Checks every slot against the rule before anything is written.
pub fn validate<T: Float, R: Rule<T>>(rule: &R, slots: &[Slot<'_, T>]) -> Result<()> {
    for (i, s) in slots.iter().enumerate() {
        if s.group >= rule.n_groups() {
            return Err(Error::Index {
                arg: format!("group of params[{i}]"),
                index: s.group as i64,
                size: rule.n_groups(),
            });
        }
        let n = s.param.len();
        if s.grad.len() != n {
            return Err(Error::len(format!("grads[{i}]"), n, s.grad.len()));
        }
        for k in 0..rule.n_state(s.group) {
            if s.state[k].len() != n {
                let name = R::STATE[k];
                return Err(Error::len(
                    format!("state {name} of params[{i}]"),
                    n,
                    s.state[k].len(),
                ));
            }
        }
        if s.step == 0 {
            return Err(Error::Value(format!("step of params[{i}] must be >= 1")));
        }
    }
    Ok(())
}

/// A fixed-size piece of one tensor.
pub struct Piece<'a, T> {
    /// Index of the slot it came from.
    pub slot: usize,
    pub group: usize,
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub state: State<'a, T>,
}

/// Cuts every slot at [`CHUNK`] boundaries, in slot order. Returns the pieces and the total length.
pub fn split<'a, T>(slots: Vec<Slot<'a, T>>) -> (Vec<Piece<'a, T>>, usize) {
    let total: usize = slots.iter().map(|s| s.param.len()).sum();
    let mut pieces = Vec::with_capacity(slots.len() + total / CHUNK);
    for (i, slot) in slots.into_iter().enumerate() {
        let Slot {
            mut param,
            mut grad,
            mut state,
            group,
            ..
        } = slot;
        while !param.is_empty() {
            let k = CHUNK.min(param.len());
            let (p0, p1) = std::mem::take(&mut param).split_at_mut(k);
            let (g0, g1) = grad.split_at(k);
            let mut s0: State<'a, T> = Default::default();
            for (dst, src) in s0.iter_mut().zip(state.iter_mut()) {
                let whole = std::mem::take(src);
                if whole.len() >= k {
                    let (a, b) = whole.split_at_mut(k);
                    *dst = a;
                    *src = b;
                }
            }
            pieces.push(Piece {
                slot: i,
                group,
                param: p0,
                grad: g0,
                state: s0,
            });
            param = p1;
            grad = g1;
        }
    }
    (pieces, total)
}

struct Apply<'c, 'a, T: Float, R: Rule<T>> {
    coef: &'c R::Coef,
    piece: Piece<'a, T>,
}

impl<T: Float, R: Rule<T>> Kernel for Apply<'_, '_, T, R> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let mut piece = self.piece;
        R::apply(self.coef, piece.param, piece.grad, &mut piece.state);
    }
}

/// Runs the rule's kernel over all pieces with per-slot coefficients.
pub fn apply_pieces<T: Float, R: Rule<T>>(
    par: Par,
    level: Level,
    coefs: &[R::Coef],
    pieces: Vec<Piece<'_, T>>,
    total: usize,
) {
    par.for_work(total).for_each(pieces, |piece| {
        let coef = &coefs[piece.slot];
        simd::dispatch(level, Apply::<T, R> { coef, piece })
    });
}

/// One optimizer step over all `slots`: validate everything, then update in place.
pub fn step<T: Float, R: Rule<T>>(
    par: Par,
    level: Level,
    rule: &R,
    slots: Vec<Slot<'_, T>>,
) -> Result<()> {
    validate(rule, &slots)?;
    let mut slots = slots;
    let coefs: Vec<R::Coef> = slots
        .iter_mut()
        .map(|s| rule.coef(s.group, s.step, s.scalar))
        .collect();
    let (pieces, total) = split(slots);
    apply_pieces::<T, R>(par, level, &coefs, pieces, total);
    Ok(())
}

/// Element loops index `0..n` over slices cut to `n` first, so bounds checks vanish and LLVM
/// vectorises. `cut!(n; a, b, ...)` re-binds each slice to its first `n` elements.
macro_rules! cut {
    ($n:expr; $($s:ident),+) => {
        $( let $s = &$s[..$n]; )+
    };
}
macro_rules! cut_mut {
    ($n:expr; $($s:ident),+) => {
        $( let $s = &mut $s[..$n]; )+
    };
}
pub(crate) use cut;
pub(crate) use cut_mut;
