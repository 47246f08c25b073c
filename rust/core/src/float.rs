//! The floating-point element type of the kernels: `f32` or `f64`.
//!
//! Hyper-parameters are carried as `f64` and converted once per step with [`Float::of`], as
//! PyTorch converts Python scalars to the tensor's dtype.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// The operations the kernels need; implemented for `f32` and `f64` only.
pub trait Float:
    Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// Rounds an `f64` to this type.
    fn of(x: f64) -> Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    /// `exp`; for `f32` a branch-free approximation within 2 ulp (vectorisable).
    fn exp(self) -> Self;
    /// `tanh`; for `f32` a branch-free approximation within 6 ulp (vectorisable).
    fn tanh(self) -> Self;
    /// `1 / (1 + exp(-x))`, as PyTorch's `sigmoid`.
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }
    fn is_nan(self) -> bool;
    fn is_finite(self) -> bool;
    /// `(sin, cos)`; for `f32` a branch-free approximation within 2e-7 for |x| <= 1e5
    /// (vectorisable), libm beyond.
    fn sin_cos(self) -> (Self, Self);
    /// Sign as PyTorch's `sign`: -1, 0 or 1; NaN stays NaN.
    fn sign(self) -> Self {
        if self > Self::ZERO {
            Self::ONE
        } else if self < Self::ZERO {
            -Self::ONE
        } else {
            self // 0, -0 or NaN
        }
    }
    /// Maximum that propagates NaN from either side, as `torch.maximum`.
    #[inline(always)]
    fn max_nan(self, other: Self) -> Self {
        if self.is_nan() || self > other {
            self
        } else {
            other
        }
    }
    /// `torch.lerp(self, end, weight)` with its two-branch formula.
    #[inline(always)]
    fn lerp(self, end: Self, weight: Self) -> Self {
        let half = Self::of(0.5);
        if weight < half {
            self + weight * (end - self)
        } else {
            end - (end - self) * (Self::ONE - weight)
        }
    }
}

macro_rules! impl_float {
    ($t:ty, $exp:expr, $tanh:expr, $sin_cos:expr) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn of(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn sin_cos(self) -> (Self, Self) {
                $sin_cos(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}
// f32: branch-free exp (within 2 ulp), tanh (6 ulp) and sin_cos, which vectorise; f64: libm.
impl_float!(
    f32,
    crate::simd::math::exp_f32,
    crate::simd::math::tanh_f32,
    crate::simd::math::sin_cos_f32
);
impl_float!(f64, f64::exp, f64::tanh, f64::sin_cos);

/// `s` as `&[f32]` when `T` is `f32` (for kernels with an explicit float32 SIMD path).
pub(crate) fn as_f32<T: Float>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: T is f32 (same type, same layout).
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

/// `s` as `&mut [f32]` when `T` is `f32`.
pub(crate) fn as_f32_mut<T: Float>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: T is f32 (same type, same layout); the borrow is moved into the result.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) })
}
