"""`gdsim render`: every format from the command line, one-line errors, no partial files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from gdsim.export import figures
from tests.cli_helpers import assert_one_line_error, run_main, unwritable_folder

SMALL = ["--steps", "20", "--size", "320x240"]


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "s.json"
    doc = {
        "gdsim": 1, "title": "CLI render", "surface": {"name": "bowl"}, "steps": 30,
        "runs": [{"optimizer": "sgd", "params": {"lr": 0.02}, "start": [1.5, 1.0]}],
    }  # fmt: skip
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------ success
@pytest.mark.parametrize("ext", ["png", "svg", "pdf"])
def test_render_a_figure(tmp_path, capsys, ext):
    out = tmp_path / f"f.{ext}"
    code, stdout, err = run_main(capsys, "render", "default", "--out", str(out), *SMALL)
    assert code == 0, err
    assert stdout.strip() == f"wrote {out} ({ext}, 320x240, grid)"
    assert out.stat().st_size > 1000
    assert sorted(os.listdir(tmp_path)) == [f"f.{ext}"]


@pytest.mark.parametrize("view", ["contour", "3d", "loss"])
def test_render_each_view_with_options(tmp_path, capsys, scenario_file, view):
    out = tmp_path / "f.png"
    code, _, err = run_main(
        capsys, "render", scenario_file, "--out", str(out), "--view", view, "--size", "300x260",
        "--dpi", "80", "--theme", "dark", "--title", "", "--seed", "3",
    )  # fmt: skip
    assert code == 0, err
    with Image.open(out) as im:
        assert im.size == (300, 260)


def test_render_a_gif_with_fps_and_duration(tmp_path, capsys, scenario_file):
    out = tmp_path / "a.gif"
    code, stdout, err = run_main(
        capsys, "render", scenario_file, "--out", str(out), "--view", "contour",
        "--size", "200x160", "--fps", "4", "--duration", "1.5",
    )  # fmt: skip
    assert code == 0, err
    assert "6 frames at 4 fps" in stdout
    assert err == ""  # not a terminal, no --progress: no bar
    with Image.open(out) as im:
        assert im.n_frames == 6


def test_render_an_mp4_with_a_progress_bar(tmp_path, capsys, scenario_file):
    import imageio.v2 as imageio

    out = tmp_path / "a.mp4"
    code, _, err = run_main(
        capsys, "render", scenario_file, "--out", str(out), "--view", "loss",
        "--size", "200x160", "--fps", "8", "--duration", "1", "--progress",
    )  # fmt: skip
    assert code == 0
    assert "8/8 frames" in err and "[" + "#" * 30 + "]" in err
    assert err.endswith("\n")
    reader = imageio.get_reader(out)
    try:
        assert abs(reader.count_frames() - 8) <= 1
    finally:
        reader.close()


def test_render_works_with_no_display_and_never_imports_qt(tmp_path):
    dropped = ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "MPLBACKEND")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    out = tmp_path / "f.png"
    code = (
        "import sys\n"
        "from gdsim.cli import main\n"
        f"rc = main(['render', 'default', '--out', {str(out)!r}, '--steps', '20',"
        " '--size', '400x300'])\n"
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph',"
        " 'OpenGL'))\n"
        "import matplotlib\n"
        "print(rc, qt, matplotlib.get_backend().lower(), 'matplotlib.pyplot' in sys.modules)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "0 [] agg False"
    with Image.open(out) as im:
        assert im.size == (400, 300)


# ------------------------------------------------------------------ refusals
def test_unknown_format(tmp_path, capsys):
    code, _, err = run_main(capsys, "render", "default", "--out", str(tmp_path / "f.bmp"))
    assert_one_line_error(code, err, "--out", "unknown file type", ".bmp")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("size", "words"),
    [("12x", "WIDTHxHEIGHT"), ("axb", "WIDTHxHEIGHT"), ("20000x100", "at most 10000"),
     ("9000x9000", "Mpx"), ("40x40", "at least")],
)  # fmt: skip
def test_bad_or_huge_size_is_refused_before_running(tmp_path, capsys, monkeypatch, size, words):
    from gdsim.scenario import Scenario

    def never(self):
        raise AssertionError("simulated before checking the size")

    monkeypatch.setattr(Scenario, "to_simulation", never)
    code, _, err = run_main(
        capsys, "render", "default", "--out", str(tmp_path / "f.png"), "--size", size
    )
    assert_one_line_error(code, err, "--size", words)
    assert os.listdir(tmp_path) == []


def test_animation_too_big_for_a_gif_is_refused(tmp_path, capsys):
    code, _, err = run_main(
        capsys, "render", "default", "--out", str(tmp_path / "a.gif"), "--size", "4000x4000",
        "--fps", "60", "--duration", "60",
    )  # fmt: skip
    assert_one_line_error(code, err, "GIF", ".mp4")


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--fps", "5"], "--fps is for .gif and .mp4"),
     (["--duration", "2"], "--duration is for .gif and .mp4"),
     (["--dpi", "0"], "--dpi: must be a number from 10"),
     (["--view", "side"], "invalid choice"),
     (["--theme", "pink"], "invalid choice")],
)  # fmt: skip
def test_bad_options(tmp_path, capsys, args, words):
    code, _, err = run_main(capsys, "render", "default", "--out", str(tmp_path / "f.png"), *args)
    assert_one_line_error(code, err, words)


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--fps", "0"], "--fps: must be an integer from 1 to 60"),
     (["--fps", "2.5"], "--fps: must be an integer"),
     (["--duration", "-1"], "--duration: must be a number"),
     (["--fps", "60", "--duration", "3000"], "frames")],
)  # fmt: skip
def test_bad_animation_options(tmp_path, capsys, args, words):
    code, _, err = run_main(capsys, "render", "default", "--out", str(tmp_path / "a.mp4"), *args)
    assert_one_line_error(code, err, words)


def test_folder_under_a_regular_file(tmp_path, capsys):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    code, _, err = run_main(capsys, "render", "default", "--out", str(plain / "f.png"))
    assert_one_line_error(code, err, "is not a folder")
    assert sorted(os.listdir(tmp_path)) == ["plain.txt"]


def test_missing_folder(tmp_path, capsys):
    code, _, err = run_main(capsys, "render", "default", "--out", str(tmp_path / "no" / "f.png"))
    assert_one_line_error(code, err, "does not exist")


def test_folder_nobody_may_write(tmp_path, capsys):
    folder = unwritable_folder(tmp_path)
    before = sorted(os.listdir(folder))
    target = os.path.join(folder, "f.png")
    code, out, err = run_main(capsys, "render", "default", "--out", target, *SMALL)
    assert_one_line_error(code, err, f"cannot write '{target}'")
    assert out == ""
    assert sorted(os.listdir(folder)) == before


def test_ctrl_c_mid_animation_leaves_no_file(tmp_path, capsys, monkeypatch, scenario_file):
    real = figures._frames

    def frames(plot, count):
        for k, frame in enumerate(real(plot, count)):
            if k == 3:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(figures, "_frames", frames)
    for ext in ("gif", "mp4"):
        out = tmp_path / f"a.{ext}"
        code, stdout, err = run_main(
            capsys, "render", scenario_file, "--out", str(out), "--size", "200x160",
            "--fps", "5", "--duration", "2", "--progress",
        )  # fmt: skip
        assert code == 130
        assert err.rstrip().endswith("gdsim: interrupted")
        assert stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


def test_help_lists_render(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    assert "gdsim render SCENARIO" in out
    code, out, _ = run_main(capsys, "render", "--help")
    assert code == 0
    assert "--duration" in out and "--view" in out
