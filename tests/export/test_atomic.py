"""The atomic writer: the target holds the old bytes or the new ones, never a mix, no litter."""

from __future__ import annotations

import os
import stat

import pytest

from gdsim.export.atomic import atomic_open, atomic_write


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_writes_text_and_bytes(tmp_path):
    atomic_write(tmp_path / "a.txt", "héllo\n")
    atomic_write(tmp_path / "b.bin", b"\x00\x01\xff")
    assert (tmp_path / "a.txt").read_bytes() == "héllo\n".encode()
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01\xff"
    assert _listing(tmp_path) == ["a.txt", "b.bin"]


def test_replaces_an_existing_file_and_keeps_its_permissions(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


def test_new_file_gets_the_mode_open_would_give(tmp_path):
    mask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "n.txt", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "n.txt").st_mode) == 0o640


def test_an_error_inside_the_block_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "data.csv"
    target.write_text("old content\n")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_open(target) as f:
        f.write("half of the new ")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old content\n"
    assert _listing(tmp_path) == ["data.csv"]


def test_a_failing_fsync_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        atomic_write(tmp_path / "new.json", "{}" * 1000)
    assert _listing(tmp_path) == []


def test_a_failing_rename_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "s.json"
    target.write_text("old")

    def broken_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["s.json"]


def test_missing_folder_and_file_as_folder_are_plain_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nope" / "x.csv", "x")
    (tmp_path / "plain").write_text("I am a file")
    with pytest.raises(NotADirectoryError):
        atomic_write(tmp_path / "plain" / "x.csv", "x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path / "folder", "x")
    assert _listing(tmp_path) == ["folder", "plain"]
    assert _listing(tmp_path / "folder") == []


def test_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):
        pass
