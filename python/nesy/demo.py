"""``nesy demo``: train an MLP on scikit-learn's digits with nesy's Adam and a learning-rate
schedule, report test accuracy and time, then a short optimizer benchmark.

Everything runs on data shipped with scikit-learn, so the demo works offline on a fresh install.
"""

from __future__ import annotations

import time

import numpy as np


def train_digits(seed: int = 0, epochs: int = 30, verbose: int = 0) -> tuple[float, float]:
    """Train a 64-128-10 ReLU MLP on digits (75/25 stratified split); return (accuracy, seconds)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from nesy.nn import CrossEntropyLoss, Dense, ReLU, Sequential, Trainer, accuracy, predict
    from nesy.optim import Adam
    from nesy.optim.schedules import CosineAnnealingLR, LinearWarmup

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    X_tr, X_val, y_tr, y_val = train_test_split(
        X_tr, y_tr, test_size=0.15, stratify=y_tr, random_state=seed
    )
    rng = np.random.default_rng(seed)
    model = Sequential(Dense(64, 128, rng=rng), ReLU(), Dense(128, 10, rng=rng))
    opt = Adam(model.parameters(), lr=3e-3)
    schedule = LinearWarmup(CosineAnnealingLR(opt, T_max=epochs), warmup_steps=3)
    trainer = Trainer(model, CrossEntropyLoss(), opt, schedule=schedule, batch_size=32,
                      epochs=epochs, seed=seed, metrics={"accuracy": accuracy}, verbose=verbose)
    t0 = time.perf_counter()
    trainer.fit(X_tr, y_tr, validation_data=(X_val, y_val))
    seconds = time.perf_counter() - t0
    acc = float(np.mean(np.argmax(predict(model, X_te), axis=1) == y_te))
    return acc, seconds


def run_demo(verbose: int = 1) -> int:
    """The demo; returns a process exit code (1 if the accuracy target is missed)."""
    import nesy
    from nesy.bench import optim as bench

    info = nesy.info()
    print(f"nesy {info['version']} | SIMD {info['simd']} | {info['threads']} threads")
    print("1. MLP 64-128-10 on scikit-learn digits, Adam + linear warm-up + cosine schedule")
    acc, seconds = train_digits(verbose=verbose)
    print(f"   test accuracy {acc:.4f} (target >= 0.95), training took {seconds:.2f} s")
    print("2. Optimizer step, float32, small sizes (`nesy bench optim` runs the full table)")
    if not bench.torch_available():
        print("   (PyTorch is not importable here: its columns are omitted)")
    rows = bench.run(bench.QUICK_CASES, optimizers=["adam", "sgd_momentum"], repeat=10, pause=0.1)
    print(bench.table(rows))
    return 0 if acc >= 0.95 else 1
