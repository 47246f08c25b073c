//! Gradient utilities fused across tensors: clipping by value and by global norm, norms,
//! finiteness checks, L1/L2 penalties and decoupled decay (scaling).
//!
//! Each function treats a list of tensors as one vector: it cuts every tensor at fixed
//! [`CHUNK`] boundaries and runs all pieces as one parallel job. Reductions add `f64` partial
//! sums per piece in piece order, so results are identical for any thread count and SIMD level.

use crate::float::Float;
use crate::par::{Par, CHUNK};
use crate::simd::{dispatch, sum_lanes, Kernel, Level, LANES};

fn pieces_mut<T>(xs: Vec<&mut [T]>) -> (Vec<&mut [T]>, usize) {
    let total = xs.iter().map(|x| x.len()).sum();
    (
        xs.into_iter().flat_map(|x| x.chunks_mut(CHUNK)).collect(),
        total,
    )
}

fn pieces<'a, T>(xs: &[&'a [T]]) -> (Vec<&'a [T]>, usize) {
    let total = xs.iter().map(|x| x.len()).sum();
    (xs.iter().flat_map(|x| x.chunks(CHUNK)).collect(), total)
}

/// An element-wise map in place, compiled per SIMD level (closures would not be inlined into
/// the level's wrapper, so every kernel here is a named type with `#[inline(always)]` code).
trait MapInPlace<T: Float>: Copy + Sync + Send {
    fn map(self, x: T) -> T;
}

#[derive(Clone, Copy)]
struct Clamp<T>(T, T);
impl<T: Float> MapInPlace<T> for Clamp<T> {
    #[inline(always)]
    fn map(self, v: T) -> T {
        // Comparisons are false for NaN, which therefore passes through (as `torch.clamp`).
        if v > self.1 {
            self.1
        } else if v < self.0 {
            self.0
        } else {
            v
        }
    }
}

#[derive(Clone, Copy)]
struct Scale<T>(T);
impl<T: Float> MapInPlace<T> for Scale<T> {
    #[inline(always)]
    fn map(self, v: T) -> T {
        v * self.0
    }
}

struct MapKernel<'a, T, M>(&'a mut [T], M);
impl<T: Float, M: MapInPlace<T>> Kernel for MapKernel<'_, T, M> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for v in self.0.iter_mut() {
            *v = self.1.map(*v);
        }
    }
}

fn map_in_place<T: Float, M: MapInPlace<T>>(par: Par, level: Level, xs: Vec<&mut [T]>, m: M) {
    let (ps, total) = pieces_mut(xs);
    par.for_work(total)
        .for_each(ps, |x| dispatch(level, MapKernel(x, m)));
}

/// Clamps every element to `[-clip, clip]` in place (NaN stays NaN, as `torch.clamp`).
pub fn clip_value<T: Float>(par: Par, level: Level, xs: Vec<&mut [T]>, clip: f64) {
    map_in_place(par, level, xs, Clamp(T::of(-clip), T::of(clip)));
}

/// Multiplies every element by `factor` in place (decoupled weight decay uses `1 - lr * wd`).
pub fn scale<T: Float>(par: Par, level: Level, xs: Vec<&mut [T]>, factor: f64) {
    map_in_place(par, level, xs, Scale(T::of(factor)));
}

/// A per-element term of a sum, in `f64`.
trait Term<T: Float>: Copy + Sync + Send {
    fn term(x: T) -> f64;
}

#[derive(Clone, Copy)]
struct Square;
impl<T: Float> Term<T> for Square {
    #[inline(always)]
    fn term(x: T) -> f64 {
        let v = x.to_f64();
        v * v
    }
}

#[derive(Clone, Copy)]
struct Abs;
impl<T: Float> Term<T> for Abs {
    #[inline(always)]
    fn term(x: T) -> f64 {
        x.abs().to_f64()
    }
}

