"""Does the item memory's answer follow a moved object? Scored in the image, through an assumed camera.

Per frame, every remembered item's current and usual places are projected back into the image with the
camera that lifted them (evaluate.assumed_camera: the assumed intrinsics and depth cancel in that round
trip) and measured against the object's colour-segmented region (evaluate.moved.object_region):
- current on the object: the projected current place lies inside the region, or within NEAR_PX of it
  (the region's edge is a colour threshold's, the point is a box centre);
- usual at the first place: the projected usual place within NEAR_PX of the frame-0 region;
- displaced: the memory's own flag, which compares places in the assumed metres (not pixel-exact),
  against the regions' own answer: the object's centroid is farther than displaced_distance_m (in the
  assumed metres per pixel) from its frame-0 centroid.
The memory is replayed from the pipeline's committed observations at more than one scale (MemoryConfig
distances), because those distances are the one thing the assumed scale does not cancel in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..core.config import MemoryConfig
from ..core.item_memory import ItemMemory
from ..core.types import ItemObservation
from .assumed_camera import AssumedCamera

# An answer this many pixels or fewer from the object's region counts as on it. Fixed before any scoring:
# small next to the thermos in cup.mp4 (~105 px wide) and to its moves (up to ~250 px).
NEAR_PX = 15.0


@dataclass
class FrameAnswer:
    """One item's answer in one frame, in image terms."""

    current_px: float  # distance (px) of the projected current place from the object's region; 0 = inside
    usual_first_px: float  # distance (px) of the projected usual place from the frame-0 region
    displaced: bool
    current_uv: tuple[float, float]  # projected current place (px)
    usual_uv: tuple[float, float]  # projected usual place (px)


@dataclass
class FollowScore:
    """Accumulates, per memory scale, every item's answers over the moved frames."""

    camera: AssumedCamera
    scales: dict[str, MemoryConfig]
    memories: dict[str, ItemMemory] = field(init=False)
    answers: dict[str, list[dict[str, FrameAnswer]]] = field(init=False)  # scale -> per moved frame
    moved_m: list[float] = field(init=False)  # per moved frame: region centroid from the frame-0 one, assumed m

    def __post_init__(self) -> None:
        self.memories = {name: ItemMemory(cfg, None) for name, cfg in self.scales.items()}
        self.answers = {name: [] for name in self.scales}
        self.moved_m = []

    def observe(self, observations: list[ItemObservation]) -> None:
        """Every frame: the pipeline's committed observations (positions in the assumed metres)."""
        for memory in self.memories.values():
            memory.observe(observations)

    def answers_now(self, scale: str, region: np.ndarray, first: np.ndarray) -> dict[str, FrameAnswer]:
        """Every remembered item's answer at this moment, against the regions (H, W) bool now and at frame 0."""
        return self._answers(scale, _distance_to(region), _distance_to(first))

    def _answers(self, scale: str, to_now: np.ndarray, to_first: np.ndarray) -> dict[str, FrameAnswer]:
        """answers_now() from the regions' distance maps (_distance_to), which every scale shares."""
        h, w = to_now.shape
        out = {}
        for ans in self.memories[scale].list_all():
            cur, usual = self.camera.project(np.stack([ans.current.position, ans.usual.position]), w, h)
            out[ans.item] = FrameAnswer(_lookup(to_now, cur), _lookup(to_first, usual), ans.displaced,
                                        (float(cur[0]), float(cur[1])), (float(usual[0]), float(usual[1])))
        return out

    def record(self, region: np.ndarray, first: np.ndarray) -> None:
        """A moved frame: keep every scale's answers for summarise()."""
        to_now, to_first = _distance_to(region), _distance_to(first)
        for scale in self.scales:
            self.answers[scale].append(self._answers(scale, to_now, to_first))
        (ys, xs), (ys0, xs0) = np.nonzero(region), np.nonzero(first)
        px = float(np.hypot(xs.mean() - xs0.mean(), ys.mean() - ys0.mean())) if len(xs) and len(xs0) else 0.0
        self.moved_m.append(px * self.camera.metres_per_px(region.shape[1]))

    def summarise(self, item: str) -> dict[str, dict[str, float | int]]:
        """Per scale, over the moved frames: how often item's answer was on the object, usual at its first
        place, displaced true; frames before the item's first sighting count as not on the object."""
        out: dict[str, dict[str, float | int]] = {}
        for scale, frames in self.answers.items():
            got = [f[item] for f in frames if item in f]
            far = [m > self.scales[scale].displaced_distance_m for f, m in zip(frames, self.moved_m) if item in f]
            n = max(len(frames), 1)
            cur = np.array([a.current_px for a in got])
            out[scale] = {
                "moved_frames_with_an_answer": len(got),
                "current_inside_fraction": float(np.sum(cur == 0.0) / n),
                "current_near_fraction": float(np.sum(cur <= NEAR_PX) / n),
                "current_distance_px_median": float(np.median(cur)) if got else float("nan"),
                "usual_at_first_place_fraction": float(np.mean([a.usual_first_px <= NEAR_PX for a in got]))
                if got else 0.0,
                "displaced_fraction": float(np.mean([a.displaced for a in got])) if got else 0.0,
                # the same frames by the regions: centroid moved farther than displaced_distance_m
                "object_displaced_fraction": float(np.mean(far)) if got else 0.0,
                "displaced_agrees_fraction": float(np.mean([a.displaced == f for a, f in zip(got, far)]))
                if got else 0.0,
                "place_radius_m": self.scales[scale].place_radius_m,
                "displaced_distance_m": self.scales[scale].displaced_distance_m,
            }
        return out


def static_guess_near(region: np.ndarray, first: np.ndarray) -> bool:
    """Whether the frame-0 region's centroid (a memory that never updates) is within NEAR_PX of the region."""
    ys, xs = np.nonzero(first)
    if len(xs) == 0:
        return False
    return _lookup(_distance_to(region), np.array([xs.mean(), ys.mean()])) <= NEAR_PX


def _distance_to(region: np.ndarray) -> np.ndarray:
    """(H, W) float px: distance of each pixel to the nearest pixel of region (0 inside)."""
    if not region.any():
        return np.full(region.shape, np.inf, np.float32)
    return cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 5)


def _lookup(distance: np.ndarray, uv: np.ndarray) -> float:
    """distance at pixel uv (2,); off the image: the distance at the nearest border pixel plus the overshoot."""
    if not np.isfinite(uv).all():
        return float("inf")
    h, w = distance.shape
    u, v = int(round(float(uv[0]))), int(round(float(uv[1])))
    cu, cv_ = min(max(u, 0), w - 1), min(max(v, 0), h - 1)
    return float(distance[cv_, cu]) + float(np.hypot(u - cu, v - cv_))
