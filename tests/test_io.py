"""nesy._io: atomic writes (mirrors python/nesy/_io.py). Every file nesy saves goes through
atomic_write; the writers' own tests check what they write."""

from __future__ import annotations

import io
import os
import stat
import threading

import numpy as np
import pytest

from nesy._io import atomic_savez, atomic_write, check_target, read_npz


def _write(text):
    return lambda fh: fh.write(text)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and symbolic links")
def test_atomic_write_keeps_links_and_permissions(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write(target, _write("new"), text=True)
    assert target.read_text() == "new" and stat.S_IMODE(os.stat(target).st_mode) == 0o600
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write(link, _write("through the link"), text=True)
    assert link.is_symlink() and target.read_text() == "through the link"
    fresh = tmp_path / "fresh.txt"
    atomic_write(fresh, _write("x"), text=True)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.txt", "link.txt", "real.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_new_file_gets_the_umask_without_setting_it(tmp_path, monkeypatch):
    # Reading the umask means setting it, for the whole process: another thread creating a
    # file meanwhile would get umask 0. The temporary file is created 0o666 instead, and the
    # system applies the umask.
    umask = os.umask(0o027)
    try:
        def refuse(mask):
            raise AssertionError("atomic_write changed the process's umask")

        monkeypatch.setattr(os, "umask", refuse)
        atomic_write(tmp_path / "new.txt", _write("x"), text=True)
        monkeypatch.undo()
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["new.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_new_content_of_a_private_file_is_never_readable_by_others(tmp_path):
    # While it is written, the temporary file replacing a 0o600 file is 0o600 too (created
    # 0o666 & ~umask, it was readable by others until the rename).
    target = tmp_path / "secret.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    umask = os.umask(0o022)
    seen = []

    def write(fh):
        fh.write("new")
        seen.extend(stat.S_IMODE(os.stat(p).st_mode) for p in tmp_path.iterdir()
                    if p.name != "secret.txt")

    try:
        atomic_write(target, write, text=True)
    finally:
        os.umask(umask)
    assert seen == [0o600]
    assert target.read_text() == "new" and stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(fh):
        fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom, text=True)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


@pytest.mark.parametrize("where,exc", [
    ("missing/x.npz", FileNotFoundError),   # the folder does not exist
    (".", IsADirectoryError),               # the target is a folder
    ("file.txt/x.npz", NotADirectoryError),  # the "folder" is a file
])
def test_atomic_write_errors_name_the_target_and_write_nothing(tmp_path, where, exc):
    (tmp_path / "file.txt").write_text("keep")
    target = os.path.join(tmp_path, where)
    with pytest.raises(exc) as err:
        atomic_write(target, _write("x"), text=True, suffix=".npz")
    assert err.value.filename == target and ".tmp-" not in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]  # no temporary left anywhere
    assert [p.name for p in tmp_path.parent.iterdir() if p.name.startswith(".tmp-")] == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="POSIX permissions")
def test_atomic_write_permission_error_names_the_target(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        with pytest.raises(PermissionError) as err:
            atomic_write(locked / "x.txt", _write("x"), text=True)
        assert err.value.filename == str(locked / "x.txt")
    finally:
        os.chmod(locked, 0o700)


def test_read_npz_refuses_files_that_are_not_archives(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, a=np.arange(3))
    assert read_npz(good, "test", ("a",))["a"].tolist() == [0, 1, 2]
    (tmp_path / "text.npz").write_text("hello")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "one.npy", np.zeros(2))
    np.savez(tmp_path / "obj.npz", a=np.array([1, None], dtype=object))
    for name, keys, why in [("text.npz", (), "not an .npz archive"),
                            ("empty.npz", (), "empty or truncated"),
                            ("one.npy", (), "a single .npy array"),
                            ("obj.npz", (), "array 'a' cannot be read"),
                            ("good.npz", ("b",), "no 'b' in the archive")]:
        path = tmp_path / name
        with pytest.raises(ValueError) as err:
            read_npz(path, "test", keys)
        message = str(err.value)
        assert message.startswith(f"{str(path)!r}: not a nesy test file (") and why in message
    with pytest.raises(FileNotFoundError):
        read_npz(tmp_path / "absent.npz", "test", ())


