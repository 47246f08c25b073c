//! Building a graph's CSR arrays from an edge list: the destination-major CSR the forward
//! kernels read, and its transpose (source-major) the backward passes gather over.
//!
//! Both orders are stable counting sorts, `O(E + n)`: edges with the same destination keep
//! their order in the edge list, and the transpose lists each source's out-edges in CSR order.
//! Stable sorts have one answer, so the arrays depend on the edge list only. They are the
//! arrays the Python `Graph` documents (`python/nesy/gnn/graph.py`):
//!
//! ```text
//! indptr (n + 1)   in-edges of node d are CSR edges indptr[d] .. indptr[d + 1]
//! order (E)        CSR edge k is edge order[k] of the edge list
//! indices (E)      source of CSR edge k
//! t_indptr (n + 1) out-edges of node s are transposed edges t_indptr[s] .. t_indptr[s + 1]
//! perm (E)         transposed edge j is CSR edge perm[j]
//! t_indices (E)    destination of transposed edge j
//! ```

use super::first_out_of_range;
use crate::error::{Error, Result};

/// The arrays [`build_csr`] writes (sizes in the module's table).
pub struct CsrArrays<'a> {
    pub indptr: &'a mut [i64],
    pub order: &'a mut [i64],
    pub indices: &'a mut [i64],
    pub t_indptr: &'a mut [i64],
    pub perm: &'a mut [i64],
    pub t_indices: &'a mut [i64],
}

/// Sorts the edges `src[e] -> dst[e]` of a graph of `n` nodes into CSR by destination and its
/// transpose. Every index must be in `0..n` (an `Index` error names `edge_index` otherwise); the
/// outputs are written only once the input is valid.
pub fn build_csr(src: &[i64], dst: &[i64], n: usize, out: CsrArrays<'_>) -> Result<()> {
    let e = src.len();
    let Some(n1) = n.checked_add(1).filter(|_| n <= i64::MAX as usize) else {
        return Err(Error::Value(format!(
            "num_nodes: {n} nodes cannot be indexed by int64 ids"
        )));
    };
    if dst.len() != e {
        return Err(Error::Value(format!(
            "edge_index: {e} sources but {} destinations",
            dst.len()
        )));
    }
    for (arg, len) in [
        ("indptr", out.indptr.len()),
        ("t_indptr", out.t_indptr.len()),
    ] {
        if len != n1 {
            return Err(Error::len(arg, n1, len));
        }
    }
    for (arg, len) in [
        ("order", out.order.len()),
        ("indices", out.indices.len()),
        ("perm", out.perm.len()),
        ("t_indices", out.t_indices.len()),
    ] {
        if len != e {
            return Err(Error::len(arg, e, len));
        }
    }
    for ids in [src, dst] {
        if let Some((_, &index)) = first_out_of_range(ids, n) {
            return Err(Error::Index {
                arg: "edge_index".into(),
                index,
                size: n,
            });
        }
    }
    // Indices are in 0..n from here on.
    counts_to_indptr(dst, out.indptr);
    let mut next: Vec<i64> = out.indptr[..n].to_vec();
    for (k, (&s, &d)) in src.iter().zip(dst).enumerate() {
        let slot = &mut next[d as usize];
        let at = *slot as usize;
        *slot += 1;
        out.order[at] = k as i64;
        out.indices[at] = s;
    }
    counts_to_indptr(out.indices, out.t_indptr);
    next.copy_from_slice(&out.t_indptr[..n]);
    for d in 0..n {
        let row = out.indptr[d] as usize..out.indptr[d + 1] as usize;
        for (k, &s) in row.clone().zip(&out.indices[row]) {
            let slot = &mut next[s as usize];
            let at = *slot as usize;
            *slot += 1;
            out.perm[at] = k as i64;
            out.t_indices[at] = d as i64;
        }
    }
    Ok(())
}

