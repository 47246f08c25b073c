//! The adjacency index of a knowledge graph: for every relation and direction, the sorted,
//! de-duplicated neighbours of every entity (CSR), so a path step is a slice lookup.

use crate::error::{Error, Result};

/// Neighbour lists of every (relation, direction, entity).
#[derive(Clone, Debug)]
pub struct Index {
    pub n_ent: usize,
    pub n_rel: usize,
    /// `offsets[(2 * r + dir) * (n_ent + 1) + x]`: start of the list of `x` (dir 0: tails of
    /// `(x, r, ?)`, dir 1: heads of `(?, r, x)`).
    offsets: Vec<usize>,
    neighbours: Vec<u32>,
    /// Distinct facts per relation.
    facts: Vec<usize>,
    /// Per (relation, direction): the entities with a non-empty list, ascending.
    sources: Vec<Vec<u32>>,
    /// Every edge of every entity over all relations and both directions: `adj_offsets[x]..`
    /// into `adj` holds `(neighbour, atom code 2 * r + inverse)`, sorted.
    adj_offsets: Vec<usize>,
    adj: Vec<(u32, u32)>,
}

impl Index {
    /// From triples `(n, 3)` (head, relation, tail); duplicates count once.
    pub fn new(triples: &[i64], n_ent: usize, n_rel: usize) -> Result<Index> {
        if !triples.len().is_multiple_of(3) {
            return Err(Error::Value("triples: expected shape (n, 3)".into()));
        }
        if n_ent >= u32::MAX as usize {
            return Err(Error::Value(format!("n_entities: {n_ent} is too large")));
        }
        if n_rel >= 1 << 20 {
            return Err(Error::Value(format!("n_relations: {n_rel} is too large")));
        }
        let mut facts: Vec<(u32, u32, u32)> = Vec::with_capacity(triples.len() / 3);
        for (k, t) in triples.chunks_exact(3).enumerate() {
            for (col, size) in [(0, n_ent), (1, n_rel), (2, n_ent)] {
                if t[col] < 0 || t[col] as usize >= size {
                    let what = ["head", "relation", "tail"][col];
                    return Err(Error::Index {
                        arg: format!("triples[{k}] ({what})"),
                        index: t[col],
                        size,
                    });
                }
            }
            facts.push((t[1] as u32, t[0] as u32, t[2] as u32));
        }
        facts.sort_unstable();
        facts.dedup();
        // Offsets and counts per (relation, direction, entity): refused, not aborted, when the
        // declared sizes cannot fit in memory.
        let what = "n_entities x n_relations (the index's lists)";
        let lists = crate::mem::elements(&[2, n_rel, n_ent + 1], what)?;
        let mut offsets = crate::mem::try_vec(lists, 0usize, what)?;
        let mut count = crate::mem::try_vec(lists - 2 * n_rel, 0usize, what)?;
        let mut per_rel = vec![0usize; n_rel];
        for &(r, h, t) in &facts {
            let r = r as usize;
            per_rel[r] += 1;
            count[(2 * r) * n_ent + h as usize] += 1;
            count[(2 * r + 1) * n_ent + t as usize] += 1;
        }
        // Prefix sums per list block.
        let mut total = 0;
        for block in 0..2 * n_rel {
            for x in 0..n_ent {
                offsets[block * (n_ent + 1) + x] = total;
                total += count[block * n_ent + x];
            }
            offsets[block * (n_ent + 1) + n_ent] = total;
        }
        let mut fill = crate::mem::try_vec(lists - 2 * n_rel, 0usize, what)?;
        for (k, f) in fill.iter_mut().enumerate() {
            let (b, x) = (k / n_ent, k % n_ent);
            *f = offsets[b * (n_ent + 1) + x];
        }
        let mut neighbours = vec![0u32; total];
        // `facts` is sorted by (r, h, t): tails of each (r, h) arrive sorted; heads of each
        // (r, t) arrive sorted by h too, since h is the second key.
        for &(r, h, t) in &facts {
            let r = r as usize;
            let i = (2 * r) * n_ent + h as usize;
            neighbours[fill[i]] = t;
            fill[i] += 1;
            let j = (2 * r + 1) * n_ent + t as usize;
            neighbours[fill[j]] = h;
            fill[j] += 1;
        }
        let sources = (0..2 * n_rel)
            .map(|block| {
                (0..n_ent as u32)
                    .filter(|&x| count[block * n_ent + x as usize] > 0)
                    .collect()
            })
            .collect();
        let mut degree = vec![0usize; n_ent + 1];
        for &(_, h, t) in &facts {
            degree[h as usize] += 1;
            degree[t as usize] += 1;
        }
        let mut adj_offsets = vec![0usize; n_ent + 1];
        for x in 0..n_ent {
            adj_offsets[x + 1] = adj_offsets[x] + degree[x];
        }
        let mut adj = vec![(0u32, 0u32); adj_offsets[n_ent]];
        let mut fill = adj_offsets.clone();
        for &(r, h, t) in &facts {
            adj[fill[h as usize]] = (t, 2 * r);
            fill[h as usize] += 1;
            adj[fill[t as usize]] = (h, 2 * r + 1);
            fill[t as usize] += 1;
        }
        for x in 0..n_ent {
            adj[adj_offsets[x]..adj_offsets[x + 1]].sort_unstable();
        }
        Ok(Index {
            n_ent,
            n_rel,
            offsets,
            neighbours,
            facts: per_rel,
            sources,
            adj_offsets,
            adj,
        })
    }

