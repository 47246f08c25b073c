//! Dense matrix products through a real GEMM crate (`matrixmultiply`: cache-blocked
//! micro-kernels, run-time SIMD detection). No hand-written triple loops anywhere in nesy.
//!
//! [`Mat`]/[`MatMut`] are strided views over slices; [`gemm`] checks that every view fits its
//! slice and that the shapes agree (internal invariants: callers validate user input first).

use crate::float::Float;

/// A GEMM-capable element type.
pub trait Gemm: Float {
    /// `C = alpha * A * B + beta * C` on raw strided views.
    ///
    /// # Safety
    /// The pointers with their strides must address valid, non-overlapping (for `c`) memory of
    /// the given shapes.
    #[allow(clippy::too_many_arguments)]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Gemm for f32 {
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract.
        unsafe {
            matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

impl Gemm for f64 {
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract.
        unsafe {
            matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

/// A read-only strided matrix view.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `rows x cols` matrix at the start of `data`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose (a view; nothing moves).
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// A mutable row-major matrix view.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// A row-major `rows x cols` matrix at the start of `data`.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        MatMut { data, rows, cols }
    }
}

/// `c = alpha * a * b + beta * c` (with `beta == 0`, `c` is not read, so it may hold NaN).
pub fn gemm<T: Gemm>(alpha: T, a: Mat<'_, T>, b: Mat<'_, T>, beta: T, c: MatMut<'_, T>) {
    assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "gemm: shapes disagree"
    );
    assert!(
        a.fits() && b.fits() && c.rows * c.cols <= c.data.len(),
        "gemm: view out of bounds"
    );
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // Nothing to add: c = beta * c (or 0).
        for v in c.data[..m * n].iter_mut() {
            *v = if beta == T::ZERO { T::ZERO } else { *v * beta };
        }
        return;
    }
    // SAFETY: the views fit their slices (checked above); `c` is a unique borrow.
    unsafe {
        T::raw_gemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.cols as isize,
            1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_naive_products_with_transposes() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let bt: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.11).cos()).collect(); // n x k
        let mut c = vec![1.0; m * n];
        gemm(
            2.0,
            Mat::new(&a, m, k),
            Mat::new(&bt, n, k).t(),
            0.5,
            MatMut::new(&mut c, m, n),
        );
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|l| a[i * k + l] * bt[j * k + l]).sum();
                assert!((c[i * n + j] - (2.0 * dot + 0.5)).abs() < 1e-12);
            }
        }
        // k == 0 and beta == 0 clears c.
        let mut c = vec![f64::NAN; 4];
        gemm(
            1.0,
            Mat::new(&[], 2, 0),
            Mat::new(&[], 0, 2),
            0.0,
            MatMut::new(&mut c, 2, 2),
        );
        assert_eq!(c, vec![0.0; 4]);
    }
}