def _drain(fifo, out):
    """A daemon thread that reads ``fifo`` to its end into ``out`` (a list)."""
    def run():
        with open(fifo, "rb") as fh:
            out.append(fh.read())
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
@pytest.mark.parametrize("text", [False, True])
def test_atomic_write_writes_through_to_a_fifo_and_keeps_it(tmp_path, text):
    # Renaming a temporary file over a FIFO or a device (/dev/null as root) replaces it: a
    # non-regular target is opened and written instead, as np.save does.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list = []
    reader = _drain(fifo, got)
    atomic_write(fifo, _write("through" if text else b"through"), text=text, suffix=".npz")
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a FIFO, not a regular file
    assert got == [b"through"]
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary left


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_atomic_savez_to_a_fifo_streams_a_readable_archive(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    got: list = []
    reader = _drain(fifo, got)
    atomic_savez(fifo, {"a": np.arange(4.0)})
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert np.load(io.BytesIO(got[0]))["a"].tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("bad", [None, 3, 2.5])
def test_atomic_write_and_check_target_name_path_when_it_is_not_one(tmp_path, bad):
    for call in (lambda: atomic_write(bad, _write("x"), text=True), lambda: check_target(bad)):
        with pytest.raises(TypeError, match=f"^path: expected a file path .*{type(bad).__name__}"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_accepts_a_bytes_path(tmp_path):
    target = tmp_path / "b.txt"
    atomic_write(os.fsencode(target), _write("bytes"), text=True)
    assert target.read_text() == "bytes"
    assert check_target(os.fsencode(target)) == os.path.realpath(target)


def test_a_path_ending_with_a_separator_is_a_folder_not_a_file(tmp_path):
    # "out/sub/" used to write a file named "sub"
    target = str(tmp_path / "sub") + os.sep
    for call in (lambda: atomic_write(target, _write("x"), text=True),
                 lambda: check_target(target)):
        with pytest.raises(IsADirectoryError) as err:
            call()
        assert err.value.filename == target
    (tmp_path / "file").write_text("keep")
    with pytest.raises(IsADirectoryError):
        atomic_write(str(tmp_path / "file") + os.sep, _write("x"), text=True)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
    assert (tmp_path / "file").read_text() == "keep"


_LINUX_FDS = pytest.mark.skipif(not os.path.isdir("/proc/self/fd") or os.name != "posix",
                                reason="Linux /proc/self/fd and /dev/stdout")

# Prints, saves to the path given in argv[1] (text, or an .npz of a Dense layer), prints again.
_SAVE_TO = """
import sys
print("first")
if sys.argv[2] == "npz":
    from nesy.nn import Dense
    Dense(2, 3, rng=0).save(sys.argv[1])
else:
    from nesy._io import atomic_write, check_target
    assert check_target(sys.argv[1]) == sys.argv[1]
    atomic_write(sys.argv[1], lambda fh: fh.write("saved\\n"), text=True)
print("last")
"""


def _run_saving(path, kind, stdout):
    import subprocess
    import sys

    env = dict(os.environ, NESY_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", _SAVE_TO, path, kind], stdout=stdout, check=True,
                   env=env, timeout=120)


@_LINUX_FDS
@pytest.mark.parametrize("path", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_saving_to_dev_stdout_writes_to_a_pipe(path):
    # realpath turned /dev/stdout into /proc/<pid>/fd/pipe:[N], which does not exist: the
    # save failed with FileNotFoundError after check_target had accepted the path.
    r, w = os.pipe()
    got: list = []

    def drain():
        with os.fdopen(r, "rb") as fh:
            got.append(fh.read())
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    try:
        _run_saving(path, "text", w)
    finally:
        os.close(w)
    t.join(30)
    assert got == [b"first\nsaved\nlast\n"]


@_LINUX_FDS
def test_an_npz_saved_to_dev_stdout_streams_a_readable_archive():
    import subprocess
    import sys

    from nesy.nn import Dense

    script = "import sys; from nesy.nn import Dense; Dense(2, 3, rng=0).save('/dev/stdout')"
    got = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, check=True,
                         env=dict(os.environ, NESY_NUM_THREADS="1"), timeout=120).stdout
    want = Dense(2, 3, rng=0)
    with np.load(io.BytesIO(got)) as archive:
        assert sorted(archive.files) == sorted(want.state_dict())
        assert all(np.array_equal(archive[k], v) for k, v in want.state_dict().items())


@_LINUX_FDS
@pytest.mark.parametrize("mode", ["ab", "wb"])
def test_saving_to_dev_stdout_redirected_to_a_file_writes_at_its_position(tmp_path, mode):
    # Redirected to a file (`> log`, `>> log`), /dev/stdout resolved to that file, which a
    # temporary file was renamed over: what the shell wrote before and after went to the
    # unlinked inode. Now the bytes go where stdout writes, in order; `>>` appends.
    log = tmp_path / "log"
    log.write_bytes(b"before\n")
    link = tmp_path / "out"
    link.symlink_to("/dev/stdout")  # a link to /dev/stdout is the same descriptor
    for path in ("/dev/stdout", str(link)):
        with open(log, mode) as fh:
            _run_saving(path, "text", fh)
            fh.write(b"after\n")
        ran = b"first\nsaved\nlast\nafter\n"
        assert log.read_bytes() == (b"before\n" + ran if mode == "ab" else ran)
        assert link.is_symlink()
        log.write_bytes(b"before\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log", "out"]  # no temporary


@_LINUX_FDS
def test_check_target_refuses_a_file_descriptor_that_is_not_open():
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)  # now a number no file uses
    target = f"/dev/fd/{fd}"
    for call in (lambda: check_target(target), lambda: atomic_write(target, _write("x"))):
        with pytest.raises(FileNotFoundError, match="is not open") as err:
            call()
        assert err.value.filename == target