/// `x * 0`: 0 for finite `x`, NaN for NaN and infinities.
#[derive(Clone, Copy)]
struct NonFinite;
impl<T: Float> Term<T> for NonFinite {
    #[inline(always)]
    fn term(x: T) -> f64 {
        (x * T::ZERO).to_f64()
    }
}

struct SumKernel<'a, T, F>(&'a [T], F);
impl<T: Float, F: Term<T>> Kernel for SumKernel<'_, T, F> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        sum_lanes(self.0, F::term)
    }
}

/// `sum_i term(x_i)` over all tensors, in `f64`, in a fixed order.
fn reduce<T: Float, F: Term<T>>(par: Par, level: Level, xs: &[&[T]], f: F) -> f64 {
    let (ps, total) = pieces(xs);
    par.for_work(total)
        .map_slice(&ps, |x| dispatch(level, SumKernel(x, f)))
        .iter()
        .sum()
}

/// Sum of squares of all elements, in `f64`.
pub fn sum_squares<T: Float>(par: Par, level: Level, xs: &[&[T]]) -> f64 {
    reduce(par, level, xs, Square)
}

/// Sum of absolute values of all elements, in `f64`.
pub fn sum_abs<T: Float>(par: Par, level: Level, xs: &[&[T]]) -> f64 {
    reduce(par, level, xs, Abs)
}

struct MaxAbsKernel<'a, T>(&'a [T]);
impl<T: Float> Kernel for MaxAbsKernel<'_, T> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        // Lane-wise maxima (vectorisable), then across lanes; NaN wins everywhere.
        let mut acc = [T::ZERO; LANES];
        let chunks = self.0.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                acc[l] = acc[l].max_nan(c[l].abs());
            }
        }
        for (l, v) in rest.iter().enumerate() {
            acc[l] = acc[l].max_nan(v.abs());
        }
        acc.iter().fold(T::ZERO, |m, &v| m.max_nan(v)).to_f64()
    }
}

/// Largest absolute value (NaN if any element is NaN; 0 for no elements).
pub fn max_abs<T: Float>(par: Par, level: Level, xs: &[&[T]]) -> f64 {
    let (ps, total) = pieces(xs);
    par.for_work(total)
        .map_slice(&ps, |x| dispatch(level, MaxAbsKernel(x)))
        .into_iter()
        .fold(0.0, |m: f64, v| {
            if m.is_nan() || v.is_nan() {
                f64::NAN
            } else {
                m.max(v)
            }
        })
}

/// Whether every element is finite.
pub fn all_finite<T: Float>(par: Par, level: Level, xs: &[&[T]]) -> bool {
    // A sum of `x * 0` is 0 when every x is finite and NaN otherwise; it vectorises, unlike an
    // early-exit loop.
    reduce(par, level, xs, NonFinite) == 0.0
}

struct PenaltyKernel<'a, T> {
    g: &'a mut [T],
    p: &'a [T],
    l1: Option<T>,
    l2: Option<T>,
}
impl<T: Float> Kernel for PenaltyKernel<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let n = self.g.len();
        let (g, p) = (self.g, &self.p[..n]);
        for i in 0..n {
            if let Some(a) = self.l1 {
                g[i] = g[i] + a * p[i].sign();
            }
            if let Some(b) = self.l2 {
                g[i] = g[i] + b * p[i];
            }
        }
    }
}

