"""Loss surfaces: value, gradient and Hessian over (n, 2) points, plus what each one teaches.

Every built-in surface is defined by its formula text in the formula grammar of
`gdsim.engine.expression`, so value, gradient and Hessian come from one mechanism (symbolic
differentiation compiled to NumPy) and the formula shown to the user is the one computed.
Two surfaces have a cone tip where the symbolic derivatives are 0/0 and get closed forms for
gradient and Hessian instead (`ackley` and `plateau`, see `_radial_kink`); tests check both
against the formula away from the tip and against central differences everywhere.

The catalogue follows /work/shared/reference/surfaces.md (ids exactly as there). Minima are
given to full float precision (found by Newton's method on the gradient where the reference
gives only a few digits, or in closed form where one exists), so a view or a test can check
"converged" against them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from gdsim.engine import nn as _nn
from gdsim.engine.expression import FormulaError, compile_formula

__all__ = [
    "LOG_SCALE_RATIO",
    "MIN_FINITE_FRACTION",
    "Box",
    "Surface",
    "SurfaceFunctions",
    "SurfaceParam",
    "formula_is_one_d",
    "from_formula",
    "get",
    "names",
    "param_specs",
    "wants_log_scale",
]

Box = tuple[tuple[float, float], tuple[float, float]]

LOG_SCALE_RATIO = 100.0
"""A surface wants a log colour/z scale when max(f) - min(f) exceeds this many times the median
of f - min(f) over its box: then a linear scale spends the colours on the walls and shows the
interesting floor as one flat colour."""

MIN_FINITE_FRACTION = 0.05
"""from_formula refuses a formula that is finite at fewer than this fraction of its box."""


class SurfaceFunctions(NamedTuple):
    """The three vectorised callables behind a Surface (points (..., 2) in, arrays out)."""

    value: Callable[[np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray], np.ndarray]
    hessian: Callable[[np.ndarray], np.ndarray]


class SurfaceParam(NamedTuple):
    """An adjustable parameter of a built-in surface (for get(name, **params) and sliders)."""

    name: str
    default: float
    low: float
    high: float
    log: bool  # best shown on a log slider
    doc: str


@dataclass(frozen=True, eq=False)
class Surface:
    """A loss surface f(x, y) with what the views and the simulation need to know about it.

    Arrays are float64 and read-only; equality is identity (two surfaces with the same formula
    are still two objects, and comparing arrays field by field would be ambiguous).
    `local_minima` are minima that are not global, so views can mark them differently.
    `one_d` is True when f does not depend on y (a function f(x) drawn as a curve): its
    gradient's y part is exactly 0, so a ball started on y = 0 stays there. Left out, it is
    read off the formula.
    `data` is set for the neural-network surfaces only: f is then the exact mean training loss
    of a two-parameter model over these points, and any subset of them (a mini-batch) has its
    own loss surface (`batch_value`, `batch_gradient`).
    """

    name: str
    title: str
    story: str
    formula: str
    box: Box
    minima: np.ndarray
    minima_values: np.ndarray
    starts: np.ndarray
    log_scale: bool
    params: dict = field(default_factory=dict)
    local_minima: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    local_minima_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    functions: SurfaceFunctions = field(kw_only=True, repr=False)
    one_d: bool | None = field(default=None, kw_only=True)
    data: _nn.Dataset | None = field(default=None, kw_only=True, repr=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        if self.one_d is None:
            # an NN surface's formula is a description, not our grammar: no parse needed
            put(self, "one_d", self.data is None and formula_is_one_d(self.formula))
        put(self, "box", _check_box(self.box))
        for points, values in (
            ("minima", "minima_values"),
            ("local_minima", "local_minima_values"),
        ):
            p = _frozen(_as_xy(getattr(self, points), points))
            v = _frozen(np.asarray(getattr(self, values), dtype=np.float64).reshape(-1))
            if len(v) != len(p):
                raise ValueError(f"{values} has {len(v)} entries for {len(p)} {points}")
            put(self, points, p)
            put(self, values, v)
        put(self, "starts", _frozen(_as_xy(self.starts, "starts")))
        put(self, "params", dict(self.params))
        put(self, "log_scale", bool(self.log_scale))

    def value(self, xy: np.ndarray) -> np.ndarray:
        """f at points (..., 2) -> (...)."""
        return self.functions.value(xy)

    def gradient(self, xy: np.ndarray) -> np.ndarray:
        """grad f at points (..., 2) -> (..., 2)."""
        return self.functions.gradient(xy)

    def hessian(self, xy: np.ndarray) -> np.ndarray:
        """Hessian of f at points (..., 2) -> (..., 2, 2), symmetric."""
        return self.functions.hessian(xy)

    def batch_value(self, xy: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The loss of the mini-batch ``idx`` (data indices) at points (..., 2).

        ValueError for a surface without data: a formula has no points to sample.
        """
        return self._data().value(xy, idx)

    def batch_gradient(self, xy: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The gradient of the mini-batch ``idx``'s loss at points (..., 2) -> (..., 2)."""
        return self._data().gradient(xy, idx)

    # Pickling: the engine may run in another process, so a Surface crosses a pipe. Its
    # callables are compiled code and do not pickle, but every Surface the app makes is built
    # from a recipe (its data set, or its formula text, with the catalogue's closed form where
    # it has one), so it pickles as its fields plus that recipe and is rebuilt on the other side.
    def __reduce__(self) -> tuple[object, ...]:
        fields = {
            "name": self.name,
            "title": self.title,
            "story": self.story,
            "formula": self.formula,
            "box": self.box,
            "minima": self.minima,
            "minima_values": self.minima_values,
            "starts": self.starts,
            "log_scale": self.log_scale,
            "params": dict(self.params),
            "local_minima": self.local_minima,
            "local_minima_values": self.local_minima_values,
            "one_d": self.one_d,
            "data": self.data,
        }
        return (_restore_surface, (fields, _recipe(self)))

    def __copy__(self) -> Surface:
        return self  # immutable: a copy is the same surface

    def __deepcopy__(self, memo: dict) -> Surface:
        return self  # immutable, and deep-copying a Simulation must not recompile its surface

    def _data(self) -> _nn.Dataset:
        if self.data is None:
            raise ValueError(f"surface {self.name!r} has no data set, so it has no mini-batches")
        return self.data

    def grid(
        self, nx: int, ny: int, box: Box | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample f on a regular grid: x (nx,), y (ny,), z (nx, ny) with z[i, j] = f(x[i], y[j]).

        The [i, j] = (x[i], y[j]) order is what pyqtgraph's surface and image items expect.
        """
        for label, count in (("nx", nx), ("ny", ny)):
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 2:
                raise ValueError(f"{label} must be an integer >= 2, got {count!r}")
        (x0, x1), (y0, y1) = self.box if box is None else _check_box(box)
        x = np.linspace(x0, x1, int(nx))
        y = np.linspace(y0, y1, int(ny))
        xx, yy = np.meshgrid(x, y, indexing="ij")
        return x, y, self.value(np.stack([xx, yy], axis=-1))


# ----------------------------------------------------------------------------------------------
# Pickling by recipe


def _recipe(surface: Surface) -> tuple[str, ...]:
    """How `surface`'s functions were built, checked against the functions it really has.

    TypeError for a surface built around other callables: pickling it could only rebuild
    something else, silently.
    """
    data = surface.data
    if data is not None and surface.functions == _data_functions(data):
        return ("data",)
    closed = _closed_form_name(surface.name, surface.formula)
    if closed and surface.functions == _functions(surface.formula, closed):
        return ("formula", surface.formula, closed)
    try:
        plain = _functions(surface.formula, "")
    except FormulaError:
        plain = None
    if surface.functions == plain:
        return ("formula", surface.formula, "")
    raise TypeError(
        f"surface {surface.name!r} cannot be pickled: its functions are not built from its "
        "formula or data set"
    )


def _restore_surface(fields: dict, recipe: tuple[str, ...]) -> Surface:
    if recipe[0] == "data":
        functions = _data_functions(fields["data"])
    else:
        functions = _functions(recipe[1], recipe[2])
    return Surface(**fields, functions=functions)


def _data_functions(data: _nn.Dataset) -> SurfaceFunctions:
    return SurfaceFunctions(data.value, data.gradient, data.hessian)


def _closed_form_name(name: str, formula: str) -> str:
    e = _CATALOGUE.get(name)
    return name if e is not None and e.closed_form is not None and e.formula == formula else ""


@functools.cache
def _functions(formula: str, closed: str) -> SurfaceFunctions:
    """The one set of callables for a formula (and closed form), so a recipe can be checked.

    Unbounded on purpose: a cache that forgot a formula would make its live surfaces
    unpicklable (their callables would no longer be the recipe's); each entry is one compiled
    formula, and a session types few.
    """
    if closed:
        closed_form = _CATALOGUE[closed].closed_form
        assert closed_form is not None
        return closed_form(formula)
    c = compile_formula(formula)
    return SurfaceFunctions(c.value, c.gradient, c.hessian)


# ----------------------------------------------------------------------------------------------
# Helpers


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)  # a private copy, so freezing it cannot affect the caller
    a.setflags(write=False)
    return a


def _as_xy(points: object, label: str) -> np.ndarray:
    a = np.asarray(points, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 2))
    a = a.reshape(-1, 2) if a.ndim == 1 and a.shape[0] == 2 else a
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{label} must have shape (k, 2), got {np.shape(points)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{label} must be finite, got {a.tolist()}")
    return a


def _check_box(box: object) -> Box:
    try:
        (x0, x1), (y0, y1) = box  # type: ignore[misc]
        x0, x1, y0, y1 = (float(v) for v in (x0, x1, y0, y1))
    except (TypeError, ValueError):
        raise ValueError(f"box must be ((xmin, xmax), (ymin, ymax)), got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)) or not (x0 < x1 and y0 < y1):
        raise ValueError(
            f"box must be ((xmin, xmax), (ymin, ymax)) with finite xmin < xmax and "
            f"ymin < ymax, got {box!r}"
        )
    return ((x0, x1), (y0, y1))


def wants_log_scale(z: np.ndarray) -> bool:
    """True when sampled values z have a range too large for a linear colour scale.

    The rule (see LOG_SCALE_RATIO) only makes sense for non-negative f - min f, which is what
    a view would take the log of; non-finite samples are ignored.
    """
    z = np.asarray(z, dtype=np.float64)
    z = z[np.isfinite(z)]
    if z.size == 0:
        return False
    r = z - z.min()
    median = float(np.median(r))
    return bool(r.max() > LOG_SCALE_RATIO * median) if median > 0 else False


def formula_is_one_d(text: str) -> bool:
    """True when the formula mentions x and not y: f(x) only, a curve rather than a surface.

    A formula in neither variable (a constant) is not counted: it has no slope to show. Text
    that is not a formula of our grammar (a surface defined otherwise) is not 1-D either.
    """
    try:
        names = {s.name for s in compile_formula(text).expr.free_symbols}
    except (FormulaError, ValueError):
        return False
    return names == {"x"}


def _num(v: float) -> str:
    """A float as a number in our formula grammar."""
    return repr(float(v))


# ----------------------------------------------------------------------------------------------
# The cone tips of ackley and plateau


def _radial_kink(
    shape_d1: Callable[[np.ndarray], np.ndarray],
    shape_d2: Callable[[np.ndarray], np.ndarray],
    smooth: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]] | None,
    formula_value: Callable[[np.ndarray], np.ndarray],
) -> SurfaceFunctions:
    """Gradient and Hessian of f = g(r) + s(x, y), r = |(x, y)|, where g'(0) > 0 (a cone tip).

    `shape_d1(r)`, `shape_d2(r)` are g' and g''; `smooth(x, y)` returns s's (sx, sy, sxx, sxy,
    syy). At r > 0 everything is exact: grad g = g' r̂ and Hess g = g'' r̂r̂ᵀ + g'/r (I - r̂r̂ᵀ).
    At the tip f has no derivative: the gradient jumps to size g'(0) in every direction and
    the g'/r curvature across the radius is unbounded. There we return gradient 0 (the
    smallest subgradient, so the tip is a fixed point, as a minimum should be) and the finite
    part of the Hessian, g''(0) I + Hess s (only the radial curvature of the cone), so nothing
    is NaN and Newton's method stays put. The symbolic route would give 0/0 = NaN instead.
    """
    tiny = 1e-150  # below this g'/r overflows; treat as the tip (the true value is unbounded)

    def gradient(points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 0 or pts.shape[-1] != 2:
            raise ValueError(f"points must have shape (n, 2), got {pts.shape}")
        x, y = pts[..., 0], pts[..., 1]
        with np.errstate(all="ignore"):
            r = np.hypot(x, y)
            safe = np.where(r > 0, r, 1.0)
            slope = np.where(r > 0, shape_d1(r), 0.0)
            # slope * (x / r), not (slope / r) * x: x / r stays finite even for subnormal r.
            out = np.stack([slope * (x / safe), slope * (y / safe)], axis=-1)
            if smooth is not None:
                sx, sy, *_ = smooth(x, y)
                out[..., 0] += sx
                out[..., 1] += sy
        return out

    def hessian(points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 0 or pts.shape[-1] != 2:
            raise ValueError(f"points must have shape (n, 2), got {pts.shape}")
        x, y = pts[..., 0], pts[..., 1]
        with np.errstate(all="ignore"):
            r = np.hypot(x, y)
            tip = r <= tiny
            safe = np.where(tip, 1.0, r)
            ux, uy = np.where(tip, 0.0, x / safe), np.where(tip, 0.0, y / safe)
            d1, d2 = shape_d1(r), shape_d2(r)
            across = np.where(tip, d2, d1 / safe)  # at the tip: radial curvature in every direction
            out = np.empty((*pts.shape, 2))
            out[..., 0, 0] = d2 * ux * ux + across * (1 - ux * ux)
            out[..., 1, 1] = d2 * uy * uy + across * (1 - uy * uy)
            out[..., 0, 1] = (d2 - across) * ux * uy
            if smooth is not None:
                _, _, sxx, sxy, syy = smooth(x, y)
                out[..., 0, 0] += sxx
                out[..., 0, 1] += sxy
                out[..., 1, 1] += syy
            out[..., 1, 0] = out[..., 0, 1]
        return out

    return SurfaceFunctions(formula_value, gradient, hessian)


_ACKLEY_K = 0.2 / math.sqrt(2.0)  # -20 exp(-0.2 sqrt(0.5 r^2)) = -20 exp(-k r)


def _ackley_smooth(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Derivatives of -exp(0.5 (cos 2πx + cos 2πy))."""
    tau = 2 * math.pi
    sx, sy = np.sin(tau * x), np.sin(tau * y)
    cx, cy = np.cos(tau * x), np.cos(tau * y)
    ec = np.exp(0.5 * (cx + cy))
    pi2 = math.pi**2
    return (
        math.pi * sx * ec,
        math.pi * sy * ec,
        pi2 * ec * (2 * cx - sx * sx),
        -pi2 * sx * sy * ec,
        pi2 * ec * (2 * cy - sy * sy),
    )


def _ackley_functions(formula: str) -> SurfaceFunctions:
    k = _ACKLEY_K
    return _radial_kink(
        lambda r: 20 * k * np.exp(-k * r),
        lambda r: -20 * k * k * np.exp(-k * r),
        _ackley_smooth,
        compile_formula(formula).value,
    )


def _plateau_functions(formula: str) -> SurfaceFunctions:
    """f = F(10 r + 0.01) with F(s) = -sin(s)/s + 0.01 s², a sombrero with a cone tip."""

    def d1(r: np.ndarray) -> np.ndarray:
        s = 10 * r + 0.01
        return 10 * ((np.sin(s) - s * np.cos(s)) / (s * s) + 0.02 * s)

    def d2(r: np.ndarray) -> np.ndarray:
        s = 10 * r + 0.01
        sin, cos = np.sin(s), np.cos(s)
        return 100 * (sin / s + 2 * cos / (s * s) - 2 * sin / (s * s * s) + 0.02)

    return _radial_kink(d1, d2, None, compile_formula(formula).value)


# ----------------------------------------------------------------------------------------------
# The catalogue


class _Entry(NamedTuple):
    title: str
    story: str
    formula: str
    box: Box
    minima: Sequence[tuple[float, float]]
    minima_values: Sequence[float]
    starts: Sequence[tuple[float, float]]
    log_scale: bool = False
    local_minima: Sequence[tuple[float, float]] = ()
    local_minima_values: Sequence[float] = ()
    closed_form: Callable[[str], SurfaceFunctions] | None = None


_PLATEAU_R = "(sqrt((10*x)^2 + (10*y)^2) + 0.01)"

# Minima below were polished with Newton's method on the exact gradient (to |grad| < 1e-12)
# unless a closed form is given; tests check value and gradient at each.
_CATALOGUE: dict[str, _Entry] = {
    "bowl": _Entry(
        "Bowl (isotropic quadratic)",
        "The easy case: every step points at the minimum, so only the step size matters — "
        "too small crawls, lr > 0.5 overshoots and lr > 1 diverges.",
        "x^2 + y^2",
        ((-2.0, 2.0), (-2.0, 2.0)),
        [(0.0, 0.0)],
        [0.0],
        [(-1.5, 1.2)],
    ),
    # "ravine" is built by _ravine (it has parameters).
    "rosenbrock": _Entry(
        "Rosenbrock",
        "Finding the long curved valley is easy; following it to (1, 1) is slow for plain GD "
        "and the test of every optimizer.",
        "(1 - x)^2 + 100*(y - x^2)^2",
        ((-2.0, 2.0), (-1.0, 3.0)),
        [(1.0, 1.0)],
        [0.0],
        [(-1.2, 1.0), (-1.5, 2.5)],
    ),
    "beale": _Entry(
        "Beale",
        "Flat plateaus and steep walls: gradients range over five orders of magnitude, "
        "which is what adaptive methods (RMSprop, Adam) are for.",
        "(1.5 - x + x*y)^2 + (2.25 - x + x*y^2)^2 + (2.625 - x + x*y^3)^2",
        ((-4.5, 4.5), (-4.5, 4.5)),
        [(3.0, 0.5)],
        [0.0],
        [(1.0, 1.5), (-2.0, -1.0)],
        log_scale=True,
    ),
    "booth": _Entry(
        "Booth",
        "A tilted quadratic bowl: the gradient does not point at the minimum, so plain GD "
        "curves in.",
        "(x + 2*y - 7)^2 + (2*x + y - 5)^2",
        ((-10.0, 10.0), (-10.0, 10.0)),
        [(1.0, 3.0)],
        [0.0],
        [(-8.0, -6.0)],
    ),
    "himmelblau": _Entry(
        "Himmelblau",
        "Four equal minima: which basin you end in depends only on where you start.",
        "(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        ((-5.0, 5.0), (-5.0, 5.0)),
        [
            (3.0, 2.0),
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.283185991286170),
            (3.584428340330492, -1.848126526964404),
        ],
        [0.0, 0.0, 0.0, 0.0],
        [(1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)],
    ),
    "rastrigin": _Entry(
        "Rastrigin",
        "A bowl covered in a grid of local minima: plain GD stops in the nearest one; "
        "momentum can roll through several.",
        "20 + x^2 - 10*cos(2*pi*x) + y^2 - 10*cos(2*pi*y)",
        ((-5.12, 5.12), (-5.12, 5.12)),
        [(0.0, 0.0)],
        [0.0],
        [(-4.5, -4.5)],
    ),
    "ackley": _Entry(
        "Ackley",
        "Nearly flat and bumpy far out, a funnel with a sharp tip in the middle: far starts "
        "stop in a bump, near ones jitter around the tip at a distance set by the step size.",
        "-20*exp(-0.2*sqrt(0.5*(x^2 + y^2))) - exp(0.5*(cos(2*pi*x) + cos(2*pi*y))) + e + 20",
        ((-5.0, 5.0), (-5.0, 5.0)),
        [(0.0, 0.0)],
        [0.0],
        [(3.3, 2.6), (0.6, -0.4)],
        closed_form=_ackley_functions,
    ),
    "goldstein-price": _Entry(
        "Goldstein–Price",
        "Values from 3 to a million: only a log scale shows the valleys; the four starts "
        "end in the global minimum (3) and the three local ones (30, 84, 840).",
        "(1 + (x + y + 1)^2*(19 - 14*x + 3*x^2 - 14*y + 6*x*y + 3*y^2))"
        "*(30 + (2*x - 3*y)^2*(18 - 32*x + 12*x^2 + 48*y - 36*x*y + 27*y^2))",
        ((-2.0, 2.0), (-2.0, 2.0)),
        [(0.0, -1.0)],
        [3.0],
        [(0.9, -0.6), (-1.2, 0.3), (1.2, 0.0), (0.9, 0.6)],
        log_scale=True,
        local_minima=[(-0.6, -0.4), (1.8, 0.2), (1.2, 0.8)],
        local_minima_values=[30.0, 84.0, 840.0],
    ),
    "three-hump-camel": _Entry(
        "Three-hump camel",
        "A global minimum between two local ones: start on a side hump and plain GD stays there.",
        "2*x^2 - 1.05*x^4 + x^6/6 + x*y + y^2",
        ((-2.0, 2.0), (-2.0, 2.0)),
        [(0.0, 0.0)],
        [0.0],
        [(1.9, -1.5), (1.0, 1.5)],
        local_minima=[
            (-1.747552345830289, 0.8737761729151445),
            (1.747552345830289, -0.8737761729151445),
        ],
        local_minima_values=[0.29863844223685965, 0.29863844223685965],
    ),
    "six-hump-camel": _Entry(
        "Six-hump camel",
        "A symmetric pair of global minima and four local ones: symmetric starts end in "
        "symmetric places.",
        "(4 - 2.1*x^2 + x^4/3)*x^2 + x*y + (-4 + 4*y^2)*y^2",
        ((-3.0, 3.0), (-2.0, 2.0)),
        [(0.08984201310031806, -0.7126564030207396), (-0.08984201310031806, 0.7126564030207396)],
        [-1.0316284534898774, -1.0316284534898774],
        [(-1.0, -1.5), (1.0, 1.5)],
        local_minima=[
            (-1.703606714969981, 0.7960835686726252),
            (1.703606714969981, -0.7960835686726252),
            (-1.6071047529201974, -0.5686514548841314),
            (1.6071047529201974, 0.5686514548841314),
        ],
        local_minima_values=[
            -0.2154638243837197,
            -0.2154638243837197,
            2.1042503103112598,
            2.1042503103112598,
        ],
    ),
    "matyas": _Entry(
        "Matyas",
        "A nearly flat, skewed valley (condition number 25): GD finds the valley floor fast "
        "and then crawls along it.",
        "0.26*(x^2 + y^2) - 0.48*x*y",
        ((-10.0, 10.0), (-10.0, 10.0)),
        [(0.0, 0.0)],
        [0.0],
        [(7.0, -4.0)],
    ),
    "mccormick": _Entry(
        "McCormick",
        "A sine ripple on a tilted valley: the global minimum at (1/2 - π/3, -1/2 - π/3) and a "
        "local one 2π/3 further up the valley.",
        "sin(x + y) + (x - y)^2 - 1.5*x + 2.5*y + 1",
        ((-1.5, 4.0), (-3.0, 4.0)),
        # grad = 0 <=> x - y = 1 and cos(x + y) = -1/2: x + y = -2π/3 (global), 4π/3 (local).
        [(0.5 - math.pi / 3, -0.5 - math.pi / 3)],
        [-math.sqrt(3) / 2 - math.pi / 3],
        [(3.5, 3.5), (-1.0, 3.0)],
        local_minima=[(0.5 + 2 * math.pi / 3, -0.5 + 2 * math.pi / 3)],
        local_minima_values=[-math.sqrt(3) / 2 + 2 * math.pi / 3],
    ),
    "styblinski-tang": _Entry(
        "Styblinski–Tang",
        "One global and three local minima at the corners of a square: starts near the middle "
        "fan out to all four.",
        "(x^4 - 16*x^2 + 5*x + y^4 - 16*y^2 + 5*y)/2",
        ((-5.0, 5.0), (-5.0, 5.0)),
        # Each coordinate solves 4t³ - 32t + 5 = 0.
        [(-2.903534027771177, -2.903534027771177)],
        [-78.33233140754284],
        [(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)],
        local_minima=[
            (-2.903534027771177, 2.7468027709908367),
            (2.7468027709908367, -2.903534027771177),
            (2.7468027709908367, 2.7468027709908367),
        ],
        local_minima_values=[-64.19561235905536, -64.19561235905536, -50.05889331056789],
    ),
    "saddle": _Entry(
        "Saddle",
        "A start exactly on the ridge slides into the saddle point and stops; a start a hair "
        "off it stalls there for a long time before escaping (noise escapes faster).",
        "x^2 - y^2",
        ((-2.0, 2.0), (-2.0, 2.0)),
        [],
        [],
        [(-1.8, 0.0), (-1.8, 0.001)],
    ),
    "monkey-saddle": _Entry(
        "Monkey saddle",
        "A degenerate saddle: the gradient vanishes quadratically, so GD creeps towards the "
        "centre ever more slowly and never quite arrives.",
        "x^3 - 3*x*y^2",
        ((-2.0, 2.0), (-2.0, 2.0)),
        [],
        [],
        [(1.5, 0.0), (1.5, 0.1)],
    ),
    "two-wells": _Entry(
        "Two wells (local vs global)",
        "A shallow well on the right, a deep one on the left: plain GD stops in the shallow "
        "one, momentum rolls on into the deep one.",
        "x^2 + y^2 - 2*exp(-((x - 1)^2 + y^2)/0.2) - 6*exp(-((x + 1)^2 + y^2)/0.2)",
        ((-2.0, 2.0), (-2.0, 2.0)),
        [(-0.9675774464554597, 0.0)],
        [-5.032339968658434],
        [(1.8, 0.5), (1.6, 1.2)],
        local_minima=[(0.9053178606008482, 0.0)],
        local_minima_values=[-1.092732038481015],
    ),
    "plateau": _Entry(
        "Plateau (sombrero)",
        "A narrow deep hole behind a ridge (r ≈ 0.5) where the gradient all but vanishes, "
        "and a ring-shaped ditch (r ≈ 0.66) that catches every start from outside.",
        f"-sin({_PLATEAU_R})/{_PLATEAU_R} + 0.01*{_PLATEAU_R}^2",
        ((-2.0, 2.0), (-2.0, 2.0)),
        # f depends on r = |(x, y)| only and rises from the tip to the first ripple (r ≈ 0.45),
        # and nothing further out is as low, so the minimum is exactly the tip.
        [(0.0, 0.0)],
        [-math.sin(0.01) / 0.01 + 0.01 * 0.01**2],
        [(1.2, 0.9), (0.25, -0.15)],
        closed_form=_plateau_functions,
    ),
    # Pure 1-D functions f(x): the y axis only gives the curve a width in the 3-D view. Their
    # balls start on y = 0 and, the y part of the gradient being exactly 0, stay there.
    "1d-parabola": _Entry(
        "1-D parabola f(x) = x²",
        "The slope 2x says how far to go: each GD step multiplies x by (1 − 2·lr), so "
        "lr < 0.5 glides in, 0.5 < lr < 1 jumps over the minimum and bounces in, lr > 1 "
        "(above 2/f'' = 1) bounces out.",
        "x^2",
        ((-2.0, 2.0), (-1.0, 1.0)),
        [(0.0, 0.0)],
        [0.0],
        [(-1.6, 0.0)],
    ),
    "1d-double-well": _Entry(
        "1-D double well",
        "Two valleys, the left one deeper: from the right plain GD stops in the shallow "
        "valley, where the slope is zero but the loss is not the lowest; momentum carries the "
        "ball over the hump into the deep one.",
        "x^4 - 2*x^2 + 0.5*x",
        ((-2.0, 2.0), (-1.0, 1.0)),
        [(-1.057453770738378, 0.0)],
        [-1.5147536412757057],
        [(1.8, 0.0), (1.5, 0.0)],
        local_minima=[(0.9304029265558517, 0.0)],
        local_minima_values=[-0.5167485082852492],
    ),
    "1d-narrow-well": _Entry(
        "1-D narrow well beside a wide bowl",
        "A deep, narrow well (curvature about 30, so 2/f'' ≈ 0.066) beside a wide shallow "
        "bowl: a small learning rate settles in the well; a large one jumps over it and ends "
        "in the bowl, where the loss is far higher.",
        "0.1*(x - 1.5)^2 - 1.5*exp(-10*x^2)",
        ((-2.5, 3.5), (-1.0, 1.0)),
        [(0.009943536462120017, 0.0)],
        [-1.2764907977485718],
        [(-1.5, 0.0)],
        local_minima=[(1.499999961932254, 0.0)],
        local_minima_values=[-2.5378483330743446e-10],
    ),
}

_RAVINE_PARAMS = (
    SurfaceParam("kappa", 50.0, 1.0, 1e4, True, "condition number: curvature across / along"),
    SurfaceParam("angle", 0.0, -180.0, 180.0, False, "rotation of the valley, degrees"),
)

_NN_SEED = SurfaceParam(
    "seed", 0.0, 0.0, 9999.0, False, "data seed (a whole number): the same seed, the same points"
)
_NN_PARAMS: dict[str, tuple[SurfaceParam, ...]] = {
    "nn-logistic": (_NN_SEED,),
    "nn-linear": (
        _NN_SEED,
        SurfaceParam("offset", 2.0, -5.0, 5.0, False, "mean of the inputs u (sets the tilt)"),
        SurfaceParam("spread", 1.0, 0.1, 5.0, True, "standard deviation of the inputs u"),
    ),
    "nn-tanh": (_NN_SEED,),
}

_ORDER = [
    "bowl",
    "ravine",
    "rosenbrock",
    "beale",
    "booth",
    "himmelblau",
    "rastrigin",
    "ackley",
    "goldstein-price",
    "three-hump-camel",
    "six-hump-camel",
    "matyas",
    "mccormick",
    "styblinski-tang",
    "saddle",
    "monkey-saddle",
    "two-wells",
    "plateau",
    "nn-logistic",
    "nn-linear",
    "nn-tanh",
    "1d-parabola",
    "1d-double-well",
    "1d-narrow-well",
]


def names() -> list[str]:
    """Ids of the built-in surfaces, in catalogue order."""
    return list(_ORDER)


def param_specs(name: str) -> tuple[SurfaceParam, ...]:
    """The adjustable parameters of a built-in surface (empty for most)."""
    _check_name(name)
    if name in _NN_PARAMS:
        return _NN_PARAMS[name]
    return _RAVINE_PARAMS if name == "ravine" else ()


def _check_name(name: str) -> None:
    if name not in _ORDER:
        raise ValueError(f"unknown surface {name!r}; valid names: {', '.join(_ORDER)}")


def _check_params(name: str, params: Mapping[str, object]) -> dict[str, float]:
    specs = {p.name: p for p in param_specs(name)}
    unknown = sorted(set(params) - set(specs))
    if unknown:
        valid = ", ".join(specs) if specs else "none"
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for surface {name!r}; valid: {valid}"
        )
    out = {}
    for p in specs.values():
        raw = params.get(p.name, p.default)
        try:
            v = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"Invalid {p.name}: {raw!r} ({p.name} must be a number)") from None
        if isinstance(raw, bool) or not (math.isfinite(v) and p.low <= v <= p.high):
            raise ValueError(
                f"Invalid {p.name}: {raw!r} ({p.name} must be in [{p.low:g}, {p.high:g}])"
            )
        out[p.name] = v
    return out


