"""Knowledge graphs in the standard link-prediction layout: a folder with ``train.txt``,
``valid.txt`` and ``test.txt``, one triple a line, ``head<TAB>relation<TAB>tail``.

``load_kg("nations" | "umls" | "kinship")`` reads the copies shipped inside the package (no
network); ``load_kg(path)`` reads any other folder in the same layout (e.g. WN18RR).

Identifiers are deterministic: entities and relations are numbered ``0, 1, ...`` in the order of
their first appearance when reading train, then valid, then test, line by line, head before
tail. Every entity that occurs in training therefore has a smaller id than every entity that
occurs only in valid or test, and the same files always give the same ids.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

import numpy as np

from nesy._checks import warn_user

__all__ = ["KGData", "UnseenReport", "UnknownLabelError", "MissingFileError", "load_kg",
           "SHIPPED_KG", "SPLITS"]

#: Knowledge graphs shipped in ``nesy/datasets/data/kg/`` (source and licence in data/README.md).
SHIPPED_KG = ("nations", "umls", "kinship")
#: File names of the three splits, without ``.txt``.
SPLITS = ("train", "valid", "test")


class UnknownLabelError(KeyError, ValueError):
    """A label that is not in the vocabulary (a ``KeyError`` and a ``ValueError``)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class MissingFileError(FileNotFoundError):
    """A ``FileNotFoundError`` whose message is one sentence naming the argument and the path
    (``str`` gives ``strerror`` alone, without Python's ``"[Errno 2] ...: 'path'"`` frame).
    Raise it as ``MissingFileError(errno.ENOENT, message, path)``: ``errno`` and ``filename``
    are those of any ``FileNotFoundError``."""

    def __str__(self) -> str:
        return str(self.strerror)


@dataclass(frozen=True)
class UnseenReport:
    """Triples of one split that a model trained on ``train`` cannot rank meaningfully.

    Attributes
    ----------
    split : str
        ``"valid"`` or ``"test"``.
    rows : ndarray of shape (n_unseen,), int64
        Row indices into the split of the triples whose head, tail or relation never occurs in
        the training split.
    entities : ndarray of shape (n_entities_unseen,), int64
        Sorted ids of the entities of the split that never occur in training.
    relations : ndarray of shape (n_relations_unseen,), int64
        Sorted ids of the relations of the split that never occur in training.
    n_triples : int
        Number of triples in the split.
    """

    split: str
    rows: np.ndarray
    entities: np.ndarray
    relations: np.ndarray
    n_triples: int

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __str__(self) -> str:
        return (
            f"{self.split}: {len(self):,} of {self.n_triples:,} triples have an entity or "
            f"relation never seen in train ({self.entities.shape[0]:,} entities, "
            f"{self.relations.shape[0]:,} relations)"
        )