/// Adds the gradient of `l1 * sum|p| + l2 / 2 * sum p^2` to `grads` and returns that penalty.
/// `grads[i]` and `params[i]` must have equal lengths (checked by the caller).
pub fn penalty<T: Float>(
    par: Par,
    level: Level,
    grads: Vec<&mut [T]>,
    params: &[&[T]],
    l1: f64,
    l2: f64,
) -> f64 {
    let mut value = 0.0;
    if l1 != 0.0 {
        value += l1 * sum_abs(par, level, params);
    }
    if l2 != 0.0 {
        value += 0.5 * l2 * sum_squares(par, level, params);
    }
    let total: usize = params.iter().map(|p| p.len()).sum();
    let work: Vec<(&mut [T], &[T])> = grads
        .into_iter()
        .zip(params)
        .flat_map(|(g, p)| g.chunks_mut(CHUNK).zip(p.chunks(CHUNK)))
        .collect();
    let l1 = (l1 != 0.0).then(|| T::of(l1));
    let l2 = (l2 != 0.0).then(|| T::of(l2));
    par.for_work(total).for_each(work, |(g, p)| {
        dispatch(level, PenaltyKernel { g, p, l1, l2 })
    });
    value
}

/// The `norm_type` norm (1, 2 or infinity) of `f32` and `f64` tensors together, in `f64`.
pub fn norm(
    par: Par,
    level: Level,
    a: &[&[f32]],
    b: &[&[f64]],
    norm_type: f64,
) -> crate::Result<f64> {
    if norm_type == f64::INFINITY {
        let (x, y) = (max_abs(par, level, a), max_abs(par, level, b));
        Ok(if x.is_nan() || y.is_nan() {
            f64::NAN
        } else {
            x.max(y)
        })
    } else if norm_type == 2.0 {
        // `+ 0.0`: the sum of no terms is -0.0.
        Ok((sum_squares(par, level, a) + sum_squares(par, level, b)).sqrt() + 0.0)
    } else if norm_type == 1.0 {
        Ok(sum_abs(par, level, a) + sum_abs(par, level, b) + 0.0)
    } else {
        Err(crate::Error::Value(format!(
            "norm_type must be 1, 2 or inf, got {norm_type}"
        )))
    }
}

/// Tensors of both dtypes treated as one vector (an optimizer may hold both).
#[derive(Default)]
pub struct Mixed<'a> {
    pub f32: Vec<&'a mut [f32]>,
    pub f64: Vec<&'a mut [f64]>,
}

impl Mixed<'_> {
    /// Number of elements of all tensors.
    pub fn len(&self) -> usize {
        self.f32.iter().map(|x| x.len()).sum::<usize>()
            + self.f64.iter().map(|x| x.len()).sum::<usize>()
    }

    /// Whether there are no elements at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn views(&self) -> (Vec<&[f32]>, Vec<&[f64]>) {
        (
            self.f32.iter().map(|x| &**x).collect(),
            self.f64.iter().map(|x| &**x).collect(),
        )
    }

    /// The `norm_type` norm of all elements together (see [`norm`]).
    pub fn norm(&self, par: Par, level: Level, norm_type: f64) -> crate::Result<f64> {
        let (a, b) = self.views();
        norm(par, level, &a, &b, norm_type)
    }

    /// Multiplies every element by `factor`.
    pub fn scale(self, par: Par, level: Level, factor: f64) {
        scale(par, level, self.f32, factor);
        scale(par, level, self.f64, factor);
    }
}

/// Rescales `grads` so that their joint norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: factor `min(1, max_norm / (norm + 1e-6))`) and returns the norm before
/// clipping. With `error_if_nonfinite`, a NaN or infinite norm is an error and nothing changes.
pub fn clip_grad_norm(
    par: Par,
    level: Level,
    grads: Mixed<'_>,
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
) -> crate::Result<f64> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(crate::Error::Value(format!(
            "max_norm must be >= 0, got {max_norm}"
        )));
    }
    let norm = grads.norm(par, level, norm_type)?;
    if error_if_nonfinite && !norm.is_finite() {
        return Err(crate::Error::Value(format!(
            "the total norm of order {norm_type} of the gradients is non-finite ({norm}), so it \
             cannot be clipped; pass error_if_nonfinite=False to scale by NaN as PyTorch does"
        )));
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 || coef.is_nan() {
        grads.scale(par, level, coef);
    }
    Ok(norm)
}
