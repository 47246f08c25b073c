//! Knowledge-graph embedding kernels: scores of triples, 1-vs-all scores of `(h, r, ?)` and
//! `(?, r, t)` against every entity, gradients, regularisers and filtered ranking.
//!
//! Tables are row-major: `ent (n_entities, d_e)` and `rel (n_relations, d_r)`; triples are
//! `(n, 3)` int64 rows `(head, relation, tail)`. A higher score is a more plausible triple (the
//! distance models return the negative distance). Complex models store a row of `k` complex
//! numbers as `[re_0 .. re_{k-1}, im_0 .. im_{k-1}]`.
//!
//! One scoring interface, [`Model`]: the score of a triple and its gradient, and for 1-vs-all
//! a *query row* `q` built from the fixed entity and the relation such that the score of every
//! candidate entity `e` is `form(q, e)` for one of four [`Form`]s: a dot product (one GEMM for
//! all queries and entities), the negative L1 or L2 distance, or the negative sum of complex
//! moduli. A new model is one file implementing [`Model`] plus one line in [`with_model!`].

pub mod complex;
mod distance;
pub mod distmult;
mod l1;
pub mod loss;
pub mod rank;
pub mod regular;
pub mod rng;
pub mod rotate;
pub mod score;
pub mod sparse;
pub mod train;
pub mod transe;

pub use complex::ComplEx;
pub use distmult::DistMult;
pub use rank::{filtered_ranks, ranks_of_scores, Filter};
pub use regular::{regularise, Regulariser};
pub use rotate::RotatE;
pub use score::{score_all, score_triples, score_triples_grad};
pub use train::{train_epoch, Config, Params, Sampler};
pub use transe::TransE;

use crate::error::{Error, Result};
use crate::float::Float;

/// Which entity of a triple a 1-vs-all query ranks: `Tail` scores `(h, r, e)` for every `e`,
/// `Head` scores `(e, r, t)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Head,
    Tail,
}

/// How a query row `q` and an entity row `e` give the 1-vs-all score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `<q, e>`.
    Dot,
    /// `-sum_j |q_j - e_j|`.
    NegL1,
    /// `-sqrt(sum_j (q_j - e_j)^2)`.
    NegL2,
    /// `-sum_j |q_j - e_j|` over complex components stored `[re | im]`.
    NegModulus,
}

/// A knowledge-graph embedding model: how a triple is scored.
pub trait Model: Copy + Send + Sync {
    /// The name used in Python (`"transe_l1"`, `"complex"`, ...).
    fn name(&self) -> &'static str;
    /// The relation width that goes with entity width `d_e`, or `None` if `d_e` is invalid
    /// (e.g. odd for a complex model).
    fn rel_width(&self, d_e: usize) -> Option<usize>;
    /// The score of one triple from its rows.
    fn score<T: Float>(&self, h: &[T], r: &[T], t: &[T]) -> T;
    /// Adds `up * d score / d row` to `gh`, `gr`, `gt` (subgradient 0 at kinks).
    #[allow(clippy::too_many_arguments)]
    fn grad<T: Float>(
        &self,
        h: &[T],
        r: &[T],
        t: &[T],
        up: T,
        gh: &mut [T],
        gr: &mut [T],
        gt: &mut [T],
    );
    /// The 1-vs-all form of this model.
    fn form(&self) -> Form;
    /// Writes the query row `q (d_e)` from the fixed entity `x` (the head for `Side::Tail`, the
    /// tail for `Side::Head`) and the relation `r`.
    fn query<T: Float>(&self, x: &[T], r: &[T], side: Side, q: &mut [T]);
    /// Adds the gradient of `<dq, query(x, r, side)>` to `dx` and `dr` (the backward of
    /// [`Model::query`], for 1-vs-all training).
    fn query_grad<T: Float>(
        &self,
        x: &[T],
        r: &[T],
        side: Side,
        dq: &[T],
        dx: &mut [T],
        dr: &mut [T],
    );
    /// Width of a relation row prepared for repeated scoring (default: as stored).
    fn prepared_width(&self, d_r: usize) -> usize {
        d_r
    }
    /// Writes the prepared form of relation row `r` (default: a copy; RotatE: `[cos | sin]` of
    /// the phases, so that training does not recompute them for every triple).
    fn prepare<T: Float>(&self, r: &[T], out: &mut [T]) {
        out.copy_from_slice(r)
    }
    /// [`Model::score`] from a prepared relation row.
    fn score_prepared<T: Float>(&self, h: &[T], rp: &[T], t: &[T]) -> T {
        self.score(h, rp, t)
    }
    /// [`Model::grad`] from a prepared relation row (`gr` has the stored width).
    #[allow(clippy::too_many_arguments)]
    fn grad_prepared<T: Float>(
        &self,
        h: &[T],
        rp: &[T],
        t: &[T],
        up: T,
        gh: &mut [T],
        gr: &mut [T],
        gt: &mut [T],
    ) {
        self.grad(h, rp, t, up, gh, gr, gt)
    }
    /// Whether entity and relation rows are complex (`[re | im]`), for the N3 regulariser.
    fn complex_rows(&self) -> (bool, bool) {
        (false, false)
    }
}

