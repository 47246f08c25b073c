"""nesy.rules.kg_format: the rule text (pinned strings for every kind of rule), parse_rule (other
variable names, free whitespace, every malformed shape, unknown labels), and the text and JSON
rule-set files (round trips on random rows of every kind with UMLS labels and with awkward
labels, recovered counts, malformed lines with file and line, wrong format or version, rows that
disagree with their text, atomic writes).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import nesy._io
from nesy.datasets import UnknownLabelError, load_kg
from nesy.rules.kg_format import (
    FORMAT,
    METRIC_KEYS,
    VERSION,
    load_rules,
    parse_rule,
    rule_text,
    save_rules,
)

RELS = ["hypernym", "similar_to", "has part", 'say "hi"', "part-of/x:y.z", "", "nel\x85"]
ENTS = ["paris", "rome, italy", "f(x)", 'a "quoted" name', "tab\there", "line\u2028break",
        "Zürich", "X", "<-", "", "lone\udc80"]


def row(kind, head, hi, c, d, *atoms):
    flat = [v for a in atoms for v in a] + [-1, 0] * (3 - len(atoms))
    return [kind, head, hi, c, d, *flat]


# (row, text) pairs written out by hand.
PINNED = [
    (row(0, 0, 0, -1, -1, (0, 0), (1, 0)), "hypernym(X,Y) <- hypernym(X,A), similar_to(A,Y)"),
    (row(0, 1, 0, -1, -1, (1, 1)), "similar_to(X,Y) <- similar_to(Y,X)"),
    (row(0, 0, 0, -1, -1, (2, 1), (0, 0), (4, 1)),
     'hypernym(X,Y) <- "has part"(A,X), hypernym(A,B), part-of/x:y.z(Y,B)'),
    (row(1, 0, 0, 0, 1, (3, 0)), 'hypernym(X,"paris") <- "say \\"hi\\""(X,"rome, italy")'),
    (row(1, 0, 1, 2, 3, (0, 0), (1, 1)),
     'hypernym("f(x)",X) <- hypernym(X,A), similar_to("a \\"quoted\\" name",A)'),
    (row(1, 5, 0, 4, 5, (0, 1)), '""(X,"tab\\there") <- hypernym("line\\u2028break",X)'),
    (row(2, 1, 0, 6, -1, (2, 0)), 'similar_to(X,"Zürich") <- "has part"(X,A)'),
    (row(2, 1, 1, 7, -1, (2, 1), (0, 1)), 'similar_to("X",X) <- "has part"(A,X), hypernym(B,A)'),
    (row(1, 0, 0, 8, 9, (0, 0)), 'hypernym(X,"<-") <- hypernym(X,"")'),
    # Characters some readers take as line breaks, and a lone surrogate (not UTF-8): escaped.
    (row(2, 6, 0, 10, -1, (0, 0)), '"nel\\u0085"(X,"lone\\udc80") <- hypernym(X,A)'),
]


@pytest.mark.parametrize("r, text", PINNED)
def test_rule_text_pinned(r, text):
    assert rule_text(r, RELS, ENTS) == text
    assert rule_text(np.array(r, dtype=np.int64), RELS, ENTS) == text
    assert parse_rule(text, RELS, ENTS) == r
    assert parse_rule(text, {lab: i for i, lab in enumerate(RELS)},
                      {lab: i for i, lab in enumerate(ENTS)}) == r
    assert text.isprintable() and text.encode("utf-8")


def test_closed_rules_need_no_entities():
    assert rule_text(PINNED[0][0], RELS) == PINNED[0][1]
    assert parse_rule(PINNED[0][1], RELS) == PINNED[0][0]
    with pytest.raises(ValueError, match="entity labels"):
        rule_text(PINNED[3][0], RELS)
    with pytest.raises(ValueError, match="entity labels"):
        parse_rule(PINNED[3][1], RELS)


def test_parse_other_variables_and_whitespace():
    want = row(0, 0, 0, -1, -1, (0, 0), (1, 1), (2, 0))
    for text in ["hypernym(X,Y) <- hypernym(X,A), similar_to(B,A), \"has part\"(B,Y)",
                 "  hypernym ( P , Q )<-hypernym(P,Z1),similar_to( Z2 ,Z1 ) ,\"has part\"(Z2,Q) ",
                 "hypernym(Y,X) <- hypernym(Y,B), similar_to(A,B), \"has part\"(A,X)",
                 "hypernym(Xa,Yb)\t<-\thypernym(Xa,M_1), similar_to(N2,M_1), \"has part\"(N2,Yb)"]:
        assert parse_rule(text, RELS, ENTS) == want, text
    # Acyclic with other names: the dangling end may be any fresh variable.
    assert parse_rule('hypernym( "paris" ,V) <- similar_to(W,V)', RELS, ENTS) == \
        row(2, 0, 1, 0, -1, (1, 1))
    assert parse_rule('hypernym(V,"paris") <- similar_to(V,W), hypernym(W, "f(x)")',
                      RELS, ENTS) == row(1, 0, 0, 0, 2, (1, 0), (0, 0))
    # The trivial rule is a well-formed rule (the miner leaves it out, the format does not care).
    assert parse_rule("hypernym(X,Y) <- hypernym(X,Y)", RELS) == row(0, 0, 0, -1, -1, (0, 0))


@pytest.mark.parametrize("text, message", [
    ("hypernym(X,Y)", "'<-'"),
    ("hypernym(X,Y) <- ", "relation name"),
    ("hypernym(X,Y) <- hypernym(X,Y", "')'"),
    ("hypernym(X Y) <- hypernym(X,Y)", "','"),
    ("hypernym(X,Y) <- hypernym(X,Y) similar_to(Y,X)", "after the last body atom"),
    ("hypernym(X,Y) <- hypernym(X,Y),", "relation name"),
    ("hypernym(X,paris) <- hypernym(X,A)", "neither a variable"),
    ('hypernym(X,"paris) <- hypernym(X,A)', "bad quoted label"),
    ("hypernym(X,1) <- hypernym(X,A)", "neither a variable"),
    ('hypernym("paris","rome, italy") <- hypernym(X,A)', "both arguments are constants"),
    ("hypernym(X,X) <- hypernym(X,A)", "same variable"),
    ("hypernym(X,Y) <- hypernym(A,B)", "does not continue the path from X"),
    ("hypernym(X,Y) <- hypernym(X,X)", "binds X twice"),
    ("hypernym(X,Y) <- hypernym(X,A), similar_to(A,B)", "must end at the head's Y"),
    ("hypernym(X,Y) <- hypernym(X,A), similar_to(A,X), hypernym(X,Y)", "already used"),
    ("hypernym(X,Y) <- hypernym(X,Y), similar_to(Y,Y)", "already used"),
    ('hypernym(X,Y) <- hypernym(X,"paris"), similar_to("paris",Y)', "constants appear only"),
    ("hypernym(X,Y) <- hypernym(X,A), hypernym(A,B), hypernym(B,C), hypernym(C,Y)",
     "1 to 3 body atoms"),
    ('hypernym(X,"paris") <- hypernym(X,A), hypernym(A,B), hypernym(B,C)', "1 or 2 body atoms"),
    ('hypernym(X,"paris") <- hypernym(X,A), hypernym(A,X)', "already used"),
    ('hypernym(X,"paris") <- hypernym(X,X)', "binds X twice"),
    ('hypernym(X,"paris") <- hypernym(A,"rome, italy")', "does not continue the path"),
    ("hypernym(X,Y) <= hypernym(X,Y)", "'<-'"),
    ("", "relation name"),
])
def test_parse_malformed(text, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_rule(text, RELS, ENTS)
    assert not isinstance(info.value, UnknownLabelError)
    assert repr(text) in str(info.value)  # quotes the text


def test_parse_unknown_labels():
    with pytest.raises(UnknownLabelError, match="unknown relation label 'hypernyms'"):
        parse_rule("hypernyms(X,Y) <- hypernym(X,Y)", RELS, ENTS)
    with pytest.raises(UnknownLabelError, match="unknown relation label 'Similar_to'"):
        parse_rule("hypernym(X,Y) <- Similar_to(X,Y)", RELS, ENTS)
    with pytest.raises(UnknownLabelError, match="unknown entity label 'london'"):
        parse_rule('hypernym(X,"paris") <- hypernym(X,"london")', RELS, ENTS)
    with pytest.raises(TypeError):
        parse_rule(None, RELS, ENTS)


def test_rule_text_bad_rows():
    with pytest.raises(IndexError, match="relation id 7"):
        rule_text(row(0, 7, 0, -1, -1, (0, 0)), RELS)
    with pytest.raises(IndexError, match="entity id 11"):
        rule_text(row(2, 0, 0, 11, -1, (0, 0)), RELS, ENTS)
    with pytest.raises(TypeError, match="a mapping"):
        rule_text(row(0, 0, 0, -1, -1, (0, 0)), {lab: i for i, lab in enumerate(RELS)})
    for bad in [row(0, 0, 1, -1, -1, (0, 0)),  # closed with an inverted head
                row(0, 0, 0, 1, -1, (0, 0)),  # closed with a constant
                row(1, 0, 0, 1, -1, (0, 0)),  # AC1 without an end
                row(2, 0, 0, 1, 2, (0, 0)),  # AC2 with an end
                row(1, 0, 0, 1, 2, (0, 0), (0, 0), (0, 0)),  # acyclic of length 3
                row(0, 0, 0, -1, -1),  # no body
                [0, 0, 0, -1, -1, -1, 0, 0, 0, -1, 0],  # a gap
                [0, 0, 0, -1, -1, 0, 2, -1, 0, -1, 0],  # inverse flag 2
                [3, 0, 0, -1, -1, 0, 0, -1, 0, -1, 0],  # kind 3
                [0, 0, 0, -1, -1, 0, 0, -1, 0, -1],  # 10 columns
                [0.0] * 11]:
        with pytest.raises(ValueError, match="rule row"):
            rule_text(bad, RELS, ENTS)


# --------------------------------------------------------------------------- random rule sets
def random_rule_set(rng, n_rel, n_ent, m):
    """``m`` distinct random rows (every kind and length, random inverses) and consistent
    metrics (exact quotients of counts with support <= pca body <= body, support <= facts)."""
    rows: set[tuple[int, ...]] = set()
    while len(rows) < m:
        kind = int(rng.integers(0, 3))
        length = int(rng.integers(1, 4 if kind == 0 else 3))
        atoms = [(int(rng.integers(0, n_rel)), int(rng.integers(0, 2))) for _ in range(length)]
        hi = 0 if kind == 0 else int(rng.integers(0, 2))
        c = -1 if kind == 0 else int(rng.integers(0, n_ent))
        d = int(rng.integers(0, n_ent)) if kind == 1 else -1
        rows.add(tuple(row(kind, int(rng.integers(0, n_rel)), hi, c, d, *atoms)))
    r = np.array(sorted(rows), dtype=np.int64)
    support = rng.integers(0, 50, m)
    support[::7] = 0
    pca = support + rng.integers(0, 30, m)
    body = pca + rng.integers(0, 30, m)
    facts = support + rng.integers(1, 40, m)
    quot = lambda a, b: np.divide(a, b, out=np.zeros(m), where=b > 0)  # noqa: E731
    metrics = {"support": support, "body_pairs": body, "pca_body_pairs": pca,
               "head_facts": facts, "head_coverage": quot(support, facts),
               "std_confidence": quot(support, body), "pca_confidence": quot(support, pca)}
    return r, metrics


def assert_same(rows, metrics, rows2, metrics2, text_format=False):
    np.testing.assert_array_equal(rows2, rows)
    assert rows2.dtype == np.int64 and rows2.shape == rows.shape
    for key in METRIC_KEYS:
        got, want = metrics2[key], np.asarray(metrics[key])
        assert got.dtype == (np.int64 if key in ("support", "body_pairs", "pca_body_pairs",
                                                  "head_facts") else np.float64)
        if text_format and key in ("pca_body_pairs", "head_facts"):
            want = np.where(np.asarray(metrics["support"]) == 0, -1, want)  # not recoverable
        np.testing.assert_array_equal(got, want, err_msg=key)  # bit-identical


@pytest.mark.parametrize("suffix", [".txt", ".json", ".rules"])
def test_round_trip_umls(tmp_path, suffix):
    kg = load_kg("umls")
    rng = np.random.default_rng(0)
    rows, metrics = random_rule_set(rng, kg.n_relations, kg.n_entities, 400)
    assert set(rows[:, 0]) == {0, 1, 2} and set(np.sum(rows[:, 5::2] >= 0, axis=1)) == {1, 2, 3}
    path = tmp_path / f"rules{suffix}"
    save_rules(path, rows, metrics, kg.relations, kg.entities)
    content = path.read_text(encoding="utf-8")
    assert content.startswith("{") == (suffix == ".json")
    rows2, metrics2 = load_rules(path, kg.relations, kg.entities)
    assert_same(rows, metrics, rows2, metrics2, text_format=suffix != ".json")
    # Label -> id maps work as well, and the text of each rule is on its own line.
    rows3, _ = load_rules(str(path), kg.relation_to_id, kg.entity_to_id)
    np.testing.assert_array_equal(rows3, rows)
    for r in rows[:20]:
        assert rule_text(r, kg.relations, kg.entities) in content


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_round_trip_awkward_labels(tmp_path, fmt):
    rng = np.random.default_rng(1)
    rows, metrics = random_rule_set(rng, len(RELS), len(ENTS), 300)
    path = tmp_path / "rules.dat"
    save_rules(path, rows, metrics, RELS, ENTS, format=fmt)
    rows2, metrics2 = load_rules(path, RELS, ENTS)
    assert_same(rows, metrics, rows2, metrics2, text_format=fmt == "text")
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert n_lines == (len(rows) + 1 if fmt == "text" else len(rows) + 7)


def test_text_file_layout(tmp_path):
    rows = np.array([PINNED[0][0], PINNED[3][0]])
    # Rule 0: support 2 of 3 body pairs, pca body 2, 4 head facts; rule 1: support 0.
    metrics = {"support": [2, 0], "body_pairs": [3, 5], "pca_body_pairs": [2, 1],
               "head_facts": [4, 7], "head_coverage": [0.5, 0.0],
               "std_confidence": [2 / 3, 0.0], "pca_confidence": [1.0, 0.0]}
    path = tmp_path / "r.txt"
    save_rules(path, rows, metrics, RELS, ENTS)
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("#") and "conf\tsupport\tbody_pairs\tpca_conf\thead_coverage" \
        in lines[0]
    assert lines[1] == f"{2 / 3!r}\t2\t3\t1.0\t0.5\t{PINNED[0][1]}"
    assert lines[2] == f"0.0\t0\t5\t0.0\t0.0\t{PINNED[3][1]}"
    assert lines[3] == ""
    # Comments, blank lines, CRLF and a byte-order mark are fine on reading; spaces around the
    # rule too.
    edited = ("\ufeff# my rules\r\n\r\n" + lines[1] + "  \r\n   # another comment\n\n"
              + lines[2].replace(PINNED[3][1], " " + PINNED[3][1]) + "\n")
    path.write_bytes(edited.encode("utf-8"))
    rows2, m2 = load_rules(path, RELS, ENTS)
    np.testing.assert_array_equal(rows2, rows)
    assert m2["pca_body_pairs"].tolist() == [2, -1] and m2["head_facts"].tolist() == [4, -1]
    assert m2["std_confidence"].tolist() == [2 / 3, 0.0]


def test_empty_rule_set(tmp_path):
    empty = {k: np.zeros(0) for k in METRIC_KEYS}
    for name in ("e.txt", "e.json"):
        save_rules(tmp_path / name, np.zeros((0, 11), dtype=np.int64), empty, RELS, ENTS)
        rows, m = load_rules(tmp_path / name, RELS, ENTS)
        assert rows.shape == (0, 11) and all(m[k].shape == (0,) for k in METRIC_KEYS)
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc == {"format": FORMAT, "version": VERSION, "relations": RELS, "rules": []}


def _json_doc(tmp_path):
    rows = np.array([PINNED[0][0], PINNED[4][0]])
    m = {"support": [2, 1], "body_pairs": [3, 1], "pca_body_pairs": [2, 1], "head_facts": [4, 1],
         "head_coverage": [0.5, 1.0], "std_confidence": [2 / 3, 1.0], "pca_confidence": [1, 1]}
    save_rules(tmp_path / "r.json", rows, m, RELS, ENTS)
    return json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))


def _write_json(tmp_path, doc, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_json_layout_and_checks(tmp_path):
    doc = _json_doc(tmp_path)
    assert doc["format"] == "nesy-kg-rules" and doc["version"] == 1 and doc["relations"] == RELS
    assert doc["rules"][1] == {"rule": PINNED[4][1], "row": PINNED[4][0], "support": 1,
                               "body_pairs": 1, "pca_body_pairs": 1, "head_facts": 1,
                               "head_coverage": 1.0, "std_confidence": 1.0,
                               "pca_confidence": 1.0}
    lines = (tmp_path / "r.json").read_text(encoding="utf-8").split("\n")
    assert lines[6].startswith('  {"rule": ' + json.dumps(PINNED[4][1]) + ', "row": [1, 0, 1,')
    cases = [
        (dict(doc, version=2), "unsupported nesy-kg-rules version 2"),
        ({k: v for k, v in doc.items() if k != "version"}, "version None"),
        (dict(doc, format="other"), "not a nesy-kg-rules file"),
        (dict(doc, rules={}), "'rules' must be a list"),
        (dict(doc, relations="hypernym"), "'relations' must be a list"),
        (dict(doc, rules=[dict(doc["rules"][0], row=PINNED[1][0])]), "disagrees with the rule"),
        (dict(doc, rules=[dict(doc["rules"][0], row=[0] * 10)]), "11 integers"),
        (dict(doc, rules=[dict(doc["rules"][0], support=2.0)]), "'support' must be a number"),
        (dict(doc, rules=[dict(doc["rules"][0], head_coverage="0.5")]), "'head_coverage'"),
        (dict(doc, rules=[{k: v for k, v in doc["rules"][0].items() if k != "head_facts"}]),
         "missing \\['head_facts'\\]"),
        (dict(doc, rules=[doc["rules"][0], 5]), "rules\\[1\\]: expected an object"),
        (dict(doc, rules=[doc["rules"][0], doc["rules"][0]]), "the same rule as rules\\[0\\]"),
        (dict(doc, rules=[dict(doc["rules"][0], rule="hypernym(X,Y) <- ")]), "relation name"),
        ([], "not a nesy-kg-rules file"),
    ]
    for bad, message in cases:
        path = _write_json(tmp_path, bad)
        with pytest.raises(ValueError, match=message) as info:
            load_rules(path, RELS, ENTS)
        assert str(path) in str(info.value)
    # Unknown labels, naming the rule and (as saved: one rule a line) its line.
    text = (tmp_path / "r.json").read_text(encoding="utf-8")
    (tmp_path / "u.json").write_text(text.replace("f(x)", "g(x)"), encoding="utf-8")
    with pytest.raises(UnknownLabelError, match=r"rules\[1\] \(line 7\).*entity label 'g\(x\)'"):
        load_rules(tmp_path / "u.json", RELS, ENTS)
    (tmp_path / "t.json").write_text(text[:-5], encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_rules(tmp_path / "t.json", RELS, ENTS)


@pytest.mark.parametrize("line, message", [
    ("0.5\t1\t2\t0.5\t0.5", "expected 6 tab-separated fields"),
    ("0.5 1 2 0.5 0.5 hypernym(X,Y) <- similar_to(X,Y)", "expected 6 tab-separated fields"),
    ("0.5\t1\t2\t0.5\t0.5\thypernym(X,Y) <- similar_to(X,Z", "expected ')'"),
    ("0.5\tone\t2\t0.5\t0.5\thypernym(X,Y) <- similar_to(X,Y)", "support 'one'"),
    ("0.5\t-1\t2\t0.5\t0.5\thypernym(X,Y) <- similar_to(X,Y)", "support '-1'"),
    ("0.5\t1\t2\t0.5\t1.5\thypernym(X,Y) <- similar_to(X,Y)", "head_coverage '1.5'"),
    ("nan\t1\t2\t0.5\t0.5\thypernym(X,Y) <- similar_to(X,Y)", "std_confidence 'nan'"),
    ("0.5\t3\t2\t0.5\t0.5\thypernym(X,Y) <- similar_to(X,Y)", "support 3 > body_pairs 2"),
    ("0.5\t1\t2\t0.0\t0.5\thypernym(X,Y) <- similar_to(X,Y)", "pca_conf is 0"),
    ("0.5\t1\t2\t0.5\t0.5\thypernym(X,Y) <- hypernym(X,Y)\n"
     "0.5\t1\t2\t0.5\t0.5\thypernym(P,Q) <- hypernym(P,Q)", "the same rule as line 2"),
])
def test_text_file_malformed(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text("# header\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_rules(path, RELS, ENTS)
    assert f"{path}, line " in str(info.value)
    assert not isinstance(info.value, UnknownLabelError)


def test_text_file_unknown_label(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("# h\n\n0.5\t1\t2\t0.5\t0.5\thypernym(X,\"paris\") <- nope(X,A)\n",
                    encoding="utf-8")
    with pytest.raises(UnknownLabelError, match=f"{path}, line 3: unknown relation label 'nope'"):
        load_rules(path, RELS, ENTS)
    path.write_text("0.5\t1\t2\t0.5\t0.5\thypernym(X,\"Paris\") <- similar_to(X,A)\n",
                    encoding="utf-8")
    with pytest.raises(UnknownLabelError, match="line 1: unknown entity label 'Paris'"):
        load_rules(path, RELS, ENTS)


def test_unreadable_files(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(OSError, match="nope.txt"):
        load_rules(missing, RELS, ENTS)
    with pytest.raises(OSError):
        load_rules(tmp_path, RELS, ENTS)  # a directory
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="bin.txt: not a UTF-8 text file"):
        load_rules(binary, RELS, ENTS)


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_nothing_written_when_invalid(tmp_path):
    rows = np.array([PINNED[0][0], PINNED[3][0]])
    good = {"support": [2, 0], "body_pairs": [3, 5], "pca_body_pairs": [2, 1],
            "head_facts": [4, 7], "head_coverage": [0.5, 0.0], "std_confidence": [2 / 3, 0.0],
            "pca_confidence": [1.0, 0.0]}
    for name in ("keep.txt", "keep.json"):
        path = tmp_path / name
        path.write_text("old content", encoding="utf-8")
        # Each case with the exception and the message it must give (naming what is wrong).
        bad_args = [
            ((rows, {**good, "support": [2]}, RELS, ENTS),
             ValueError, r"metrics\['support'\]: expected shape \(2,\), got \(1,\)"),
            ((rows, {k: v for k, v in good.items() if k != "head_facts"}, RELS, ENTS),
             ValueError, r"metrics: missing \['head_facts'\]"),
            ((rows, {**good, "head_coverage": [0.5, float("nan")]}, RELS, ENTS),
             ValueError, r"metrics\['head_coverage'\]: ratios must be in \[0, 1\]"),
            ((rows, {**good, "support": [2.5, 0]}, RELS, ENTS),
             ValueError, r"metrics\['support'\]: expected integer counts"),
            ((rows, good, RELS, None),  # an acyclic rule and no entity labels
             ValueError, r"entity labels are needed .*\(entity id 0\)"),
            ((rows, good, RELS[:1], ENTS),  # relation id out of range
             IndexError, r"relation id 1 out of range \[0, 1\)"),
            ((np.array([PINNED[0][0], [0] * 11]), good, RELS, ENTS),
             ValueError, r"rule row \[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0\]: a closed rule"),
            ((rows[:, :10], good, RELS, ENTS),
             ValueError, r"rows: expected shape \(m, 11\), got \(2, 10\)"),
            ((rows, good, RELS, ENTS, "yaml"),
             ValueError, r"format: expected 'text' or 'json', got 'yaml'"),
        ]
        for args, exc, match in bad_args:
            with pytest.raises(exc, match=match) as info:
                save_rules(path, *args)
            assert info.type is exc  # not a subclass standing in for it
            assert path.read_text(encoding="utf-8") == "old content"
    assert _leftovers(tmp_path) == []


def test_failing_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "rules.json"
    rows, metrics = random_rule_set(np.random.default_rng(2), len(RELS), len(ENTS), 20)
    save_rules(path, rows, metrics, RELS, ENTS)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(nesy._io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        save_rules(path, rows[:5], {k: np.asarray(v)[:5] for k, v in metrics.items()}, RELS,
                   ENTS)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    rows2, _ = load_rules(path, RELS, ENTS)
    np.testing.assert_array_equal(rows2, rows)
    assert oct(os.stat(path).st_mode & 0o777) != "0o600"  # the usual permissions, not mkstemp's


# --------------------------------------------------------------------------- s15: settings
def test_files_keep_settings_that_older_readers_skip(tmp_path):
    """s15 #14: pc, aggregation and exclude_query were not kept. They are now a second header
    line of the text format and a "settings" object of the JSON one; files without them read
    as before (no settings), and the rules of a file with them are what a reader that skips
    '#' lines and unknown JSON keys (the older one) reads."""
    from nesy.rules.kg_format import SETTINGS_PREFIX, read_rule_file

    rows, m = random_rule_set(np.random.default_rng(3), len(RELS), len(ENTS), 40)
    settings = {"pc": 0.0, "aggregation": "noisy_or", "exclude_query": False}
    for fmt in ("text", "json"):
        plain, kept = tmp_path / f"plain.{fmt}", tmp_path / f"kept.{fmt}"
        save_rules(plain, rows, m, RELS, ENTS, format=fmt)
        save_rules(kept, rows, m, RELS, ENTS, format=fmt, settings=settings)
        assert read_rule_file(plain, RELS, ENTS)[2] == {}
        r, m2, s = read_rule_file(kept, RELS, ENTS)
        assert s == settings
        assert_same(rows, m, r, m2, text_format=fmt == "text")
        a, b = plain.read_text(encoding="utf-8"), kept.read_text(encoding="utf-8")
        if fmt == "text":
            lines = b.split("\n")
            assert lines[1] == SETTINGS_PREFIX + json.dumps(settings)
            assert "\n".join(lines[:1] + lines[2:]) == a
        else:
            doc = json.loads(b)
            assert doc.pop("settings") == settings and doc == json.loads(a)
    # Only the known settings, checked, naming the file (and the line).
    path = tmp_path / "kept.text"
    text = path.read_text(encoding="utf-8")
    for bad, message in (('{"pc": -1}', "'pc' must be a finite number >= 0"),
                         ('{"aggregation": "sum"}', "'aggregation' must be one of"),
                         ('{"exclude_query": 1}', "'exclude_query' must be true or false"),
                         ('{"pc": ', "Expecting value"),
                         ('[1]', "expected an object")):
        path.write_text(text.replace(SETTINGS_PREFIX + json.dumps(settings),
                                     SETTINGS_PREFIX + bad), encoding="utf-8")
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            load_rules(path, RELS, ENTS)
        assert f"{path}, line 2" in str(info.value)
    path.write_text(text.replace(json.dumps(settings), '{"pc": 1, "future": true}'),
                    encoding="utf-8")
    assert read_rule_file(path, RELS, ENTS)[2] == {"pc": 1.0}
    doc = _json_doc(tmp_path)
    with pytest.raises(ValueError, match=r"bad\.json: 'settings': 'pc' must be a finite") as info:
        load_rules(_write_json(tmp_path, dict(doc, settings={"pc": "5"})), RELS, ENTS)
    with pytest.raises(ValueError, match=r"^settings: 'aggregation' must be one of"):
        save_rules(tmp_path / "x.txt", rows, m, RELS, ENTS, settings={"aggregation": "x"})
    assert not (tmp_path / "x.txt").exists()


# --------------------------------------------------------------------------- s15: speed
def _bad_rows():
    return [row(0, 0, 1, -1, -1, (0, 0)), row(0, 0, 0, 1, -1, (0, 0)), row(1, 0, 0, 1, -1, (0, 0)),
            row(2, 0, 0, 1, 2, (0, 0)), row(1, 0, 0, 1, 2, (0, 0), (0, 0), (0, 0)),
            row(0, 0, 0, -1, -1), [0, 0, 0, -1, -1, -1, 0, 0, 0, -1, 0],
            [0, 0, 0, -1, -1, 0, 2, -1, 0, -1, 0], [3, 0, 0, -1, -1, 0, 0, -1, 0, -1, 0],
            [0, -1, 0, -1, -1, 0, 0, -1, 0, -1, 0], [0, 0, 0, -1, -1, 0, 0, -2, 0, -1, 0],
            [0, 0, 0, -1, -1, 0, 0, -1, 1, -1, 0], [1, 0, 2, 1, 2, 0, 0, -1, 0, -1, 0],
            [1, 0, 0, -2, 2, 0, 0, -1, 0, -1, 0], [-1, 0, 0, -1, -1, 0, 0, -1, 0, -1, 0]]


def test_many_rules_are_written_and_read_as_one_at_a_time(tmp_path):
    """s15 #6: files are written and read without rule_text and parse_rule per rule (2 to 3
    times faster on 60,000 Nations rules), to the same texts, rows and errors."""
    from nesy.rules.kg_format import _Reader, _rule_texts, _valid_rows

    rng = np.random.default_rng(5)
    rows, _ = random_rule_set(rng, len(RELS), len(ENTS), 600)
    texts = _rule_texts(rows, RELS, ENTS)
    assert texts == [rule_text(r, RELS, ENTS) for r in rows]
    assert [t for _, t in PINNED] == _rule_texts(np.array([r for r, _ in PINNED]), RELS, ENTS)
    reader = _Reader(RELS, ENTS)
    for text, r in zip(texts + [t for _, t in PINNED], list(rows) + [r for r, _ in PINNED]):
        assert reader._fast(text) == list(r) == parse_rule(text, RELS, ENTS), text
    # Other spellings go to parse_rule: same rows, same errors.
    variants = ["hypernym(Y,X) <- hypernym(Y,B), similar_to(A,B), \"has part\"(A,X)",
                'hypernym(X,"paris") <- hypernym(X,B)', "hypernym(X,Y) <- hypernym(X,Y)",
                '"hypernym"(X,Y) <- hypernym(X,Y)', 'hypernym(Y,"paris") <- hypernym(Y,A)',
                'hypernym(X,"paris") <- hypernym(X,A), hypernym(A,B), hypernym(B,"rome, italy")',
                'hypernym(X,"paris") <- hypernym(X,"\\u0070aris")']

    def outcome(call, text):
        try:
            return call(text)
        except ValueError as exc:
            return type(exc), str(exc)

    for text in variants:
        assert outcome(reader.row, text) == outcome(lambda t: parse_rule(t, RELS, ENTS), text)
    no_entities = _Reader(RELS, None)
    for text, message in [("hypernym(X,Y) <- hypernym(X,X)", "binds X twice"),
                          ('hypernym(X,"london") <- hypernym(X,A)', "unknown entity label"),
                          ("hypernyms(X,Y) <- hypernym(X,Y)", "unknown relation label"),
                          ('hypernym(X,"pa\\qris") <- hypernym(X,A)', "bad quoted label"),
                          ('hypernym(X,"paris") <- hypernym(X,A), hypernym(A,X)', "already"),
                          ("hypernym(X,Y) <- hypernym(X,A), hypernym(A,B), hypernym(B,Y), "
                           "hypernym(Y,Y)", "1 to 3 body atoms")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            reader.row(text)
    with pytest.raises(ValueError, match="entity labels are needed"):
        no_entities.row(PINNED[3][1])
    assert no_entities.row(PINNED[0][1]) == PINNED[0][0]
    # The rows rule_text refuses are refused as a set, with the first bad row's error.
    assert _valid_rows(rows) and _valid_rows(np.array([r for r, _ in PINNED]))
    for bad in _bad_rows():
        both = np.array([rows[0], bad], dtype=np.int64)
        assert not _valid_rows(both), bad
        with pytest.raises(ValueError, match=re.escape(f"rule row {bad}")):
            _rule_texts(both, RELS, ENTS)
    with pytest.raises(IndexError, match="entity id 11"):
        _rule_texts(np.array([rows[0], row(2, 0, 0, 11, -1, (0, 0))]), RELS, ENTS)


def test_saving_and_loading_do_not_go_rule_by_rule(tmp_path, monkeypatch):
    import nesy.rules.kg_format as fmt

    rows, m = random_rule_set(np.random.default_rng(6), len(RELS), len(ENTS), 200)
    calls = []
    for name in ("rule_text", "parse_rule"):
        real = getattr(fmt, name)
        monkeypatch.setattr(fmt, name, lambda *a, _real=real, _name=name, **k: (
            calls.append(_name), _real(*a, **k))[1])
    for suffix in (".txt", ".json"):
        save_rules(tmp_path / f"r{suffix}", rows, m, RELS, ENTS)
        got, _ = load_rules(tmp_path / f"r{suffix}", RELS, ENTS)
        np.testing.assert_array_equal(got, rows)
    assert calls == []


# --------------------------------------------------------------------------- s22 review
BIG = "99999999999999999999999"  # more than int64 holds


@pytest.mark.parametrize("line, message", [
    (f"0.5\t{BIG}\t{BIG}\t0.5\t0.5\thypernym(X,Y) <- similar_to(X,Y)",
     f"support {BIG} is too large (counts are at most 2**63 - 1)"),
    (f"0.0\t0\t{BIG}\t0.0\t0.0\thypernym(X,Y) <- similar_to(X,Y)",
     f"body_pairs {BIG} is too large"),
    # conf is not support / body_pairs (0.625)
    ("0.01\t10\t16\t0.625\t0.5\thypernym(X,Y) <- similar_to(X,Y)",
     "std_confidence 0.01 is not support / body_pairs = 10 / 16 = 0.625"),
    ("1\t1\t2\t0.5\t0.5\thypernym(X,Y) <- similar_to(X,Y)",
     "std_confidence 1 is not support / body_pairs = 1 / 2 = 0.5"),
    ("0.6\t2\t3\t1.0\t0.5\thypernym(X,Y) <- similar_to(X,Y)", "std_confidence 0.6 is not"),
    ("0.5\t0\t0\t0.0\t0.0\thypernym(X,Y) <- similar_to(X,Y)",
     "std_confidence 0.5 is not support / body_pairs = 0 / 0 = 0.0"),
])
def test_text_counts_beyond_int64_and_a_confidence_off_the_counts_are_refused(tmp_path, line,
                                                                               message):
    """s22 M5 and L5: a count too large for int64 was an OverflowError naming neither file nor
    line; a conf column of 0.01 for support 10 of 16 body pairs was kept as it was."""
    path = tmp_path / "bad.txt"
    path.write_text("# header\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}, line 2: "
                                         f"{re.escape(message)}"):
        load_rules(path, RELS, ENTS)


def test_text_confidence_rounded_to_its_written_digits_is_accepted(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_text("0.6667\t2\t3\t1.0\t0.5\thypernym(X,Y) <- similar_to(X,Y)\n"
                    "6.667e-1\t2\t3\t1.0\t0.5\thypernym(X,Y) <- \"has part\"(X,Y)\n"
                    "0.7\t2\t3\t1.0\t0.5\thypernym(X,Y) <- hypernym(X,Y)\n"
                    "1\t3\t3\t1.0\t0.5\tsimilar_to(X,Y) <- hypernym(X,Y)\n"
                    "0\t0\t0\t0.0\t0.0\tsimilar_to(X,Y) <- similar_to(Y,X)\n", encoding="utf-8")
    rows, m = load_rules(path, RELS, ENTS)
    assert m["std_confidence"].tolist() == [0.6667, 0.6667, 0.7, 1.0, 0.0]  # kept as written


def test_json_files_are_checked_as_text_files_are(tmp_path):
    """s22 M5 and L5: JSON counts too large for int64 were an OverflowError; support -3,
    NaN or 2.0 ratios were refused only by KGRuleSet, naming no file; support > body_pairs
    was accepted; "relations" was never compared with the vocabulary."""
    doc = _json_doc(tmp_path)
    r0 = doc["rules"][0]  # support 2, body_pairs 3
    cases = [
        (dict(r0, support=10**30, body_pairs=10**30),
         rf"'support' must be an integer count in \[0, 2\*\*63 - 1\], got {10**30}$"),
        (dict(r0, head_facts=2**63), r"'head_facts' must be an integer count in \[-1, "),
        (dict(r0, support=-3), r"'support' must be an integer count in \[0, "),
        (dict(r0, pca_body_pairs=-2), r"'pca_body_pairs' must be an integer count in \[-1, "),
        (dict(r0, std_confidence=2.0), r"'std_confidence' must be a ratio in \[0, 1\], got 2\.0"),
        (dict(r0, head_coverage=float("nan")), r"'head_coverage' must be a ratio in \[0, 1\], "
                                               r"got nan"),
        (dict(r0, pca_confidence=float("-inf")), r"'pca_confidence' must be a ratio"),
        (dict(r0, support=100), r"'support' 100 > 'body_pairs' 3"),
        (dict(r0, std_confidence=0.5), r"std_confidence 0\.5 is not support / body_pairs = "
                                       r"2 / 3"),
    ]
    for item, message in cases:
        path = _write_json(tmp_path, dict(doc, rules=[item]))
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}, rules\[0\]: {message}"):
            load_rules(path, RELS, ENTS)
    for file_names, graph_names, message in (
            (RELS + ["extra"], RELS, r"\(8 labels in the file, 7 in the graph; first difference "
                                     r"at position 7: 'extra' in the file, none in the graph\)"),
            (RELS[::-1], RELS, r"\(7 labels in the file, 7 in the graph; first difference "
                               r"at position 0: 'nel\\x85' in the file, 'hypernym' in the "
                               r"graph\)")):
        path = _write_json(tmp_path, dict(doc, relations=file_names))
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: 'relations' are not "
                                             rf"the relations the rules are read with "
                                             rf"{message}: the rules were saved with another "
                                             rf"graph$"):
            load_rules(path, graph_names, ENTS)
    # A label -> id mapping is the same vocabulary as the labels by id.
    path = _write_json(tmp_path, doc)
    rows, _ = load_rules(path, {label: i for i, label in enumerate(RELS)}, ENTS)
    assert rows.shape == (2, 11)


def test_files_name_a_path_that_is_not_one(tmp_path):
    """s22 M8: KGRuleSet.load(None) and save(None) said "expected str, bytes or os.PathLike
    object, not NoneType", naming no argument."""
    m = {k: np.zeros(0) for k in METRIC_KEYS}
    with pytest.raises(TypeError, match=r"^path: expected a file path .* got NoneType None"):
        save_rules(None, np.zeros((0, 11), dtype=np.int64), m, RELS, ENTS)
    with pytest.raises(TypeError, match=r"^path: expected a file path .* got int 3"):
        load_rules(3, RELS, ENTS)


def test_an_empty_rule_set_still_loads_from_its_header_only_file(tmp_path):
    """s22 L5: a file of '#' lines alone loads as 0 rules, because that is what saving an
    empty rule set writes (the round trip must keep working)."""
    path = tmp_path / "e.txt"
    save_rules(path, np.zeros((0, 11), dtype=np.int64), {k: np.zeros(0) for k in METRIC_KEYS},
               RELS, ENTS)
    assert all(line.startswith("#") for line in path.read_text().splitlines())
    assert load_rules(path, RELS, ENTS)[0].shape == (0, 11)
