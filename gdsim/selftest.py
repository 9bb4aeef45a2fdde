"""`gdsim --selftest`: does this installation really draw? Checked by pixels, not by imports.

A bundle can "start" and still show nothing: a missing Qt plugin, no fonts (every label an
empty box), package data left out, PyOpenGL speaking EGL to a GLX context. So the self-test
builds the real main window on the default scenario, steps it, renders each view and looks at
the pixels (not blank, not one colour, the runs' colours present, axis-label glyphs drawn),
then runs a tiny headless `gdsim run` and writes a figure the way `gdsim render` does.

Where there is no OpenGL (no display, or a platform without it) the 3-D view is reported as not
checked and the rest is still checked, unless ``--require-gl`` makes that a failure.

It leaves nothing behind: QSettings point at a temporary folder under their own organization
(the person's settings are never read or written), and the window, its engine process and the
sweep panel's thread are shut down before it returns.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

SETTINGS_ORG = "gdsim-selftest"
STEPS = 50
NO_GL_LINE = "OpenGL not available: 3-D view not checked"


class CheckFailed(Exception):
    """One check saw something wrong; its message says what."""


class _Report:
    def __init__(self, out) -> None:
        self.out = out
        self.failures: list[str] = []

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def check(self, name: str, fn: Callable[[], str | None]) -> Any:
        try:
            detail = fn()
        except CheckFailed as e:
            self.failures.append(f"{name}: {e}")
            self.line(f"FAIL {name}: {e}")
            return False
        except Exception as e:  # a crash inside a check is a failure with its reason, not a hang
            self.failures.append(f"{name}: {type(e).__name__}: {e}")
            self.line(f"FAIL {name}: {type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stderr)
            return False
        self.line(f"ok   {name}" + (f" ({detail})" if detail else ""))
        return True


# ----------------------------------------------------------------------------- platform
def _choose_platform() -> None:
    """Without a display, Qt's offscreen platform (which has no OpenGL: the 3-D view is then
    not checked). Never offscreen with DISPLAY set unless told to: that combination crashes in
    GL (shared/reference/platform-notes.md), so its GLX probing is switched off."""
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if (
        not os.environ.get("QT_QPA_PLATFORM")
        and not has_display
        and sys.platform.startswith("linux")
    ):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        os.environ.setdefault("QT_QPA_OFFSCREEN_NO_GLX", "1")
    # Figures are drawn by matplotlib's Agg, never through a Qt backend.
    os.environ.setdefault("MPLBACKEND", "Agg")


def _opengl_available() -> tuple[bool, str]:
    """Can this platform make an OpenGL context current? (The offscreen platform cannot.)"""
    from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext

    platform = QGuiApplication.platformName()
    if platform in ("offscreen", "minimal", "vnc", "linuxfb"):
        return False, f"the '{platform}' Qt platform has no OpenGL"
    context = QOpenGLContext()
    if not context.create():
        return False, f"no OpenGL context on the '{platform}' platform"
    surface = QOffscreenSurface()
    surface.setFormat(context.format())
    surface.create()
    try:
        if not context.makeCurrent(surface):
            return False, "an OpenGL context could not be made current"
        fmt = context.format()
        major, minor = fmt.majorVersion(), fmt.minorVersion()
        context.doneCurrent()
    finally:
        surface.destroy()
    if (major, minor) < (2, 1):  # e.g. Windows' own software GL 1.1: pyqtgraph needs shaders
        return False, f"OpenGL {major}.{minor} is too old (the 3-D view needs 2.1)"
    return True, f"OpenGL {major}.{minor}"


def _wait(app, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


# ----------------------------------------------------------------------------- pixels
def _rgb(image) -> Any:
    """(h, w, 3) int array of a QImage."""
    import numpy as np
    from PySide6.QtGui import QImage

    if image.isNull() or image.width() == 0 or image.height() == 0:
        raise CheckFailed("the image is empty (null)")
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    w, h = image.width(), image.height()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return buf.reshape(h, image.bytesPerLine() // 4, 4)[:, :w, :3][:, :, ::-1].astype(int)


def _not_blank(rgb, min_colors: int = 32) -> str:
    import numpy as np

    flat = rgb.reshape(-1, 3)
    colors = len(np.unique(flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]))
    spread = float(flat.std(axis=0).max())
    if colors < min_colors or spread < 4.0:
        raise CheckFailed(f"looks blank: {colors} distinct colours, spread {spread:.1f}")
    return f"{rgb.shape[1]}x{rgb.shape[0]}, {colors} colours"


def _has_colors(
    rgb,
    colors: list[str],
    min_pixels: int = 6,
    tolerance: float = 60.0,
    at_least: int | None = None,
) -> str:
    """The runs' colours appear (trails and balls are drawn in them, antialiased).

    `at_least`: how many must appear, when runs may hide each other (balls that start at one
    point share their first steps: the last drawn covers the others)."""
    import numpy as np
    from PySide6.QtGui import QColor

    flat = rgb.reshape(-1, 3)
    missing = []
    for hex_color in colors:
        c = QColor(hex_color)
        target = np.array([c.red(), c.green(), c.blue()])
        near = int((np.abs(flat - target).sum(axis=1) <= tolerance).sum())
        if near < min_pixels:
            missing.append(f"{hex_color} ({near} px)")
    needed = len(colors) if at_least is None else min(at_least, len(colors))
    if len(colors) - len(missing) < needed:
        raise CheckFailed("run colours not drawn: " + ", ".join(missing))
    return f"{len(colors) - len(missing)} of {len(colors)} run colours drawn"


def _glyphs_drawn(rgb, rect, what: str) -> None:
    """An axis strip with tick labels holds glyphs: light and dark pixels, some of each.

    Without fonts (no fontconfig configuration, no font files) Qt draws nothing or empty boxes;
    a strip of background then has no contrast at all.
    """
    import numpy as np

    x0, y0, x1, y1 = rect
    h, w = rgb.shape[:2]
    x0, x1 = max(0, x0), min(w, x1)
    y0, y1 = max(0, y0), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise CheckFailed(f"{what}: the axis strip is empty ({x1 - x0}x{y1 - y0} px)")
    region = rgb[y0:y1, x0:x1].mean(axis=2)
    background = float(np.median(region))
    ink = np.abs(region - background) > 60
    share = float(ink.mean())
    if not 0.005 <= share <= 0.6:
        raise CheckFailed(f"{what}: no text drawn ({share:.1%} of the strip differs)")
    # Glyphs are small shapes: ink in several separate columns, not one line or one block.
    columns = ink.any(axis=0)
    runs = int(np.count_nonzero(np.diff(columns.astype(int)) == 1)) + int(columns[0])
    rows = ink.any(axis=1)
    row_runs = int(np.count_nonzero(np.diff(rows.astype(int)) == 1)) + int(rows[0])
    if max(runs, row_runs) < 3:
        raise CheckFailed(f"{what}: no glyph-like marks in the axis strip")


def _axis_rect(plot, name: str, ratio: float) -> tuple[int, int, int, int]:
    """The pixel rectangle (in a grab of `plot`) of the axis `name`, tick labels included."""
    rect = plot.mapFromScene(plot.getAxis(name).sceneBoundingRect()).boundingRect()
    return (
        int(rect.left() * ratio),
        int(rect.top() * ratio),
        int((rect.right() + 1) * ratio),
        int((rect.bottom() + 1) * ratio),
    )


def _check_plot(plot, colors: list[str], what: str, at_least: int | None = None) -> str:
    rgb = _rgb(plot.grab().toImage())
    detail = _not_blank(rgb)
    drawn = _has_colors(rgb, colors, at_least=at_least)
    ratio = plot.devicePixelRatioF()
    _glyphs_drawn(rgb, _axis_rect(plot, "left", ratio), f"{what} left axis")
    _glyphs_drawn(rgb, _axis_rect(plot, "bottom", ratio), f"{what} bottom axis")
    return f"{detail}, {drawn}, axis labels drawn"


# ----------------------------------------------------------------------------- the test
def _window_checks(report: _Report, app, require_gl: bool) -> None:
    from gdsim.ui.main_window import MainWindow

    gl_ok, gl_detail = _opengl_available()
    report.line(f"Qt platform: {app.platformName()}; " + (gl_detail if gl_ok else "no OpenGL"))
    if not gl_ok:
        if require_gl:
            report.failures.append(f"OpenGL required but not available: {gl_detail}")
            report.line(f"FAIL OpenGL required (--require-gl) but not available: {gl_detail}")
            return
        report.line(f"{NO_GL_LINE} ({gl_detail})")

    window = MainWindow()
    try:
        state: dict[str, Any] = {}

        def build() -> str:
            window.open_initial(None)
            window.resize(1280, 860)
            window.show()
            _wait(app, lambda: window.packet is not None, 20, "the first frame")
            _wait(app, lambda: window._drawn_packet is window.packet, 20, "the first redraw")
            state["colors"] = [r.color or "#888888" for r in window.doc.runs]
            return f"{window.doc.surface.name}, {len(window.doc.runs)} runs"

        if not report.check("window opens on the default scenario", build):
            return

        def step() -> str:
            window.worker.post("step", STEPS)
            _wait(
                app,
                lambda: window.packet is not None and int(window.packet.frame.step.max()) >= STEPS,
                30,
                f"{STEPS} steps",
            )
            _wait(app, lambda: window._drawn_packet is window.packet, 20, "the redraw")
            app.processEvents()
            return f"step {int(window.packet.frame.step.max())}"

        if not report.check(f"{STEPS} steps of the engine process", step):
            return
        colors = state["colors"]
        report.check(
            "contour view", lambda: _check_plot(window.contour, colors, "contour", at_least=2)
        )
        report.check("loss plot", lambda: _check_plot(window.loss_plot, colors, "loss plot"))
        if gl_ok:

            def view3d() -> str:
                image = window.view3d.render_image(640, 480)
                return _not_blank(_rgb(image), min_colors=64)

            report.check("3-D view", view3d)
    finally:
        window.doc.undo_stack.setClean()  # never the unsaved-changes question
        window.close()
        window.sweep_panel.shutdown()
        stopped = window.worker.shutdown()
        window.deleteLater()
        app.processEvents()
        if not stopped:
            report.failures.append("the simulation thread did not stop")
            report.line("FAIL the simulation thread did not stop")


def _headless_checks(report: _Report, folder: Path) -> None:
    def run() -> str:
        import contextlib
        import io

        from gdsim.cli import main as cli_main

        out = folder / "trajectories.csv"
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = cli_main(["run", "default", "--steps", "20", "--quiet", "--out", str(out)])
        if status != 0:
            raise CheckFailed(f"gdsim run exited {status}")
        rows = out.read_text().splitlines()
        if len(rows) < 2:
            raise CheckFailed("gdsim run wrote no trajectories")
        return f"{len(rows) - 1} rows"

    report.check("gdsim run (headless)", run)

    def figure() -> str:
        from PySide6.QtGui import QImage

        from gdsim.export.figures import run_colors, write_figure
        from gdsim.scenario import Scenario, shipped_path

        scenario = Scenario.load(shipped_path("default"))
        scenario.steps = 40
        sim = scenario.to_simulation()
        sim.step(scenario.steps)
        path = folder / "figure.png"
        write_figure(path, sim, scenario, size=(800, 500))
        rgb = _rgb(QImage(str(path)))
        detail = _not_blank(rgb)
        return f"{detail}, {_has_colors(rgb, run_colors(sim.runs), at_least=2)}"

    report.check("figure (gdsim render)", figure)


def main(require_gl: bool = False, out=None) -> int:
    """Run every check; print one line each; 0 when all passed, 1 otherwise."""
    out = sys.stdout if out is None else out
    report = _Report(out)
    _choose_platform()
    os.environ["GDSIM_SETTINGS_ORG"] = SETTINGS_ORG
    from gdsim import __version__

    report.line(f"gdsim {__version__} self-test ({sys.platform}, Python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory(prefix="gdsim-selftest-") as tmp:
        folder = Path(tmp)
        try:
            from PySide6.QtCore import QSettings

            # Settings go to a throw-away folder: the person's own are never read or written.
            for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
                QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder / "settings"))
                QSettings.setPath(fmt, QSettings.Scope.SystemScope, str(folder / "settings"))
            from gdsim.ui.app import ensure_app

            app = ensure_app([sys.argv[0] if sys.argv else "gdsim", "--selftest"])
        except Exception as e:
            report.failures.append(f"Qt cannot start: {type(e).__name__}: {e}")
            report.line(f"FAIL Qt cannot start: {type(e).__name__}: {e}")
        else:
            try:
                _window_checks(report, app, require_gl)
            except Exception as e:
                report.failures.append(f"window: {type(e).__name__}: {e}")
                report.line(f"FAIL window: {type(e).__name__}: {e}")
                traceback.print_exc(file=sys.stderr)
        _headless_checks(report, folder)
    if report.failures:
        report.line(f"self-test FAILED ({len(report.failures)}):")
        for failure in report.failures:
            report.line(f"  - {failure}")
        return 1
    report.line("self-test passed")
    return 0
