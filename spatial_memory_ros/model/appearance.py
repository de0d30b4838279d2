"""Appearance randomisation of training streams: agents and the whole palette take other colours.

The simulator paints every agent in a few fixed colours, and the shipped network learned them: it finds
95-99.8 % of the agents' pixels from one frame, and none of a sim agent painted grey or with a photo's
texture, nor any pixel of a hand moving an object in real footage (BENCHMARKS "What the network keys on").
A stream drawn for randomisation gets one random colour per agent (a grey for 30 % of them; kept for the
whole stream, shaded by the rendering's own light and dark) and one random colour transform for the whole
frame (channels swapped and scaled), so that neither an agent's colour nor the palette tells what moves:
its shape, and what the camera saw before, have to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Appearance:
    """One stream's colours: a channel order, per-channel gain and offset, and a seed for agents' colours."""

    order: tuple[int, int, int]
    gain: tuple[float, float, float]
    offset: tuple[float, float, float]
    seed: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Appearance:
        order = tuple(int(i) for i in rng.permutation(3))
        gain = tuple(float(g) for g in rng.uniform(0.7, 1.3, 3))
        offset = tuple(float(o) for o in rng.uniform(-25.0, 25.0, 3))
        return cls(order, gain, offset, int(rng.integers(1 << 31)))  # type: ignore[arg-type]

    def agent_colour(self, instance: int) -> np.ndarray:
        """(3,) float BGR of one agent, the same in every frame of the stream."""
        rng = np.random.default_rng([self.seed, int(instance)])
        if rng.random() < 0.3:  # a grey, which no colour sets apart from a grey floor
            return np.full(3, rng.uniform(20.0, 235.0))
        return rng.uniform(20.0, 235.0, 3)

    def apply(self, image_bgr: np.ndarray, instances: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 image repainted: agents (instances > 0, same size as the image) in their colours,
        shaded as rendered; then the whole frame through the channel transform."""
        out = image_bgr.astype(np.float32)
        ids = np.unique(instances[instances > 0])
        if len(ids):
            grey = out.mean(axis=2)
            for i in ids:
                sel = instances == i
                shade = grey[sel] / max(float(grey[sel].mean()), 1.0)  # the rendering's light and dark
                out[sel] = self.agent_colour(int(i))[None, :] * shade[:, None]
        out = out[:, :, list(self.order)] * np.asarray(self.gain, np.float32) + np.asarray(self.offset, np.float32)
        return np.clip(out, 0.0, 255.0).astype(np.uint8)
