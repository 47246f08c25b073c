//! nesy-core: the numerical kernels behind nesy, in plain Rust (no Python).
//!
//! Layout (mirrored by `rust/py/src`, `python/nesy`, `tests/` and `benches/`):
//! - [`error`]: the one error type every kernel returns.
//! - [`mem`]: fallible allocation (an error, not an abort, when a buffer cannot fit).
//! - [`par`]: sequential or rayon execution over fixed chunks (same bits for any thread count).
//! - [`simd`]: run-time ISA detection and dispatch; the scalar path is always compiled.
//! - [`optim`]: optimizer update rules and fused gradient utilities.
//! - [`rnn`], [`gnn`], [`kge`]: recurrent networks, graph message passing, knowledge-graph
//!   embeddings.
//! - [`rules`], [`meta`]: rule mining and application over knowledge graphs; batched per-task
//!   MLP passes for meta-learning.
//! - [`linalg`]: dense products through the `gemm` crate. [`float`]: the f32/f64 element trait.
//!
//! Kernels hold no global state: every input arrives as an argument, so they can run inside any
//! thread pool or process.

pub mod error;
pub mod float;
pub mod gnn;
pub mod kge;
pub mod linalg;
pub mod mem;
pub mod meta;
pub mod optim;
pub mod par;
pub mod rnn;
pub mod rules;
pub mod simd;

pub use error::{Error, Result};
pub use float::Float;
pub use par::Par;

/// Helpers shared by the unit tests of several modules.
#[cfg(test)]
pub(crate) mod testing {
    /// `n` deterministic values in [-1, 1) from `seed` (a small LCG; no test dependency).
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }
}