@dataclass(frozen=True, repr=False)
class KGData:
    """A knowledge graph split into train / valid / test, as integer triples with vocabularies.

    Attributes
    ----------
    name : str
        Data set name (shipped name, or the folder's base name).
    source : str
        Where it was read from (folder path, or ``nesy.datasets:data/kg/<name>``).
    train, valid, test : ndarray of shape (n, 3), int64
        Triples as ``(head, relation, tail)`` ids, in file order (duplicates kept).
    entities : list of str
        ``entities[i]`` is the label of entity ``i``.
    relations : list of str
        ``relations[j]`` is the label of relation ``j``.
    entity_to_id, relation_to_id : dict of str to int
        The inverse maps (built from the lists when not given).
    location : str
        What :func:`load_kg` reads this data set from again: the shipped name, or the folder's
        absolute path ("" for a data set built in memory). :meth:`nesy.kge.KGEModel.save`
        keeps it, so that ``nesy kge eval`` finds the data a model was trained on.
    """

    name: str
    source: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    entities: list[str]
    relations: list[str]
    entity_to_id: dict[str, int] = field(default_factory=dict)
    relation_to_id: dict[str, int] = field(default_factory=dict)
    location: str = ""

    def __post_init__(self) -> None:
        # The label -> id maps are derived from the label lists when not given.
        for labels, attr in ((self.entities, "entity_to_id"), (self.relations, "relation_to_id")):
            if not getattr(self, attr):
                object.__setattr__(self, attr, {lab: i for i, lab in enumerate(labels)})

    # ------------------------------------------------------------------ sizes and summary
    @property
    def n_entities(self) -> int:
        return len(self.entities)

    @property
    def n_relations(self) -> int:
        return len(self.relations)

    def split(self, name: str) -> np.ndarray:
        """The triples of split ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if name not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def __repr__(self) -> str:
        return (
            f"KGData({self.name!r}: {self.n_entities:,} entities, {self.n_relations:,} "
            f"relations, train {len(self.train):,} / valid {len(self.valid):,} / "
            f"test {len(self.test):,} triples)"
        )

    # ------------------------------------------------------------------ filtering
    def all_triples(self) -> np.ndarray:
        """Every known true triple (train, valid and test), for filtered evaluation.

        Returns
        -------
        ndarray of shape (n_unique, 3), int64
            Unique rows, sorted lexicographically by (head, relation, tail).
        """
        return np.unique(np.concatenate([self.train, self.valid, self.test]), axis=0)

    def unseen(self, split: str = "test") -> UnseenReport:
        """Report the triples of ``split`` whose entities or relation never occur in training."""
        if split not in ("valid", "test"):
            raise ValueError(f"split: expected 'valid' or 'test', got {split!r}")
        triples = self.split(split)
        seen_e = np.zeros(self.n_entities, dtype=bool)
        seen_e[self.train[:, 0]] = True
        seen_e[self.train[:, 2]] = True
        seen_r = np.zeros(self.n_relations, dtype=bool)
        seen_r[self.train[:, 1]] = True
        bad = ~seen_e[triples[:, 0]] | ~seen_e[triples[:, 2]] | ~seen_r[triples[:, 1]]
        ents = np.unique(triples[:, [0, 2]])
        rels = np.unique(triples[:, 1])
        return UnseenReport(
            split=split,
            rows=np.flatnonzero(bad).astype(np.int64),
            entities=ents[~seen_e[ents]].astype(np.int64),
            relations=rels[~seen_r[rels]].astype(np.int64),
            n_triples=int(triples.shape[0]),
        )

    @property
    def unseen_test(self) -> UnseenReport:
        """``unseen("test")``: test triples with an entity or relation never seen in training."""
        return self.unseen("test")

    # ------------------------------------------------------------------ labels <-> ids
    def entity_id(self, labels: Union[str, Iterable[str]]) -> Any:
        """Id of one entity label (int), or int64 array of ids of a sequence of labels.

        Labels only: anything else (an id, None) is a ``TypeError`` naming ``labels`` (and the
        position in a sequence); an unknown label is an :class:`UnknownLabelError`."""
        return _lookup(self.entity_to_id, labels, "entity", self.name)

    def relation_id(self, labels: Union[str, Iterable[str]]) -> Any:
        """Id of one relation label (int), or int64 array of ids of a sequence of labels
        (labels only, as :meth:`entity_id`)."""
        return _lookup(self.relation_to_id, labels, "relation", self.name)

    def entity_label(self, ids: Any) -> Any:
        """Label of one entity id (str), or list of labels of an array of ids (nested lists
        of the array's shape for a 2-D array, e.g. the ``(n, k)`` ids of
        :meth:`nesy.kge.KGEModel.predict_tails`)."""
        return _labels(self.entities, ids, "entity")

    def relation_label(self, ids: Any) -> Any:
        """Label of one relation id (str), or list of labels of an array of ids (nested as the
        array)."""
        return _labels(self.relations, ids, "relation")

    def encode(self, triples: Iterable[Sequence[str]]) -> np.ndarray:
        """Label triples ``(head, relation, tail)`` -> int64 array of shape (n, 3).

        Raises
        ------
        UnknownLabelError
            Naming the first unknown label, its position and whether it is an entity or relation.
        TypeError
            A row that is not a sequence, or an item that is not a label (ids are not
            accepted); the message names its position, ``triples[i][j]``.
        """
        if isinstance(triples, (str, bytes)) or not isinstance(triples, Iterable):
            raise TypeError(f"triples: expected a sequence of (head, relation, tail) label "
                            f"triples, got {type(triples).__name__}")
        rows = []
        for i, t in enumerate(triples):
            if isinstance(t, (str, bytes)) or not isinstance(t, Iterable):
                raise TypeError(f"triples[{i}]: expected a (head, relation, tail) triple of "
                                f"labels, got {t!r}")
            rows.append(tuple(t))
        out = np.empty((len(rows), 3), dtype=np.int64)
        for i, row in enumerate(rows):
            if len(row) != 3:
                raise ValueError(f"triples: row {i} has {len(row)} items, expected 3: {row!r}")
            for j, (table, kind) in enumerate(self._columns()):
                out[i, j] = _lookup(table, row[j], kind, self.name, f" in triples[{i}][{j}]",
                                    f"triples[{i}][{j}]", sequence=False)
        return out

    def _columns(self) -> tuple[tuple[dict[str, int], str], ...]:
        ent = (self.entity_to_id, "entity")
        return (ent, (self.relation_to_id, "relation"), ent)

    def decode(self, triples: Any) -> list[tuple[str, str, str]]:
        """Int triples of shape (n, 3) -> list of label triples ``(head, relation, tail)``."""
        arr = np.asarray(triples)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"triples: expected shape (n, 3), got {arr.shape}")
        heads = self.entity_label(arr[:, 0])
        rels = self.relation_label(arr[:, 1])
        tails = self.entity_label(arr[:, 2])
        return list(zip(heads, rels, tails))


def _lookup(table: dict[str, int], labels: Any, kind: str, name: str, where: str = "",
            arg: str = "labels", sequence: bool = True) -> Any:
    """The id of the label ``labels``, or with ``sequence`` the ids of a sequence of labels;
    ``arg`` (the argument and position) names anything else in a TypeError."""
    if isinstance(labels, np.ndarray) and labels.ndim == 0:
        labels = labels.item()
    if isinstance(labels, str):
        try:
            return table[labels]
        except KeyError:
            raise UnknownLabelError(
                f"unknown {kind} label {labels!r}{where} (not among the {len(table):,} "
                f"{kind} labels of {name!r})"
            ) from None
    if not sequence or isinstance(labels, bytes) or not isinstance(labels, Iterable):
        what = f"{'an' if kind == 'entity' else 'a'} {kind} label (str)"
        if sequence and not where:
            what += " or a sequence of labels"
        raise TypeError(f"{arg}: expected {what}, got {type(labels).__name__} {labels!r}")
    out = [_lookup(table, lab, kind, name, f" at position {i}", f"{arg}[{i}]")
           for i, lab in enumerate(labels)]
    return np.array(out, dtype=np.int64)


def _labels(labels: list[str], ids: Any, kind: str) -> Any:
    """The label of one id, or the labels of an array of ids as (nested) lists of its
    shape."""
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{kind} ids: expected integers, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= len(labels))
    if np.any(bad):
        first = int(arr[bad].flat[0])
        raise IndexError(f"{kind} id {first} out of range [0, {len(labels)})")
    if arr.ndim == 0:
        return labels[int(arr)]
    flat = np.empty(arr.size, dtype=object)
    flat[:] = [labels[int(i)] for i in arr.ravel()]
    return flat.reshape(arr.shape).tolist()


# ---------------------------------------------------------------------- reading files
def _read_split(path: Any, shown: str) -> list[tuple[str, str, str]]:
    """Label triples of one split file; ``shown`` is the file name used in error messages.

    Lines end with LF or CRLF; blank (or whitespace-only) lines are skipped; a UTF-8 byte-order
    mark is accepted; each field is stripped of surrounding whitespace. A line that is not UTF-8
    or not three non-empty tab-separated fields raises ``ValueError`` naming the file and the
    1-based line number.
    """
    rows: list[tuple[str, str, str]] = []
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise MissingFileError(
            errno.ENOENT, f"name_or_path: {shown}: no such file (a knowledge-graph folder "
            f"holds train.txt, valid.txt and test.txt)", shown) from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                msg = f"{shown}, line {lineno}: not valid UTF-8 ({err.reason})"
                raise ValueError(msg) from None
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) != 3 or not all(fields):
                snippet = line if len(line) <= 80 else line[:77] + "..."
                raise ValueError(
                    f"{shown}, line {lineno}: expected 'head<TAB>relation<TAB>tail' (3 non-empty "
                    f"tab-separated fields), got {len(fields)} field(s): {snippet!r}"
                )
            rows.append((fields[0], fields[1], fields[2]))
    if not rows:
        raise ValueError(f"{shown}: the split is empty (no triples)")
    return rows


def _resolve(name_or_path: Union[str, os.PathLike]) -> tuple[str, str, Any]:
    """(name, source, folder) where folder supports ``/ "train.txt"`` and ``.open()``."""
    if isinstance(name_or_path, str) and name_or_path.lower() in SHIPPED_KG:
        name = name_or_path.lower()
        folder = resources.files("nesy.datasets") / "data" / "kg" / name
        return name, f"nesy.datasets:data/kg/{name}", folder
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path: expected a str or path, got {type(name_or_path).__name__}")
    if os.fspath(name_or_path) == "":  # Path("") is ".": never read the current folder silently
        raise MissingFileError(
            errno.ENOENT, "name_or_path: '' is empty, neither a shipped knowledge graph "
            f"({', '.join(SHIPPED_KG)}) nor a folder (write '.' for the current folder)", "")
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        shown = os.fspath(name_or_path)
        raise MissingFileError(
            errno.ENOENT, f"name_or_path: {shown!r} is neither a shipped knowledge graph "
            f"({', '.join(SHIPPED_KG)}) nor an existing folder", shown)
    return folder.resolve().name, str(folder), folder


def load_kg(name_or_path: Union[str, os.PathLike]) -> KGData:
    """Load a knowledge graph: a shipped one by name, or any folder in the standard layout.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"nations"``, ``"umls"`` or ``"kinship"`` (case-insensitive; shipped in the package,
        read offline), or a folder holding ``train.txt``, ``valid.txt`` and ``test.txt`` with
        one ``head<TAB>relation<TAB>tail`` triple a line. A shipped name always means the
        shipped copy; write ``"./umls"`` to read a local folder of that name.

    Returns
    -------
    KGData
        Integer triples of shape (n, 3) per split in ``(head, relation, tail)`` order, and the
        entity and relation vocabularies. Ids follow the order of first appearance in train,
        then valid, then test (head before tail on each line).

    Raises
    ------
    FileNotFoundError
        The folder or one of its three files does not exist (``filename`` is the path).
    ValueError
        A malformed line (the message names the file and line number) or an empty split.

    Warns
    -----
    UserWarning
        Once, when valid or test triples have an entity or relation that never occurs in
        train. They are kept: :meth:`nesy.kge.KGEModel.evaluate` and the rules rank them like
        any other triple (an embedding training never updated; PyKEEN drops such triples
        instead). :attr:`KGData.unseen_test` and ``KGData.unseen("valid")`` list them, e.g. to
        evaluate without them: ``np.delete(data.test, data.unseen_test.rows, axis=0)``.
    """
    name, source, folder = _resolve(name_or_path)
    labelled = {s: _read_split(folder / f"{s}.txt", f"{source}/{s}.txt") for s in SPLITS}
    ent: dict[str, int] = {}
    rel: dict[str, int] = {}
    arrays: dict[str, np.ndarray] = {}
    for s in SPLITS:
        rows = labelled[s]
        out = np.empty((len(rows), 3), dtype=np.int64)
        for i, (h, r, t) in enumerate(rows):
            out[i, 0] = ent.setdefault(h, len(ent))
            out[i, 1] = rel.setdefault(r, len(rel))
            out[i, 2] = ent.setdefault(t, len(ent))
        arrays[s] = out
    data = KGData(
        name=name,
        source=source,
        train=arrays["train"],
        valid=arrays["valid"],
        test=arrays["test"],
        entities=list(ent),
        relations=list(rel),
        entity_to_id=ent,
        relation_to_id=rel,
        location=name if source.startswith("nesy.datasets:") else str(Path(folder).resolve()),
    )
    _warn_unseen(data)
    return data


def _warn_unseen(data: KGData) -> None:
    """One UserWarning (pointing at the caller of :func:`load_kg`) when valid or test triples
    have an entity or relation never seen in train."""
    reports = [r for r in (data.unseen("test"), data.unseen("valid")) if len(r)]
    if reports:
        warn_user(
            f"load_kg: {data.name!r}: {'; '.join(map(str, reports))}. They are kept, and "
            f"evaluation ranks them like the others although training never saw that entity or "
            f"relation; KGData.unseen_test and KGData.unseen('valid') list them (.rows), to "
            f"leave them out or report them separately")
