"""nesy._io: atomic writes (mirrors python/nesy/_io.py). Every file nesy saves goes through
atomic_write; the writers' own tests check what they write."""

from __future__ import annotations

import os
import stat

import pytest

from nesy._io import atomic_write


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


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(fh):
        fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom, text=True)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
