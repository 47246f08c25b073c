//! Bindings of `nesy_core::optim`: one call updates every tensor of an optimizer.
//!
//! `optim_step` borrows the parameters (read-write), gradients (read-only) and the flat state
//! buffers, validates every shape, dtype and index, then releases the GIL and runs the rule.
//! State is kept flat per dtype: state buffer `k` of dtype `d` is one 1-D array holding, in
//! parameter order, the state of every parameter of that dtype (or is empty when no group uses it).
//! Python (`nesy/optim/_base.py`) owns those buffers and exposes per-parameter views.

use nesy_core::optim::adadelta::Adadelta;
use nesy_core::optim::adagrad::Adagrad;
use nesy_core::optim::adam::Adam;
use nesy_core::optim::adamax::Adamax;
use nesy_core::optim::hd::{hd_step, AdamHd, SgdHd};
use nesy_core::optim::lion::Lion;
use nesy_core::optim::nadam::Nadam;
use nesy_core::optim::radam::Radam;
use nesy_core::optim::rmsprop::Rmsprop;
use nesy_core::optim::sgd::Sgd;
use nesy_core::optim::{self, Rule, Slot, State};
use nesy_core::simd::{self, Level};
use nesy_core::{Float, Par};
use numpy::{
    Element, PyArray1, PyArrayDyn, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray1,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{slice, slice_mut, Access, Caster, NpyFloat};
use crate::errors::{to_py, type_error, value_error};
use crate::runtime::run_kernel;

/// Every rule by the name Python uses.
macro_rules! for_kind {
    ($kind:expr, $R:ident => $plain:expr, hd $H:ident => $hd:expr) => {
        match $kind {
            "sgd" => {
                type $R = Sgd;
                $plain
            }
            "adam" => {
                type $R = Adam;
                $plain
            }
            "adagrad" => {
                type $R = Adagrad;
                $plain
            }
            "rmsprop" => {
                type $R = Rmsprop;
                $plain
            }
            "adadelta" => {
                type $R = Adadelta;
                $plain
            }
            "adamax" => {
                type $R = Adamax;
                $plain
            }
            "nadam" => {
                type $R = Nadam;
                $plain
            }
            "radam" => {
                type $R = Radam;
                $plain
            }
            "lion" => {
                type $R = Lion;
                $plain
            }
            "sgd_hd" => {
                type $H = SgdHd;
                $hd
            }
            "adam_hd" => {
                type $H = AdamHd;
                $hd
            }
            other => Err(value_error(format!("kind: unknown optimizer {other:?}"))),
        }
    };
}

/// Resolves the `simd` argument: `None` is the best level of this CPU.
pub fn level(simd: Option<&str>) -> PyResult<Level> {
    match simd {
        None => Ok(simd::detect()),
        Some(name) => {
            let l = Level::parse(name)
                .ok_or_else(|| value_error(format!("simd: unknown level {name:?}")))?;
            if !l.is_supported() {
                return Err(value_error(format!(
                    "simd: level {name:?} is not supported by this CPU"
                )));
            }
            Ok(l)
        }
    }
}

/// The hyper-parameter columns of an optimizer kind, in row order.
#[pyfunction]
pub fn optim_columns(kind: &str) -> PyResult<Vec<&'static str>> {
    for_kind!(kind, R => Ok(<R as Rule<f32>>::COLUMNS.to_vec()), hd H => Ok(<H as Rule<f32>>::COLUMNS.to_vec()))
}

/// The names of the state buffers of an optimizer kind and how many each group uses.
#[pyfunction]
pub fn optim_state(
    kind: &str,
    hyper: PyReadonlyArray2<'_, f64>,
) -> PyResult<(Vec<&'static str>, Vec<usize>)> {
    let rows = rows(&hyper)?;
    fn info<R: Rule<f32>>(rows: &[&[f64]]) -> PyResult<(Vec<&'static str>, Vec<usize>)> {
        let rule = R::from_rows(rows).map_err(to_py)?;
        Ok((
            R::STATE.to_vec(),
            (0..rule.n_groups()).map(|g| rule.n_state(g)).collect(),
        ))
    }
    for_kind!(kind, R => info::<R>(&rows), hd H => info::<H>(&rows))
}

