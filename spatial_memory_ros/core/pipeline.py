"""The whole core for one camera: detectors + change baseline -> 3D lifting -> tracker -> item memory.

ROS-free: the node converts messages to a Frame, calls update(), and converts the FrameResult back.
"""

from __future__ import annotations

import dataclasses
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import numpy as np

from ..detect.base import ObjectDetector
from ..detect.factory import make_detector
from ..reid.base import AppearanceEmbedder
from .change import ChangeDetector, ChangeOutput
from .change_backend import ChangeBackend, camera_change_backends, make_change_backend, wants_motion_appearance
from .clock_watch import OUT_OF_ORDER_S
from .config import PipelineConfig
from .errors import BadInputError
from .frame_check import validate_frame
from .geometry import pose_delta, same_intrinsics
from .item_follow import ItemFollower
from .item_memory import ItemMemory
from .lifting import lift
from .sightings import confirmed_observations, is_explained
from .standing import lies_flat
from .store import MemoryStore
from .tag_reads import TagReaderBackend, TagStep
from .tags import to_gray
from .tracker import Tracker
from .turning import TurnLimits, shift_copy, turn_in_picture, view_from_canvas
from .types import (
    MOTION_LABEL,
    Detection,
    Frame,
    FrameResult,
    ItemAnswer,
    TagDetection,
)
from .visibility import empty_places

_TURNS = TurnLimits()  # _compensate_turn follows a turn of at most max_turn_deg a frame, as the turning backgrounds do

_MOTION_SCORE = 0.5  # a frame-difference blob has no confidence of its own
# A frame stamped at most OUT_OF_ORDER_S before the previous one is out of order (a driver's or transport's
# jitter) and is refused; further back, the clock went back (a bag played again, a simulator restarted) and the
# time-bound state starts over. Before, 1 ms out of order reset the tracker as a new clock does. (The node holds
# a single frame far behind until the next confirms it: core/clock_watch.py.)


