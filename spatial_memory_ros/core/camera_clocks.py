"""Cameras that share one item memory must share one clock.

Each camera's clock is checked on its own (core.clock_watch), so two cameras whose stamps run 30 s apart (a
driver on its own clock, a camera not synced by PTP or chrony) each look fine, while the one memory they feed
sees its clock go back and forward every few seconds: it moved every remembered time back each time, and the
next sighting bridged the gap as dwell (an item watched for 32 s had 156 s of dwell). So each camera's stamps are
compared with a reference camera's: the first camera in the node's list that has had a frame lately. The other
cameras' frames stamped more than SKEW_S from it are dropped with the reason; the reference is never dropped for
it, so a bag that loops (every camera's stamps go back within a frame or two) costs the others a frame or two.
Stamps are compared as offsets from a steady clock, so cameras at different rates compare alike.
"""

from __future__ import annotations

import math
import threading

SKEW_S = 5.0  # the item memory takes a stamp this far behind its newest for a clock that went back
FRESH_S = 2.0  # a camera with no frame for longer is not a reference (stopped, unplugged)


class CameraClocks:
    """check() for each camera's frame, from the cameras' worker threads."""

    def __init__(self, cameras: int) -> None:
        self._offset = [math.nan] * cameras  # s, each camera's last stamp minus the steady clock then
        self._at = [-math.inf] * cameras  # s, steady clock of that frame
        self._lock = threading.Lock()

    def check(self, camera: int, stamp_s: float, now_s: float) -> tuple[int, float] | None:
        """Note camera's frame (stamp_s, at steady time now_s); (reference camera, s this stamp runs after it) when
        they disagree by more than SKEW_S, else None."""
        with self._lock:
            offset = stamp_s - now_s
            self._offset[camera], self._at[camera] = offset, now_s
            for ref in range(camera):  # the first camera with a recent frame
                if now_s - self._at[ref] <= FRESH_S:
                    skew = offset - self._offset[ref]
                    return (ref, skew) if abs(skew) > SKEW_S else None
            return None
