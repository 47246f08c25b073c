//! Sequential or parallel execution with results that do not depend on the thread count.
//!
//! Work is cut into fixed-size pieces ([`CHUNK`] elements) whose boundaries depend only on the
//! data, never on the number of threads. Element-wise kernels therefore give identical bits for
//! any pool size, and reductions combine per-piece partial results in piece order.
//!
//! [`Par::Rayon`] runs on the *current* rayon pool: the caller chooses the pool (the Python
//! bindings install theirs, sized by `NESY_NUM_THREADS`); kernels never create one.

use rayon::prelude::*;

/// Elements per work piece: 16 Ki elements keeps a piece's working set (a few arrays) in L2.
pub const CHUNK: usize = 1 << 14;

/// Below this many elements in total a call runs sequentially: a fork/join costs more than it saves.
pub const MIN_PARALLEL_WORK: usize = 1 << 15;

/// How a kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Par {
    /// On the calling thread, in order.
    Seq,
    /// On the current rayon pool.
    #[default]
    Rayon,
}

impl Par {
    /// Threads this mode runs on: 1, or the size of the current rayon pool (for sizing work
    /// pieces only; results never depend on it).
    pub fn threads(self) -> usize {
        match self {
            Par::Seq => 1,
            Par::Rayon => rayon::current_num_threads(),
        }
    }

    /// `Seq` when `elements` is too little work to share, else `self`. Never changes results.
    pub fn for_work(self, elements: usize) -> Par {
        if elements < MIN_PARALLEL_WORK {
            Par::Seq
        } else {
            self
        }
    }

    /// Runs `f` on every item (in any order when parallel).
    pub fn for_each<I: Send>(self, items: Vec<I>, f: impl Fn(I) + Sync + Send) {
        match self {
            Par::Seq => items.into_iter().for_each(f),
            Par::Rayon => items.into_par_iter().for_each(f),
        }
    }

    /// Maps every item, returning the results in item order.
    pub fn map<I: Send, R: Send>(self, items: Vec<I>, f: impl Fn(I) -> R + Sync + Send) -> Vec<R> {
        match self {
            Par::Seq => items.into_iter().map(f).collect(),
            Par::Rayon => items.into_par_iter().map(f).collect(),
        }
    }
}

impl Par {
    /// Runs both closures (possibly at once when parallel) and returns both results.
    pub fn join<A: Send, B: Send>(
        self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        match self {
            Par::Seq => (a(), b()),
            Par::Rayon => rayon::join(a, b),
        }
    }

    /// Maps every item of a slice, returning the results in item order.
    pub fn map_slice<I: Sync, R: Send>(
        self,
        items: &[I],
        f: impl Fn(&I) -> R + Sync + Send,
    ) -> Vec<R> {
        match self {
            Par::Seq => items.iter().map(f).collect(),
            Par::Rayon => items.par_iter().map(f).collect(),
        }
    }
}

/// Splits `slice` at fixed [`CHUNK`] boundaries (counted from its start).
pub fn chunks_mut<T>(slice: &mut [T]) -> impl Iterator<Item = &mut [T]> {
    slice.chunks_mut(CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_order_for_both_modes() {
        let items: Vec<usize> = (0..1000).collect();
        let seq = Par::Seq.map(items.clone(), |i| i * 2);
        let par = Par::Rayon.map(items, |i| i * 2);
        assert_eq!(seq, par);
        assert_eq!(seq[999], 1998);
    }

    #[test]
    fn join_returns_both_results_in_both_modes() {
        for par in [Par::Seq, Par::Rayon] {
            assert_eq!(par.join(|| 1 + 1, || "two"), (2, "two"));
        }
    }

    #[test]
    fn small_work_runs_sequentially() {
        assert_eq!(Par::Rayon.for_work(10), Par::Seq);
        assert_eq!(Par::Rayon.for_work(MIN_PARALLEL_WORK), Par::Rayon);
        assert_eq!(Par::Seq.for_work(usize::MAX), Par::Seq);
    }
}
