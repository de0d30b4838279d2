"""Sim frames for the benchmark, rendered in a second process while the methods run on the first.

Rendering a frame costs about as much as all the methods together, so on two cores a 2-hour run takes
about half as long when the two overlap. The frames are the same either way: a SimScene is deterministic
in its preset and seed, and frames are consumed in order.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from ..sim import ScenePreset, SimFrame, SimScene

_QUEUE_FRAMES = 32  # ~25 MB at 320 x 240: enough to ride out a slow method frame, bounded memory
_POLL_S = 5.0  # how often a waiting reader checks that the renderer is still alive


class RenderError(RuntimeError):
    """The rendering process failed; the message carries its traceback."""


def _slim(frame: SimFrame) -> SimFrame:
    """The frame with its instance mask cut to "agent or not" (uint8 0/1): the bench scores tracks by the
    agents' boxes and needs the mask only to split change recall by kind, so half as much to pickle."""
    return replace(frame, truth=replace(frame.truth, instance_mask=(frame.truth.instance_mask > 0).view(np.uint8)))


def _render(preset: ScenePreset, seed: int, out: mp.Queue) -> None:
    try:
        for frame in SimScene(preset, seed=seed).frames():
            out.put(_slim(frame))
        out.put(None)
    except BaseException:  # noqa: BLE001 - anything, even KeyboardInterrupt, must reach the reader
        out.put(RenderError(traceback.format_exc()))


def sim_frames(scene: SimScene, *, jobs: int = 2) -> Iterator[SimFrame]:
    """Every frame of the scene in order; jobs=2 renders them in a child process, jobs=1 in this one.

    The child is spawned (not forked), so a script calling this with jobs=2 needs the usual
    ``if __name__ == "__main__":`` guard; the CLI and pytest have it.
    """
    if jobs < 2:
        yield from (_slim(f) for f in scene.frames())
        return
    context = mp.get_context("spawn")  # no fork: the parent may hold threads (tqdm, BLAS)
    frames: mp.Queue = context.Queue(maxsize=_QUEUE_FRAMES)
    worker = context.Process(target=_render, args=(scene.preset, scene.seed, frames), daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = frames.get(timeout=_POLL_S)
            except queue.Empty:
                if not worker.is_alive():
                    raise RenderError(f"the rendering process died (exit code {worker.exitcode})") from None
                continue
            if item is None:
                break
            if isinstance(item, RenderError):
                raise item
            yield item
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join(timeout=10)
        frames.close()
