"""Several cameras' pipelines, each on its own thread, sharing one learned model whose steps they batch.

    shared = SharedCameras(LearnedChangeDetector(cameras=2))
    front, rear = shared.views()   # each is a pipeline's change backend (core.change_backend.ChangeBackend)
    front.update(image, T_map_cam, intrinsics, stamp)   # on the front camera's thread

A camera's frames arrive when they arrive, not in step with the other cameras'. So a batch is not waited
for by the clock: a frame whose network step finds the network idle waits only for the cameras whose frames
are being prepared at that moment (resized, their background looked up: a few ms), and steps with them. Two
cameras triggered together therefore share a step; a camera with no frame in hand is not waited for, so a
lone frame steps at once. Frames that come while a step runs wait for it (they would anyway: one network)
and then step together. Only the network step is shared: each camera's resizing, background, mask, boxes
and floor memory run on its own thread (LearnedChangeDetector.prepare / finish), beside the other cameras'.

A batch is what a GPU is for. On a CPU a model per camera answers sooner, its copies running on the cores at
once (BENCHMARKS.md, "One network for two cameras"), so the node shares one only on CUDA by default
(change.batch_cameras, core.pipeline.open_cameras).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from ..core.change import ChangeOutput
from ..core.types import CameraIntrinsics
from .runtime import LearnedChangeDetector
from .step_inputs import NetworkStep, PreparedFrame

# the longest a step about to start waits for other cameras' frames being prepared (a safety: preparing takes a
# few ms, resizing and the background's lookup)
MAX_WAIT_S = 0.02


@dataclass
class _Request:
    frame: PreparedFrame
    step: NetworkStep | None = None
    error: BaseException | None = None
    done: bool = False


class SharedCameras:
    """One LearnedChangeDetector (its `cameras` rows of memory) behind a change backend per camera."""

    def __init__(self, detector: LearnedChangeDetector) -> None:
        self.detector = detector
        self._cond = threading.Condition()
        self._waiting: list[_Request] = []
        self._running = False
        self._preparing: set[int] = set()  # cameras between the start of update() and their step request
        self._steps = 0  # network steps run, and the frames they carried
        self._frames = 0

    def views(self) -> list[CameraView]:
        """The change backend of each camera, in camera order."""
        return [CameraView(self, c) for c in range(self.detector.cameras)]

    @property
    def frames_per_step(self) -> float:
        """How many frames a network step has carried, on average (0 before the first)."""
        with self._cond:
            return self._frames / self._steps if self._steps else 0.0

    @property
    def counts(self) -> tuple[int, int]:
        """(network steps run, frames they carried) so far."""
        with self._cond:
            return self._steps, self._frames

    def preparing(self, camera: int, busy: bool) -> None:
        """camera has started (busy) or given up (not busy) preparing a frame: a step about to start waits for it."""
        with self._cond:
            if busy:
                self._preparing.add(camera)
            else:
                self._preparing.discard(camera)
                self._cond.notify_all()

    def step(self, frame: PreparedFrame) -> NetworkStep:
        """frame's network step, batched with the frames of other cameras (module docstring). Whichever caller
        finds the network idle, and no other camera's frame being prepared (or MAX_WAIT_S gone), runs the step
        for all that wait; the others sleep until their part is done. An error in the step is raised to every
        caller in its batch: to the one that ran it as it was, to the others as a copy of it caused by it."""
        request = _Request(frame)
        with self._cond:
            self._preparing.discard(frame.camera)
            self._waiting.append(request)
            self._cond.notify_all()  # a caller may be waiting for this camera's frame
            give_up = time.monotonic() + MAX_WAIT_S
            while not request.done:
                left = give_up - time.monotonic()
                if not self._running and (not self._preparing or left <= 0):
                    break
                self._cond.wait(left if not self._running and left > 0 else None)
            if request.done:  # another caller ran it
                return _result(request, ran=False)
            batch, self._waiting = self._waiting, []
            self._running = True
        try:
            steps = self.detector.network_step([r.frame for r in batch])
            for r, s in zip(batch, steps):
                r.step = s
        except BaseException as e:
            for r in batch:
                r.error = e
        finally:
            with self._cond:
                for r in batch:
                    r.done = True
                self._running = False
                self._steps += 1
                self._frames += len(batch)
                self._cond.notify_all()
        return _result(request, ran=True)


def _result(request: _Request, ran: bool) -> NetworkStep:
    error = request.error
    if error is not None:
        if ran:
            raise error
        # each thread its own exception: one object raised in several threads at once gets their tracebacks
        # mixed in it, and the node logs the traceback of an unexpected error
        raise _copy_of(error) from error
    assert request.step is not None
    return request.step


def _copy_of(error: BaseException) -> BaseException:
    """An exception of error's type and arguments; a RuntimeError that names it where the type cannot be made so."""
    try:
        return type(error)(*error.args)
    except Exception:  # noqa: BLE001 - a type whose constructor takes other arguments
        return RuntimeError(f"the shared network step failed: {error!r}")


class CameraView:
    """One camera's change backend over a SharedCameras: update() from that camera's thread, one at a time."""

    def __init__(self, shared: SharedCameras, camera: int) -> None:
        self.shared = shared
        self.camera = camera

    def update(
        self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None, intrinsics: CameraIntrinsics | None = None,
        stamp: float | None = None,
    ) -> ChangeOutput:
        detector, shared = self.shared.detector, self.shared
        shared.preparing(self.camera, True)
        try:
            frame = detector.prepare(self.camera, image_bgr, T_map_cam, intrinsics, stamp)
        except BaseException:
            shared.preparing(self.camera, False)
            raise
        return detector.finish(frame, shared.step(frame))

    def reset(self) -> None:
        """Forget what this camera saw; the other cameras' memory rows stay."""
        self.shared.detector.reset(self.camera)

    def describe(self) -> str:
        """The detector's description, the cameras it serves and (after a first step) how full its steps are."""
        detector, per_step = self.shared.detector, self.shared.frames_per_step
        batch = f", {per_step:.2f} frames a step so far" if per_step else ""
        return f"{detector.describe()}, one network for {detector.cameras} cameras{batch}"
