//! Dense matrix products through a real GEMM crate (`gemm`, faer's engine: cache-blocked
//! micro-kernels with run-time SIMD detection up to AVX-512, small-matrix paths, rayon
//! threading). No hand-written triple loops anywhere in nesy; the one hand-written product is the
//! f32 per-step recurrent product on AVX2 and AVX-512 (`rnn/product.rs`), a packed
//! register-blocked kernel for thin products, where a general GEMM spends as long packing as
//! multiplying.
//!
//! Threading never changes results: `gemm` splits the output into tiles, and every output
//! element is reduced over `k` by one thread in the same order whatever the thread count.
//!
//! [`Mat`]/[`MatMut`] are strided views over slices; [`gemm`] checks that every view fits its
//! slice and that the shapes agree (internal invariants: callers validate user input first).

use crate::float::Float;
use crate::par::Par;

/// A GEMM-capable element type (`f32`, `f64`).
pub trait Gemm: Float {}
impl Gemm for f32 {}
impl Gemm for f64 {}

/// Products with at least this many multiply-adds may use all threads of the current pool.
pub const PARALLEL_GEMM_MACS: usize = 1 << 23;

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
    /// Row stride (>= cols).
    rs: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// A row-major `rows x cols` matrix at the start of `data`.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            rs: cols,
        }
    }

    /// A `rows x cols` block of a row-major matrix whose rows are `row_stride` apart (a column
    /// block of a wider matrix, starting at `data[0]`).
    pub fn strided(data: &'a mut [T], rows: usize, cols: usize, row_stride: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            rs: row_stride,
        }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rs >= self.cols && (self.rows - 1) * self.rs + self.cols <= self.data.len())
    }
}

/// `c = alpha * a * b + beta * c` (with `beta == 0`, `c` is not read, so it may hold NaN).
/// With `Par::Rayon`, products of at least [`PARALLEL_GEMM_MACS`] multiply-adds use the threads
/// of the current rayon pool.
pub fn gemm<T: Gemm>(par: Par, alpha: T, a: Mat<'_, T>, b: Mat<'_, T>, beta: T, c: MatMut<'_, T>) {
    assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "gemm: shapes disagree"
    );
    assert!(a.fits() && b.fits() && c.fits(), "gemm: view out of bounds");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // Nothing to add: c = beta * c (or 0).
        for row in 0..m {
            for v in c.data[row * c.rs..row * c.rs + n].iter_mut() {
                *v = if beta == T::ZERO { T::ZERO } else { *v * beta };
            }
        }
        return;
    }
    let parallelism = if par == Par::Rayon && m * n * k >= PARALLEL_GEMM_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the views fit their slices (checked above); `c` is a unique borrow. The `gemm`
    // crate computes dst = alpha_dst * dst + beta_prod * lhs * rhs (read_dst: whether to read dst).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            1,
            c.rs as isize,
            beta != T::ZERO,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
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
            Par::Seq,
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
            Par::Seq,
            1.0,
            Mat::new(&[], 2, 0),
            Mat::new(&[], 0, 2),
            0.0,
            MatMut::new(&mut c, 2, 2),
        );
        assert_eq!(c, vec![0.0; 4]);
    }

    #[test]
    fn threaded_products_are_bitwise_identical_to_sequential_ones() {
        for (m, k, n) in [(300, 257, 129), (1024, 64, 512), (7, 3000, 700)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104729) % 1000) as f32 / 991.0 - 0.5)
                .collect();
            let mut c1 = vec![0.0f32; m * n];
            let mut c2 = vec![0.0f32; m * n];
            gemm(
                Par::Seq,
                1.0,
                Mat::new(&a, m, k),
                Mat::new(&b, k, n),
                0.0,
                MatMut::new(&mut c1, m, n),
            );
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap();
            pool.install(|| {
                gemm(
                    Par::Rayon,
                    1.0,
                    Mat::new(&a, m, k),
                    Mat::new(&b, k, n),
                    0.0,
                    MatMut::new(&mut c2, m, n),
                )
            });
            assert!(m * n * k >= PARALLEL_GEMM_MACS || m == 7);
            assert_eq!(c1, c2, "{m}x{k}x{n}");
        }
    }
}
