//! Maps core errors to Python exceptions: shape and value errors to `ValueError`, index errors to
//! `IndexError`. Binding-side checks use the helpers below so that every message names its argument.

use nesy_core::Error;
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::PyErr;

/// Converts a core error into the matching Python exception.
pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::Index { .. } => PyIndexError::new_err(e.to_string()),
        Error::Shape { .. } | Error::Value(_) => PyValueError::new_err(e.to_string()),
    }
}

pub fn type_error(msg: impl Into<String>) -> PyErr {
    PyTypeError::new_err(msg.into())
}

pub fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// A shape as Python prints it: `(4,)`, `(2, 3)`, `()`.
pub fn py_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