fn rows<'a>(hyper: &'a PyReadonlyArray2<'_, f64>) -> PyResult<Vec<&'a [f64]>> {
    let cols = hyper.shape()[1];
    let flat = hyper
        .as_slice()
        .map_err(|_| value_error("hyper: must be C-contiguous"))?;
    if cols == 0 {
        return Ok(vec![&[][..]; hyper.shape()[0]]);
    }
    Ok(flat.chunks(cols).collect())
}

/// The arrays of one dtype, split from the parameter list.
struct Typed<'py, T: Element> {
    /// Index in the full parameter list of each parameter of this dtype.
    index: Vec<usize>,
    params: Vec<Bound<'py, PyArrayDyn<T>>>,
    grads: Vec<Option<Bound<'py, PyArrayDyn<T>>>>,
    state: Vec<Bound<'py, PyArray1<T>>>,
}

impl<'py, T: NpyFloat + Float> Typed<'py, T> {
    fn new() -> Self {
        Typed {
            index: vec![],
            params: vec![],
            grads: vec![],
            state: vec![],
        }
    }

    fn push(
        &mut self,
        acc: &mut Access,
        caster: &Caster,
        i: usize,
        p: Bound<'py, PyArrayDyn<T>>,
        g: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        acc.add(&p, true, "params", i)?;
        let grad = if g.is_none() {
            None
        } else {
            let garr = caster.cast::<T>(g).ok_or_else(|| {
                type_error(format!(
                    "grads[{i}]: expected a numpy array of dtype {} like params[{i}], got {}",
                    dtype_name::<T>(),
                    describe(g)
                ))
            })?;
            if garr.shape() != p.shape() {
                return Err(value_error(format!(
                    "grads[{i}]: shape {} does not match params[{i}] shape {}",
                    crate::errors::py_shape(garr.shape()),
                    crate::errors::py_shape(p.shape())
                )));
            }
            acc.add(garr, false, "grads", i)?;
            Some(garr.clone())
        };
        self.index.push(i);
        self.params.push(p);
        self.grads.push(grad);
        Ok(())
    }

    fn total(&self) -> usize {
        self.params.iter().map(|p| p.len()).sum()
    }

    fn add_state(
        &mut self,
        acc: &mut Access,
        list: &Bound<'py, PyList>,
        n_state: usize,
        arg: &'static str,
    ) -> PyResult<()> {
        if list.len() != n_state {
            return Err(value_error(format!(
                "{arg}: expected {n_state} state buffers, got {}",
                list.len()
            )));
        }
        let total = self.total();
        for (k, item) in list.iter().enumerate() {
            let a = item.cast_into::<PyArray1<T>>().map_err(|e| {
                type_error(format!(
                    "{arg}[{k}]: expected a 1-D {} array, got {}",
                    dtype_name::<T>(),
                    describe(e.into_inner().as_any())
                ))
            })?;
            if a.len() != total && a.len() != 0 {
                return Err(value_error(format!(
                    "{arg}[{k}]: length {} is neither {total} (all parameters of this dtype) nor 0",
                    a.len()
                )));
            }
            acc.add(&a, true, arg, k)?;
            self.state.push(a);
        }
        Ok(())
    }

