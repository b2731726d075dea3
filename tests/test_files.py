"""detector.files: atomic writes that leave either the old file or the new one, with the permissions a user expects."""

from __future__ import annotations

import os
import stat

import pytest

from detector.files import atomic_path, write_atomic


def test_a_new_file_gets_the_mode_open_would_give_it(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = write_atomic(tmp_path / "sub" / "record.json", "{}\n")
    assert path.read_text() == "{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's owner-only 0600


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("old")
    path.chmod(0o640)
    write_atomic(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as partial:
        partial.write_text("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["record.json"]
