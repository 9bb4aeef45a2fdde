"""Session-wide Qt set-up for the suite.

GL views only draw under a real X server (Xvfb + xcb + Mesa): the offscreen platform has no
OpenGL (shared/reference/platform-notes.md). So with a DISPLAY we use xcb, without one offscreen,
and tests marked ``gl`` then skip, unless GDSIM_REQUIRE_GL=1 (as in .ci/test) makes that a failure.
"""

from __future__ import annotations

import os

import pytest

if os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    os.environ.setdefault("PYOPENGL_PLATFORM", "glx")
else:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_QPA_OFFSCREEN_NO_GLX", "1")
# Keep every test's QSettings away from the user's real settings.
os.environ.setdefault("GDSIM_SETTINGS_ORG", "gdsim-tests")

from hypothesis import settings
from PySide6.QtCore import QCoreApplication, Qt

# Property tests: in CI the examples are derandomized, so a run is repeatable and cannot fail
# (or pass) by luck; locally they explore freely.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

# A second GLViewWidget draws nothing unless contexts are shared; must precede the QApplication.
QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)

HAVE_GL = os.environ.get("QT_QPA_PLATFORM") == "xcb"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "gl" not in item.keywords or HAVE_GL:
        return
    if os.environ.get("GDSIM_REQUIRE_GL") == "1":
        pytest.fail("GDSIM_REQUIRE_GL=1 but there is no X display: run under xvfb-run")
    pytest.skip("no X display: OpenGL needs Xvfb (run under xvfb-run)")
