"""Distillation on scikit-learn's digits: teacher, student on labels, distilled student.

Fixed stratified test split (25 %, ``random_state=0``), seeds ``0 .. n_seeds - 1`` for the
networks and the augmentation; the student has at most a tenth of the teacher's parameters::

    python -m nesy.distill.report           # or: from nesy.distill.report import digits_report
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, List, Sequence

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from nesy.distill.distiller import Distiller
from nesy.nn.estimators import MLPClassifier

__all__ = ["digits_report", "format_table", "targets_met", "main"]

TEACHER = (256, 128)
STUDENT = (16,)


def digits_report(n_seeds: int = 5, teacher_hidden: Sequence[int] = TEACHER,
                  student_hidden: Sequence[int] = STUDENT, temperature: float = 4.0,
                  alpha: float = 0.5, verbose: bool = True) -> List[Dict[str, Any]]:
    """Mean test accuracy over the seeds of the teacher and of the student trained on labels,
    distilled, and distilled with mixup rows labelled by the teacher.

    Returns
    -------
    list of dict
        Keys ``model``, ``parameters``, ``accuracy``, ``accuracy_std``, ``seconds``,
        ``per_seed``.
    """
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    runs: Dict[str, List[float]] = {}
    secs: Dict[str, float] = {}
    params: Dict[str, int] = {}

    def record(name: str, model: Any, t0: float, n_params: int) -> None:
        runs.setdefault(name, []).append(float(model.score(Xte, yte)))
        secs[name] = secs.get(name, 0.0) + time.perf_counter() - t0
        params[name] = n_params

    for seed in range(int(n_seeds)):
        t0 = time.perf_counter()
        teacher = MLPClassifier(hidden_layer_sizes=tuple(teacher_hidden), random_state=seed)
        teacher.fit(Xtr, ytr)
        record("teacher MLP", teacher, t0, teacher.n_parameters())
        student = MLPClassifier(hidden_layer_sizes=tuple(student_hidden), epochs=300,
                                random_state=seed)
        t0 = time.perf_counter()
        alone = MLPClassifier(**student.get_params()).fit(Xtr, ytr)
        record("student, labels only", alone, t0, alone.n_parameters())
        for name, aug in (("student, distilled", None),
                          ("student, distilled + mixup rows", "mixup")):
            t0 = time.perf_counter()
            d = Distiller(teacher, student, temperature=temperature, alpha=alpha, augment=aug,
                          n_augment=2.0, random_state=seed).fit(Xtr, ytr)
            record(name, d, t0, d.student_.n_parameters())
        if verbose:
            print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in runs.items()),
                  flush=True)
    return [{"model": k, "parameters": params[k], "accuracy": float(np.mean(v)),
             "accuracy_std": float(np.std(v)), "seconds": secs[k] / len(v), "per_seed": v}
            for k, v in runs.items()]


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    """Markdown table of :func:`digits_report` rows."""
    lines = ["| model | parameters | test accuracy (mean ± std) | per seed | fit s |",
             "|---|---|---|---|---|"]
    for r in rows:
        seeds = " ".join(f"{a:.4f}" for a in r["per_seed"])
        lines.append(f"| {r['model']} | {r['parameters']} | {r['accuracy']:.4f} ± "
                     f"{r['accuracy_std']:.4f} | {seeds} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def targets_met(rows: Sequence[Dict[str, Any]]) -> bool:
    """Teacher accuracy >= 0.97, student parameters <= teacher / 10, distilled student at
    least as accurate as the student on labels alone (seed means)."""
    by = {r["model"]: r for r in rows}
    teacher, alone = by["teacher MLP"], by["student, labels only"]
    distilled = by["student, distilled"]
    return bool(teacher["accuracy"] >= 0.97
                and 10 * distilled["parameters"] <= teacher["parameters"]
                and distilled["accuracy"] >= alone["accuracy"])


def main(argv: Any = None) -> int:
    """``python -m nesy.distill.report [--seeds N] [--temperature T] [--alpha A]``; returns 0
    when :func:`targets_met`."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.5)
    args = p.parse_args(argv)
    rows = digits_report(args.seeds, temperature=args.temperature, alpha=args.alpha)
    print()
    print(format_table(rows))
    met = targets_met(rows)
    print("targets (teacher >= 0.97; student <= 1/10 of its parameters, distilled at least as "
          "accurate as on labels alone) met:", "yes" if met else "NO")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
