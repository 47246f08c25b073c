//! Borrowing NumPy arrays as Rust slices for the duration of one kernel call.
//!
//! rust-numpy's safe borrows (`try_readwrite`) register every array in a global table, which
//! costs an allocation and a hash-map insert per array: a third of a millisecond for an optimizer
//! step over 1,000 tensors. Bindings here instead collect every array a call touches into an
//! [`Access`], which checks in one sort that no array written by the kernel overlaps any other
//! array of the call (and that written arrays are writeable and C-contiguous); only then does it
//! hand out slices.
//!
//! Safety: slices are created only after `Access::check` proved that every mutable slice is
//! disjoint from every other slice of the call, so the kernel's `&mut` are unique within Rust.
//! As with NumPy's own in-place operations, which also release the GIL, another Python thread
//! writing the same arrays during the call is a race the caller must avoid.

use numpy::npyffi::flags::NPY_ARRAY_WRITEABLE;
use numpy::npyffi::{_PyArray_GET_ITEM_DATA, get_type_object, NpyTypes, NPY_TYPES};
use numpy::{
    Element, PyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::{py_shape, type_error, value_error};

/// One array's memory, and who it is in the call (for messages).
struct Region {
    start: usize,
    end: usize,
    write: bool,
    arg: &'static str,
    /// Position in a list argument; `None` for an argument that is one array.
    index: Option<usize>,
}

/// `arg` or `arg[index]`.
fn label(arg: &str, index: Option<usize>) -> String {
    match index {
        Some(i) => format!("{arg}[{i}]"),
        None => arg.to_string(),
    }
}

/// The arrays of one call; see the module documentation.
#[derive(Default)]
pub struct Access {
    regions: Vec<Region>,
}

impl Access {
    pub fn with_capacity(n: usize) -> Self {
        Access {
            regions: Vec::with_capacity(n),
        }
    }

    /// Records `arr`, the argument `arg` (one array), read-only or written. Checks contiguity
    /// (and, for written arrays, the writeable flag) now.
    pub fn add_one<T: Element, D: numpy::ndarray::Dimension>(
        &mut self,
        arr: &Bound<'_, PyArray<T, D>>,
        write: bool,
        arg: &'static str,
    ) -> PyResult<()> {
        self.record(arr, write, arg, None)
    }

    /// Records `arr` as element `index` of the list argument `arg`, as [`Access::add_one`].
    pub fn add<T: Element, D: numpy::ndarray::Dimension>(
        &mut self,
        arr: &Bound<'_, PyArray<T, D>>,
        write: bool,
        arg: &'static str,
        index: usize,
    ) -> PyResult<()> {
        self.record(arr, write, arg, Some(index))
    }

    fn record<T: Element, D: numpy::ndarray::Dimension>(
        &mut self,
        arr: &Bound<'_, PyArray<T, D>>,
        write: bool,
        arg: &'static str,
        index: Option<usize>,
    ) -> PyResult<()> {
        let name = || label(arg, index);
        if !arr.is_c_contiguous() {
            return Err(value_error(format!("{}: must be C-contiguous", name())));
        }
        if !arr.is_aligned() {
            return Err(value_error(format!("{}: must be aligned", name())));
        }
        if write {
            // SAFETY: reads the flags of a live array object, as rust-numpy's own borrow does.
            let flags = unsafe { (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).flags };
            if flags & NPY_ARRAY_WRITEABLE == 0 {
                return Err(value_error(format!(
                    "{}: is read-only, but it is updated in place",
                    name()
                )));
            }
        }
        let bytes = arr.len() * std::mem::size_of::<T>();
        if bytes > 0 {
            let start = arr.data() as usize;
            self.regions.push(Region {
                start,
                end: start + bytes,
                write,
                arg,
                index,
            });
        }
        Ok(())
    }

    /// Fails, naming both arrays, if a written array overlaps any other array of the call.
    pub fn check(&mut self) -> PyResult<()> {
        let order = self.order();
        // The regions seen so far reaching furthest, among all and among written ones.
        let mut far_any: Option<usize> = None;
        let mut far_write: Option<usize> = None;
        for i in order {
            let r = &self.regions[i];
            let clash = match (far_write, far_any) {
                (Some(w), _) if r.start < self.regions[w].end => Some(w),
                (_, Some(a)) if r.write && r.start < self.regions[a].end => Some(a),
                _ => None,
            };
            if let Some(j) = clash {
                let o = &self.regions[j];
                return Err(value_error(format!(
                    "{} and {} share memory, but one of them is updated in place; pass each \
                     array once and do not pass a parameter as its own gradient",
                    label(o.arg, o.index),
                    label(r.arg, r.index)
                )));
            }
            if far_any.is_none_or(|a| r.end > self.regions[a].end) {
                far_any = Some(i);
            }
            if r.write && far_write.is_none_or(|w| r.end > self.regions[w].end) {
                far_write = Some(i);
            }
        }
        Ok(())
    }

    /// Region indices by start address. Sorts plain integers, start and index packed into one
    /// `u64`, when both fit (always, for user-space addresses and fewer than 2^16 arrays): an
    /// optimizer step over 1,000 tensors spent a fifth of its per-tensor cost sorting the
    /// 40-byte regions themselves.
    fn order(&self) -> Vec<usize> {
        const IDX_BITS: u32 = 16;
        let n = self.regions.len();
        let fits = n <= 1 << IDX_BITS
            && self
                .regions
                .iter()
                .all(|r| (r.start as u64) < 1u64 << (u64::BITS - IDX_BITS));
        if fits {
            let mut keys: Vec<u64> = (self.regions.iter().enumerate())
                .map(|(i, r)| ((r.start as u64) << IDX_BITS) | i as u64)
                .collect();
            keys.sort_unstable();
            keys.iter()
                .map(|k| (k & ((1 << IDX_BITS) - 1)) as usize)
                .collect()
        } else {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.sort_unstable_by_key(|&i| self.regions[i].start);
            idx
        }
    }
}

/// A float element type, with NumPy's number for its dtype.
pub trait NpyFloat: Element {
    const NUM: NPY_TYPES;
}

impl NpyFloat for f32 {
    const NUM: NPY_TYPES = NPY_TYPES::NPY_FLOAT;
}

impl NpyFloat for f64 {
    const NUM: NPY_TYPES = NPY_TYPES::NPY_DOUBLE;
}

/// Casts many objects to float arrays. `cast::<PyArrayDyn<T>>()` looks NumPy's array type up
/// and builds a descriptor of `T` for every object it checks: a tenth of the per-tensor cost of
/// an optimizer step over 1,000 small tensors. This looks the type up once and compares the
/// dtype's number and byte order.
pub struct Caster {
    array_type: *mut pyo3::ffi::PyTypeObject,
}

impl Caster {
    pub fn new(py: Python<'_>) -> Self {
        // SAFETY: rust-numpy loads NumPy's C API on first use; the array type object is static.
        let array_type = unsafe { get_type_object(py, NpyTypes::PyArray_Type) };
        Caster { array_type }
    }

    /// `ob` as an array of `T` when it is a NumPy array (or a subclass) of `T`'s dtype in native
    /// byte order: exactly what `cast::<PyArrayDyn<T>>()` accepts.
    pub fn cast<'a, 'py, T: NpyFloat>(
        &self,
        ob: &'a Bound<'py, PyAny>,
    ) -> Option<&'a Bound<'py, PyArrayDyn<T>>> {
        // SAFETY: a type check on a live object.
        if unsafe { pyo3::ffi::PyObject_TypeCheck(ob.as_ptr(), self.array_type) } == 0 {
            return None;
        }
        // SAFETY: `ob` is an ndarray (checked above).
        let dtype = unsafe { ob.cast_unchecked::<PyUntypedArray>() }.dtype();
        if dtype.num() != T::NUM as std::ffi::c_int || dtype.is_native_byteorder() == Some(false) {
            return None;
        }
        // SAFETY: an ndarray whose elements are `T` (checked above); any dimensionality.
        Some(unsafe { ob.cast_unchecked::<PyArrayDyn<T>>() })
    }
}

/// The array as a slice.
///
/// # Safety
/// [`Access::check`] must have covered `arr`, and the slice must not outlive the call.
pub unsafe fn slice<'a, T: Element, D: numpy::ndarray::Dimension>(
    arr: &'a Bound<'_, PyArray<T, D>>,
) -> &'a [T] {
    // SAFETY: contiguous (checked in `add`); no written array of the call overlaps it (`check`).
    unsafe { arr.as_slice() }.unwrap_or(&[])
}