class Pipeline:
    """Frames in, tracks + change mask + item memory updates out.

    Per frame:
    - AprilTags (backend apriltag, or detector.apriltag_items with the others) give identified items,
      map pose = T_map_cam @ T_cam_tag when both the intrinsics and the camera pose are known (TAG);
    - with detector.learned_tag_reader, the quads the tag finder could not decode are read as configured
      items by model.tag_reader and placed where the quad centre's ray meets the lifting plane
      (GROUND_PLANE), once two reads in a row agree on where the item is;
    - the coco / onnx backend gives class detections: item classes are items named after the class,
      dynamic classes (people) are dynamic, both positioned by core.lifting (DEPTH, else GROUND_PLANE);
    - with tracker.reid, the class detections that name no item (people) get an appearance vector
      (spatial_memory_ros.reid) so the tracker can re-identify them after an occlusion; only those the
      tracker asks for (Tracker.needs_appearance): one that overlap alone pairs with a steady track is
      embedded every tracker.reid_refresh_frames-th frame, not every frame;
    - with detector.follow_items, a confirmed item track that no item-class detection covers in this frame
      is followed by optical flow from its last box (core.item_follow) and handed over as a lower-score
      detection of the same item: the memory learns where a carried object went (current), never a place;
    - the change baseline gives a change mask and moving blobs; a blob that a detection already
      explains is dropped, the others become dynamic "object" detections, lifted the same way;
    - the tracker associates all of them. Only CONFIRMED item tracks matched in this frame, with a
      position, are committed to memory, so a single spurious detection never moves ``current``; a
      well-fitted tag is the exception (an id is never spurious; see sightings.confirmed_observations);
    - remembered tag places that the frame shows empty (in view, decodable, unoccluded, tag not decoded:
      core.visibility) are reported to memory, which then knows an item has gone.

    AprilTags stay on beside a class detector by default because a tag names one physical thing,
    whereas a class name covers every cup in the room; the ~12 ms they cost on 640x480 is small next to
    the network's.

    update() must be called from one thread at a time; locate() and list_items() may be called from
    other threads meanwhile (ItemMemory holds its own lock).
    """

    def __init__(
        self,
        config: PipelineConfig,
        memory: ItemMemory,
        *,
        change: ChangeBackend | None = None,
        detector: ObjectDetector | None = None,
        embedder: AppearanceEmbedder | None = None,
        tag_reader: TagReaderBackend | None = None,
        device: str = "auto",
    ) -> None:
        """change: the change backend; None = make_change_backend(config.change, device=device) (classical or
        learned, as config.change.method says; the learned one embeds its regions only if
        wants_motion_appearance(config)).
        detector: the class detector; None = make_detector(config.detector, device=device) for the coco
        and onnx backends, none for apriltag. device: auto | cpu | cuda, for a backend that can use a GPU.
        embedder: appearance vectors for re-identification; None = the MobileNetV2 one when tracker.reid is
        on and there is a class detector (tags are identified by their id and need none).
        tag_reader: reads the quads the tag finder could not decode; None = model.tag_reader.TagReader over
        the configured items' ids when detector.learned_tag_reader is on (and tags are in use).
        """
        self.config = config.validate()
        self.memory = memory
        backend = config.detector.backend
        self._tags = TagStep(self.config, tag_reader) if config.detector.finds_tags else None
        self._last_stamp: float | None = None  # the last processed frame's
        if detector is None and backend != "apriltag":
            detector = make_detector(config.detector, config.tags, device=device)
        self._objects = detector
        if embedder is None and config.tracker.reid and detector is not None:
            from ..reid.mobilenet import MobileNetV2Embedder  # imports torch: only when re-id is used

            embedder = MobileNetV2Embedder(device=device)
        self._embedder = embedder if config.tracker.reid else None
        if change is None:
            change = make_change_backend(config.change, device=device,
                                         motion_appearance=wants_motion_appearance(config))
        self._change: ChangeBackend = change
        votes = config.detector.item_classes if config.detector.item_class_vote and detector is not None else ()
        self._tracker = Tracker(config.resolved_tracker(), vote_classes=votes)
        # T_map_cam, K, image (h, w), turning.shift_copy of the last frame with a pose
        self._last_view: tuple[np.ndarray, np.ndarray, tuple[int, ...], np.ndarray] | None = None
        follow = config.detector.follow_items and detector is not None
        # Followed boxes score below any real detection (which then wins the item), at half the threshold.
        self._follower = ItemFollower(config.detector.item_classes, max_s=config.detector.follow_max_s,
                                      score=config.detector.score_threshold / 2) if follow else None
        # The class detector's network leaves part of two cores idle (many small layers, each split over
        # the cores), so tags and the change baseline run beside it on a thread of their own, with the same
        # results. coco + tags + classical change on 640x480 demo frames, 2 cores, median (p95): 73 (89) ->
        # 60 (67) ms on a quiet box; 1-4 % less (p99 3-9 %) with the cores busy with other jobs. Only the
        # classical change detector: the learned one runs torch, whose thread settings the embedder changes
        # during its call, and two torch users at once would only fight over the same two cores. With the
        # learned one the tag search alone (OpenCV, ~12 ms a 640x480 frame) goes beside the torch work, unless
        # the learned tag reader (torch) follows it. Without a class detector (detector.backend apriltag, the
        # node's default) the tag search goes beside the classical change detector, which stays on this thread
        # (bench-node, apriltag, 640 x 480: p50 / p95 26-27 / 30-36 -> 22-24 / 26-29 ms); beside the learned one
        # it gained nothing measurable in two runs and stalled one (7.6 Hz), so there it stays in sequence.
        self._change_aside = detector is not None and isinstance(change, ChangeDetector)
        tags_aside = (self._tags is not None and self._tags.reader is None
                      and (detector is not None or isinstance(change, ChangeDetector)))
        aside = self._change_aside or tags_aside
        self._side = ThreadPoolExecutor(1, thread_name_prefix="pipeline_side") if aside else None

    @classmethod
    def open(cls, config: PipelineConfig, *, device: str = "auto") -> Pipeline:
        """A pipeline whose memory lives in config.memory.db_path ("" or ":memory:": in RAM only)."""
        return cls.open_cameras(config, 1, device=device)[0]

    @classmethod
    def open_cameras(cls, config: PipelineConfig, cameras: int, *, device: str = "auto") -> list[Pipeline]:
        """One pipeline per camera over one item memory (config.memory.db_path): each camera has its own
        tracker, change reference and detectors, since those describe one view (the learned model may be one for
        all, each camera its own memory row: change.batch_cameras); what any camera saw, locate() on any of them
        answers. Each pipeline's update() is for its own camera's frames; reset() and close() on
        one reach the shared memory."""
        config.validate()
        if cameras < 1:
            raise BadInputError(f"cameras must be >= 1, got {cameras}")
        store = MemoryStore(config.memory.db_path)
        try:
            memory = ItemMemory(config.memory, store)
            changes = camera_change_backends(config, cameras, device)
            return [cls(config, memory, change=change, device=device) for change in changes]
        except BaseException:
            store.close()  # do not leave the database open behind a failed start
            raise

    def update(self, frame: Frame) -> FrameResult:
        """Process one frame; raises BadInputError (and changes nothing) for a malformed frame."""
        validate_frame(frame)
        if frame.T_map_cam is not None and not isinstance(frame.T_map_cam, np.ndarray):  # e.g. nested lists
            frame = dataclasses.replace(frame, T_map_cam=np.asarray(frame.T_map_cam, dtype=np.float64))
        stamp = float(frame.stamp)
        last = self._last_stamp
        if last is not None and last - OUT_OF_ORDER_S <= stamp < last:
            raise BadInputError(f"frame stamped {last - stamp:.3f} s before the previous frame: out of order")
        if last is not None and stamp < last:
            self._clock_went_back()
        lifting = self.config.lifting
        self._compensate_turn(frame)

        if self._side is not None:
            side = self._side.submit(self._tags_and_change if self._change_aside else self._tags_alone, frame)
            try:
                here = None if self._change_aside else self._change_update(frame)
                found = self._class_detections(frame)
            finally:
                futures.wait([side])  # never leave it running into the next frame, whatever happened here
            tags, detections, aside = side.result()
            change = aside if aside is not None else here
            assert change is not None
            detections += found
        else:
            tags, detections, change = self._tags_and_change(frame)
            detections += self._class_detections(frame)
        first_followed = len(detections)
        if self._follower is not None:  # item tracks the detector missed, moved by optical flow
            detections += [lift(d, frame, lifting) for d in self._follower.propose(frame.image, stamp, detections)]
        known_boxes = np.array([d.box for d in detections]).reshape(-1, 4)  # (D, 4)
        # the learned model's re-id head, where asked for (tracker.reid_motion)
        looks = change.motion_appearance if wants_motion_appearance(self.config) else None
        seen = change.motion_seen_boxes  # a box completed past the image border is positioned by its visible part
        for i, box in enumerate(change.motion_boxes):
            if is_explained(box, known_boxes):
                continue
            visible = seen[i] if seen is not None else box
            if lies_flat(visible, frame.depth, frame.intrinsics, frame.T_map_cam, lifting.plane_height_m,
                         lifting.min_standing_m):
                continue  # a mark on the floor (core.standing), not a mover
            look = looks[i] if looks is not None else None
            blob = Detection(box=box, label=MOTION_LABEL, score=_MOTION_SCORE, is_dynamic=True, appearance=look)
            detections.append(lift(blob, frame, lifting, seen_box=visible))

        tracks = self._tracker.update(detections, stamp)
        matched = self._tracker.matched()
        if self._follower is not None:
            self._follower.commit(tracks, detections, matched, first_followed, stamp)
        self.memory.advance(stamp)  # "now" for the return prior, whether or not an item is seen
        observations = confirmed_observations(tracks, detections, matched, stamp)
        if observations:
            self.memory.observe(observations)
        if self._tags is not None and self.config.memory.absent_after_checks > 0:
            # Negative evidence: remembered tag places this frame shows empty. Anything that moves on its
            # own (detections and tracks, lost ones at their prediction) may hide a tag, so it vetoes.
            movers = [d.box for d in detections if d.is_dynamic] + [t.box for t in tracks if t.is_dynamic]
            empty = empty_places(
                self.memory.places_to_check(), {d.item for d in detections if d.item},
                self.config.tags.names_a_tag, self.config.tags.tag_size_m, frame,
                np.asarray(movers, dtype=np.float64).reshape(-1, 4),
            )
            if empty:
                self.memory.observe_absent(empty, stamp)
        self._last_stamp = stamp
        return FrameResult(
            stamp=stamp,
            tracks=tracks,
            change_mask=change.mask,
            tags=tags,
            observations=observations,
            camera_moved=change.camera_moved,
            detections=detections,
        )

    def _clock_went_back(self) -> None:
        """What counts time by this camera's stamps starts over (the tracker, the item follower and the change
        backends see the stamp and do so on their own; the shared item memory likewise); remembered places stay."""
        self._last_view = None
        if self._tags is not None:
            self._tags.forget_reads()

    def _tags_and_change(self, frame: Frame) -> tuple[list[TagDetection], list[Detection], ChangeOutput]:
        """The tags (raw, and as detections) and the change baseline's output: one job beside the detector."""
        tags, detections, _ = self._tags_alone(frame)
        return tags, detections, self._change_update(frame)

    def _tags_alone(self, frame: Frame) -> tuple[list[TagDetection], list[Detection], ChangeOutput | None]:
        """The tags, raw and as detections (the learned reader's reads among them if it is on)."""
        tags, detections = self._tags.detect(frame) if self._tags is not None else ([], [])
        return tags, detections, None

    def _change_update(self, frame: Frame) -> ChangeOutput:
        return self._change.update(frame.image, frame.T_map_cam, frame.intrinsics, frame.stamp)

    def _compensate_turn(self, frame: Frame) -> None:
        """Boxes are matched in the picture, and a turn moves the whole picture: a camera that turned since the last
        frame (its pose and intrinsics known both times, at most max_turn_deg) has every track's box moved by the
        turn's homography before anything is matched, when the picture turned with it (core.turning.turn_in_picture:
        not a pose that jitters while the view stands). Only the rotation: what the camera drove is parallax, which
        depends on the depth, and the boxes' constant velocity carries it. At 1.8 deg a frame (turning PETS09, coco
        and re-id) IDF1 0.258 -> 0.448 (BENCHMARKS "The tracker follows a turn")."""
        view = None
        if frame.T_map_cam is not None and frame.intrinsics is not None:
            view = (np.asarray(frame.T_map_cam, np.float64), frame.intrinsics.K, frame.image.shape[:2],
                    shift_copy(to_gray(frame.image)))
        last, self._last_view = self._last_view, view
        if (view is None or last is None or last[2] != view[2] or not same_intrinsics(last[1], view[1])
                or pose_delta(last[0], view[0])[1] > _TURNS.max_turn_deg):
            return
        H = view_from_canvas(view[1], last[0], view[0], (0, 0))
        if turn_in_picture(last[3], view[3], H, (view[2][1], view[2][0])):
            self._tracker.compensate(H)

    def _class_detections(self, frame: Frame) -> list[Detection]:
        """The class detector's detections, lifted, with looks where the tracker needs them."""
        if self._objects is None:
            return []
        found = [lift(d, frame, self.config.lifting) for d in self._objects.detect(frame)]
        if self._embedder is not None:  # only where overlap alone cannot settle the match
            found = _with_appearance(self._embedder, frame.image, found,
                                     self._tracker.needs_appearance(found, float(frame.stamp)))
        return found

    def locate(self, item: str) -> ItemAnswer:
        """Usual and current place of an item; UnknownItemError if never seen, BadInputError if empty."""
        return self.memory.locate(item)

    def list_items(self) -> list[ItemAnswer]:
        """locate() for every remembered item, sorted by name."""
        return self.memory.list_all()

    def describe_change(self) -> str:
        """The change backend as a log line names it ('classical', 'learned (floor memory, ...)')."""
        return self._change.describe()

    def reset(self, *, memory: bool = True) -> None:
        """Forget tracks, the change reference and (memory=True) every remembered item, in the store too.
        The memory first: a store that cannot be written (SpatialMemoryError) leaves everything as it was."""
        if memory:
            self.memory.reset()
        self._tracker.reset()
        self._last_view = None
        self._change.reset()
        if self._follower is not None:
            self._follower.reset()
        if self._tags is not None:
            self._tags.forget_reads()
        self._last_stamp = None

    def save(self) -> None:
        """Make the memory's file self-contained (observations are committed every frame anyway)."""
        self.memory.save()

    def close(self) -> None:
        """Commit anything pending and close the store."""
        if self._side is not None:
            self._side.shutdown()
        self.memory.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _with_appearance(
    embedder: AppearanceEmbedder, image: np.ndarray, detections: list[Detection], needed: np.ndarray
) -> list[Detection]:
    """detections with an appearance vector where needed (D,) and they name no item: one batched call."""
    index = [i for i, d in enumerate(detections) if not d.item and needed[i]]
    if not index:
        return detections
    vectors = embedder.embed(image, np.stack([detections[i].box for i in index]))  # (N, D)
    out = list(detections)
    for i, v in zip(index, vectors):
        out[i] = dataclasses.replace(out[i], appearance=v)
    return out
