"""When a bag's images were taken: each stamp judged in log order, apart from io.bag's reading of the messages."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from ..ros import decode
from ..ros.image_checks import MAX_STAMP_AHEAD_S


class BagStamps:
    """The capture times of one bag's messages (BagReader.frames); stamp() and bad_stamp() keep what the earlier
    messages told. path and log: the bag, and the logger that reports its images taking their log time."""

    def __init__(self, path: Path, log: logging.Logger) -> None:
        self.path = path
        self._log = log
        self._lead: float | None = None  # the last good image's stamp minus its log time, s (bad_stamp)
        self._ahead: float | None = None  # the lead of an image refused as ahead just before (bad_stamp)
        self._leading_zeros = 0  # images stamped 0 before any stamped one (stamp)
        self.log_time: bool | None = None  # every stamp is the log time (stamp); None until the first message

    def stamp(self, msg: Any, log_ns: int, *, image: bool) -> float:
        """The header stamp in s; the log time for a driver that leaves stamps at zero, decided by the bag's first
        images: two stamped 0 in a row before any stamped one. Any other zero stamp is NaN (a bad frame, as the node
        drops it): the log time in its place mixed two clocks (a sim-time bag's 10 s and the recorder's 1.7e9 s),
        and the item memory took that frame's sighting as hours ahead; and a simulator's first frame is often
        stamped 0 (deciding on it alone sent every frame of such a bag to the recorder's clock). Call once per
        message, in log order; depth messages (image=False) follow the images' decision."""
        t = decode.stamp_to_sec(msg.header.stamp)
        if self.log_time is None and image:
            if t > 0:
                self.log_time = False
            else:
                self._leading_zeros += 1
                if self._leading_zeros >= 2:
                    self.log_time = True
                    self._log.warning("bag %s: its images are stamped 0; every frame takes its log time", self.path)
        if self.log_time:
            return log_ns * 1e-9
        return t if t > 0 else math.nan

    def bad_stamp(self, stamp: float, log_ns: int) -> str:
        """Why an image's stamp cannot be its capture time, or "". The stamp runs with the recorder's clock (a
        simulator's slower or faster, and back at a restart): one more than MAX_STAMP_AHEAD_S ahead of the last
        good frame's, for the recording time between them, is a bad stamp, as the node drops one ahead of its
        clock."""
        if math.isnan(stamp):
            return "image stamped 0 in a bag whose images are stamped: no time to place it at"
        lead = stamp - log_ns * 1e-9
        if self._lead is not None and lead > self._lead + MAX_STAMP_AHEAD_S:
            # one frame ahead is a bad stamp; the next one as far ahead confirms a clock stepped forward (NTP):
            # from there on the new lead holds (else the rest of the bag was refused)
            confirmed = self._ahead is not None and abs(lead - self._ahead) <= MAX_STAMP_AHEAD_S
            self._ahead = lead
            if not confirmed:
                return (f"image stamped {lead - self._lead:.0f} s ahead of the bag's previous image, for its "
                        "recording time")
        self._lead, self._ahead = lead, None
        return ""