def get(name: str, **params: float) -> Surface:
    """A built-in surface by id; `params` set adjustable parameters (see param_specs).

    Unknown names or parameters, and values out of range, raise ValueError saying what is valid.
    """
    _check_name(name)
    values = _check_params(name, params)
    if name == "ravine":
        return _ravine(**values)
    if name in _NN_PARAMS:
        return _neural(name, **values)
    e = _CATALOGUE[name]
    functions = _functions(e.formula, name if e.closed_form is not None else "")
    return Surface(
        name=name,
        title=e.title,
        story=e.story,
        formula=e.formula,
        box=e.box,
        minima=e.minima,
        minima_values=e.minima_values,
        starts=e.starts,
        log_scale=e.log_scale,
        params={},
        local_minima=e.local_minima,
        local_minima_values=e.local_minima_values,
        functions=functions,
    )


def _formula_functions(formula: str) -> SurfaceFunctions:
    return _functions(formula, "")


def _ravine(kappa: float, angle: float) -> Surface:
    """½(u² + κ v²) in coordinates (u, v) rotated by `angle` degrees from (x, y).

    The starts rotate with the valley, so the story (a long way along the floor, a steep wall
    across) looks the same at every angle.
    """
    if angle == 0:
        formula = f"0.5*(x^2 + {_num(kappa)}*y^2)"
    else:
        a = f"{_num(angle)}*pi/180"
        formula = f"0.5*((cos({a})*x + sin({a})*y)^2 + {_num(kappa)}*(cos({a})*y - sin({a})*x)^2)"
    t = math.radians(angle)
    rotation = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    starts = np.array([(-2.5, 1.0)]) @ rotation.T
    return Surface(
        name="ravine",
        title="Ravine (ill-conditioned quadratic)",
        story="A long narrow valley: plain GD zig-zags across the steep walls and crawls along "
        "the floor; momentum (optimal β = ((√κ - 1)/(√κ + 1))²) damps the zig-zag.",
        formula=formula,
        box=((-3.0, 3.0), (-3.0, 3.0)),
        minima=[(0.0, 0.0)],
        minima_values=[0.0],
        starts=starts,
        log_scale=False,
        params={"kappa": kappa, "angle": angle},
        functions=_formula_functions(formula),
    )


