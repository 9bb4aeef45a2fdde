"""`gdsim --selftest` as a person (or an installer test) runs it: a separate process, its exit
status and its lines. Under the suite's Xvfb (DISPLAY set by xvfb-run) it checks the 3-D view;
without DISPLAY it takes the offscreen path and says the 3-D view was not checked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

CHECKS = ("contour view", "loss plot", "gdsim run (headless)", "figure (gdsim render)")


def selftest(*args: str, display: bool, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "PYOPENGL_"))}
    env.pop("GDSIM_SETTINGS_ORG", None)
    env["HOME"] = str(tmp_path)  # anything written to the home folder would show up here
    env["XDG_CONFIG_HOME"] = str(tmp_path / ".config")
    if not display:
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
    code = "import sys; from gdsim.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, "--selftest", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    for check in CHECKS:
        assert f"ok   {check}" in result.stdout, result.stdout
    assert "self-test passed" in result.stdout


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (xvfb-run)")
def test_selftest_checks_every_view_under_xvfb(tmp_path):
    result = selftest("--require-gl", display=True, tmp_path=tmp_path)
    assert_passed(result)
    assert "ok   3-D view" in result.stdout
    assert "OpenGL not available" not in result.stdout


def test_selftest_without_display_checks_the_rest_and_says_so(tmp_path):
    result = selftest(display=False, tmp_path=tmp_path)
    assert_passed(result)
    assert "OpenGL not available: 3-D view not checked" in result.stdout
    assert "3-D view (" not in result.stdout


def test_selftest_requiring_gl_without_display_fails(tmp_path):
    result = selftest("--require-gl", display=False, tmp_path=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "OpenGL required" in result.stdout
    assert "self-test FAILED" in result.stdout


def test_selftest_leaves_the_home_folder_alone(tmp_path):
    selftest(display=False, tmp_path=tmp_path)
    config = tmp_path / ".config"
    written = sorted(p.relative_to(tmp_path) for p in config.rglob("*")) if config.exists() else []
    assert not [p for p in written if "gdsim" in str(p)], written


def test_require_gl_alone_is_a_usage_error():
    from gdsim.cli import main

    assert main(["--require-gl"]) == 2
