"""Ordered if-then rule lists: :class:`Condition`, :class:`Rule` and :class:`RuleSet`.

A :class:`RuleSet` is a decision list over the original features: the first rule whose
conditions all hold decides the class; rows no rule covers get the default rule's class. It
predicts with NumPy (one vectorised comparison per condition, over all rows at once), reports
per-rule coverage, precision and support, fidelity to a model and accuracy on labels, and
exports to text, to JSON that loads back into an identical RuleSet, and to a plain Python
function::

    print(ruleset.to_text())
    ruleset.save("rules.json")
    same = RuleSet.load("rules.json", feature_names=names)   # refuses another feature set
    fn = ruleset.to_function()          # fn(row) -> label, no NumPy needed
"""

from __future__ import annotations

import json
import keyword
import numbers
import os
from dataclasses import dataclass, field, replace
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from nesy._io import _fspath, atomic_write, read_text

__all__ = ["Condition", "Rule", "RuleSet", "check_feature_names", "check_rows"]

FORMAT = "nesy.rules.RuleSet"
VERSION = 1
OPS = ("<=", ">")


def _real(name: str, value: Any) -> float:
    """``value`` as a float; TypeError naming ``name`` unless it is a real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    return float(value)


def _whole(name: str, value: Any) -> int:
    """``value`` as an int: an integer, or a float with an integral value (as JSON may give);
    TypeError naming ``name`` for anything else, ValueError for a fractional number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    v = float(value)
    if not (np.isfinite(v) and v == int(v)):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    return int(v)


@dataclass(frozen=True)
class Condition:
    """``x[feature] <= threshold`` (``op="<="``) or ``x[feature] > threshold`` (``op=">"``)."""

    feature: int
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op: expected '<=' or '>', got {self.op!r}")
        feature = _whole("feature", self.feature)
        if feature < 0:
            raise ValueError(f"feature: expected a column index >= 0, got {self.feature!r}")
        threshold = _real("threshold", self.threshold)
        if not np.isfinite(threshold):
            raise ValueError(f"threshold: expected a finite number, got {self.threshold!r}")
        object.__setattr__(self, "feature", feature)
        object.__setattr__(self, "threshold", threshold)

    def mask(self, X: np.ndarray) -> np.ndarray:
        """Boolean ``(n_samples,)``: rows of ``X`` ``(n_samples, n_features)`` that satisfy it."""
        col = X[:, self.feature]
        return col <= self.threshold if self.op == "<=" else col > self.threshold

    def text(self, names: Sequence[str]) -> str:
        """``"petal length (cm) <= 2.45"``: six significant digits when they give back the
        threshold exactly, else its shortest exact form (``1.000015``), so that the printed
        rule and :meth:`mask` agree on every value."""
        t = f"{self.threshold:.6g}"
        if float(t) != self.threshold:
            t = repr(self.threshold)
        return f"{names[self.feature]} {self.op} {t}"


