"""Figures and animations of a finished simulation: PNG, SVG, PDF, GIF and MP4, with no display.

Why matplotlib, and how it is used here:

* It needs no OpenGL and no X server (the window's GL views cannot render headless, see
  shared/reference/platform-notes.md), and it is the field's tool for publication figures.
* Only ``matplotlib.figure.Figure`` objects and their canvases are used, never pyplot: no
  global figure registry, no GUI backend picked behind our back. The file type picks the canvas
  (Agg for PNG/GIF/MP4 frames, the SVG and PDF backends for vectors), so vector files keep
  trails, contours and text as paths; only the 3-D surface itself is embedded as an image there.
* The theme is a temporary ``rc_context`` around building and drawing. rcParams are
  process-wide, so every render holds one module lock: a window exporting in a worker thread and
  another render can never mix their styles.

What a figure shows (the same for the window's "Export figure..." and ``gdsim render``):
each run's trail in its colour (``RunSpec.color`` or :data:`PALETTE`, the palette the window
uses too) with its start (open circle) and end (dot; X where it diverged), the known global
minima (stars) and local minima (triangles), the surface as filled contours (log-spaced levels
where the surface's range is huge) or a 3-D surface, and the loss against the step (f − f*
on a log axis where the minimum f* is known). The legend names each run's optimizer and key
hyperparameters.

Occlusion in 3-D: matplotlib sorts whole artists by depth, so a trail is either hidden behind
the whole surface or drawn over all of it (platform notes). Instead the figure decides itself:
it draws in a fixed order (``computed_zorder=False``: floor contours, surface, trails, markers)
and, with an orthographic camera, casts a ray from every trail point towards the eye through
the exact surface f; where the surface is in the way (or a straight chord between two steps
passes through a hill) that part is drawn dashed and faint, "behind", and the rest solid. So no
part of a trail is hidden wrongly, and no part that is really behind a hill looks in front.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gdsim.engine import optimizers
from gdsim.engine.simulation import RunSpec, Simulation, Status
from gdsim.export.atomic import atomic_open

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from gdsim.engine.surfaces import Surface
    from gdsim.scenario import Scenario

__all__ = [
    "ANIMATION_FORMATS",
    "FIGURE_FORMATS",
    "FORMATS",
    "MAX_FRAMES",
    "MAX_GIF_PIXELS",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "PALETTE",
    "THEMES",
    "VIEWS",
    "check_animation",
    "check_size",
    "default_size",
    "format_for",
    "parse_size",
    "render_figure",
    "run_colors",
    "run_label",
    "write_animation",
    "write_figure",
    "write_frames",
]

#: Colours given to runs without their own, in turn (colour-blind-safe, distinct on light and
#: dark backgrounds). The window's model imports this: one palette for screen and file.
PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#ffe119",
    "#469990",
)

VIEWS = ("grid", "contour", "3d", "loss")
FIGURE_FORMATS = ("png", "svg", "pdf")
ANIMATION_FORMATS = ("gif", "mp4")
FORMATS = FIGURE_FORMATS + ANIMATION_FORMATS
THEMES = ("light", "dark")

#: Size limits, checked before anything is drawn: a typo like 19200x10800 must not eat memory.
MIN_SIDE = 100
MAX_SIDE = 10_000
MAX_PIXELS = 40_000_000
#: Most frames an animation may have (a minute at 60 fps).
MAX_FRAMES = 3600
#: GIF frames are kept in memory until written (one byte a pixel): cap frames x pixels.
MAX_GIF_PIXELS = 1_000_000_000

# Design size in inches per view: the automatic dpi scales text to the picture, so a 4K image
# has the same proportions as a small one (larger, not more crowded).
_DESIGN_INCHES = {
    "contour": (6.4, 5.0),
    "3d": (6.4, 5.0),
    "loss": (6.4, 4.0),
    "grid": (15.0, 5.0),
    "grid-2x2": (10.0, 7.5),  # a tall grid: contour and 3-D above, the loss across below
}
#: A grid taller than this (height / width) stacks the loss plot under the two maps.
_GRID_STACK_RATIO = 0.45
_DEFAULT_SIZE = {
    "contour": (1200, 960),
    "3d": (1200, 960),
    "loss": (1200, 750),
    "grid": (2100, 700),
}
_DEFAULT_ANIMATION_SIZE = {
    "contour": (720, 576),
    "3d": (720, 576),
    "loss": (720, 450),
    "grid": (1440, 480),
}
_MAX_TRAIL_POINTS = 4000  # per run and view; more rows are thinned along the path
_CMAP = "viridis"  # the window's default colour map
_LOCK = threading.RLock()

_THEME_RC: dict[str, dict[str, Any]] = {
    "light": {
        "figure.facecolor": "#ffffff",
        "axes.facecolor": "#ffffff",
        "axes.edgecolor": "#4a4a4a",
        "axes.labelcolor": "#1f1f1f",
        "text.color": "#1f1f1f",
        "xtick.color": "#4a4a4a",
        "ytick.color": "#4a4a4a",
        "grid.color": "#dcdcdc",
        "legend.facecolor": "#ffffff",
        "legend.edgecolor": "#cccccc",
    },
    "dark": {
        "figure.facecolor": "#16181d",
        "axes.facecolor": "#16181d",
        "axes.edgecolor": "#9aa0a8",
        "axes.labelcolor": "#e8e8e8",
        "text.color": "#e8e8e8",
        "xtick.color": "#b8bcc4",
        "ytick.color": "#b8bcc4",
        "grid.color": "#3a3f48",
        "legend.facecolor": "#1f2229",
        "legend.edgecolor": "#3a3f48",
    },
}
_COMMON_RC: dict[str, Any] = {
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.0,
    "figure.titlesize": 12.0,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.solid_capstyle": "round",
    "lines.solid_joinstyle": "round",
    "legend.framealpha": 0.92,
    "svg.hashsalt": "gdsim",  # stable ids: the same scenario gives the same bytes
    "svg.fonttype": "path",  # text as outlines: looks the same everywhere, no font needed
    "pdf.fonttype": 42,  # TrueType, not Type 3: what journals' PDF checks ask for
    "savefig.facecolor": "auto",
    "mathtext.default": "regular",
}
# Colours that depend on the theme but are not rcParams.
_HALO = {"light": "#ffffff", "dark": "#0b0c0f"}
_LEVEL_LINES = {"light": (0.0, 0.0, 0.0, 0.22), "dark": (1.0, 1.0, 1.0, 0.18)}
_PANE = {"light": (0.96, 0.96, 0.96, 1.0), "dark": (0.13, 0.14, 0.17, 1.0)}
_MIN_FACE = {"light": "#ffd700", "dark": "#ffd700"}
_LOCAL_FACE = {"light": "#ffffff", "dark": "#d0d4da"}


# ------------------------------------------------------------------------------ checking
def format_for(path: str | os.PathLike[str]) -> str:
    """``png``, ``svg``, ``pdf``, ``gif`` or ``mp4`` from the file name; ValueError otherwise."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in FORMATS:
        shown = f"'.{ext}'" if ext else "none"
        raise ValueError(f"unknown file type (extension {shown}); use {', '.join(FORMATS)}")
    return ext


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> (1920, 1080); ValueError (with the expected form) otherwise."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        w, h = (int(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"expected WIDTHxHEIGHT in pixels like 1920x1080, got {text!r}") from None
    check_size(w, h)
    return w, h


