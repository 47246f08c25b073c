//! Graph neural-network kernels over CSR adjacency (rows = destination nodes).
//!
//! A graph arrives as `indptr (n_dst + 1)` and `indices (E)` (source node of every edge, grouped
//! by destination), optionally with edge weights `(E)`. Backward passes are gathers over the
//! transposed CSR (rows = source nodes, with `perm` mapping its edges back to the forward edge
//! order), so every output row is written by one thread: no atomics, and results are identical
//! for any thread count.

pub mod aggregate;

pub use aggregate::{aggregate, aggregate_backward, Reduce};

use crate::error::{Error, Result};

/// A CSR adjacency borrowed from the caller: `indices[indptr[r]..indptr[r + 1]]` are the
/// neighbours of row `r`, all `< n_cols`.
#[derive(Clone, Copy, Debug)]
pub struct Csr<'a> {
    pub n_rows: usize,
    pub n_cols: usize,
    pub indptr: &'a [i64],
    pub indices: &'a [i64],
}

impl<'a> Csr<'a> {
    /// Checks the structure: `indptr` starts at 0, never decreases, ends at `E`; every index is
    /// in `0..n_cols`. `name` prefixes the messages (`"graph"`, `"graph (transposed)"`).
    pub fn new(
        n_rows: usize,
        n_cols: usize,
        indptr: &'a [i64],
        indices: &'a [i64],
        name: &str,
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
        if let Some(r) = indptr.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::Value(format!("{name} indptr: decreases at row {r}")));
        }
        if let Some((e, &i)) = indices
            .iter()
            .enumerate()
            .find(|(_, &i)| i < 0 || i as usize >= n_cols)
        {
            return Err(Error::Index {
                arg: format!("{name} indices[{e}]"),
                index: i,
                size: n_cols,
            });
        }
        Ok(Csr {
            n_rows,
            n_cols,
            indptr,
            indices,
        })
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
    pub fn blocks(&self, edges_per_block: usize) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.n_rows {
            let mut end = start + 1;
            let limit = self.indptr[start] as usize + edges_per_block.max(1);
            while end < self.n_rows && (self.indptr[end + 1] as usize) <= limit {
                end += 1;
            }
            out.push(start..end);
            start = end;
        }
        out
    }
}
