//! The thread pool kernels run on, and `run_kernel`, the one way bindings call into the core:
//! it releases the GIL, runs the kernel on nesy's pool and maps its error.
//!
//! The pool has `NESY_NUM_THREADS` threads (default: all CPUs) or what `set_num_threads` chose.
//! It remembers the process that built it: a child made by `fork` (multiprocessing) has no pool
//! threads, so it builds a fresh pool instead of waiting forever on the parent's.

use std::sync::{Arc, Mutex};

use nesy_core::Result;
use pyo3::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::errors::{to_py, value_error};

struct Pool {
    pid: u32,
    threads: usize,
    pool: Arc<ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn default_threads() -> usize {
    std::env::var("NESY_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(threads: usize) -> PyResult<Pool> {
    let pool = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("nesy-{i}"))
        .build()
        .map_err(|e| value_error(format!("cannot start {threads} threads: {e}")))?;
    Ok(Pool {
        pid: std::process::id(),
        threads,
        pool: Arc::new(pool),
    })
}

/// The pool of this process, built on first use (and again after a fork).
///
/// Threads are spawned outside the lock, so a `fork` from another thread never inherits the
/// lock held; a pool inherited through `fork` is leaked, never dropped (its threads do not exist
/// in the child, and dropping it could wait on state they held).
fn pool() -> PyResult<Arc<ThreadPool>> {
    let pid = std::process::id();
    let threads = {
        let guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(p) if p.pid == pid => return Ok(p.pool.clone()),
            Some(p) => p.threads,
            None => default_threads(),
        }
    };
    install(build(threads)?, false)
}

/// Makes `fresh` the process's pool (unless another thread installed one for this process
/// meanwhile and `replace` is false) and returns the pool now in place.
fn install(fresh: Pool, replace: bool) -> PyResult<Arc<ThreadPool>> {
    let pid = std::process::id();
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if !replace {
        if let Some(p) = guard.as_ref().filter(|p| p.pid == pid) {
            return Ok(p.pool.clone()); // lost a race: keep the installed pool, drop ours
        }
    }
    let handle = fresh.pool.clone();
    if let Some(old) = guard.replace(fresh) {
        if old.pid != pid {
            std::mem::forget(old); // inherited through fork
        }
        // Otherwise `old` drops here; jobs still running hold their own Arc.
    }
    Ok(handle)
}

/// Number of threads kernels use.
#[pyfunction]
pub fn get_num_threads() -> PyResult<usize> {
    Ok(pool()?.current_num_threads())
}

/// Sets the number of threads kernels use (>= 1).
#[pyfunction]
pub fn set_num_threads(n: usize) -> PyResult<()> {
    if n == 0 {
        return Err(value_error("n: the number of threads must be >= 1"));
    }
    install(build(n)?, true).map(|_| ())
}

/// Runs `f` with the GIL released and maps its error to a Python exception.
///
/// `work` is the number of elements the kernel touches: below
/// [`MIN_PARALLEL_WORK`](nesy_core::par::MIN_PARALLEL_WORK) kernels run sequentially anyway, so
/// `f` runs on the calling thread and skips the hand-off to a pool thread (a few microseconds).
/// Otherwise it runs inside nesy's pool, whose threads its parallel loops then use.
pub fn run_kernel<R: Send>(
    py: Python<'_>,
    work: usize,
    f: impl FnOnce() -> Result<R> + Send,
) -> PyResult<R> {
    if work < nesy_core::par::MIN_PARALLEL_WORK {
        return py.detach(f).map_err(to_py);
    }
    let pool = pool()?;
    py.detach(|| pool.install(f)).map_err(to_py)
}