    /// Slots of the parameters that have a gradient. `groups`/`steps` are indexed by global
    /// parameter index; `scalars` holds this dtype's scalars in local order.
    ///
    /// # Safety
    /// The `Access` that covered these arrays must have passed `check`; call once per call.
    unsafe fn slots<'s>(
        &'s self,
        groups: &[i64],
        steps: &[i64],
        scalars: &'s mut [f64],
    ) -> Vec<Slot<'s, T>> {
        // SAFETY (all slices below): arrays checked disjoint, each taken once (caller's contract).
        let mut flats: Vec<&'s mut [T]> =
            self.state.iter().map(|s| unsafe { slice_mut(s) }).collect();
        let mut slots = Vec::with_capacity(self.params.len());
        let parts = self
            .params
            .iter()
            .zip(&self.grads)
            .zip(&self.index)
            .zip(scalars.iter_mut());
        for (((p, g), &i), scalar) in parts {
            let param = unsafe { slice_mut(p) };
            let n = param.len();
            let mut state: State<'s, T> = Default::default();
            for (dst, flat) in state.iter_mut().zip(flats.iter_mut()) {
                if !flat.is_empty() {
                    let (head, tail) = std::mem::take(flat).split_at_mut(n);
                    *dst = head;
                    *flat = tail;
                }
            }
            let Some(g) = g else { continue };
            let grad = unsafe { slice(g) };
            slots.push(Slot {
                param,
                grad,
                state,
                group: groups[i] as usize,
                step: steps[i] as u64 + 1,
                scalar,
            });
        }
        slots
    }

    /// This dtype's scalars, in local order.
    fn scalars(&self, all: &[f64]) -> Vec<f64> {
        self.index.iter().map(|&i| all[i]).collect()
    }

    /// After a successful step: count the update and store the scalar of every updated parameter.
    fn commit(&self, steps: &mut [i64], all: &mut [f64], local: &[f64]) {
        for ((&i, g), &s) in self.index.iter().zip(&self.grads).zip(local) {
            if g.is_some() {
                steps[i] += 1;
                all[i] = s;
            }
        }
    }
}

fn dtype_name<T: Element>() -> &'static str {
    if std::any::type_name::<T>() == "f32" {
        "float32"
    } else {
        "float64"
    }
}

fn describe(x: &Bound<'_, PyAny>) -> String {
    match x.getattr("dtype") {
        Ok(dt) => format!(
            "{} of dtype {}",
            x.get_type()
                .name()
                .map_or("object".into(), |n| n.to_string()),
            dt
        ),
        Err(_) => x
            .get_type()
            .name()
            .map_or("an object".into(), |n| n.to_string()),
    }
}

/// Collects every parameter and gradient, split by dtype.
fn split_dtypes<'py>(
    acc: &mut Access,
    params: &Bound<'py, PyList>,
    grads: &Bound<'py, PyList>,
) -> PyResult<(Typed<'py, f32>, Typed<'py, f64>)> {
    if grads.len() != params.len() {
        return Err(value_error(format!(
            "grads: expected {} gradients (one per parameter, or None), got {}",
            params.len(),
            grads.len()
        )));
    }
    let (mut t32, mut t64) = (Typed::new(), Typed::new());
    let caster = Caster::new(params.py());
    for (i, (p, g)) in params.iter().zip(grads.iter()).enumerate() {
        if let Some(a) = caster.cast::<f32>(&p) {
            t32.push(acc, &caster, i, a.clone(), &g)?;
        } else if let Some(a) = caster.cast::<f64>(&p) {
            t64.push(acc, &caster, i, a.clone(), &g)?;
        } else {
            return Err(type_error(format!(
                "params[{i}]: expected a numpy array of dtype float32 or float64, got {}",
                describe(&p)
            )));
        }
    }
    Ok((t32, t64))
}

