"""The surface catalogue: exact derivatives, minima, grids, stories, custom formulas."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from gdsim.engine import surfaces
from gdsim.engine.expression import FormulaError, compile_formula
from gdsim.engine.simulation import RunSpec, Simulation
from gdsim.engine.surfaces import Surface

# Ids exactly as /work/shared/reference/surfaces.md, without the neural-network ones.
REFERENCE_IDS = [
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
]
# gdsim's own pure 1-D functions f(x), after the reference's surfaces.
ONE_D_IDS = ["1d-parabola", "1d-double-well", "1d-narrow-well"]
ALL = [surfaces.get(name) for name in surfaces.names()] + [
    surfaces.get("ravine", kappa=20.0, angle=30.0)
]
IDS = [f"{s.name}{s.params or ''}" for s in ALL]


def random_points(s: Surface, n: int = 64, seed: int = 0) -> np.ndarray:
    (x0, x1), (y0, y1) = s.box
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])


def central_gradient(f, pts: np.ndarray, h: np.ndarray) -> np.ndarray:
    """d f / d(x, y) by the five-point central difference; f maps (n, 2) -> (n, ...).

    Truncation error about h^4 |f^(5)| / 30, rounding about eps |f| / h.
    """
    cols = []
    for k in range(2):
        e = np.zeros(2)
        e[k] = h[k]
        cols.append(
            (-f(pts + 2 * e) + 8 * f(pts + e) - 8 * f(pts - e) + f(pts - 2 * e)) / (12 * h[k])
        )
    return np.stack(cols, axis=1 if cols[0].ndim == 1 else -2)


def steps(s: Surface) -> np.ndarray:
    (x0, x1), (y0, y1) = s.box
    return 1e-4 * np.array([x1 - x0, y1 - y0])


# ----------------------------------------------------------------------------------------------
# Catalogue


def test_names_are_the_reference_ids_in_order() -> None:
    assert surfaces.names() == REFERENCE_IDS + ONE_D_IDS


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown surface 'bowll'.*bowl, ravine, rosenbrock"):
        surfaces.get("bowll")


@pytest.mark.parametrize("s", ALL, ids=IDS)
def test_surface_fields_are_consistent(s: Surface) -> None:
    assert s.title and s.story and "\n" not in s.story
    if s.data is None:  # an NN surface's formula describes a sum over its data points
        compile_formula(s.formula)  # the shown formula is in our grammar
    (x0, x1), (y0, y1) = s.box
    assert x0 < x1 and y0 < y1
    for points in (s.minima, s.local_minima, s.starts):
        assert points.ndim == 2 and points.shape[1] == 2 and points.dtype == np.float64
        assert not points.flags.writeable
        assert np.all((points[:, 0] >= x0) & (points[:, 0] <= x1))
        assert np.all((points[:, 1] >= y0) & (points[:, 1] <= y1))
    assert len(s.starts) >= 1
    assert s.minima_values.shape == (len(s.minima),)
    assert s.local_minima_values.shape == (len(s.local_minima),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"  # type: ignore[misc]


def test_surfaces_without_minima_are_the_saddles() -> None:
    assert [s.name for s in ALL if len(s.minima) == 0] == ["saddle", "monkey-saddle"]


# ----------------------------------------------------------------------------------------------
# Exact derivatives


@pytest.mark.parametrize("s", ALL, ids=IDS)
def test_gradient_matches_central_differences(s: Surface) -> None:
    pts = random_points(s)
    h = steps(s)
    fd = central_gradient(s.value, pts, h)
    # Rounding is about eps |f| / h (eps = 2.2e-16); truncation stays below 1e-7 relative.
    scale = 1 + np.abs(s.value(pts))[:, None]
    err = np.abs(s.gradient(pts) - fd)
    assert np.all(err <= 1e-7 * np.abs(fd) + 1e-13 * scale / h.min()), s.name


@pytest.mark.parametrize("s", ALL, ids=IDS)
def test_hessian_matches_central_differences_of_the_gradient(s: Surface) -> None:
    pts = random_points(s, seed=1)
    h = steps(s)
    fd = central_gradient(s.gradient, pts, h)  # fd[n, k, j] = d g_j / d x_k
    scale = 1 + np.abs(s.gradient(pts)).max(axis=1)[:, None, None]
    err = np.abs(s.hessian(pts) - fd)
    assert np.all(err <= 1e-7 * np.abs(fd) + 1e-13 * scale / h.min()), s.name


@pytest.mark.parametrize("s", ALL, ids=IDS)
def test_hessian_is_symmetric(s: Surface) -> None:
    hess = s.hessian(random_points(s, seed=2))
    np.testing.assert_array_equal(hess, np.swapaxes(hess, -1, -2))


@pytest.mark.parametrize("s", ALL, ids=IDS)
def test_vectorised_over_any_leading_shape(s: Surface) -> None:
    pts = random_points(s, 12).reshape(3, 4, 2)
    assert s.value(pts).shape == (3, 4)
    assert s.gradient(pts).shape == (3, 4, 2)
    assert s.hessian(pts).shape == (3, 4, 2, 2)
    one_by_one = np.array([s.value(p[None])[0] for p in pts.reshape(-1, 2)])
    np.testing.assert_array_equal(s.value(pts).reshape(-1), one_by_one)


@pytest.mark.parametrize("name", ["ackley", "plateau"])
def test_closed_forms_agree_with_the_symbolic_formula(name: str) -> None:
    s = surfaces.get(name)
    symbolic = compile_formula(s.formula)
    pts = random_points(s, 200, seed=3)
    np.testing.assert_allclose(s.gradient(pts), symbolic.gradient(pts), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(s.hessian(pts), symbolic.hessian(pts), rtol=1e-8, atol=1e-8)


def test_ackley_tip_has_zero_gradient_and_finite_hessian() -> None:
    s = surfaces.get("ackley")
    origin = np.zeros((1, 2))
    np.testing.assert_array_equal(s.gradient(origin), 0.0)
    # Finite part: smooth term 2π²e plus the cone's radial curvature -20 k², k = 0.2/√2.
    expected = 2 * math.pi**2 * math.e - 20 * (0.2 / math.sqrt(2)) ** 2
    np.testing.assert_allclose(s.hessian(origin)[0], expected * np.eye(2), rtol=1e-12)
    assert np.all(np.isnan(compile_formula(s.formula).gradient(origin)))  # why it is special


@pytest.mark.parametrize("name", ["ackley", "plateau"])
def test_cone_tips_have_no_nan_arbitrarily_close(name: str) -> None:
    s = surfaces.get(name)
    pts = np.array([[0.0, 0.0], [1e-300, 0.0], [5e-324, -5e-324], [1e-160, 1e-160], [1e-8, 0]])
    g, h = s.gradient(pts), s.hessian(pts)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    # Off the tip the gradient has the cone's slope, pointing away from the tip.
    assert np.all(g[1:, 0] > 0)


def test_plateau_tip() -> None:
    s = surfaces.get("plateau")
    origin = np.zeros((1, 2))
    np.testing.assert_array_equal(s.gradient(origin), 0.0)
    r = 0.01
    f2 = math.sin(r) / r + 2 * math.cos(r) / r**2 - 2 * math.sin(r) / r**3 + 0.02
    np.testing.assert_allclose(s.hessian(origin)[0], 100 * f2 * np.eye(2), rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# Minima


@pytest.mark.parametrize("s", [s for s in ALL if len(s.minima) or len(s.local_minima)], ids=str)
def test_listed_minima_have_their_values_zero_gradient_and_positive_curvature(s: Surface) -> None:
    pts = np.concatenate([s.minima, s.local_minima])
    values = np.concatenate([s.minima_values, s.local_minima_values])
    np.testing.assert_allclose(s.value(pts), values, rtol=1e-13, atol=1e-13)
    scale = 1 + np.abs(s.hessian(pts)).max()
    assert np.abs(s.gradient(pts)).max() <= 1e-13 * scale
    if s.one_d:  # f(x): flat along y, so only f'' > 0
        assert np.all(s.hessian(pts)[:, 0, 0] > 0)
    else:
        assert np.all(np.linalg.eigvalsh(s.hessian(pts)) > 0)


@pytest.mark.parametrize("s", [s for s in ALL if len(s.minima)], ids=str)
def test_global_minima_are_global_in_the_box(s: Surface) -> None:
    _, _, z = s.grid(301, 301)
    assert np.all(s.minima_values == s.minima_values[0])
    assert z.min() >= s.minima_values[0] - 1e-12
    if len(s.local_minima):
        assert np.all(s.local_minima_values > s.minima_values[0])


@pytest.mark.parametrize(
    ("name", "minima", "value", "digits"),
    [
        ("bowl", [(0, 0)], 0.0, 6),
        ("ravine", [(0, 0)], 0.0, 6),
        ("rosenbrock", [(1, 1)], 0.0, 6),
        ("beale", [(3, 0.5)], 0.0, 6),
        ("booth", [(1, 3)], 0.0, 6),
        (
            "himmelblau",
            [(3, 2), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)],
            0.0,
            6,
        ),
        ("rastrigin", [(0, 0)], 0.0, 6),
        ("ackley", [(0, 0)], 0.0, 6),
        ("goldstein-price", [(0, -1)], 3.0, 6),
        ("three-hump-camel", [(0, 0)], 0.0, 6),
        ("six-hump-camel", [(0.0898, -0.7126), (-0.0898, 0.7126)], -1.0316, 4),
        ("matyas", [(0, 0)], 0.0, 6),
        # The reference's -1.9133 is one off in the last digit: the exact value is
        # -sqrt(3)/2 - pi/3 = -1.913223 (see test_mccormick_minimum_is_exact).
        ("mccormick", [(-0.54719, -1.54719)], -1.9133, 4),
    ],
)
def test_minima_agree_with_the_reference_table(
    name: str, minima: list, value: float, digits: int
) -> None:
    s = surfaces.get(name)
    # The reference truncates (0.7126 for 0.712656), so allow one unit in the last digit.
    np.testing.assert_allclose(s.minima, minima, atol=10.0**-digits)
    np.testing.assert_allclose(s.minima_values, value, atol=10.0**-digits)


def test_mccormick_minimum_is_exact() -> None:
    # grad = 0 <=> x - y = 1 and cos(x + y) = -1/2.
    s = surfaces.get("mccormick")
    x, y = s.minima[0]
    assert x - y == pytest.approx(1.0, abs=1e-15)
    assert math.cos(x + y) == pytest.approx(-0.5, abs=1e-15)
    assert s.minima_values[0] == pytest.approx(-math.sqrt(3) / 2 - math.pi / 3, abs=1e-15)


def test_styblinski_tang_minimum_differs_from_the_reference_in_the_fourth_decimal() -> None:
    """The reference gives -78.33198 (the often-quoted 2 x -39.16599); the exact value at
    (-2.903534, -2.903534) is -78.332331. The position agrees to all six given digits."""
    s = surfaces.get("styblinski-tang")
    np.testing.assert_allclose(s.minima, [(-2.903534, -2.903534)], atol=6e-7)
    t = s.minima[0, 0]
    assert 4 * t**3 - 32 * t + 5 == pytest.approx(0.0, abs=1e-12)
    assert s.minima_values[0] == pytest.approx(-78.332331, abs=1e-6)
    assert abs(s.minima_values[0] - -78.33198) < 4e-4


@pytest.mark.parametrize("name", ["two-wells", "plateau"])
def test_near_minima_of_the_reference_are_exact_here(name: str) -> None:
    s = surfaces.get(name)
    near = {"two-wells": (-1.0, 0.0), "plateau": (0.0, 0.0)}[name]
    assert np.linalg.norm(s.minima[0] - near) < 0.05
    assert np.abs(s.gradient(s.minima)).max() < 1e-13


# ----------------------------------------------------------------------------------------------
# Grid


def test_grid_orientation_is_ij() -> None:
    s = surfaces.get("rosenbrock")
    x, y, z = s.grid(7, 5)
    assert x.shape == (7,) and y.shape == (5,) and z.shape == (7, 5)
    assert (x[0], x[-1], y[0], y[-1]) == (-2.0, 2.0, -1.0, 3.0)
    for i in range(7):
        for j in range(5):
            assert z[i, j] == s.value(np.array([[x[i], y[j]]]))[0]


def test_grid_with_another_box() -> None:
    x, y, z = surfaces.get("bowl").grid(3, 2, box=((0, 1), (10, 20)))
    np.testing.assert_array_equal(x, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(y, [10.0, 20.0])
    np.testing.assert_array_equal(z, x[:, None] ** 2 + y[None, :] ** 2)


@pytest.mark.parametrize(("nx", "ny"), [(1, 5), (5, 0), (2.5, 3), (True, 4)])
def test_grid_rejects_bad_sizes(nx: object, ny: object) -> None:
    with pytest.raises(ValueError, match="must be an integer >= 2"):
        surfaces.get("bowl").grid(nx, ny)  # type: ignore[arg-type]


@pytest.mark.parametrize("box", [((1, 0), (0, 1)), ((0, 1), (0, math.inf)), (0, 1), "box"])
def test_grid_rejects_bad_boxes(box: object) -> None:
    with pytest.raises(ValueError, match="box must be"):
        surfaces.get("bowl").grid(3, 3, box=box)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Flags and parameters


@pytest.mark.parametrize("s", ALL, ids=IDS)
def test_log_scale_flag_follows_the_range_rule(s: Surface) -> None:
    _, _, z = s.grid(101, 101)
    assert s.log_scale == surfaces.wants_log_scale(z)


def test_log_scale_is_set_for_goldstein_price() -> None:
    assert surfaces.get("goldstein-price").log_scale
    assert not surfaces.get("bowl").log_scale


def test_ravine_parameters() -> None:
    default = surfaces.get("ravine")
    assert default.params == {"kappa": 50.0, "angle": 0.0}
    assert [p.name for p in surfaces.param_specs("ravine")] == ["kappa", "angle"]
    assert surfaces.param_specs("bowl") == ()
    s = surfaces.get("ravine", kappa=10, angle=30)
    eig = np.linalg.eigvalsh(s.hessian(np.array([[0.3, -0.7]])))[0]
    np.testing.assert_allclose(eig, [1.0, 10.0])
    # Rotating the valley by 30° rotates the function and the starts with it.
    t = math.radians(30)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    pts = random_points(default, 20)
    flat = surfaces.get("ravine", kappa=10)
    np.testing.assert_allclose(s.value(pts @ rot.T), flat.value(pts), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.starts, flat.starts @ rot.T)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kappa": 0.5}, r"Invalid kappa: 0.5 \(kappa must be in \[1, 10000\]\)"),
        ({"kappa": float("nan")}, "Invalid kappa"),
        ({"kappa": "steep"}, "Invalid kappa: 'steep' .kappa must be a number"),
        ({"angle": 200}, r"Invalid angle: 200 \(angle must be in \[-180, 180\]\)"),
        ({"angle": True}, "Invalid angle"),
        ({"tilt": 3}, "unknown parameter.*tilt.*valid: kappa, angle"),
    ],
)
def test_ravine_rejects_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        surfaces.get("ravine", **params)


def test_surfaces_without_parameters_refuse_them() -> None:
    with pytest.raises(ValueError, match=r"unknown parameter.*kappa.*valid: none"):
        surfaces.get("bowl", kappa=3)


# ----------------------------------------------------------------------------------------------
# Stories the default starts tell


def descend(s: Surface, lr: float, momentum: float, steps: int) -> np.ndarray:
    """Plain gradient descent / heavy ball (PyTorch's SGD momentum form), all starts at once."""
    theta = s.starts.copy()
    velocity = np.zeros_like(theta)
    for _ in range(steps):
        velocity = momentum * velocity + s.gradient(theta)
        theta = theta - lr * velocity
    return theta


def test_two_wells_plain_gd_stays_shallow_and_momentum_rolls_on() -> None:
    s = surfaces.get("two-wells")
    shallow, deep = s.local_minima[0], s.minima[0]
    assert shallow[0] > 0.5 and deep[0] < -0.5
    assert s.local_minima_values[0] > s.minima_values[0]
    plain = descend(s, lr=0.01, momentum=0.0, steps=3000)
    heavy = descend(s, lr=0.01, momentum=0.9, steps=3000)
    assert np.all(np.linalg.norm(plain - shallow, axis=1) < 1e-3)
    assert np.all(np.linalg.norm(heavy - deep, axis=1) < 1e-3)


@pytest.mark.parametrize(
    ("name", "lr", "steps"),
    [("himmelblau", 0.01, 3000), ("styblinski-tang", 0.01, 3000), ("goldstein-price", 2e-5, 20000)],
)
def test_each_start_ends_in_a_different_minimum(name: str, lr: float, steps: int) -> None:
    s = surfaces.get(name)
    ends = descend(s, lr=lr, momentum=0.0, steps=steps)
    targets = np.concatenate([s.minima, s.local_minima])
    nearest = [int(np.argmin(np.linalg.norm(targets - e, axis=1))) for e in ends]
    assert sorted(nearest) == list(range(len(targets)))
    assert np.all(np.linalg.norm(targets[nearest] - ends, axis=1) < 1e-3)


def test_saddle_start_on_the_ridge_stalls_and_the_one_beside_it_escapes() -> None:
    s = surfaces.get("saddle")
    ends = descend(s, lr=0.01, momentum=0.0, steps=2000)
    assert np.linalg.norm(ends[0]) < 1e-6  # stuck at the saddle point
    assert abs(ends[1, 1]) > 10  # slid off down the y direction


# ----------------------------------------------------------------------------------------------
# Custom formulas


def test_from_formula_builds_a_surface() -> None:
    s = surfaces.from_formula("x^2 + 3*y^2 - x*y", box=((-1, 2), (-2, 1)), minima=[(0, 0)])
    assert s.name == "custom" and s.formula == "x^2 + 3*y^2 - x*y"
    assert s.box == ((-1.0, 2.0), (-2.0, 1.0))
    np.testing.assert_array_equal(s.minima_values, [0.0])
    assert s.starts.shape == (1, 2)
    (x0, x1), (y0, y1) = s.box
    assert x0 <= s.starts[0, 0] <= x1 and y0 <= s.starts[0, 1] <= y1
    pts = random_points(s, 10)
    np.testing.assert_allclose(
        s.gradient(pts), np.column_stack([2 * pts[:, 0] - pts[:, 1], 6 * pts[:, 1] - pts[:, 0]])
    )
    assert not s.log_scale


def test_from_formula_metadata() -> None:
    s = surfaces.from_formula(
        "exp(x^2 + y^2)",
        name="steep",
        title="Steep",
        story="grows fast",
        starts=[(1, 1), (-1, 0)],
        local_minima=[(0, 0)],
        box=((-4, 4), (-4, 4)),
    )
    assert (s.name, s.title, s.story) == ("steep", "Steep", "grows fast")
    assert s.starts.shape == (2, 2)
    np.testing.assert_array_equal(s.local_minima_values, [1.0])
    assert s.log_scale  # e^32 at the corners: the automatic rule applies


def test_from_formula_reports_formula_errors_with_columns() -> None:
    with pytest.raises(FormulaError, match="unknown name 'z' at column 5") as info:
        surfaces.from_formula("x + z")
    assert info.value.column == 5


@pytest.mark.parametrize(
    ("text", "box"),
    [
        ("log(x - 10)", ((-3, 3), (-3, 3))),
        ("sqrt(-1 - x^2 - y^2)", ((-3, 3), (-3, 3))),
        ("exp(exp(x + 10))", ((-3, 3), (-3, 3))),
        ("log(x) + log(-x)", ((-3, 3), (-3, 3))),
    ],
)
def test_from_formula_refuses_a_formula_not_finite_in_its_box(text: str, box: tuple) -> None:
    with pytest.raises(FormulaError, match=r"finite at only 0\.0% of the box"):
        surfaces.from_formula(text, box=box)


def test_from_formula_accepts_a_formula_finite_on_part_of_the_box() -> None:
    s = surfaces.from_formula("-sqrt(1 - x^2 - y^2)")  # a bowl on the unit disc only
    assert np.isfinite(s.value(s.starts)).all()
    assert np.isnan(s.value(np.array([[2.0, 2.0]])))[0]


def test_from_formula_rejects_unknown_metadata_and_bad_boxes() -> None:
    with pytest.raises(ValueError, match=r"unknown argument.*colour"):
        surfaces.from_formula("x", colour="red")
    with pytest.raises(ValueError, match="box must be"):
        surfaces.from_formula("x", box=((0, 0), (0, 1)))
    with pytest.raises(ValueError, match="minima_values has 2 entries for 1 minima"):
        surfaces.from_formula("x^2", minima=[(0, 0)], minima_values=[0, 1])


# ----------------------------------------------------------------------------------------------
# Pure 1-D functions


def test_one_d_is_read_off_the_formula() -> None:
    assert [n for n in surfaces.names() if surfaces.get(n).one_d] == ONE_D_IDS
    assert surfaces.from_formula("sin(3*x) + x^2").one_d
    assert not surfaces.from_formula("x + 0*y + y^2").one_d
    assert not surfaces.from_formula("y^2").one_d  # f(y): not a curve in x
    assert not surfaces.from_formula("3").one_d  # a constant has nothing to show
    assert not surfaces.get("ravine", kappa=5.0).one_d


@pytest.mark.parametrize("name", ONE_D_IDS)
def test_one_d_functions_have_the_derivatives_of_f_of_x(name: str) -> None:
    s = surfaces.get(name)
    x = np.linspace(*s.box[0], 41)
    pts = np.column_stack([x, np.zeros_like(x)])
    h = 1e-5
    dx = np.array([h, 0.0])
    up, down = pts + dx, pts - dx
    # f' and f'' by central differences of f(x), and nothing at all along y.
    np.testing.assert_allclose(
        s.gradient(pts)[:, 0], (s.value(up) - s.value(down)) / (2 * h), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        s.hessian(pts)[:, 0, 0],
        (s.gradient(up)[:, 0] - s.gradient(down)[:, 0]) / (2 * h),
        rtol=1e-6,
        atol=1e-5,
    )
    assert np.all(s.gradient(pts)[:, 1] == 0)
    assert np.all(s.hessian(pts)[:, 1, :] == 0) and np.all(s.hessian(pts)[:, :, 1] == 0)
    shifted = pts + np.array([0.0, 0.37])
    np.testing.assert_array_equal(s.value(shifted), s.value(pts))
    assert np.all(s.starts[:, 1] == 0) and np.all(s.minima[:, 1] == 0)


@pytest.mark.parametrize("name", ONE_D_IDS)
@pytest.mark.parametrize(
    "params", [{"lr": 0.05}, {"lr": 0.02, "momentum": 0.9}, {"lr": 0.1, "betas": (0.9, 0.99)}]
)
def test_balls_on_a_one_d_function_stay_on_y_0(name: str, params: dict) -> None:
    s = surfaces.get(name)
    optimizer = "adam" if "betas" in params else "sgd"
    runs = [RunSpec(f"r{k}", optimizer, params, tuple(p)) for k, p in enumerate(s.starts)]
    sim = Simulation(s, runs)
    sim.step(200)
    for k in range(len(runs)):
        positions = sim.history(k).positions
        assert np.all(positions[:, 1] == 0)
        assert np.ptp(positions[:, 0]) > 0.1  # it did move, along x


def test_gradient_noise_on_a_one_d_function_stays_on_x() -> None:
    s = surfaces.get("1d-parabola")
    sim = Simulation(s, [RunSpec("noisy", "sgd", {"lr": 0.05}, (-1.6, 0.0), noise=2.0)])
    sim.step(100)
    positions = sim.history(0).positions
    assert np.all(positions[:, 1] == 0)
    steps_x = np.diff(positions[:, 0])
    # Noise-free GD would shrink x by exactly (1 - 2 lr) every step; the noise breaks that.
    assert not np.allclose(steps_x[1:] / steps_x[:-1], 0.9)


def test_a_typed_formula_in_x_only_starts_on_y_0() -> None:
    s = surfaces.from_formula("(x - 1)^2", box=((-3.0, 3.0), (-2.0, 2.0)))
    assert s.one_d and s.starts[0, 1] == 0.0 and s.starts[0, 0] == pytest.approx(1.8)
    assert surfaces.from_formula("x^2", box=((-1.0, 1.0), (1.0, 3.0))).starts[0, 1] == 2.0


def test_one_d_double_well_stories() -> None:
    s = surfaces.get("1d-double-well")
    gd = RunSpec("gd", "sgd", {"lr": 0.02}, (1.8, 0.0))
    heavy = RunSpec("momentum", "sgd", {"lr": 0.02, "momentum": 0.9}, (1.8, 0.0))
    sim = Simulation(s, [gd, heavy])
    sim.step(400)
    np.testing.assert_allclose(sim.history(0).positions[-1], s.local_minima[0], atol=1e-6)
    np.testing.assert_allclose(sim.history(1).positions[-1], s.minima[0], atol=1e-4)


def test_one_d_narrow_well_a_high_lr_jumps_over_it() -> None:
    s = surfaces.get("1d-narrow-well")
    start = tuple(s.starts[0])
    sim = Simulation(
        s, [RunSpec("small", "sgd", {"lr": 0.05}, start), RunSpec("big", "sgd", {"lr": 0.3}, start)]
    )
    sim.step(400)
    np.testing.assert_allclose(sim.history(0).positions[-1], s.minima[0], atol=1e-6)
    np.testing.assert_allclose(sim.history(1).positions[-1], s.local_minima[0], atol=1e-3)