    /// Sorted neighbours of `x` along relation `r`: tails of `(x, r, ?)`, or with `inverse`
    /// heads of `(?, r, x)`.
    #[inline]
    pub fn step(&self, r: usize, inverse: bool, x: usize) -> &[u32] {
        let block = 2 * r + inverse as usize;
        let base = block * (self.n_ent + 1) + x;
        &self.neighbours[self.offsets[base]..self.offsets[base + 1]]
    }

    /// The entities with at least one neighbour along `r` (`inverse`: as a tail), ascending.
    pub fn sources(&self, r: usize, inverse: bool) -> &[u32] {
        &self.sources[2 * r + inverse as usize]
    }

    /// Distinct facts of relation `r`.
    pub fn facts(&self, r: usize) -> usize {
        self.facts[r]
    }

    /// Every edge of `x`: `(neighbour, atom code)` over all relations and directions, sorted.
    #[inline]
    pub fn edges(&self, x: usize) -> &[(u32, u32)] {
        &self.adj[self.adj_offsets[x]..self.adj_offsets[x + 1]]
    }

    /// The edges of `x` that lead to `y` (their atom codes ascending).
    #[inline]
    pub fn edges_to(&self, x: usize, y: u32) -> &[(u32, u32)] {
        let e = self.edges(x);
        let lo = e.partition_point(|&(z, _)| z < y);
        let hi = lo + e[lo..].partition_point(|&(z, _)| z == y);
        &e[lo..hi]
    }

    /// The `k`-th fact `(x, y)` of relation `r` in (head, tail) order, `k < facts(r)`.
    pub fn fact(&self, r: usize, k: usize) -> (u32, u32) {
        let base = 2 * r * (self.n_ent + 1);
        let offsets = &self.offsets[base..base + self.n_ent + 1];
        let start = offsets[0];
        // The head is the last entity whose list starts at or before position `k`.
        let x = offsets.partition_point(|&o| o <= start + k) - 1;
        (x as u32, self.neighbours[start + k])
    }

    /// Bytes held by the index.
    pub fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.offsets.len() * size_of::<usize>()
            + self.neighbours.len() * size_of::<u32>()
            + self
                .sources
                .iter()
                .map(|s| s.len() * size_of::<u32>())
                .sum::<usize>()
            + self.adj_offsets.len() * size_of::<usize>()
            + self.adj.len() * size_of::<(u32, u32)>()
    }

    /// Whether `(x, r, y)` is a fact.
    #[inline]
    pub fn has(&self, x: usize, r: usize, y: u32) -> bool {
        self.step(r, false, x).binary_search(&y).is_ok()
    }
}
