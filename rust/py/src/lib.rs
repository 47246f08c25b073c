//! `nesy._core`: the Python extension module. This file is the one export list; each domain's
//! bindings live in their own file (`optim.rs`, ...) and only extract, validate and call the core.

mod arrays;
mod errors;
mod gnn;
mod grad;
mod kge;
mod meta;
mod optim;
mod rnn;
mod rules;
mod runtime;

use pyo3::prelude::*;

/// Build and machine facts for `nesy info`: version, SIMD levels, thread count and placement.
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    d.set_item("version", env!("CARGO_PKG_VERSION"))?;
    d.set_item("simd", nesy_core::simd::detect().name())?;
    d.set_item("simd_levels", simd_levels())?;
    d.set_item("threads", runtime::get_num_threads()?)?;
    d.set_item("thread_cpus", runtime::thread_cpus()?)?;
    d.set_item("thread_env_problem", runtime::env_problem())?;
    d.set_item("arch", std::env::consts::ARCH)?;
    Ok(d)
}

/// Names of the SIMD levels this CPU supports, lowest first.
#[pyfunction]
fn simd_levels() -> Vec<&'static str> {
    nesy_core::simd::supported_levels()
        .into_iter()
        .map(|l| l.name())
        .collect()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    m.add_function(wrap_pyfunction!(simd_levels, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(optim::optim_columns, m)?)?;
    m.add_function(wrap_pyfunction!(optim::optim_state, m)?)?;
    m.add_function(wrap_pyfunction!(optim::optim_step, m)?)?;
    m.add_function(wrap_pyfunction!(grad::clip_grad_norm, m)?)?;
    m.add_function(wrap_pyfunction!(grad::clip_grad_value, m)?)?;
    m.add_function(wrap_pyfunction!(grad::grad_norm, m)?)?;
    m.add_function(wrap_pyfunction!(grad::all_finite, m)?)?;
    m.add_function(wrap_pyfunction!(grad::penalty, m)?)?;
    m.add_function(wrap_pyfunction!(grad::scale, m)?)?;
    m.add_function(wrap_pyfunction!(gnn::gnn_build_csr, m)?)?;
    m.add_function(wrap_pyfunction!(gnn::gnn_aggregate, m)?)?;
    m.add_function(wrap_pyfunction!(gnn::gnn_aggregate_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gnn::gnn_gather_sum, m)?)?;
    m.add_function(wrap_pyfunction!(gnn::gnn_sddmm, m)?)?;
    m.add_function(wrap_pyfunction!(gnn::gnn_sddmm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gnn::gnn_edge_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(gnn::gnn_edge_softmax_backward, m)?)?;
    m.add_function(wrap_pyfunction!(kge::kge_score, m)?)?;
    m.add_function(wrap_pyfunction!(kge::kge_score_grad, m)?)?;
    m.add_function(wrap_pyfunction!(kge::kge_score_all, m)?)?;
    m.add_function(wrap_pyfunction!(kge::kge_ranks, m)?)?;
    m.add_function(wrap_pyfunction!(kge::kge_ranks_of_scores, m)?)?;
    m.add_function(wrap_pyfunction!(kge::kge_regularise, m)?)?;
    m.add_function(wrap_pyfunction!(kge::kge_train_epoch, m)?)?;
    m.add_function(wrap_pyfunction!(kge::kge_bernoulli_probs, m)?)?;
    m.add_function(wrap_pyfunction!(meta::meta_mlp_loss_grad, m)?)?;
    m.add_class::<rules::RuleGraph>()?;
    m.add_function(wrap_pyfunction!(rules::rules_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(rules::rules_length2, m)?)?;
    m.add_function(wrap_pyfunction!(rules::rules_mine_exact, m)?)?;
    m.add_function(wrap_pyfunction!(rules::rules_sample, m)?)?;
    m.add_function(wrap_pyfunction!(rules::rules_predict, m)?)?;
    m.add_function(wrap_pyfunction!(rules::rules_ranks, m)?)?;
    m.add_function(wrap_pyfunction!(rules::rules_explain, m)?)?;
    m.add_function(wrap_pyfunction!(rnn::rnn_forward, m)?)?;
    m.add_function(wrap_pyfunction!(rnn::rnn_backward, m)?)?;
    m.add_function(wrap_pyfunction!(rnn::rnn_stream_floor, m)?)?;
    Ok(())
}
