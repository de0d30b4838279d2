"""Stopping a command: SIGTERM taken as Ctrl-C, and a long offline command (run, demo) stopped between two frames,
so that every output ends on the same one."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from tqdm import tqdm

EXIT_INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT)


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


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (kill, timeout, systemd, a CI cancel) does what Ctrl-C does at that moment: whatever SIGINT handler
    is in force (run's stop after this frame, train's save at the step's end) or KeyboardInterrupt. It killed the
    process with no message, leaving tracks.txt behind the masks and no items.json, and train without a save. Only
    in the main thread (the only one signals reach); the handler before is put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def as_sigint(signum: int, frame: FrameType | None) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:  # SIG_DFL; or SIG_IGN, as a job started with & by a script inherits it: a kill must still stop it
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, as_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
