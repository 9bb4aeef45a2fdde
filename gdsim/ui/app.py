"""QApplication set-up and the window's entry point.

Everything here must happen in a fixed order: GL context sharing before the QApplication
exists (or a second GL view draws nothing), and PyOpenGL's platform chosen to match Qt's before
`OpenGL` is imported (or every GL item silently fails under Wayland). See
shared/reference/platform-notes.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ORGANIZATION = "gdsim"
APPLICATION = "gdsim"


def settings_organization() -> str:
    """Tests point QSettings elsewhere through GDSIM_SETTINGS_ORG so a user's settings stay put."""
    return os.environ.get("GDSIM_SETTINGS_ORG", ORGANIZATION)


def configure_platform() -> None:
    """Steps that must precede the QApplication."""
    from PySide6.QtCore import QCoreApplication, Qt

    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    QCoreApplication.setOrganizationName(settings_organization())
    QCoreApplication.setApplicationName(APPLICATION)


def match_opengl_platform(platform_name: str) -> None:
    """PyOpenGL must speak to the same window system as Qt (GLX under xcb, EGL under Wayland)."""
    if "PYOPENGL_PLATFORM" in os.environ:
        return
    if platform_name == "xcb":
        os.environ["PYOPENGL_PLATFORM"] = "glx"
    elif platform_name.startswith("wayland") or platform_name in ("eglfs", "minimalegl"):
        os.environ["PYOPENGL_PLATFORM"] = "egl"


def ensure_app(argv: list[str] | None = None):
    """The one QApplication, created with the platform set-up done first."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        configure_platform()
        app = QApplication(argv if argv is not None else sys.argv[:1])
        app.setApplicationDisplayName("gdsim")
        from gdsim import __version__

        app.setApplicationVersion(__version__)
    match_opengl_platform(app.platformName())
    return app


def main(scenario_path: str | Path | None = None) -> int:
    """Open the window on `scenario_path`, or on the last scenario, or on the default one."""
    app = ensure_app()
    from gdsim.ui.main_window import MainWindow

    window = MainWindow()
    window.open_initial(Path(scenario_path) if scenario_path else None)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
