//! Graph neural-network kernels over CSR adjacency (rows = destination nodes).
//!
//! A graph arrives as `indptr (n_dst + 1)` and `indices (E)` (source node of every edge, grouped
//! by destination), optionally with edge weights `(E)`. Backward passes are gathers over the
//! transposed CSR (rows = source nodes, with `perm` mapping its edges back to the forward edge
//! order), so every output row is written by one thread: no atomics, and results are identical
//! for any thread count.

pub mod aggregate;
pub mod build;
pub mod sddmm;
pub mod softmax;

pub use aggregate::{aggregate, aggregate_backward, gather_sum, Reduce};
pub use build::{build_csr, CsrArrays};
pub use sddmm::{sddmm, sddmm_backward, SddmmOp};
pub use softmax::{edge_softmax, edge_softmax_backward};

use crate::error::{Error, Result};

/// Edge weights in CSR edge order, one per edge and head: `w[e * heads + h]`. With `heads > 1`
/// the `f` feature columns form `heads` equal groups and head `h` scales columns
/// `h * f / heads .. (h + 1) * f / heads` (multi-head attention coefficients).
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a, T> {
    pub w: &'a [T],
    pub heads: usize,
}

impl<'a, T: Copy> Weights<'a, T> {
    /// One weight per edge, shared by every feature.
    pub fn shared(w: &'a [T]) -> Self {
        Weights { w, heads: 1 }
    }

    /// The weight of edge `e` for head `h`.
    #[inline(always)]
    pub fn at(&self, e: usize, h: usize) -> T {
        self.w[e * self.heads + h]
    }

    /// Checks the length against the graph and that `heads` divides the feature count.
    pub fn check(&self, nnz: usize, f: usize, name: &str) -> Result<()> {
        if self.heads == 0 || !f.is_multiple_of(self.heads) {
            return Err(Error::Value(format!(
                "{name}: {} heads do not divide {f} features",
                self.heads
            )));
        }
        if self.w.len() != nnz * self.heads {
            return Err(Error::Shape {
                arg: name.into(),
                expected: vec![nnz, self.heads],
                got: vec![self.w.len()],
            });
        }
        Ok(())
    }
}

/// The number of heads of optional weights (1 without weights).
pub(crate) fn heads_of<T>(w: &Option<Weights<'_, T>>) -> usize {
    w.as_ref().map_or(1, |w| w.heads)
}

/// The first index outside `0..n`, if any. Scans in blocks with a branch-free test (one
/// unsigned compare per index, vectorised) and searches a block only when it holds a bad index:
/// every kernel call validates its graph, so this pass must run at memory speed.
pub(crate) fn first_out_of_range(indices: &[i64], n: usize) -> Option<(usize, &i64)> {
    const BLOCK: usize = 4096;
    for (b, block) in indices.chunks(BLOCK).enumerate() {
        if block
            .iter()
            .fold(false, |bad, &i| bad | (i as u64 >= n as u64))
        {
            let (k, i) = block
                .iter()
                .enumerate()
                .find(|(_, &i)| i as u64 >= n as u64)?;
            return Some((b * BLOCK + k, i));
        }
    }
    None
}

/// A CSR adjacency borrowed from the caller: `indices[indptr[r]..indptr[r + 1]]` are the
/// neighbours of row `r`, all `< n_cols`.
///
/// The structure (`indptr`) is always checked on construction. The indices are checked by
/// [`Csr::new`] in one pass, or, for a graph made with [`Csr::with_lazy_indices`], by the kernels
/// as they read them: the sum/mean aggregation tests each index as it gathers it (a separate
/// pass over the whole graph cost a third of the aggregation); the other kernels that index
/// sources (max/min, SDDMM, weight gradients) call [`Csr::check_indices`] first, and edge
/// softmax never reads them. The fields are private so that no `Csr` skips both.
#[derive(Clone, Copy, Debug)]
pub struct Csr<'a> {
    n_rows: usize,
    n_cols: usize,
    indptr: &'a [i64],
    indices: &'a [i64],
    /// Prefix of error messages (`"graph"`, `"graph (transposed)"`).
    name: &'a str,
    indices_checked: bool,
}

impl<'a> Csr<'a> {
    /// Checks the structure: `indptr` starts at 0, never decreases, ends at `E`; and every
    /// index is in `0..n_cols`. `name` prefixes the messages (`"graph"`, `"graph (transposed)"`).
    pub fn new(
        n_rows: usize,
        n_cols: usize,
        indptr: &'a [i64],
        indices: &'a [i64],
        name: &'a str,
    ) -> Result<Self> {
        let g = Self::with_lazy_indices(n_rows, n_cols, indptr, indices, name)?;
        g.check_indices()?;
        Ok(Csr {
            indices_checked: true,
            ..g
        })
    }