# ----------------------------------------------------------------------------------------------
# Neural-network surfaces (the model and its data live in gdsim.engine.nn)


def _neural(name: str, seed: float, offset: float = 2.0, spread: float = 1.0) -> Surface:
    """A two-parameter model's exact training loss: (x, y) are its two weights.

    The minima are found by Newton's method on the exact gradient for this seed's data (they
    move a little with the seed); the boxes are wide enough for every seed's minimum.
    """
    if not float(seed).is_integer():
        raise ValueError(f"Invalid seed: {seed!r} (seed must be a whole number)")
    kind = name.removeprefix("nn-")
    data = _nn.make_dataset(kind, int(seed), offset=offset, spread=spread)
    m = data.m
    params: dict[str, float] = {"seed": float(seed)}
    if kind == "logistic":
        title = "NN: logistic neuron σ(w·u + b)"
        story = (
            f"A single neuron classifying {m} points of two overlapping blobs, trained with "
            "cross-entropy: x is the weight w, y the bias b. Convex but flat far out; "
            "mini-batch SGD jitters around the minimum at a distance set by lr and batch size."
        )
        formula = f"mean over {m} points (u, c) of log(1 + exp(x*u + y)) - c*(x*u + y)"
        box: Box = ((-3.0, 7.0), (-5.0, 5.0))
        minima = [_nn.newton_minimum(data, (0.0, 0.0))]
        starts = [(-2.0, 4.0), (6.0, -4.0)]
    elif kind == "linear":
        params.update(offset=offset, spread=spread)
        h = 2 * np.array([[offset**2 + spread**2, offset], [offset, 1.0]])
        ev = np.linalg.eigvalsh(h)
        title = "NN: linear regression w·u + b"
        story = (
            f"Least squares on {m} points: x is the slope w, y the intercept b. Inputs "
            f"centred at {offset:g} with spread {spread:g} couple w and b into a ravine of "
            f"condition number κ = {ev[1] / ev[0]:.3g} (lr above 2/λmax = {2 / ev[1]:.3g} "
            "diverges); centring the inputs (offset 0) makes it round."
        )
        formula = f"mean over {m} points (u, v) of (x*u + y - v)^2"
        box = ((-1.5, 4.5), (-4.0, 2.0))
        minima = [_nn.newton_minimum(data, (0.0, 0.0))]
        starts = [(-1.0, 1.5), (4.0, -3.5)]
    else:
        title = "NN: tanh net w₂·tanh(w₁·u)"
        story = (
            f"A two-weight tanh network fitting {m} points: x is w₁, y is w₂. tanh is odd, so "
            "(w₁, w₂) and (-w₁, -w₂) are the same network: two equal minima, a saddle at the "
            "origin between them, and flat plateaus where tanh saturates."
        )
        formula = f"mean over {m} points (u, v) of (y*tanh(x*u) - v)^2"
        box = ((-3.0, 3.0), (-3.0, 3.0))
        best = _nn.newton_minimum(data, (1.5, 1.2))
        minima = [best, -best]
        starts = [(-2.5, 0.5), (2.5, -0.5)]
    minima_arr = np.array(minima)
    (x0, x1), (y0, y1) = box
    xx, yy = np.meshgrid(np.linspace(x0, x1, 64), np.linspace(y0, y1, 64), indexing="ij")
    return Surface(
        name=name,
        title=title,
        story=story,
        formula=formula,
        box=box,
        minima=minima_arr,
        minima_values=data.value(minima_arr),
        starts=starts,
        log_scale=wants_log_scale(data.value(np.stack([xx, yy], axis=-1))),
        params=params,
        functions=_data_functions(data),
        data=data,
    )