/// The models nesy ships, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    TransEL1,
    TransEL2,
    DistMult,
    ComplEx,
    RotatE,
}

impl Kind {
    /// Parses `transe_l1`, `transe_l2`, `distmult`, `complex`, `rotate`.
    pub fn parse(name: &str) -> Result<Kind> {
        Ok(match name {
            "transe_l1" => Kind::TransEL1,
            "transe_l2" => Kind::TransEL2,
            "distmult" => Kind::DistMult,
            "complex" => Kind::ComplEx,
            "rotate" => Kind::RotatE,
            other => {
                return Err(Error::Value(format!(
                    "model: expected 'transe_l1', 'transe_l2', 'distmult', 'complex' or \
                     'rotate', got {other:?}"
                )))
            }
        })
    }
}

/// Runs `$body` with `$m` bound to the [`Model`] of `$kind` (static dispatch: one copy of the
/// kernel per model).
#[macro_export]
macro_rules! with_model {
    ($kind:expr, $m:ident => $body:expr) => {
        match $kind {
            $crate::kge::Kind::TransEL1 => {
                let $m = $crate::kge::TransE { l1: true };
                $body
            }
            $crate::kge::Kind::TransEL2 => {
                let $m = $crate::kge::TransE { l1: false };
                $body
            }
            $crate::kge::Kind::DistMult => {
                let $m = $crate::kge::DistMult;
                $body
            }
            $crate::kge::Kind::ComplEx => {
                let $m = $crate::kge::ComplEx;
                $body
            }
            $crate::kge::Kind::RotatE => {
                let $m = $crate::kge::RotatE;
                $body
            }
        }
    };
}

/// The embedding tables, borrowed and checked against a model.
#[derive(Clone, Copy, Debug)]
pub struct Tables<'a, T> {
    pub ent: &'a [T],
    pub rel: &'a [T],
    pub n_ent: usize,
    pub n_rel: usize,
    pub d_e: usize,
    pub d_r: usize,
}

impl<'a, T> Tables<'a, T> {
    /// Checks `ent (n_ent, d_e)` and `rel (n_rel, d_r)` against the widths `model` needs.
    pub fn new<M: Model>(
        model: &M,
        ent: &'a [T],
        d_e: usize,
        rel: &'a [T],
        d_r: usize,
    ) -> Result<Self> {
        let want = model.rel_width(d_e).ok_or_else(|| {
            Error::Value(format!(
                "ent: {d_e} columns are not a valid entity width for {}",
                model.name()
            ))
        })?;
        if d_r != want {
            return Err(Error::Value(format!(
                "rel: {} needs {want} columns for entity width {d_e}, got {d_r}",
                model.name()
            )));
        }
        if d_e == 0 || !ent.len().is_multiple_of(d_e) || (d_r > 0 && !rel.len().is_multiple_of(d_r))
        {
            return Err(Error::Value(
                "ent, rel: tables must be non-empty 2-D arrays".into(),
            ));
        }
        Ok(Tables {
            ent,
            rel,
            n_ent: ent.len() / d_e,
            n_rel: rel.len().checked_div(d_r).unwrap_or(0),
            d_e,
            d_r,
        })
    }

    /// Row `i` of the entity table.
    #[inline(always)]
    pub fn e(&self, i: usize) -> &'a [T] {
        &self.ent[i * self.d_e..(i + 1) * self.d_e]
    }

    /// Row `i` of the relation table.
    #[inline(always)]
    pub fn r(&self, i: usize) -> &'a [T] {
        &self.rel[i * self.d_r..(i + 1) * self.d_r]
    }

    /// Checks that every triple's ids are in range; returns the number of triples.
    pub fn check_triples(&self, triples: &[i64], name: &str) -> Result<usize> {
        if !triples.len().is_multiple_of(3) {
            return Err(Error::Value(format!("{name}: expected shape (n, 3)")));
        }
        for (k, tr) in triples.chunks_exact(3).enumerate() {
            for (col, &id) in tr.iter().enumerate() {
                let size = if col == 1 { self.n_rel } else { self.n_ent };
                if id < 0 || id as usize >= size {
                    let what = ["head", "relation", "tail"][col];
                    return Err(Error::Index {
                        arg: format!("{name}[{k}] ({what})"),
                        index: id,
                        size,
                    });
                }
            }
        }
        Ok(triples.len() / 3)
    }
}

/// Real and imaginary halves of a complex row stored `[re | im]`.
#[inline(always)]
pub(crate) fn halves<T>(x: &[T]) -> (&[T], &[T]) {
    x.split_at(x.len() / 2)
}

/// Mutable halves of a complex row.
#[inline(always)]
pub(crate) fn halves_mut<T>(x: &mut [T]) -> (&mut [T], &mut [T]) {
    let k = x.len() / 2;
    x.split_at_mut(k)
}
