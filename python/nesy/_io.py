"""Atomic file writes: every file nesy saves (checkpoints, state dicts, rule sets) goes to a
temporary file in the target's folder, is flushed to disk, then renamed over the target, so a
crash leaves either the old file or the new one, never half of either. A target that exists
and is not a regular file (``/dev/null``, a FIFO), and an open file descriptor named by path
(``/dev/stdout``, ``/dev/fd/3``, ``/proc/self/fd/3``, whatever it refers to), are written
through instead, as ``np.save`` and ``torch.save`` do: renaming over them would replace the
device or pipe with a file, or the file that stdout was redirected to."""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import zipfile
import zlib
from typing import IO, Any, BinaryIO, Callable, Mapping

import numpy as np


def _create_temporary(directory: str, suffix: str, mode: int) -> tuple[int, str]:
    """A new file ``.tmp-<12 hex digits><suffix>`` in ``directory``, opened for writing: its
    descriptor and path. As ``tempfile.mkstemp`` (exclusive creation under a random name,
    retried on a clash), but created with ``mode``, to which the system applies the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".tmp-{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", directory)


def atomic_write(path: str | bytes | os.PathLike[str], write: Callable[[IO[Any]], None],
                 text: bool = False, suffix: str = "") -> None:
    """Call ``write(fh)`` on a temporary file next to ``path``, then rename it to ``path``.

    A symbolic link is written through (its target is replaced, the link kept), and a file
    that exists keeps its permissions; a new file gets the usual ``0o666 & ~umask``.

    A target that exists and is not a regular file (a character device such as
    ``/dev/null``, a FIFO; checked on the path as given, following links) is opened and
    written directly, as ``np.save`` and ``torch.save`` do, never replaced: that write is not
    atomic (a failing ``write`` leaves what it wrote), and opening a FIFO waits for a reader.
    A path that names one of this process's open file descriptors (``/dev/stdout``,
    ``/dev/fd/N``, ``/proc/self/fd/N``, or a link to one) is written to that descriptor,
    whatever it refers to: a pipe, a terminal, or a file stdout was redirected to, which gets
    the bytes at its current position (appended under ``>>``) and is neither truncated nor
    replaced; ``sys.stdout`` and ``sys.stderr`` are flushed first when they use it. Another
    process's descriptor (``/proc/<pid>/fd/N``) is opened for writing, appending to a
    regular file.

    Raises
    ------
    TypeError
        ``path`` is not a ``str``, ``bytes`` or ``os.PathLike`` (the message names ``path``).
    OSError
        Before anything is written, naming ``path`` (``filename``): ``FileNotFoundError`` when
        its folder does not exist, ``IsADirectoryError`` when ``path`` is a folder or ends with
        a path separator, and any error creating the temporary file (e.g.
        ``PermissionError``)."""
    target = _fspath(path)
    how, path = _plan(target)
    if how != "replace":
        _write_through(target, how, write, text)
        return
    directory = os.path.dirname(path)
    # Replacing a file: written 0o600, then given that file's permissions, so that its new
    # content is never more readable than its old one. A new file: created 0o666 and the system
    # applies the umask, giving the usual permissions (reading the umask means setting it, which
    # is process-wide and would race with other threads creating files). If the file goes away
    # while it is written, the new one stays 0o600.
    replacing = os.path.exists(path)
    try:
        fd, tmp = _create_temporary(directory, suffix, 0o600 if replacing else 0o666)
    except OSError as exc:  # it names the temporary file: name the user's instead
        raise OSError(exc.errno, exc.strerror, target) from None
    try:
        mode = "w" if text else "wb"
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if text else {})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if replacing:
            try:
                os.chmod(tmp, os.stat(path).st_mode & 0o7777)  # the replaced file's permissions
            except FileNotFoundError:
                pass
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


def _write_through(target: str, how: str, write: Callable[[IO[Any]], None],
                   text: bool) -> None:
    """``write(fh)`` on ``target`` without replacing it (``how`` from :func:`_plan`): on a
    duplicate of this process's descriptor ``how`` (``"fd:N"``), else on ``target`` opened for
    writing (no ``O_CREAT``: if it vanished meanwhile, nothing is created; ``"append"``: at
    the end of a regular file). Errors name ``target``."""
    try:
        if how.startswith("fd:"):
            n = int(how[3:])
            for stream in (sys.stdout, sys.stderr):  # what was printed before comes first
                try:
                    if stream is not None and stream.fileno() == n:
                        stream.flush()
                except (AttributeError, OSError, ValueError):  # replaced, closed or detached
                    pass
            fd = os.dup(n)
        else:
            flags = os.O_WRONLY | getattr(os, "O_NOCTTY", 0)
            fd = os.open(target, flags | (os.O_APPEND if how == "append" else 0))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, target) from None
    fh: IO[Any] = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
    with fh:
        write(fh)
        fh.flush()


def _fspath(path: Any) -> str:
    """``path`` as a ``str`` (``bytes`` decoded with ``os.fsdecode``); ``TypeError`` naming
    ``path`` for anything that is not a path."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"path: expected a file path (str, bytes or os.PathLike), got "
                        f"{type(path).__name__} {path!r}") from None
    return os.fsdecode(p)