# ----------------------------------------------------------------------------------------------
# Custom formulas

_META = {
    "name",
    "title",
    "story",
    "minima",
    "minima_values",
    "starts",
    "log_scale",
    "local_minima",
    "local_minima_values",
}


def from_formula(text: str, box: Box = ((-3.0, 3.0), (-3.0, 3.0)), **meta: object) -> Surface:
    """A Surface for a typed formula f(x, y) (see gdsim.engine.expression for the grammar).

    `meta` may set name (default "custom"), title, story, minima, starts, local_minima,
    log_scale; values of listed minima are computed from f unless given. Without starts, one
    start is placed up and to the right of the box centre. log_scale defaults to the rule of
    `wants_log_scale` on a 64 x 64 sample.

    Raises FormulaError for text that does not parse, and for a formula that is finite at fewer
    than MIN_FINITE_FRACTION of a 64 x 64 sample of the box (with what went wrong).
    """
    unknown = sorted(set(meta) - _META)
    if unknown:
        raise ValueError(
            f"unknown argument(s) {', '.join(unknown)}; valid: {', '.join(sorted(_META))}"
        )
    box = _check_box(box)
    compiled = compile_formula(text)
    (x0, x1), (y0, y1) = box
    xs, ys = np.linspace(x0, x1, 64), np.linspace(y0, y1, 64)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)
    z = compiled.value(grid)
    finite = np.isfinite(z)
    if finite.mean() < MIN_FINITE_FRACTION:
        nan, inf = np.isnan(z).mean(), np.isinf(z).mean()
        raise FormulaError(
            f"f(x, y) is finite at only {finite.mean():.1%} of the box "
            f"x in [{x0:g}, {x1:g}], y in [{y0:g}, {y1:g}] (undefined at {nan:.0%}, "
            f"infinite at {inf:.0%}): a log or sqrt of a negative number, a division by zero "
            "or an overflow? Try another box."
        )

    def values_for(points_key: str, values_key: str) -> tuple[np.ndarray, np.ndarray]:
        points = _as_xy(meta.get(points_key, ()), points_key)
        given = meta.get(values_key)
        values = compiled.value(points) if given is None else given
        return points, np.asarray(values, dtype=np.float64)

    minima, minima_values = values_for("minima", "minima_values")
    local_minima, local_values = values_for("local_minima", "local_minima_values")
    starts = meta.get("starts")
    if starts is None:
        # f(x) only: start on y = 0 (or the box's middle row), where the curve is drawn.
        y_start = 0.0 if y0 <= 0.0 <= y1 else 0.5 * (y0 + y1)
        ty = y_start if formula_is_one_d(text) else y0 + 0.8 * (y1 - y0)
        target = np.array([x0 + 0.8 * (x1 - x0), ty])
        candidates = grid[finite]
        if formula_is_one_d(text) and np.isfinite(compiled.value(target)):
            starts = [target]  # exactly on the row, not the nearest sample of the grid
        else:
            starts = [candidates[np.argmin(np.linalg.norm(candidates - target, axis=1))]]
    log_scale = meta.get("log_scale")
    return Surface(
        name=str(meta.get("name", "custom")),
        title=str(meta.get("title", f"f(x, y) = {text}")),
        story=str(meta.get("story", "")),
        formula=text,
        box=box,
        minima=minima,
        minima_values=minima_values,
        starts=starts,
        log_scale=wants_log_scale(z) if log_scale is None else bool(log_scale),
        params={},
        local_minima=local_minima,
        local_minima_values=local_values,
        functions=_functions(text, ""),
    )
