"""The shared argument checks (python/nesy/_checks.py)."""

import numpy as np
import pytest

from nesy._checks import check_int


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3), np.int32(3)])
def test_check_int_accepts_python_and_numpy_integers(value):
    out = check_int("n", value, 0, 10)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [True, np.bool_(False), 3.0, np.float32(2), "3", None, [3]])
def test_check_int_refuses_other_kinds_naming_the_argument(value):
    with pytest.raises(TypeError, match=r"^batch_size: expected an integer, got "):
        check_int("batch_size", value, 1)


@pytest.mark.parametrize("value,lo,hi,want", [
    (0, 1, None, r"^n: expected an integer >= 1, got 0$"),
    (11, None, 10, r"^n: expected an integer <= 10, got 11$"),
    (-1, 0, 2**64 - 1, r"^n: expected an integer in \[0, 18446744073709551615\], got -1$"),
    (2**64, 0, 2**64 - 1, r"in \[0, 18446744073709551615\], got 18446744073709551616$"),
])
def test_check_int_range_messages(value, lo, hi, want):
    with pytest.raises(ValueError, match=want):
        check_int("n", value, lo, hi)
    assert check_int("n", 5, None, None) == 5


def test_physical_memory_bytes_is_the_machines_or_none(monkeypatch):
    import os

    from nesy._checks import physical_memory_bytes

    mem = physical_memory_bytes()
    if hasattr(os, "sysconf"):
        assert type(mem) is int and mem > 0
    monkeypatch.delattr(os, "sysconf", raising=False)  # Windows has none
    assert physical_memory_bytes() is None


def test_graph_and_kge_refuse_ids_beyond_memory_with_one_exception_type(monkeypatch):
    """Both compare against nesy._checks.physical_memory_bytes; a huge node id raised
    MemoryError and a huge entity id ValueError. Both are ValueError: ids must be 0..n-1."""
    import nesy.gnn.graph
    import nesy.kge.model
    from nesy.gnn import Graph
    from nesy.kge import KGEModel

    monkeypatch.setattr(nesy.gnn.graph, "physical_memory_bytes", lambda: 1000)
    monkeypatch.setattr(nesy.kge.model, "physical_memory_bytes", lambda: 1000)
    with pytest.raises(ValueError, match=r"^edge_index: node id 99 implies a graph of 100 "
                                         r"nodes.*ids must be 0..n-1") as err:
        Graph(np.array([[99], [0]]))
    assert type(err.value) is ValueError
    model = KGEModel("distmult", dim=4, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^train: entity id 99 implies a table of 100 rows "
                                         r".*ids must be 0\.\.n-1") as err:
        model.fit(np.array([[0, 0, 99], [1, 0, 2]]))
    assert type(err.value) is ValueError and not hasattr(model, "entity_embeddings_")
    assert Graph(np.array([[9], [0]])).num_nodes == 10  # 16 * 11 bytes fit


@pytest.mark.parametrize("value", ["float32", np.float64, np.dtype("f4"), "f8", None])
def test_check_float_dtype_accepts_both_float_widths(value):
    from nesy._checks import check_float_dtype

    assert check_float_dtype(value) in (np.float32, np.float64)
    assert check_float_dtype(None) == np.float64  # as np.dtype(None), and as before the check


@pytest.mark.parametrize("value", ["foo", np.int32, np.complex64, np.float16, object()])
def test_check_float_dtype_names_dtype_with_the_error_type_asked_for(value):
    from nesy._checks import check_float_dtype

    for error in (ValueError, TypeError):
        with pytest.raises(error, match=r"^dtype: expected float32 or float64, got "):
            check_float_dtype(value, error)


def test_check_fits_in_memory_names_the_largest_size(monkeypatch):
    import nesy._checks as checks

    monkeypatch.setattr(checks, "physical_memory_bytes", lambda: 2**30)
    checks.check_fits_in_memory(2**30, "x", {"a": 1})  # exactly the memory: fine
    with pytest.raises(ValueError, match=r"^b: 7 makes a weight of 2 GiB, more than this "):
        checks.check_fits_in_memory(2**31, "a weight", {"a": 3, "b": 7})


@pytest.mark.parametrize("labels,exc,message", [
    (np.array([0.5, 1.5, 2.5]), ValueError, "y: Unknown label type: continuous"),
    (np.array([1.0, np.nan, 0.0]), ValueError, "y: Input y contains NaN."),
    (np.array([None, 1], dtype=object), ValueError, "y: Unknown label type: unknown"),
    (np.array(["a", 1], dtype=object), TypeError, "y: "),
])
def test_label_encoder_names_y_exactly_once(labels, exc, message):
    """Two copies with two rules (review s13 L9): SequenceClassifier left a message that
    mentioned y as it was ("Input y contains NaN."), GraphClassifier prefixed every one. Now
    every classifier's message starts with "y: " exactly once, with scikit-learn's type."""
    from nesy._checks import label_encoder

    with pytest.raises(exc) as err:
        label_encoder(labels)
    assert type(err.value) is exc
    text = str(err.value)
    assert text.startswith(message) and not text.startswith("y: y: ")
    enc = label_encoder(np.array(["b", "a", "b"]))
    assert list(enc.classes_) == ["a", "b"] and list(enc.transform(["a", "b"])) == [0, 1]


def test_label_encoder_does_not_prefix_a_message_that_starts_with_y(monkeypatch):
    import sklearn.utils.multiclass as multiclass

    from nesy._checks import label_encoder

    def named(y):
        raise ValueError("y: already named")

    monkeypatch.setattr(multiclass, "check_classification_targets", named)
    with pytest.raises(ValueError, match=r"^y: already named$"):
        label_encoder(np.array([0, 1]))


def test_warn_user_points_at_the_users_line_however_deep_nesy_raises_it():
    """nesy's warnings name the user's call, whichever path inside nesy reached the check:
    directly (MLPClassifier.fit), through the distiller (Distiller.fit -> _fit_distilled),
    and from a layer's constructor (RNN)."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    from nesy.distill import Distiller
    from nesy.nn import MLPClassifier
    from nesy.rnn import RNN

    X = np.random.default_rng(0).standard_normal((6, 3))
    y = np.array([0, 1, 0, 1, 0, 1])
    tiny = dict(hidden_layer_sizes=(4,), epochs=2, early_stopping=True, random_state=0)
    calls = {
        "MLPClassifier.fit": lambda: MLPClassifier(**tiny).fit(X, y),
        "Distiller.fit": lambda: Distiller(LogisticRegression().fit(X, y),
                                           MLPClassifier(**tiny)).fit(X),
        "RNN()": lambda: RNN(2, 3, dropout=0.5),
    }
    for what, call in calls.items():
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            call()
        mine = [w for w in rec if w.category is UserWarning]
        assert mine, what
        assert all(w.filename == __file__ for w in mine), (what, [w.filename for w in mine])
