"""A whole recording's transforms, split where its clock went back.

A bag is read whole before its images (io.bag), so its transforms cannot be forgotten at a time jump as a live
listener's are (core.tf_buffer's jump_back_s): a bag that holds a simulator restart holds two runs whose stamps
overlap. Sorted into one history, a lookup in the second run interpolated between a pose of each (episode 2 at
2.51 s gave (0.63, 0.63) m, half-way to episode 1's path, for (0, 1.25)). Here each run is an epoch of its own,
started by the first sample that goes back; an image is looked up in the epoch of its log time.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from .tf_buffer import TransformBuffer, TransformUnavailable


@dataclass
class _Epoch:
    start_ns: int  # log time of the epoch's first sample
    buffer: TransformBuffer
    first: float = np.inf  # the oldest dynamic stamp in it
    newest: float = -np.inf  # the newest dynamic stamp in it, any link


class TransformHistory:
    """Every transform of a recording, by epoch of its clock. Static transforms hold in every epoch.

    Args:
        jump_back_s: a link's sample older than that link's newest by more than this starts an epoch.
        extrapolation_s: as core.tf_buffer.TransformBuffer's.
    """

    def __init__(self, *, jump_back_s: float = 1.0, extrapolation_s: float = 0.05) -> None:
        self._jump_back_s = jump_back_s
        self._extrapolation_s = extrapolation_s
        self._epochs: list[_Epoch] = []
        self._statics: list[tuple[str, str, float, np.ndarray]] = []

    @property
    def epochs(self) -> int:
        return len(self._epochs)

    def add(self, parent: str, child: str, stamp: float, T_parent_child: np.ndarray, *, static: bool,
            log_ns: int) -> None:
        """One sample, in log order. TransformUnavailable for a bad link (as TransformBuffer.add)."""
        if not self._epochs:
            self._epochs.append(self._epoch(log_ns))
        if static:
            self._statics.append((parent, child, stamp, T_parent_child))
            for epoch in self._epochs:
                epoch.buffer.add(parent, child, stamp, T_parent_child, static=True)
            return
        epoch = self._epochs[-1]
        newest = epoch.buffer.newest(child)
        if newest is not None and stamp < newest - self._jump_back_s:
            epoch = self._epoch(log_ns)  # this link's clock went back
            self._epochs.append(epoch)
        elif (len(self._epochs) > 1 and (log_ns - epoch.start_ns) * 1e-9 <= self._jump_back_s
              and stamp > epoch.newest + self._jump_back_s):  # in flight at the jump: logged just after it
            before = self._epochs[-2]
            last = before.buffer.newest(child)
            if last is not None and stamp >= last - self._jump_back_s:
                epoch = before  # a link's last samples of the run before, logged after another link went back
        epoch.buffer.add(parent, child, stamp, T_parent_child, static=False)
        epoch.first = min(epoch.first, stamp)
        epoch.newest = max(epoch.newest, stamp)

    def lookup(self, target: str, source: str, stamp: float, log_ns: int) -> np.ndarray:
        """T_target_source at stamp, in the epoch the log time falls in; an image logged within jump_back_s of an
        epoch's start but stamped more than that after its first sample is the run before's, in flight at the
        jump. TransformUnavailable (also when nothing was added)."""
        if not self._epochs:
            raise TransformUnavailable(f"no transforms: {target!r} <- {source!r}")
        i = max(bisect.bisect_right([e.start_ns for e in self._epochs], log_ns) - 1, 0)
        epoch = self._epochs[i]
        if i > 0 and (log_ns - epoch.start_ns) * 1e-9 <= self._jump_back_s and stamp > epoch.first + self._jump_back_s:
            epoch = self._epochs[i - 1]
        return epoch.buffer.lookup(target, source, stamp)

    def _epoch(self, log_ns: int) -> _Epoch:
        buffer = TransformBuffer(cache_s=np.inf, extrapolation_s=self._extrapolation_s, jump_back_s=np.inf)
        for parent, child, stamp, T in self._statics:
            buffer.add(parent, child, stamp, T, static=True)
        return _Epoch(log_ns, buffer)
