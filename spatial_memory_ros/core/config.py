"""The pipeline's settings: one frozen dataclass per part, grouped in PipelineConfig.

Defaults here must match config/spatial_memory.yaml (a test checks that they do).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .errors import BadInputError


@dataclass(frozen=True)
class TagConfig:
    """AprilTag 36h11 item identity."""

    tag_size_m: float = 0.16  # black-border edge length; wrong size scales every tag position
    items: dict[str, int] = field(default_factory=dict)  # item name -> tag id; others are tag_<id>

    def name_for(self, tag_id: int) -> str:
        for name, tid in self.items.items():
            if tid == tag_id:
                return name
        return f"tag_{tag_id}"

    def names_a_tag(self, item: str) -> bool:
        """Whether an item name stands for a tag (a mapped name or tag_<id>), not a detector class."""
        return item in self.items or (item.startswith("tag_") and item[4:].isdigit())


CHANGE_METHODS = ("classical", "learned")
BATCH_CAMERAS = ("auto", "always", "never")  # change.batch_cameras (not on / off: YAML reads those as booleans)
STILL_HEAD_SCALES = (1, 2, 3, 4)  # the values change.still_head_scale may take
# tracker.min_hits 0 (auto) means these. The learned change backend's mask makes few false regions, so a
# region's track is published from its first frame. Measured on warehouse patrol train seeds 1004 and 1005
# and home patrol 1004 (10 min each) against 2: det F1 +1.3 to +1.7 points (recall +3.6 to +4.8, precision
# -0.6 to -2.8), HOTA +1.8 to +2.3, IDF1 +1.5 to +1.6, MOTA +2.1 to +3.0; 2 had itself beaten 3.
CLASSICAL_MIN_HITS = 3
LEARNED_MIN_HITS = 1


@dataclass(frozen=True)
class ChangeConfig:
    """Change detection: the learned model (static or moving camera) or the classical baseline (static camera)."""

    # learned (spatial_memory_ros.model; needs torch) | classical. learned by default since 2026-12-03: a robot's
    # camera moves, and there the classical detector marks next to nothing (simulated patrols: change mIoU
    # 0.48-0.50 against 0.97-0.99); on real still footage it leads classical on four of five measures and trails
    # on cup.mp4's moved thermos (77 % against 79 %). BENCHMARKS.md, "The learned change method by default".
    method: str = "learned"
    model_path: str = ""  # learned: checkpoint file; "" = the one shipped in the package
    # learned: also mark what changed on the floor since the camera last saw that place (core.floor_change),
    # with a camera pose; the network alone finds moving agents but not an item taken away minutes ago
    floor_memory: bool = True
    # learned: while the camera stands still, a per-pixel background model sets the network's coarse mask
    # edges, within a few pixels of them (core.still_edges)
    still_edges: bool = True
    # learned, a model with a still head: it compares frame and background at this many times the model's input
    # (1-4; 2 = 256 x 192 for the shipped model), so that it sees far, small things (BENCHMARKS.md, "The change
    # mask on PETS09"); the change head's mask is upsampled to meet it. About 5 ms a 640 x 480 frame more than 1;
    # 2 since the node holds 10 Hz with it on two cores (BENCHMARKS.md, "The still head at 2, by default").
    still_head_scale: int = 2
    # a camera that only turns (a pan-tilt head, a robot turning in place with the camera on its axis) keeps its
    # reference, re-projected into each new view (core.turning): the classical detector's reference, the learned
    # backend's still background (model.turning_background); needs the pose and intrinsics. A frame that turned
    # over 3 deg since the last is blurred: skipped, not compared (an empty classical mask) nor learned. The classical
    # detector corrects a pose a little off by the picture while it follows (core.turning.image_shift).
    # Off, any turn past 2 degrees starts a new one. On PETS09 re-projected into a panning camera the classical
    # detector finds 96 % of the people with 518 false px a frame (16,795 without), the learned one 97 % (66 %
    # without); the simulator's turns are too fast to follow, so its benchmark figures are the same either way
    # but for a few skipped frames of the classical pipeline on home patrol (BENCHMARKS.md, "A turning camera on
    # real footage", "A blurred frame is skipped, not a restart")
    follow_turns: bool = True
    # learned, several cameras in one node: always = one model whose network steps the cameras' frames as one batch
    # (model.camera_batch); never = a model per camera; auto = always with CUDA, never on a CPU. On the 2-core CPU two
    # cameras batched answered later (p50 71 against 59-60 ms, BENCHMARKS.md "One network for two cameras"): two
    # networks run on the two cores at once, while one batch runs on one; batching is what a GPU is for.
    batch_cameras: str = "auto"

    threshold: float = 30.0  # grey-level difference (0..255) that counts as change; lower = more noise
    # Also a change: a colour turned by more than this angle (degrees, RGB; brightness-invariant). 0 = grey only.
    # 8 was the best or within 0.01 of the best change mIoU of 5 / 6 / 8 / 12 / 16 / 24 on both static scenes
    # of train seeds 1004 and 1005 (3 simulated minutes each; BENCHMARKS.md); ~2 ms a 640x480 frame.
    colour_angle_deg: float = 8.0
    stable_frames: int = 20  # frames a pixel must stay put before it becomes the new reference
    # Smaller moving blobs are not turned into dynamic detections. 100 for the learned backend was tried
    # (2026-11-30): +0.5 det F1 points on train seeds, no consistent change on the held-out runs (-0.7 on one),
    # so not adopted (BENCHMARKS.md, "A smaller region for the learned model's detections").
    min_blob_area_px: int = 150
    motion_reset_fraction: float = 0.5  # fraction of changed pixels that means "the view moved": reset
    pose_reset_translation_m: float = 0.05  # camera pose moves more than this -> reset the reference
    pose_reset_rotation_deg: float = 2.0  # ... or rotates more than this


@dataclass(frozen=True)
class TrackerConfig:
    """Frame-to-frame association (scipy linear_sum_assignment on 1 - IoU, blended with appearance).

    Re-identification (reid) uses appearance vectors where detections carry them: the pipeline embeds
    class detections that name no item (people), never tags, so the AprilTag path costs nothing extra. It
    adds a CPU forward pass per such detection (spatial_memory_ros.reid). Moving regions have a look only
    from the learned change backend (its model's re-id head, tracker.reid_motion), with settings of their own.
    """

    min_iou: float = 0.1  # below this a detection never matches a track by overlap
    # Matched frames before a track is confirmed; higher = fewer false tracks. 0 = auto: CLASSICAL_MIN_HITS,
    # or LEARNED_MIN_HITS with change.method learned (resolved(), PipelineConfig.resolved_tracker).
    min_hits: int = 0
    max_age_s: float = 2.0  # a track unmatched this long is deleted (LOST before that)
    # EMA weight of the newest velocity estimate, per 0.1 s: a frame closer than that weighs its share of a step
    velocity_smoothing: float = 0.5
    tentative_max_misses: int = 1  # missed frames in a row a TENTATIVE track survives; 0 = deleted on a miss
    reid: bool = True  # use appearance (class detectors only); off = overlap alone, no embedder loaded
    reid_weight: float = 0.9  # share of the cosine distance in the matching cost (rest: 1 - IoU; min_iou gates)
    reid_max_distance: float = 0.3  # cosine distance above which looks never re-identify a lost track
    reid_max_age_s: float = 10.0  # s a lost track stays re-identifiable by looks (unpublished after max_age_s)
    # A detection that overlap alone matches to a steady track is embedded only every this many matches
    # (Tracker.needs_appearance); 1 = every detection every frame. Higher saves embedder time.
    reid_refresh_frames: int = 3
    # Moving regions of the learned change backend carry the model's re-identification embedding (the classical
    # backend has none: no effect there). A lost track of one is re-identified by it within
    # reid_motion_max_distance (cosine) and reid_motion_max_age_s; frame to frame overlap alone matches them.
    # Set on 11 train scenes (75 simulated min), checked on 4 more: mean IDF1 0.891 -> 0.893 and 20 -> 18 ID
    # switches, then a tie (0.877, 18 both), no scene lower; the MobileNetV2 settings above had given 0.862
    # (41) and 0.842 (33). The model tells agents apart only roughly (same agent 1 s apart: median cosine
    # distance 0.07, 90th pct 0.24; two agents of one kind: 10th pct 0.08), so only short losses are trusted:
    # with 4 or 10 s instead of 2.5 wrong merges cost up to 0.08 IDF1 on a scene. BENCHMARKS.md.
    reid_motion: bool = True
    reid_motion_max_distance: float = 0.3
    reid_motion_max_age_s: float = 2.5

    def resolved(self, change_method: str = "classical") -> TrackerConfig:
        """self with min_hits 0 (auto) replaced by that change method's own (CLASSICAL/LEARNED_MIN_HITS)."""
        if self.min_hits > 0:
            return self
        auto = LEARNED_MIN_HITS if change_method == "learned" else CLASSICAL_MIN_HITS
        return dataclasses.replace(self, min_hits=auto)


@dataclass(frozen=True)
class MemoryConfig:
    """Item memory (usual / current / displaced) and its store."""

    db_path: str = "spatial_memory.db"  # SQLite file; "" or ":memory:" keeps nothing on disk
    place_radius_m: float = 0.3  # observations closer than this to a place belong to it
    # current farther than this from usual -> displaced; places closer than this are one spot (core.item_memory)
    displaced_distance_m: float = 0.5
    max_dwell_gap_s: float = 300.0  # an unobserved gap between sightings of the item staying adds at most this
    max_places_per_item: int = 16  # the least usual places beyond this are forgotten (bounded memory)
    # A tagged item's place that is in view, decodable and unoccluded this many frames without its tag is
    # "seen empty": the item has gone, and current becomes the likeliest remembered place. 0 = never.
    absent_after_checks: int = 5
    # Usual place = most returns (the item came back there from elsewhere); a place's dwell counts as one
    # return per this many seconds, and the place an item was first seen at as half a return.
    dwell_per_return_s: float = 3600.0
    # A return is earned by a stay: this many sightings at a place with none at the item's last stay in between
    # (and the place not seen empty meanwhile), at a place the item had been at before its last stay and more
    # than displaced_distance_m from it. A tag misread as the item gives one to a few sightings at a time; a
    # patrol passing an item really put back sees it about a dozen times. By time alone the two look alike ("A
    # return needs a stay" in BENCHMARKS.md: a 10 s stay cost validation layout); 3 is set on training seed 1007
    # ("A return needs a visit"). 1 = every sighting away from the last stay is a stay.
    min_stay_sightings: int = 3
    # Return prior (core.return_prior): displaced items tend to be put back. With it on, an item last seen
    # away from its usual place is answered at the usual place (current_inferred) once P(back) from the
    # time since it was first seen away exceeds return_prior_min_p. The curve is fitted on training scene
    # scripts (`spatial-memory fit-return-prior`); it describes how that scene generator moves things, so
    # refit it on a site's own history before trusting it there. Off by default.
    return_prior: bool = False
    return_prior_path: str = ""  # JSON written by fit-return-prior; "" = the one shipped in the package
    # Answer "back" only above this; higher keeps the last sighting longer. 0.4, not the 0.5 that a calibrated
    # P would want: P counts from the first sighting away, later than the true arrival, so it runs low. On
    # warehouse patrol train seeds 1004-1006 (60 min each) the answers it changed gained, net of those it
    # broke, +12 / +22 / +9 / +6 right answers at 0.3 / 0.4 / 0.5 / 0.6 (BENCHMARKS.md).
    return_prior_min_p: float = 0.4


DETECTOR_BACKENDS = ("apriltag", "coco", "onnx")


@dataclass(frozen=True)
class DetectorConfig:
    """Which detector finds things in each frame (spatial_memory_ros.detect), and what its classes mean.

    A class in item_classes becomes an item named after the class ("cup"): one item per class name, so two
    cups in view are one item (the higher score wins); use tags to tell them apart. A class in
    dynamic_classes moves on its own (people). Classes in neither list are dropped.
    """

    backend: str = "apriltag"  # apriltag | coco (SSD-MobileNetV2, cv2.dnn) | onnx (YOLO-style, onnxruntime)
    apriltag_items: bool = True  # coco/onnx: detect AprilTags as well, so tagged items keep their identity
    model_path: str = ""  # onnx: the .onnx file (required)
    labels_path: str = ""  # onnx: class names, one per line, in output order; "" = the 80 COCO classes
    score_threshold: float = 0.5  # lower finds more, and more false detections
    nms_iou: float = 0.45  # onnx: boxes of one class overlapping more than this are one detection
    item_classes: tuple[str, ...] = ("cup", "bottle", "book", "laptop", "remote", "cell phone")
    dynamic_classes: tuple[str, ...] = ("person",)
    # Off: each detection's class is its item's name. On: item-class detections continue each other's
    # tracks by overlap and a track is named by the score-weighted majority of its classes until it is
    # confirmed (core.tracker), for a detector that gives one object several names (SSD-MobileNetV2 calls
    # opencv-doc's black thermos `cell phone` and `remote`). The cost: a cup's track also continues with a
    # remote detected on the cup's box, and an object found away from its lost track starts a new track
    # with a vote of its own (a class name alone used to join them at any distance). On by default since
    # 2026-11-30: the two real clips need it (cup.mp4: current on the thermos 99 % of moved frames with it,
    # 83 % without) and PETS09 scores the same either way (it has no item-class tracks).
    item_class_vote: bool = True
    # On: a confirmed item-class track that the detector misses is followed by optical flow from its last
    # box (core.item_follow), for at most follow_max_s after its last real detection, and the memory is told
    # where it went. For a detector that names an object at rest and loses it while it is carried (SSD
    # finds opencv-doc's box in 13 of 455 frames, nearly all before it moves). The cost: 2-5 ms per followed
    # object, and an item occluded by something moving can be dragged along with it until the cap. On by
    # default: box.mp4 shows no answer following the box without it (BENCHMARKS.md, "Real data").
    follow_items: bool = True
    follow_max_s: float = 10.0
    # On: quads the tag finder could not decode are read by a small learned net (model.tag_reader) as one of
    # the configured items' tag ids, or not at all, and placed where the quad's centre ray meets the
    # lifting plane (a read has no pose of its own). For a moving camera, whose tags smear, and far tags.
    # Needs torch and a tag map (items); off by default; the learned benchmark method turns it on.
    learned_tag_reader: bool = False
    tag_reader_min_margin: float = 12.0  # nats the read id must beat the runner-up by (see model.tag_reader)

    @property
    def finds_tags(self) -> bool:
        """Whether AprilTags are looked for: the apriltag backend, or a class detector with apriltag_items."""
        return self.backend == "apriltag" or self.apriltag_items


@dataclass(frozen=True)
class LiftingConfig:
    """How a detection's box becomes a map-frame point when it has no tag pose.

    Aligned depth first (median depth in the box's central part, along the box-centre ray); without
    depth, the ground plane: the ray through the box's bottom centre (where a person or an object
    touches the floor) meets the horizontal plane z = plane_height_m of the map frame.
    """

    ground_plane: bool = True  # off: detections without depth or tag stay unpositioned
    plane_height_m: float = 0.0  # map-frame height of the supporting plane (floor 0; a table ~0.75)
    max_range_m: float = 20.0  # ground hits farther than this are dropped: near the horizon 1 px is metres
    # a moving region that depth shows within this of the plane is a floor mark, not a mover: dropped
    # (core.standing; 0 = off; no effect without depth)
    min_standing_m: float = 0.1


@dataclass(frozen=True)
class PipelineConfig:
    tags: TagConfig = field(default_factory=TagConfig)
    change: ChangeConfig = field(default_factory=ChangeConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    lifting: LiftingConfig = field(default_factory=LiftingConfig)

    def resolved_tracker(self) -> TrackerConfig:
        """tracker with min_hits 0 (auto) replaced by the change method's own (TrackerConfig.resolved)."""
        return self.tracker.resolved(self.change.method)

    def validate(self) -> PipelineConfig:
        """Raise BadInputError naming the setting to change; return self."""
        # every number finite first: the range checks below let inf through ("> 0"), and tag_size_m inf made
        # OpenCV assert on every frame that showed a tag
        for section in dataclasses.fields(self):
            sub = getattr(self, section.name)
            for f in dataclasses.fields(sub):
                value = getattr(sub, f.name)
                if isinstance(value, float) and not math.isfinite(value):
                    name = f.name if section.name == "tags" else f"{section.name}.{f.name}"
                    raise BadInputError(f"{name} must be a finite number, got {value}")
        checks = [
            (self.tags.tag_size_m > 0, "tag_size_m must be > 0"),
            (self.change.pose_reset_translation_m > 0, "change.pose_reset_translation_m must be > 0"),
            (self.change.pose_reset_rotation_deg > 0, "change.pose_reset_rotation_deg must be > 0"),
            (0 < self.change.threshold < 255, "change.threshold must be in (0, 255)"),
            (0 <= self.change.colour_angle_deg < 90, "change.colour_angle_deg must be in [0, 90) (0 = off)"),
            (self.change.stable_frames >= 1, "change.stable_frames must be >= 1"),
            (self.change.min_blob_area_px >= 1, "change.min_blob_area_px must be >= 1"),
            (self.change.still_head_scale in STILL_HEAD_SCALES, "change.still_head_scale must be in [1, 4]"),
            (0 < self.change.motion_reset_fraction <= 1, "change.motion_reset_fraction must be in (0, 1]"),
            (self.change.batch_cameras in BATCH_CAMERAS,
             f"change.batch_cameras must be one of {', '.join(BATCH_CAMERAS)}, got {self.change.batch_cameras!r}"),
            (self.change.method in CHANGE_METHODS,
             f"change.method must be one of {', '.join(CHANGE_METHODS)}, got {self.change.method!r}"),
            (0 <= self.tracker.min_iou < 1, "tracker.min_iou must be in [0, 1)"),
            (self.tracker.min_hits >= 0, "tracker.min_hits must be >= 0 (0 = auto)"),
            (self.tracker.max_age_s > 0, "tracker.max_age_s must be > 0"),
            (0 < self.tracker.velocity_smoothing <= 1, "tracker.velocity_smoothing must be in (0, 1]"),
            (self.tracker.tentative_max_misses >= 0, "tracker.tentative_max_misses must be >= 0"),
            (0 <= self.tracker.reid_weight <= 1, "tracker.reid_weight must be in [0, 1]"),
            (0 < self.tracker.reid_max_distance <= 2, "tracker.reid_max_distance must be in (0, 2]"),
            (self.tracker.reid_max_age_s >= 0, "tracker.reid_max_age_s must be >= 0"),
            (0 < self.tracker.reid_motion_max_distance <= 2, "tracker.reid_motion_max_distance must be in (0, 2]"),
            (self.tracker.reid_motion_max_age_s >= 0, "tracker.reid_motion_max_age_s must be >= 0"),
            (self.tracker.reid_refresh_frames >= 1, "tracker.reid_refresh_frames must be >= 1"),
            (self.memory.place_radius_m > 0, "memory.place_radius_m must be > 0"),
            (self.memory.displaced_distance_m > 0, "memory.displaced_distance_m must be > 0"),
            (self.memory.max_dwell_gap_s > 0, "memory.max_dwell_gap_s must be > 0"),
            (self.memory.max_places_per_item >= 1, "memory.max_places_per_item must be >= 1"),
            (self.memory.absent_after_checks >= 0, "memory.absent_after_checks must be >= 0 (0 = off)"),
            (self.memory.dwell_per_return_s > 0, "memory.dwell_per_return_s must be > 0"),
            (self.memory.min_stay_sightings >= 1, "memory.min_stay_sightings must be >= 1"),
            (0 < self.memory.return_prior_min_p < 1, "memory.return_prior_min_p must be in (0, 1)"),
            (self.detector.backend in DETECTOR_BACKENDS,
             f"detector.backend must be one of {', '.join(DETECTOR_BACKENDS)}, got {self.detector.backend!r}"),
            (self.detector.backend != "onnx" or bool(self.detector.model_path),
             "detector.backend onnx needs detector.model_path (a YOLO-style .onnx file)"),
            (0 < self.detector.score_threshold <= 1, "detector.score_threshold must be in (0, 1]"),
            (0 < self.detector.nms_iou <= 1, "detector.nms_iou must be in (0, 1]"),
            (self.detector.follow_max_s > 0, "detector.follow_max_s must be > 0"),
            (self.detector.tag_reader_min_margin >= 0, "detector.tag_reader_min_margin must be >= 0"),
            (not self.detector.learned_tag_reader or bool(self.tags.items),
             "detector.learned_tag_reader reads only the configured items' tags: set items (name=tag id)"),
            (not set(self.detector.item_classes) & set(self.detector.dynamic_classes),
             "a class cannot be in both detector.item_classes and detector.dynamic_classes"),
            (np.isfinite(self.lifting.plane_height_m), "lifting.plane_height_m must be finite"),
            (self.lifting.max_range_m > 0, "lifting.max_range_m must be > 0"),
            (self.lifting.min_standing_m >= 0, "lifting.min_standing_m must be >= 0 (0 = off)"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInputError(message)
        ids = list(self.tags.items.values())
        if len(ids) != len(set(ids)):
            raise BadInputError(f"items maps two names to one tag id: {self.tags.items}")
        # the item memory keeps names stripped: " mug " would be stored as "mug", which then names no tag (its
        # places never checked empty), and a blank name made every frame that saw its tag fail
        odd = [name for name in self.tags.items if not name.strip() or name != name.strip()]
        if odd:
            raise BadInputError(f"items names must be non-blank with no spaces around them, got {odd}")
        return self
