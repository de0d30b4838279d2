"""Training batches for model.train: streams rendered by worker processes, and the lanes that walk them in chunks."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..core.errors import BadInputError
from .config import ModelConfig, TrainConfig
from .data import Stream, render_stream

_PR_SET_PDEATHSIG = 1  # <sys/prctl.h>
_LABEL_STRIDE = 1 << 20  # instance labels are made unique per lane assignment: label + assignment * this


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per rendering worker
    # Signals are the parent's to act on; it saves and stops the pool (terminate(): SIGTERM, which the fork
    # inherited as the CLI's Ctrl-C: the default is put back). A terminal's Ctrl-C reaches the whole process group:
    # each worker printed a KeyboardInterrupt traceback; a SIGTERM to the group (kill -TERM -PGID) killed a worker
    # that held the pool's queue lock, and the parent's terminate() then waited for it forever. In a session of
    # their own the workers get neither, and die with the parent (a kill -9 of it left them waiting on the queue).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    with contextlib.suppress(OSError):
        os.setsid()
    with contextlib.suppress(OSError, AttributeError):  # Linux's prctl; elsewhere the session alone
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


class StreamSource:
    """Rendered streams in seed order, prefetched by worker processes; next() blocks until the next is ready."""

    def __init__(self, first_seed: int, frames: int, config: ModelConfig, workers: int, teleports: float = 0.0,
                 recolour: float = 0.0, recolour_patrol: float | None = None, photos: float = 0.0,
                 decoys: float = 0.0, floors: float = 0.0) -> None:
        self._seed, self._frames, self._config = first_seed, frames, config
        # render_stream's stream options, after seed, frames and config: one tuple for its three calls below
        self._options = (teleports, recolour, recolour_patrol, photos, decoys, floors)
        # fork: workers run numpy/OpenCV only (never torch or CUDA), and need no importable __main__
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        self._pool = mp.get_context(method).Pool(workers, initializer=_worker_init) if workers > 0 else None
        self._pending: collections.deque[Any] = collections.deque()
        self._prefetch = 2 * workers
        self.fetched = 0  # streams handed out so far

    def _submit(self) -> None:
        assert self._pool is not None
        args = (self._seed, self._frames, self._config, *self._options)
        self._pending.append(self._pool.apply_async(render_stream, args))
        self._seed += 1

    def next(self) -> Stream:
        self.fetched += 1
        if self._pool is None:
            self._seed += 1
            return render_stream(self._seed - 1, self._frames, self._config, *self._options)
        while len(self._pending) < self._prefetch:
            self._submit()
        stream: Stream = self._pending.popleft().get()
        self._submit()
        return stream

    def render(self, seed: int) -> Stream:
        """Stream `seed` again, in this process (a resumed run's streams in its lanes)."""
        return render_stream(seed, self._frames, self._config, *self._options)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()


class Lanes:
    """`batch` lanes, each walking one stream chunk by chunk; deterministic given the source's order."""

    def __init__(self, source: StreamSource, tc: TrainConfig, rng: np.random.Generator) -> None:
        self.source, self.tc, self.rng = source, tc, rng
        self.again: collections.deque[Stream] = collections.deque()  # streams still to be walked again
        self.streams: list[Stream | None] = [None] * tc.batch
        self.pos = [0] * tc.batch
        self.uid = [0] * tc.batch
        self.has_pose = [True] * tc.batch
        self.assignments = 0

    def _assign(self, lane: int) -> None:
        if len(self.again) >= self.tc.batch:  # walk an old stream again only once it is out of the lanes
            stream = self.again.popleft()
        else:
            stream = self.source.next()
            self.again.extend([stream] * (self.tc.reuse - 1))
        self.streams[lane], self.pos[lane] = stream, 0
        self.assignments += 1
        self.uid[lane] = self.assignments
        self.has_pose[lane] = bool(self.rng.random() >= self.tc.pose_dropout)

    def snapshot(self) -> dict[str, Any]:
        """Where every lane is, by stream seed (the streams are rendered again from them on resume)."""
        return {"streams": [None if s is None else s.seed for s in self.streams], "pos": list(self.pos),
                "uid": list(self.uid), "has_pose": list(self.has_pose), "assignments": self.assignments,
                "again": [s.seed for s in self.again], "rng": self.rng.bit_generator.state}

    def restore(self, snap: dict[str, Any], render: Callable[[int], Stream]) -> None:
        """The lanes as snapshot() saw them; render(seed) makes each stream once."""
        made: dict[int, Stream] = {}

        def stream(seed: int) -> Stream:
            if seed not in made:
                made[seed] = render(seed)
            return made[seed]

        if len(snap["streams"]) != self.tc.batch:
            raise BadInputError(f"the training state has {len(snap['streams'])} lanes, this run {self.tc.batch}")
        self.streams = [None if seed is None else stream(int(seed)) for seed in snap["streams"]]
        self.pos, self.uid = [int(p) for p in snap["pos"]], [int(u) for u in snap["uid"]]
        self.has_pose, self.assignments = [bool(h) for h in snap["has_pose"]], int(snap["assignments"])
        self.again = collections.deque(stream(int(seed)) for seed in snap["again"])
        self.rng.bit_generator.state = snap["rng"]

    def next_chunk(self) -> tuple[dict[str, torch.Tensor], list[bool]]:
        """Tensors of the next chunk, time first, and which lanes started a new stream (memory reset)."""
        T = self.tc.clip
        reset = []
        for b in range(self.tc.batch):
            s = self.streams[b]
            fresh = s is None or self.pos[b] + T > len(s)
            if fresh:
                self._assign(b)
            reset.append(fresh)
        parts: dict[str, list[np.ndarray]] = {"images": [], "masks": [], "agents": [], "labels": [], "poses": [],
                                              "K": []}
        with_background = all(s is not None and s.background is not None for s in self.streams)
        if with_background:
            parts["background"], parts["background_valid"] = [], []
        for b in range(self.tc.batch):
            s, i = self.streams[b], self.pos[b]
            assert s is not None
            labels = s.labels[i : i + T].astype(np.int64)
            parts["images"].append(s.images[i : i + T])
            parts["masks"].append(s.masks[i : i + T])
            parts["agents"].append(s.agents[i : i + T])
            parts["labels"].append(np.where(labels > 0, labels + self.uid[b] * _LABEL_STRIDE, 0))
            parts["poses"].append(s.T_map_cam[i : i + T])
            parts["K"].append(s.K)
            if with_background:
                assert s.background is not None and s.background_valid is not None
                parts["background"].append(s.background[i : i + T])
                parts["background_valid"].append(s.background_valid[i : i + T])
            self.pos[b] = i + T
        batch = {k: torch.from_numpy(np.stack(v, axis=1 if k != "K" else 0)) for k, v in parts.items()}
        batch["images"] = batch["images"].permute(0, 1, 4, 2, 3)  # (T, B, 3, H, W)
        if with_background:
            batch["background"] = batch["background"].permute(0, 1, 4, 2, 3)  # (T, B, 3, H, W)
        batch["masks"] = batch["masks"].unsqueeze(2).float()  # (T, B, 1, H, W)
        batch["scene"] = batch["masks"] * (1.0 - batch.pop("agents").unsqueeze(2).float())  # changed, no agent
        batch["has_pose"] = torch.tensor(self.has_pose)
        batch["at_home"] = torch.tensor([s is not None and not s.recoloured for s in self.streams])
        return batch, reset
