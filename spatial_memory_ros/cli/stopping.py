"""Stopping a long offline command (run, demo) between two frames, so that every output ends on the same one."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from tqdm import tqdm


@contextlib.contextmanager
def stop_after_the_frame() -> Iterator[Callable[[], bool]]:
    """Yields whether Ctrl-C was pressed: the first press lets the frame in hand finish, so that tracks.txt, the
    masks and --out-bag's three topics all end on the same frame (a KeyboardInterrupt between two of them left
    one a frame short); a second press stops at once (KeyboardInterrupt). Only the main thread sets handlers;
    elsewhere Ctrl-C stops at once, as before."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield lambda: False
        return
    pressed: list[bool] = []

    def on_sigint(signum: int, frame: object) -> None:
        if pressed:
            raise KeyboardInterrupt
        pressed.append(True)
        tqdm.write("stopping after this frame (Ctrl-C again to stop now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)
