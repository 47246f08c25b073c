"""Readable text and JSON formats of knowledge-graph rule sets (rules mined by ``nesy.rules.kg``).

A rule is a row of 11 int64 ``(kind, head, head_inverse, constant, end, r1, i1, r2, i2, r3,
i3)`` (see ``rust/core/src/rules/rule.rs`` and :mod:`nesy.rules.kg`): ``kind 0`` a closed
path, ``kind 1`` an acyclic rule whose body ends at a constant (AnyBURL's AC1), ``kind 2`` an
acyclic rule with a dangling end (AC2).
Its text names relations and entities by their labels::

    hypernym(X,Y) <- hypernym(X,A), similar_to(A,Y)        closed, variables X, A, B, Y
    hypernym(X,Y) <- hypernym(A,X), similar_to(A,Y)        first atom inverse
    lives_in(X,"paris") <- works_at(X,"louvre")            AC1, head_inverse 0
    born_in("paris",X) <- parent(X,A), lives_in(A,"rome")  AC1, head_inverse 1
    lives_in(X,"paris") <- works_at(X,A)                   AC2, dangling end A (B for 2 atoms)

Constants are always JSON strings (``json.dumps``), so any label reads back unambiguously;
relation names are written bare when they match ``[A-Za-z0-9_.\\-/:]+`` and as JSON strings
otherwise. :func:`parse_rule` reads this text back (any distinct uppercase variable names in
the same shapes are accepted, whitespace is free).

Files (always UTF-8, written atomically; the reader tells them apart by their first character,
``{`` for JSON):

* text: a ``#`` header line, then one rule a line,
  ``conf<TAB>support<TAB>body_pairs<TAB>pca_conf<TAB>head_coverage<TAB>rule``
  (``conf`` the standard confidence); ``#`` comments and blank lines are ignored on reading.
  The text format does not store ``pca_body_pairs`` and ``head_facts``: :func:`load_rules`
  recovers them as ``support / pca_conf`` and ``support / head_coverage`` (rounded), and
  gives -1 when ``support`` is 0 (not recoverable).
* JSON: ``{"format": "nesy-kg-rules", "version": 1, "relations": [...], "rules": [{"rule":
  text, "row": [...], "support": ..., ...}, ...]}``, one rule a line, every metric kept
  bit-exact.

Both may also keep how the rules predict (``settings``: ``pc``, ``aggregation``,
``exclude_query``, see :class:`nesy.rules.kg.KGRuleSet`): the text format as a second header
line ``# nesy-kg-rules settings: {...}`` (a JSON object), JSON as a ``"settings"`` object after
``"version"``. Readers of files without them, and of older versions (which ignore ``#`` lines
and unknown keys), are unaffected; :func:`read_rule_file` returns them.
"""

from __future__ import annotations

import decimal
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import IO, Any, Optional, Union

import numpy as np

from nesy._io import _fspath, atomic_write, read_text
from nesy.datasets.kg import UnknownLabelError

__all__ = ["FORMAT", "VERSION", "METRIC_KEYS", "SETTINGS", "rule_text", "parse_rule",
           "save_rules", "load_rules", "read_rule_file"]

FORMAT = "nesy-kg-rules"
VERSION = 1
COUNT_KEYS = ("support", "body_pairs", "pca_body_pairs", "head_facts")
RATIO_KEYS = ("head_coverage", "std_confidence", "pca_confidence")
#: The metrics of a rule set, in the order of ``nesy.rules.kg`` (counts int64, ratios float64).
METRIC_KEYS = COUNT_KEYS + RATIO_KEYS
#: Columns of the text format before the rule, as metric keys.
TEXT_COLUMNS = ("std_confidence", "support", "body_pairs", "pca_confidence", "head_coverage")
TEXT_HEADER = ("# nesy-kg-rules v1: conf\tsupport\tbody_pairs\tpca_conf\thead_coverage\trule "
               "(conf = standard confidence)")
#: The second header line of a text file that keeps the settings (a JSON object follows).
SETTINGS_PREFIX = "# nesy-kg-rules settings: "
#: Settings a file may keep, and the aggregations ``"aggregation"`` may name.
SETTINGS = ("pc", "aggregation", "exclude_query")
AGGREGATIONS = ("maxplus", "max_noisy_or", "noisy_or")
ROW_WIDTH = 11
MAX_BODY = {0: 3, 1: 2, 2: 2}

_BARE = re.compile(r"[A-Za-z0-9_.\-/:]+")
_VARIABLE = re.compile(r"[A-Z][A-Za-z0-9_]*")
_ESCAPE = re.compile("[\x85\u2028\u2029\ud800-\udfff]")
_COUNT = re.compile(r"[0-9]+")
#: The largest count a rule file may hold: counts are read into int64 arrays.
MAX_COUNT = int(np.iinfo(np.int64).max)

