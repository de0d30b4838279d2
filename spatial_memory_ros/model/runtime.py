"""LearnedChangeDetector: the learned model behind the pipeline's change-backend protocol.

    detector = LearnedChangeDetector(intrinsics=intr)          # the shipped checkpoint, device auto
    out = detector.update(image_bgr, T_map_cam)                # ChangeOutput, as the classical detector's
    Pipeline(config, memory, change=detector)

The model keeps a fixed-size memory (memory_slots x dim floats) on its device between frames; reset()
forgets it. Unlike the classical baseline it never resets on camera motion: the camera pose tells it
where each patch looks, so a moving camera gets change masks too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.change import ChangeOutput
from ..core.config import STILL_HEAD_SCALES, ChangeConfig
from ..core.errors import BadInputError
from ..core.floor_change import FloorChangeMap
from ..core.floor_change_config import FloorChangeConfig
from ..core.geometry import same_intrinsics, scale_intrinsics
from ..core.still_edges import StillEdges, StillEdgesConfig
from ..core.turning import wh
from ..core.types import CameraIntrinsics
from .boxes import agreed_regions, box_embeddings, complete_at_border, mask_regions, side_fleck, trim_bottom
from .checkpoint import DEFAULT_CHECKPOINT, build_model, fp16_on_cuda, resolve_device
from .model import SpatialMemoryModel
from .step_inputs import NetworkStep, PreparedFrame, camera_K, check_image, checked_pose, model_K, step_tensors
from .still_motion import AGENT_MARGIN, moving_still_regions
from .turning_background import TurningBackground


class LearnedChangeDetector:
    """Change mask from the learned model; motion boxes from the mask's connected regions.

    model: a SpatialMemoryModel, a checkpoint path, or None for the shipped checkpoint.
    intrinsics: the camera's (for the image size given to update()); None = a nominal 65-degree lens,
    fine for a static camera, approximate for a moving one. update() may also be given them per frame.
    device: "auto" (CUDA when available), "cpu" or "cuda"; on CUDA the step runs under fp16 autocast.
    threshold: P(changed) above which a pixel is changed; lower finds more, with more false alarms.
    use_memory: None = the checkpoint's setting; False = the memory-disabled ablation (same weights).
    min_blob_area_px: changed regions smaller than this (in the caller's pixels) give no motion box.
    agent_height_m: a region cut by the top, left or right image border is boxed as the whole agent, a
    prism this tall standing on the floor under the region (model.boxes), when the frame has a camera
    pose; 0 = boxes of the visible regions only. The box then covers image area the agent may not fill
    (a wrong height widens it), in exchange for matching the whole-agent boxes trackers are scored on; 3D
    lifting keeps to the visible region's box (ChangeOutput.motion_seen_boxes). A region at a side border
    too short and ragged to be an agent standing there (model.boxes.side_fleck) then gives no box.
    threads: torch CPU threads, set for the whole process (torch has one global pool). 1 suits this small
    model: on a busy 2-core machine 2 threads ran it 5x slower (threads spin-wait on each other); None
    leaves torch's setting alone.
    cameras: how many cameras share this model; update_batch() steps all of them as one batch, each with
    its own memory row (the state is (cameras, S, D)).
    motion_appearance: give each motion box the model's re-identification embedding of its region
    (ChangeOutput.motion_appearance); False leaves it None and skips that work, for a tracker that does
    not use it (the pipeline sets it from tracker.reid and tracker.reid_motion). embed_boxes() works either way.
    blank_std: a frame whose grey levels, at the model's input size, vary less than this (standard deviation)
    shows nothing to remember: a flat surface right in front of the lens (a forklift's side), a covered lens,
    darkness. Its step reads the initial memory and leaves the memory as it was, as the memory-disabled model
    does, so that the memory neither forgets the scene for it nor takes it for familiar (BENCHMARKS
    "Featureless frames"). 0 = every frame uses the memory.
    floor_memory: also keep a floor memory per camera (core.floor_change) and add to the mask what changed on
    the floor since the camera last saw that place: the network finds what moves, not an item taken away
    while the camera looked elsewhere. It needs the camera pose, and is part of the memory: use_memory=False
    turns it off too. Its regions stay out of the motion boxes (they are not moving objects). None = off.
    still_edges: while a camera stands still, a per-pixel background model sets the edges of the network's
    (coarse) mask, within a few pixels of them (core.still_edges). The motion boxes keep the network's
    regions. Part of the memory like the floor memory (use_memory=False turns it off). None = off.
    slot_memory: False = the slot ablation: every step reads the initial slots and leaves them as they were,
    while the floor memory, still edges and still background stay (use_memory=False turns those off too). It
    measures what the recurrent slots alone add (BENCHMARKS "The slot memory alone").
    A model built with ModelConfig.background (the shipped one is) also gets each camera's still background
    (model.background), kept here per camera; use_memory=False gives it none. A model with a still head
    (ModelConfig.still_head) has its mask corrected by it on a still camera; its motion boxes come from the
    change head's regions before that correction, as they keep the network's regions under the still edges.
    """

    def __init__(
        self,
        model: SpatialMemoryModel | str | Path | None = None,
        *,
        intrinsics: CameraIntrinsics | None = None,
        device: str = "auto",
        threshold: float = 0.5,
        use_memory: bool | None = None,
        min_blob_area_px: int = 150,
        agent_height_m: float = 1.4,
        threads: int | None = 1,
        cameras: int = 1,
        motion_appearance: bool = True,
        floor_memory: FloorChangeConfig | None = None,
        blank_std: float = 2.0,
        still_edges: StillEdgesConfig | None = None,
        still_scale: int = 1,
        follow_turns: bool = True,
        slot_memory: bool = True,
    ) -> None:
        if cameras < 1:
            raise ValueError(f"cameras must be >= 1, got {cameras}")
        self.cameras = cameras
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.device = resolve_device(device)
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(threads)
        if isinstance(model, SpatialMemoryModel):
            self.model = model.to(self.device).eval()
        else:
            self.model = build_model(DEFAULT_CHECKPOINT if model is None else model, self.device)
        self.config = self.model.config
        self.intrinsics = intrinsics
        self.threshold = threshold
        if blank_std < 0:
            raise ValueError(f"blank_std must be >= 0, got {blank_std}")
        self.blank_std = blank_std
        self.use_memory = self.config.use_memory if use_memory is None else use_memory
        self.slot_memory = slot_memory
        self.min_blob_area_px = min_blob_area_px
        self.agent_height_m = agent_height_m
        self.motion_appearance = motion_appearance
        self.floor_memory = floor_memory.validate() if floor_memory is not None else None
        self._floors: list[FloorChangeMap | None] = [None] * cameras  # made on a camera's first posed frame
        self.still_edges = still_edges.validate() if still_edges is not None else None
        self._edges = [StillEdges(self.still_edges) for _ in range(cameras)] if self.still_edges else []
        # a model built with ModelConfig.background compares each frame with its still camera's background
        # (model.turning_background; given no intrinsics, which it is without follow_turns, it is StillBackground's)
        self.follow_turns = follow_turns
        self._backgrounds = [TurningBackground() for _ in range(cameras)] if self.config.background else []
        if still_scale not in STILL_HEAD_SCALES:
            raise ValueError(f"still_scale must be one of {STILL_HEAD_SCALES}, got {still_scale}")
        # a still head (and its background) at still_scale times the model's input: see update_batch
        self.still_scale = still_scale if self._backgrounds and self.model.still is not None else 1
        self._logit_threshold = float(np.log(threshold / (1.0 - threshold)))
        # the memory's rows are read and written by network_step() and reset(), which cameras' threads may call
        self._state_lock = threading.RLock()
        self.reset()

    @classmethod
    def from_change_config(
        cls, change: ChangeConfig, *, device: str = "auto", motion_appearance: bool = True,
        use_memory: bool | None = None, geometric_memory: bool = True, cameras: int = 1, slot_memory: bool = True,
    ) -> LearnedChangeDetector:
        """The detector change.* describes, as the node and the bench build it: change.model_path ("" = the
        shipped checkpoint), min_blob_area_px, floor_memory and still_edges (which stand still by
        change.pose_reset_*). geometric_memory=False leaves out the floor memory and the still edges (the
        bench's learned_no_floor). ValueError: a missing or foreign checkpoint, cuda without CUDA."""
        return cls(
            change.model_path or None, device=device, use_memory=use_memory,
            min_blob_area_px=change.min_blob_area_px, motion_appearance=motion_appearance,
            floor_memory=FloorChangeConfig() if change.floor_memory and geometric_memory else None,
            still_edges=StillEdgesConfig.following(change) if change.still_edges and geometric_memory else None,
            still_scale=change.still_head_scale, follow_turns=change.follow_turns, cameras=cameras,
            slot_memory=slot_memory,
        )

    def describe(self) -> str:
        """What the node's startup log calls this backend: 'learned' and the memories and heads it runs (the still
        head is the checkpoint's, so only the loaded model knows it)."""
        if not self.use_memory:  # the ablation: no floor memory, still edges or background either
            return "learned (memory off)"
        parts = [name for name, on in (("floor memory", self.floor_memory is not None),
                                        ("still edges", self.still_edges is not None)) if on]
        if self.model.still is not None and self._backgrounds:
            parts.append("still head" + (f" x{self.still_scale}" if self.still_scale > 1 else ""))
            if self.follow_turns:
                parts.append("following turns")
        if not self.slot_memory:
            parts.append("slots off")
        return "learned" + (f" ({', '.join(parts)})" if parts else "")

    def reset(self, camera: int | None = None) -> None:
        """Forget what was seen (by one camera, or by all): the memory goes back to its initial state."""
        with torch.inference_mode(), self._state_lock:
            initial = self.model.initial_state(self.cameras, self.device)  # (C, S, D), stays on the device
            if camera is None:
                self._state = initial
                self._embeddings: list[torch.Tensor | None] = [None] * self.cameras  # (N, E) of each last frame
                self._image_size: list[tuple[int, int] | None] = [None] * self.cameras  # (W, H) per camera
                # the intrinsics each camera's memory was built with: a zoom is another view, as a new size is
                self._image_K: list[np.ndarray | None] = [None] * self.cameras
                # each camera's previous frame (grey, at the still head's size) and pose: what moved since
                self._previous: list[tuple[np.ndarray, np.ndarray | None] | None] = [None] * self.cameras
            else:  # as a detector of its own would: its last frame's size and embeddings go too
                self._state[camera] = initial[camera].to(self._state.dtype)
                self._embeddings[camera] = None
                self._image_size[camera] = None
                self._image_K[camera] = None
                self._previous[camera] = None
        for floor in self._floors if camera is None else self._floors[camera:camera + 1]:
            if floor is not None:
                floor.reset()
        for edges in self._edges if camera is None else self._edges[camera:camera + 1]:
            edges.reset()
        for background in self._backgrounds if camera is None else self._backgrounds[camera:camera + 1]:
            background.reset()

    @property
    def state(self) -> torch.Tensor:
        """(C, S, D) the memory, one row per camera (S + place_cells**2 rows with a place memory); its size
        never changes."""
        return self._state

    @property
    def floor_memory_bytes(self) -> int:
        """The floor memory's size in bytes, all cameras (each map is made on its camera's first posed frame)."""
        return sum(f.nbytes for f in self._floors if f is not None)

    def update(
        self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None, intrinsics: CameraIntrinsics | None = None,
        stamp: float | None = None,
    ) -> ChangeOutput:
        """One frame: (H, W, 3) uint8 BGR, T_map_cam (4, 4) camera optical frame in the map if known, stamp (s)
        its capture time (the floor memory's clock; None = now)."""
        if self.cameras != 1:
            raise BadInputError(f"this detector serves {self.cameras} cameras: call update_batch()")
        return self.update_batch([image_bgr], [T_map_cam], [intrinsics], [stamp])[0]

    def update_batch(
        self,
        images_bgr: Sequence[np.ndarray],
        T_map_cam: Sequence[np.ndarray | None],
        intrinsics: Sequence[CameraIntrinsics | None] | None = None,
        stamps: Sequence[float | None] | None = None,
    ) -> list[ChangeOutput]:
        """One frame per camera, in camera order, as one batched model step; image sizes may differ.
        stamps: each frame's capture time in s (the floor memory's clock); None = now."""
        C = self.cameras
        if len(images_bgr) != C or len(T_map_cam) != C or (intrinsics is not None and len(intrinsics) != C):
            raise BadInputError(f"update_batch needs exactly one image, pose (and intrinsics) per camera ({C})")
        intrs = list(intrinsics) if intrinsics is not None else [None] * C
        for image, T, intr in zip(images_bgr, T_map_cam, intrs):  # all checked before any camera's memory is touched
            check_image(image)
            checked_pose(T)
            camera_K(intr or self.intrinsics, image.shape[1], image.shape[0])
        frames = [self.prepare(c, images_bgr[c], T_map_cam[c], intrs[c], None if stamps is None else stamps[c])
                  for c in range(C)]
        return [self.finish(frame, step) for frame, step in zip(frames, self.network_step(frames))]

    # update_batch() in three phases: prepare() and finish() touch one camera's own state and may run on that
    # camera's thread, beside other cameras' (model.camera_batch); network_step() steps any set of cameras'
    # prepared frames as one batch, holding the memory's lock.

    @torch.inference_mode()
    def prepare(self, camera: int, image_bgr: np.ndarray, T_map_cam: np.ndarray | None,
                intrinsics: CameraIntrinsics | None = None, stamp: float | None = None) -> PreparedFrame:
        """One camera's frame made ready for network_step(): resized, its intrinsics and pose checked, and the
        camera's still background looked up. BadInputError: a malformed image or pose, or intrinsics of another
        image size (nothing is changed then)."""
        if not 0 <= camera < self.cameras:
            raise ValueError(f"camera must be in [0, {self.cameras}), got {camera}")
        cfg = self.config
        check_image(image_bgr)
        pose = checked_pose(T_map_cam)
        h, w = image_bgr.shape[:2]
        K_px = camera_K(intrinsics or self.intrinsics, w, h)  # BadInputError if they are another image size's
        last_K = self._image_K[camera]
        if self._image_size[camera] not in (None, (w, h)) or (
                last_K is not None and not same_intrinsics(last_K, K_px)):
            # another camera, resolution or zoom: the memory does not describe this view (after a 1.5x zoom the
            # still background marked 89 % of the frame changed, fading over seconds)
            self.reset(camera)
        self._image_size[camera], self._image_K[camera] = (w, h), K_px.copy()
        small = cv2.resize(image_bgr, (cfg.image_width, cfg.image_height), interpolation=cv2.INTER_AREA)
        K = model_K(K_px, w, h, cfg)
        blank = self.use_memory and self.blank_std > 0 and float(
            cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).std()) < self.blank_std
        frame = PreparedFrame(camera, image_bgr, small, K_px, K, pose, T_map_cam, stamp, blank, small)
        if self._backgrounds and self.use_memory:
            k = self.still_scale
            # the still head compares a finer frame with a finer background (far, small things)
            frame.seen = small if k == 1 else cv2.resize(image_bgr, (k * cfg.image_width, k * cfg.image_height),
                                                         interpolation=cv2.INTER_AREA)
            # a turn is followed only when asked and with real intrinsics: the nominal ones would warp it off
            real = self.follow_turns and (intrinsics is not None or self.intrinsics is not None)
            # valid: one flag, or (following turns) one per pixel: what the camera has shown long enough
            frame.seen_K = scale_intrinsics(K, k, k) if real else None
            frame.background, frame.valid = self._backgrounds[camera].before(frame.seen, T_map_cam, frame.seen_K)
        return frame

    @torch.inference_mode()
    def network_step(self, frames: Sequence[PreparedFrame]) -> list[NetworkStep]:
        """One model step over prepared frames of distinct cameras, as one batch: their memory rows step, the
        other cameras' stay as they are. Returns each frame's change logits (and the change head's own where a
        still head corrects them) at the model's output size, for finish()."""
        cams = [f.camera for f in frames]
        if not frames or len(set(cams)) != len(cams):
            raise ValueError(f"network_step needs frames of distinct cameras, got cameras {cams}")
        cfg, dev, n = self.config, self.device, len(frames)
        x = step_tensors(frames, cfg, dev, self.still_scale, bool(self._backgrounds and self.use_memory))
        rows = torch.tensor(cams, device=dev)
        with self._state_lock:
            before = self._state[rows]  # (n, S, D)
            state = before
            blank = torch.tensor([f.blank for f in frames], device=dev) if any(f.blank for f in frames) else None
            if blank is not None:  # those rows step as the memory-disabled model: the initial memory in, nothing out
                state = torch.where(blank[:, None, None], self.model.initial_state(n, dev), state)
            with fp16_on_cuda(dev):
                out = self.model(x.image, x.K, x.pose, x.has_pose, state, use_memory=self.use_memory,
                                 background=x.background, background_valid=x.background_valid,
                                 still_image=x.still_image, still_background=x.still_background,
                                 still_valid=x.still_valid)
            after = out.state if blank is None else torch.where(blank[:, None, None], before, out.state)
            if not self.slot_memory:  # the slots stay as reset() made them (initial); place cells, if any, learn
                slots = self.config.memory_slots
                after = torch.cat([before[:, :slots].to(after.dtype), after[:, slots:]], dim=1)
            # a row that came out NaN or inf (inputs that passed every check, e.g. a focal length of 1e-40 px) keeps
            # its memory: the recurrent state would otherwise keep the NaN for good, with an empty mask ever after
            finite = torch.isfinite(after).flatten(1).all(dim=1)
            if not bool(finite.all()):
                after = torch.where(finite[:, None, None], after, before.to(after.dtype))
            if self._state.dtype != after.dtype:
                self._state = self._state.to(after.dtype)
            self._state[rows] = after
            for i, c in enumerate(cams):
                self._embeddings[c] = out.embeddings[i]
        logits = out.change_logits[:, 0].float().cpu().numpy()  # (n, h / s, w / s)
        # motion boxes come from the change head's own regions: a still head (model/still_head.py) refines the
        # mask, as the still-camera edges do, and marks scene changes that are not moving things
        regions = None if out.region_logits is out.change_logits else out.region_logits[:, 0].float().cpu().numpy()
        return [NetworkStep(logits[i], None if regions is None else regions[i]) for i in range(n)]

    @torch.inference_mode()
    def finish(self, frame: PreparedFrame, step: NetworkStep) -> ChangeOutput:
        """The camera's change output from its network step: the mask at the image's size, its regions' boxes and
        looks, the floor memory's and still edges' parts; the camera's background learns the frame."""
        c, image = frame.camera, frame.image
        if frame.background is not None:  # learn the frame, without what the network calls changed if the model says so
            skip = None
            if self.config.background_skips_changes:
                skip = cv2.resize((step.logits > self._logit_threshold).astype(np.uint8), wh(frame.seen),
                                  interpolation=cv2.INTER_NEAREST)
            self._backgrounds[c].learn(frame.seen, skip)
        h, w = image.shape[:2]
        full = cv2.resize(step.logits, (w, h), interpolation=cv2.INTER_LINEAR)
        mask = (full > self._logit_threshold).astype(np.uint8) * 255
        moving = mask  # the boxes' regions: the change head's own where a still head corrected the mask
        own = None  # the change head's own regions, where the still head gave the mask
        grey = cv2.cvtColor(frame.seen, cv2.COLOR_BGR2GRAY)  # this frame, for what moves by the next one
        if step.regions is not None:
            full_regions = cv2.resize(step.regions, (w, h), interpolation=cv2.INTER_LINEAR)
            found_own = (full_regions > self._logit_threshold).astype(np.uint8) * 255
            own = agreed_regions(found_own, mask)  # what the still head does not see changed is not an agent
            moving = np.maximum(own, self._moving_still_regions(frame, grey, mask, found_own))
        self._previous[c] = (grey, frame.T_map_cam)
        found = mask_regions(moving, self.min_blob_area_px)
        # a region is trimmed by a share of the cell of the mask its bottom edge comes from: the change head's, or
        # a still camera's moving region from the still head's finer mask (_moving_still_regions)
        coarse = step.logits if step.regions is None else step.regions
        cell_px, fine_px = h / coarse.shape[0], h / step.logits.shape[0]
        seen = boxes = [trim_bottom(box, cell_px if own is None or _bottom_in(own, box) else fine_px, h)
                        for box, _area in found]
        T = None if frame.T_map_cam is None else np.asarray(frame.T_map_cam, dtype=np.float64)
        scene = self._floor_changes(c, image, frame.K_px, T, frame.stamp, mask)
        if T is not None and self.agent_height_m > 0:
            boxes = [complete_at_border(b, frame.K_px, T, w, h, self.agent_height_m) for b in seen]
            # a fleck is judged on the region as found and its completion, as its limits were set (before the trim)
            agents = [i for i, (b, area) in enumerate(found)
                      if not side_fleck(b, area, complete_at_border(b, frame.K_px, T, w, h, self.agent_height_m), h)]
            seen, boxes = [seen[i] for i in agents], [boxes[i] for i in agents]
        # what the region itself shows (not its completion beyond the border) is what to recognise later,
        # and where depth and the floor contact are (ChangeOutput.motion_seen_boxes)
        look = self.embed_boxes(np.array(seen).reshape(-1, 4), camera=c) if self.motion_appearance else None
        if self._edges and self.use_memory:  # the boxes above keep the network's own regions
            mask = self._edges[c].refine(image, mask, T)
        if scene is not None:
            mask = np.maximum(mask, scene)
        return ChangeOutput(mask=mask, motion_boxes=boxes, camera_moved=False, motion_appearance=look,
                            motion_seen_boxes=seen)

    def _moving_still_regions(self, frame: PreparedFrame, grey: np.ndarray, mask: np.ndarray,
                              regions: np.ndarray) -> np.ndarray:
        """still_motion.moving_still_regions against the camera's previous frame and its background's limits."""
        bg_config = self._backgrounds[frame.camera].config if self._backgrounds else None
        return moving_still_regions(self._previous[frame.camera], frame.seen, frame.seen_K, frame.T_map_cam, grey,
                                    mask, regions, bg_config)

    def _floor_changes(self, camera: int, image: np.ndarray, K_px: np.ndarray, T: np.ndarray | None,
                       stamp: float | None, moving: np.ndarray) -> np.ndarray | None:
        """(H, W) uint8 floor changes from the camera's floor memory, or None (off, no pose, memory disabled).
        moving: the network's mask; those pixels (grown a little: blur at their edges) are not the floor."""
        if self.floor_memory is None or not self.use_memory or T is None:
            return None
        floor = self._floors[camera]
        if floor is None:
            floor = self._floors[camera] = FloorChangeMap(self.floor_memory)
        t = time.monotonic() if stamp is None else float(stamp)
        return floor.update(image, K_px, T, t, exclude=cv2.dilate(moving, AGENT_MARGIN))

    @torch.inference_mode()
    def embed_boxes(self, boxes: np.ndarray, camera: int = 0) -> np.ndarray:
        """(M, 4) px boxes in a camera's last frame -> (M, E) L2-normalised re-identification embeddings.

        Each box's embedding is the normalised mean of the patch embeddings whose centres lie in it (the
        nearest patch for a box smaller than a patch). Compare with a dot product: 1 = same look.
        """
        size = self._image_size[camera]
        last = self._embeddings[camera]
        if last is None or size is None:
            raise BadInputError("embed_boxes() needs a frame first: call update()")
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        rows, cols = self.config.grid
        emb = last.float().reshape(rows, cols, -1).cpu().numpy()  # (rows, cols, E)
        return box_embeddings(emb, size, boxes)


def _bottom_in(mask: np.ndarray, box: np.ndarray) -> bool:
    """Whether the (H, W) mask has a pixel on the box's bottom row (x2/y2 exclusive) within its columns."""
    x1, _y1, x2, y2 = (int(v) for v in box)
    return bool(mask[y2 - 1, x1:x2].any())
