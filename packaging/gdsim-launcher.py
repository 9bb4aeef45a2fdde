"""Entry point of the frozen bundle: the same `gdsim` command as the installed script."""

import multiprocessing
import sys

from gdsim.cli import main

if __name__ == "__main__":
    # The engine runs in a spawned child: in the frozen app that child is this executable again,
    # and freeze_support turns it into the engine instead of a second window.
    multiprocessing.freeze_support()
    sys.exit(main())
