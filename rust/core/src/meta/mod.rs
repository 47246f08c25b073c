//! Meta-learning kernels: the many tiny forward and backward passes of a meta-batch, batched
//! over its tasks (one call computes every task's loss and parameter gradients).

pub mod mlp;

pub use mlp::{loss_grad, Act, Labels, MetaLoss};
