"""A few frames kept during a run for samples.png: the image, the true and each method's change mask,
and the true and predicted dynamic-object boxes. Streaming: at most `count` frames are ever held."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..sim import SimFrame

_MIN_CHANGED_FRACTION = 0.005  # prefer frames where something changed: an all-empty sample shows nothing
_MAX_WAIT_FRACTION = 0.5  # ... but take a frame anyway after waiting half the gap to the next slot


@dataclass
class Sample:
    index: int  # 0-based frame index
    stamp: float  # s
    image: np.ndarray  # (H, W, 3) uint8 BGR
    true_mask: np.ndarray  # (H, W) uint8, 255 = changed
    true_boxes: np.ndarray  # (N, 4) px, the scored dynamic agents
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (H, W) uint8
    boxes: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (M, 4) px, scored tracks


class SampleCollector:
    """Keeps `count` frames, one per equal slot of the run, each the first in its slot with some change."""

    def __init__(self, count: int, duration_s: float) -> None:
        self.samples: list[Sample] = []
        gap = duration_s / max(count, 1)
        self._slots = [(k + 0.5) * gap for k in range(count)]  # slot start times, s
        self._wait = _MAX_WAIT_FRACTION * gap

    def wants(self, frame: SimFrame) -> bool:
        """Whether this frame should be kept (then call add with it)."""
        if not self._slots or frame.stamp < self._slots[0]:
            return False
        changed = float(np.count_nonzero(frame.truth.change_mask)) / frame.truth.change_mask.size
        return changed >= _MIN_CHANGED_FRACTION or frame.stamp >= self._slots[0] + self._wait

    def add(self, frame: SimFrame, true_boxes: np.ndarray) -> Sample:
        """Keep the frame; the caller fills in each method's mask and boxes."""
        self._slots.pop(0)
        sample = Sample(frame.index, frame.stamp, frame.image.copy(), frame.truth.change_mask.copy(), true_boxes)
        self.samples.append(sample)
        return sample
