//! Rule mining over knowledge graphs: an adjacency index (CSR per relation and direction) and
//! the exact metrics of Horn rules as AMIE 3 defines them.
//!
//! A closed-path rule `h(X, Y) <- b_1(X, Z_1), ..., b_k(Z_{k-1}, Y)` is a head relation and a
//! path of body atoms, each usable in either direction (`inverse`: `b_i(Z_i, Z_{i-1})`).
//! This first slice computes metrics of given rules of length 1 and 2 (the miners come next).

pub mod index;
pub mod metrics;

pub use index::Index;
pub use metrics::{closed_path_metrics, Atom, PathRule, RuleMetrics};