/// `indptr[0] = 0`, `indptr[v + 1] = indptr[v] + (number of ids equal to v)`; ids in range.
fn counts_to_indptr(ids: &[i64], indptr: &mut [i64]) {
    indptr.fill(0);
    for &v in ids {
        indptr[v as usize + 1] += 1;
    }
    for v in 1..indptr.len() {
        indptr[v] += indptr[v - 1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arrays by stable sorts of the edge positions (the definition in the module's table).
    fn naive(src: &[i64], dst: &[i64], n: usize) -> [Vec<i64>; 6] {
        let e = src.len();
        let mut order: Vec<usize> = (0..e).collect();
        order.sort_by_key(|&k| dst[k]); // stable
        let indices: Vec<i64> = order.iter().map(|&k| src[k]).collect();
        let csr_dst: Vec<i64> = order.iter().map(|&k| dst[k]).collect();
        let mut perm: Vec<usize> = (0..e).collect();
        perm.sort_by_key(|&k| indices[k]);
        let t_indices = perm.iter().map(|&k| csr_dst[k]).collect();
        let indptr = |ids: &[i64]| {
            (0..=n)
                .map(|v| ids.iter().filter(|&&i| (i as usize) < v).count() as i64)
                .collect()
        };
        let as_i64 = |v: Vec<usize>| v.into_iter().map(|k| k as i64).collect();
        [
            indptr(dst),
            as_i64(order),
            indices.clone(),
            indptr(&indices),
            as_i64(perm),
            t_indices,
        ]
    }

    /// Runs [`build_csr`] into `a` (sizes from `src` and `n`; -7 everywhere first).
    fn run_into(src: &[i64], dst: &[i64], n: usize, a: &mut [Vec<i64>; 6]) -> Result<()> {
        let e = src.len();
        *a = [n + 1, e, e, n + 1, e, e].map(|len| vec![-7; len]);
        let [indptr, order, indices, t_indptr, perm, t_indices] = a;
        let out = CsrArrays {
            indptr,
            order,
            indices,
            t_indptr,
            perm,
            t_indices,
        };
        build_csr(src, dst, n, out)
    }

    fn run(src: &[i64], dst: &[i64], n: usize) -> Result<[Vec<i64>; 6]> {
        let mut a = Default::default();
        run_into(src, dst, n, &mut a)?;
        Ok(a)
    }

    #[test]
    fn matches_stable_sorts_with_duplicates_self_loops_and_isolated_nodes() {
        let mut state = 12345u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % m) as i64
        };
        for (n, e) in [(1, 0), (1, 3), (5, 0), (7, 40), (50, 300), (3, 1)] {
            let src: Vec<i64> = (0..e).map(|_| next(n as u64)).collect();
            let dst: Vec<i64> = (0..e).map(|_| next(n as u64)).collect();
            assert_eq!(run(&src, &dst, n).unwrap(), naive(&src, &dst, n), "{n} {e}");
        }
        // No nodes, no edges.
        assert_eq!(run(&[], &[], 0).unwrap(), naive(&[], &[], 0));
    }

    #[test]
    fn out_of_range_and_negative_ids_are_refused_before_any_write() {
        for (src, dst) in [(vec![0, 3], vec![1, 0]), (vec![0, 1], vec![-1, 0])] {
            let mut a = Default::default();
            let err = run_into(&src, &dst, 3, &mut a).unwrap_err();
            assert!(matches!(err, Error::Index { ref arg, .. } if arg == "edge_index"));
            assert!(a.iter().flatten().all(|&v| v == -7));
        }
        let err = run(&[0, 1], &[0], 2).unwrap_err();
        assert!(err.to_string().contains("edge_index"), "{err}");
        // A node count whose offsets int64 cannot hold: an error, not an overflow.
        let empty = CsrArrays {
            indptr: &mut [],
            order: &mut [],
            indices: &mut [],
            t_indptr: &mut [],
            perm: &mut [],
            t_indices: &mut [],
        };
        let err = build_csr(&[], &[], usize::MAX, empty).unwrap_err();
        assert!(err.to_string().starts_with("num_nodes:"), "{err}");
    }
}