@dataclass(frozen=True)
class Rule:
    """``IF all conditions THEN classes[label]``, with the statistics of the data it was
    built on.

    Attributes
    ----------
    conditions : tuple of Condition
        Empty for the default rule.
    label : int
        Index into :attr:`RuleSet.classes`.
    proba : tuple of float
        Class probabilities the rule predicts (``predict_proba``): each in [0, 1], summing to
        one (within 1e-6).
    support : int
        Rows the rule decided (the first rule that covers them), in the fit data: >= 0.
    coverage : float
        ``support / n_rows``, in [0, 1].
    precision : float
        Fraction of those rows whose reference label (the model's, when extracted from one) is
        ``label``, in [0, 1].

    Values of the wrong kind are a TypeError, out of range (NaN included) a ValueError, each
    naming the field.
    """

    conditions: Tuple[Condition, ...]
    label: int
    proba: Tuple[float, ...]
    support: int = 0
    coverage: float = 0.0
    precision: float = 0.0

    def __post_init__(self) -> None:
        conditions = tuple(self.conditions)
        for i, c in enumerate(conditions):
            if not isinstance(c, Condition):
                raise TypeError(f"conditions[{i}]: expected a Condition, got "
                                f"{type(c).__name__} {c!r}")
        object.__setattr__(self, "conditions", conditions)
        if isinstance(self.proba, (str, bytes)) or not hasattr(self.proba, "__iter__"):
            raise TypeError(f"proba: expected a sequence of numbers, got {self.proba!r}")
        proba = tuple(_real(f"proba[{i}]", p) for i, p in enumerate(self.proba))
        for i, p in enumerate(proba):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"proba[{i}]: expected a probability in [0, 1], got {p!r}")
        if abs(sum(proba) - 1.0) > 1e-6:
            raise ValueError(f"proba: expected probabilities summing to 1, got {list(proba)} "
                             f"(sum {sum(proba)!r})")
        object.__setattr__(self, "proba", proba)
        object.__setattr__(self, "label", _whole("label", self.label))
        support = _whole("support", self.support)
        if support < 0:
            raise ValueError(f"support: expected a count >= 0, got {support}")
        object.__setattr__(self, "support", support)
        for name in ("coverage", "precision"):
            v = _real(name, getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: expected a fraction in [0, 1], got {v!r}")
            object.__setattr__(self, name, v)

    def __len__(self) -> int:
        return len(self.conditions)


def check_feature_names(feature_names: Any, n_features: int) -> List[str]:
    """``feature_names`` as a list of ``n_features`` unique strings (``x0, x1, ...`` when
    None); TypeError for a single string or a non-sequence, ValueError for a wrong count."""
    if feature_names is None:
        return [f"x{i}" for i in range(n_features)]
    if isinstance(feature_names, (str, bytes)) or not hasattr(feature_names, "__iter__"):
        # a single string would otherwise be split into one-letter names
        raise TypeError(f"feature_names: expected a sequence of names, got "
                        f"{type(feature_names).__name__} {feature_names!r}")
    names = [str(n) for n in feature_names]
    if len(names) != n_features:
        raise ValueError(f"feature_names: {len(names)} names for {n_features} features")
    if len(set(names)) != len(names):
        raise ValueError("feature_names: names must be unique")
    return names


def check_rows(X: Any, n_features: int, name: str = "X") -> np.ndarray:
    """``X`` as a finite float64 array ``(n_samples, n_features)``; ValueError naming ``name``
    (complex numbers too, as scikit-learn refuses them: casting would drop the imaginary
    part)."""
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{name}: expected numbers, got dtype {X.dtype}")
    if X.dtype.kind == "c":
        raise ValueError(f"{name}: complex data is not supported (got dtype {X.dtype})")
    X = X.astype(np.float64, copy=False)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected (n_samples, n_features), got shape {X.shape}")
    if X.shape[1] != n_features:
        raise ValueError(f"{name}: has {X.shape[1]} features, the rules use {n_features}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name}: contains NaN or infinity")
    return X


def _labels(y: Any, n_samples: int, name: str) -> np.ndarray:
    """``y`` as labels ``(n_samples,)``; ValueError naming ``name`` for another shape (a column
    ``(n, 1)`` would otherwise broadcast against the predictions to ``(n, n)``)."""
    y = np.asarray(y)
    if y.shape != (n_samples,):
        raise ValueError(f"{name}: expected labels of shape ({n_samples},) for the "
                         f"{n_samples} rows of X, got shape {y.shape}")
    return y


#: Rows per block in :func:`apply_rules`: a block of a 50-feature float64 matrix (3 MiB) stays
#: in cache while its columns are read (1e6 rows x 50 rules: 2x faster than whole columns).
CHUNK_ROWS = 8192


def apply_rules(rules: Sequence[Sequence[Condition]], X: np.ndarray,
                chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Index of the first rule (a sequence of conditions) covering each row of ``X``, or
    ``len(rules)`` when none does; ``(n_samples,)`` intp.

    Rows are processed in blocks of ``chunk_rows``. Within a block rules are visited last to
    first, each writing its index where it holds, so the first covering rule is the last write
    (no "still open" mask is needed); each distinct condition is evaluated once per block.
    """
    n = X.shape[0]
    fired = np.empty(n, dtype=np.intp)
    for start in range(0, n, max(int(chunk_rows), 1)):
        block = X[start:start + chunk_rows]
        fired[start:start + len(block)] = _apply_block(rules, block)
    return fired


def _apply_block(rules: Sequence[Sequence[Condition]], X: np.ndarray) -> np.ndarray:
    fired = np.full(X.shape[0], len(rules), dtype=np.intp)
    cache: Dict[Condition, np.ndarray] = {}
    columns: Dict[int, np.ndarray] = {}
    for r in range(len(rules) - 1, -1, -1):
        m: Optional[np.ndarray] = None
        for c in rules[r]:
            cm = cache.get(c)
            if cm is None:
                col = columns.get(c.feature)
                if col is None:
                    col = columns[c.feature] = np.ascontiguousarray(X[:, c.feature])
                cm = cache[c] = col <= c.threshold if c.op == "<=" else col > c.threshold
            m = cm.copy() if m is None else np.logical_and(m, cm, out=m)
        if m is None:
            fired.fill(r)
        else:
            np.putmask(fired, m, r)
    return fired


@dataclass(eq=False)
class RuleSet:
    """An ordered rule list with a default rule.

    Parameters
    ----------
    rules : list of Rule
    default : Rule
        Applies when no rule does (no conditions).
    feature_names : list of str
        One per column of ``X``.
    classes : ndarray of shape (n_classes,)
        Labels; rules predict ``classes[rule.label]``.
    metadata : dict, optional
        Free-form, JSON-serialisable notes on how the rules were made (the extractors store
        ``method`` and the tree size); kept by :meth:`with_stats`, saved in the JSON and
        compared by ``==``.
    """

    rules: List[Rule]
    default: Rule
    feature_names: List[str]
    classes: np.ndarray
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rules = list(self.rules)
        self.classes = np.asarray(self.classes)
        self.feature_names = check_feature_names(self.feature_names, len(self.feature_names))
        k = len(self.classes)
        for i, rule in enumerate([*self.rules, self.default]):
            where = "default" if i == len(self.rules) else f"rules[{i}]"
            if not 0 <= rule.label < k:
                raise ValueError(f"{where}: label {rule.label} out of range for {k} classes")
            if len(rule.proba) != k:
                raise ValueError(f"{where}: proba has {len(rule.proba)} entries, not {k}")
            for c in rule.conditions:
                if c.feature >= self.n_features:
                    raise ValueError(f"{where}: feature index {c.feature} out of range for "
                                     f"{self.n_features} features")
        if self.default.conditions:
            raise ValueError("default: the default rule has no conditions")

    # ------------------------------------------------------------------ summary
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_rules(self) -> int:
        """Rules besides the default rule."""
        return len(self.rules)

    @property
    def mean_rule_length(self) -> float:
        """Mean number of conditions per rule (0 for a default-only rule set)."""
        return float(np.mean([len(r) for r in self.rules])) if self.rules else 0.0

    # ------------------------------------------------------------------ prediction
    def apply(self, X: Any) -> np.ndarray:
        """Index of the rule deciding each row, ``(n_samples,)``; ``n_rules`` for the default."""
        X = check_rows(X, self.n_features)
        return apply_rules([r.conditions for r in self.rules], X)

    def predict(self, X: Any) -> np.ndarray:
        """Labels ``(n_samples,)`` for ``X`` ``(n_samples, n_features)``."""
        labels = np.array([r.label for r in [*self.rules, self.default]], dtype=np.intp)
        return self.classes[labels[self.apply(X)]]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities ``(n_samples, n_classes)`` of the deciding rules."""
        table = np.array([r.proba for r in [*self.rules, self.default]], dtype=np.float64)
        return table[self.apply(X)]

    def fidelity(self, X: Any, model_labels: Any) -> float:
        """Agreement with a model's labels ``(n_samples,)`` on ``X``."""
        pred = self.predict(X)
        return float(np.mean(pred == _labels(model_labels, len(pred), "model_labels")))

    def accuracy(self, X: Any, y: Any) -> float:
        """Accuracy against true labels ``y`` ``(n_samples,)``."""
        pred = self.predict(X)
        return float(np.mean(pred == _labels(y, len(pred), "y")))

    def rule_stats(self, X: Any, y: Any) -> List[Dict[str, Any]]:
        """``support``, ``coverage`` and ``precision`` of every rule and then the default rule
        on ``(X, y)`` (``y``: labels, e.g. the model's, to measure precision against)."""
        fired = self.apply(X)
        y = _labels(y, len(fired), "y")
        out = []
        for i, rule in enumerate([*self.rules, self.default]):
            m = fired == i
            sup = int(m.sum())
            prec = float(np.mean(y[m] == self.classes[rule.label])) if sup else 0.0
            out.append({"support": sup, "coverage": sup / max(len(fired), 1),
                        "precision": prec})
        return out

    def with_stats(self, X: Any, y: Any) -> RuleSet:
        """A copy whose rules carry :meth:`rule_stats` of ``(X, y)``."""
        stats = self.rule_stats(X, y)
        rules = [replace(r, **s) for r, s in zip([*self.rules, self.default], stats)]
        return RuleSet(rules[:-1], rules[-1], list(self.feature_names), self.classes.copy(),
                       dict(self.metadata))

    # ------------------------------------------------------------------ text
    def to_text(self) -> str:
        """Readable rule list, one ``IF ... THEN ...`` line per rule, then the default."""
        lines = []
        for i, r in enumerate(self.rules):
            cond = " AND ".join(c.text(self.feature_names) for c in r.conditions) or "TRUE"
            lines.append(f"{'IF' if i == 0 else 'ELSE IF'} {cond} THEN {self.classes[r.label]}"
                         f"  [support={r.support}, precision={r.precision:.3f}]")
        d = self.default
        lines.append(f"{'ELSE' if self.rules else 'ALWAYS'} {self.classes[d.label]}"
                     f"  [support={d.support}, precision={d.precision:.3f}]")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return (f"RuleSet(n_rules={self.n_rules}, mean_rule_length="
                f"{self.mean_rule_length:.2f}, classes={self.classes.tolist()})")

    # ------------------------------------------------------------------ Python export
    def to_python(self, name: str = "predict_rule") -> str:
        """Source of a plain Python function ``name(x) -> label`` for one row ``x`` (a
        sequence of ``n_features`` numbers), equivalent to :meth:`predict`. ``name``: a
        Python identifier that is not a keyword (TypeError for a non-string, ValueError
        otherwise)."""
        if not isinstance(name, str):
            raise TypeError(f"name: expected a str, got {type(name).__name__} {name!r}")
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"name: {name!r} is not a Python identifier (or is a keyword)")
        labels = self.classes.tolist()
        lines = [f"def {name}(x):",
                 f'    """{self.n_rules} rules over {self.n_features} features (nesy.rules)."""']
        for r in self.rules:
            if not r.conditions:
                lines.append(f"    return {labels[r.label]!r}")
                return "\n".join(lines) + "\n"
            cond = " and ".join(f"x[{c.feature}] {c.op} {c.threshold!r}" for c in r.conditions)
            # Names as literals: a name holding a newline must not end the comment (the text
            # is compiled by to_function).
            names = ", ".join(repr(self.feature_names[c.feature]) for c in r.conditions)
            lines.append(f"    if {cond}:  # {names}")
            lines.append(f"        return {labels[r.label]!r}")
        lines.append(f"    return {labels[self.default.label]!r}")
        return "\n".join(lines) + "\n"

    def to_function(self, name: str = "predict_rule") -> Callable[[Sequence[float]], Any]:
        """:meth:`to_python` compiled: a function of one row returning its label."""
        namespace: Dict[str, Any] = {}
        exec(compile(self.to_python(name), f"<nesy.rules {name}>", "exec"), namespace)
        return namespace[name]

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (floats stored exactly, conditions name their feature)."""
        def rule(r: Rule) -> Dict[str, Any]:
            return {"if": [{"feature": self.feature_names[c.feature], "index": c.feature,
                            "op": c.op, "threshold": c.threshold} for c in r.conditions],
                    "then": r.label, "proba": list(r.proba), "support": r.support,
                    "coverage": r.coverage, "precision": r.precision}
        return {"format": FORMAT, "version": VERSION, "feature_names": self.feature_names,
                "classes": self.classes.tolist(), "classes_dtype": self.classes.dtype.str,
                "rules": [rule(r) for r in self.rules], "default": rule(self.default),
                "metadata": self.metadata}

    def to_json(self, indent: Optional[int] = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Any, feature_names: Optional[Sequence[str]] = None, *,
                  where: str = "rules JSON") -> RuleSet:
        """Inverse of :meth:`to_dict`; with ``feature_names``, refuse rules over other
        features. ValueError on anything malformed (its message starts with ``where``)."""
        try:
            if d.get("format") != FORMAT or d.get("version") != VERSION:
                raise ValueError(f"not a {FORMAT} version {VERSION} document")
            names = [str(n) for n in d["feature_names"]]

            def rule(r: Dict[str, Any]) -> Rule:
                conds = []
                for c in r["if"]:
                    if names[c["index"]] != c["feature"]:
                        raise ValueError(f"condition on {c['feature']!r} has index "
                                         f"{c['index']}, which names {names[c['index']]!r}")
                    conds.append(Condition(c["index"], c["op"], c["threshold"]))
                return Rule(tuple(conds), r["then"], tuple(r["proba"]), r["support"],
                            r["coverage"], r["precision"])

            classes = np.asarray(d["classes"], dtype=np.dtype(d["classes_dtype"]))
            if classes.tolist() != list(d["classes"]):  # "<U2" would cut "setosa" to "se"
                raise ValueError(f"classes_dtype {d['classes_dtype']!r} does not hold the "
                                 f"classes {list(d['classes'])} (they would become "
                                 f"{classes.tolist()})")
            out = cls([rule(r) for r in d["rules"]], rule(d["default"]), names, classes,
                      dict(d.get("metadata", {})))
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
            raise ValueError(f"{where}: malformed RuleSet ({type(exc).__name__}: {exc})") \
                from exc
        if feature_names is not None and (isinstance(feature_names, (str, bytes))
                                          or not hasattr(feature_names, "__iter__")):
            # a single string would otherwise be compared as its characters
            raise TypeError(f"feature_names: expected a sequence of names, got "
                            f"{type(feature_names).__name__} {feature_names!r}")
        if feature_names is not None and list(map(str, feature_names)) != names:
            raise ValueError(f"feature_names: the rules were made for features {names}, "
                             f"not {list(feature_names)}")
        return out

    @classmethod
    def from_json(cls, s: str, feature_names: Optional[Sequence[str]] = None) -> RuleSet:
        """Parse :meth:`to_json` output (see :meth:`from_dict`)."""
        try:
            d = json.loads(s)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"rules JSON: not valid JSON ({exc})") from exc
        return cls.from_dict(d, feature_names)

    def save(self, path: os.PathLike[str] | str) -> None:
        """Write :meth:`to_json` to ``path`` atomically (temporary file, then rename)."""
        text = self.to_json()

        def write(fh: IO[Any]) -> None:
            fh.write(text)

        atomic_write(path, write, text=True, suffix=".json")

    @classmethod
    def load(cls, path: os.PathLike[str] | str,
             feature_names: Optional[Sequence[str]] = None) -> RuleSet:
        """Read a file written by :meth:`save` (see :meth:`from_dict`).

        Raises
        ------
        OSError
            The file cannot be read.
        ValueError
            It is not UTF-8 text, not JSON, or not a RuleSet (the message names the file), or
            its rules use other features than ``feature_names``.
        """
        name = _fspath(path)  # a TypeError naming ``path`` for what is not a path
        text = read_text(name)
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}: not valid JSON ({exc})") from None
        return cls.from_dict(d, feature_names, where=name)

    # ------------------------------------------------------------------ equality
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RuleSet):
            return NotImplemented
        return (self.rules == other.rules and self.default == other.default
                and self.feature_names == other.feature_names
                and self.classes.dtype == other.classes.dtype
                and np.array_equal(self.classes, other.classes)
                and self.metadata == other.metadata)
