"""``KGEModel``: a knowledge-graph embedding model trained in Rust (``rust/core/src/kge/train.rs``).

>>> from nesy.datasets import load_kg
>>> from nesy.kge import KGEModel
>>> data = load_kg("nations")
>>> m = KGEModel("complex", dim=16, epochs=5, verbose=0).fit(data)
>>> sorted(m.evaluate(data.test, data.all_triples())["both"])
['count', 'hits@1', 'hits@10', 'hits@3', 'mr', 'mrr']

One call to the kernel per epoch, with the GIL released; the same ``seed`` gives the same
embeddings for any number of threads. Early stopping on validation MRR keeps the best
embeddings; ``checkpoint`` saves them (and the optimizer state) atomically as ``.npz`` each time
the validation MRR improves (and at the end of a run without validation), so that
``fit(..., resume=True)`` continues from the best epoch saved (epochs after it are run again),
and :meth:`KGEModel.load` reads a checkpoint as well as a file written by :meth:`save`.

A model trained on a :class:`nesy.datasets.KGData` keeps the entity and relation labels (in its
saved files and checkpoints too): its queries take labels as well as ids.

>>> ids, scores = m.predict_tails("usa", "intergovorgs", k=3, filter_triples=data.train)
>>> len(m.entity_label(ids[0]))
3
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np
from sklearn.exceptions import NotFittedError

from nesy import _core
from nesy._checks import (
    check_bool,
    check_float_dtype,
    check_int,
    check_verbose,
    physical_memory_bytes,
    warn_user,
)
from nesy._io import _fspath, atomic_savez, check_target, read_npz
from nesy.datasets.kg import MissingFileError, UnknownLabelError, _labels
from nesy.kge.evaluate import TIES, evaluate
from nesy.kge.scoring import (
    COMPLEX_MODELS,
    check_model,
    check_seed,
    check_triples,
    score,
    score_heads,
    score_tails,
    widths,
)
from nesy.kge.scoring import check_ids as _check_ids

#: Loss of each model when ``loss=None``: TransE and RotatE, their papers' losses; DistMult and
#: ComplEx, the 1-vs-all cross-entropy of Lacroix et al. 2018, which trains them best.
DEFAULT_LOSS = {"transe_l1": "margin", "transe_l2": "margin", "distmult": "ce",
                "complex": "ce", "rotate": "self_adversarial"}
LOSSES = ("margin", "softplus", "self_adversarial", "bce", "ce")


@dataclass
class _TrainArgs:
    """What the kernel reads (``rust/py/src/kge.rs``: ``TrainArgs``)."""

    loss: str
    margin: float
    gamma: float
    adversarial_temperature: float
    label_smoothing: float
    num_negatives: int
    sampler: str
    shared_negatives: bool
    batch_size: int
    optimizer: str
    lr: float
    betas: tuple[float, float]
    eps: float
    regulariser: Optional[str]
    regulariser_weight: float
    normalize_entities: bool
    seed: int


def _provenance(data: Any) -> dict[str, np.ndarray]:
    """What a saved model or a checkpoint records about the data it was trained on, when
    ``data`` (a KGData) knows it: the row labels (``"entities"``, ``"relations"``) and where
    :func:`nesy.datasets.load_kg` reads the data again (``"data"``)."""
    out = {name: np.array(list(getattr(data, name)), dtype=str)
           for name in ("entities", "relations") if getattr(data, name, None) is not None}
    if getattr(data, "location", ""):
        out["data"] = np.array(str(data.location))
    return out


_CHECKPOINT_KEYS = ("model", "entity_embeddings", "relation_embeddings", "ent_state",
                    "rel_state", "step", "epoch", "history", "best")


def _scalar(arrays: dict[str, np.ndarray], key: str, kinds: str,
            bad: Callable[[str], ValueError]) -> Any:
    """The value of a 0-d array of a dtype kind in ``kinds`` ("U" text, "iu" integers) read
    from a file; ``bad(why)`` otherwise."""
    a = arrays[key]
    if a.ndim != 0 or a.dtype.kind not in kinds:
        raise bad(f"{key!r}: expected a single {'text' if kinds == 'U' else 'integer'}, got "
                  f"shape {a.shape} {a.dtype}")
    return a.item()


def _number(name: str, v: Any) -> float:
    """Parameter ``name`` as a float; TypeError naming it when ``v`` is not a real number."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                             np.floating)):
        raise TypeError(f"{name}: expected a number, got {v!r}")
    return float(v)


def _data_parts(train: Any, valid: Any) -> tuple[np.ndarray, Optional[np.ndarray], int, int]:
    """Training triples, validation triples and the table sizes from a KGData or arrays."""
    if hasattr(train, "train") and hasattr(train, "n_entities"):
        data = train
        return (check_triples(data.train, "train"),
                check_triples(data.valid, "valid") if valid is None else check_triples(valid,
                                                                                       "valid"),
                int(data.n_entities), int(data.n_relations))
    tr = check_triples(train, "train")
    va = None if valid is None else check_triples(valid, "valid")
    both = tr if va is None else np.concatenate([tr, va])
    if both.size == 0:
        raise ValueError("train: the training set is empty")
    n_ent = int(max(both[:, 0].max(), both[:, 2].max())) + 1
    return tr, va, n_ent, int(both[:, 1].max()) + 1


