"""Colour maps offered for surfaces, shared by the 3-D and the 2-D view.

Only perceptually uniform maps that pyqtgraph ships as data files are offered, so the app works
without matplotlib or colorcet, and a frozen build only has to carry pyqtgraph's own files.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

#: Names offered in the UI, first is the default. "turbo" is not perceptually uniform but it is
#: the map people know from the literature for showing many level sets at once.
NAMES: tuple[str, ...] = ("viridis", "plasma", "inferno", "magma", "cividis", "turbo")
DEFAULT = NAMES[0]


def names() -> list[str]:
    """The colour-map names the views accept, in the order a menu should list them."""
    return list(NAMES)


def get(name: str) -> pg.ColorMap:
    """The pyqtgraph ColorMap called `name`; ValueError names the choices if it is unknown."""
    if name not in NAMES:
        raise ValueError(f"Unknown colour map {name!r}; choose one of: {', '.join(NAMES)}")
    cmap = pg.colormap.get(name)
    if cmap is None:  # pragma: no cover - pyqtgraph ships all of NAMES
        raise ValueError(f"pyqtgraph has no colour map {name!r}")
    return cmap


def lookup_table(name: str, n: int = 256) -> np.ndarray:
    """An (n, 4) uint8 RGBA table, as ImageItem.setLookupTable wants it."""
    return get(name).getLookupTable(0.0, 1.0, n, alpha=True, mode="byte")


def map_unit(name: str, values: np.ndarray) -> np.ndarray:
    """Colours for values in [0, 1] (clipped) as float RGBA with shape values.shape + (4,).

    Float RGBA in [0, 1] is what the OpenGL items take as per-vertex colours.
    """
    t = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0), 0.0, 1.0)
    table = get(name).getLookupTable(0.0, 1.0, 512, alpha=True, mode="float")
    idx = np.rint(t * (len(table) - 1)).astype(np.intp)
    return np.asarray(table, dtype=np.float32)[idx]


#: Background of the plots: dark, so colour maps and run colours both stand out.
BACKGROUND = "#16181d"
#: Arrow overlays shared by the 2-D and 3-D views; the gradient arrow points downhill (-grad f).
OVERLAY_KINDS: tuple[str, ...] = ("gradient", "velocity", "step")
OVERLAY_COLORS: dict[str, str] = {"gradient": "#ffffff", "velocity": "#ffb000", "step": "#ff4fd8"}