def check_size(width: int, height: int) -> None:
    """ValueError if a width x height image is too small or too large to render."""
    for name, v in (("width", width), ("height", height)):
        if v < MIN_SIDE:
            raise ValueError(f"{name} must be at least {MIN_SIDE} px, got {v}")
        if v > MAX_SIDE:
            raise ValueError(f"{name} must be at most {MAX_SIDE} px, got {v}")
    if width * height > MAX_PIXELS:
        raise ValueError(
            f"{width}x{height} is {width * height / 1e6:.1f} Mpx; at most"
            f" {MAX_PIXELS // 1_000_000} Mpx"
        )


def check_animation(fmt: str, size: tuple[int, int], frames: int) -> None:
    """ValueError if an animation of ``frames`` frames at ``size`` is out of bounds."""
    check_size(*size)
    if not 2 <= frames <= MAX_FRAMES:
        raise ValueError(
            f"an animation needs 2 to {MAX_FRAMES} frames (fps x duration), got {frames}"
        )
    if fmt == "gif" and frames * size[0] * size[1] > MAX_GIF_PIXELS:
        raise ValueError(
            f"{frames} frames of {size[0]}x{size[1]} is too much for a GIF"
            f" (at most {MAX_GIF_PIXELS // 1_000_000_000} Gpx in all); use .mp4, a smaller"
            " --size or fewer frames"
        )


def default_size(view: str, animated: bool = False) -> tuple[int, int]:
    """The size (pixels) a view gets when none is asked for."""
    _check_view(view)
    return (_DEFAULT_ANIMATION_SIZE if animated else _DEFAULT_SIZE)[view]


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of: {', '.join(VIEWS)}")


def _check_theme(theme: str) -> None:
    if theme not in THEMES:
        raise ValueError(f"unknown theme {theme!r}; choose one of: {', '.join(THEMES)}")


# ------------------------------------------------------------------------------ runs
def run_colors(runs: Sequence[RunSpec]) -> list[str]:
    """Each run's colour: its own, else the next palette colour no run has claimed."""
    used = {r.color.lower() for r in runs if r.color}
    free = [c for c in PALETTE if c not in used] or list(PALETTE)
    out, k = [], 0
    for r in runs:
        if r.color:
            out.append(r.color)
        else:
            out.append(free[k % len(free)])
            k += 1
    return out


_PARAM_NAMES = {
    "momentum": "momentum",
    "dampening": "dampening",
    "weight_decay": "wd",
    "betas": "β",
    "alpha": "α",
    "rho": "ρ",
    "eps": "ε",
    "lr_decay": "lr decay",
    "momentum_decay": "ψ",
    "damping": "damping",
    "initial_accumulator_value": "acc₀",
}
_FLAGS = {
    "nesterov": "Nesterov",
    "amsgrad": "AMSGrad",
    "centered": "centered",
    "decoupled_weight_decay": "decoupled wd",
}


def _num(v: Any) -> str:
    if isinstance(v, tuple | list):
        return "(" + ", ".join(_num(x) for x in v) + ")"
    return f"{float(v):g}"


def run_label(spec: RunSpec) -> str:
    """A legend entry: the label with the optimizer and its key hyperparameters.

    ``lr`` always, ``betas`` always for the optimizers that have them, anything else only where
    it differs from torch's default; the optimizer's name when the label does not say it.
    Example: ``Adam (lr=0.05, β=(0.9, 0.999))``, ``Heavy ball (SGD, lr=0.01, momentum=0.9)``.
    """
    try:
        info = optimizers.info(spec.optimizer)
    except (KeyError, ValueError):
        return spec.label
    said = spec.label.lower().replace(" ", "")

    def new(text: str) -> bool:  # not already in the label ("lr = 0.07", "Mini-batch 8")
        return text.lower().replace(" ", "") not in said

    parts = []
    if new(info.display_name):
        parts.append(info.display_name)
    for p in info.params:
        value = spec.params.get(p.name, p.default)
        if p.name == "lr":
            if new(f"lr={_num(value)}"):
                parts.append(f"lr={_num(value)}")
        elif p.kind == "bool":
            if value and p.name in _FLAGS:
                parts.append(_FLAGS[p.name])
        elif p.name == "betas" or value != p.default:
            name = _PARAM_NAMES.get(p.name, p.name)
            parts.append(f"{name}={_num(value)}")
    if spec.schedule:
        parts.append(f"{spec.schedule.get('name')} schedule")
    if spec.noise:
        parts.append(f"σ={_num(spec.noise)}")
    if spec.batch_size is not None and new(f"batch {spec.batch_size}"):
        parts.append(f"batch {spec.batch_size}")
    return f"{spec.label} ({', '.join(parts)})" if parts else spec.label


# ------------------------------------------------------------------------------ the scene
@dataclass
class _Trail:
    """One run as drawn: rows thinned along the path (for the maps) with their step index,
    rows thinned by step (for the loss plot), and how it ended."""

    label: str
    color: str
    steps: np.ndarray  # (m,) step index of each kept row (increasing)
    xy: np.ndarray  # (m, 2)
    loss: np.ndarray  # (m,)
    loss_steps: np.ndarray  # (k,) evenly thinned steps for the loss plot
    loss_values: np.ndarray  # (k,)
    last: int  # the step of its last row
    status: Status
    stopped_at: int


class _Height:
    """The displayed height: f itself, or log10(f - shift) for surfaces with a huge range."""

    def __init__(self, z: np.ndarray, surface: Surface) -> None:
        finite = z[np.isfinite(z)]
        zmin = float(finite.min()) if finite.size else 0.0
        zmax = float(finite.max()) if finite.size else 1.0
        self.known = len(surface.minima_values) > 0
        fstar = float(np.min(surface.minima_values)) if self.known else zmin
        self.shift = min(fstar, zmin)
        self.log = bool(surface.log_scale)
        span = max(zmax - self.shift, 1e-300)
        pos = finite - self.shift
        pos = pos[pos > 0]
        low = float(np.quantile(pos, 0.002)) if pos.size else span * 1e-6
        self.floor = max(low, span * 1e-7)  # the lowest contour level in the log case

    def __call__(self, f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=float)
        if not self.log:
            return f
        with np.errstate(all="ignore"):
            return np.log10(np.maximum(f - self.shift, self.floor))

    def label(self) -> str:
        if not self.log:
            return "f(x, y)"
        return "log₁₀(f − f*)" if self.known else "log₁₀(f − min f)"


