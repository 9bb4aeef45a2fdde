"""Real keyboard input for the window benchmark: Shift pressed and released through XTEST.

Run by bench_window.py as a separate process (so it never competes for the window's GIL):
`python xinput.py SECONDS`. Presses and releases Shift at random moments (5-25 ms apart)
for SECONDS on $DISPLAY. Shift is bound to nothing in gdsim, so the events cost the window
only their delivery, which is what the latency measures. Exits 1 with a message if the X
server or libXtst is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random
import sys
import time

XK_SHIFT_L = 0xFFE1


def main(seconds: float) -> int:
    x11 = ctypes.util.find_library("X11")
    xtst = ctypes.util.find_library("Xtst")
    if not x11 or not xtst:
        print("xinput: libX11 or libXtst not found", file=sys.stderr)
        return 1
    xlib, xtest = ctypes.CDLL(x11), ctypes.CDLL(xtst)
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    xlib.XFlush.argtypes = [ctypes.c_void_p]
    xtest.XTestFakeKeyEvent.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_ulong,
    ]
    display = xlib.XOpenDisplay(None)
    if not display:
        print("xinput: cannot open the X display", file=sys.stderr)
        return 1
    keycode = xlib.XKeysymToKeycode(display, XK_SHIFT_L)
    rng = random.Random(0)
    end = time.monotonic() + seconds
    down = False
    while time.monotonic() < end:
        down = not down
        xtest.XTestFakeKeyEvent(display, keycode, int(down), 0)
        xlib.XFlush(display)
        time.sleep(rng.uniform(0.005, 0.025))
    if down:
        xtest.XTestFakeKeyEvent(display, keycode, 0, 0)
        xlib.XFlush(display)
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))
