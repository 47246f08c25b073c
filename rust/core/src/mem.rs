//! Fallible allocation: a buffer too large for memory becomes an error naming what it was for,
//! not an abort of the whole Python process.

use crate::error::{Error, Result};

/// The number of elements of a buffer of shape `dims`, or an error naming `what` when the
/// product overflows `usize`.
pub fn elements(dims: &[usize], what: &str) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            Error::Value(format!(
                "{what}: {dims:?} elements overflow the address space"
            ))
        })
}

/// `n` copies of `value`, or an error naming `what` when memory runs out.
pub fn try_vec<T: Clone>(n: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::Value(format!(
            "{what}: cannot allocate {n} elements of {} bytes (out of memory)",
            std::mem::size_of::<T>()
        ))
    })?;
    v.resize(n, value);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_sizes_are_errors_not_aborts() {
        assert_eq!(elements(&[3, 4, 5], "x").unwrap(), 60);
        assert!(elements(&[usize::MAX, 2], "x")
            .unwrap_err()
            .to_string()
            .starts_with("x: "));
        let err = try_vec(usize::MAX / 8, 0u64, "buffer").unwrap_err();
        assert!(err.to_string().contains("buffer: cannot allocate"), "{err}");
        assert_eq!(try_vec(3, 1.5f32, "b").unwrap(), vec![1.5; 3]);
    }
}