@dataclass
class _Scene:
    surface: Surface
    box: tuple[tuple[float, float], tuple[float, float]]
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray  # (nx, ny) f on the grid
    height: _Height
    trails: list[_Trail]
    total: int  # the largest step any run reached
    title: str


def _thin(steps: np.ndarray, xy: np.ndarray, diag: float) -> np.ndarray:
    """Indices of rows to draw: evenly spaced along the path (about a pixel apart at any size)."""
    n = len(steps)
    if n <= 2:
        return np.arange(n)
    seg = np.hypot(*np.diff(xy, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    eps = diag / 2500.0
    cell = np.floor(arc / eps) if eps > 0 else np.zeros(n)
    keep = np.flatnonzero(np.diff(cell, prepend=-1.0) != 0)
    if len(keep) > _MAX_TRAIL_POINTS:
        keep = keep[:: math.ceil(len(keep) / _MAX_TRAIL_POINTS)]
    if keep[-1] != n - 1:
        keep = np.append(keep, n - 1)
    return keep


def _scene(sim: Simulation, scenario: Scenario | None, title: str | None, n: int) -> _Scene:
    surface = sim.surface
    box = surface.box
    x, y, z = surface.grid(n, n)
    z = np.asarray(z, dtype=float)
    height = _Height(z, surface)
    (x0, x1), (y0, y1) = box
    diag = math.hypot(x1 - x0, y1 - y0)
    far = np.array([[x0, y0], [x1, y1]]) + np.array([[-1.0], [1.0]]) * 10 * diag
    specs = sim.runs
    colors = run_colors(specs)
    trails = []
    for i, spec in enumerate(specs):
        if not spec.visible:
            continue
        h = sim.history(i)
        xy, loss = np.asarray(h.positions), np.asarray(h.losses)
        steps = np.arange(h.first, h.first + len(loss), dtype=float)
        # a diverging run is drawn until it is far outside the box (its numbers may reach 1e100)
        # the loss plot keeps every step (its axis clips); the maps stop once far outside
        by_step = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 6000)).astype(int))
        loss_steps, loss_values = steps[by_step], loss[by_step]
        out = np.flatnonzero(((xy < far[0]) | (xy > far[1])).any(axis=1))
        end = int(out[0]) + 1 if len(out) else len(loss)
        xy, loss, steps = xy[:end], loss[:end], steps[:end]
        keep = _thin(steps, xy, diag)
        trails.append(
            _Trail(
                run_label(spec),
                colors[i],
                steps[keep],
                xy[keep],
                loss[keep],
                loss_steps,
                loss_values,
                int(h.first + len(h.losses) - 1),
                sim.status(i),
                sim.stopped_at(i),
            )
        )
    total = max((t.last for t in trails), default=0)
    if title is None:
        title = (scenario.title if scenario is not None and scenario.title else "") or surface.title
    return _Scene(surface, box, x, y, z, height, trails, total, title)


def _prefix(steps: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    """Rows of a trail up to (float) step t, the last one interpolated between two steps."""
    k = int(np.searchsorted(steps, t, side="right"))
    if k == 0:
        return values[:1]
    if k >= len(steps) or steps[k - 1] == t:
        return values[:k]
    a = (t - steps[k - 1]) / (steps[k] - steps[k - 1])
    mid = values[k - 1] + a * (values[k] - values[k - 1])
    return np.concatenate([values[:k], mid[None] if values.ndim > 1 else [mid]])


def _ended(trail: _Trail, t: float) -> bool:
    return t >= trail.last and trail.status is Status.DIVERGED


# ------------------------------------------------------------------------------ panels
class _Panel:
    """A view in a figure: draws its static part once, then follows a time ``t`` (a step)."""

    def update(self, t: float) -> list[Any]:  # pragma: no cover - interface
        raise NotImplementedError


def _halo(theme: str, width: float) -> list[Any]:
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=width, foreground=_HALO[theme]), patheffects.Normal()]


def _end_style(trail: _Trail, t: float) -> dict[str, Any]:
    if _ended(trail, t):
        return {"marker": "X", "markersize": 8.0}
    return {"marker": "o", "markersize": 6.0}


def _box_aspect_ok(box: Any) -> bool:
    (x0, x1), (y0, y1) = box
    r = (y1 - y0) / (x1 - x0)
    return 1 / 3 <= r <= 3


class _ContourPanel(_Panel):
    def __init__(self, ax: Any, scene: _Scene, theme: str, colorbar: bool, animated: bool) -> None:
        from matplotlib import colors, ticker

        self.ax, self.scene, self.theme = ax, scene, theme
        hgt = scene.height
        Z = np.ma.masked_invalid(scene.z.T)  # contourf wants [row=y, col=x]
        if hgt.log:
            zz = np.ma.maximum(Z - hgt.shift, hgt.floor)
            top = float(zz.max()) if zz.count() else hgt.floor * 10
            levels = np.geomspace(hgt.floor, max(top, hgt.floor * 10), 25)
            norm: Any = colors.LogNorm(levels[0], levels[-1])
            filled = ax.contourf(scene.x, scene.y, zz, levels=levels, norm=norm, cmap=_CMAP)
            ax.contour(
                scene.x, scene.y, zz, levels=levels[::2], norm=norm,
                colors=[_LEVEL_LINES[theme]], linewidths=0.45,
            )  # fmt: skip
            cb_label = "f − f*" if hgt.known else "f − min f"
        else:
            locator = ticker.MaxNLocator(24)
            levels = locator.tick_values(float(Z.min()), float(Z.max()))
            filled = ax.contourf(scene.x, scene.y, Z, levels=levels, cmap=_CMAP)
            ax.contour(
                scene.x, scene.y, Z, levels=levels[::2], colors=[_LEVEL_LINES[theme]],
                linewidths=0.45,
            )  # fmt: skip
            cb_label = "f(x, y)"
        if colorbar:
            # an inset follows the axes' aspect-fixed box, so the bar is as tall as the map
            cax = ax.inset_axes((1.035, 0.0, 0.045, 1.0))
            cb = ax.figure.colorbar(filled, cax=cax)
            if hgt.log:
                cb.locator = ticker.LogLocator(numticks=8)
                cb.formatter = ticker.LogFormatterSciNotation()
            else:
                cb.locator = ticker.MaxNLocator(7)
            cb.update_ticks()
            cb.set_label(cb_label)
            cb.outline.set_linewidth(0.5)
        (x0, x1), (y0, y1) = scene.box
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        if _box_aspect_ok(scene.box):
            ax.set_aspect("equal")
        ax.set_xlabel("$x$")
        ax.set_ylabel("$y$", rotation=0, labelpad=8)
        ax.spines["top"].set_visible(True)
        ax.spines["right"].set_visible(True)
        _minima_2d(ax, scene.surface, theme)

        self.lines, self.ends = [], []
        for tr in scene.trails:
            (line,) = ax.plot(
                tr.xy[:, 0], tr.xy[:, 1], color=tr.color, lw=1.7, zorder=5,
                path_effects=_halo(theme, 3.2), animated=animated, label=tr.label,
            )  # fmt: skip
            ax.plot(
                tr.xy[:1, 0], tr.xy[:1, 1], ls="none", marker="o", markersize=6.5,
                markerfacecolor=_HALO[theme], markeredgecolor=tr.color, markeredgewidth=1.6,
                zorder=6,
            )  # fmt: skip
            (end,) = ax.plot(
                tr.xy[-1:, 0], tr.xy[-1:, 1], ls="none", color=tr.color,
                markeredgecolor=_HALO[theme], markeredgewidth=0.9, zorder=7, animated=animated,
                **_end_style(tr, math.inf),
            )  # fmt: skip
            self.lines.append(line)
            self.ends.append(end)
        self.update(math.inf)

    def update(self, t: float) -> list[Any]:
        (x0, x1), (y0, y1) = self.scene.box
        for tr, line, end in zip(self.scene.trails, self.lines, self.ends, strict=True):
            xy = _prefix(tr.steps, tr.xy, t)
            line.set_data(xy[:, 0], xy[:, 1])
            at = xy[-1:]
            if _ended(tr, t):  # mark where a diverged ball was last seen on the map
                inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
                seen = np.flatnonzero(inside)
                at = xy[seen[-1] : seen[-1] + 1] if len(seen) else at
            end.set_data(at[:, 0], at[:, 1])
            style = _end_style(tr, t)
            end.set_marker(style["marker"])
            end.set_markersize(style["markersize"])
        return [*self.lines, *self.ends]


