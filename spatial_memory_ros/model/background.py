"""The still camera's background, at the model's input size: a second picture for the network to compare with.

The shipped network finds agents by how they look in one frame (the simulator's colours: BENCHMARKS "What
the network keys on"), so it sees nothing of a hand moving a cup in real footage. A model built with
``ModelConfig.background`` also gets, beside the frame, a running mean of the frames the camera saw while it
stood still, and a flag saying whether there is one. Where the frame differs from it something changed,
whatever its colour. A camera that moves (more than ``move_m`` or ``move_deg`` from where it stood) starts
a new mean; it is given to the network only after ``min_frames`` frames, so a patrolling camera gets none.
The same class makes the training streams' backgrounds (model.data) and the runtime's, so the network is
trained on what it is given. A frame without a pose counts as still (as in core.still_edges). With
``ModelConfig.background_skips_changes`` the mean leaves out what changed (the truth in training, the
network's mask at run time), so that an agent standing still is not absorbed and leaves no ghost when it goes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.geometry import pose_delta


@dataclass(frozen=True)
class BackgroundConfig:
    rate: float = 0.03  # per-frame weight of the new frame in the mean (~3 s at 10 Hz)
    move_m: float = 0.05  # the camera moved farther than this from where it stood: start again
    move_deg: float = 2.0  # or turned more than this
    min_frames: int = 5  # frames averaged before the mean is given to the network


class StillBackground:
    """One camera's running-mean background. step() returns the background before this frame, then learns it;
    before() and learn() are its two halves, for a caller that knows what to leave out only after the model ran."""

    def __init__(self, config: BackgroundConfig | None = None) -> None:
        self.config = config or BackgroundConfig()
        self._mean: np.ndarray | None = None  # (h, w, 3) float32
        self._frames = 0
        self._pose: np.ndarray | None = None

    def reset(self) -> None:
        self._mean, self._frames, self._pose = None, 0, None

    def step(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None,
             skip: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """image (h, w, 3) uint8 at the model's input size -> (background (h, w, 3) uint8, valid). The background
        is zeros and valid False while there is none (the camera moves, or has stood for too few frames).
        skip: (h, w) pixels not to learn (non-zero), e.g. what changed: they keep the background they had."""
        out = self.before(image_bgr.shape, T_map_cam)
        self.learn(image_bgr, skip)
        return out

    def before(self, shape: tuple[int, ...], T_map_cam: np.ndarray | None) -> tuple[np.ndarray, bool]:
        """The background for a frame of this shape taken at this pose, before it is learned (see step())."""
        T = None if T_map_cam is None else np.asarray(T_map_cam, np.float64)
        if self._mean is not None and (self._mean.shape != tuple(shape) or self._moved(T)):
            self._mean, self._frames = None, 0
        if self._mean is None:
            self._pose = T
        if self._mean is None or self._frames < self.config.min_frames:
            return np.zeros(shape, np.uint8), False
        return np.rint(self._mean).astype(np.uint8), True

    def learn(self, image_bgr: np.ndarray, skip: np.ndarray | None = None) -> None:
        """Fold the frame into the mean (the first frame after a move starts it), except where skip is set."""
        frame = image_bgr.astype(np.float32)
        if self._mean is None or self._mean.shape != frame.shape:
            self._mean, self._frames = frame, 1
            return
        step = self.config.rate * (frame - self._mean)
        if skip is not None and self._frames >= self.config.min_frames:  # a new mean learns every pixel first
            step[np.asarray(skip) > 0] = 0.0
        self._mean += step
        self._frames += 1

    def _moved(self, T: np.ndarray | None) -> bool:
        """Beyond the limits from where the camera stood; no pose is still, and a first pose is where it stands."""
        if T is None:
            return False
        if self._pose is None:
            self._pose = T
            return False
        moved_m, turned_deg = pose_delta(self._pose, T)
        return moved_m > self.config.move_m or turned_deg > self.config.move_deg
