"""Entry point of the frozen bundle: the same `gdsim` command as the installed script."""

import sys

from gdsim.cli import main

if __name__ == "__main__":
    sys.exit(main())