def _minima_2d(ax: Any, surface: Surface, theme: str) -> None:
    edge = "#1f1f1f"
    if len(surface.minima):
        m = surface.minima
        ax.plot(
            m[:, 0], m[:, 1], ls="none", marker="*", markersize=13,
            markerfacecolor=_MIN_FACE[theme], markeredgecolor=edge, markeredgewidth=0.8,
            zorder=6.5, label="global minimum",
        )  # fmt: skip
    if len(surface.local_minima):
        m = surface.local_minima
        ax.plot(
            m[:, 0], m[:, 1], ls="none", marker="^", markersize=7.5,
            markerfacecolor=_LOCAL_FACE[theme], markeredgecolor=edge, markeredgewidth=0.8,
            zorder=6.5, label="local minimum",
        )  # fmt: skip


# 3-D: orthographic camera; directions are in the axes' box coordinates
_ELEV, _AZIM = 32.0, -58.0
_ASPECT = np.array([1.0, 1.0, 0.72])


class _Occlusion:
    """Which points of the 3-D scene the surface hides from an orthographic camera."""

    def __init__(
        self, scene: _Scene, zlim: tuple[float, float], elev: float = _ELEV, azim: float = _AZIM
    ) -> None:
        self.scene, self.zlim, self.elev, self.azim = scene, zlim, elev, azim
        e, a = math.radians(elev), math.radians(azim)
        self.eye = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        (x0, x1), (y0, y1) = scene.box
        self.lo = np.array([x0, y0, zlim[0]])
        self.span = np.array([x1 - x0, y1 - y0, zlim[1] - zlim[0]]) / _ASPECT

    def to_box(self, p: np.ndarray) -> np.ndarray:
        return (p - self.lo) / self.span

    def surface_w(self, uv: np.ndarray) -> np.ndarray:
        """Displayed surface height (box units) above box points uv (..., 2)."""
        xy = self.lo[:2] + uv * self.span[:2]
        with np.errstate(all="ignore"):
            h = self.scene.height(self.scene.surface.value(xy))
        return (np.asarray(h, dtype=float) - self.lo[2]) / self.span[2]

    def hidden(self, p: np.ndarray) -> np.ndarray:
        """(n,) True where the point (n, 3 data coords) is behind or inside the surface."""
        q = self.to_box(p)
        out = np.zeros(len(q), dtype=bool)
        tol = 0.004
        ts = np.linspace(0.02, float(np.linalg.norm(_ASPECT)), 90)
        for a in range(0, len(q), 1500):
            b = q[a : a + 1500]
            with np.errstate(invalid="ignore"):
                inside = self.surface_w(b[:, :2]) > b[:, 2] + tol
            ray = b[:, None, :] + ts[None, :, None] * self.eye  # (m, k, 3)
            in_box = (
                (ray[..., 0] >= 0) & (ray[..., 0] <= _ASPECT[0])
                & (ray[..., 1] >= 0) & (ray[..., 1] <= _ASPECT[1])
            )  # fmt: skip
            with np.errstate(invalid="ignore"):
                above = self.surface_w(ray[..., :2]) > ray[..., 2] + tol
            out[a : a + 1500] = inside | (above & in_box).any(axis=1)
        return out


def _camera(scene: _Scene, zlim: tuple[float, float]) -> _Occlusion:
    """The view that hides the least of the trails (and minima): a valley seen from its side
    hides the balls in it, the same valley seen along its length shows them. Candidates around
    the usual matplotlib view; among views that show as much, the lower (more 3-D) and the one
    closer to the usual azimuth wins (90 % seen counts as all)."""
    probe = []
    for tr in scene.trails:
        with np.errstate(all="ignore"):
            p = np.column_stack([tr.xy, scene.height(tr.loss)])
        p = p[np.isfinite(p).all(axis=1)]
        if len(p):
            probe.append(p[np.linspace(0, len(p) - 1, min(len(p), 120)).astype(int)])
    surface = scene.surface
    if len(surface.minima):
        with np.errstate(all="ignore"):
            probe.append(
                np.column_stack([surface.minima, scene.height(surface.value(surface.minima))])
            )
    best, best_score = _Occlusion(scene, zlim), -math.inf
    if not probe:
        return best
    (x0, x1), (y0, y1) = scene.box
    pts = np.concatenate(probe)
    lo, hi = np.array([x0, y0, zlim[0]]), np.array([x1, y1, zlim[1]])
    pts = pts[((pts >= lo) & (pts <= hi)).all(axis=1)]
    if not len(pts):
        return best
    for elev in (_ELEV, 45.0, 60.0):
        for k in range(12):
            azim = _AZIM + 30.0 * k
            occ = _Occlusion(scene, zlim, elev, azim)
            seen = 1.0 - float(occ.hidden(pts).mean())
            turn = abs((azim - _AZIM + 180) % 360 - 180) / 180
            score = min(seen, 0.9) - 0.03 * (elev - _ELEV) / 15 - 0.01 * turn
            if score > best_score + 1e-9:
                best, best_score = occ, score
    return best


