//! Optimizer update rules, applied to many tensors in one call.
//!
//! A step receives every tensor of the optimizer as a [`Slot`] (parameter, gradient, state
//! slices, group, step number). The driver validates all of them before writing anything, then
//! runs the rule's element-wise kernel over all tensors as one parallel job, each tensor cut into
//! runs of at most [`CHUNK`](crate::par::CHUNK) elements as it goes ([`over_chunks`]), so that a
//! step allocates nothing that grows with the number of elements. Element-wise rules give the
//! same bits for any thread count and SIMD level.
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
pub mod radam;
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

/// [`State`], read-only.
pub type ReadState<'a, T> = [&'a [T]; MAX_STATE];

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

/// A run of one tensor: the whole tensor, or a part of it cut off for another thread.
pub struct Piece<'a, T> {
    /// Index of the slot it came from.
    pub slot: usize,
    pub group: usize,
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub state: State<'a, T>,
}

/// A run of a tensor that [`over_chunks`] can cut in two.
pub trait Run: Sized + Send {
    /// Number of elements.
    fn elements(&self) -> usize;
    /// The first `k` elements and the rest.
    fn split_at(self, k: usize) -> (Self, Self);
}

impl<'a, T: Send + Sync> Run for Piece<'a, T> {
    fn elements(&self) -> usize {
        self.param.len()
    }

    fn split_at(self, k: usize) -> (Self, Self) {
        let Piece {
            slot,
            group,
            param,
            grad,
            state,
        } = self;
        let (p0, p1) = param.split_at_mut(k);
        let (g0, g1) = grad.split_at(k);
        let mut s0: State<'a, T> = Default::default();
        let mut s1: State<'a, T> = Default::default();
        for ((a, b), whole) in s0.iter_mut().zip(s1.iter_mut()).zip(state) {
            // Unused buffers (empty, or any length a rule does not read) are dropped.
            if whole.len() >= k {
                (*a, *b) = whole.split_at_mut(k);
            }
        }
        let piece = |param, grad, state| Piece {
            slot,
            group,
            param,
            grad,
            state,
        };
        (piece(p0, g0, s0), piece(p1, g1, s1))
    }
}

/// A read-only run of one tensor (what the hypergradient rules' dot products read).
pub struct PieceRef<'a, T> {
    pub param: &'a [T],
    pub grad: &'a [T],
    pub state: ReadState<'a, T>,
}

impl<T> Piece<'_, T> {
    /// The piece, read-only.
    pub fn view(&self) -> PieceRef<'_, T> {
        PieceRef {
            param: self.param,
            grad: self.grad,
            state: std::array::from_fn(|k| &*self.state[k]),
        }
    }
}

impl<T: Sync> Run for PieceRef<'_, T> {
    fn elements(&self) -> usize {
        self.param.len()
    }

    fn split_at(self, k: usize) -> (Self, Self) {
        let (p0, p1) = self.param.split_at(k);
        let (g0, g1) = self.grad.split_at(k);
        let mut s0: ReadState<'_, T> = [&[]; MAX_STATE];
        let mut s1: ReadState<'_, T> = [&[]; MAX_STATE];
        for ((a, b), whole) in s0.iter_mut().zip(s1.iter_mut()).zip(self.state) {
            if whole.len() >= k {
                (*a, *b) = whole.split_at(k);
            }
        }
        (
            PieceRef {
                param: p0,
                grad: g0,
                state: s0,
            },
            PieceRef {
                param: p1,
                grad: g1,
                state: s1,
            },
        )
    }
}

/// One piece per slot, in slot order, and the total length. Nothing here grows with the
/// number of elements: [`over_chunks`] cuts the pieces further while it runs them.
pub fn split<'a, T>(slots: Vec<Slot<'a, T>>) -> (Vec<Piece<'a, T>>, usize) {
    let total: usize = slots.iter().map(|s| s.param.len()).sum();
    let pieces = (slots.into_iter().enumerate())
        .map(|(slot, s)| Piece {
            slot,
            group: s.group,
            param: s.param,
            grad: s.grad,
            state: s.state,
        })
        .collect();
    (pieces, total)
}

/// Runs `leaf` on runs of at most [`CHUNK`] elements of `run` and combines their results
/// with `join`. The runs are the leaves of a fixed binary tree (each node cut after half of its
/// whole chunks), and results are combined in tree order, in parallel under `Par::Rayon`: the
/// result depends on the data only, never on the thread count.
pub fn over_chunks<P: Run, R: Send>(
    par: Par,
    run: P,
    leaf: &(impl Fn(P) -> R + Sync),
    join: &(impl Fn(R, R) -> R + Sync),
) -> R {
    let n = run.elements();
    if n <= CHUNK {
        return leaf(run);
    }
    let (left, right) = run.split_at(n.div_ceil(CHUNK) / 2 * CHUNK);
    let (a, b) = par.join(
        || over_chunks(par, left, leaf, join),
        || over_chunks(par, right, leaf, join),
    );
    join(a, b)
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
    let par = par.for_work(total);
    par.for_each(pieces, |piece| {
        let coef = &coefs[piece.slot];
        let leaf = |piece| simd::dispatch(level, Apply::<T, R> { coef, piece });
        over_chunks(par, piece, &leaf, &|(), ()| ());
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
