"""The `gdsim` command: the window by default, headless subcommands otherwise."""

from __future__ import annotations

import argparse
import sys

from gdsim import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gdsim", description="Gradient descent, made visible.")
    parser.add_argument("--version", action="version", version=f"gdsim {__version__}")
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
