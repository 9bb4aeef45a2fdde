"""A sweep's outcome map, as data (CSV) or as a picture (PNG, SVG, PDF).

CSV, one row per cell, y outer and x inner (the order of the (ny, nx) arrays)::

    x,y,final_loss,steps_to_tol,diverged,diverged_at

Floats are Python's ``repr`` (they read back as the same bits); ``steps_to_tol`` is ``inf`` where
the tolerance was never met; ``diverged`` is ``true``/``false``; ``diverged_at`` is -1 where the
cell did not diverge.

The picture is a heat map of one metric over the two hyperparameters, drawn with matplotlib on
a bare ``Figure`` with the Agg, SVG or PDF canvas (never pyplot's global state, never Qt), so it
works the same on a desktop and on a server with no display. What it shows:

* the metric in colour with a colour bar naming it (final loss on a log scale when it spans
  orders of magnitude, as f − f* when the minimum is known);
* diverged cells in one colour that the colour map never uses, and, for ``steps_to_tol``, cells
  that never met the tolerance in grey, each with a legend entry and its count;
* a log axis wherever the swept values are geometric;
* a cross at the run's own setting, so "this is where your run sits" is part of the picture.

Files are written atomically (:mod:`gdsim.export.atomic`): an error leaves no partial file.
"""

from __future__ import annotations

import csv
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from gdsim.export.atomic import atomic_open

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from gdsim.engine.sweep import Axis, SweepResult

__all__ = [
    "CSV_COLUMNS",
    "DIVERGED_COLOR",
    "FORMATS",
    "IMAGE_FORMATS",
    "NOT_REACHED_COLOR",
    "STABLE_COLOR",
    "figure",
    "format_for",
    "read_csv",
    "write",
    "write_csv",
    "write_image",
]

CSV_COLUMNS = ("x", "y", "final_loss", "steps_to_tol", "diverged", "diverged_at")
IMAGE_FORMATS = ("png", "svg", "pdf")
FORMATS = ("csv", *IMAGE_FORMATS)
#: Diverged cells: a red that viridis (the colour map) never reaches.
DIVERGED_COLOR = "#d62728"
#: Cells that ran all their steps without meeting the tolerance (steps_to_tol map).
NOT_REACHED_COLOR = "#b0b0b0"
#: Cells that did not diverge, on the "diverged" map.
STABLE_COLOR = "#9ecae1"
CMAP = "viridis"
FIGSIZE = (7.0, 5.6)  # inches
DPI = 150
#: Above this many cells the colour cells of SVG/PDF maps are embedded as an image.
RASTER_CELLS = 2500


def format_for(path: str | os.PathLike[str]) -> str:
    """The output format from a file name's extension; ValueError listing the valid ones."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in FORMATS:
        shown = f"'.{ext}'" if ext else "no extension"
        raise ValueError(
            f"unknown format ({shown}); use one of {', '.join('.' + f for f in FORMATS)}"
        )
    return ext


def write(path: str | os.PathLike[str], result: SweepResult, metric: str, **kw: Any) -> str:
    """Write CSV or an image, by the extension of ``path``; returns the format."""
    fmt = format_for(path)
    if fmt == "csv":
        write_csv(path, result)
    else:
        write_image(path, result, metric, **kw)
    return fmt


# ------------------------------------------------------------------------------ CSV
def _flag(b: bool) -> str:
    return "true" if b else "false"


def write_csv(path: str | os.PathLike[str], result: SweepResult) -> int:
    """Every cell as a row (see the module docstring); returns the number of rows."""
    ny, nx = result.shape
    xs = np.tile(result.x.values, ny).tolist()
    ys = np.repeat(result.y.values, nx).tolist()
    columns = (
        map(repr, xs),
        map(repr, ys),
        map(repr, result.final_loss.reshape(-1).tolist()),
        map(repr, result.steps_to_tol.reshape(-1).tolist()),
        map(_flag, result.diverged.reshape(-1).tolist()),
        map(str, result.diverged_at.reshape(-1).tolist()),
    )
    with atomic_open(path, "w", newline="") as handle:
        handle.write(",".join(CSV_COLUMNS) + "\n")
        handle.writelines(",".join(row) + "\n" for row in zip(*columns, strict=True))
    return nx * ny


def read_csv(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """A sweep CSV back as flat columns: floats, ``diverged`` bool, ``diverged_at`` int."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if tuple(header) != CSV_COLUMNS:
            raise ValueError(f"{os.fspath(path)}: not a sweep CSV (header {header!r})")
        rows = list(reader)
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(CSV_COLUMNS)
    out: dict[str, np.ndarray] = {}
    for name, values in zip(CSV_COLUMNS, cols, strict=True):
        if name == "diverged":
            out[name] = np.array([v == "true" for v in values], dtype=bool)
        elif name == "diverged_at":
            out[name] = np.array([int(v) for v in values], dtype=np.int64)
        else:
            out[name] = np.array([float(v) for v in values], dtype=np.float64)
    return out