def _densify(steps: np.ndarray, p: np.ndarray, occ: _Occlusion) -> tuple[np.ndarray, np.ndarray]:
    """Points along the straight chords between rows, at most ~1/80 of the box apart."""
    q = occ.to_box(np.where(np.isfinite(p), p, 0.0))
    seg = np.linalg.norm(np.diff(q, axis=0), axis=1) if len(q) > 1 else np.zeros(0)
    k = np.clip(np.ceil(seg * 80), 1, 60).astype(int)
    budget = 6000
    if k.sum() > budget:
        k = np.maximum(1, (k * budget // max(int(k.sum()), 1)))
    s_out, p_out = [steps[:1]], [p[:1]]
    for i, m in enumerate(k):
        f = np.arange(1, m + 1) / m
        s_out.append(steps[i] + f * (steps[i + 1] - steps[i]))
        p_out.append(p[i] + f[:, None] * (p[i + 1] - p[i]))
    return np.concatenate(s_out), np.concatenate(p_out)


class _SurfacePanel(_Panel):
    def __init__(
        self, ax: Any, scene: _Scene, theme: str, animated: bool, zlabel: bool = True
    ) -> None:
        from matplotlib import colors, ticker

        self.ax, self.scene, self.theme = ax, scene, theme
        hgt = scene.height
        n = 90
        x, y, z = scene.surface.grid(n, n)
        H = hgt(np.asarray(z, dtype=float))
        finite = H[np.isfinite(H)]
        zlim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if zlim[1] <= zlim[0]:
            zlim = (zlim[0] - 0.5, zlim[0] + 0.5)
        self.occ = _camera(scene, zlim)
        X, Y = np.meshgrid(x, y, indexing="ij")
        norm = colors.Normalize(*zlim)
        # the floor: contour lines projected under the surface (drawn first, always behind)
        ax.contour(
            X, Y, H, levels=14, zdir="z", offset=zlim[0], cmap=_CMAP, norm=norm,
            linewidths=0.6, alpha=0.7, zorder=0,
        )  # fmt: skip
        ax.plot_surface(
            X, Y, np.where(np.isfinite(H), H, np.nan), cmap=_CMAP, norm=norm, rcount=n,
            ccount=n, linewidth=0.15, edgecolor=(0, 0, 0, 0.10), antialiased=True, alpha=1.0,
            zorder=1, rasterized=True,
        )  # fmt: skip
        (x0, x1), (y0, y1) = scene.box
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_zlim(*zlim)
        ax.set_box_aspect(tuple(_ASPECT), zoom=0.92)
        ax.view_init(elev=self.occ.elev, azim=self.occ.azim)
        ax.set_proj_type("ortho")
        ax.set_xlabel("$x$", labelpad=-2)
        ax.set_ylabel("$y$", labelpad=-2)
        if zlabel:  # in a grid, the panel title says it: a 3-D z label collides with neighbours
            ax.set_zlabel(hgt.label(), labelpad=0)
        if hgt.log:
            ax.zaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"$10^{{{v:g}}}$"))
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_pane_color(_PANE[theme])
            axis.set_major_locator(ticker.MaxNLocator(5, integer=hgt.log and axis is ax.zaxis))
        ax.tick_params(axis="both", which="major", pad=-1, labelsize=7.5)
        ax.tick_params(axis="z", pad=2)

        # minima: stars and triangles, faint where a hill hides them
        for pts, marker, size, face in (
            (scene.surface.minima, "*", 12, _MIN_FACE[theme]),
            (scene.surface.local_minima, "^", 7, _LOCAL_FACE[theme]),
        ):
            if not len(pts):
                continue
            with np.errstate(all="ignore"):
                h = hgt(scene.surface.value(pts))
            p = np.column_stack([pts, h])
            hid = self.occ.hidden(p)
            for mask, alpha in ((~hid, 1.0), (hid, 0.35)):
                if mask.any():
                    ax.plot(
                        p[mask, 0], p[mask, 1], p[mask, 2], ls="none", marker=marker,
                        markersize=size, markerfacecolor=face, markeredgecolor="#1f1f1f",
                        markeredgewidth=0.7, alpha=alpha, zorder=4,
                    )  # fmt: skip

        self.paths = []
        self.front, self.back, self.ends = [], [], []
        for tr in scene.trails:
            with np.errstate(all="ignore"):
                p = np.column_stack([tr.xy, hgt(tr.loss)])
            s, dense = _densify(tr.steps, p, self.occ)
            ok = np.isfinite(dense).all(axis=1)
            lo, hi = self.occ.lo, self.occ.lo + self.occ.span * _ASPECT
            ok &= ((dense >= lo - 1e-9) & (dense <= hi + 1e-9)).all(axis=1)
            hid = np.ones(len(dense), dtype=bool)
            if ok.any():
                hid[ok] = self.occ.hidden(dense[ok])
            self.paths.append((s, dense, ok, hid))
            kw = {"color": tr.color, "zorder": 3, "animated": animated}
            (back,) = ax.plot([], [], [], lw=1.2, ls=(0, (2.5, 1.8)), alpha=0.7, **kw)
            (front,) = ax.plot([], [], [], lw=1.8, path_effects=_halo(theme, 3.2), **kw)
            start = dense[0]
            if ok[0]:
                ax.plot(
                    [start[0]], [start[1]], [start[2]], ls="none", marker="o", markersize=6,
                    markerfacecolor=_HALO[theme], markeredgecolor=tr.color, markeredgewidth=1.5,
                    alpha=0.4 if hid[0] else 1.0, zorder=5,
                )  # fmt: skip
            (end,) = ax.plot(
                [], [], [], ls="none", color=tr.color, markeredgecolor=_HALO[theme],
                markeredgewidth=0.8, zorder=6, animated=animated,
            )  # fmt: skip
            self.front.append(front)
            self.back.append(back)
            self.ends.append(end)
        self.update(math.inf)

    def update(self, t: float) -> list[Any]:
        for tr, (s, dense, ok, hid), front, back, end in zip(
            self.scene.trails, self.paths, self.front, self.back, self.ends, strict=True
        ):
            k = int(np.searchsorted(s, t, side="right"))
            k = max(k, 1)
            p, v, h = dense[:k].copy(), ok[:k], hid[:k]
            vis = v & ~h
            # a hidden stretch borrows one point each side, so dashes meet the solid line
            back_mask = v & (h | np.roll(h, 1) | np.roll(h, -1))
            fp, bp = p.copy(), p.copy()
            fp[~vis] = np.nan
            bp[~back_mask] = np.nan
            front.set_data_3d(fp[:, 0], fp[:, 1], fp[:, 2])
            back.set_data_3d(bp[:, 0], bp[:, 1], bp[:, 2])
            last = np.flatnonzero(v)
            if len(last):
                j = last[-1]
                end.set_data_3d([p[j, 0]], [p[j, 1]], [p[j, 2]])
                style = _end_style(tr, t)
                end.set_marker(style["marker"])
                end.set_markersize(style["markersize"])
                end.set_alpha(0.4 if h[j] else 1.0)
                end.set_visible(True)
            else:
                end.set_visible(False)
        return [*self.back, *self.front, *self.ends]


#: The curve f(x) of a function of x only, per theme.
_CURVE = {"light": "#2a6f97", "dark": "#4fc3f7"}