/// One step of optimizer `kind` over all parameters.
///
/// `groups[i]` is parameter `i`'s row of `hyper` (one row per group, columns as `optim_columns`);
/// `steps[i]` counts its updates so far and is incremented for every parameter with a gradient;
/// `scalars[i]` is its scalar state. `state32`/`state64` hold the flat state buffers per dtype.
/// Returns the adapted learning rate of every group for hypergradient kinds, else `None`.
#[pyfunction]
#[pyo3(signature = (kind, params, grads, groups, steps, scalars, hyper, state32, state64, simd=None))]
pub fn optim_step<'py>(
    py: Python<'py>,
    kind: &str,
    params: &Bound<'py, PyList>,
    grads: &Bound<'py, PyList>,
    groups: PyReadonlyArray1<'py, i64>,
    mut steps: PyReadwriteArray1<'py, i64>,
    mut scalars: PyReadwriteArray1<'py, f64>,
    hyper: PyReadonlyArray2<'py, f64>,
    state32: &Bound<'py, PyList>,
    state64: &Bound<'py, PyList>,
    simd: Option<&str>,
) -> PyResult<Option<Vec<f64>>> {
    let level = level(simd)?;
    let n = params.len();
    for (arg, len) in [
        ("groups", groups.len()),
        ("steps", steps.len()),
        ("scalars", scalars.len()),
    ] {
        if len != n {
            return Err(value_error(format!(
                "{arg}: expected length {n} (one per parameter), got {len}"
            )));
        }
    }
    let (groups_arr, hyper_arr) = ((*groups).clone(), (*hyper).clone());
    let rows = rows(&hyper)?;
    let groups = groups
        .as_slice()
        .map_err(|_| value_error("groups: must be contiguous"))?;
    if let Some((i, g)) = groups
        .iter()
        .enumerate()
        .find(|(_, &g)| g < 0 || g as usize >= rows.len())
    {
        return Err(pyo3::exceptions::PyIndexError::new_err(format!(
            "groups[{i}]: group {g} is out of range for {} groups",
            rows.len()
        )));
    }
    let mut acc = Access::with_capacity(2 * n + 8);
    let (mut t32, mut t64) = split_dtypes(&mut acc, params, grads)?;
    let n_state = for_kind!(kind, R => Ok(<R as Rule<f32>>::STATE.len()), hd H => Ok(<H as Rule<f32>>::STATE.len()))?;
    t32.add_state(&mut acc, state32, n_state, "state32")?;
    t64.add_state(&mut acc, state64, n_state, "state64")?;
    // The bookkeeping arrays must not overlap a parameter either.
    acc.add_one(&groups_arr, false, "groups")?;
    acc.add_one(&hyper_arr, false, "hyper")?;
    acc.add_one(&steps, true, "steps")?;
    acc.add_one(&scalars, true, "scalars")?;
    let steps = steps
        .as_slice_mut()
        .map_err(|_| value_error("steps: must be contiguous"))?;
    if let Some(i) = steps.iter().position(|&s| !(0..1 << 62).contains(&s)) {
        return Err(value_error(format!(
            "steps[{i}]: must be in [0, 2**62), got {}",
            steps[i]
        )));
    }
    let scalars = scalars
        .as_slice_mut()
        .map_err(|_| value_error("scalars: must be contiguous"))?;
    acc.check()?;
    let (mut sc32, mut sc64) = (t32.scalars(scalars), t64.scalars(scalars));
    // SAFETY: `acc` covered every array of both dtypes and passed `check`; taken once here.
    let slots32 = unsafe { t32.slots(groups, steps, &mut sc32) };
    let slots64 = unsafe { t64.slots(groups, steps, &mut sc64) };
    let work = slots32.iter().map(|s| s.param.len()).sum::<usize>()
        + slots64.iter().map(|s| s.param.len()).sum::<usize>();
    let result = for_kind!(kind,
        R => {
            let rule = <R as Rule<f32>>::from_rows(&rows).map_err(to_py)?;
            run_kernel(py, work, || {
                optim::validate::<f32, R>(&rule, &slots32)?;
                optim::validate::<f64, R>(&rule, &slots64)?;
                optim::step::<f32, R>(Par::Rayon, level, &rule, slots32)?;
                optim::step::<f64, R>(Par::Rayon, level, &rule, slots64)?;
                Ok(None)
            })
        },
        hd H => {
            let mut rule = <H as Rule<f32>>::from_rows(&rows).map_err(to_py)?;
            run_kernel(py, work, || hd_step::<H>(Par::Rayon, level, &mut rule, slots32, slots64).map(Some))
        }
    )?;
    t32.commit(steps, scalars, &sc32);
    t64.commit(steps, scalars, &sc64);
    Ok(result)
}