# ------------------------------------------------------------------------------ picture
def _edges(axis: Axis) -> np.ndarray:
    """Cell edges around the values: midpoints (geometric ones on a log axis)."""
    v = axis.values
    if axis.log:
        logs = np.log10(v)
        if v.size == 1:
            return 10.0 ** np.array([logs[0] - 0.5, logs[0] + 0.5])
        mid = (logs[1:] + logs[:-1]) / 2
        first, last = 2 * logs[0] - mid[0], 2 * logs[-1] - mid[-1]
        return 10.0 ** np.concatenate([[first], mid, [last]])
    if v.size == 1:
        half = 0.5 * max(abs(v[0]), 1.0)
        return np.array([v[0] - half, v[0] + half])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _label(axis: Axis) -> str:
    return f"{axis.name} (log scale)" if axis.log else axis.name


def _metric_view(result: SweepResult, metric: str) -> tuple[np.ndarray, np.ndarray, str, Any]:
    """(values to colour, mask of cells coloured, colour bar label, norm) for a metric."""
    from matplotlib.colors import LogNorm, Normalize

    stable = ~result.diverged
    if metric == "final_loss":
        f_star = result.f_star
        v = result.final_loss - f_star if f_star is not None else result.final_loss
        label = f"final loss f − f* (f* = {f_star:g})" if f_star is not None else "final loss f"
        shown = stable & np.isfinite(v)
        vals = v[shown]
        if vals.size and vals.min() >= 0 and vals.max() > 0:
            positive = vals[vals > 0]
            low, high = float(positive.min()), float(vals.max())
            if high / low > 100:
                low = max(low, high * 1e-300)
                return v, shown, label + ", log scale", LogNorm(low, high, clip=True)
        low, high = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
        return v, shown, label, Normalize(low, high if high > low else low + 1)
    if metric == "steps_to_tol":
        v = result.steps_to_tol
        what = "f − f*" if result.tol_kind == "loss" else "|∇f|"
        label = f"steps until {what} < {result.tol:g}"
        shown = stable & np.isfinite(v)
        vals = v[shown]
        low, high = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
        return v, shown, label, Normalize(low, high if high > low else low + 1)
    if metric == "diverged":
        return result.diverged.astype(float), np.zeros(result.shape, bool), "diverged", None
    raise ValueError(f"unknown metric {metric!r}; valid: final_loss, steps_to_tol, diverged")


