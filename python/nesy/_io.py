"""Atomic file writes: every file nesy saves (checkpoints, state dicts, rule sets) goes to a
temporary file in the target's folder, is flushed to disk, then renamed over the target, so a
crash leaves either the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from typing import IO, Any, Callable, Mapping

import numpy as np


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], None],
                 text: bool = False, suffix: str = "") -> None:
    """Call ``write(fh)`` on a temporary file next to ``path``, then rename it to ``path``.

    A symbolic link is written through (its target is replaced, the link kept), and a file
    that exists keeps its permissions; a new file gets the usual ``0o666 & ~umask``."""
    path = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        mode = "w" if text else "wb"
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if text else {})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)  # the replaced file's permissions
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
        if hasattr(os, "O_DIRECTORY"):
            dfd = os.open(directory, os.O_DIRECTORY)
            try:
                os.fsync(dfd)  # the rename itself survives a crash
            finally:
                os.close(dfd)
    except BaseException:
        if os.path.exists(tmp):
            os.chmod(tmp, 0o600)  # it may have copied a read-only mode (Windows cannot unlink)
            os.unlink(tmp)
        raise


def atomic_savez(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` to ``path``, atomically."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays), suffix=".npz")