Labels = Union[Sequence[str], Mapping[str, int]]
PathLike = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------- one rule
def _json(value: Any) -> str:
    """``json.dumps`` keeping non-ASCII text readable, but escaping what would break a line
    (U+0085, U+2028, U+2029) or cannot be written as UTF-8 (lone surrogates); those characters
    occur only inside JSON strings, where the escapes read back as the same characters."""
    text = json.dumps(value, ensure_ascii=False)
    return _ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _quote(label: str) -> str:
    return _json(label)


def _relation_name(label: str) -> str:
    return label if _BARE.fullmatch(label) else _quote(label)


def _label(labels: Optional[Sequence[str]], index: int, kind: str) -> str:
    if labels is None:
        raise ValueError(f"{kind} labels are needed to write rule constants ({kind} id {index})")
    if isinstance(labels, Mapping):
        raise TypeError(f"{kind} labels: expected the labels by id (a sequence), got a mapping")
    if not 0 <= index < len(labels):
        raise IndexError(f"{kind} id {index} out of range [0, {len(labels)})")
    label = labels[index]
    if not isinstance(label, str):
        raise TypeError(f"{kind} label {index}: expected str, got {type(label).__name__}")
    return label


def _check_row(row: Any) -> tuple[int, int, int, int, int, list[tuple[int, int]]]:
    """Validate the shape of one rule row -> ``(kind, head, hi, constant, end, body)``."""
    r = np.asarray(row)
    if r.shape != (ROW_WIDTH,) or r.dtype == bool or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"rule row: expected {ROW_WIDTH} integers, got {r.tolist()!r}")
    kind, head, hi, c, d = (int(v) for v in r[:5])
    atoms = [(int(r[5 + 2 * k]), int(r[6 + 2 * k])) for k in range(3)]
    body = [a for a in atoms if a[0] >= 0]
    what = None
    if kind not in MAX_BODY:
        what = f"kind {kind} is not 0 (closed), 1 (AC1) or 2 (AC2)"
    elif atoms != body + [(-1, 0)] * (3 - len(body)) or not 1 <= len(body) <= MAX_BODY[kind]:
        what = (f"the body must be 1 to {MAX_BODY[kind]} atoms (r >= 0, inverse 0/1) followed "
                "by unused atoms (-1, 0)")
    elif any(inv not in (0, 1) for _, inv in body) or hi not in (0, 1) or head < 0:
        what = "head and inverse flags must be relation ids and 0/1"
    elif kind == 0 and (hi, c, d) != (0, -1, -1):
        what = "a closed rule has head_inverse 0 and constant = end = -1"
    elif kind > 0 and c < 0:
        what = "an acyclic rule needs a constant >= 0"
    elif kind == 1 and d < 0:
        what = "an AC1 rule needs an end constant >= 0"
    elif kind == 2 and d != -1:
        what = "an AC2 rule has end = -1"
    if what is not None:
        raise ValueError(f"rule row {r.tolist()}: {what}")
    return kind, head, hi, c, d, body


def rule_text(row: Any, relations: Sequence[str],
              entities: Optional[Sequence[str]] = None) -> str:
    """The readable text of one rule row.

    Parameters
    ----------
    row : sequence of int, shape (11,)
    relations : sequence of str
        ``relations[i]`` is the label of relation ``i``.
    entities : sequence of str, optional
        ``entities[i]`` is the label of entity ``i`` (needed for acyclic rules only).

    Returns
    -------
    str
        E.g. ``hypernym(X,Y) <- hypernym(X,A), similar_to(A,Y)``.

    Raises
    ------
    ValueError
        The row does not follow the rule-row layout.
    IndexError
        A relation or entity id outside the label lists.
    """
    kind, head, hi, c, d, body = _check_row(row)
    name = [_relation_name(_label(relations, r, "relation")) for r in [head] + [a for a, _ in body]]
    inner = ["A", "B"][: len(body) - 1]
    if kind == 0:
        terms = ["X", *inner, "Y"]
        head_args = "X,Y"
    else:
        const = _quote(_label(entities, c, "entity"))
        end = _quote(_label(entities, d, "entity")) if kind == 1 else ["A", "B"][len(body) - 1]
        terms = ["X", *inner, end]
        head_args = f"{const},X" if hi else f"X,{const}"
    atoms = []
    for k, (_, inv) in enumerate(body):
        a, b = terms[k], terms[k + 1]
        atoms.append(f"{name[k + 1]}({b},{a})" if inv else f"{name[k + 1]}({a},{b})")
    return f"{name[0]}({head_args}) <- " + ", ".join(atoms)