/// The array as a mutable slice.
///
/// # Safety
/// [`Access::check`] must have covered `arr` as written; take it at most once per call, and do
/// not let the slice outlive the call.
#[allow(clippy::mut_from_ref)]
pub unsafe fn slice_mut<'a, T: Element, D: numpy::ndarray::Dimension>(
    arr: &'a Bound<'_, PyArray<T, D>>,
) -> &'a mut [T] {
    // SAFETY: contiguous and writeable (checked in `add`); it overlaps no other array of the
    // call (`check`), and each written array is taken once.
    unsafe { arr.as_slice_mut() }.unwrap_or(&mut [])
}

/// A zeroed array made by `numpy.zeros`, so that running out of memory raises `MemoryError`
/// (rust-numpy's own constructor panics instead).
pub fn zeros<'py, T: numpy::Element, D: numpy::ndarray::Dimension>(
    py: Python<'py>,
    shape: &[usize],
    dtype: &str,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    numpy_new(py, "zeros", shape, dtype)
}

/// A new C-order array with unspecified contents (`numpy.empty`), for outputs a kernel writes
/// in full before Python sees them: a large zeroed array costs a page fault per 4 KiB on first
/// write, which for a fast kernel is a large share of its time.
pub fn empty<'py, T: numpy::Element, D: numpy::ndarray::Dimension>(
    py: Python<'py>,
    shape: &[usize],
    dtype: &str,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    numpy_new(py, "empty", shape, dtype)
}

