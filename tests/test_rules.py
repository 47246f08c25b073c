"""nesy.rules: RuleSet semantics against a per-row Python reference, JSON round trip, exported
Python function, pedagogical and decompositional extraction on iris / wine / breast_cancer
(the issue's fidelity targets, seeded, with margins), bad input, scikit-learn's
check_estimator and clone / FrozenEstimator behaviour of the extractors.

Mirrors python/nesy/rules/.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.utils.estimator_checks import check_estimator

from nesy.nn import Dense, MLPClassifier, ReLU, Sequential, Tanh
from nesy.rules import (
    Condition,
    DecompositionalRuleExtractor,
    PedagogicalRuleExtractor,
    Rule,
    RuleSet,
)
from nesy.rules.decompositional import relu_network
from nesy.rules.ruleset import apply_rules
from nesy.rules.simplify import Evaluator, fidelity, prune
from nesy.rules.trees import merge

# ---------------------------------------------------------------------- helpers


def ref_apply(rules, x):
    """First rule whose conditions all hold for one row, by plain Python."""
    for i, conds in enumerate(rules):
        if all((x[c.feature] <= c.threshold) if c.op == "<=" else (x[c.feature] > c.threshold)
               for c in conds):
            return i
    return len(rules)


def random_ruleset(rng, n_features=5, n_rules=6, classes=("a", "b", "c")):
    rules = []
    for _ in range(n_rules):
        k = int(rng.integers(0, 4))
        conds = tuple(Condition(int(rng.integers(0, n_features)), str(rng.choice(["<=", ">"])),
                                float(rng.standard_normal())) for _ in range(k))
        p = rng.dirichlet(np.ones(len(classes)))
        rules.append(Rule(conds, int(np.argmax(p)), tuple(p)))
    d = rng.dirichlet(np.ones(len(classes)))
    return RuleSet(rules, Rule((), int(np.argmax(d)), tuple(d)),
                   [f"f{i}" for i in range(n_features)], np.array(classes))


DATA = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer}


@pytest.fixture(scope="module")
def nets():
    """Fixed test split of each data set and a seeded ReLU network trained on it."""
    out = {}
    for name, loader in DATA.items():
        d = loader()
        Xtr, Xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.25, random_state=0,
                                              stratify=d.target)
        net = MLPClassifier(hidden_layer_sizes=(32,), random_state=0).fit(Xtr, ytr)
        out[name] = (net, Xtr, Xte, ytr, yte, list(d.feature_names))
    return out


# ---------------------------------------------------------------------- RuleSet


def test_vectorised_rules_match_the_per_row_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        rs = random_ruleset(rng, n_rules=int(rng.integers(0, 8)))
        X = rng.standard_normal((300, 5))
        X[:10, 0] = rs.rules[0].conditions[0].threshold if rs.rules and rs.rules[0].conditions \
            else X[:10, 0]  # rows exactly on a threshold go to the "<=" side
        want = np.array([ref_apply([r.conditions for r in rs.rules], x) for x in X])
        np.testing.assert_array_equal(rs.apply(X), want)
        labels = np.array([r.label for r in [*rs.rules, rs.default]])
        np.testing.assert_array_equal(rs.predict(X), rs.classes[labels[want]])
        proba = np.array([r.proba for r in [*rs.rules, rs.default]])[want]
        np.testing.assert_array_equal(rs.predict_proba(X), proba)


def test_exported_python_function_equals_predict_on_every_row():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 5))
    for _ in range(10):
        rs = random_ruleset(rng)
        fn = rs.to_function()
        assert [fn(list(x)) for x in X] == rs.predict(X).tolist()
        assert "def predict_rule(x):" in rs.to_python()


def test_json_round_trip_gives_an_identical_ruleset(tmp_path):
    rng = np.random.default_rng(2)
    for classes in (("a", "b", "c"), (3, 7, 11), (0.5, 1.5, 2.5)):
        rs = random_ruleset(rng, classes=classes)
        back = RuleSet.from_json(rs.to_json())
        assert back == rs and back.classes.dtype == rs.classes.dtype
        assert back.to_json() == rs.to_json()
        path = tmp_path / "rules.json"
        rs.save(path)
        assert RuleSet.load(path, feature_names=rs.feature_names) == rs
        assert [p.name for p in tmp_path.iterdir()] == ["rules.json"]  # no temp file left


def test_text_names_the_features_and_the_default():
    rs = RuleSet([Rule((Condition(1, ">", 2.5),), 1, (0.1, 0.9))], Rule((), 0, (0.8, 0.2)),
                 ["width", "length"], np.array(["no", "yes"]))
    text = rs.to_text()
    assert text.splitlines()[0].startswith("IF length > 2.5 THEN yes")
    assert text.splitlines()[1].startswith("ELSE no")
    assert rs.n_rules == 1 and rs.mean_rule_length == 1.0


def test_exported_source_is_safe_for_any_feature_or_class_name():
    """Names go into the generated source only as literals: a newline in a feature name
    cannot end the comment and run code when to_function compiles it."""
    evil = "a\n        print('INJECTED')\n        raise SystemExit"
    rs = RuleSet([Rule((Condition(1, ">", 2.5),), 1, (0.1, 0.9))], Rule((), 0, (0.8, 0.2)),
                 ["w\nx", evil], np.array(["no'\n", "yes\"\n"]))
    source = rs.to_python()
    assert "INJECTED" in source and len(source.splitlines()) == 5
    fn = rs.to_function()
    assert fn([0.0, 3.0]) == "yes\"\n" and fn([0.0, 1.0]) == "no'\n"


def test_rule_stats_coverage_precision_support():
    rs = RuleSet([Rule((Condition(0, "<=", 0.0),), 1, (0.5, 0.5))], Rule((), 0, (0.5, 0.5)),
                 ["x", "z"], np.array([0, 1]))
    X = np.array([[-1.0, 0], [-2, 0], [1, 0], [2, 0], [3, 0]])
    y = np.array([1, 0, 0, 0, 1])
    stats = rs.rule_stats(X, y)
    assert stats[0] == {"support": 2, "coverage": 0.4, "precision": 0.5}
    assert stats[1]["support"] == 3 and stats[1]["precision"] == pytest.approx(2 / 3)
    assert rs.with_stats(X, y).rules[0].support == 2


@pytest.mark.parametrize("text,needle", [
    ("{not json", "not valid JSON"),
    ('{"format": "something else", "version": 1}', "malformed"),
    ('{"format": "nesy.rules.RuleSet", "version": 1, "feature_names": ["a"]}', "malformed"),
    ("[1, 2, 3]", "malformed"),
])
def test_malformed_json_is_refused(text, needle):
    with pytest.raises(ValueError, match=needle):
        RuleSet.from_json(text)


def test_json_from_another_feature_set_is_refused():
    rs = random_ruleset(np.random.default_rng(3))
    with pytest.raises(ValueError, match="feature_names"):
        RuleSet.from_json(rs.to_json(), feature_names=["f0", "f1", "f2", "f3", "other"])
    d = json.loads(rs.to_json())
    d["feature_names"][0], d["feature_names"][1] = "f1", "f0"  # indices no longer match names
    if any(c["index"] in (0, 1) for r in d["rules"] for c in r["if"]):
        with pytest.raises(ValueError, match="malformed"):
            RuleSet.from_dict(d)
    d = json.loads(rs.to_json())
    d["rules"][0]["then"] = 9
    with pytest.raises(ValueError, match="out of range"):
        RuleSet.from_dict(d)


def test_bad_rows_and_conditions():
    rs = random_ruleset(np.random.default_rng(4))
    X = np.zeros((3, 5))
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match="X: contains NaN"):
        rs.predict(X)
    with pytest.raises(ValueError, match="X: has 4 features"):
        rs.predict(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="op"):
        Condition(0, "<", 1.0)
    with pytest.raises(ValueError, match="threshold"):
        Condition(0, "<=", float("nan"))


def test_merge_keeps_the_tightest_bounds_and_detects_contradictions():
    c = merge([Condition(0, "<=", 3.0), Condition(0, "<=", 2.0), Condition(0, ">", -1.0),
               Condition(2, ">", 0.5), Condition(2, ">", 1.5)])
    assert c == (Condition(0, ">", -1.0), Condition(0, "<=", 2.0), Condition(2, ">", 1.5))
    assert merge([Condition(1, ">", 2.0), Condition(1, "<=", 2.0)]) is None


def test_pruning_never_lowers_fidelity_and_respects_the_caps():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 4))
    labels = (X[:, 0] > 0).astype(np.intp) + (X[:, 1] > 1).astype(np.intp)
    rules = [((Condition(0, ">", 0.0), Condition(2, "<=", 5.0), Condition(1, ">", 1.0)), 2),
             ((Condition(0, ">", 0.0), Condition(3, ">", -9.0)), 1),
             ((Condition(3, ">", 2.5),), 2)]
    ev = Evaluator(X, labels)
    before = fidelity(rules, 0, X, labels)
    assert ev.fidelity(rules, 0) == before
    pruned = prune(rules, 0, ev, max_rules=5)
    assert fidelity(pruned, 0, X, labels) >= before
    kept = {c for r, _ in pruned for c in r}
    assert not kept & {Condition(2, "<=", 5.0), Condition(3, ">", -9.0)}  # always true here
    assert len(prune(rules, 0, ev, max_rules=1)) == 1
    assert all(len(r) <= 1 for r, _ in prune(rules, 0, ev, 5, max_length=1))


def test_apply_rules_on_many_rows_matches_reference_on_a_sample():
    rng = np.random.default_rng(6)
    rs = random_ruleset(rng, n_features=8, n_rules=30)
    X = rng.standard_normal((50_000, 8))
    fired = apply_rules([r.conditions for r in rs.rules], X)
    idx = rng.choice(len(X), 500, replace=False)
    assert fired[idx].tolist() == [ref_apply([r.conditions for r in rs.rules], X[i]) for i in idx]


# ---------------------------------------------------------------------- extraction targets

# The targets (mean of 5 seeds, table in the report): iris and wine fidelity >= 0.93
# with <= 10 rules; breast_cancer >= 0.95 with <= 15 rules of mean length <= 4. One seed here;
# the margin allows one test row more disagreement than the target (38, 45, 143 test rows).
TARGETS = {"iris": (0.93, 10, None), "wine": (0.93, 10, None), "breast_cancer": (0.95, 15, 4)}


@pytest.mark.parametrize("name", list(TARGETS))
def test_pedagogical_extraction_meets_the_targets(nets, name):
    net, Xtr, Xte, _, yte, feats = nets[name]
    target, max_rules, max_len = TARGETS[name]
    ex = PedagogicalRuleExtractor(net, max_rules=max_rules, max_rule_length=max_len,
                                  random_state=0).fit(Xtr, feature_names=feats)
    rs = ex.ruleset_
    margin = 1.0 / len(Xte)
    assert ex.fidelity(Xte) >= target - margin
    assert rs.n_rules <= max_rules
    if max_len is not None:
        assert rs.mean_rule_length <= max_len
    assert ex.n_queries_ > len(Xtr)  # synthetic rows were queried
    # the extractor's predictions are the RuleSet's, and the exported function agrees
    X_all = np.vstack([Xtr, Xte])
    np.testing.assert_array_equal(ex.predict(X_all), rs.predict(X_all))
    fn = rs.to_function()
    assert [fn(x.tolist()) for x in X_all] == rs.predict(X_all).tolist()
    assert RuleSet.from_json(rs.to_json(), feature_names=feats) == rs
    assert set(feats) >= {c_name for c_name in _names_in(rs)}


def _names_in(rs):
    return [rs.feature_names[c.feature] for r in rs.rules for c in r.conditions]


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_decompositional_extraction_reads_the_network(nets, name):
    net, Xtr, Xte, _, _, feats = nets[name]
    _, max_rules, max_len = TARGETS[name]
    ex = DecompositionalRuleExtractor(net, max_rules=max_rules, max_rule_length=max_len,
                                      random_state=0).fit(Xtr, feature_names=feats)
    assert ex.ruleset_.n_rules <= max_rules and ex.n_terms_ >= 1
    assert ex.fidelity(Xte) >= 0.85  # the report compares it with the pedagogical method
    fn = ex.ruleset_.to_function()
    assert [fn(x.tolist()) for x in Xte] == ex.predict(Xte).tolist()


def test_relu_network_reproduces_every_supported_model(nets):
    net, Xtr, Xte, ytr, _, _ = nets["iris"]
    np.testing.assert_allclose(relu_network(net).logits(Xte), net.decision_function(Xte),
                               rtol=1e-10, atol=1e-12)
    seq = Sequential(Dense(4, 6, dtype=np.float64, rng=0), ReLU(),
                     Dense(6, 3, dtype=np.float64, rng=1))
    np.testing.assert_allclose(relu_network(seq).logits(Xte), seq.forward(Xte), rtol=1e-12)
    sk = SkMLP(hidden_layer_sizes=(5,), max_iter=2000, random_state=0).fit(Xtr, ytr == 2)
    z = relu_network(sk).logits(Xte)
    np.testing.assert_allclose(1 / (1 + np.exp(-(z[:, 1] - z[:, 0]))),
                               sk.predict_proba(Xte)[:, 1], rtol=1e-10)
    with pytest.raises(TypeError, match="model"):
        relu_network(Sequential(Dense(4, 3, rng=0), Tanh(), Dense(3, 2, rng=0)))
    with pytest.raises(TypeError, match="model"):
        DecompositionalRuleExtractor(object()).fit(Xtr)


def test_rules_learned_from_labels_without_a_model():
    d = load_iris()
    ex = PedagogicalRuleExtractor(max_rules=3, random_state=0).fit(d.data, d.target)
    assert ex.teacher_ is None and ex.ruleset_.n_rules <= 3
    assert ex.score(d.data, d.target) >= 0.9
    with pytest.raises(ValueError, match="fidelity"):
        ex.fidelity(d.data)


def test_extraction_bad_input(nets):
    net, Xtr, _, _, _, feats = nets["iris"]
    with pytest.raises(ValueError, match="feature_names: 3 names for 4 features"):
        PedagogicalRuleExtractor(net).fit(Xtr, feature_names=feats[:3])
    X = Xtr.copy()
    X[5, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        PedagogicalRuleExtractor(net).fit(X)
    with pytest.raises(ValueError, match="max_rules"):
        PedagogicalRuleExtractor(net, max_rules=0).fit(Xtr)
    for bad in (dict(min_leaf_samples=-5), dict(min_leaf_samples=float("nan")),
                dict(prune_tolerance=float("nan")), dict(max_rule_length=0),
                dict(bandwidth=-1.0), dict(n_synthetic=float("nan")),
                dict(n_synthetic=float("inf")), dict(sampling_rounds=1.5),
                dict(max_leaf_nodes=1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PedagogicalRuleExtractor(net, **bad).fit(Xtr)
    for bad in (dict(bandwidth=-1.0), dict(prune_tolerance=float("nan")),
                dict(max_rule_length=0), dict(max_terms=0), dict(random_state="x"),
                dict(random_state=-1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DecompositionalRuleExtractor(net, **bad).fit(Xtr)
    # Two rows and a large held-out fraction: still rows to fit on.
    PedagogicalRuleExtractor(validation_fraction=0.75).fit(Xtr[:2], [0, 1])
    DecompositionalRuleExtractor(net, n_synthetic=0, validation_fraction=0.75).fit(Xtr[:2])
    with pytest.raises(TypeError, match="teacher"):
        PedagogicalRuleExtractor(object()).fit(Xtr)
    with pytest.raises(ValueError, match="requires y to be passed"):
        PedagogicalRuleExtractor().fit(Xtr)


def test_report_and_profile_smoke():
    from nesy.rules import report

    rows = report.extraction_report(["iris"], n_seeds=1, verbose=False)
    assert [r["method"] for r in rows] == ["pedagogical", "decompositional", "CART on labels",
                                           "CART on network labels"]
    table = report.format_table(rows)
    assert table.startswith("| data set | method |") and table.count("\n") == 5
    assert report.targets_met(rows) == (rows[0]["fidelity"] >= 0.93 and rows[0]["n_rules"] <= 10)
    prof = report.evaluation_profile(n_rows=3000, n_features=8, n_rules=12, repeats=1)
    assert len(prof) == 5 and all(r["seconds"] > 0 for r in prof)
    assert "rows / s" in report.format_profile(prof)


# ---------------------------------------------------------------------- scikit-learn conventions


def first_feature_logits(X):
    """A fitted model for any number of features: class 1 where the first feature is positive
    (a module-level function, so that an extractor holding it pickles)."""
    return np.column_stack([-X[:, 0], X[:, 0]])


def check_estimator_with(est, expected_failures):
    """check_estimator raising on any unexpected failure; every expected one must still fail
    (an exemption that no longer applies is reported, not kept)."""
    status = {}
    for r in check_estimator(est, expected_failed_checks=expected_failures):
        status.setdefault(r["check_name"], set()).add(r["status"])
    assert {k: v for k, v in status.items() if k in expected_failures} == {
        k: {"xfail"} for k in expected_failures}


SMALL_NET = dict(hidden_layer_sizes=(8,), epochs=30, learning_rate=0.01, random_state=0)
FEW = dict(max_rules=3, n_synthetic=1, random_state=0)


@pytest.mark.parametrize("est,expected_failures", [
    pytest.param(PedagogicalRuleExtractor(max_rules=3, random_state=0), {}, id="P-from-y"),
    pytest.param(PedagogicalRuleExtractor(MLPClassifier(**SMALL_NET), **FEW), {}, id="P-net"),
    pytest.param(PedagogicalRuleExtractor(first_feature_logits, **FEW), {
        "check_classifiers_classes": "classes_ are the fitted model's classes, not y's labels",
        "check_classifiers_train": "the rules imitate the fitted model, not y, so their "
                                   "accuracy on y is the model's"}, id="P-fitted-callable"),
    pytest.param(DecompositionalRuleExtractor(**FEW), {}, id="D-default-net"),
    pytest.param(DecompositionalRuleExtractor(MLPClassifier(**SMALL_NET), **FEW), {},
                 id="D-nesy-net"),
    pytest.param(DecompositionalRuleExtractor(
        SkMLP(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.01, random_state=0),
        **FEW), {}, id="D-sklearn-net"),
])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_check_estimator(est, expected_failures):
    # Checks skipped by scikit-learn itself (pandas not installed) are environment skips.
    check_estimator_with(est, expected_failures)


@pytest.mark.parametrize("Extractor", [PedagogicalRuleExtractor, DecompositionalRuleExtractor])
def test_clone_keeps_a_frozen_model_and_refits_an_unfitted_one(nets, Extractor):
    net, Xtr, Xte, ytr, _, _ = nets["iris"]
    bare = Extractor(net, max_rules=4, random_state=0).fit(Xtr)
    frozen = clone(Extractor(FrozenEstimator(net), max_rules=4, random_state=0)).fit(Xtr)
    np.testing.assert_array_equal(frozen.predict(Xte), bare.predict(Xte))
    assert bare.model_ is net and frozen.fidelity(Xte) == bare.fidelity(Xte)
    # clone unfits a bare network: the extractor then trains its own copy on (X, y), the same
    # network as `net` (seeded), and leaves its parameter unfitted
    unfitted = clone(Extractor(net, max_rules=4, random_state=0))
    with pytest.raises(ValueError, match="requires y to be passed"):
        unfitted.fit(Xtr)
    refit = unfitted.fit(Xtr, ytr)
    assert refit.model_ is not refit.model and not hasattr(refit.model, "model_")
    np.testing.assert_array_equal(refit.model_.predict_proba(Xte), net.predict_proba(Xte))
    np.testing.assert_array_equal(refit.predict(Xte), bare.predict(Xte))


def test_decompositional_default_network_and_fixed_width():
    X, y = load_iris(return_X_y=True)
    default = DecompositionalRuleExtractor(max_rules=4, random_state=3).fit(X, y)
    assert isinstance(default.model_, MLPClassifier) and default.model_.activation == "relu"
    explicit = DecompositionalRuleExtractor(MLPClassifier(random_state=3), max_rules=4,
                                            random_state=3).fit(X, y)
    np.testing.assert_array_equal(default.predict(X), explicit.predict(X))
    with pytest.raises(ValueError, match="X: has 3 features, the model takes 4"):
        DecompositionalRuleExtractor(FrozenEstimator(explicit.model_)).fit(X[:, :3])


# ---------------------------------------------------------------------- bad inputs (s10)
@pytest.mark.parametrize("make,exc,match", [
    (lambda: Condition(0, "<=", "a"), TypeError, r"^threshold: expected a number, got str 'a'"),
    (lambda: Condition(0, "<=", None), TypeError, r"^threshold: expected a number"),
    (lambda: Condition("a", "<=", 1), TypeError, r"^feature: expected an integer, got str"),
    (lambda: Condition(True, "<=", 1), TypeError, r"^feature: expected an integer, got bool"),
    (lambda: Condition(1.5, "<=", 1), ValueError, r"^feature: expected an integer, got 1\.5"),
    (lambda: Condition(-1, "<=", 1), ValueError, r"^feature: expected a column index >= 0"),
    (lambda: Rule((), "x", (1.0,)), TypeError, r"^label: expected an integer, got str 'x'"),
    (lambda: Rule((), 0, (1.0, "a")), TypeError, r"^proba\[1\]: expected a number"),
    (lambda: Rule((), 0, 1.0), TypeError, r"^proba: expected a sequence of numbers"),
    (lambda: Rule((), 0, (1.0,), support="3"), TypeError, r"^support: expected an integer"),
    (lambda: Rule((), 0, (1.0,), coverage="a"), TypeError, r"^coverage: expected a number"),
    (lambda: Rule((), 0, (1.0,), precision=None), TypeError, r"^precision: expected a number"),
    (lambda: Rule(("x <= 1",), 0, (1.0,)), TypeError, r"^conditions\[0\]: expected a Condition"),
])
def test_conditions_and_rules_name_the_field_of_a_bad_value(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_conditions_and_rules_take_numpy_and_integral_float_values():
    c = Condition(np.int64(2), ">", np.float32(0.5))
    assert c == Condition(2, ">", 0.5) and type(c.feature) is int and type(c.threshold) is float
    assert Condition(2.0, "<=", 1).feature == 2  # as JSON may give
    r = Rule((c,), np.int64(1), np.array([0.25, 0.75]), np.int32(3), np.float64(0.5), 1)
    assert (r.label, r.proba, r.support, r.coverage, r.precision) == (1, (0.25, 0.75), 3, 0.5,
                                                                       1.0)
    assert type(r.label) is int and type(r.support) is int


def test_load_names_the_file_that_is_not_a_ruleset(tmp_path):
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(binary))}: not a UTF-8 text file"):
        RuleSet.load(binary)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(broken))}: not valid JSON"):
        RuleSet.load(broken)
    other = tmp_path / "other.json"
    other.write_text('{"format": "something else", "version": 1}')
    with pytest.raises(ValueError, match=rf"^{re.escape(str(other))}: malformed RuleSet"):
        RuleSet.load(other)
    with pytest.raises(ValueError, match=r"^rules JSON: malformed RuleSet"):  # not from a file
        RuleSet.from_json(other.read_text())


# ---------------------------------------------------------------------- review fixes (s15)


def test_printed_threshold_is_the_threshold_the_rule_uses():
    # 1.000015 does not survive six significant digits: the text printed "x <= 1.00001", so
    # the row 1.000012 failed the printed rule but matched the real one.
    c = Condition(0, "<=", 1.000015)
    rs = RuleSet([Rule((c,), 1, (0.0, 1.0))], Rule((), 0, (1.0, 0.0)), ["x"],
                 np.array(["no", "yes"]))
    text = rs.to_text().splitlines()[0]
    printed = float(re.search(r"x <= (\S+) THEN", text).group(1))
    assert printed == c.threshold
    for v in (1.00001, 1.000012, 1.000015, 1.000016, 1.00002):
        assert rs.predict([[v]])[0] == ("yes" if v <= printed else "no")
    # short thresholds keep their short form
    assert Condition(1, ">", 2.45).text(["a", "b"]) == "b > 2.45"
    assert Condition(0, "<=", 0.1 + 0.2).text(["a"]) == "a <= 0.30000000000000004"


def test_scores_refuse_labels_of_another_shape():
    rs = random_ruleset(np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((20, 5))
    y = rs.predict(X)
    assert rs.accuracy(X, y) == 1.0 and rs.fidelity(X, y) == 1.0
    # a column of labels used to broadcast to (20, 20) and give a wrong score silently
    with pytest.raises(ValueError, match=r"y: expected labels of shape \(20,\)"):
        rs.accuracy(X, y[:, None])
    with pytest.raises(ValueError, match=r"model_labels: .* got shape \(19,\)"):
        rs.fidelity(X, y[:-1])
    with pytest.raises(ValueError, match=r"y: .* got shape \(19,\)"):
        rs.rule_stats(X, y[:-1])
    with pytest.raises(ValueError, match=r"y: .* got shape \(\)"):
        rs.with_stats(X, y[0])


def test_a_rule_deciding_no_row_predicts_its_own_class_in_predict_proba():
    from nesy.rules.simplify import build_ruleset

    X = np.array([[0.0], [1.0], [2.0]])
    labels = np.array([2, 2, 2])
    rs = build_ruleset([((Condition(0, "<=", 5.0),), 2)], 1, X, labels,
                       np.array(["a", "b", "c"]), ["x"])
    assert rs.default.support == 0 and rs.default.label == 1
    row = [[9.0]]
    assert rs.predict(row)[0] == "b"
    P = rs.predict_proba(row)
    assert rs.classes[np.argmax(P[0])] == "b" and np.isclose(P.sum(), 1.0)
    # rules that decide rows are unchanged: add-one smoothed counts
    assert rs.rules[0].proba == pytest.approx((1 / 6, 1 / 6, 4 / 6))


def test_relu_network_refuses_one_output_and_a_relu_on_the_logits():
    one = Sequential(Dense(4, 5, dtype=np.float64, rng=0), ReLU(),
                     Dense(5, 1, dtype=np.float64, rng=1))
    with pytest.raises(ValueError, match="model: the Sequential has one output"):
        relu_network(one)
    X = load_iris().data
    with pytest.raises(ValueError, match="one output"):
        DecompositionalRuleExtractor(one).fit(X)
    relu_out = Sequential(Dense(4, 5, dtype=np.float64, rng=0), ReLU(),
                          Dense(5, 3, dtype=np.float64, rng=1), ReLU())
    with pytest.raises(TypeError, match="output layer is followed by ReLU"):
        relu_network(relu_out)


def test_feature_names_must_be_a_sequence_of_names():
    X, y = load_iris(return_X_y=True)
    # "abcd" has four characters: it used to become the names a, b, c, d
    with pytest.raises(TypeError, match="feature_names: expected a sequence of names, got str"):
        PedagogicalRuleExtractor().fit(X, y, feature_names="abcd")
    with pytest.raises(TypeError, match="feature_names: expected a sequence of names, got int"):
        PedagogicalRuleExtractor().fit(X, y, feature_names=4)
    with pytest.raises(TypeError, match="feature_names"):
        RuleSet([], Rule((), 0, (1.0,)), "ab", np.array([0]))
    names = np.array(["a", "b", "c", "d"])
    ex = PedagogicalRuleExtractor(max_rules=2, random_state=0).fit(X, y, feature_names=names)
    assert ex.feature_names_ == ["a", "b", "c", "d"]


def test_a_dataframes_column_names_name_the_conditions():
    """Fitted on a DataFrame without ``feature_names``, the rules used ``x0, x1, ...`` although
    scikit-learn had recorded the columns in ``feature_names_in_``; explicit names still win,
    and a refit on an array goes back to ``x0, ...``."""
    pd = pytest.importorskip("pandas")
    d = load_iris()
    cols = ["sepal_len", "sepal_wid", "petal_len", "petal_wid"]
    X = pd.DataFrame(d.data, columns=cols)
    ex = PedagogicalRuleExtractor(max_rules=3, random_state=0).fit(X, d.target)
    assert ex.feature_names_ == cols
    assert any(c in str(ex.ruleset_) for c in cols)
    named = [f"f{i}" for i in range(4)]
    assert PedagogicalRuleExtractor(max_rules=3, random_state=0).fit(
        X, d.target, feature_names=named).feature_names_ == named
    assert ex.fit(d.data, d.target).feature_names_ == ["x0", "x1", "x2", "x3"]


# ---------------------------------------------------------------------- review fixes (s22)
def _iris_model():
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return X, y, LogisticRegression(max_iter=500).fit(X, y)


@pytest.mark.parametrize("kw", [dict(n_synthetic=0), dict(n_synthetic=0.0, sampling_rounds=0),
                                dict(n_synthetic=0, min_leaf_samples=1)])
def test_no_synthetic_rows_asks_the_model_about_no_empty_block(kw):
    """s22 M1: n_synthetic=0 is documented as valid, but the model was asked about a (0, 4)
    block: "Found array with 0 sample(s) ... required by LogisticRegression"."""
    X, _, lr = _iris_model()
    ex = PedagogicalRuleExtractor(lr, max_rules=3, random_state=0, **kw).fit(X)
    assert ex.n_rules_ >= 1 and ex.fidelity(X) > 0.8
    if "sampling_rounds" in kw:
        assert ex.n_queries_ == len(X)


def test_random_state_follows_scikit_learn():
    """s22 M8: random_state="x" failed inside NumPy ("SeedSequence expects int or sequence of
    ints"), naming no argument."""
    X, _, lr = _iris_model()
    for bad in ("x", -1, 1.5, True, [1, 2]):
        with pytest.raises(ValueError, match=r"^random_state: expected None, an int >= 0, a "
                                             r"np.random.RandomState or a np.random.Generator"):
            PedagogicalRuleExtractor(lr, n_synthetic=1, random_state=bad).fit(X)
    fit = lambda rs: PedagogicalRuleExtractor(lr, n_synthetic=1,  # noqa: E731
                                              random_state=rs).fit(X).ruleset_
    assert fit(3) == fit(np.int64(3))
    assert fit(np.random.RandomState(0)) == fit(np.random.RandomState(0))
    assert fit(np.random.default_rng(1)) == fit(np.random.default_rng(1))


def test_rule_set_refuses_complex_rows():
    """s22 M11: RuleSet.predict used the real part of complex X (the extractors refuse it)."""
    rs = random_ruleset(np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((4, 5))
    for method in (rs.predict, rs.apply, rs.predict_proba):
        with pytest.raises(ValueError, match=r"^X: complex data is not supported \(got dtype "
                                             r"complex128\)"):
            method(X + 1j)
    rs.predict(X.astype(np.float32))  # real dtypes are fine


def test_exported_function_names_are_identifiers_and_not_keywords():
    """s22 L6: to_function("class") raised SyntaxError from compile, to_python(3) an
    AttributeError."""
    rs = random_ruleset(np.random.default_rng(0))
    for bad in ("class", "def", "None", "not name", "1x"):
        with pytest.raises(ValueError, match=rf"^name: {re.escape(repr(bad))} is not a Python "
                                             rf"identifier"):
            rs.to_function(bad)
    for bad in (3, None, b"f"):
        with pytest.raises(TypeError, match=r"^name: expected a str"):
            rs.to_python(bad)
    assert rs.to_function("match")([0.0] * 5) == rs.predict([[0.0] * 5])[0]  # soft keyword


@pytest.mark.parametrize("make,match", [
    (lambda: Rule((), 0, (float("nan"), 0.5, 0.5)), r"^proba\[0\]: expected a probability in "
                                                     r"\[0, 1\], got nan"),
    (lambda: Rule((), 0, (-1.0, 2.0, 0.0)), r"^proba\[0\]: expected a probability"),
    (lambda: Rule((), 0, (0.5, 0.6)), r"^proba: expected probabilities summing to 1"),
    (lambda: Rule((), 0, ()), r"^proba: expected probabilities summing to 1"),
    (lambda: Rule((), 0, (1.0,), support=-5), r"^support: expected a count >= 0, got -5"),
    (lambda: Rule((), 0, (1.0,), coverage=float("nan")), r"^coverage: expected a fraction in "
                                                         r"\[0, 1\], got nan"),
    (lambda: Rule((), 0, (1.0,), coverage=1.5), r"^coverage: expected a fraction"),
    (lambda: Rule((), 0, (1.0,), precision=-0.1), r"^precision: expected a fraction"),
])
def test_rule_statistics_are_in_their_ranges(make, match):
    """s22 L7: NaN or negative probabilities were accepted (predict_proba then returned them,
    save failed with "Out of range float values are not JSON compliant"), as were support -5
    and coverage NaN."""
    with pytest.raises(ValueError, match=match):
        make()


def test_rule_statistics_within_rounding_are_accepted():
    p = np.random.default_rng(0).dirichlet(np.ones(7))
    assert Rule((), 0, tuple(p)).proba == tuple(p)
    assert Rule((), 0, (0.1, 0.2, 0.7 + 1e-9), 0, 0.0, 1.0).precision == 1.0


def test_from_dict_refuses_a_classes_dtype_that_would_change_the_labels():
    """s22 L7: "classes_dtype": "<U2" cut the labels to "se", "ve", "vi"."""
    d = random_ruleset(np.random.default_rng(0), classes=("setosa", "versicolor",
                                                          "virginica")).to_dict()
    d = json.loads(json.dumps(d))
    assert RuleSet.from_dict(d).classes.tolist() == ["setosa", "versicolor", "virginica"]
    d["classes_dtype"] = "<U2"
    with pytest.raises(ValueError, match=r"^rules JSON: malformed RuleSet \(ValueError: "
                                         r"classes_dtype '<U2' does not hold the classes "
                                         r"\['setosa', 'versicolor', 'virginica'\] \(they would "
                                         r"become \['se', 've', 'vi'\]\)\)"):
        RuleSet.from_dict(d)
    d["classes_dtype"] = "<U12"  # wider than needed: the same labels
    assert RuleSet.from_dict(d).classes.tolist() == ["setosa", "versicolor", "virginica"]


def test_from_dict_and_load_name_feature_names_and_path(tmp_path):
    """s22 L11 and M8: from_dict(feature_names="abcd") compared the rules' features with
    ['a', 'b', 'c', 'd']; RuleSet.load(None) named no argument."""
    rs = random_ruleset(np.random.default_rng(0), n_features=4)
    d = json.loads(rs.to_json())
    with pytest.raises(TypeError, match=r"^feature_names: expected a sequence of names, got str "
                                        r"'abcd'"):
        RuleSet.from_dict(d, feature_names="abcd")
    assert RuleSet.from_dict(d, feature_names=["f0", "f1", "f2", "f3"]) == rs
    rs.save(tmp_path / "r.json")
    with pytest.raises(TypeError, match=r"^feature_names: expected a sequence"):
        RuleSet.load(tmp_path / "r.json", feature_names="abcd")
    with pytest.raises(TypeError, match=r"^path: expected a file path .* got NoneType None"):
        RuleSet.load(None)