class _Parser:
    """Recursive-descent reader of ``atom <- atom, atom, ...``; terms are ``("var", name)`` or
    ``("const", label)``."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"rule {self.text!r}: {what} (column {self.pos + 1})")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.pos)

    def expect(self, token: str, what: str) -> None:
        if not self.peek(token):
            raise self.fail(f"expected {token!r} {what}")
        self.pos += len(token)

    def string(self) -> str:
        try:
            value, end = json.JSONDecoder().raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise self.fail(f"bad quoted label ({exc.msg})") from None
        self.pos = end
        return str(value)

    def relation(self) -> str:
        self.skip()
        if self.peek('"'):
            return self.string()
        match = _BARE.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a relation name")
        self.pos = match.end()
        return match.group()

    def term(self) -> tuple[str, str]:
        self.skip()
        if self.peek('"'):
            return ("const", self.string())
        match = _VARIABLE.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return ("var", match.group())
        bare = _BARE.match(self.text, self.pos)
        if bare:
            raise self.fail(f"{bare.group()!r} is neither a variable (uppercase first letter) "
                            "nor a JSON-quoted constant")
        raise self.fail("expected a variable or a quoted constant")

    def atom(self) -> tuple[str, tuple[str, str], tuple[str, str], str]:
        self.skip()
        start = self.pos
        rel = self.relation()
        self.expect("(", "after the relation name")
        a = self.term()
        self.expect(",", "between the two arguments")
        b = self.term()
        self.expect(")", "after the second argument")
        return rel, a, b, self.text[start:self.pos]

    def rule(self) -> tuple[Any, list[Any]]:
        head = self.atom()
        self.expect("<-", "between the head and the body")
        body = [self.atom()]
        while self.peek(","):
            self.pos += 1
            body.append(self.atom())
        self.skip()
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the last body atom")
        return head, body


def _id_map(labels: Labels) -> Mapping[str, int]:
    if isinstance(labels, Mapping):
        return labels
    return {lab: i for i, lab in enumerate(labels)}


def _lookup(ids: Optional[Mapping[str, int]], label: str, kind: str, text: str) -> int:
    if ids is None:
        raise ValueError(f"rule {text!r}: entity labels are needed to read the constant "
                         f"{label!r}")
    if label not in ids:
        raise UnknownLabelError(f"unknown {kind} label {label!r} in rule {text!r}")
    return int(ids[label])


def parse_rule(text: str, relation_ids: Labels, entity_ids: Optional[Labels] = None
               ) -> list[int]:
    """The rule row of a rule text written by :func:`rule_text`.

    Parameters
    ----------
    text : str
    relation_ids, entity_ids : mapping of str to int, or sequence of str
        Label -> id (a sequence ``labels`` stands for ``{labels[i]: i}``). ``entity_ids`` is
        needed only for acyclic rules.

    Returns
    -------
    list of int, length 11

    Raises
    ------
    ValueError
        Malformed text, or a body that is not a path from the head's ``X`` (to its ``Y`` for a
        closed rule), quoting the text.
    nesy.datasets.UnknownLabelError
        A relation or entity label not in the vocabulary.
    """
    if not isinstance(text, str):
        raise TypeError(f"rule text: expected str, got {type(text).__name__}")
    (head_rel, h1, h2, _), body = _Parser(text).rule()

    def fail(what: str) -> ValueError:
        return ValueError(f"rule {text!r}: {what}")

    if h1[0] == "const" and h2[0] == "const":
        raise fail("the head needs a variable (both arguments are constants)")
    if h1 == h2:
        raise fail(f"the head's two arguments are the same variable {h1[1]}")
    kind = 0 if h1[0] == h2[0] == "var" else -1
    hi = 1 if h1[0] == "const" else 0
    x = h2 if hi else h1
    if len(body) > (3 if kind == 0 else 2):
        shape = "a closed rule has 1 to 3" if kind == 0 else "an acyclic rule has 1 or 2"
        raise fail(f"{shape} body atoms, got {len(body)}")
    seen = {x, h2} if kind == 0 else {x}
    current, atoms, end = x, [], None
    for k, (rel, a, b, atom_text) in enumerate(body):
        if a == current and b == current:
            raise fail(f"atom {k + 1} {atom_text} binds {current[1]} twice")
        if current not in (a, b):
            raise fail(f"atom {k + 1} {atom_text} does not continue the path from {current[1]}")
        inv = 0 if a == current else 1
        nxt = b if inv == 0 else a
        atoms.append((rel, inv))
        last = k == len(body) - 1
        if last and kind == 0:
            if nxt != h2:
                raise fail(f"the body path must end at the head's {h2[1]}, not at {nxt[1]}")
        elif last and nxt[0] == "const":
            kind, end = 1, nxt[1]
        elif nxt[0] != "var":
            raise fail(f"atom {k + 1} {atom_text}: constants appear only at the end of the "
                       "body of an acyclic rule")
        elif nxt in seen:
            raise fail(f"atom {k + 1} {atom_text}: variable {nxt[1]} is already used (a body "
                       "is a path through fresh variables)")
        else:
            kind = 2 if last else kind
        seen.add(nxt)
        current = nxt
    rel_ids = _id_map(relation_ids)
    ent_ids = None if entity_ids is None else _id_map(entity_ids)
    row = [kind, _lookup(rel_ids, head_rel, "relation", text), hi, -1, -1]
    if kind > 0:
        row[3] = _lookup(ent_ids, (h1 if hi else h2)[1], "entity", text)
    if kind == 1:
        row[4] = _lookup(ent_ids, str(end), "entity", text)
    for rel, inv in atoms:
        row += [_lookup(rel_ids, rel, "relation", text), inv]
    return row + [-1, 0] * (3 - len(atoms))


# --------------------------------------------------------------------------- many rules
# The texts rule_text writes, exactly (X, A, B, Y the only variables, no free whitespace):
# read by one regular expression, their labels looked up once each. Anything else, and any
# failure, goes to parse_rule, which gives the same row (or its error).
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_ATOM = rf'([A-Za-z0-9_.\-/:]+|{_QUOTED})\(([XYAB]|{_QUOTED}),([XYAB]|{_QUOTED})\)'
_CANONICAL = re.compile(rf"{_ATOM} <- {_ATOM}(?:, {_ATOM})?(?:, {_ATOM})?")


class _Reader:
    """:func:`parse_rule` with one vocabulary for many rule texts: the texts :func:`rule_text`
    writes are read without the general parser, each label token looked up once."""

    def __init__(self, relation_ids: Labels, entity_ids: Optional[Labels]) -> None:
        self.relation_ids = _id_map(relation_ids)
        self.entity_ids = None if entity_ids is None else _id_map(entity_ids)
        self.tokens: dict[tuple[bool, str], int] = {}

    def _id(self, token: str, entity: bool) -> int:
        """The id of a relation or (quoted) constant token; KeyError when it has none."""
        key = (entity, token)
        found = self.tokens.get(key)
        if found is None:
            ids = self.entity_ids if entity else self.relation_ids
            if ids is None:
                raise KeyError(token)
            label = json.loads(token) if token[0] == '"' else token
            found = self.tokens[key] = int(ids[label])
        return found

    def _fast(self, text: str) -> Optional[list[int]]:
        match = _CANONICAL.fullmatch(text)
        if match is None:
            return None
        g = match.groups()
        head, a, b = g[0:3]
        atoms = [g[i:i + 3] for i in range(3, 12, 3) if g[i] is not None]
        n = len(atoms)
        closed = (a, b) == ("X", "Y")
        if closed:
            hi, const = 0, None
        elif a == "X" and b[0] == '"':
            hi, const = 0, b
        elif b == "X" and a[0] == '"':
            hi, const = 1, a
        else:
            return None
        if n > (3 if closed else 2):
            return None
        terms = ["X", "A", "B"][:n] + ["Y"]
        if not closed:  # the end: the term of the last atom that does not continue the path
            _, p, q = atoms[-1]
            if p == q or terms[n - 1] not in (p, q):
                return None
            terms[n] = q if p == terms[n - 1] else p
        kind = 0 if closed else 1 if terms[n][0] == '"' else 2
        if kind == 2 and terms[n] != "AB"[n - 1]:
            return None
        row = [kind, self._id(head, False), hi, -1, -1]
        if kind:
            row[3] = self._id(const, True)
        if kind == 1:
            row[4] = self._id(terms[n], True)
        for k, (rel, p, q) in enumerate(atoms):
            if (p, q) == (terms[k], terms[k + 1]):
                inv = 0
            elif (q, p) == (terms[k], terms[k + 1]):
                inv = 1
            else:
                return None
            row += [self._id(rel, False), inv]
        return row + [-1, 0] * (3 - n)

    def row(self, text: str) -> list[int]:
        """``parse_rule(text, relation_ids, entity_ids)``."""
        if isinstance(text, str):
            try:
                row = self._fast(text)
            except (KeyError, ValueError, TypeError):  # unknown labels, bad quoting
                row = None
            if row is not None:
                return row
        return parse_rule(text, self.relation_ids, self.entity_ids)


def _valid_rows(r: np.ndarray) -> bool:
    """Whether every row of the int array ``r (m, 11)`` passes :func:`_check_row` (which
    names the first that does not)."""
    kind, head, hi, c, d = r[:, :5].T
    rel, inv = r[:, 5::2], r[:, 6::2]
    used = rel >= 0
    n = used.sum(axis=1)
    prefix = used[:, 0] & (used[:, 1] | ~used[:, 2])  # the used atoms come first
    unused = np.all(used | ((rel == -1) & (inv == 0)), axis=1)
    flags = np.all(~used | (inv == 0) | (inv == 1), axis=1) & ((hi == 0) | (hi == 1))
    shape = np.where(kind == 0, (hi == 0) & (c == -1) & (d == -1) & (n <= 3),
                     (c >= 0) & (n <= 2) & np.where(kind == 1, d >= 0, d == -1))
    ok = (kind >= 0) & (kind <= 2) & prefix & unused & flags & (head >= 0) & shape
    return bool(ok.all())


def _rule_texts(r: np.ndarray, relations: Sequence[str],
                entities: Optional[Sequence[str]]) -> list[str]:
    """``[rule_text(row, relations, entities) for row in r]``, the same texts and the same
    first error, each label looked up once."""
    if not _valid_rows(r):
        return [rule_text(row, relations, entities) for row in r]
    names: dict[int, str] = {}
    consts: dict[int, str] = {}

    def name(i: int) -> str:
        if i not in names:
            names[i] = _relation_name(_label(relations, i, "relation"))
        return names[i]

    def const(i: int) -> str:
        if i not in consts:
            consts[i] = _quote(_label(entities, i, "entity"))
        return consts[i]

    out = []
    for kind, head, hi, c, d, r1, i1, r2, i2, r3, i3 in r.tolist():
        body = [(r1, i1), (r2, i2), (r3, i3)][:1 + (r2 >= 0) + (r3 >= 0)]
        rels = [name(head)] + [name(a) for a, _ in body]
        inner = ["A", "B"][: len(body) - 1]
        if kind == 0:
            terms = ["X", *inner, "Y"]
            head_args = "X,Y"
        else:
            value = const(c)
            end = const(d) if kind == 1 else ["A", "B"][len(body) - 1]
            terms = ["X", *inner, end]
            head_args = f"{value},X" if hi else f"X,{value}"
        atoms = [f"{rels[k + 1]}({terms[k + 1]},{terms[k]})" if inv
                 else f"{rels[k + 1]}({terms[k]},{terms[k + 1]})"
                 for k, (_, inv) in enumerate(body)]
        out.append(f"{rels[0]}({head_args}) <- " + ", ".join(atoms))
    return out


# --------------------------------------------------------------------------- rule sets
def _check_rule_set(rows: Any, metrics: Mapping[str, Any]
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r = np.asarray(rows)
    if r.size == 0:
        r = np.zeros((0, ROW_WIDTH), dtype=np.int64)
    if r.ndim != 2 or r.shape[1] != ROW_WIDTH:
        raise ValueError(f"rows: expected shape (m, {ROW_WIDTH}), got {r.shape}")
    if r.dtype == bool or not np.issubdtype(r.dtype, np.integer):
        raise TypeError(f"rows: expected integers, got dtype {r.dtype}")
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise ValueError(f"metrics: missing {missing} (expected {list(METRIC_KEYS)})")
    out = {}
    for key in METRIC_KEYS:
        v = np.asarray(metrics[key])
        if v.shape != (r.shape[0],):
            raise ValueError(f"metrics[{key!r}]: expected shape ({r.shape[0]},), got {v.shape}")
        if key in COUNT_KEYS:
            if v.size and (not np.all(np.isfinite(v)) or np.any(v != np.round(v))):
                raise ValueError(f"metrics[{key!r}]: expected integer counts")
            low = 0 if key in ("support", "body_pairs") else -1  # -1: unknown (text files)
            if v.size and v.min() < low:
                raise ValueError(f"metrics[{key!r}]: counts must be >= {low}")
            out[key] = v.astype(np.int64)
        else:
            v = v.astype(np.float64)
            if v.size and not np.all((v >= 0) & (v <= 1)):
                raise ValueError(f"metrics[{key!r}]: ratios must be in [0, 1]")
            out[key] = v
    return r.astype(np.int64), out


def _check_settings(settings: Any, where: str) -> dict[str, Any]:
    """``settings`` (a mapping of some of :data:`SETTINGS`; other keys are left out, for the
    readers of later versions) as plain values; ValueError naming ``where`` otherwise."""
    if not isinstance(settings, Mapping):
        raise ValueError(f"{where}: expected an object of {list(SETTINGS)}, got "
                         f"{type(settings).__name__}")
    out: dict[str, Any] = {}
    if "pc" in settings:
        pc = settings["pc"]
        if (isinstance(pc, (bool, np.bool_)) or not isinstance(pc, (int, float, np.integer,
                                                                    np.floating))
                or not 0 <= float(pc) < math.inf):
            raise ValueError(f"{where}: 'pc' must be a finite number >= 0, got {pc!r}")
        out["pc"] = float(pc)
    if "aggregation" in settings:
        agg = settings["aggregation"]
        if not isinstance(agg, str) or agg not in AGGREGATIONS:
            raise ValueError(f"{where}: 'aggregation' must be one of {AGGREGATIONS}, got "
                             f"{agg!r}")
        out["aggregation"] = agg
    if "exclude_query" in settings:
        ex = settings["exclude_query"]
        if not isinstance(ex, (bool, np.bool_)):
            raise ValueError(f"{where}: 'exclude_query' must be true or false, got {ex!r}")
        out["exclude_query"] = bool(ex)
    return out


def _render_text(texts: list[str], m: dict[str, np.ndarray],
                 settings: Optional[dict[str, Any]] = None) -> str:
    lines = [TEXT_HEADER]
    if settings is not None:
        lines.append(SETTINGS_PREFIX + json.dumps(settings))
    # Columns as Python floats (repr: the shortest round-trip text) and ints.
    cols = [[repr(v) for v in m[key].astype(np.float64).tolist()] if key in RATIO_KEYS
            else [str(v) for v in m[key].astype(np.int64).tolist()] for key in TEXT_COLUMNS]
    lines.extend("\t".join(values) for values in zip(*cols, texts))
    return "\n".join(lines) + "\n"


def _render_json(texts: list[str], rows: np.ndarray, m: dict[str, np.ndarray],
                 relations: Sequence[str], settings: Optional[dict[str, Any]] = None) -> str:
    # As "  " + _json(item) of each item {"rule": text, "row": [...], metric: value, ...}:
    # JSON writes ints and floats as their repr, and only the text may need escapes.
    cols = [[f'"{key}": {v!r}' for v in (m[key].astype(np.float64) if key in RATIO_KEYS
                                         else m[key].astype(np.int64)).tolist()]
            for key in METRIC_KEYS]
    items = [f'  {{"rule": {_json(text)}, "row": {row}, {", ".join(values)}}}'
             for text, row, *values in zip(texts, rows.tolist(), *cols)]
    kept = "" if settings is None else f' "settings": {json.dumps(settings)},\n'
    head = (f'{{\n "format": {json.dumps(FORMAT)},\n "version": {VERSION},\n{kept}'
            f' "relations": {_json(list(relations))},\n "rules": [\n')
    return head + ",\n".join(items) + "\n ]\n}\n"


def save_rules(path: PathLike, rows: Any, metrics: Mapping[str, Any], relations: Sequence[str],
               entities: Optional[Sequence[str]] = None, format: Optional[str] = None,
               settings: Optional[Mapping[str, Any]] = None) -> None:
    """Write a rule set as text or JSON, atomically (nothing is written if anything is wrong).

    Parameters
    ----------
    path : str or path-like
    rows : ndarray of int, shape (m, 11)
    metrics : mapping
        ``support``, ``body_pairs``, ``pca_body_pairs``, ``head_facts`` and ``head_coverage``,
        ``std_confidence``, ``pca_confidence``, each of shape (m,).
    relations, entities : sequence of str
        Labels by id (``entities`` needed only for acyclic rules).
    format : {"text", "json"}, optional
        Default: ``"json"`` when ``path`` ends in ``.json``, else ``"text"``.
    settings : mapping, optional
        How the rules predict (any of :data:`SETTINGS`), kept in the file for
        :func:`read_rule_file` (none when not given).
    """
    name = _fspath(path)  # a TypeError naming ``path`` for what is not a path
    if format is None:
        format = "json" if name.lower().endswith(".json") else "text"
    if format not in ("text", "json"):
        raise ValueError(f"format: expected 'text' or 'json', got {format!r}")
    r, m = _check_rule_set(rows, metrics)
    kept = None if settings is None else _check_settings(settings, "settings")
    relations = list(relations)
    texts = _rule_texts(r, relations, entities)
    content = (_render_text(texts, m, kept) if format == "text"
               else _render_json(texts, r, m, relations, kept))

    def write(fh: IO[Any]) -> None:
        fh.write(content)

    atomic_write(path, write, text=True, suffix=".json" if format == "json" else ".txt")


def _recover_count(support: int, ratio: float, what: str) -> int:
    """``support / ratio`` rounded; -1 when ``support`` is 0 (any count fits)."""
    if support == 0:
        return -1
    if ratio <= 0:
        raise ValueError(f"{what} is 0 although the support is {support}")
    return int(round(support / ratio))


def _parse_number(field: str, key: str) -> Union[int, float]:
    if key in RATIO_KEYS:
        value: Union[int, float] = float(field)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{key} {field!r} is not a ratio in [0, 1]")
        return value
    if not _COUNT.fullmatch(field.strip()):
        raise ValueError(f"{key} {field!r} is not a non-negative integer")
    if int(field) > MAX_COUNT:
        raise ValueError(f"{key} {field.strip()} is too large (counts are at most 2**63 - 1)")
    return int(field)


def _check_confidence(written: Any, support: int, body_pairs: int, text: str) -> None:
    """ValueError unless the standard confidence ``written`` (as read, a number or its text)
    is ``support / body_pairs`` (0 when ``body_pairs`` is 0), to the digits it is written
    with: ``0.6667`` stands for 2/3, ``0.01`` not for 10/16, ``1`` only for 1 (the file was
    edited, or its columns mixed up: the stored value would disagree with the counts)."""
    want = support / body_pairs if body_pairs else 0.0
    digits = decimal.Decimal(text.strip()).as_tuple().exponent  # -4 for 0.6667
    slack = 0.5 * 10.0 ** digits if isinstance(digits, int) and digits < 0 else 0.0
    if abs(float(written) - want) > slack + 1e-12 * max(abs(want), 1.0):
        raise ValueError(f"std_confidence {text.strip()} is not support / body_pairs = "
                         f"{support} / {body_pairs} = {want!r}")


def _text_rule(line: str, reader: _Reader) -> tuple[list[int], dict[str, Any]]:
    fields = line.split("\t", len(TEXT_COLUMNS))
    if len(fields) != len(TEXT_COLUMNS) + 1:
        raise ValueError(f"expected {len(TEXT_COLUMNS) + 1} tab-separated fields (conf, "
                         f"support, body_pairs, pca_conf, head_coverage, rule), got "
                         f"{len(fields)}: {line!r}")
    try:
        values = {key: _parse_number(f, key) for key, f in zip(TEXT_COLUMNS, fields)}
    except ValueError as exc:
        raise ValueError(f"{exc}: {line!r}") from None
    row = reader.row(fields[-1].strip())
    s, b = int(values["support"]), int(values["body_pairs"])
    if s > b:
        raise ValueError(f"support {s} > body_pairs {b}: {line!r}")
    try:
        _check_confidence(values["std_confidence"], s, b, fields[0])
    except ValueError as exc:
        raise ValueError(f"{exc}: {line!r}") from None
    values["pca_body_pairs"] = _recover_count(s, float(values["pca_confidence"]), "pca_conf")
    values["head_facts"] = _recover_count(s, float(values["head_coverage"]), "head_coverage")
    return row, values


def _where(path: str, line: int, exc: Exception) -> Exception:
    cls = UnknownLabelError if isinstance(exc, UnknownLabelError) else ValueError
    return cls(f"{path}, line {line}: {exc}")


def _load_text(path: str, content: str, relations: Labels, entities: Optional[Labels]
               ) -> tuple[list[list[int]], list[dict[str, Any]], dict[str, Any]]:
    rows: list[list[int]] = []
    metrics: list[dict[str, Any]] = []
    settings: dict[str, Any] = {}
    first_line: dict[tuple[int, ...], int] = {}
    reader = _Reader(relations, entities)
    for number, line in enumerate(content.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.startswith(SETTINGS_PREFIX) and not rows:
            try:
                settings = _check_settings(json.loads(line[len(SETTINGS_PREFIX):]), "settings")
            except ValueError as exc:  # includes json.JSONDecodeError
                raise ValueError(f"{path}, line {number}: {exc}") from None
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row, values = _text_rule(line, reader)
        except ValueError as exc:  # includes UnknownLabelError
            raise _where(path, number, exc) from None
        if tuple(row) in first_line:
            raise ValueError(f"{path}, line {number}: the same rule as line "
                             f"{first_line[tuple(row)]}: {line!r}")
        first_line[tuple(row)] = number
        rows.append(row)
        metrics.append(values)
    return rows, metrics, settings


def _json_rule(item: Any, reader: _Reader) -> tuple[list[int], dict[str, Any]]:
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {type(item).__name__}")
    missing = [k for k in ("rule", "row", *METRIC_KEYS) if k not in item]
    if missing:
        raise ValueError(f"missing {missing}")
    text, stored = item["rule"], item["row"]
    if not isinstance(text, str):
        raise ValueError(f"'rule' must be a string, got {text!r}")
    if (not isinstance(stored, list) or len(stored) != ROW_WIDTH
            or any(type(v) is not int for v in stored)):
        raise ValueError(f"'row' must be {ROW_WIDTH} integers, got {stored!r}")
    values = {}
    for key in METRIC_KEYS:
        v = item[key]
        ok = (type(v) is int) if key in COUNT_KEYS else type(v) in (int, float)
        if not ok:
            raise ValueError(f"{key!r} must be a number{'' if key in RATIO_KEYS else ' (int)'}, "
                             f"got {v!r}")
        if key in COUNT_KEYS:  # -1: a count a text file could not recover
            low = 0 if key in ("support", "body_pairs") else -1
            if not low <= v <= MAX_COUNT:
                raise ValueError(f"{key!r} must be an integer count in [{low}, 2**63 - 1], "
                                 f"got {v!r}")
        elif not 0.0 <= v <= 1.0:  # NaN and infinities too
            raise ValueError(f"{key!r} must be a ratio in [0, 1], got {v!r}")
        values[key] = v
    if values["support"] > values["body_pairs"]:
        raise ValueError(f"'support' {values['support']} > 'body_pairs' "
                         f"{values['body_pairs']}")
    _check_confidence(values["std_confidence"], values["support"], values["body_pairs"],
                      repr(values["std_confidence"]))
    row = reader.row(text)
    if row != stored:
        raise ValueError(f"'row' {stored} disagrees with the rule text {text!r}, which reads "
                         f"as {row} with these labels (saved with another vocabulary?)")
    return row, values


def _load_json(path: str, content: str, relations: Labels, entities: Optional[Labels]
               ) -> tuple[list[list[int]], list[dict[str, Any]], dict[str, Any]]:
    try:
        doc = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path}: not a {FORMAT} file (format {got!r})")
    if doc.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported {FORMAT} version {doc.get('version')!r} (this "
                         f"nesy reads version {VERSION})")
    names = doc.get("relations")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: 'relations' must be a list of relation labels")
    ours = sorted(relations, key=lambda label: relations[label])  # labels by id
    if names != ours:  # the rules were saved with another graph's relations
        i = next((i for i, (a, b) in enumerate(zip(names, ours)) if a != b),
                 min(len(names), len(ours)))
        here, there = (repr(v[i]) if i < len(v) else "none" for v in (names, ours))
        raise ValueError(f"{path}: 'relations' are not the relations the rules are read with "
                         f"({len(names):,} labels in the file, {len(ours):,} in the graph; "
                         f"first difference at position {i}: {here} in the file, {there} in "
                         f"the graph): the rules were saved with another graph")
    items = doc.get("rules")
    if not isinstance(items, list):
        raise ValueError(f"{path}: 'rules' must be a list")
    settings = _check_settings(doc["settings"], f"{path}: 'settings'") if "settings" in doc \
        else {}
    # save_rules writes one rule a line: name the line too when the file still looks like that.
    lines = [i + 1 for i, text in enumerate(content.split("\n"))
             if text.lstrip().startswith('{"rule"')]
    rows, metrics = [], []
    seen: dict[tuple[int, ...], int] = {}
    reader = _Reader(relations, entities)
    for k, item in enumerate(items):
        where = f"rules[{k}]" + (f" (line {lines[k]})" if len(lines) == len(items) else "")
        try:
            row, values = _json_rule(item, reader)
        except ValueError as exc:
            cls = UnknownLabelError if isinstance(exc, UnknownLabelError) else ValueError
            raise cls(f"{path}, {where}: {exc}") from None
        if tuple(row) in seen:
            raise ValueError(f"{path}, {where}: the same rule as rules[{seen[tuple(row)]}]")
        seen[tuple(row)] = k
        rows.append(row)
        metrics.append(values)
    return rows, metrics, settings


def load_rules(path: PathLike, relations: Labels, entities: Optional[Labels] = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read a rule set written by :func:`save_rules` (text or JSON, told apart by the content).

    Parameters
    ----------
    path : str or path-like
    relations, entities : sequence of str, or mapping of str to int
        The vocabulary the rule texts are read with (labels by id, or label -> id).

    Returns
    -------
    rows : ndarray of int64, shape (m, 11)
        In file order.
    metrics : dict
        ``support``, ``body_pairs``, ``pca_body_pairs``, ``head_facts`` (int64) and
        ``head_coverage``, ``std_confidence``, ``pca_confidence`` (float64), shape (m,). From a
        text file the two counts it does not store are recovered (-1 where the support is 0).

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        Not UTF-8, malformed (naming the file and the line), a wrong format or version, a row
        that disagrees with its text, or the same rule twice. Malformed includes a count
        outside ``[0, 2**63 - 1]`` (``-1`` is allowed for ``pca_body_pairs`` and
        ``head_facts``), a ratio outside [0, 1], ``support > body_pairs`` and a standard
        confidence that is not ``support / body_pairs`` to the digits it is written with, in
        both formats; and a JSON file whose ``"relations"`` are not ``relations``, the
        vocabulary it is read with (rules saved with another graph).
    TypeError
        ``path`` is not a path (naming ``path``).
    nesy.datasets.UnknownLabelError
        A rule names a relation or entity not in the vocabulary.
    """
    rows, metrics, _ = read_rule_file(path, relations, entities)
    return rows, metrics


def read_rule_file(path: PathLike, relations: Labels, entities: Optional[Labels] = None
                   ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """:func:`load_rules`, and the settings the file keeps: ``(rows, metrics, settings)``,
    ``settings`` a dict of those of :data:`SETTINGS` the file has (empty for files saved
    without them, as by older versions). A malformed settings entry is a ValueError naming the
    file (and the line of a text file)."""
    name = _fspath(path)  # a TypeError naming ``path`` for what is not a path
    content = read_text(name, "utf-8-sig")
    rel_ids = _id_map(relations)
    ent_ids = None if entities is None else _id_map(entities)
    load = _load_json if content.lstrip()[:1] in ("{", "[") else _load_text
    rows, values, settings = load(name, content, rel_ids, ent_ids)
    out = {key: np.array([v[key] for v in values],
                         dtype=np.float64 if key in RATIO_KEYS else np.int64)
           for key in METRIC_KEYS}
    return np.array(rows, dtype=np.int64).reshape(-1, ROW_WIDTH), out, settings
