"""Is the recurrent memory predictive of what the camera sees next? The design's own claim, on unseen scenes.

Training asks the predictive head (heads.PredictHead) to turn the memory after frame t, with the camera's pose
at t + k, into the features of frame t + k, and InfoNCE to pick that frame among the other (stream, time)
pairs of a chunk (model.losses.cpc_loss). The benchmark's metrics never ask this, and there the slot memory
ties the memory-disabled ablation (BENCHMARKS "What the change mask misses, by kind"). This module asks the
training question on scenes no training run drew: among a group of candidate frames, is the forecast's
nearest target the frame that came?

With use_memory=False every forecast reads the initial memory (the ablation), so it knows only where the
camera will be. Neither run is given a still background (config.background): the difference between the two
is the recurrent memory alone. The targets are the frames alone (SpatialMemoryModel.frame_tokens, as training's):
the same for both runs, carrying neither pose nor memory (which made the positive easy to pick before:
BENCHMARKS "The predictive loss has a shortcut").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..core.geometry import scale_intrinsics
from .model import SpatialMemoryModel


@dataclass(frozen=True)
class StreamForecasts:
    """One stream run through a model: forecasts[t] (made after frame t for frame t + k) and targets[t] (what
    frame t showed), both (L, E) L2-normalised, row t for frame t; the last k forecasts have no frame to meet."""

    forecasts: torch.Tensor
    targets: torch.Tensor
    k: int


@dataclass(frozen=True)
class ForecastRecall:
    recall_at_1: float  # share of forecasts whose nearest candidate is the frame that came
    chance: float  # 1 / candidates: what a forecast that knows nothing scores
    forecasts: int  # how many were scored


def run_stream(model: SpatialMemoryModel, frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], *,
               use_memory: bool) -> StreamForecasts:
    """frames: (image BGR uint8 at any size, K (3, 3) at that size, T_map_cam (4, 4)) in order; each image is
    shrunk to the model's input as the runtime does (INTER_AREA). One camera, batch 1, on the model's device."""
    return run_streams(model, frames, use_memory=(use_memory,))[0]


@torch.inference_mode()
def run_streams(model: SpatialMemoryModel, frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], *,
                use_memory: Sequence[bool]) -> list[StreamForecasts]:
    """run_stream once per use_memory setting, in one pass over frames: each frame is shrunk and its target
    computed once (the frame alone, the same for every setting), so a memory and its ablation cost one rendering."""
    cfg = model.config
    dev = next(model.parameters()).device
    state = [model.initial_state(1, dev) for _ in use_memory]
    slots: list[list[torch.Tensor]] = [[] for _ in use_memory]
    cameras: list[list[torch.Tensor]] = [[] for _ in use_memory]
    targets = []
    has_pose = torch.ones(1, dtype=torch.bool, device=dev)  # every frame comes with its pose
    for image, K_px, T in frames:
        h, w = image.shape[:2]
        small = cv2.resize(image, (cfg.image_width, cfg.image_height), interpolation=cv2.INTER_AREA)
        K = scale_intrinsics(np.asarray(K_px, np.float64), cfg.image_width / w, cfg.image_height / h)
        image_t = torch.from_numpy(small).to(dev).permute(2, 0, 1)[None]
        K_t = torch.from_numpy(K.astype(np.float32)).to(dev)[None]
        T_t = torch.from_numpy(np.asarray(T, np.float32)).to(dev)[None]
        for i, memory in enumerate(use_memory):
            out = model(image_t, K_t, T_t, has_pose, state[i], use_memory=memory)
            state[i] = out.state
            # a place memory's cells predict nothing (as in training); a copy: a view keeps the whole state alive
            slots[i].append(out.state[:, :cfg.memory_slots].clone())
            cameras[i].append(out.camera)
        targets.append(model.predict_head.target(model.frame_tokens(image_t)))  # the frame alone, as trained
    k, E = cfg.predict_k, cfg.embed_dim
    target = torch.cat(targets).float() if targets else torch.zeros(0, E)
    runs = []
    for s, c in zip(slots, cameras, strict=True):
        forecasts = [model.predict_head.predict(s[t], c[t + k]) for t in range(len(s) - k)]
        runs.append(StreamForecasts(torch.cat(forecasts).float() if forecasts else torch.zeros(0, E), target, k))
    return runs


def persistence(stream: StreamForecasts) -> StreamForecasts:
    """The forecast that nothing changes: frame t's own target stands for frame t + k. What a memory that
    only carries the current view would score; a memory that predicts must beat it."""
    k = stream.k
    return StreamForecasts(stream.targets[:len(stream.targets) - k], stream.targets, k)


def forecast_recall(streams: list[StreamForecasts], window: int, *, stride: int = 1) -> ForecastRecall:
    """Recall@1 of the forecasts over groups of candidates. A group holds, from every stream, the forecasts
    made after frames s, s + stride, ..., s + (window - 1) * stride, and its candidates are the frames those
    forecasts are for (each + k): streams x window of them, as a training chunk's negatives are its other
    (stream, time) pairs (stride 1). Groups start every window * stride frames."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window} and {stride}")
    if not streams:
        raise ValueError("no streams")
    k = streams[0].k
    length = min(len(s.forecasts) for s in streams)
    if any(s.k != k for s in streams) or any(len(s.targets) < length + k for s in streams):
        raise ValueError("streams of different k, or targets shorter than their forecasts")
    span = window * stride
    hits = scored = 0
    for start in range(0, length - span + 1, span):
        times = torch.arange(start, start + span, stride)
        cand = torch.cat([s.targets[times + k] for s in streams])  # (streams * window, E)
        for i, s in enumerate(streams):
            best = (s.forecasts[times] @ cand.T).argmax(dim=1)
            hits += int((best == torch.arange(window, device=best.device) + i * window).sum())
            scored += window
    return ForecastRecall(hits / scored if scored else 0.0, 1.0 / (len(streams) * window), scored)
