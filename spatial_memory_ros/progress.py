"""How often a long job's progress bar (tqdm) redraws: often on a terminal; into a log (a pipe, a file, `nohup`), a
line every 30 s, so that a two-hour bag replay shows where it is without filling the log."""

from __future__ import annotations

import sys

TERMINAL_S = 0.1  # tqdm's own default
LOG_S = 30.0


def bar_interval() -> float:
    """tqdm's mininterval for a bar on stderr."""
    try:
        return TERMINAL_S if sys.stderr.isatty() else LOG_S
    except (AttributeError, ValueError):  # replaced or closed stderr
        return LOG_S
