"""Shared helpers for the command-line tests: call `gdsim` in-process and read what it said."""

from __future__ import annotations

import os
from pathlib import Path

from gdsim import cli


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `gdsim ARGS...` run in this process."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Bad input: exit 2 and exactly one line on stderr that mentions every needle."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def unwritable_folder(tmp_path: Path) -> str | Path:
    """A folder no file can be created in: chmod stops everyone but root, and sysfs refuses
    new files even to root (CI runs as root)."""
    if os.geteuid() == 0:
        return "/sys"
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder
