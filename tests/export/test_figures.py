"""Figures and animations, checked in the files themselves: sizes, pixels, structure, frames."""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from gdsim.engine.simulation import RunSpec
from gdsim.export import figures
from gdsim.scenario import Scenario

MAGENTA = "#ff00ff"


def _scenario(steps: int = 30, lr: float = 0.05, runs: list[dict] | None = None) -> Scenario:
    runs = runs or [
        {"label": "GD", "optimizer": "sgd", "params": {"lr": lr}, "start": [1.5, 1.0],
         "color": MAGENTA},
    ]  # fmt: skip
    return Scenario.from_dict(
        {"gdsim": 1, "title": "Test", "surface": {"name": "bowl"}, "steps": steps, "runs": runs}
    )


def _finished(scenario: Scenario):
    sim = scenario.to_simulation()
    sim.step(scenario.steps)
    return sim


@pytest.fixture(scope="module")
def bowl():
    scenario = _scenario()
    return scenario, _finished(scenario)


def _leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------ PNG
@pytest.mark.parametrize("view", figures.VIEWS)
def test_png_of_every_view_has_the_requested_size(tmp_path, bowl, view):
    scenario, sim = bowl
    path = tmp_path / f"{view}.png"
    size = figures.write_figure(path, sim, scenario, view=view, size=(333, 241))
    assert size == (333, 241)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (333, 241)
    assert _leftovers(tmp_path) == [f"{view}.png"]


@pytest.mark.parametrize(("size", "dpi"), [((640, 480), None), ((501, 377), 97), ((800, 300), 150)])
def test_png_size_is_exact_for_any_dpi(tmp_path, bowl, size, dpi):
    scenario, sim = bowl
    path = tmp_path / "f.png"
    figures.write_figure(path, sim, scenario, view="contour", size=size, dpi=dpi, theme="dark")
    with Image.open(path) as im:
        assert im.size == size


def test_trail_of_the_runs_colour_passes_through_its_points(tmp_path, bowl):
    """Read the PNG back: near every (thinned) step of the trail there is a magenta pixel, and
    far from the trail there is none."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    scenario, sim = bowl
    path = tmp_path / "c.png"
    size = (480, 400)
    figures.write_figure(path, sim, scenario, view="contour", size=size)
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)

    # the same figure in memory gives the axes' data -> pixel transform after layout
    with figures._rc("light"):
        fig = figures.render_figure(sim, scenario, view="contour", size=size)
        FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]

    def near_magenta(x: float, y: float, radius: int = 3) -> bool:
        px, py = ax.transData.transform((x, y))
        col, row = round(px), round(size[1] - py)
        patch = pixels[
            max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1
        ]
        dist = np.abs(patch - np.array([255, 0, 255])).sum(axis=-1)
        return bool((dist < 90).any())

    xy = np.asarray(sim.history(0).positions)
    # between the start marker and the end dot: the line itself
    for k in (3, 6, 10, 15, 20):
        assert near_magenta(*xy[k]), f"no trail pixel at step {k}: {xy[k]}"
    for x, y in [(-1.5, 1.5), (1.5, -1.5), (-1.0, -1.0)]:
        assert not near_magenta(x, y, radius=6), (x, y)


def test_dark_theme_has_a_dark_background(tmp_path, bowl):
    scenario, sim = bowl
    path = tmp_path / "d.png"
    figures.write_figure(path, sim, scenario, view="loss", size=(300, 200), theme="dark")
    corner = np.asarray(Image.open(path).convert("RGB"))[2, 2]
    assert corner.max() < 60


# ------------------------------------------------------------------------------ vectors
def test_svg_parses_and_keeps_trails_and_text_as_paths(tmp_path, bowl):
    scenario, sim = bowl
    path = tmp_path / "f.svg"
    figures.write_figure(path, sim, scenario, view="grid", size=(900, 300))
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    paths = root.iter(f"{ns}path")
    styles = [p.get("style", "") for p in paths]
    assert len(styles) > 50
    assert any("stroke: #ff00ff" in s for s in styles), "the magenta trail is a vector path"
    assert not list(root.iter(f"{ns}text")), "text is drawn as outlines"
    # the 3-D surface alone may be an embedded raster
    assert len(list(root.iter(f"{ns}image"))) <= 1


def test_pdf_is_a_well_formed_pdf(tmp_path, bowl):
    scenario, sim = bowl
    path = tmp_path / "f.pdf"
    figures.write_figure(path, sim, scenario, view="contour", size=(400, 320))
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    # startxref points at the cross-reference table, whose entries point at "N 0 obj"
    start = int(re.search(rb"startxref\s+(\d+)", data).group(1))
    assert data[start : start + 4] == b"xref"
    table = data[start:].split(b"trailer")[0].split(b"\n")
    offsets = [int(line[:10]) for line in table[3:] if line.endswith(b"n ") or line.endswith(b"n")]
    assert offsets
    for k, off in enumerate(offsets[:20], start=1):
        assert re.match(rb"\d+ 0 obj", data[off : off + 12]), k
    assert b"/Type /Page" in data
    assert b"/MediaBox [ 0 0" in data


def test_same_scenario_same_svg_bytes(tmp_path, bowl):
    scenario, sim = bowl
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    for p in (a, b):
        figures.write_figure(p, sim, scenario, view="contour", size=(300, 240))
    assert a.read_bytes() == b.read_bytes()


# ------------------------------------------------------------------------------ content
def test_legend_names_optimizer_and_key_hyperparameters():
    adam = RunSpec("Adam", "adam", {"lr": 0.05}, (0.0, 0.0))
    assert figures.run_label(adam) == "Adam (lr=0.05, β=(0.9, 0.999))"
    hb = RunSpec("Heavy ball", "sgd", {"lr": 0.01, "momentum": 0.9, "nesterov": True}, (0, 0))
    assert figures.run_label(hb) == "Heavy ball (SGD, lr=0.01, momentum=0.9, Nesterov)"
    sched = RunSpec("SGD", "sgd", {}, (0, 0), schedule={"name": "cosine", "T_max": 9}, noise=0.1)
    assert figures.run_label(sched) == "SGD (lr=0.001, cosine schedule, σ=0.1)"
    # what the label already says is not said twice
    lr = RunSpec("lr = 0.07 (above 2/f'')", "sgd", {"lr": 0.07}, (0, 0))
    assert figures.run_label(lr) == "lr = 0.07 (above 2/f'') (SGD)"
    mb = RunSpec("Mini-batch 8", "sgd", {"lr": 2.0}, (0, 0), batch_size=8)
    assert figures.run_label(mb) == "Mini-batch 8 (SGD, lr=2)"
    other = RunSpec("Small batches", "sgd", {"lr": 2.0}, (0, 0), batch_size=8)
    assert figures.run_label(other) == "Small batches (SGD, lr=2, batch 8)"


def test_run_colours_keep_their_own_and_share_the_window_palette():
    from gdsim.ui import document

    assert document.PALETTE is figures.PALETTE
    specs = [
        RunSpec("a", "sgd", {}, (0, 0)),
        RunSpec("b", "sgd", {}, (0, 0), color=figures.PALETTE[0]),
        RunSpec("c", "sgd", {}, (0, 0)),
    ]
    assert figures.run_colors(specs) == [
        figures.PALETTE[1],
        figures.PALETTE[0],
        figures.PALETTE[2],
    ]


def test_log_surface_gets_log_spaced_levels():
    from matplotlib.colors import LogNorm
    from matplotlib.contour import ContourSet

    scenario = Scenario.from_dict(
        {"gdsim": 1, "surface": {"name": "goldstein-price"}, "steps": 20,
         "runs": [{"optimizer": "adam", "params": {"lr": 0.05}, "start": [1.0, -1.5]}]}
    )  # fmt: skip
    fig = figures.render_figure(_finished(scenario), scenario, view="contour", size=(400, 320))
    sets = [c for c in fig.axes[0].get_children() if isinstance(c, ContourSet)]
    filled = [c for c in sets if c.filled]
    assert filled and isinstance(filled[0].norm, LogNorm)
    levels = np.asarray(filled[0].levels)
    ratios = levels[1:] / levels[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] > 1.5


def test_minima_and_markers(bowl):
    scenario = Scenario.from_dict(
        {"gdsim": 1, "surface": {"name": "bowl"}, "steps": 60,
         "runs": [{"optimizer": "sgd", "params": {"lr": 0.1}, "start": [1.2, 0.8]},
                  {"optimizer": "sgd", "params": {"lr": 3.0}, "start": [1.2, 0.8]}]}
    )  # fmt: skip
    sim = _finished(scenario)
    assert sim.status(1).value == "diverged"
    fig = figures.render_figure(sim, scenario, view="contour", size=(400, 320))
    lines = fig.axes[0].get_lines()
    markers = [ln.get_marker() for ln in lines]
    assert "*" in markers  # the known minimum
    assert markers.count("X") == 1  # the diverged run's end
    assert "o" in markers


def test_occlusion_hides_what_is_behind_a_hill():
    """A point on the far side of a bump (seen from the camera) is hidden, on the near side not."""
    from gdsim.engine import surfaces

    bump = surfaces.from_formula("4*exp(-4*(x^2 + y^2))", box=((-2, 2), (-2, 2)))
    scenario = Scenario.from_dict(
        {"gdsim": 1, "surface": {"formula": "4*exp(-4*(x^2 + y^2))", "box": [[-2, 2], [-2, 2]]},
         "steps": 1, "runs": []}
    )  # fmt: skip
    sim = scenario.to_simulation()
    scene = figures._scene(sim, scenario, None, 64)
    occ = figures._Occlusion(scene, (0.0, 4.0), elev=20.0, azim=-60.0)
    toward = np.array([math.cos(math.radians(-60)), math.sin(math.radians(-60))])
    near, far = 0.9 * toward, -0.9 * toward
    pts = np.array([[*near, float(bump.value(near))], [*far, float(bump.value(far))]])
    assert occ.hidden(pts).tolist() == [False, True]


def test_size_limits_are_checked_before_anything_is_drawn(tmp_path, bowl, monkeypatch):
    scenario, sim = bowl

    def boom(*a, **k):
        raise AssertionError("rendered anyway")

    monkeypatch.setattr(figures, "_scene", boom)
    for size, words in [
        ((10001, 100), "at most 10000"),
        ((8000, 8000), "Mpx"),
        ((50, 400), "at least"),
    ]:
        with pytest.raises(ValueError, match=words):
            figures.write_figure(tmp_path / "x.png", sim, scenario, size=size)
    with pytest.raises(ValueError, match="GIF"):
        figures.write_animation(
            tmp_path / "x.gif", sim, scenario, size=(4000, 4000), fps=60, duration=60
        )
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "ok"),
    [("1920x1080", (1920, 1080)), ("640X480", (640, 480)), ("800×600", (800, 600)),
     ("1920", None), ("ax3", None), ("-5x100", None), ("20000x10", None)],
)  # fmt: skip
def test_parse_size(text, ok):
    if ok is None:
        with pytest.raises(ValueError):
            figures.parse_size(text)
    else:
        assert figures.parse_size(text) == ok


def test_format_for():
    assert figures.format_for("a/b.PNG") == "png"
    assert figures.format_for("x.mp4") == "mp4"
    with pytest.raises(ValueError, match="unknown file type"):
        figures.format_for("x.bmp")


# ------------------------------------------------------------------------------ animations
@pytest.fixture(scope="module")
def moving():
    # slow enough that the ball is still rolling at the last step: every frame differs
    scenario = _scenario(steps=40, lr=0.01)
    return scenario, _finished(scenario)


def test_gif_has_the_requested_frames(tmp_path, moving):
    scenario, sim = moving
    path = tmp_path / "a.gif"
    seen = []
    n = figures.write_animation(
        path, sim, scenario, view="contour", size=(240, 200), fps=5, duration=1.2,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert n == 6
    assert seen == [(k, 6) for k in range(1, 7)]
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.size == (240, 200)
        assert im.n_frames == 6
        assert im.info.get("duration") == 200
    assert _leftovers(tmp_path) == ["a.gif"]


def test_gif_frames_show_the_ball_rolling(tmp_path, moving):
    scenario, sim = moving
    path = tmp_path / "a.gif"
    figures.write_animation(path, sim, scenario, view="grid", size=(600, 200), fps=4, duration=1)
    frames = []
    with Image.open(path) as im:
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB")).astype(int))
    magenta = [int(((np.abs(f - [255, 0, 255]).sum(-1)) < 90).sum()) for f in frames]
    assert magenta[-1] > magenta[0]  # the trail grows


def test_mp4_has_about_the_requested_frames(tmp_path, moving):
    import imageio.v2 as imageio

    scenario, sim = moving
    path = tmp_path / "a.mp4"
    n = figures.write_animation(
        path, sim, scenario, view="loss", size=(241, 161), fps=10, duration=1.0
    )
    assert n == 10
    assert path.stat().st_size > 1000
    reader = imageio.get_reader(path)
    try:
        assert abs(reader.count_frames() - 10) <= 1
        assert reader.get_meta_data()["size"] == (242, 162)  # odd sides padded for yuv420p
    finally:
        reader.close()
    assert _leftovers(tmp_path) == ["a.mp4"]


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_interrupted_animation_leaves_no_file(tmp_path, moving, ext):
    scenario, sim = moving
    path = tmp_path / f"a.{ext}"

    def stop(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        figures.write_animation(
            path, sim, scenario, view="contour", size=(200, 160), fps=8, duration=1, progress=stop
        )
    assert _leftovers(tmp_path) == []


def test_interrupted_animation_keeps_the_old_file(tmp_path, moving, monkeypatch):
    """A frame writer that dies mid-way: the file that was there is still there, unchanged."""
    scenario, sim = moving
    path = tmp_path / "a.gif"
    path.write_bytes(b"old")
    real = figures._frames

    def frames(plot, count):
        for k, frame in enumerate(real(plot, count)):
            if k == 2:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(figures, "_frames", frames)
    with pytest.raises(KeyboardInterrupt):
        figures.write_animation(path, sim, scenario, view="contour", size=(200, 160), fps=5)
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == ["a.gif"]


def test_figure_formats_are_not_animations(tmp_path, bowl):
    scenario, sim = bowl
    with pytest.raises(ValueError):
        figures.write_animation(tmp_path / "a.png", sim, scenario)
    with pytest.raises(ValueError):
        figures.write_figure(tmp_path / "a.gif", sim, scenario)


def test_mp4_without_ffmpeg_is_a_clear_error_and_no_file(tmp_path, monkeypatch):
    import imageio_ffmpeg

    def missing():
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    frames = [np.zeros((120, 160, 3), dtype=np.uint8)] * 3
    with pytest.raises(ValueError, match="MP4 needs ffmpeg"):
        figures.write_frames(tmp_path / "a.mp4", frames, 5)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ f(x) only
def _one_d() -> tuple[Scenario, object]:
    scenario = Scenario.from_dict(
        {
            "gdsim": 1,
            "title": "1-D",
            "surface": {
                "formula": "0.1*(x - 1.5)^2 - 1.5*exp(-10*x^2)",
                "box": [[-2.5, 3.5], [-1, 1]],
            },
            "steps": 40,
            "runs": [
                {"label": "jumps", "optimizer": "sgd", "params": {"lr": 0.3}, "start": [-1.5, 0],
                 "color": MAGENTA},
            ],
        }
    )  # fmt: skip
    return scenario, _finished(scenario)


@pytest.mark.parametrize("view", ["grid", "contour", "3d"])
def test_a_function_of_x_is_drawn_as_its_curve_with_the_iterates(tmp_path, view):
    """For f(x) the maps give way to the curve: every iterate is a magenta dot on it (the
    ball's jump over the well among them), where the 2-D map would have put it at y = 0."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    scenario, sim = _one_d()
    size = (900, 420)
    path = tmp_path / "c.png"
    figures.write_figure(path, sim, scenario, view=view, size=size)
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    with figures._rc("light"):
        fig = figures.render_figure(sim, scenario, view=view, size=size)
        FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    assert ax.name == "rectilinear" and ax.get_ylabel() == "$f(x)$"
    assert len(fig.axes) == (2 if view == "grid" else 1)

    def magenta_at(x: float, y: float, radius: int = 3) -> bool:
        px, py = ax.transData.transform((x, y))
        col, row = round(px), round(size[1] - py)
        patch = pixels[
            max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1
        ]
        return bool((np.abs(patch - np.array([255, 0, 255])).sum(axis=-1) < 120).any())

    h = sim.history(0)
    xs, fs = np.asarray(h.positions)[:, 0], np.asarray(h.losses)
    assert xs.min() < 0 < xs.max()  # it did jump over the well at x = 0
    for k in range(0, 40, 5):
        assert magenta_at(xs[k], fs[k]), (k, xs[k], fs[k])
    assert not magenta_at(3.0, 0.3, radius=6)  # far from every iterate