class KGEModel:
    """Knowledge-graph embeddings with scikit-learn conventions.

    Parameters
    ----------
    model : {"transe_l1", "transe_l2", "distmult", "complex", "rotate"}
    dim : int
        Rank: real dimensions (TransE, DistMult) or complex dimensions (ComplEx, RotatE). An
        integer (NumPy integers too); a float, even ``4.0``, is refused.
    loss : {"margin", "softplus", "self_adversarial", "bce", "ce"}, optional
        Default per model (:data:`DEFAULT_LOSS`). ``"bce"`` (binary cross-entropy, KvsAll) and
        ``"ce"`` (softmax cross-entropy per known answer, Lacroix et al. 2018) are 1-vs-all
        training over both directions and need a dot-product model (DistMult, ComplEx).
    num_negatives : int
        Negatives per positive (not for the 1-vs-all losses ``"bce"`` and ``"ce"``).
    sampler : {"uniform", "bernoulli"}
        Which side a negative corrupts (it replaces that entity by a uniform other one).
    shared_negatives : bool
        One set of negative entities per chunk of 32 positives, scored as one product (the
        corrupted side drawn per chunk: ``sampler="uniform"`` only). The shared entities are
        drawn uniformly from all entities, so, unlike the negatives drawn per positive, one of
        them may be a positive's own entity (the corruption then reproduces the positive):
        with ``num_negatives`` ``k`` over ``n`` entities, a positive's own entity is among its
        negatives with probability ``1 - (1 - 1/n)^k`` (99 % for ``k = 64`` on Nations,
        ``n = 14``; 0.16 % on WN18RR). With the ``"self_adversarial"`` or ``"softplus"`` loss
        such a term pushes the positive's score down (the margin loss's gradients cancel); on
        small graphs prefer the default, ``shared_negatives=False``.
    batch_size, epochs : int
    optimizer : {"adam", "adagrad"}
        Row-wise updates of the rows each batch touches.
    lr, betas, eps : float
    margin : float
        Margin of the ranking loss.
    gamma : float, optional
        Margin of the self-adversarial loss (default 12 for distance models, 0 otherwise);
        finite, and for RotatE without ``init_scale`` at least -2 (its entities start uniform in
        ``+-(gamma + 2) / dim``).
    adversarial_temperature : float
        Self-adversarial weighting (0: uniform weights).
    label_smoothing : float
        For ``"bce"``.
    regulariser : {"l2", "n3"}, optional
    regulariser_weight : float
    normalize_entities : bool, optional
        Unit-norm entity rows after each update (default: True for TransE).
    init_scale : float, optional
        Spread of the initial embeddings, finite and > 0 (default per model, see
        :meth:`_init_tables`).
    eval_every : int
        Epochs between validation evaluations (with ``valid``); 0 never.
    patience : int, optional
        Stop after this many evaluations without a better validation MRR.
    checkpoint : str, optional
        ``.npz`` path: the best embeddings and the optimizer state, saved atomically.
    dtype : {"float32", "float64"}
    seed : int
    verbose : int
        0 (or False): silent; 1 (or True) and above: a progress bar over epochs.

    Attributes
    ----------
    entity_embeddings_, relation_embeddings_ : ndarray
    history_ : list of dict
        Per epoch: ``epoch``, ``loss`` and, when evaluated, ``valid_mrr``.
    best_epoch_ : int
    n_entities_, n_relations_ : int
    entities_, relations_ : list of str or None
        The labels of the table rows when trained on a :class:`nesy.datasets.KGData`
        (saved with the model and in checkpoints; :meth:`check_data` compares them with a
        data set). With them, :meth:`score`, :meth:`predict_tails`, :meth:`predict_heads` and
        :meth:`evaluate` take labels as well as ids.
    data_location_ : str or None
        What :func:`nesy.datasets.load_kg` reads the training data from again (a shipped name
        or a folder's absolute path), when trained on data read by ``load_kg``; saved with the
        model (``nesy kge eval`` evaluates on it unless ``--data`` is given).
    """

    def __init__(self, model: str = "rotate", dim: int = 200, loss: Optional[str] = None,
                 num_negatives: int = 64, sampler: str = "uniform",
                 shared_negatives: bool = False, batch_size: int = 512, epochs: int = 100,
                 optimizer: str = "adam", lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 margin: float = 1.0, gamma: Optional[float] = None,
                 adversarial_temperature: float = 1.0, label_smoothing: float = 0.0,
                 regulariser: Optional[str] = None, regulariser_weight: float = 0.0,
                 normalize_entities: Optional[bool] = None, init_scale: Optional[float] = None,
                 eval_every: int = 10, patience: Optional[int] = None,
                 checkpoint: Optional[str] = None, dtype: str = "float32", seed: int = 0,
                 verbose: int = 1) -> None:
        self.model = model
        self.dim = dim
        self.loss = loss
        self.num_negatives = num_negatives
        self.sampler = sampler
        self.shared_negatives = shared_negatives
        self.batch_size = batch_size
        self.epochs = epochs
        self.optimizer = optimizer
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.margin = margin
        self.gamma = gamma
        self.adversarial_temperature = adversarial_temperature
        self.label_smoothing = label_smoothing
        self.regulariser = regulariser
        self.regulariser_weight = regulariser_weight
        self.normalize_entities = normalize_entities
        self.init_scale = init_scale
        self.eval_every = eval_every
        self.patience = patience
        self.checkpoint = checkpoint
        self.dtype = dtype
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------------ sklearn protocol
    _PARAMS = ("model", "dim", "loss", "num_negatives", "sampler", "shared_negatives",
               "batch_size", "epochs", "optimizer", "lr", "betas", "eps", "margin", "gamma",
               "adversarial_temperature", "label_smoothing", "regulariser",
               "regulariser_weight", "normalize_entities", "init_scale", "eval_every",
               "patience", "checkpoint", "dtype", "seed", "verbose")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params: Any) -> KGEModel:
        for k, v in params.items():
            if k not in self._PARAMS:
                raise ValueError(f"{k}: not a parameter of KGEModel")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        """``model`` and ``dim`` always, then every other parameter that differs from its
        default (as scikit-learn's estimators print themselves), in the constructor's order."""
        import inspect

        defaults = {k: p.default for k, p in inspect.signature(KGEModel).parameters.items()}
        shown = [f"model={self.model!r}", f"dim={self.dim!r}"]
        for k in self._PARAMS[2:]:
            v = getattr(self, k)
            if repr(v) != repr(defaults[k]):
                shown.append(f"{k}={v!r}")
        return f"KGEModel({', '.join(shown)})"

    # ------------------------------------------------------------------ training
    def _resolved(self) -> _TrainArgs:
        model = check_model(self.model)
        loss = DEFAULT_LOSS[model] if self.loss is None else self.loss
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
        distance = model in ("transe_l1", "transe_l2", "rotate")
        gamma = (12.0 if distance else 0.0) if self.gamma is None else self.gamma
        gamma = _number("gamma", gamma)
        if not np.isfinite(gamma):
            raise ValueError(f"gamma: expected a finite number, got {gamma!r}")
        if model == "rotate" and self.init_scale is None and gamma < -2:
            raise ValueError(f"gamma: expected a number >= -2 for rotate, whose entities start "
                             f"uniform in +-(gamma + 2) / dim (or set init_scale), got {gamma!r}")
        if self.init_scale is not None:
            scale = _number("init_scale", self.init_scale)
            if not (np.isfinite(scale) and scale > 0):
                raise ValueError(f"init_scale: expected None or a finite number > 0, got "
                                 f"{self.init_scale!r}")
        check_int("dim", self.dim, 1)  # a float dim would be saved in a file load refuses
        check_float_dtype(self.dtype)
        for name in ("num_negatives", "batch_size", "epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v < 2**63:
                # (beyond 2**63 the kernel's argument conversion failed with a TypeError)
                raise ValueError(f"{name}: must be a positive integer below 2**63, got {v!r}")
        ev = self.eval_every
        if isinstance(ev, bool) or not isinstance(ev, (int, np.integer)) or ev < 0:
            raise ValueError(f"eval_every: must be an integer >= 0, got {ev!r}")
        pt = self.patience
        if pt is not None and (isinstance(pt, bool) or not isinstance(pt, (int, np.integer))
                               or pt < 1):
            raise ValueError(f"patience: must be None or an integer >= 1, got {pt!r}")
        normalize = (model.startswith("transe") if self.normalize_entities is None
                     else check_bool("normalize_entities", self.normalize_entities))
        check_verbose("verbose", self.verbose)  # a level; False and True are 0 and 1
        betas = self.betas
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"betas: expected a pair of numbers, got {betas!r}")
        return _TrainArgs(
            loss=loss, margin=_number("margin", self.margin), gamma=gamma,
            adversarial_temperature=_number("adversarial_temperature",
                                            self.adversarial_temperature),
            label_smoothing=_number("label_smoothing", self.label_smoothing),
            num_negatives=int(self.num_negatives), sampler=str(self.sampler),
            shared_negatives=check_bool("shared_negatives", self.shared_negatives),
            batch_size=int(self.batch_size),
            optimizer=str(self.optimizer), lr=_number("lr", self.lr),
            betas=(_number("betas", betas[0]), _number("betas", betas[1])),
            eps=_number("eps", self.eps),
            regulariser=None if self.regulariser is None else str(self.regulariser),
            regulariser_weight=_number("regulariser_weight", self.regulariser_weight),
            normalize_entities=normalize, seed=check_seed(self.seed))

    def _check_options(self) -> None:
        """Every option checked as :meth:`fit` checks it, without training: :meth:`_resolved`,
        then the kernel's own checks (ranges of ``lr``, ``betas``, ``eps``, ``margin``...,
        combinations such as ``sampler="bernoulli"`` with ``shared_negatives``) on one epoch
        over a throwaway graph of two entities and one triple."""
        args = self._resolved()
        d_e, d_r = widths(self.model, self.dim)
        dt = check_float_dtype(self.dtype)
        ent, rel = np.zeros((2, d_e), dt), np.zeros((1, d_r), dt)
        k = 2 if args.optimizer == "adam" else 1
        _core.kge_train_epoch(self.model, ent, rel, np.zeros((k,) + ent.shape, dt),
                              np.zeros((k,) + rel.shape, dt), 0,
                              np.array([[0, 0, 1]], dtype=np.int64), np.full(1, 0.5), 0, args)

    def _init_tables(self, n_ent: int, n_rel: int, args: _TrainArgs
                     ) -> tuple[np.ndarray, np.ndarray]:
        """TransE: uniform(+-6/sqrt(k)) rows, entities normalised (Bordes et al.); RotatE:
        entities uniform(+-(gamma + 2) / k), phases uniform(-pi, pi) (Sun et al.); DistMult and
        ComplEx: normal with std ``init_scale`` (default 0.1)."""
        dt = check_float_dtype(self.dtype)
        d_e, d_r = widths(self.model, self.dim)
        k = check_int("dim", self.dim, 1)
        rng = np.random.default_rng(self.seed)
        if self.model.startswith("transe"):
            b = 6 / np.sqrt(k) if self.init_scale is None else self.init_scale
            ent = rng.uniform(-b, b, (n_ent, d_e))
            rel = rng.uniform(-b, b, (n_rel, d_r))
            if args.normalize_entities:
                ent /= np.linalg.norm(ent, axis=1, keepdims=True)
        elif self.model == "rotate":
            b = (args.gamma + 2.0) / k if self.init_scale is None else self.init_scale
            ent = rng.uniform(-b, b, (n_ent, d_e))
            rel = rng.uniform(-np.pi, np.pi, (n_rel, d_r))
        else:
            s = 0.1 if self.init_scale is None else self.init_scale
            ent = rng.normal(0, s, (n_ent, d_e))
            rel = rng.normal(0, s, (n_rel, d_r))
        return np.ascontiguousarray(ent, dt), np.ascontiguousarray(rel, dt)

    def fit(self, train: Any, valid: Any = None, known: Any = None,
            resume: bool = False) -> KGEModel:
        """Train on ``train`` (a :class:`nesy.datasets.KGData`, whose ``valid`` split is used
        when ``valid`` is None, or an ``(n, 3)`` int array).

        Parameters
        ----------
        train : KGData or ndarray of int, shape (n, 3)
            Training triples ``(head, relation, tail)``. From an array, the tables have a row
            for every id up to the largest one in ``train`` and ``valid``.
        valid : ndarray of int, shape (m, 3), optional
            Validation triples for early stopping on filtered MRR.
        known : ndarray of int, shape (p, 3), optional
            Triples filtered from the validation ranking (default: train + valid).
        resume : bool
            Continue from ``checkpoint`` (embeddings, optimizer state, epoch, history), up to
            ``epochs`` epochs in all: ValueError naming ``epochs`` when the checkpoint has
            trained more than ``epochs`` already.

        Raises
        ------
        TypeError, ValueError
            An invalid option (before any training); the message names it.
        OSError
            ``checkpoint`` cannot be written (its folder does not exist, or it is a folder),
            found before training; the message names ``checkpoint``.
        """
        args = self._resolved()
        resume = check_bool("resume", resume)
        self._check_checkpoint()
        tr, va, n_ent, n_rel = _data_parts(train, valid)
        self._check_table_sizes(n_ent, n_rel, args, hasattr(train, "n_entities"))
        meta = _provenance(train)
        if tr.shape[0] == 0:
            raise ValueError("train: the training set is empty")
        if hasattr(train, "all_triples") and known is None:
            known = np.concatenate([tr] + ([va] if va is not None and va.size else []))
        elif known is None:
            known = tr if va is None else np.concatenate([tr, va])
        known = check_triples(known, "known")
        for name, t in (("train", tr), ("valid", va), ("known", known)):
            if t is not None:
                _check_ids(t, n_ent, n_rel, name)
        # Everything below works on local tables; the fitted attributes are set together at
        # the end, so a fit that raises (a bad option the kernel refuses, a loss that diverges)
        # leaves a fitted model as it was and an unfitted one unfitted.
        ent, rel = self._init_tables(n_ent, n_rel, args)
        n_states = 2 if args.optimizer == "adam" else 1
        ent_state = np.zeros((n_states,) + ent.shape, ent.dtype)
        rel_state = np.zeros((n_states,) + rel.shape, rel.dtype)
        step, start, history = 0, 0, []
        best = (-np.inf, -1)
        if resume:
            ent, rel, ent_state, rel_state, step, start, history, best = self._load_checkpoint(
                ent, rel, ent_state, rel_state, meta)
            if start > int(self.epochs):
                raise ValueError(f"epochs: {int(self.epochs)}, but the checkpoint "
                                 f"{_fspath(self.checkpoint)!r} has trained {start} epochs "
                                 f"already (up to epoch {start - 1}, counted from 0): resume "
                                 f"with epochs >= {start}")
        head_prob = np.asarray(_core.kge_bernoulli_probs(tr, n_rel), dtype=np.float64)
        best_tables = (ent.copy(), rel.copy())
        bar = self._progress_bar(start)
        waited = 0
        try:
            for epoch in range(start, int(self.epochs)):
                loss, step = _core.kge_train_epoch(self.model, ent, rel, ent_state, rel_state,
                                                   step, tr, head_prob, epoch, args)
                if not np.isfinite(loss):
                    raise FloatingPointError(f"loss: not finite ({loss}) at epoch {epoch}; "
                                             f"lower lr")
                record: dict[str, Any] = {"epoch": epoch, "loss": float(loss)}
                last = epoch == int(self.epochs) - 1
                if va is not None and va.size and self.eval_every and (
                        (epoch + 1) % self.eval_every == 0 or last):
                    mrr = evaluate(self.model, ent, rel, va, known,
                                   per_relation=False)["both"]["mrr"]
                    record["valid_mrr"] = mrr
                    if mrr > best[0]:
                        best, waited = (mrr, epoch), 0
                        best_tables = (ent.copy(), rel.copy())
                        self._save_checkpoint(ent, rel, ent_state, rel_state, step, epoch,
                                              history + [record], best, meta)
                    else:
                        waited += 1
                history.append(record)
                if bar is not None:
                    bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"},
                                    refresh=False)
                    bar.update(1)
                if self.patience is not None and waited >= self.patience:
                    break
        finally:
            if bar is not None:
                bar.close()
        if best[1] >= 0:
            ent[...], rel[...] = best_tables
        elif self.checkpoint:
            self._save_checkpoint(ent, rel, ent_state, rel_state, step, len(history) - 1,
                                  history, best, meta)
        self.n_entities_, self.n_relations_ = n_ent, n_rel
        self._args = args
        self.entity_embeddings_, self.relation_embeddings_ = ent, rel
        # The labels of the rows, when trained on a KGData (saved with the model, checked
        # against the data it is evaluated on), and where load_kg reads that data again.
        self.entities_ = list(train.entities) if hasattr(train, "entities") else None
        self.relations_ = list(train.relations) if hasattr(train, "relations") else None
        self.data_location_ = str(meta["data"]) if "data" in meta else None
        self.history_ = history
        self.best_epoch_ = best[1] if best[1] >= 0 else len(history) - 1
        return self

    def _check_table_sizes(self, n_ent: int, n_rel: int, args: _TrainArgs,
                           from_data: bool) -> None:
        """ValueError before anything is allocated when the tables (with the optimizer state
        and the copy of the best ones) cannot fit in this machine's memory: from id arrays,
        that is an id far beyond the number of entities or relations (the tables have a row
        for every id up to the largest)."""
        mem = physical_memory_bytes()
        if mem is None:
            return
        d_e, d_r = widths(self.model, self.dim)
        copies = 2 + (2 if args.optimizer == "adam" else 1)  # tables, best copy, state
        size = np.dtype(self.dtype).itemsize * copies
        need = (n_ent * d_e + n_rel * d_r) * size
        if need <= mem:
            return
        kind, n = ("entity", n_ent) if n_ent * d_e >= n_rel * d_r else ("relation", n_rel)
        gib = f"{need / 2**30:,.1f} GiB with the optimizer state, more than this machine's " \
              f"{mem / 2**30:,.1f} GiB"
        if from_data:
            raise ValueError(f"train: {n:,} {kind} rows of width "
                             f"{d_e if kind == 'entity' else d_r} need {gib}")
        raise ValueError(f"train: {kind} id {n - 1:,} implies a table of {n:,} rows ({gib}); "
                         f"ids must be 0..n-1 (remap them, or use load_kg)")

    def _progress_bar(self, start: int) -> Any:
        """A tqdm bar over the epochs (None with ``verbose=0``), at ``start`` when resuming;
        :meth:`fit` moves it by one after each epoch, so that it ends at N/N."""
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=int(self.epochs), initial=start, desc=f"{self.model} epochs",
                    unit="epoch")

    def _check_checkpoint(self) -> None:
        """Before training (a checkpoint is first saved after epochs of it): ``checkpoint`` is
        None or a file path whose folder exists (:func:`nesy._io.check_target`); the errors
        name ``checkpoint``."""
        if self.checkpoint is None:
            return
        try:
            shown = _fspath(self.checkpoint)
        except TypeError:
            raise TypeError(f"checkpoint: expected None or a file path (str, bytes or "
                            f"os.PathLike), got {type(self.checkpoint).__name__} "
                            f"{self.checkpoint!r}") from None
        if shown == "":
            raise MissingFileError(errno.ENOENT, "checkpoint: '' is not a file path (None "
                                   "saves no checkpoint)", "")
        try:
            check_target(shown)
        except FileNotFoundError as exc:
            raise MissingFileError(exc.errno, f"checkpoint: {exc.strerror}",
                                   exc.filename) from None
        except OSError as exc:
            exc.strerror = f"checkpoint: {exc.strerror}"
            raise

    def _save_checkpoint(self, ent, rel, ent_state, rel_state, step, epoch, history, best,
                         meta):
        """``meta``: the labels and data location of :func:`_provenance` (stored too, so that
        :meth:`load` of a checkpoint keeps the labels)."""
        if not self.checkpoint:
            return
        hist = np.array([[h["epoch"], h["loss"], h.get("valid_mrr", np.nan)] for h in history],
                        dtype=np.float64).reshape(-1, 3)
        atomic_savez(self.checkpoint, {
            "model": np.array(self.model), "dim": np.array(check_int("dim", self.dim, 1)),
            "entity_embeddings": ent, "relation_embeddings": rel, "ent_state": ent_state,
            "rel_state": rel_state,
            "step": np.array(step), "epoch": np.array(epoch), "history": hist,
            "best": np.array(best, dtype=np.float64), **meta})

    def _load_checkpoint(self, ent, rel, ent_state, rel_state, meta):
        if not self.checkpoint:
            raise MissingFileError(errno.ENOENT, "checkpoint: resume=True needs a checkpoint "
                                   "file to resume from (checkpoint is None)", None)
        path = os.fspath(self.checkpoint)
        if not os.path.exists(path):
            raise MissingFileError(errno.ENOENT, f"checkpoint: no file {path!r} to resume from",
                                   path)
        f = read_npz(path, "KGEModel checkpoint", _CHECKPOINT_KEYS)

        def bad(why: str) -> ValueError:
            return ValueError(f"{path!r}: not a nesy KGEModel checkpoint file ({why})")

        model = _scalar(f, "model", "U", bad)
        if model != self.model:
            raise ValueError(f"checkpoint: {path!r} holds a {model} model, not {self.model}")
        names = ("entity_embeddings", "relation_embeddings", "ent_state", "rel_state")
        loaded = [f[name] for name in names]
        for name, a, b in zip(names, loaded, (ent, rel, ent_state, rel_state)):
            if a.shape != b.shape or a.dtype != b.dtype:
                raise ValueError(f"checkpoint: {name} has shape {a.shape} {a.dtype}, this "
                                 f"model needs {b.shape} {b.dtype}")
            if not _core.all_finite([np.ascontiguousarray(a)]):
                raise bad(f"{name!r} holds NaN or infinity")
        for name in ("entities", "relations"):  # checkpoints of older versions have none
            if name in f and name in meta and not np.array_equal(f[name], meta[name]):
                raise ValueError(f"checkpoint: {path!r} was trained on other {name} than the "
                                 f"data given to fit (same count, other labels or order)")
        step, epoch = _scalar(f, "step", "iu", bad), _scalar(f, "epoch", "iu", bad)
        if not 0 <= step < 2**64 or not -1 <= epoch < 2**63:
            raise bad(f"step {step} or epoch {epoch} out of range")
        hist, best = f["history"], f["best"]
        if (hist.ndim != 2 or hist.shape[1] != 3 or hist.dtype != np.float64
                or not np.isfinite(hist[:, :2]).all()):
            raise bad(f"'history': expected finite (n, 3) float64 rows, got shape {hist.shape} "
                      f"{hist.dtype}")
        if best.shape != (2,) or best.dtype != np.float64 or not np.isfinite(best[1]):
            raise bad(f"'best': expected (mrr, epoch) float64, got shape {best.shape} "
                      f"{best.dtype}")
        history = [{"epoch": int(e), "loss": float(loss_), **(
            {} if np.isnan(m) else {"valid_mrr": float(m)})} for e, loss_, m in hist]
        return (*[np.ascontiguousarray(a) for a in loaded], step, epoch + 1, history,
                (float(best[0]), int(best[1])))

    # ------------------------------------------------------------------ fitted state
    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The fitted tables; ``sklearn.exceptions.NotFittedError`` (a ValueError and an
        AttributeError) before :meth:`fit` or :meth:`load`."""
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("KGEModel: call fit (or load) before using the model")
        return self.entity_embeddings_, self.relation_embeddings_

    def __sklearn_is_fitted__(self) -> bool:
        """For ``sklearn.utils.validation.check_is_fitted``: fitted (or loaded)."""
        return hasattr(self, "entity_embeddings_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (``check_is_fitted`` reads them): an estimator that
        needs ``fit``, neither a classifier nor a regressor, trained on triples without
        ``y``."""
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))

    # ------------------------------------------------------------------ labels
    def _vocabulary(self, kind: str, name: str) -> dict[str, int]:
        """Label -> id of the ``kind`` ("entity" or "relation") rows; ValueError naming the
        argument ``name`` when the model has no labels."""
        labels = getattr(self, "entities_" if kind == "entity" else "relations_", None)
        if labels is None:
            raise ValueError(f"{name}: got a label, but this model has no {kind} labels (it was "
                             f"trained on id arrays, or read from a file without them): pass "
                             f"ids")
        cached = self.__dict__.get("_vocabularies", {}).get(kind)
        if cached is None or cached[0] is not labels:  # built once per fit or load
            cached = (labels, {lab: i for i, lab in enumerate(labels)})
            self.__dict__.setdefault("_vocabularies", {})[kind] = cached
        return cached[1]

    def _label_id(self, label: str, kind: str, name: str) -> int:
        table = self._vocabulary(kind, name)
        try:
            return table[label]
        except KeyError:
            raise UnknownLabelError(f"{name}: unknown {kind} label {label!r} (not among the "
                                    f"model's {len(table):,} {kind} labels)") from None

    def _query_ids(self, values: Any, kind: str, name: str) -> Any:
        """``values`` (ids, a label, or a sequence of ids and labels) with each label replaced
        by its id; anything without a label is returned as it is (checked by the kernels)."""
        if isinstance(values, np.ndarray) and values.ndim == 0 and values.dtype.kind in "UO":
            values = values.item()
        if isinstance(values, str):
            return self._label_id(values, kind, name)
        if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "UO":
            items = values.tolist()
        elif isinstance(values, (list, tuple)):
            items = list(values)
        else:
            return values
        if not any(isinstance(v, str) for v in items):
            return values
        return np.array([self._label_id(v, kind, f"{name}[{i}]") if isinstance(v, str) else v
                         for i, v in enumerate(items)])

    def _triple_ids(self, triples: Any, name: str) -> Any:
        """``triples`` with labels replaced by ids (rows of ``(head, relation, tail)`` ids or
        labels); triples without a label are returned as they are."""
        return label_triples(triples, name, self._label_id)

    def entity_label(self, ids: Any) -> Any:
        """Label of one entity id (str), or list of labels of an array of ids, nested as the
        array (a list of ``n`` lists of ``k`` labels for the ``(n, k)`` ids of
        :meth:`predict_tails`, whose padding -1 is out of range), as
        :meth:`nesy.datasets.KGData.entity_label`."""
        self._has_labels("entities")
        return _labels(self.entities_ or [], ids, "entity")

    def relation_label(self, ids: Any) -> Any:
        """Label of one relation id (str), or list of labels of an array of ids (nested as the
        array)."""
        self._has_labels("relations")
        return _labels(self.relations_ or [], ids, "relation")

    def _has_labels(self, name: str) -> None:
        """ValueError unless the model has ``name`` (``"entities"`` or ``"relations"``)
        labels to give."""
        self._tables()
        if getattr(self, name + "_", None) is None:
            kind = "entity" if name == "entities" else "relation"
            raise ValueError(f"ids: this model has no {kind} labels to look up (it was trained "
                             f"on id arrays, or read from a file without them): use the ids "
                             f"themselves")

    # ------------------------------------------------------------------ inference
    @contextlib.contextmanager
    def _sized_hint(self) -> Iterator[None]:
        """An out-of-range id's IndexError says, for a model fit on id arrays, where its table
        sizes came from (the largest ids of those triples)."""
        try:
            yield
        except IndexError as e:
            if getattr(self, "entities_", None) is not None:
                raise
            raise IndexError(
                f"{e} (this model has {self.n_entities_} entities and {self.n_relations_} "
                f"relations, sized from the largest ids of the triples it was fit on: fit on "
                f"the KGData, which knows every id of the data set)") from None

    def score(self, triples: Any) -> np.ndarray:
        """Scores of ``triples (n, 3)`` (higher is more plausible): ids, or with a model that
        has labels, ``(head, relation, tail)`` label triples (ids and labels may mix)."""
        with self._sized_hint():
            return score(self.model, *self._tables(), self._triple_ids(triples, "triples"))

    def _top(self, scores: np.ndarray, k: int, exclude: Optional[list[np.ndarray]]
             ) -> tuple[np.ndarray, np.ndarray]:
        return top_k(scores, k, exclude)

    def _predict(self, entities: Any, relations: Any, side: str, k: int,
                 filter_triples: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_tails` (``side="tail"``, ``entities`` the heads) or
        :meth:`predict_heads` (``"head"``, ``entities`` the tails)."""
        tails = side == "tail"
        name = "heads" if tails else "tails"
        for arg, v in ((name, entities), ("relations", relations)):
            if np.size(v) == 0 and not isinstance(v, str):
                raise ValueError(f"{arg}: no queries (an empty sequence)")
        entities = self._query_ids(entities, "entity", name)
        relations = self._query_ids(relations, "relation", "relations")
        with self._sized_hint():
            return self._predict_ids(entities, relations, tails, k, filter_triples)

    def _predict_ids(self, entities: Any, relations: Any, tails: bool, k: int,
                     filter_triples: Any) -> tuple[np.ndarray, np.ndarray]:
        if tails:
            s = score_tails(self.model, *self._tables(), entities, relations)
        else:
            s = score_heads(self.model, *self._tables(), relations, entities)
        exclude = None
        if filter_triples is not None:
            f = check_triples(self._triple_ids(filter_triples, "filter_triples"),
                              "filter_triples")
            _check_ids(f, self.n_entities_, self.n_relations_, "filter_triples")
            exclude = known_answers(f, entities, relations, tails, s.shape[0])
        return self._top(s, k, exclude)

    def predict_tails(self, heads: Any, relations: Any, k: int = 10,
                      filter_triples: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best tails of ``(h, r, ?)``, best first.

        Parameters
        ----------
        heads, relations : int, str, or sequence of them (n,)
            Ids, or labels when the model has them (trained on a KGData, or loaded from a file
            that keeps them); one of the two may be a single value, used for every query.
        k : int
        filter_triples : array of shape (p, 3), optional
            Known triples (ids, or label triples): entities with ``(h, r, e)`` in it are left
            out.

        Returns
        -------
        ids : ndarray of shape (n, k), int64
            Entity ids (:meth:`entity_label` gives their labels), as the rules'
            :meth:`nesy.rules.kg.KGRuleSet.predict_tails` returns them. Always ``k`` columns:
            a row with fewer than ``k`` candidates (``k > n_entities``, or entities filtered
            out) is padded with id -1.
        scores : ndarray of shape (n, k)
            Their scores (dtype of the tables); ``-inf`` where the id is -1.

        Raises
        ------
        KeyError (UnknownLabelError, also a ValueError)
            An unknown label; the message names the argument and the label.
        ValueError
            A label given to a model without labels.
        IndexError
            An id out of range; the message names the argument.
        """
        return self._predict(heads, relations, "tail", k, filter_triples)

    def predict_heads(self, relations: Any, tails: Any, k: int = 10,
                      filter_triples: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best heads of ``(?, r, t)``, as :meth:`predict_tails` (entities with
        ``(e, r, t)`` in ``filter_triples`` are left out)."""
        return self._predict(tails, relations, "head", k, filter_triples)

    def evaluate(self, test: Any, filter_triples: Any, ties: str = "realistic",
                 per_relation: bool = True) -> dict[str, Any]:
        """Filtered link-prediction metrics of ``test`` (see :func:`nesy.kge.evaluate`); both
        arguments are id triples or, with a model that has labels, label triples.

        Every test triple is ranked, also one whose entity or relation never occurs in
        training (its embedding is the initial one): :func:`nesy.datasets.load_kg` warns about
        them, and ``data.unseen_test.rows`` lists them to leave out."""
        if ties not in TIES:
            raise ValueError(f"ties: expected one of {TIES}, got {ties!r}")
        per_relation = check_bool("per_relation", per_relation)
        tables = self._tables()
        with self._sized_hint():
            # Checked here, so that errors name these arguments (not the kernel's names)
            t = check_triples(self._triple_ids(test, "test"), "test")
            if t.shape[0] == 0:
                raise ValueError("test: nothing to evaluate (0 triples)")
            known = check_triples(self._triple_ids(filter_triples, "filter_triples"),
                                  "filter_triples")
            _check_ids(t, self.n_entities_, self.n_relations_, "test")
            _check_ids(known, self.n_entities_, self.n_relations_, "filter_triples")
            return evaluate(self.model, *tables, t, known, ties, per_relation)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """The embeddings, the parameters and (when trained on a KGData) the entity and relation
        labels and the data set's location (:attr:`data_location_`), as ``.npz`` (atomic).
        Parameters JSON cannot hold (other than NumPy values and paths) are left out;
        :meth:`load` does not restore ``checkpoint``."""
        ent, rel = self._tables()
        params = {}
        for k, v in self.get_params().items():
            v = str(np.dtype(v)) if k == "dtype" else _json_value(v)
            if v is _SKIP:
                warn_user(f"save: parameter {k!r} cannot be stored; load gives its default")
            else:
                params[k] = v
        arrays = {"model": np.array(self.model),
                  "dim": np.array(check_int("dim", self.dim, 1)),
                  "entity_embeddings": ent, "relation_embeddings": rel,
                  "params": np.array(json.dumps(params))}
        for name in ("entities", "relations"):
            labels = getattr(self, name + "_", None)
            if labels is not None:
                arrays[name] = np.array(labels, dtype=str)
        if getattr(self, "data_location_", None):
            arrays["data"] = np.array(str(self.data_location_))
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KGEModel:
        """A model saved by :meth:`save` or a checkpoint (ready for scoring and evaluation),
        with its parameters, labels and data location as far as the file has them (files from
        older versions: model, dim and dtype only, ``data_location_`` None; checkpoints of
        older versions: no labels either).

        Raises
        ------
        TypeError
            ``path`` is not a path; the message names ``path``.
        OSError
            The file cannot be read.
        ValueError
            It is not a model (or checkpoint) file: among others, labels that are not unique,
            or saved parameters that :meth:`fit` would refuse (or a ``dtype`` other than the
            tables'); the message names ``path``."""
        shown = _fspath(path)  # TypeError naming path (None, a number)
        f = read_npz(shown, "KGEModel", ("model", "dim", "entity_embeddings",
                                         "relation_embeddings"))

        def bad(why: str) -> ValueError:
            return ValueError(f"{shown!r}: not a nesy KGEModel file ({why})")

        model, dim = _scalar(f, "model", "U", bad), _scalar(f, "dim", "iu", bad)
        ent, rel = f["entity_embeddings"], f["relation_embeddings"]
        for name, a in (("entity_embeddings", ent), ("relation_embeddings", rel)):
            if a.ndim != 2 or a.dtype not in (np.float32, np.float64) or a.dtype != ent.dtype:
                raise bad(f"{name!r}: expected a 2-D float32 or float64 table (both of one "
                          f"dtype), got shape {a.shape} {a.dtype}")
        m = cls(model, dim, dtype=str(ent.dtype))
        if "params" in f:
            try:
                saved = json.loads(_scalar(f, "params", "U", bad))
            except json.JSONDecodeError as exc:
                raise bad(f"'params' is not valid JSON: {exc}") from None
            if not isinstance(saved, dict):
                raise bad("'params' is not a JSON object")
            for key, value in (("model", model), ("dim", dim)):
                if key in saved and not (type(saved[key]) is type(value)
                                         and saved[key] == value):
                    raise bad(f"'params' says {key} {saved[key]!r}, the file's {key!r} key "
                              f"{value!r}")
            # Not the checkpoint: a later fit of the loaded model must not overwrite (or
            # resume from) the file of the run that trained it.
            m.set_params(**{k: (tuple(v) if k == "betas" and isinstance(v, list) else v)
                            for k, v in saved.items()
                            if k in cls._PARAMS and k != "checkpoint"})
            try:  # as fit would, so that a refit does not fail on what the file said
                m._check_options()
            except (TypeError, ValueError, OverflowError) as exc:
                raise bad(f"'params': {exc}") from None
            if check_float_dtype(m.dtype) != ent.dtype:
                raise bad(f"'params' says dtype {m.dtype!r}, the tables are {ent.dtype}")
        try:
            fits = (ent.shape[1], rel.shape[1]) == widths(m.model, m.dim)
        except (TypeError, ValueError) as exc:
            raise bad(str(exc)) from None
        if not fits:
            raise bad(f"tables of widths {ent.shape[1]}, {rel.shape[1]} do not fit {m.model} "
                      f"with dim {m.dim}")
        for name, a in (("entity_embeddings", ent), ("relation_embeddings", rel)):
            if a.shape[0] == 0:
                raise bad(f"{name!r}: an empty table (shape {a.shape})")
            if not _core.all_finite([np.ascontiguousarray(a)]):
                raise bad(f"{name!r} holds NaN or infinity")
        m.entity_embeddings_ = np.ascontiguousarray(ent)
        m.relation_embeddings_ = np.ascontiguousarray(rel)
        for name, n in (("entities", ent.shape[0]), ("relations", rel.shape[0])):
            labels = f.get(name)
            if labels is not None and (labels.dtype.kind != "U" or labels.shape != (n,)):
                raise bad(f"{name!r}: expected {n} labels, got shape {labels.shape} "
                          f"{labels.dtype}")
            if labels is not None:
                unique, counts = np.unique(labels, return_counts=True)
                if unique.shape[0] != n:
                    i = int(np.argmax(counts > 1))
                    raise bad(f"{name!r}: label {str(unique[i])!r} occurs {int(counts[i])} "
                              f"times; labels must be unique")
            setattr(m, name + "_", None if labels is None else [str(x) for x in labels])
        m.data_location_ = _scalar(f, "data", "U", bad) if "data" in f else None
        m.n_entities_, m.n_relations_ = ent.shape[0], rel.shape[0]
        return m

    def check_data(self, data: Any) -> None:
        """Raise ``ValueError`` unless ``data`` (a KGData) numbers its entities and relations as
        the model's tables do: the same labels in the same order when the model knows them
        (trained on a KGData), else at least the same counts; ``TypeError`` naming ``data``
        when it is not a KGData (no ``entities`` and ``relations``)."""
        self._tables()
        if not (hasattr(data, "entities") and hasattr(data, "relations")):
            raise TypeError(f"data: expected a KGData (with entities and relations), got "
                            f"{type(data).__name__}")
        for name, n in (("entities", self.n_entities_), ("relations", self.n_relations_)):
            labels = getattr(self, name + "_", None)
            theirs = list(getattr(data, name))
            if labels is not None and labels != theirs:
                raise ValueError(f"data: its {name} are not the ones the model was trained on "
                                 f"({len(theirs)} against {len(labels)}, or in another order)")
            if len(theirs) != n:
                raise ValueError(f"data: has {len(theirs)} {name}, the model's table {n}")


def label_triples(triples: Any, name: str, label_id: Callable[[str, str, str], int]) -> Any:
    """``triples`` with every label replaced by its id, ``label_id(label, kind, where)`` (kind
    ``"entity"`` or ``"relation"``, ``where`` the argument and position, e.g. ``test[3, 0]``,
    for its errors): rows of ``(head, relation, tail)`` ids or labels, mixed. Triples without
    a label are returned as they are (an array keeps its dtype for the checks that follow)."""
    if isinstance(triples, np.ndarray) and triples.dtype.kind in "UO":
        rows = triples.tolist()
    elif isinstance(triples, (list, tuple)):
        rows = list(triples)
    else:
        return triples
    if not any(isinstance(v, str) for row in rows if isinstance(row, (list, tuple))
               for v in row):
        return triples
    out = np.empty((len(rows), 3), dtype=np.int64)
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 3:
            raise ValueError(f"{name}[{i}]: expected a (head, relation, tail) triple, got "
                             f"{row!r}")
        for j, (v, kind) in enumerate(zip(row, ("entity", "relation", "entity"))):
            if isinstance(v, str):
                out[i, j] = label_id(v, kind, f"{name}[{i}, {j}]")
            elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
                out[i, j] = v
            else:
                raise TypeError(f"{name}[{i}, {j}]: expected an id or a label, got {v!r}")
    return out


def known_answers(known: np.ndarray, entities: Any, relations: Any, tails: bool, n: int
                  ) -> list[np.ndarray]:
    """Per query ``i`` of ``n`` (``entities``, ``relations``: ids, one of them possibly a single
    id): the answers ``known (p, 3)`` gives it, the tails ``e`` of ``(entities[i],
    relations[i], e)`` when ``tails``, else the heads of ``(e, relations[i], entities[i])``."""
    e = np.broadcast_to(np.atleast_1d(entities), (n,))
    r = np.broadcast_to(np.atleast_1d(relations), (n,))
    given, wanted = (0, 2) if tails else (2, 0)
    return [known[(known[:, given] == a) & (known[:, 1] == b), wanted] for a, b in zip(e, r)]


def _best(scores: np.ndarray, m: int) -> np.ndarray:
    """Column ids of the ``m`` highest scores of every row, best first, equal scores by id
    (lowest first): exactly the first ``m`` columns of ``np.argsort(-scores, axis=1,
    kind="stable")``, without sorting whole rows (a partition finds the ``m``-th best value,
    then only the ``m`` chosen are sorted)."""
    n = scores.shape[1]
    if m >= n or scores.shape[0] == 0 or np.isnan(scores).any():
        return np.argsort(-scores, axis=1, kind="stable")[:, :m]
    neg = -scores
    kth = np.partition(neg, m - 1, axis=1)[:, m - 1:m]  # the m-th best value of every row
    better = neg < kth
    tied = neg == kth
    # Every entry better than the m-th best value, then the lowest ids among those equal to it.
    need = m - better.sum(axis=1)
    take = better | tied
    extra = np.flatnonzero(tied.sum(axis=1) > need)
    if extra.size:
        sub = tied[extra]
        sub &= np.cumsum(sub, axis=1, dtype=np.int64) <= need[extra, None]
        take[extra] = better[extra] | sub
    cols = np.nonzero(take)[1].reshape(-1, m)  # ascending ids in every row
    order = np.argsort(np.take_along_axis(neg, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def top_k(scores: np.ndarray, k: Any, exclude: Optional[list[np.ndarray]] = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (n, k), scores (n, k))``: the ``k`` best columns of every row of ``scores (n,
    n_entities)``, best first, equal scores by id (lowest first), after setting the columns
    ``exclude[i]`` of row ``i`` to ``-inf``. Always ``k`` columns: a row with fewer than ``k``
    candidates (``k > n_entities``, or entities excluded) is padded with id -1 and score
    ``-inf``."""
    k = check_int("k", k, 1)
    if exclude is not None:
        scores = scores.copy()
        for row, ids in zip(scores, exclude):
            row[ids] = -np.inf
    m = min(k, scores.shape[1])
    idx = _best(scores, m)
    top = np.take_along_axis(scores, idx, axis=1)
    ids = np.full((scores.shape[0], k), -1, dtype=np.int64)
    out = np.full((scores.shape[0], k), -np.inf, dtype=scores.dtype)
    ids[:, :m] = np.where(np.isneginf(top), -1, idx)
    out[:, :m] = top
    return ids, out


_SKIP = object()


def _json_value(v: Any) -> Any:
    """A parameter as JSON can hold it: NumPy scalars and arrays as numbers and lists, paths as
    strings; ``_SKIP`` for anything else (not saved, so that saving a trained model never
    fails on an exotic parameter value)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (os.PathLike, bytes)):
        return os.fsdecode(v)
    if isinstance(v, (tuple, list)):
        items = [_json_value(x) for x in v]
        return _SKIP if any(x is _SKIP for x in items) else items
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return _SKIP


__all__ = ["KGEModel", "DEFAULT_LOSS", "LOSSES", "COMPLEX_MODELS"]
