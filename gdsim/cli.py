"""The `gdsim` command: the window by default, headless subcommands otherwise.

    gdsim [SCENARIO]             open the desktop window (on SCENARIO, a file or a shipped name)
    gdsim run [SCENARIO] ...     run headless, print a summary, optionally write trajectories
    gdsim sweep SCENARIO ...     a grid of two hyperparameters of one run -> outcome map
    gdsim render SCENARIO ...    run headless and write a figure or an animation
    gdsim list [WHAT]            surfaces, optimizers, schedules, scenarios

Why the shape: bad input gets one clear line on stderr and exit status 2, never a traceback
(a person typed it, they need to know what to fix); a run that diverges is a result, exit 0.
Heavy modules (NumPy, SymPy, Qt) are imported only by the command that needs them, so
``gdsim --version`` and ``gdsim --help`` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import re
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from gdsim import __version__

if TYPE_CHECKING:
    from gdsim.engine.simulation import Simulation
    from gdsim.scenario import Scenario

__all__ = ["main"]

_COMMANDS = ("run", "sweep", "render", "list")
_SWEEP_METRICS = ("final_loss", "steps_to_tol", "diverged")
_LIST_WHAT = ("surfaces", "optimizers", "schedules", "scenarios")


class UsageError(Exception):
    """Bad input from the person at the keyboard: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so main() owns the output."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _top_parser() -> _Parser:
    parser = _Parser(
        prog="gdsim",
        description="Gradient descent, made visible. Without a command, opens the window.",
        epilog=(
            "commands:\n"
            "  gdsim run [SCENARIO] ...   run headless and write trajectories (gdsim run --help)\n"
            "  gdsim sweep SCENARIO ...   map a run's outcome over two hyperparameters\n"
            "  gdsim render SCENARIO ...  write a figure (png, svg, pdf) or animation (gif, mp4)\n"
            "  gdsim list [WHAT]          list surfaces, optimizers, schedules or scenarios\n"
            "\nSCENARIO is a .json file or the name of a shipped scenario (gdsim list scenarios)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gdsim {__version__}")
    parser.add_argument(
        "--selftest",
        action="store_true",
        help="check that the window draws (each view's pixels), a headless run and a figure;"
        " exit 0 if all is well",
    )
    parser.add_argument(
        "--require-gl",
        action="store_true",
        help="with --selftest: fail when OpenGL is not available (instead of skipping 3-D)",
    )
    parser.add_argument(
        "scenario", nargs="?", help="scenario to open (a .json file or a shipped scenario name)"
    )
    return parser


def _run_parser() -> _Parser:
    p = _Parser(
        prog="gdsim run",
        description=(
            "Run a scenario without a window: print a summary and, with --out, write every "
            "ball's trajectory (CSV: run,step,x,y,loss,grad_x,grad_y,lr,status,label; or JSON)."
        ),
        epilog=(
            "examples:\n"
            "  gdsim run default --out race.csv\n"
            "  gdsim run my.json --steps 2000 --out runs.json\n"
            "  gdsim run --surface booth --optimizer sgd --param lr=0.01 --param momentum=0.9 \\\n"
            "            --start 1,2 --steps 100 --out t.csv\n"
            "\n--param values are numbers, true/false, or pairs like betas=0.9,0.999.\n"
            "Exit status: 0 when the run completed (divergence is a result), 2 for bad input."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", nargs="?", help="a .json file or a shipped scenario name")
    p.add_argument("--out", metavar="FILE", help="write trajectories to FILE (.csv or .json)")
    p.add_argument("--steps", type=_int_arg("--steps"), help="steps to run (default: scenario's)")
    p.add_argument("--seed", type=_int_arg("--seed"), help="random seed (default: scenario's)")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary table")
    quick = p.add_argument_group("quick form (instead of a scenario file)")
    quick.add_argument("--surface", metavar="NAME", help="built-in surface (gdsim list surfaces)")
    quick.add_argument("--formula", metavar="F", help="custom surface f(x, y), e.g. 'x^2 + 10*y^2'")
    quick.add_argument("--box", metavar="X0,X1,Y0,Y1", help="view box of the surface")
    quick.add_argument(
        "--surface-param", metavar="K=V", action="append", default=[], help="surface parameter"
    )
    quick.add_argument("--optimizer", metavar="NAME", help="optimizer (gdsim list optimizers)")
    quick.add_argument(
        "--param", metavar="K=V", action="append", default=[], help="optimizer hyperparameter"
    )
    quick.add_argument(
        "--start",
        metavar="X,Y",
        action="append",
        default=[],
        help="start point; repeat for several balls (default: the surface's first start)",
    )
    quick.add_argument("--schedule", metavar="NAME", help="learning-rate schedule")
    quick.add_argument(
        "--schedule-param", metavar="K=V", action="append", default=[], help="schedule parameter"
    )
    quick.add_argument("--noise", metavar="STD", help="Gaussian gradient noise (std)")
    quick.add_argument(
        "--batch-size",
        metavar="K",
        help="mini-batch size on a surface with data (nn-...); default: the full batch",
    )
    quick.add_argument("--label", help="name of the ball in the output")
    stop = p.add_argument_group("stop rules (a run meeting one is marked converged)")
    stop.add_argument("--grad-tol", metavar="TOL", help="stop when |gradient| <= TOL")
    stop.add_argument("--loss-tol", metavar="TOL", help="stop when a step changes f by <= TOL")
    stop.add_argument("--max-steps", metavar="N", help="stop a run after N steps")
    return p


def _sweep_parser() -> _Parser:
    p = _Parser(
        prog="gdsim sweep",
        description=(
            "Run one run of a scenario at every setting of a grid of two hyperparameters, all "
            "at once, and write the outcome map: a heat map (.png, .svg, .pdf) of one metric, "
            "or every cell's numbers (.csv: x,y,final_loss,steps_to_tol,diverged,diverged_at)."
        ),
        epilog=(
            "examples:\n"
            "  gdsim sweep ravine-momentum --run 1 --x lr=1e-3:1:log:100 \\\n"
            "              --y momentum=0:0.99:100 --metric steps_to_tol --out map.png\n"
            "  gdsim sweep my.json --x lr=1e-4:1:log:50 --y beta1=0:0.99:50 --out cells.csv\n"
            "\nAn axis is NAME=LOW:HIGH:COUNT (linear) or NAME=LOW:HIGH:log:COUNT; NAME is one of\n"
            "the run's optimizer's numeric hyperparameters (beta1/beta2 for betas).\n"
            "steps_to_tol counts steps until f - f* < TOL (|grad f| < TOL where the surface has\n"
            "no known minimum). Every cell sees the run's schedule and the run's noise stream.\n"
            "Exit status: 0 when the map was written, 2 for bad input."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", help="a .json file or a shipped scenario name")
    p.add_argument(
        "--run", type=_int_arg("--run"), default=0, metavar="N", help="which run (default 0)"
    )
    p.add_argument("--x", required=True, metavar="AXIS", help="x axis, e.g. lr=1e-4:1:log:100")
    p.add_argument("--y", required=True, metavar="AXIS", help="y axis, e.g. momentum=0:0.99:100")
    p.add_argument(
        "--metric",
        choices=_SWEEP_METRICS,
        default="final_loss",
        help="what the image shows (default final_loss; a CSV holds them all)",
    )
    p.add_argument("--tol", metavar="T", help="tolerance of steps_to_tol (default 1e-6)")
    p.add_argument("--steps", type=_int_arg("--steps"), help="steps per cell (default: scenario's)")
    p.add_argument("--out", required=True, metavar="FILE", help="map.png|.svg|.pdf or cells.csv")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    return p


_RENDER_VIEWS = ("grid", "contour", "3d", "loss")  # gdsim.export.figures.VIEWS, import-free


def _render_parser() -> _Parser:
    p = _Parser(
        prog="gdsim render",
        description=(
            "Run a scenario without a window and draw it: a figure (.png, .svg, .pdf; vector "
            "where the format allows) or an animation of the balls rolling (.gif, .mp4). "
            "Needs no display."
        ),
        epilog=(
            "examples:\n"
            "  gdsim render default --out race.png\n"
            "  gdsim render rosenbrock-adam-family --view contour --size 1600x1200 --out f.pdf\n"
            "  gdsim render ravine-momentum --view 3d --theme dark --title '' --out ravine.svg\n"
            "  gdsim render default --out race.gif --fps 20 --duration 5\n"
            "  gdsim render lr-too-high --view grid --size 1920x640 --out lr.mp4\n"
            "\nThe file type comes from the extension. --fps and --duration are for .gif/.mp4:\n"
            "fps x duration frames sample the whole run evenly. A progress bar is shown on a\n"
            "terminal (or with --progress); Ctrl+C stops and leaves no partial file.\n"
            "Exit status: 0 when the file was written, 2 for bad input or an unwritable file."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", help="a .json file or a shipped scenario name")
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.png|.svg|.pdf|.gif|.mp4")
    p.add_argument("--view", choices=_RENDER_VIEWS, default="grid", help="what to draw (grid)")
    p.add_argument("--size", metavar="WxH", help="size in pixels (default depends on the view)")
    p.add_argument("--dpi", metavar="N", help="dots per inch: sets text size (default: fits size)")
    p.add_argument("--theme", choices=("light", "dark"), default="light", help="colours (light)")
    p.add_argument("--title", help="figure title (default: the scenario's; '' for none)")
    p.add_argument("--steps", type=_int_arg("--steps"), help="steps (default: the scenario's)")
    p.add_argument("--seed", type=_int_arg("--seed"), help="random seed (default: the scenario's)")
    p.add_argument("--fps", metavar="N", help="animation frames per second (default 25)")
    p.add_argument("--duration", metavar="S", help="animation length in seconds (default 4)")
    p.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a terminal"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    return p


def _list_parser() -> _Parser:
    p = _Parser(prog="gdsim list", description="List what gdsim knows, with one line each.")
    p.add_argument("what", nargs="?", choices=_LIST_WHAT, help="what to list (default: all)")
    return p


def _int_arg(flag: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
        return value

    parse.__name__ = flag
    return parse


# ------------------------------------------------------------------------------- values
def parse_value(text: str) -> Any:
    """A command-line value: ``true``/``false``, a number, a pair ``a,b``; else the text."""
    t = text.strip()
    if t.lower() in ("true", "yes", "on"):
        return True
    if t.lower() in ("false", "no", "off"):
        return False
    if "," in t:
        return [parse_value(part) for part in t.split(",")]
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return text


def _pairs(items: list[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"gdsim run: {flag}: expected NAME=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def _numbers(text: str, count: int, flag: str) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count:
        shape = "X,Y" if count == 2 else "X0,X1,Y0,Y1"
        raise UsageError(f"gdsim run: {flag}: expected {count} numbers like {shape}, got {text!r}")
    return values


# ------------------------------------------------------------------------------- scenarios
def _resolve(name: str) -> str:
    """A scenario argument as a path: an existing file, else a shipped scenario's name."""
    if os.path.exists(name):
        return name
    from gdsim.scenario import shipped, shipped_path

    stem = name[:-5] if name.endswith(".json") else name
    if os.sep not in name and "/" not in name:
        path = shipped_path(stem)
        if path is not None:
            return path
    names = ", ".join(s.name for s in shipped())
    raise UsageError(f"gdsim: no scenario file {name!r} (and no shipped scenario: {names})")


def _load(name: str) -> Scenario:
    from gdsim.scenario import Scenario, ScenarioError

    path = _resolve(name)
    try:
        return Scenario.load(path)
    except ScenarioError as e:
        raise UsageError(f"gdsim: {e}") from None


_FLAG_FOR = (
    (r"runs\[\d+\]\.params\.(\w+)", "--param {0}"),
    (r"runs\[\d+\]\.params", "--param"),
    (r"runs\[\d+\]\.schedule\.name", "--schedule"),
    (r"runs\[\d+\]\.schedule\.(\w+)", "--schedule-param {0}"),
    (r"runs\[\d+\]\.schedule", "--schedule"),
    (r"runs\[\d+\]\.(start|noise|optimizer|label|batch_size)", "--{0}"),
    (r"surface\.params\.(\w+)", "--surface-param {0}"),
    (r"surface\.(name)", "--surface"),
    (r"surface\.(formula|box)", "--{0}"),
    (r"surface", "--surface"),
    (r"stop\.(\w+)", "--{0}"),
    (r"(steps|seed)", "--{0}"),
)


def _flag(field: str | None) -> str | None:
    """The command-line flag that set a scenario field, for the quick form's messages."""
    if field is None:
        return None
    for pattern, flag in _FLAG_FOR:
        m = re.fullmatch(pattern + r"(?:\[\d+\])*", field)
        if m:
            # option names use dashes (--grad-tol); parameter names stay torch's (weight_decay)
            groups = (
                [g.replace("_", "-") for g in m.groups()] if flag.startswith("--{") else m.groups()
            )
            return flag.format(*groups)
    return field


def _quick_scenario(args: argparse.Namespace) -> Scenario:
    from gdsim.scenario import Scenario, ScenarioError

    if args.surface is None and args.formula is None:
        raise UsageError(
            "gdsim run: give a SCENARIO file, or --surface NAME (or --formula F) with --optimizer"
        )
    if args.optimizer is None:
        raise UsageError("gdsim run: --optimizer is required in the quick form")
    surface: dict[str, Any] = {}
    if args.surface is not None:
        surface["name"] = args.surface
    if args.formula is not None:
        surface["formula"] = args.formula
    if args.surface_param:
        surface["params"] = _pairs(args.surface_param, "--surface-param")
    if args.box is not None:
        b = _numbers(args.box, 4, "--box")
        surface["box"] = [b[:2], b[2:]]
    run: dict[str, Any] = {"optimizer": args.optimizer, "params": _pairs(args.param, "--param")}
    if args.label is not None:
        run["label"] = args.label
    if args.schedule is not None:
        run["schedule"] = {"name": args.schedule, **_pairs(args.schedule_param, "--schedule-param")}
    elif args.schedule_param:
        raise UsageError("gdsim run: --schedule-param needs --schedule")
    if args.noise is not None:
        run["noise"] = parse_value(args.noise)
    if args.batch_size is not None:
        run["batch_size"] = parse_value(args.batch_size)
    starts = [_numbers(s, 2, "--start") for s in args.start]
    doc: dict[str, Any] = {"gdsim": 1, "surface": surface, "steps": 500, "runs": []}
    try:
        if not starts:
            base = Scenario.from_dict(doc)
            default = base.build_surface().starts
            if len(default) == 0:
                raise UsageError("gdsim run: --start X,Y is needed (this surface has no default)")
            starts = [[float(default[0][0]), float(default[0][1])]]
        doc["runs"] = [{**run, "start": s} for s in starts]
        if len(starts) > 1 and "label" in run:
            for k, r in enumerate(doc["runs"]):
                r["label"] = f"{run['label']} {k + 1}"
        return Scenario.from_dict(doc)
    except ScenarioError as e:
        flag = _flag(e.field)
        raise UsageError(f"gdsim run: {flag + ': ' if flag else ''}{e.reason}") from None


def _apply_overrides(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    from gdsim.scenario import MAX_STEPS, ScenarioError

    if args.steps is not None:
        if args.steps > MAX_STEPS:
            raise UsageError(f"gdsim run: --steps: must be <= {MAX_STEPS}, got {args.steps}")
        scenario.steps = args.steps
    if args.seed is not None:
        scenario.seed = args.seed
    stop = {
        "grad_tol": args.grad_tol,
        "loss_tol": args.loss_tol,
        "max_steps": args.max_steps,
    }
    stop = {k: parse_value(v) for k, v in stop.items() if v is not None}
    if stop:
        doc = scenario.to_dict()
        doc["stop"] = {**doc.get("stop", {}), **stop}
        try:
            scenario = type(scenario).from_dict(doc)
        except ScenarioError as e:
            raise UsageError(f"gdsim run: {_flag(e.field)}: {e.reason}") from None
    return scenario


# ------------------------------------------------------------------------------- commands
def _cmd_window(args: argparse.Namespace) -> int:
    if args.selftest:
        selftest = importlib.import_module("gdsim.selftest")  # Qt only now, as for the window
        return int(selftest.main(require_gl=args.require_gl))
    if args.require_gl:
        raise UsageError("gdsim: --require-gl goes with --selftest (see 'gdsim --help')")
    path = None
    if args.scenario is not None:
        path = _resolve(args.scenario)
        _load(path)  # a broken file is reported here, in one line, before any window opens
    # The engine child starts up (NumPy, SymPy) while Qt is imported and the window is built.
    importlib.import_module("gdsim.ui.engine_process").prestart()
    try:
        app = importlib.import_module("gdsim.ui.app")  # Qt only now, never for headless commands
    except ImportError as e:
        print(
            f"gdsim: the desktop window cannot start: {e}. "
            "Headless commands still work: gdsim run --help",
            file=sys.stderr,
        )
        return 2
    result = app.main(path)
    return int(result or 0)


# Options whose values may start with "-" (--start -1.5,2, --formula "-x^2"): argparse would
# take such a value for an option, so they are glued to their flag before parsing.
_VALUE_MAY_BE_NEGATIVE = ("--start", "--box", "--formula", "--param", "--surface-param",
                          "--schedule-param", "--noise", "--grad-tol", "--loss-tol",
                          "--tol")  # fmt: skip


def _glue_values(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _VALUE_MAY_BE_NEGATIVE and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _cmd_run(argv: list[str]) -> int:
    args = _run_parser().parse_args(_glue_values(argv))
    quick = [
        f
        for f in (
            "surface",
            "formula",
            "box",
            "optimizer",
            "schedule",
            "noise",
            "batch_size",
            "label",
        )
        if getattr(args, f) is not None
    ]
    quick += [f for f in ("param", "start", "surface_param", "schedule_param") if getattr(args, f)]
    if args.scenario is not None:
        if quick:
            flag = "--" + quick[0].replace("_", "-")
            raise UsageError(f"gdsim run: {flag} cannot be combined with a scenario file")
        scenario = _load(args.scenario)
    else:
        scenario = _quick_scenario(args)
    scenario = _apply_overrides(scenario, args)

    out_format = None
    if args.out is not None:
        from gdsim.export.data import format_for

        try:
            out_format = format_for(args.out)
        except ValueError as e:
            raise UsageError(f"gdsim run: --out: {e}") from None
        folder = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(folder):
            raise UsageError(f"gdsim run: --out: folder {folder!r} does not exist")

    sim = scenario.to_simulation()
    sim.step(scenario.steps)

    if args.out is not None:
        from gdsim.export.data import write_trajectories

        try:
            rows = write_trajectories(args.out, sim, scenario)
        except OSError as e:
            reason = e.strerror or str(e)
            raise UsageError(f"gdsim run: cannot write {args.out!r}: {reason}") from None
    if not args.quiet:
        _print_summary(scenario, sim)
        if args.out is not None:
            print(f"wrote {args.out} ({out_format}, {sim.n_runs} runs, {rows} rows)")
    return 0


def _print_summary(scenario: Scenario, sim: Simulation) -> None:
    import math

    frame = sim.frame()
    surface = sim.surface
    where = surface.name if surface.name != "custom" else f"f(x, y) = {surface.formula}"
    if scenario.title:
        print(scenario.title)
    print(f"surface {where}, {scenario.steps} steps, seed {scenario.seed}")
    header = ("#", "label", "optimizer", "status", "steps", "x", "y", "loss", "|grad|")
    rows = []
    for i, spec in enumerate(sim.runs):
        status = frame.status[i].value
        if frame.stopped_at[i] >= 0:
            status += f" at {frame.stopped_at[i]}"
        g = frame.gradients[i]
        rows.append(
            (
                str(i),
                spec.label,
                spec.optimizer,
                status,
                str(frame.step[i]),
                f"{frame.positions[i, 0]:.6g}",
                f"{frame.positions[i, 1]:.6g}",
                f"{frame.losses[i]:.6g}",
                f"{math.hypot(g[0], g[1]):.3g}",
            )
        )
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    numeric = {0, 4, 5, 6, 7, 8}
    for r in [header, *rows]:
        cells = [
            c.rjust(w) if k in numeric else c.ljust(w)
            for k, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def _cmd_sweep(argv: list[str]) -> int:
    args = _sweep_parser().parse_args(_glue_values(argv))
    from gdsim.export import sweep_map

    try:
        out_format = sweep_map.format_for(args.out)
    except ValueError as e:
        raise UsageError(f"gdsim sweep: --out: {e}") from None
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise UsageError(f"gdsim sweep: --out: {folder!r} {what}")
    if out_format in sweep_map.IMAGE_FORMATS:
        try:
            importlib.import_module("matplotlib")
        except ImportError:
            raise UsageError(
                f"gdsim sweep: --out .{out_format} needs matplotlib (pip install matplotlib); "
                ".csv works without it"
            ) from None
    tol = None
    if args.tol is not None:
        tol = parse_value(args.tol)
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < float("inf"):
            raise UsageError(f"gdsim sweep: --tol: must be a number > 0, got {args.tol!r}")

    from gdsim.engine.sweep import DEFAULT_TOL, parse_axis, sweep
    from gdsim.scenario import MAX_STEPS

    axes = []
    for flag, text in (("--x", args.x), ("--y", args.y)):
        try:
            axes.append(parse_axis(text))
        except ValueError as e:
            raise UsageError(f"gdsim sweep: {flag}: {e}") from None
    scenario = _load(args.scenario)
    n_runs = len(scenario.runs)
    if args.run >= n_runs:
        have = f"runs 0..{n_runs - 1}" if n_runs else "no runs"
        raise UsageError(f"gdsim sweep: --run: no run {args.run}; the scenario has {have}")
    if args.steps is not None and args.steps > MAX_STEPS:
        raise UsageError(f"gdsim sweep: --steps: must be <= {MAX_STEPS}, got {args.steps}")
    steps = scenario.steps if args.steps is None else args.steps
    run = scenario.runs[args.run]
    surface = scenario.build_surface()
    try:
        result = sweep(
            surface,
            run.optimizer,
            run.params,
            run.start,
            axes[0],
            axes[1],
            steps=steps,
            schedule=run.schedule,
            noise=run.noise,
            batch_size=run.batch_size,
            seed=scenario.seed,
            stream=args.run,
            tol=DEFAULT_TOL if tol is None else float(tol),
        )
    except ValueError as e:
        raise UsageError(f"gdsim sweep: {e}") from None

    where = surface.title if surface.name != "custom" else f"f(x, y) = {surface.formula}"
    title = f"{where}: run {args.run} ({run.label}), {steps} steps"
    try:
        sweep_map.write(args.out, result, args.metric, title=title, run_label=run.label)
    except OSError as e:
        reason = e.strerror or str(e)
        raise UsageError(f"gdsim sweep: cannot write {args.out!r}: {reason}") from None
    if not args.quiet:
        ny, nx = result.shape
        reached = int((~result.diverged & (result.steps_to_tol < float("inf"))).sum())
        print(
            f"swept run {args.run} ({run.label}, {run.optimizer}) on {surface.name}: "
            f"{result.x.name} x {result.y.name} = {nx} x {ny} cells, {steps} steps"
        )
        print(
            f"diverged {int(result.diverged.sum())}, reached tol {result.tol:g} {reached}, "
            f"neither {nx * ny - int(result.diverged.sum()) - reached}"
        )
        shown = f"{out_format}, {args.metric}" if out_format != "csv" else "csv"
        print(f"wrote {args.out} ({shown})")
    return 0


class _ProgressBar:
    """``[#######.......]  40/100 frames  3.1 s`` on one stderr line, redrawn at most 10 Hz."""

    def __init__(self, stream: Any, what: str) -> None:
        import time

        self._clock = time.monotonic
        self.stream, self.what = stream, what
        self.start = self._clock()
        self.last = -1.0
        self.open = False

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        fill = width * done // max(total, 1)
        bar = "#" * fill + "." * (width - fill)
        digits = len(str(total))
        self.stream.write(
            f"\r{self.what} [{bar}] {done:>{digits}}/{total} frames  {now - self.start:.1f} s"
        )
        self.open = done < total
        if not self.open:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (after an interruption), so the next message starts clean."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _render_number(flag: str, text: str | None, low: float, high: float, integer: bool) -> Any:
    if text is None:
        return None
    value = parse_value(text)
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise UsageError(
            f"gdsim render: {flag}: must be {what} from {low:g} to {high:g}, got {text!r}"
        )
    return value


def _cmd_render(argv: list[str]) -> int:
    args = _render_parser().parse_args(argv)
    # Never a GUI backend, never Qt: this must work on a server with no display.
    os.environ["MPLBACKEND"] = "Agg"
    from gdsim.export import figures

    # Everything that can be wrong with the request is found before the (long) work starts.
    try:
        fmt = figures.format_for(args.out)
    except ValueError as e:
        raise UsageError(f"gdsim render: --out: {e}") from None
    animated = fmt in figures.ANIMATION_FORMATS
    if not animated:
        for flag in ("fps", "duration"):
            if getattr(args, flag) is not None:
                raise UsageError(f"gdsim render: --{flag} is for .gif and .mp4, not .{fmt}")
    size = figures.default_size(args.view, animated)
    if args.size is not None:
        try:
            size = figures.parse_size(args.size)
        except ValueError as e:
            raise UsageError(f"gdsim render: --size: {e}") from None
    dpi = _render_number("--dpi", args.dpi, 10, 2400, integer=False)
    fps = _render_number("--fps", args.fps, 1, 60, integer=True) or 25
    duration = _render_number("--duration", args.duration, 0.01, 3600, integer=False) or 4.0
    if animated:
        try:
            figures.check_animation(fmt, size, round(fps * duration))
        except ValueError as e:
            raise UsageError(f"gdsim render: {e}") from None
    _check_writable(args.out)

    scenario = _load(args.scenario)
    from gdsim.scenario import MAX_STEPS

    if args.steps is not None:
        if args.steps > MAX_STEPS:
            raise UsageError(f"gdsim render: --steps: must be <= {MAX_STEPS}, got {args.steps}")
        scenario.steps = args.steps
    if args.seed is not None:
        scenario.seed = args.seed
    sim = scenario.to_simulation()
    sim.step(scenario.steps)

    options = {"view": args.view, "size": size, "dpi": dpi, "theme": args.theme}
    bar = None
    if animated and (args.progress or sys.stderr.isatty()):
        bar = _ProgressBar(sys.stderr, f"rendering {os.path.basename(args.out)}")
    try:
        if animated:
            frames = figures.write_animation(
                args.out, sim, scenario, title=args.title, fps=fps, duration=duration,
                progress=bar, fmt=fmt, **options,
            )  # fmt: skip
            what = f"{fmt}, {size[0]}x{size[1]}, {args.view}, {frames} frames at {fps} fps"
        else:
            figures.write_figure(args.out, sim, scenario, title=args.title, fmt=fmt, **options)
            what = f"{fmt}, {size[0]}x{size[1]}, {args.view}"
    except OSError as e:
        raise UsageError(f"gdsim render: cannot write {args.out!r}: {e.strerror or e}") from None
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(f"wrote {args.out} ({what})")
    return 0


def _check_writable(path: str) -> None:
    """A folder that is missing, not a folder, or refuses a new file: said now, not after the
    rendering (a probe file is created and removed)."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise UsageError(f"gdsim render: --out: {folder!r} {what}")
    if os.path.isdir(path):
        raise UsageError(f"gdsim render: --out: {path!r} is a folder")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".gdsim-probe-"):
            pass
    except OSError as e:
        raise UsageError(f"gdsim render: cannot write {path!r}: {e.strerror or e}") from None


def _cmd_list(argv: list[str]) -> int:
    args = _list_parser().parse_args(argv)
    sections = [args.what] if args.what else list(_LIST_WHAT)
    for k, what in enumerate(sections):
        if len(sections) > 1:
            print(("\n" if k else "") + f"{what}:")
        rows = _listing(what)
        width = max((len(name) for name, _ in rows), default=0)
        for name, story in rows:
            print(f"  {name:<{width}}  {story}".rstrip())
    return 0


def _listing(what: str) -> list[tuple[str, str]]:
    if what == "optimizers":
        from gdsim.engine import optimizers

        return [(n, f"{i.display_name}: {i.idea}") for n, i in optimizers.CATALOGUE.items()]
    if what == "schedules":
        from gdsim.engine import schedules

        return [(n, f"{i.display_name}: {i.idea}") for n, i in schedules.CATALOGUE.items()]
    if what == "surfaces":
        from gdsim.engine import surfaces

        out = []
        for name in surfaces.names():
            s = surfaces.get(name)
            out.append((name, f"{s.title}: {s.story}" if s.story else s.title))
        return out
    from gdsim.scenario import shipped

    return [(s.name, s.title) for s in shipped()]


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gdsim`` command; returns the exit status."""
    # The window's engine runs in a spawned child process: in a frozen app that child starts
    # as this executable, and freeze_support makes it the engine (a no-op when not frozen).
    multiprocessing.freeze_support()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] == "run":
            return _cmd_run(argv[1:])
        if argv and argv[0] == "sweep":
            return _cmd_sweep(argv[1:])
        if argv and argv[0] == "render":
            return _cmd_render(argv[1:])
        if argv and argv[0] == "list":
            return _cmd_list(argv[1:])
        return _cmd_window(_top_parser().parse_args(argv))
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    except SystemExit as e:  # --help and --version print and exit 0 through argparse
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except KeyboardInterrupt:
        print("gdsim: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        # A valid but huge scenario (many balls x millions of steps of history): say so.
        command = argv[0] if argv and argv[0] in ("run", "sweep", "render") else "gdsim"
        print(
            f"gdsim {command}: not enough memory for this many balls and steps;"
            " use fewer steps (--steps) or fewer runs",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