/// As [`empty`], with the data starting on a 64-byte cache line (a view into a slightly larger
/// array): a kernel writing whole rows of a multiple of 64 bytes then writes whole lines, which
/// it can stream to memory without reading them first.
pub fn empty_aligned<'py, T: numpy::Element, D: numpy::ndarray::Dimension>(
    py: Python<'py>,
    shape: &[usize],
    dtype: &str,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    const LINE: usize = 64;
    let size = std::mem::size_of::<T>().max(1);
    let total = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| value_error("internal: array size overflows"))?;
    let base: Bound<'py, PyArray<T, numpy::Ix1>> = empty(py, &[total + LINE / size], dtype)?;
    let addr = base.data() as usize;
    let off = (LINE - addr % LINE) % LINE / size;
    let view = base
        .get_item(pyo3::types::PySlice::new(
            py,
            off as isize,
            (off + total) as isize,
            1,
        ))?
        .call_method1("reshape", (shape.to_vec(),))?;
    view.cast_into::<PyArray<T, D>>().map_err(|_| {
        value_error("internal: an aligned view of numpy.empty was not the expected array")
    })
}

/// `numpy.<constructor>(shape, dtype)` as a typed array.
fn numpy_new<'py, T: numpy::Element, D: numpy::ndarray::Dimension>(
    py: Python<'py>,
    constructor: &str,
    shape: &[usize],
    dtype: &str,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    let a = py
        .import("numpy")?
        .call_method1(constructor, (shape.to_vec(), dtype))?;
    a.cast_into::<PyArray<T, D>>().map_err(|_| {
        value_error(format!(
            "internal: numpy.{constructor} returned an unexpected array"
        ))
    })
}

/// `x` as an array of the kernel dtype `T` (named `dtype` in messages) with `ndim` dimensions;
/// errors name the argument.
pub fn typed_array<'py, T: numpy::Element>(
    x: &Bound<'py, PyAny>,
    name: &'static str,
    ndim: usize,
    dtype: &str,
) -> PyResult<Bound<'py, numpy::PyArrayDyn<T>>> {
    let a = x.cast::<numpy::PyArrayDyn<T>>().map_err(|_| {
        let got = x
            .getattr("dtype")
            .map_or_else(|_| x.get_type().to_string(), |d| format!("dtype {d}"));
        type_error(format!(
            "{name}: expected a numpy array of dtype {dtype} (the dtype of x), got {got}"
        ))
    })?;
    if a.ndim() != ndim {
        return Err(value_error(format!(
            "{name}: expected {ndim} dimensions, got shape {}",
            py_shape(a.shape())
        )));
    }
    Ok(a.clone())
}

/// Picks the kernel from the dtype of the array `$x` (named `$name` in the error):
/// `$f::<f64>(args.., "float64")` or `$f::<f32>(args.., "float32")`.
macro_rules! by_dtype {
    ($x:expr, $name:literal, $f:ident($($arg:expr),*)) => {
        if $x.cast::<numpy::PyArrayDyn<f64>>().is_ok() {
            $f::<f64>($($arg),*, "float64")
        } else if $x.cast::<numpy::PyArrayDyn<f32>>().is_ok() {
            $f::<f32>($($arg),*, "float32")
        } else {
            Err($crate::errors::type_error(concat!(
                $name,
                ": expected a float32 or float64 numpy array"
            )))
        }
    };
}
pub(crate) use by_dtype;
