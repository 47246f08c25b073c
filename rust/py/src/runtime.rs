//! The thread pool kernels run on, and `run_kernel`, the one way bindings call into the core:
//! it releases the GIL, runs the kernel on nesy's pool and maps its error.
//!
//! The pool has `NESY_NUM_THREADS` threads (default: all CPUs) or what `set_num_threads` chose.
//! It remembers the process that built it: a child made by `fork` (multiprocessing) has no pool
//! threads, so it builds a fresh pool instead of waiting forever on the parent's.
//!
//! Placement: when the pool has one thread per CPU the process may run on (the default), thread
//! `i` is pinned to the `i`-th of those CPUs (Linux). Unpinned, the kernel's scheduler often woke
//! both threads of a call on the same CPU after the process had been idle for a while, and left
//! them there for ~40 ms: on the 2-vCPU machines we measure on, every call in that window ran at
//! one-thread speed (a GRU forward took 2.9 ms instead of 1.5 ms for its first ~15 calls after a
//! 0.3 s pause; pinned, from the second call on). With fewer threads than CPUs nothing is pinned,
//! so that several processes sharing a machine (e.g. `NESY_NUM_THREADS=2` in each of four
//! workers) do not all crowd onto the first CPUs. `NESY_PIN_THREADS=0` never pins, `=1` always
//! does (thread `i` on CPU `i mod n`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nesy_core::Result;
use pyo3::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::errors::{to_py, value_error};

struct Pool {
    pid: u32,
    threads: usize,
    /// The CPU each thread is pinned to, if pinned.
    cpus: Option<Vec<usize>>,
    /// Set by a thread the system did not let pin itself.
    pin_refused: Arc<AtomicBool>,
    pool: Arc<ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Threads at most: four per CPU, and at least 64. More only oversubscribes the machine, and a
/// pool of thousands of threads takes seconds to start (5,000: 38 s).
fn max_threads() -> usize {
    (4 * cpus()).max(64)
}

/// What was wrong with `NESY_NUM_THREADS`, if anything (reported by `build_info`, which
/// `import nesy` turns into a warning: a bad variable must not make nesy unusable).
static ENV_PROBLEM: Mutex<Option<String>> = Mutex::new(None);

/// `NESY_NUM_THREADS`, or all CPUs when it is unset, empty or 0; a value above
/// [`max_threads`] is clamped to it, one that is not a whole number means all CPUs (both noted
/// in [`ENV_PROBLEM`]).
fn default_threads() -> usize {
    let Some(raw) = std::env::var_os("NESY_NUM_THREADS") else {
        return cpus();
    };
    let text = raw.to_string_lossy();
    let (value, max) = (text.trim(), max_threads());
    let (n, problem) = match value.parse::<usize>() {
        _ if value.is_empty() => (cpus(), None),
        Ok(0) => (cpus(), None),
        Ok(n) if n <= max => (n, None),
        Ok(n) => (
            max,
            Some(format!(
                "NESY_NUM_THREADS={n} is above the maximum {max}: using {max} threads"
            )),
        ),
        Err(_) => (
            cpus(),
            Some(format!(
                "NESY_NUM_THREADS={text:?} is not a whole number: using all {} CPUs",
                cpus()
            )),
        ),
    };
    *ENV_PROBLEM.lock().unwrap_or_else(|p| p.into_inner()) = problem;
    n
}

/// The problem with `NESY_NUM_THREADS` found when the pool was built, if any.
pub fn env_problem() -> Option<String> {
    ENV_PROBLEM
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// The CPU of each of `threads` threads when they are to be pinned (see the module docs).
fn placement(threads: usize) -> Option<Vec<usize>> {
    let allowed = affinity::allowed();
    let pin = match std::env::var("NESY_PIN_THREADS")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        Some("0") => false,
        Some("1") => true,
        _ => threads > 1 && threads == allowed.len(),
    };
    (pin && !allowed.is_empty()).then(|| (0..threads).map(|i| allowed[i % allowed.len()]).collect())
}

fn build(threads: usize) -> PyResult<Pool> {
    let cpus = placement(threads);
    let pin_refused = Arc::new(AtomicBool::new(false));
    let mut builder = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("nesy-{i}"));
    if let Some(cpus) = cpus.clone() {
        // Pinning is a placement hint: a thread that cannot be pinned runs where it is (and
        // `thread_cpus` then reports no pinning).
        let refused = pin_refused.clone();
        builder = builder.start_handler(move |i| {
            if !affinity::pin(cpus[i]) {
                refused.store(true, Ordering::Relaxed);
            }
        });
    }
    let pool = builder
        .build()
        .map_err(|e| value_error(format!("cannot start {threads} threads: {e}")))?;
    Ok(Pool {
        pid: std::process::id(),
        threads,
        cpus,
        pin_refused,
        pool: Arc::new(pool),
    })
}

/// CPU affinity of the calling thread (Linux; elsewhere nothing is pinned).
#[cfg(target_os = "linux")]
mod affinity {
    /// The CPUs the calling thread may run on (normally the process's: the pool is built from a
    /// Python thread), in increasing order; empty if unknown (the call fails, e.g., on machines
    /// with more CPUs than a `cpu_set_t` holds, and then nothing is pinned).
    pub fn allowed() -> Vec<usize> {
        // SAFETY: `cpu_set_t` is plain bits (all-zero is the empty set); the call writes at most
        // `size_of::<cpu_set_t>()` bytes into it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return vec![];
            }
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }

    /// Restricts the calling thread to `cpu`; false if the system refused.
    pub fn pin(cpu: usize) -> bool {
        // SAFETY: as above; `cpu` < CPU_SETSIZE (it came from `allowed`).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub fn allowed() -> Vec<usize> {
        vec![]
    }

    pub fn pin(_cpu: usize) -> bool {
        false
    }
}

/// The pool of this process, built on first use (and again after a fork).
///
/// Threads are spawned outside the lock, and every caller holds the GIL (which `os.fork` takes),
/// so a forked child never inherits the lock held; a pool inherited through `fork` is leaked, never dropped (its threads do not exist
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

/// The CPU each kernel thread is pinned to, or `None` when they are not (or one could not be).
pub fn thread_cpus() -> PyResult<Option<Vec<usize>>> {
    pool()?;
    let guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    Ok(guard
        .as_ref()
        .filter(|p| !p.pin_refused.load(Ordering::Relaxed))
        .and_then(|p| p.cpus.clone()))
}

/// Sets the number of threads kernels use (1 to four per CPU, at least 64 allowed).
#[pyfunction]
pub fn set_num_threads(n: i64) -> PyResult<()> {
    let max = max_threads();
    let Some(n) = usize::try_from(n).ok().filter(|n| (1..=max).contains(n)) else {
        return Err(value_error(format!(
            "n: the number of threads must be from 1 to {max}, got {n}"
        )));
    };
    install(build(n)?, true).map(|_| ())
}

/// Runs `f` with the GIL released and maps its error to a Python exception.
///
/// `work` is the number of elements the kernel touches: below
/// [`MIN_PARALLEL_WORK`](nesy_core::par::MIN_PARALLEL_WORK) kernels run sequentially anyway, so
/// `f` runs on the calling thread and skips the hand-off to a pool thread (~5 us median for a
/// trivial kernel on a 2-vCPU virtual machine, tens of microseconds at times). A kernel with
/// nothing to share between threads may pass 0 (the recurrent layers' `rnn::pool_work`).
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