class _CurvePanel(_Panel):
    """f(x) for a function of x only: the curve itself, every ball's iterates on it (dots
    joined by chords, so a step that jumps over a minimum shows as one), and where each ball
    is. The contour map of f(x) is a row of stripes and its 3-D view the curve dragged along a
    y that means nothing; this is the textbook picture (and the window's main view)."""

    def __init__(self, ax: Any, scene: _Scene, theme: str, animated: bool) -> None:
        from matplotlib.colors import to_rgba

        self.ax, self.scene = ax, scene
        surface = scene.surface
        (x0, x1), _ = scene.box
        xs = np.linspace(x0, x1, 800)
        with np.errstate(all="ignore"):
            fx = np.asarray(surface.value(np.stack([xs, np.zeros_like(xs)], 1)), dtype=float)
        ax.plot(xs, fx, color=_CURVE[theme], lw=2.0, zorder=2)
        finite = fx[np.isfinite(fx)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        pad = 0.08 * ((hi - lo) or 1.0)
        ax.set_xlim(x0, x1)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("$x$")
        ax.set_ylabel("$f(x)$")
        ax.grid(True, lw=0.5)
        edge = "#1f1f1f"
        for pts, vals, marker, size, face in (
            (surface.minima, surface.minima_values, "*", 13, _MIN_FACE[theme]),
            (surface.local_minima, surface.local_minima_values, "^", 7.5, _LOCAL_FACE[theme]),
        ):
            if len(pts):
                ax.plot(
                    pts[:, 0], vals, ls="none", marker=marker, markersize=size,
                    markerfacecolor=face, markeredgecolor=edge, markeredgewidth=0.8, zorder=6.5,
                )  # fmt: skip
        self.fs, self.chords, self.ends = [], [], []
        for tr in scene.trails:
            with np.errstate(all="ignore"):
                f = np.asarray(surface.value(tr.xy), dtype=float)
            (chord,) = ax.plot(
                tr.xy[:, 0],
                f,
                color=to_rgba(tr.color, 0.55),
                lw=0.9,
                marker="o",
                markersize=3.6,
                markerfacecolor=tr.color,
                markeredgewidth=0,
                zorder=4,
                animated=animated,
            )  # fmt: skip  (faint chords, solid dots: the iterates stand out on the curve)
            ax.plot(
                tr.xy[:1, 0], f[:1], ls="none", marker="o", markersize=6.5,
                markerfacecolor=_HALO[theme], markeredgecolor=tr.color, markeredgewidth=1.6,
                zorder=5,
            )  # fmt: skip
            (end,) = ax.plot(
                tr.xy[-1:, 0], f[-1:], ls="none", color=tr.color, markeredgecolor=_HALO[theme],
                markeredgewidth=0.9, zorder=7, animated=animated, **_end_style(tr, math.inf),
            )  # fmt: skip
            self.fs.append(f)
            self.chords.append(chord)
            self.ends.append(end)
        self.update(math.inf)

    def update(self, t: float) -> list[Any]:
        for tr, f, chord, end in zip(
            self.scene.trails, self.fs, self.chords, self.ends, strict=True
        ):
            k = max(int(np.searchsorted(tr.steps, t, side="right")), 1)
            chord.set_data(tr.xy[:k, 0], f[:k])  # iterates only: a chord is a whole step
            end.set_data(tr.xy[k - 1 : k, 0], f[k - 1 : k])
            style = _end_style(tr, t)
            end.set_marker(style["marker"])
            end.set_markersize(style["markersize"])
        return [*self.chords, *self.ends]


class _LossPanel(_Panel):
    def __init__(self, ax: Any, scene: _Scene, theme: str, animated: bool, legend: bool) -> None:
        self.ax, self.scene = ax, scene
        hgt = scene.height
        fstar = float(np.min(scene.surface.minima_values)) if hgt.known else 0.0
        self.fstar = fstar
        ys = []
        for tr in scene.trails:
            y = tr.loss_values - fstar if hgt.known else tr.loss_values.copy()
            if hgt.known:  # at the minimum to machine precision: keep it on a log axis
                y = np.maximum(y, 1e-16 * max(1.0, abs(fstar)))
            ys.append(y)
        allv = np.concatenate(ys) if ys else np.array([1.0])
        allv = allv[np.isfinite(allv)]
        self.log = bool(allv.size) and bool((allv > 0).all())
        self.ys = ys
        starts = np.array([y[0] for y in ys]) if ys else np.array([1.0])
        if allv.size:
            lo, hi = float(allv.min()), float(allv.max())
            cap = float(np.max(np.abs(starts)))
            if self.log:
                hi = min(hi, cap * 1e4) if cap > 0 else hi
                ax.set_yscale("log")
                ax.set_ylim(lo / 2.5, hi * 2.5)
            else:
                hi = min(hi, cap + 4 * (cap - lo)) if cap > lo else hi
                pad = 0.06 * (hi - lo or 1.0)
                ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlim(0, max(scene.total, 1))
        ax.set_xlabel("step")
        ax.set_ylabel(("f − f*" if hgt.known else "f") + (" (log scale)" if self.log else ""))
        ax.grid(True, which="major", lw=0.6)
        if self.log:
            ax.grid(True, which="minor", lw=0.3, alpha=0.5)
        self.lines, self.ends = [], []
        for tr, y in zip(scene.trails, ys, strict=True):
            (line,) = ax.plot(
                tr.loss_steps, y, color=tr.color, lw=1.6, label=tr.label, animated=animated
            )
            (end,) = ax.plot(
                tr.loss_steps[-1:], y[-1:], ls="none", color=tr.color, markeredgecolor=_HALO[theme],
                markeredgewidth=0.8, animated=animated, clip_on=False, **_end_style(tr, math.inf),
            )  # fmt: skip
            self.lines.append(line)
            self.ends.append(end)
        self.cursor = None
        if animated:
            self.cursor = ax.axvline(0, color=_THEME_RC[theme]["axes.edgecolor"], lw=0.8,
                                     alpha=0.6, animated=True)  # fmt: skip
        if legend:
            ax.legend(loc="best")
        self.update(math.inf)

    def update(self, t: float) -> list[Any]:
        for tr, y, line, end in zip(self.scene.trails, self.ys, self.lines, self.ends, strict=True):
            yy = _prefix(tr.loss_steps, y, t)
            ss = _prefix(tr.loss_steps, tr.loss_steps, t)
            line.set_data(ss, yy)
            top = self.ax.get_ylim()[1]  # a diverged run's end sits on the top edge, not off it
            end.set_data(ss[-1:], np.minimum(yy[-1:], top))
            style = _end_style(tr, t)
            end.set_marker(style["marker"])
            end.set_markersize(style["markersize"])
        out = [*self.lines, *self.ends]
        if self.cursor is not None:
            tt = min(t, self.scene.total)
            self.cursor.set_xdata([tt, tt])
            out.append(self.cursor)
        return out


# ------------------------------------------------------------------------------ figures
class _Plot:
    """A built figure with its panels; ``show(t)`` moves every panel to step t."""

    def __init__(
        self,
        scene: _Scene,
        view: str,
        size: tuple[int, int],
        dpi: float | None,
        theme: str,
        animated: bool = False,
    ) -> None:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        w, h = size
        stacked = view == "grid" and h / w > _GRID_STACK_RATIO
        if dpi is None:
            dw, dh = _DESIGN_INCHES["grid-2x2" if stacked else view]
            dpi = min(w / dw, h / dh)
        self.dpi = float(dpi)
        # a hair over the size: Agg truncates the float size, and w/dpi*dpi may be 1e-13 short
        fig = Figure(figsize=((w + 1e-3) / dpi, (h + 1e-3) / dpi), dpi=dpi, layout="constrained")
        self.fig, self.scene, self.animated = fig, scene, animated
        self.panels: list[_Panel] = []
        self.step_text = None
        fig.get_layout_engine().set(w_pad=4 / 72, h_pad=4 / 72, wspace=0.04, hspace=0.02)
        many = len(scene.trails) > 0
        one_d = bool(getattr(scene.surface, "one_d", False))
        if one_d and view in ("contour", "3d"):
            ax = fig.add_subplot()
            self.panels.append(_CurvePanel(ax, scene, theme, animated))
        elif one_d and view == "grid":
            if stacked:
                gs = fig.add_gridspec(2, 1, height_ratios=(1.55, 1.0))
                a1, a3 = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
            else:
                a1, a3 = fig.add_subplot(1, 3, (1, 2)), fig.add_subplot(1, 3, 3)
            self.panels.append(_CurvePanel(a1, scene, theme, animated))
            self.panels.append(_LossPanel(a3, scene, theme, animated, legend=False))
            a1.set_title("f(x) and each ball's iterates", loc="left")
            a3.set_title("loss", loc="left")
        elif view == "contour":
            ax = fig.add_subplot()
            self.panels.append(_ContourPanel(ax, scene, theme, True, animated))
        elif view == "3d":
            ax = fig.add_subplot(projection="3d", computed_zorder=False)
            self.panels.append(_SurfacePanel(ax, scene, theme, animated))
        elif view == "loss":
            ax = fig.add_subplot()
            self.panels.append(_LossPanel(ax, scene, theme, animated, legend=many))
        else:
            if stacked:
                gs = fig.add_gridspec(2, 2, height_ratios=(1.55, 1.0))
                a1 = fig.add_subplot(gs[0, 0])
                a2 = fig.add_subplot(gs[0, 1], projection="3d", computed_zorder=False)
                a3 = fig.add_subplot(gs[1, :])
            else:
                a1 = fig.add_subplot(1, 3, 1)
                a2 = fig.add_subplot(1, 3, 2, projection="3d", computed_zorder=False)
                a3 = fig.add_subplot(1, 3, 3)
            self.panels.append(_ContourPanel(a1, scene, theme, True, animated))
            self.panels.append(_SurfacePanel(a2, scene, theme, animated, zlabel=False))
            self.panels.append(_LossPanel(a3, scene, theme, animated, legend=False))
            a1.set_title("contours", loc="left")
            a2.set_title(f"surface, height {scene.height.label()}", loc="left")
            a3.set_title("loss", loc="left")
        if view != "loss" and many:
            handles = [
                Line2D([], [], color=tr.color, lw=2.0, marker="o", markersize=5,
                       markeredgecolor=_HALO[theme], label=tr.label)
                for tr in scene.trails
            ]  # fmt: skip
            ncol = min(len(handles), 3 if view == "grid" else 2)
            fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)
        if scene.title:
            fig.suptitle(scene.title)
        if animated:
            self.step_text = fig.text(
                0.995, 0.995, "", ha="right", va="top", fontsize=8.5, animated=True,
                family="monospace", alpha=0.85,
            )  # fmt: skip

    def show(self, t: float) -> list[Any]:
        artists: list[Any] = []
        for p in self.panels:
            artists += p.update(t)
        if self.step_text is not None:
            total = self.scene.total
            self.step_text.set_text(f"step {min(int(t), total):>{len(str(total))}d} / {total}")
            artists.append(self.step_text)
        return artists