    /// Checks the structure only; the indices are checked by the kernels that use the graph
    /// (see the type's documentation), which then fail with the same error as [`Csr::new`].
    pub fn with_lazy_indices(
        n_rows: usize,
        n_cols: usize,
        indptr: &'a [i64],
        indices: &'a [i64],
        name: &'a str,
    ) -> Result<Self> {
        if indptr.len() != n_rows + 1 {
            return Err(Error::len(
                format!("{name} indptr"),
                n_rows + 1,
                indptr.len(),
            ));
        }
        if indptr[0] != 0 || indptr[n_rows] as usize != indices.len() || indptr[n_rows] < 0 {
            return Err(Error::Value(format!(
                "{name} indptr: must start at 0 and end at the number of edges ({})",
                indices.len()
            )));
        }
        // One branch-free pass, which LLVM vectorises (a `position` over the windows did not:
        // 93 against 45 us for 100k rows, on the calling thread before every graph kernel);
        // the row is looked up only when there is one.
        let decreases = indptr[1..]
            .iter()
            .zip(&indptr[..n_rows])
            .fold(false, |bad, (&next, &p)| bad | (next < p));
        if decreases {
            let r = indptr.windows(2).position(|w| w[1] < w[0]).unwrap_or(0);
            return Err(Error::Value(format!("{name} indptr: decreases at row {r}")));
        }
        Ok(Csr {
            n_rows,
            n_cols,
            indptr,
            indices,
            name,
            indices_checked: false,
        })
    }

    /// Fails with the first index outside `0..n_cols` (one pass, unless already checked).
    pub fn check_indices(&self) -> Result<()> {
        if self.indices_checked {
            return Ok(());
        }
        match first_out_of_range(self.indices, self.n_cols) {
            Some((e, &i)) => Err(Error::Index {
                arg: format!("{} indices[{e}]", self.name),
                index: i,
                size: self.n_cols,
            }),
            None => Ok(()),
        }
    }

    /// Number of rows (destinations).
    #[inline(always)]
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns (sources); every index is below it.
    #[inline(always)]
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Row pointers, `n_rows + 1` non-decreasing offsets from 0 to the number of edges.
    #[inline(always)]
    pub fn indptr(&self) -> &'a [i64] {
        self.indptr
    }

    /// The source of every edge, in row order; each in `0..n_cols`.
    #[inline(always)]
    pub fn indices(&self) -> &'a [i64] {
        self.indices
    }

    /// Number of edges.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The edge range of row `r`.
    #[inline(always)]
    pub fn row(&self, r: usize) -> std::ops::Range<usize> {
        self.indptr[r] as usize..self.indptr[r + 1] as usize
    }

    /// Row blocks of about `edges_per_block` edges each (at least one row per block), fixed by
    /// the graph alone so that parallel results do not depend on the thread count.
    ///
    /// Each block ends at the last row whose edges end within `edges_per_block` of the block's
    /// first edge, found by a galloping search over `indptr` (it never decreases): ~8 us for
    /// 100k rows in blocks of 8k edges, where a scan of every row took ~30 us, serially, before
    /// every parallel aggregation.
    pub fn blocks(&self, edges_per_block: usize) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.n_rows {
            let limit = self.indptr[start] as usize + edges_per_block.max(1);
            // The row ends after row `start`, and how many of them lie within the limit.
            let ends = &self.indptr[start + 2..];
            let within = |k: usize| ends[k] as usize <= limit;
            let mut hi = 1;
            while hi <= ends.len() && within(hi - 1) {
                hi *= 2;
            }
            let lo = hi / 2; // ends[..lo] are within the limit
            let hi = hi.min(ends.len());
            let end = start + 1 + lo + ends[lo..hi].partition_point(|&p| p as usize <= limit);
            out.push(start..end);
            start = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Csr;

    /// The blocks as a scan of every row finds them.
    fn blocks_by_scan(indptr: &[i64], per: usize) -> Vec<std::ops::Range<usize>> {
        let n = indptr.len() - 1;
        let (mut out, mut start) = (Vec::new(), 0);
        while start < n {
            let mut end = start + 1;
            let limit = indptr[start] as usize + per.max(1);
            while end < n && (indptr[end + 1] as usize) <= limit {
                end += 1;
            }
            out.push(start..end);
            start = end;
        }
        out
    }

    #[test]
    fn galloping_blocks_are_the_scanned_ones() {
        let mut state = 7u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for rows in [0usize, 1, 2, 5, 100, 3000] {
            // Degrees 0-40, some rows far above any block size.
            let mut indptr = vec![0i64];
            for _ in 0..rows {
                let d = match next() % 50 {
                    0 => 5000,
                    k if k < 10 => 0,
                    k => k as i64 - 10,
                };
                indptr.push(indptr.last().unwrap() + d);
            }
            let indices = vec![0i64; *indptr.last().unwrap() as usize];
            let g = Csr::new(rows, 1, &indptr, &indices, "graph").unwrap();
            for per in [0usize, 1, 3, 64, 1000, 8192, usize::MAX / 4] {
                assert_eq!(g.blocks(per), blocks_by_scan(&indptr, per), "{rows} {per}");
            }
        }
    }
}
