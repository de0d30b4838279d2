"""A depth camera's error on the simulator's depth: the bench's methods get a depth image a real sensor could give.

The simulator hands every method its exact z-depth, agents included, which no sensor gives. A stereo or
structured-light camera's depth error grows with the square of the distance (about 1-2 % of the distance at a
few metres for the common ones), and some pixels have no depth at all (dark, shiny or too far: holes). What reads
depth here: the check that a remembered tag's place is unoccluded (core.visibility: depth nearer than the tag by
occlusion_margin_m at any probe hides the place) and lifting a box by its depth (core.lifting). A bench with exact
depth cannot say how much they rely on it.

This adds independent Gaussian noise with standard deviation sigma_at_1m * z**2 to every pixel (z in m) and
turns a share of pixels into holes (NaN: "no depth"), independently per frame: the harsh case for a per-pixel
probe. The truth stays exact; only the methods' input moves. Seeded by the scene seed and the frame index: every
method sees the same error, and a rerun the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import BadInputError

_STREAM = 0xDE97  # the rng stream of the depth error, apart from the scene's own and the pose error's


@dataclass(frozen=True)
class DepthError:
    """The error's size; zero for both gives the exact depth back."""

    sigma_at_1m: float = 0.0  # m of standard deviation at 1 m; sigma_at_1m * z**2 at z m
    hole_share: float = 0.0  # share of pixels with no depth (NaN)
    seed: int = 0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.sigma_at_1m) and self.sigma_at_1m >= 0.0):
            raise BadInputError(f"depth noise must be a finite number >= 0, got {self.sigma_at_1m}")
        if not (np.isfinite(self.hole_share) and 0.0 <= self.hole_share < 1.0):
            raise BadInputError(f"depth hole share must be in [0, 1), got {self.hole_share}")

    @property
    def active(self) -> bool:
        return self.sigma_at_1m > 0.0 or self.hole_share > 0.0

    def apply(self, depth: np.ndarray, index: int) -> np.ndarray:
        """Frame `index`'s depth (H, W) m as the sensor reports it: a new array (the truth's is left as it is)."""
        if not self.active:
            return depth.copy()
        rng = np.random.default_rng([self.seed, _STREAM, index])
        out = depth.astype(np.float32, copy=True)
        if self.sigma_at_1m > 0.0:
            out += (self.sigma_at_1m * out * out * rng.standard_normal(out.shape)).astype(np.float32)
        if self.hole_share > 0.0:
            out[rng.random(out.shape) < self.hole_share] = np.nan
        return out
