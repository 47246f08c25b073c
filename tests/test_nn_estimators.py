"""nesy.nn.MLPClassifier / MLPRegressor: scikit-learn's estimator checks, learning on real data,
solvers and schedules, float32 and float64, bad parameters and input.

Mirrors python/nesy/nn/estimators.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_friedman1
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from nesy.nn import MLPClassifier, MLPRegressor, Sequential
from nesy.nn.estimators import SOLVERS


@pytest.mark.parametrize("est", [MLPClassifier(), MLPRegressor()], ids=lambda e: type(e).__name__)
def test_check_estimator(est):
    # Every check runs; none is expected to fail. Checks skipped by scikit-learn itself (pandas
    # not installed, SCIPY_ARRAY_API unset) are environment skips, not exemptions.
    check_estimator(est)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classifier_learns_iris_in_both_dtypes(iris, dtype):
    Xtr, Xte, ytr, yte = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate=1e-2, dtype=dtype,
                        random_state=0)
    clf.fit(Xtr, names[ytr])
    assert clf.model_.parameters()[0].dtype == np.dtype(dtype)
    assert clf.score(Xte, names[yte]) >= 0.9
    proba = clf.predict_proba(Xte)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(Xte))
    assert clf.n_parameters() == 4 * 16 + 16 + 16 * 3 + 3
    assert clf.n_iter_ == len(clf.loss_curve_) >= 1


def test_same_seed_same_model_and_binary_decision_function(iris):
    Xtr, Xte, ytr, _ = iris
    yb = (ytr == 2).astype(int)
    a = MLPClassifier(hidden_layer_sizes=(8,), random_state=3).fit(Xtr, yb)
    b = clone(a).fit(Xtr, yb)
    np.testing.assert_array_equal(a.predict_proba(Xte), b.predict_proba(Xte))
    d = a.decision_function(Xte)
    assert d.shape == (len(Xte),)
    np.testing.assert_array_equal(a.classes_[(d > 0).astype(int)], a.predict(Xte))


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_trains(iris, solver):
    Xtr, Xte, ytr, yte = iris
    lr = {"sgd": 0.05, "sgdhd": 0.05, "adagrad": 0.05, "lion": 3e-3}.get(solver, 1e-2)
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver=solver, learning_rate=lr, epochs=60,
                        early_stopping=False, random_state=0).fit(Xtr, ytr)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(Xte, yte) >= 0.8


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_schedules_change_the_learning_rate(iris, schedule):
    Xtr, _, ytr, _ = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), schedule=schedule, learning_rate=0.05,
                        epochs=40, patience=4, early_stopping=schedule == "plateau",
                        random_state=0).fit(Xtr, ytr)
    lrs = clf.history_["lr"]
    assert lrs[0] == pytest.approx(0.05) and min(lrs) <= 0.025


def test_regressor_single_and_multi_output_in_a_pipeline():
    X, y = make_friedman1(n_samples=600, noise=0.5, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    linear = LinearRegression().fit(Xtr, ytr).score(Xte, yte)  # 0.77: the target is nonlinear
    reg = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(32,),
                                                       learning_rate=1e-2, random_state=0))
    reg.fit(Xtr, ytr)
    assert reg.predict(Xte).shape == (len(Xte),)
    assert reg.score(Xte, yte) >= max(0.9, linear + 0.1)
    multi = MLPRegressor(hidden_layer_sizes=(32,), learning_rate=1e-2, random_state=0)
    pred = multi.fit(Xtr, np.column_stack([ytr, -2 * ytr])).predict(Xte)
    assert pred.shape == (len(Xte), 2)
    assert r2_score(-2 * yte, pred[:, 1]) >= 0.9


@pytest.mark.parametrize("kw,needle", [
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
    ({"activation": "swishy"}, "swishy"),
    ({"solver": "bfgs"}, "solver"),
    ({"schedule": "cyclic"}, "schedule"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"batch_size": 0}, "batch_size"),
    ({"validation_fraction": 0.9}, "validation_fraction"),
    ({"dtype": "float16"}, "dtype"),
    ({"dropout": 1.5}, "dropout"),
])
def test_bad_parameters_name_the_parameter(iris, kw, needle):
    Xtr, _, ytr, _ = iris
    with pytest.raises(ValueError, match=needle):
        MLPClassifier(**kw).fit(Xtr, ytr)


def test_bad_input(iris):
    Xtr, Xte, ytr, _ = iris
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(Xte)
    X = Xtr.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        MLPClassifier().fit(X, ytr)
    clf = MLPClassifier(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="3 features"):
        clf.predict(Xte[:, :3])
    with pytest.raises(ValueError, match="^y: Unknown label type: continuous"):
        MLPClassifier().fit(Xtr, ytr + 0.5)  # named as every classifier's (review s13 L9)



def test_mlp_classifier_label_errors_start_with_y_once(iris):
    """MLPClassifier raised scikit-learn's label errors unnamed while the sequence and graph
    classifiers prefixed y (review s13 L9); all of them use nesy._checks.label_encoder."""
    Xtr, _, ytr, _ = iris
    with pytest.raises(ValueError, match="^y: Unknown label type: continuous"):
        MLPClassifier(epochs=1).fit(Xtr, ytr + 0.5)
    mixed = np.array(["a", 1] * (len(ytr) // 2) + ["a"] * (len(ytr) % 2), dtype=object)
    with pytest.raises(TypeError, match="^y: (?!y: )"):
        MLPClassifier(epochs=1).fit(Xtr, mixed)


def test_model_is_a_plain_nesy_network(iris):
    Xtr, Xte, ytr, _ = iris
    clf = MLPClassifier(hidden_layer_sizes=(8, 4), random_state=0).fit(Xtr, ytr)
    assert isinstance(clf.model_, Sequential)
    z = clf.model_.forward((Xte - clf.x_mean_) / clf.x_scale_)
    np.testing.assert_allclose(z, clf.decision_function(Xte), rtol=1e-12)


def test_a_schedule_name_as_learning_rate_points_to_the_nesy_options():
    """scikit-learn's MLP takes learning_rate="constant"/"adaptive"; nesy's is a step size."""
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    with pytest.raises(TypeError, match="^learning_rate: .*learning_rate_init.*schedule="):
        MLPClassifier(learning_rate="adaptive").fit(X, y)


def test_fit_skips_the_data_gradient_and_leaves_a_plain_network():
    X, y = np.random.default_rng(0).standard_normal((40, 3)), np.arange(40) % 2
    clf = MLPClassifier(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(X, y)
    assert clf.model_[0].input_grad is True  # switched off during fit only


@pytest.mark.parametrize("param", ["learning_rate", "weight_decay", "tol"])
def test_infinite_options_are_refused_by_their_name(param):
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=rf"^{param}: expected a number in [\[(]0.0, inf\), "
                                         r"got inf"):
        MLPClassifier(epochs=1, **{param: np.inf}).fit(X, y)


@pytest.mark.parametrize("param,value,want", [
    ("learning_rate", [0.1], r"a number in \(0.0, inf\), got list \[0.1\]"),
    ("weight_decay", None, r"a number in \[0.0, inf\), got NoneType None"),
    ("dropout", True, r"a number in \[0.0, 1.0\], got bool True"),
    ("batch_size", 2.0, r"an integer in \[1, inf\), got float 2.0"),
    ("epochs", "3", r"an integer in \[0, inf\), got str '3'"),
    ("tol", "0", r"a number in \[0.0, inf\), got str '0'"),
    ("patience", np.True_, r"an integer in \[0, inf\), got bool (np\.)?True_?"),
    ("validation_fraction", "0.1", r"a number in \[0.0, 0.5\], got str '0.1'"),
])
def test_an_option_of_the_wrong_kind_raises_type_error(param, value, want):
    """TypeError for the wrong kind of value, ValueError out of range (nesy._checks' rule, as
    the recurrent and graph estimators' hidden_size): these all raised ValueError."""
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    clf = MLPClassifier(**{"epochs": 1, param: value})
    with pytest.raises(TypeError, match=rf"^{param}: expected {want}$"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")


def test_values_too_large_to_standardise_are_named_not_called_infinite():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), np.arange(20) % 2
    clf = MLPClassifier(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, y)
    w = clf.model_[0].weight.copy()
    big = np.c_[X, np.full(20, 1e308)]  # finite, but its mean overflows
    with pytest.raises(ValueError, match=r"^X: values too large to standardise \(column 3"):
        clf.fit(big, y)
    assert clf.n_features_in_ == 3 and np.array_equal(clf.model_[0].weight, w)  # kept
    spread = X.copy()
    spread[0, 1] = 1e200  # the mean is finite, the variance overflows
    with pytest.raises(ValueError, match=r"^X: .*column 1"):
        MLPClassifier(epochs=1).fit(spread, y)
    with pytest.raises(ValueError, match=r"^y: values too large to standardise \(column 0"):
        MLPRegressor(epochs=1).fit(X, X[:, 0] * 1e307)
    with pytest.raises(ValueError, match=r"^y: .*column 1"):
        MLPRegressor(epochs=1).fit(X, np.c_[X[:, 0], X[:, 1] * 1e307])


def test_early_stopping_without_room_for_a_validation_split_warns_at_fit():
    """With too few rows for a split (at least 2 held out, 2 left) early_stopping=True
    silently watched the training loss."""
    import warnings

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((14, 3)), np.arange(14) % 2
    for est, target in ((MLPClassifier, y), (MLPRegressor, X[:, 0])):
        with pytest.warns(UserWarning, match=r"^early_stopping: validation_fraction=0.1 of 14 "
                                             r"rows holds out 1, and a validation split needs "
                                             r"at least 2 rows with at least 2 left to train "
                                             r"on; training on all rows, with early stopping "
                                             r"on the training loss$") as rec:
            fitted = est(hidden_layer_sizes=(4,), epochs=2, early_stopping=True,
                         random_state=0).fit(X, target)
        assert rec[0].filename == __file__
        assert "val_loss" not in fitted.history_.history
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(X, target)
            fitted = est(hidden_layer_sizes=(4,), epochs=2, early_stopping=True,
                         random_state=0).fit(np.vstack([X, X[:1]]), np.r_[target, target[:1]])
        assert "val_loss" in fitted.history_.history  # 15 rows: 2 held out
    with pytest.warns(UserWarning, match=r"^early_stopping: validation_fraction=0.0 of 14 rows "
                                         "holds out 0"):
        MLPClassifier(hidden_layer_sizes=(4,), epochs=1, early_stopping=True,
                      validation_fraction=0.0).fit(X, y)
    assert "15 rows or more at the default" in MLPClassifier.__doc__


def test_a_pickled_estimator_holds_no_rows_of_the_last_predict():
    """The fitted network kept the last predict's (standardised) input, which went into the
    estimator's pickle."""
    import pickle

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((100, 5)), np.arange(100) % 3
    for est, target in ((MLPClassifier, y), (MLPRegressor, X[:, :2])):
        fitted = est(hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(X, target)
        size = len(pickle.dumps(fitted))
        fitted.predict(rng.standard_normal((20000, 5)))  # 800 kB of float64
        assert len(pickle.dumps(fitted)) == size < 20_000
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict(X),
                                      fitted.predict(X))


def _forward_with(est, X):
    """The network's outputs computed from ``coefs_`` and ``intercepts_`` alone."""
    h = np.asarray(X, dtype=np.float64)
    last = len(est.coefs_) - 1
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        h = h @ W + b
        if i < last:
            h = np.maximum(h, 0) if est.activation == "relu" else np.tanh(h)
    return h


def test_fitted_coefs_intercepts_and_best_loss_as_scikit_learn():
    """L7: coefs_, intercepts_ and best_loss_, which users of scikit-learn's MLP read, were
    missing (AttributeError)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4)) * [1.0, 10.0, 0.1, 3.0] + [5.0, -2.0, 0.0, 1.0]
    y = (X[:, 0] > 5).astype(int) + (X[:, 1] > -2)
    with pytest.raises(NotFittedError):
        _ = MLPClassifier().coefs_
    clf = MLPClassifier(hidden_layer_sizes=(8, 5), epochs=5, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (5,), (3,)]
    # on unstandardised X, as scikit-learn's: they give the logits
    np.testing.assert_allclose(_forward_with(clf, X), clf._raw(X), rtol=1e-10, atol=1e-12)
    assert clf.best_loss_ == min(clf.loss_curve_)
    stopped = MLPClassifier(hidden_layer_sizes=(8,), epochs=5, early_stopping=True,
                            random_state=0).fit(X, y)
    assert stopped.best_loss_ is None  # as scikit-learn's with early_stopping=True

    Y = np.c_[X @ [1.0, 2.0, 3.0, 4.0], X[:, 0] * 100]
    for dtype in ("float64", "float32"):
        reg = MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", epochs=5, dtype=dtype,
                           random_state=0).fit(X, Y)
        assert reg.coefs_[0].dtype == dtype and [c.shape for c in reg.coefs_] == [(4, 6), (6, 2)]
        # the target scaling is folded in too: the last layer gives the predictions
        np.testing.assert_allclose(_forward_with(reg, X), reg.predict(X),
                                   rtol=1e-10 if dtype == "float64" else 1e-4,
                                   atol=1e-8 if dtype == "float64" else 1e-2)
        assert reg.best_loss_ == min(reg.loss_curve_)


def test_patience_is_n_iter_no_change_plus_one():
    """L7: the comment and docstring said the early stopping was "as scikit-learn", whose
    count must exceed n_iter_no_change: patience=p stops where n_iter_no_change=p-1 does
    (pinned here with a tol no epoch can beat, so both stop p epochs after the first)."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 3)), np.arange(60) % 2
    for p in (2, 4):  # scikit-learn takes n_iter_no_change >= 1
        ours = MLPClassifier(hidden_layer_sizes=(4,), patience=p, tol=1e6, epochs=50,
                             random_state=0).fit(X, y)
        sk = SkMLP(hidden_layer_sizes=(4,), n_iter_no_change=p - 1, tol=1e6, max_iter=50,
                   random_state=0).fit(X, y)
        assert ours.n_iter_ == sk.n_iter_ == p + 1
    doc = " ".join(MLPClassifier.__doc__.split())
    assert "``patience=p`` stops where ``n_iter_no_change=p - 1`` would" in doc


# ---------------------------------------------------------------------- review s22 (nn)


def _tiny():
    X = np.random.default_rng(0).standard_normal((40, 3))
    return X, (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("solver", ["sgdhd", "adamhd"])
def test_a_hypergradient_solver_refuses_the_cosine_schedule(solver):
    """M1: the cosine schedule wrote its rate at every epoch, so what the hypergradient
    solver adapted was thrown away each epoch; "plateau" only scales the adapted rate."""
    X, y = _tiny()
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver=solver, schedule="cosine", epochs=2)
    with pytest.raises(ValueError, match=rf"^schedule: 'cosine' .*solver='{solver}'"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")
    with pytest.raises(ValueError, match="^schedule: 'cosine'"):
        MLPRegressor(solver=solver, schedule="cosine", epochs=2).fit(X, X[:, 0])
    MLPClassifier(hidden_layer_sizes=(4,), solver=solver, schedule="plateau", epochs=2,
                  random_state=0).fit(X, y)
    assert '"sgdhd"' in MLPClassifier.__doc__ and "undoing what they adapt" in \
        " ".join(MLPClassifier.__doc__.split())


@pytest.mark.parametrize("param,value,err,want", [
    ("random_state", "a", TypeError, "expected None, an int >= 0 or a numpy.random.Generator"),
    ("random_state", 1.5, TypeError, "expected None, an int >= 0 or a numpy.random.Generator"),
    ("random_state", -1, ValueError, "expected an integer >= 0, got -1"),
    ("verbose", "x", TypeError, r"expected an integer, got str 'x'"),
    ("verbose", None, TypeError, r"expected an integer, got NoneType"),
    ("verbose", 2.5, TypeError, r"expected an integer, got float 2.5"),
    ("verbose", -1, ValueError, r"expected an integer >= 0, got -1"),
    ("early_stopping", "yes", TypeError, "expected a bool, got str 'yes'"),
    ("hidden_layer_sizes", None, TypeError, "expected an int or a sequence of ints"),
    ("hidden_layer_sizes", "100", TypeError, "expected an int or a sequence of ints"),
    ("hidden_layer_sizes", (4.5,), TypeError, "expected positive ints"),
    ("hidden_layer_sizes", (10**12,), ValueError, "1000000000000 makes a network of .* GiB, "
                                                  "more than this machine's memory"),
    ("activation", 3, TypeError, "expected the name of an activation"),
])
def test_options_are_named_before_fit_changes_anything(param, value, err, want):
    """M8, M9, M13, L5: seeds, verbose, early_stopping and hidden_layer_sizes gave NumPy's or
    Python's messages (or a MemoryError), or any truthy value was taken."""
    X, y = _tiny()
    for est, target in ((MLPClassifier, y), (MLPRegressor, X[:, 0])):
        model = est(**{"epochs": 1, param: value})
        with pytest.raises(err, match=rf"^{param}: {want}"):
            model.fit(X, target)
        assert not hasattr(model, "model_")


def test_verbose_takes_a_bool_as_scikit_learn_documents_it():
    """scikit-learn documents an MLP's verbose as a bool: True is level 1, False 0."""
    X, y = _tiny()
    for v in (True, False, np.bool_(False), 0, 2):
        MLPClassifier(hidden_layer_sizes=(4,), epochs=1, verbose=v, random_state=0).fit(X, y)


def test_seeds_and_dtypes_as_numpy_takes_them():
    """L9: np.float32 was refused ("expected 'float32' or 'float64', got <class
    'numpy.float32'>"), where Dense and the rest of nesy take NumPy dtypes."""
    X, y = _tiny()
    for dtype in (np.float32, np.dtype("float32"), "float32"):
        clf = MLPClassifier(hidden_layer_sizes=(4,), epochs=2, dtype=dtype, random_state=0)
        clf.fit(X, y)
        assert clf.model_[0].weight.dtype == np.float32
        assert clone(clf).get_params()["dtype"] == dtype
    for seed in (np.int64(3), np.random.RandomState(0), np.random.default_rng(0)):
        MLPRegressor(hidden_layer_sizes=(4,), epochs=1, random_state=seed).fit(X, X[:, 0])
    a = MLPClassifier(hidden_layer_sizes=[4, 3], epochs=2, random_state=np.int64(1)).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=np.array([4, 3]), epochs=2, random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