def figure(
    result: SweepResult,
    metric: str,
    *,
    title: str | None = None,
    run_label: str = "this run",
    figsize: tuple[float, float] = FIGSIZE,
    dpi: int = DPI,
) -> Figure:
    """The outcome map of ``metric`` as a matplotlib Figure (no canvas state, no pyplot)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    values, shown, label, norm = _metric_view(result, metric)
    # A big grid is drawn as one image inside the vector file: one path per cell would make a
    # 10,000-cell SVG megabytes long and slow to open; axes, text and the cross stay vector.
    raster = result.diverged.size > RASTER_CELLS
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    xe, ye = _edges(result.x), _edges(result.y)
    handles: list[Any] = []

    def solid(mask: np.ndarray, color: str) -> None:
        ax.pcolormesh(
            xe, ye, np.ma.masked_where(~mask, np.zeros(mask.shape)),
            cmap=ListedColormap([color]), vmin=0, vmax=1, shading="flat", rasterized=raster,
        )  # fmt: skip

    if metric == "diverged":
        stable = ~result.diverged
        solid(stable, STABLE_COLOR)
        handles.append(Patch(color=STABLE_COLOR, label=f"did not diverge ({int(stable.sum())})"))
    else:
        mesh = ax.pcolormesh(
            xe, ye, np.ma.masked_where(~shown, values), cmap=CMAP, norm=norm, shading="flat",
            rasterized=raster,
        )  # fmt: skip
        fig.colorbar(mesh, ax=ax, label=label)
        if metric == "steps_to_tol":
            missed = ~result.diverged & ~np.isfinite(result.steps_to_tol)
            if missed.any():
                solid(missed, NOT_REACHED_COLOR)
                handles.append(
                    Patch(color=NOT_REACHED_COLOR, label=f"never reached tol ({int(missed.sum())})")
                )
    n_div = int(result.diverged.sum())
    if n_div:
        solid(result.diverged, DIVERGED_COLOR)
    handles.append(Patch(color=DIVERGED_COLOR, label=f"diverged ({n_div})"))

    bx, by = result.base_value(result.x), result.base_value(result.y)
    if bx is not None and by is not None and math.isfinite(bx) and math.isfinite(by):
        inside = xe[0] <= bx <= xe[-1] and ye[0] <= by <= ye[-1]
        ax.plot([bx], [by], marker="x", ms=13, mew=4.5, color="black", ls="none", zorder=5)
        ax.plot([bx], [by], marker="x", ms=11, mew=2.0, color="white", ls="none", zorder=6)
        where = f"{run_label}: {result.x.name}={bx:g}, {result.y.name}={by:g}"
        handles.append(
            Line2D([], [], marker="x", ms=9, mew=2.0, color="black", ls="none",
                   label=where if inside else where + " (off the map)")
        )  # fmt: skip

    if result.x.log:
        ax.set_xscale("log")
    if result.y.log:
        ax.set_yscale("log")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel(_label(result.x))
    ax.set_ylabel(_label(result.y))
    if title:
        ax.set_title(title, fontsize="medium")
    ax.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
        fontsize="small", frameon=False,
    )  # fmt: skip
    return fig


def _canvas(fig: Figure, fmt: str) -> Any:
    if fmt == "png":
        from matplotlib.backends.backend_agg import FigureCanvasAgg as Canvas
    elif fmt == "svg":
        from matplotlib.backends.backend_svg import FigureCanvasSVG as Canvas
    else:
        from matplotlib.backends.backend_pdf import FigureCanvasPdf as Canvas
    return Canvas(fig)


def write_image(path: str | os.PathLike[str], result: SweepResult, metric: str, **kw: Any) -> None:
    """Draw the map (see :func:`figure` for ``kw``) and write it as PNG, SVG or PDF."""
    fmt = format_for(path)
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"not an image format: .{fmt}; use .png, .svg or .pdf")
    fig = figure(result, metric, **kw)
    canvas = _canvas(fig, fmt)
    from matplotlib import rc_context

    # No dates in vector files and fixed SVG ids: the same sweep gives the same bytes.
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None
    with rc_context({"svg.hashsalt": "gdsim"}), atomic_open(path, "wb") as handle:
        canvas.print_figure(handle, format=fmt, dpi=fig.dpi, metadata=metadata)