def check_target(path: str | bytes | os.PathLike[str]) -> str:
    """The real path ``path`` will be written to, after checking that its folder exists and
    that it is not itself a folder (so that a long run can check where it saves first).

    An existing target that is not a regular file (``/dev/null``, a FIFO) and an open file
    descriptor (``/dev/stdout``, ``/dev/fd/N``) are accepted, and returned as given:
    :func:`atomic_write` writes through to them.

    Raises
    ------
    TypeError
        ``path`` is not a ``str``, ``bytes`` or ``os.PathLike`` (the message names ``path``).
    FileNotFoundError, NotADirectoryError, IsADirectoryError
        With ``filename`` the path as given; ``IsADirectoryError`` also for a path that ends
        with a separator (``"out/sub/"`` names a folder, not a file to write);
        ``FileNotFoundError`` also for a file descriptor that is not open (``/dev/fd/9``)."""
    return _plan(_fspath(path))[1]


# /proc/<pid>/fd and /proc/<pid>/task/<tid>/fd, as realpath gives /proc/self/fd, /dev/fd and
# /proc/thread-self/fd on Linux
_FD_DIR = re.compile(r"/proc/(\d+)(?:/task/\d+)?/fd")


def _fd_link(target: str) -> tuple[int, int] | None:
    """``(pid, n)`` when ``target``, or a symbolic link it leads to, is the entry of file
    descriptor ``n`` in ``/proc/<pid>/fd`` (``/dev/stdout``, ``/dev/fd/N``). ``realpath``
    cannot resolve these: they point to ``pipe:[N]``, or to the file stdout was redirected
    to, which must not be replaced."""
    p = target if os.path.isabs(target) else os.path.join(os.getcwd(), target)
    for _ in range(40):  # the kernel's limit on nested links
        head, tail = os.path.split(p)
        head = os.path.realpath(head)
        m = _FD_DIR.fullmatch(head)
        if m is not None and tail.isdigit():
            return int(m.group(1)), int(tail)
        p = os.path.join(head, tail)
        if not os.path.islink(p):
            return None
        p = os.path.join(head, os.readlink(p))  # an absolute link replaces head
    return None


def _plan(target: str) -> tuple[str, str]:
    """How :func:`atomic_write` writes ``target``, after :func:`check_target`'s checks:
    ``("replace", real path)``, or a write-through (``"fd:N"`` for this process's descriptor
    ``N``, ``"open"`` for a non-regular file, ``"append"`` for a regular file reached through
    another process's descriptor) with ``target`` as given."""
    real = os.path.realpath(target)
    if os.path.isdir(real):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", target)
    if target.endswith(os.sep) or (os.altsep is not None and target.endswith(os.altsep)):
        raise IsADirectoryError(errno.EISDIR, "ends with a path separator, so it names a "
                                "folder, not a file", target)
    try:
        mode: int | None = os.stat(target).st_mode  # the path as given, following links
    except OSError:
        mode = None
    link = _fd_link(target) if os.name == "posix" else None
    if link is not None:
        if mode is None:
            raise FileNotFoundError(errno.ENOENT, f"file descriptor {link[1]} is not open",
                                    target)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", target)
        if link[0] == os.getpid():
            return f"fd:{link[1]}", target
        return ("append" if stat.S_ISREG(mode) else "open"), target
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", target)
        return "open", target
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise NotADirectoryError(errno.ENOTDIR, f"{directory!r} is not a folder", target)
        raise FileNotFoundError(errno.ENOENT, f"no folder {directory!r} to write in", target)
    return "replace", real


def read_npz(path: str | os.PathLike[str] | BinaryIO, kind: str, keys: tuple[str, ...]
             ) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``path`` (a path or an open binary file; no pickles),
    after checking that it holds ``keys``.

    Raises
    ------
    OSError
        The file cannot be opened (not found, a folder, no permission).
    ValueError
        ``"'<path>': not a nesy <kind> file (<why>)"``: not an ``.npz`` archive, a damaged one,
        an object array, or a key of ``keys`` missing."""
    is_path = isinstance(path, (str, os.PathLike))
    shown = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", path)

    def bad(why: str) -> ValueError:
        return ValueError(f"{shown!r}: not a nesy {kind} file ({why})")

    try:
        archive = np.load(shown if is_path else path, allow_pickle=False)
    except EOFError:
        raise bad("empty or truncated") from None
    except (ValueError, zipfile.BadZipFile) as exc:
        raise bad("not an .npz archive" if "pickled" in str(exc) else str(exc)) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise bad("a single .npy array, not an .npz archive")
    with archive:
        missing = [k for k in keys if k not in archive.files]
        if missing:
            raise bad(f"no {missing[0]!r} in the archive")
        out = {}
        for k in archive.files:
            try:
                out[k] = archive[k]
            except (ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
                raise bad(f"array {k!r} cannot be read: {exc}") from None
    return out


def read_text(path: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    """The whole text of ``path``; a file that is not in ``encoding`` raises ``ValueError``
    naming it (``UnicodeDecodeError`` alone does not say which file)."""
    name = os.fspath(path)
    try:
        with open(name, encoding=encoding) as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not a UTF-8 text file ({exc})") from None


def atomic_savez(path: str | bytes | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` to ``path``, atomically."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays), suffix=".npz")