def _rc(theme: str) -> Any:
    import matplotlib

    return matplotlib.rc_context({**_COMMON_RC, **_THEME_RC[theme]})


def _grid_points(view: str, size: tuple[int, int]) -> int:
    """Surface samples per side for the contours: finer for bigger pictures, never silly."""
    return int(np.clip(max(size) // (3 if view == "grid" else 2), 160, 500))


def render_figure(
    sim: Simulation,
    scenario: Scenario | None = None,
    *,
    view: str = "grid",
    size: tuple[int, int] | None = None,
    dpi: float | None = None,
    theme: str = "light",
    title: str | None = None,
) -> Figure:
    """A matplotlib Figure of a finished simulation (no canvas attached: save it with
    :func:`write_figure`, or draw it under your own ``rc_context`` of the same theme)."""
    size = _checked(view, theme, size)
    with _LOCK, _rc(theme):
        return _plot(sim, scenario, view, size, dpi, theme, title).fig


def _checked(
    view: str, theme: str, size: tuple[int, int] | None, animated: bool = False
) -> tuple[int, int]:
    """The size to draw at, once view and theme are known good (before anything is drawn)."""
    _check_view(view)
    _check_theme(theme)
    size = default_size(view, animated=animated) if size is None else size
    check_size(*size)
    return size


def _plot(
    sim: Simulation,
    scenario: Scenario | None,
    view: str,
    size: tuple[int, int],
    dpi: float | None,
    theme: str,
    title: str | None,
    animated: bool = False,
) -> _Plot:
    """The scene of a finished simulation, laid out; call under ``_LOCK`` and ``_rc(theme)``."""
    scene = _scene(sim, scenario, title, _grid_points(view, size))
    return _Plot(scene, view, size, dpi, theme, animated=animated)


def write_figure(
    path: str | os.PathLike[str],
    sim: Simulation,
    scenario: Scenario | None = None,
    *,
    view: str = "grid",
    size: tuple[int, int] | None = None,
    dpi: float | None = None,
    theme: str = "light",
    title: str | None = None,
    fmt: str | None = None,
) -> tuple[int, int]:
    """Write a PNG, SVG or PDF of ``sim`` to ``path`` atomically; returns the size in pixels
    (for SVG/PDF the page is that size at the figure's dpi)."""
    fmt = format_for(path) if fmt is None else fmt
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"{fmt} is an animation format; use write_animation")
    size = _checked(view, theme, size)
    with _LOCK, _rc(theme):
        plot = _plot(sim, scenario, view, size, dpi, theme, title)
        meta = _metadata(fmt, plot.scene.title)
        with atomic_open(path, "wb") as f:
            plot.fig.savefig(f, format=fmt, dpi=plot.dpi, metadata=meta)
    return size


def _metadata(fmt: str, title: str) -> dict[str, Any]:
    from gdsim import __version__

    software = f"gdsim {__version__}"
    if fmt == "png":
        return {"Software": software, "Title": title}
    if fmt == "svg":  # no date: the same scenario gives the same bytes
        return {"Creator": software, "Title": title, "Date": None}
    return {"Creator": software, "Title": title, "CreationDate": None}


# ------------------------------------------------------------------------------ animations
def _frames(plot: _Plot, count: int) -> Iterator[np.ndarray]:
    """RGB frames (h, w, 3) uint8: the static figure drawn once, the moving parts blitted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(plot.fig)
    canvas.draw()  # layout, surface, contours, legend: everything not animated
    background = canvas.copy_from_bbox(plot.fig.bbox)
    total = plot.scene.total
    for k in range(count):
        t = total * k / (count - 1)
        canvas.restore_region(background)
        for artist in plot.show(t):
            plot.fig.draw_artist(artist)
        yield np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_animation(
    path: str | os.PathLike[str],
    sim: Simulation,
    scenario: Scenario | None = None,
    *,
    view: str = "grid",
    size: tuple[int, int] | None = None,
    dpi: float | None = None,
    theme: str = "light",
    title: str | None = None,
    fps: int = 25,
    duration: float = 4.0,
    progress: Callable[[int, int], None] | None = None,
    fmt: str | None = None,
) -> int:
    """Write a GIF or MP4 of the runs replaying: balls rolling, trails growing, loss advancing.

    ``fps * duration`` frames sample the history evenly (between two steps a ball is placed
    by linear interpolation, so a short run still moves smoothly). ``progress(done, total)`` is
    called after each frame; an exception it raises (a cancel button) or a KeyboardInterrupt
    stops the work and leaves no file. Returns the number of frames rendered. A GIF merges
    identical consecutive frames (one longer frame, same timing); an MP4 keeps every frame.
    """
    fmt = format_for(path) if fmt is None else fmt
    if fmt not in ANIMATION_FORMATS:
        raise ValueError(f"{fmt} is not an animation format; use .gif or .mp4")
    size = _checked(view, theme, size, animated=True)
    if not (isinstance(fps, int) and 1 <= fps <= 60):
        raise ValueError(f"fps must be an integer from 1 to 60, got {fps!r}")
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    count = round(fps * duration)
    check_animation(fmt, size, count)
    with _LOCK, _rc(theme):
        plot = _plot(sim, scenario, view, size, dpi, theme, title, animated=True)
        scene = plot.scene

        def frames() -> Iterator[np.ndarray]:
            for k, frame in enumerate(_frames(plot, count)):
                yield frame
                if progress is not None:
                    progress(k + 1, count)

        if fmt == "gif":
            fixed = [tr.color for tr in scene.trails] + [_HALO[theme], _MIN_FACE[theme]]
            _write_gif(path, frames(), fps, fixed)
        else:
            _write_mp4(path, frames(), fps)
    return count


def write_frames(
    path: str | os.PathLike[str],
    frames: Sequence[np.ndarray],
    fps: int,
    *,
    colors: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write ready-made RGB frames (h, w, 3) uint8 as a GIF or MP4, atomically.

    For a recording of what the window showed. ``colors`` get palette entries of their own in
    a GIF (the runs' colours). ``progress(done, total)`` is called after each frame; an
    exception it raises stops the work and leaves no file. Returns the frames written.
    """
    fmt = format_for(path)
    if fmt not in ANIMATION_FORMATS:
        raise ValueError(f"{fmt} is not an animation format; use .gif or .mp4")
    if not frames:
        raise ValueError("no frames to write")
    if not (isinstance(fps, int) and 1 <= fps <= 60):
        raise ValueError(f"fps must be an integer from 1 to 60, got {fps!r}")
    h, w = frames[0].shape[:2]
    check_animation(fmt, (w, h), len(frames))

    def counted() -> Iterator[np.ndarray]:
        for k, frame in enumerate(frames):
            yield np.ascontiguousarray(frame[:h, :w, :3], dtype=np.uint8)
            if progress is not None:
                progress(k + 1, len(frames))

    if fmt == "gif":
        _write_gif(path, counted(), fps, list(colors))
    else:
        _write_mp4(path, counted(), fps)
    return len(frames)


def _write_gif(
    path: str | os.PathLike[str], frames: Iterator[np.ndarray], fps: int, fixed: Sequence[str]
) -> None:
    """Pillow GIF with one palette for every frame and no dithering, so the background stays
    still instead of shimmering. The palette is the first frame's colours (the surface is most
    of every frame) plus ``fixed`` colours given their own entries (the runs' colours, which
    are only specks in the first frame)."""
    from matplotlib.colors import to_rgb
    from PIL import Image

    first = next(frames)
    extra = [round(255 * c) for name in dict.fromkeys(fixed) for c in to_rgb(name)][: 3 * 64]
    n = 256 - len(extra) // 3
    base = Image.fromarray(first).quantize(colors=n, method=Image.Quantize.MEDIANCUT)
    palette = (base.getpalette() or [])[: 3 * n]
    palette += [0] * (3 * n - len(palette)) + extra
    palette_image = Image.new("P", (1, 1))
    palette_image.putpalette(palette)

    def paletted(arr: np.ndarray) -> Image.Image:
        return Image.fromarray(arr).quantize(palette=palette_image, dither=Image.Dither.NONE)

    head = paletted(first)
    rest = (paletted(a) for a in frames)
    with atomic_open(path, "wb") as f:
        head.save(
            f, format="GIF", save_all=True, append_images=rest, duration=1000.0 / fps, loop=0,
            optimize=False, disposal=1,
        )  # fmt: skip


def _write_mp4(path: str | os.PathLike[str], frames: Iterator[np.ndarray], fps: int) -> None:
    """H.264 through imageio's ffmpeg plugin (imageio-ffmpeg's bundled binary).

    ffmpeg needs a file name and a seekable file (the index goes at the start, for players and
    browsers), so it writes a scratch file in a hidden folder next to the target, which is then
    copied in atomically; the scratch folder goes whatever happens. yuv420p (what every player
    plays) needs even sides: an odd side is padded by repeating its last pixel row/column.
    """
    import imageio.v2 as imageio

    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise ValueError(
            "MP4 needs ffmpeg, which is not installed here: install ffmpeg"
            " (e.g. apt-get install ffmpeg) or write a .gif"
        ) from None
    target = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(target)
    scratch = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        movie = os.path.join(scratch, "movie.mp4")
        writer = imageio.get_writer(
            movie, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=8,
            pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart"],
        )  # fmt: skip
        try:
            for frame in frames:
                h, w = frame.shape[:2]
                if h % 2 or w % 2:
                    frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                writer.append_data(frame)
        finally:
            writer.close()
        with open(movie, "rb") as src, atomic_open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
