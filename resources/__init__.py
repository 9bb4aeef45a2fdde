"""Data shipped with gdsim: example scenarios, icons, default settings.

Installed as the package ``gdsim.resources`` (see pyproject.toml), so it is found the same way
from a source tree, an editable install, a wheel and a frozen bundle.
"""

from importlib.resources import files
from importlib.resources.abc import Traversable


def resource(*parts: str) -> Traversable:
    """The shipped file at ``resources/<parts...>``."""
    node = files(__name__)
    for part in parts:
        node = node / part
    return node
