//! Path walking over the adjacency index with per-thread scratch: the set of entities reached
//! along a body path, de-duplicated layer by layer with a stamp array (no sorting, no hashing).

use super::rule::Atom;
use super::Index;

/// Scratch for walking paths; one per thread (memory `O(n_entities)`).
pub struct Walker {
    stamp: Vec<u32>,
    current: u32,
    front: Vec<u32>,
    next: Vec<u32>,
}

impl Walker {
    pub fn new(n_ent: usize) -> Walker {
        Walker {
            stamp: vec![0; n_ent],
            current: 0,
            front: Vec::new(),
            next: Vec::new(),
        }
    }

    fn fresh_stamp(&mut self) -> u32 {
        if self.current == u32::MAX {
            self.stamp.fill(0);
            self.current = 0;
        }
        self.current += 1;
        self.current
    }

    /// Marks `set` (distinct entities) as the current set and returns it.
    pub fn mark(&mut self, set: &[u32]) -> &[u32] {
        let s = self.fresh_stamp();
        self.front.clear();
        self.front.extend_from_slice(set);
        for &x in set {
            self.stamp[x as usize] = s;
        }
        &self.front
    }

    /// The distinct entities reached from `starts` along `atoms` (in discovery order); they
    /// stay marked for [`Walker::contains`] until the next walk. `atoms` must not be empty.
    pub fn reach(&mut self, index: &Index, starts: &[u32], atoms: &[Atom]) -> &[u32] {
        debug_assert!(!atoms.is_empty());
        self.front.clear();
        self.front.extend_from_slice(starts);
        for &atom in atoms {
            let s = self.fresh_stamp();
            let Walker {
                stamp, front, next, ..
            } = self;
            next.clear();
            for &x in front.iter() {
                for &y in index.step(atom.rel as usize, atom.inverse, x as usize) {
                    let seen = &mut stamp[y as usize];
                    if *seen != s {
                        *seen = s;
                        next.push(y);
                    }
                }
            }
            std::mem::swap(front, next);
        }
        &self.front
    }

    /// The current set (after [`Walker::reach`] or [`Walker::mark`]).
    pub fn set(&self) -> &[u32] {
        &self.front
    }

    /// Whether `y` is in the current set.
    #[inline]
    pub fn contains(&self, y: u32) -> bool {
        self.stamp[y as usize] == self.current
    }
}

/// Up to `limit` groundings of `atoms` from `start` (ending at `target` when given): each the
/// sequence of entities visited, `start` first. Depth-first, neighbours in ascending order.
pub fn groundings(
    index: &Index,
    start: u32,
    atoms: &[Atom],
    target: Option<u32>,
    limit: usize,
) -> Vec<Vec<u32>> {
    fn go(
        index: &Index,
        path: &mut Vec<u32>,
        atoms: &[Atom],
        target: Option<u32>,
        limit: usize,
        out: &mut Vec<Vec<u32>>,
    ) {
        let Some((&atom, rest)) = atoms.split_first() else {
            if target.is_none_or(|t| path.last() == Some(&t)) {
                out.push(path.clone());
            }
            return;
        };
        let here = *path.last().unwrap_or(&0) as usize;
        for &y in index.step(atom.rel as usize, atom.inverse, here) {
            if out.len() >= limit {
                return;
            }
            if rest.is_empty() && target.is_some_and(|t| t != y) {
                continue;
            }
            path.push(y);
            go(index, path, rest, target, limit, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    if limit > 0 {
        go(index, &mut vec![start], atoms, target, limit, &mut out);
    }
    out
}
