//! Row-sparse gradients and the row-wise Adagrad and Adam updates of embedding tables.
//!
//! A training batch touches few rows of the tables; [`RowGrads`] accumulates their gradients in
//! first-appearance order (a fixed order: the sums do not depend on threads), and
//! [`SparseOpt::apply`] updates only those rows, as `torch.optim.SparseAdam` and Adagrad with
//! sparse gradients do: the moments of untouched rows do not decay.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::par::Par;

/// Gradients of a set of rows of a `(n_rows, width)` table.
#[derive(Clone, Debug)]
pub struct RowGrads<T> {
    width: usize,
    /// Rows in first-appearance order (unique: `row` gives each id one slot).
    ids: Vec<i64>,
    /// `(ids.len(), width)`.
    grads: Vec<T>,
    /// Slot of every row id, `u32::MAX` when absent.
    slot: Vec<u32>,
}

impl<T: Float> RowGrads<T> {
    pub fn new(n_rows: usize, width: usize) -> Self {
        RowGrads {
            width,
            ids: Vec::new(),
            grads: Vec::new(),
            slot: vec![u32::MAX; n_rows],
        }
    }

    /// The gradient row of `id`, zero when first seen.
    #[inline]
    pub fn row(&mut self, id: i64) -> &mut [T] {
        let w = self.width;
        let mut s = self.slot[id as usize] as usize;
        if s == u32::MAX as usize {
            s = self.ids.len();
            self.slot[id as usize] = s as u32;
            self.ids.push(id);
            self.grads.resize((s + 1) * w, T::ZERO);
        }
        &mut self.grads[s * w..(s + 1) * w]
    }

    /// The rows, in first-appearance order.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// The gradient rows, `(ids().len(), width)`.
    pub fn grads(&self) -> &[T] {
        &self.grads
    }

    /// Adds `g` to the row of `id`.
    #[inline]
    pub fn add(&mut self, id: i64, g: &[T]) {
        for (a, &b) in self.row(id).iter_mut().zip(g) {
            *a = *a + b;
        }
    }

    /// Adds every row of `other`, in its order.
    pub fn merge(&mut self, other: &RowGrads<T>) {
        let w = self.width;
        for (k, &id) in other.ids.iter().enumerate() {
            self.add(id, &other.grads[k * w..(k + 1) * w]);
        }
    }

    /// Forgets every row (keeps the allocations).
    pub fn clear(&mut self) {
        for &id in &self.ids {
            self.slot[id as usize] = u32::MAX;
        }
        self.ids.clear();
        self.grads.clear();
    }
}

/// A row-wise optimizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SparseOpt {
    /// `G += g^2; p -= lr g / (sqrt(G) + eps)` (torch's Adagrad without lr decay).
    Adagrad { lr: f64, eps: f64 },
    /// torch's `SparseAdam`: moments of touched rows only, bias correction by the global step.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
}

impl SparseOpt {
    /// From a name and hyper-parameters, checked.
    pub fn parse(name: &str, lr: f64, beta1: f64, beta2: f64, eps: f64) -> Result<SparseOpt> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::Value(format!(
                "lr: must be finite and >= 0, got {lr}"
            )));
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(Error::Value(format!(
                "eps: must be finite and > 0, got {eps}"
            )));
        }
        match name {
            "adagrad" => Ok(SparseOpt::Adagrad { lr, eps }),
            "adam" => {
                for (b, what) in [(beta1, "beta1"), (beta2, "beta2")] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(Error::Value(format!("{what}: expected [0, 1), got {b}")));
                    }
                }
                Ok(SparseOpt::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                })
            }
            other => Err(Error::Value(format!(
                "optimizer: expected 'adagrad' or 'adam', got {other:?}"
            ))),
        }
    }

    /// State arrays per table: Adagrad 1 (the sum of squares), Adam 2 (the two moments).
    pub fn n_states(&self) -> usize {
        match self {
            SparseOpt::Adagrad { .. } => 1,
            SparseOpt::Adam { .. } => 2,
        }
    }

    /// Updates the rows of `grads` in `table (n, width)` with `state (n_states, n, width)`;
    /// `step` is this update's 1-based count (Adam's bias correction). Parallel over rows
    /// (the ids are unique, so rows are disjoint); every row's arithmetic is independent, so
    /// the result does not depend on threads.
    pub fn apply<T: Float>(
        &self,
        par: Par,
        table: &mut [T],
        state: &mut [T],
        step: u64,
        grads: &RowGrads<T>,
    ) -> Result<()> {
        let w = grads.width;
        let n = table.len();
        if w == 0 || !n.is_multiple_of(w) || grads.slot.len() != n / w {
            return Err(Error::Value(format!(
                "table: {n} values do not hold the {} rows of width {w} of the gradients",
                grads.slot.len()
            )));
        }
        if state.len() != self.n_states() * n {
            return Err(Error::len("state", self.n_states() * n, state.len()));
        }
        let ptr = SyncPtr(table.as_mut_ptr(), state.as_mut_ptr());
        let rows: Vec<usize> = (0..grads.ids.len()).collect();
        let opt = *self;
        let update = |k: &usize| {
            let id = grads.ids[*k] as usize;
            let g = &grads.grads[k * w..(k + 1) * w];
            // SAFETY: ids are unique (RowGrads gives each one slot and its fields are private),
            // so the row slices of different `k` are disjoint; `id < n / w` because `row()`
            // indexes `slot` (length n / w, checked above) with it; the state holds `n_states`
            // tables of `n` elements (checked above).
            let (p, s1) = unsafe { (ptr.table(id * w, w), ptr.state(id * w, w)) };
            match opt {
                SparseOpt::Adagrad { lr, eps } => {
                    let (lr, eps) = (T::of(lr), T::of(eps));
                    for j in 0..w {
                        s1[j] = s1[j] + g[j] * g[j];
                        p[j] = p[j] - lr * g[j] / (s1[j].sqrt() + eps);
                    }
                }
                SparseOpt::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                } => {
                    // SAFETY: as above, in the second moment table.
                    let s2 = unsafe { ptr.state(n + id * w, w) };
                    let bc1 = 1.0 - beta1.powf(step as f64);
                    let bc2 = (1.0 - beta2.powf(step as f64)).sqrt();
                    let (b1, b2) = (T::of(beta1), T::of(beta2));
                    let step_size = T::of(lr / bc1);
                    let (bc2, eps) = (T::of(bc2), T::of(eps));
                    for j in 0..w {
                        s1[j] = b1 * s1[j] + (T::ONE - b1) * g[j];
                        s2[j] = b2 * s2[j] + (T::ONE - b2) * g[j] * g[j];
                        p[j] = p[j] - step_size * s1[j] / (s2[j].sqrt() / bc2 + eps);
                    }
                }
            }
        };
        par.for_work(rows.len() * w * 8)
            .map_slice(&rows, |k| update(k));
        Ok(())
    }
}

/// Raw table and state pointers shared by the row updates (see the SAFETY note in `apply`).
#[derive(Clone, Copy)]
struct SyncPtr<T>(*mut T, *mut T);
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// # Safety
    /// `at..at + len` is inside the table and no other live slice covers it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn table(&self, at: usize, len: usize) -> &mut [T] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(at), len) }
    }

    /// # Safety
    /// As [`SyncPtr::table`], in the state.
    #[allow(clippy::mut_from_ref)]
    unsafe fn state(&self, at: usize, len: usize) -> &mut [T] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.1.add(at), len) }
    }
}
