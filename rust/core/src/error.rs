//! The error every kernel returns. Bindings map `Shape`/`Value` to `ValueError` and `Index` to
//! `IndexError`; the message always names the offending argument.

/// Why a kernel refused its input. Kernels validate before they write, so an error means that no
/// output was touched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An array has the wrong shape (or length).
    #[error("{arg}: expected shape {expected:?}, got {got:?}")]
    Shape {
        arg: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// An index is outside `0..size`.
    #[error("{arg}: index {index} is out of range for size {size}")]
    Index {
        arg: String,
        index: i64,
        size: usize,
    },
    /// A value is not acceptable (negative learning rate, NaN where forbidden, ...).
    #[error("{0}")]
    Value(String),
}

/// Result of every fallible kernel.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A length mismatch of a one-dimensional argument.
    pub fn len(arg: impl Into<String>, expected: usize, got: usize) -> Self {
        Error::Shape {
            arg: arg.into(),
            expected: vec![expected],
            got: vec![got],
        }
    }
}
