//! Horn rules over knowledge graphs: an adjacency index (CSR per relation and direction),
//! exact AMIE metrics, two miners (exact enumeration and anytime path sampling), and rule
//! application with explanations.
//!
//! Files: [`rule`] (rule kinds and their integer rows), [`index`] (the graph), `walk` (path
//! walking scratch), [`metrics`] (support, head coverage, confidences), [`mine`] (the miners),
//! [`apply`] (predictions, filtered ranks, explanations).

pub mod apply;
pub mod index;
pub mod metrics;
pub mod mine;
pub mod rule;
mod walk;

pub use index::Index;
pub use metrics::{all_length2, all_length2_with, rule_metrics, Length2, RuleMetrics};
pub use rule::{parse_rows, Atom, Kind, Rule, ROW};
