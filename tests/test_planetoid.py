"""nesy.datasets.load_planetoid: the shipped Cora against its published statistics and the
copy in ../shared/data, the CiteSeer fix-up on a small synthetic set written in the Planetoid
format, and bad input.

Mirrors python/nesy/datasets/planetoid.py.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections import defaultdict
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from nesy.datasets import load_planetoid

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "planetoid"


def test_cora_public_split():
    d = load_planetoid("cora")
    g, X, y, tr, va, te = d
    assert X.shape == (2708, 1433) and X.dtype == np.float32
    assert set(np.unique(X)) == {0.0, 1.0}  # binary bag of words
    assert g.num_nodes == 2708 and g.num_edges == 10556  # 5,278 undirected edges
    ei = g.edge_index()
    assert np.all(ei[0] != ei[1])  # no self-loops
    pairs = set(map(tuple, ei.T))
    assert all((b, a) in pairs for a, b in pairs)  # undirected
    assert len(pairs) == g.num_edges  # no duplicates
    assert list(np.bincount(y)) == [351, 217, 418, 818, 426, 298, 180]
    assert (tr.sum(), va.sum(), te.sum()) == (140, 500, 1000)
    assert np.all(np.flatnonzero(tr) == np.arange(140))
    assert np.all(np.flatnonzero(va) == np.arange(140, 640))
    assert not (tr & te).any() and not (va & te).any()
    assert list(np.bincount(y[tr])) == [20] * 7  # 20 labelled nodes per class
    assert d.graph is g and d.test_mask is te


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/planetoid not present")
def test_shipped_copy_equals_the_shared_files():
    a, b = load_planetoid("cora"), load_planetoid("cora", root=SHARED)
    for x, z in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(x, z)
    np.testing.assert_array_equal(a.graph.edge_index(), b.graph.edge_index())


def _write_planetoid(root, name, test_ids=(9, 7, 11), adjacency=None, n_train=4, n_extra=2,
                     n=12, f=5, c=3):
    """A tiny data set: nodes 0..n_train+n_extra-1 in allx, the test nodes in tx (in the order
    of test.index); ids in range(min, max+1) missing from test_ids are isolated nodes."""
    rng = np.random.default_rng(0)
    n_all = n_train + n_extra
    feats = (rng.random((n, f)) < 0.5).astype(np.float32)
    feats[np.arange(n), np.arange(n) % f] = 1  # no empty row
    labels = np.eye(c, dtype=np.int32)[np.arange(n) % c]
    test_ids = np.array(test_ids)
    parts = {
        "x": sp.csr_matrix(feats[:n_train]), "y": labels[:n_train],
        "allx": sp.csr_matrix(feats[:n_all]), "ally": labels[:n_all],
        "tx": sp.csr_matrix(feats[test_ids]), "ty": labels[test_ids],
        "graph": defaultdict(list, adjacency or {0: [1, 9], 1: [0], 9: [0, 7, 9], 7: [9]}),
    }
    for k, v in parts.items():
        with open(os.path.join(root, f"ind.{name}.{k}"), "wb") as fh:
            pickle.dump(v, fh, protocol=2)
    np.savetxt(os.path.join(root, f"ind.{name}.test.index"), test_ids, fmt="%d")
    return feats, labels.argmax(1)


def test_test_nodes_are_put_back_at_their_ids(tmp_path):
    feats, labels = _write_planetoid(tmp_path, "pubmed", test_ids=(9, 6, 8, 7))
    g, X, y, tr, va, te = load_planetoid("pubmed", root=tmp_path)
    assert X.shape == (10, 5)
    np.testing.assert_array_equal(X, feats[:10])
    np.testing.assert_array_equal(y, labels[:10])
    assert list(np.flatnonzero(te)) == [6, 7, 8, 9] and tr.sum() == 4
    assert g.num_edges == 6 and g.num_nodes == 10  # 0-1, 0-9, 9-7 both ways; 9 -> 9 dropped


def test_citeseer_isolated_test_nodes_get_zero_rows(tmp_path):
    # ids 6..11: 8 and 10 are missing from the test files (isolated nodes)
    feats, labels = _write_planetoid(tmp_path, "citeseer", test_ids=(9, 7, 11, 6),
                                     adjacency={0: [1], 3: [11], 11: [3, 10]})
    g, X, y, tr, va, te = load_planetoid("citeseer", root=tmp_path)
    assert X.shape == (12, 5) and g.num_nodes == 12
    for i in (0, 1, 2, 3, 4, 5, 6, 7, 9, 11):
        np.testing.assert_array_equal(X[i], feats[i])
        assert y[i] == labels[i]
    assert np.all(X[[8, 10]] == 0) and np.all(y[[8, 10]] == 0)
    assert list(np.flatnonzero(te)) == [6, 7, 9, 11]
    assert g.num_edges == 6 and list(g.in_degree()[[8, 10]]) == [0, 1]


def test_citeseer_test_ids_must_start_after_allx(tmp_path):
    _write_planetoid(tmp_path, "citeseer", test_ids=(9, 7, 11))  # allx: nodes 0..5
    with pytest.raises(ValueError, match=r"ind\.citeseer\.test\.index: .*start right after "
                                         r"allx, at 6; the smallest is 7"):
        load_planetoid("citeseer", root=tmp_path)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="name"):
        load_planetoid("reddit")
    with pytest.raises(FileNotFoundError, match="name: only 'cora'"):
        load_planetoid("pubmed")
    with pytest.raises(FileNotFoundError, match="root"):
        load_planetoid("cora", root=tmp_path)
    _write_planetoid(tmp_path, "cora")
    with open(tmp_path / "ind.cora.graph", "wb") as fh:  # a pickle that would run code
        pickle.dump(os.system, fh)
    with pytest.raises(ValueError, match=r"ind\.cora\.graph: .*refusing"):
        load_planetoid("cora", root=tmp_path)


def test_a_root_that_is_not_a_folder_is_named_as_such(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"root: '.*nowhere': no such folder"):
        load_planetoid("cora", root=tmp_path / "nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match=r"root: '.*file': is not a folder"):
        load_planetoid("cora", root=tmp_path / "file")


@pytest.fixture
def cora(tmp_path):
    """A copy of the shipped Cora files in ``tmp_path`` (to be damaged by a test)."""
    src = resources.files("nesy.datasets") / "data" / "planetoid"
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index"):
        shutil.copyfile(str(src / f"ind.cora.{part}"), tmp_path / f"ind.cora.{part}")
    assert load_planetoid("cora", root=tmp_path).X.shape == (2708, 1433)  # intact copy loads
    return tmp_path


def _index(root):
    return np.loadtxt(root / "ind.cora.test.index", dtype=np.int64)


def _write_index(root, ids):
    np.savetxt(root / "ind.cora.test.index", ids, fmt="%d")


@pytest.mark.parametrize("change,exc,needle", [
    (lambda ids: np.r_[-1, ids[1:]], IndexError, "test node id -1 is out of range"),
    (lambda ids: np.r_[ids[1:], 2708], IndexError, "test node id 2708 is out of range"),
    (lambda ids: ids[:-1], ValueError, "999 test ids for the 1000 rows of tx"),
    (lambda ids: np.r_[ids, ids[0]], ValueError, "1001 test ids"),
    (lambda ids: np.r_[ids[:-1], ids[0]], ValueError, "appears more than once"),
])
def test_a_bad_test_index_names_the_file(cora, change, exc, needle):
    """Negative ids used to wrap around, a short index to load without error."""
    _write_index(cora, change(_index(cora)))
    with pytest.raises(exc, match=r"ind\.cora\.test\.index: .*" + needle):
        load_planetoid("cora", root=cora)


def test_an_unparsable_test_index_names_the_file(cora):
    (cora / "ind.cora.test.index").write_text("1708\nabc\n")
    with pytest.raises(ValueError, match=r"ind\.cora\.test\.index: expected one integer"):
        load_planetoid("cora", root=cora)


@pytest.mark.parametrize("part", ["tx", "graph", "ally"])
@pytest.mark.parametrize("keep", [0, 0.5])
def test_a_truncated_pickle_names_the_file(cora, part, keep):
    path = cora / f"ind.cora.{part}"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match=rf"ind\.cora\.{part}: not a readable Planetoid "
                                         r"pickle \((UnpicklingError|EOFError)"):
        load_planetoid("cora", root=cora)


@pytest.mark.parametrize("part,value,needle", [
    ("graph", [[1, 2], [0]], r"ind\.cora\.graph: expected a dict of adjacency lists, got list"),
    ("graph", {0: [1], 1: ["a"]}, r"ind\.cora\.graph: expected integer node ids"),
    ("graph", {0: [-1]}, r"ind\.cora\.graph: node id -1 is out of range"),
    ("ty", np.zeros((999, 7), np.int32), r"ind\.cora\.ty: 999 label rows .*ind\.cora\.tx"),
    ("ty", np.zeros((1000, 6), np.int32), r"ind\.cora\.ty: 6 columns"),
    ("tx", np.zeros(1000, np.float32), r"ind\.cora\.tx: expected a numeric matrix"),
    ("allx", {"a": 1}, r"ind\.cora\.allx: expected a numeric matrix"),
])
def test_a_pickle_of_the_wrong_content_names_the_file(cora, part, value, needle):
    with open(cora / f"ind.cora.{part}", "wb") as fh:
        pickle.dump(value, fh, protocol=2)
    with pytest.raises((ValueError, IndexError), match=needle):
        load_planetoid("cora", root=cora)
