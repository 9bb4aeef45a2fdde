"""`gdsim sweep`: the numbers are the engine's, the picture shows them, bad input is one line."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from gdsim import cli
from gdsim.engine.sweep import parse_axis, sweep
from gdsim.export import sweep_map
from gdsim.scenario import Scenario, shipped_path
from tests import cli_helpers
from tests.cli_helpers import assert_one_line_error

# lr-too-high is the bowl x² + y² with plain GD: it diverges exactly where lr > 1. The y axis
# sweeps dampening, which does nothing without momentum, so every row is the same.
BOWL_X = "lr=0.05:2:40"
BOWL_Y = "dampening=0:0.5:5"


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    return cli_helpers.run_main(capsys, "sweep", *args)


def engine_result(name: str, run: int, x: str, y: str, **kw):
    s = Scenario.load(shipped_path(name))
    spec = s.runs[run]
    return sweep(
        s.build_surface(), spec.optimizer, spec.params, spec.start, parse_axis(x), parse_axis(y),
        steps=kw.pop("steps", s.steps), schedule=spec.schedule, noise=spec.noise, seed=s.seed,
        stream=run, **kw,
    )  # fmt: skip


# ------------------------------------------------------------------ CSV
def test_csv_holds_the_engine_numbers_exactly(tmp_path, capsys):
    out = tmp_path / "cells.csv"
    code, stdout, err = run_main(
        capsys, "ravine-momentum", "--run", "1", "--x", "lr=1e-3:1:log:30",
        "--y", "momentum=0:0.99:20", "--tol", "1e-4", "--steps", "120", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert err == ""
    assert "30 x 20 cells" in stdout and f"wrote {out}" in stdout
    r = engine_result("ravine-momentum", 1, "lr=1e-3:1:log:30", "momentum=0:0.99:20",
                      steps=120, tol=1e-4)  # fmt: skip
    assert out.read_text().splitlines()[0] == "x,y,final_loss,steps_to_tol,diverged,diverged_at"
    back = sweep_map.read_csv(out)
    assert back["x"].tobytes() == np.tile(r.x.values, 20).tobytes()
    assert back["y"].tobytes() == np.repeat(r.y.values, 30).tobytes()
    assert back["final_loss"].tobytes() == r.final_loss.reshape(-1).tobytes()
    assert back["steps_to_tol"].tobytes() == r.steps_to_tol.reshape(-1).tobytes()
    assert (back["diverged"] == r.diverged.reshape(-1)).all()
    assert (back["diverged_at"] == r.diverged_at.reshape(-1)).all()
    assert back["diverged"].any() and np.isinf(back["steps_to_tol"]).any()


def test_csv_round_trip_of_awkward_floats(tmp_path):
    r = engine_result("lr-too-high", 0, "lr=0.1:1.3:7", "dampening=0:0.1:3")
    path = tmp_path / "m.csv"
    assert sweep_map.write_csv(path, r) == 21
    back = sweep_map.read_csv(path)
    assert back["x"][:7].tolist() == r.x.values.tolist()  # 0.30000000000000004 and friends
    assert back["final_loss"].tobytes() == r.final_loss.reshape(-1).tobytes()


# ------------------------------------------------------------------ images
def bowl_map(tmp_path, capsys, metric="final_loss", ext="png"):
    out = tmp_path / f"map.{ext}"
    code, stdout, err = run_main(
        capsys, "lr-too-high", "--x", BOWL_X, "--y", BOWL_Y, "--metric", metric, "--out", str(out)
    )
    assert code == 0, err
    assert f"wrote {out} ({ext}, {metric})" in stdout
    return out


def rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return tuple(int(c[k : k + 2], 16) for k in (0, 2, 4))  # type: ignore[return-value]


def test_png_shows_divergence_exactly_right_of_lr_one(tmp_path, capsys):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    out = bowl_map(tmp_path, capsys)
    image = np.asarray(Image.open(out).convert("RGB"))
    h, w, _ = image.shape
    assert (w, h) == (round(sweep_map.FIGSIZE[0] * 150), round(sweep_map.FIGSIZE[1] * 150))

    # Where the axes and lr = 1 are in pixels: the same figure, drawn here.
    r = engine_result("lr-too-high", 0, BOWL_X, BOWL_Y)
    assert r.diverged[:, r.x.values > 1.01].all() and not r.diverged[:, r.x.values <= 1].any()
    s = Scenario.load(shipped_path("lr-too-high"))
    title = f"{s.build_surface().title}: run 0 ({s.runs[0].label}), {s.steps} steps"
    fig = sweep_map.figure(r, "final_loss", title=title, run_label=s.runs[0].label)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    drawn = np.asarray(canvas.buffer_rgba())[..., :3]
    assert drawn.shape == image.shape and (drawn == image).mean() > 0.999  # same picture
    ax = fig.axes[0]
    box = ax.get_window_extent()
    top, bottom = int(h - box.y1) + 3, int(h - box.y0) - 3
    left, right = int(box.x0) + 3, int(box.x1) - 3
    edge = ax.transData.transform((1.025, 0.25))[0]  # between the cells lr = 1 and lr = 1.05

    red = (image == rgb(sweep_map.DIVERGED_COLOR)).all(axis=-1)
    inside = red[top:bottom, left:right]
    columns = np.arange(left, right)
    assert not inside[:, columns < edge - 2].any()  # no divergence at lr <= 1
    assert inside[:, columns > edge + 2].mean() > 0.99  # all of lr > 1 diverged
    # the legend explains the colour (a swatch of it below the axes)
    assert red[int(h - box.y0) + 5 :, :].any()


def test_steps_and_diverged_maps(tmp_path, capsys):
    from PIL import Image

    for metric, colour in (("diverged", sweep_map.STABLE_COLOR), ("steps_to_tol", None)):
        out = bowl_map(tmp_path, capsys, metric=metric)
        image = np.asarray(Image.open(out).convert("RGB"))
        assert (image == rgb(sweep_map.DIVERGED_COLOR)).all(axis=-1).sum() > 10_000
        if colour is not None:
            assert (image == rgb(colour)).all(axis=-1).sum() > 10_000


def test_svg_and_pdf_are_real_files(tmp_path, capsys):
    svg = bowl_map(tmp_path, capsys, ext="svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "lr" in svg.read_text()
    pdf = bowl_map(tmp_path, capsys, ext="pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    again = tmp_path / "again.svg"
    assert cli.main(["sweep", "lr-too-high", "--x", BOWL_X, "--y", BOWL_Y, "-q", "--out",
                     str(again), "--metric", "final_loss"]) == 0  # fmt: skip
    assert again.read_bytes() == svg.read_bytes()  # no dates: same sweep, same bytes


def test_log_axes_and_the_cross_off_the_map(tmp_path):
    r = engine_result("lr-too-high", 0, "lr=1e-3:1e-2:log:5", "dampening=0:0.5:3")
    fig = sweep_map.figure(r, "final_loss")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("lr=0.1" in t and "off the map" in t for t in labels), labels
    assert fig.axes[1].get_ylabel().startswith("final loss")  # the colour bar names the metric


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["lr-too-high", "--x", BOWL_X, "--out", "m.png"], ["required: --y"]),
        (["lr-too-high", "--x", "lr", "--y", BOWL_Y, "--out", "m.png"], ["--x:", "NAME=LOW"]),
        (["lr-too-high", "--x", "lr=0:1:log:5", "--y", BOWL_Y, "--out", "m.png"],
         ["--x:", "log axis needs LOW > 0"]),
        (["lr-too-high", "--x", "lr=2:1:5", "--y", BOWL_Y, "--out", "m.png"],
         ["LOW must be below HIGH"]),
        (["lr-too-high", "--x", "lrr=0.1:1:5", "--y", BOWL_Y, "--out", "m.png"],
         ["cannot sweep 'lrr'", "valid axes: lr, momentum"]),
        (["lr-too-high", "--x", BOWL_X, "--y", "lr=0.1:1:3", "--out", "m.png"],
         ["both sweep 'lr'"]),
        (["lr-too-high", "--x", BOWL_X, "--y", "momentum=-1:1:3", "--out", "m.png"],
         ["momentum: values must be >= 0"]),
        (["lr-too-high", "--x", "lr=0.1:1:3000", "--y", "momentum=0:0.9:3000", "--out",
          "m.png"], ["cells is too many"]),
        (["lr-too-high", "--run", "9", "--x", BOWL_X, "--y", BOWL_Y, "--out", "m.png"],
         ["--run: no run 9", "runs 0..4"]),
        (["lr-too-high", "--x", BOWL_X, "--y", BOWL_Y, "--tol", "-1", "--out", "m.png"],
         ["--tol: must be a number > 0"]),
        (["lr-too-high", "--x", BOWL_X, "--y", BOWL_Y, "--tol", "abc", "--out", "m.png"],
         ["--tol: must be a number > 0"]),
        (["lr-too-high", "--x", BOWL_X, "--y", BOWL_Y, "--metric", "loss", "--out", "m.png"],
         ["--metric: invalid choice"]),
        (["lr-too-high", "--x", BOWL_X, "--y", BOWL_Y, "--out", "m.jpg"],
         ["--out: unknown format ('.jpg')", ".png"]),
        (["nope", "--x", BOWL_X, "--y", BOWL_Y, "--out", "m.csv"], ["no scenario file 'nope'"]),
        (["lr-too-high", "--x", BOWL_X, "--y", BOWL_Y, "--steps", "x", "--out", "m.csv"],
         ["--steps"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, needles):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, *argv)
    assert_one_line_error(code, err, *needles)
    assert out == ""
    assert os.listdir(tmp_path) == []


def test_out_under_a_regular_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "plain").write_text("a file, not a folder")
    target = tmp_path / "plain" / "map.png"
    code, _out, err = run_main(capsys, "lr-too-high", "--x", BOWL_X, "--y", BOWL_Y,
                              "--out", str(target))  # fmt: skip
    assert_one_line_error(code, err, "--out:", "is not a folder")
    code, _out, err = run_main(capsys, "lr-too-high", "--x", BOWL_X, "--y", BOWL_Y,
                              "--out", str(tmp_path / "missing" / "map.png"))  # fmt: skip
    assert_one_line_error(code, err, "--out:", "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


@pytest.mark.parametrize("ext", ["png", "csv"])
def test_a_failed_write_leaves_no_partial_file(tmp_path, capsys, monkeypatch, ext):
    target = tmp_path / f"map.{ext}"
    target.write_bytes(b"the old map")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("os.replace", refuse)
    code, _out, err = run_main(capsys, "lr-too-high", "--x", BOWL_X, "--y", BOWL_Y,
                              "--out", str(target))  # fmt: skip
    assert_one_line_error(code, err, f"cannot write '{target}': Permission denied")
    assert target.read_bytes() == b"the old map"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_folder_as_out_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "map.png"
    folder.mkdir()
    code, _out, err = run_main(capsys, "lr-too-high", "--x", BOWL_X, "--y", BOWL_Y,
                              "--out", str(folder))  # fmt: skip
    assert_one_line_error(code, err, "cannot write", "Is a directory")


# ------------------------------------------------------------------ a real process
def test_csv_sweep_in_a_real_process_imports_no_plotting(tmp_path):
    out = tmp_path / "cells.csv"
    code = (
        "import sys\n"
        "from gdsim import cli\n"
        f"rc = cli.main(['sweep', 'lr-too-high', '--x', '{BOWL_X}', '--y', '{BOWL_Y}', '-q',"
        f" '--out', {str(out)!r}])\n"
        "print(rc, sorted(m for m in ('matplotlib', 'PySide6') if m in sys.modules))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0 []"
    assert len(sweep_map.read_csv(out)["x"]) == 200


def test_help_lists_the_sweep(capsys):
    assert cli.main(["sweep", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--metric" in out and "lr=1e-4:1:log:50" in out
    assert cli.main(["--help"]) == 0
    assert "gdsim sweep" in capsys.readouterr().out
