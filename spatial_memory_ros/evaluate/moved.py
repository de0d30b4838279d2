"""A hand moves a cup / a box in front of a static camera (opencv-doc's cup.mp4, box.mp4): does the moved
object show in the change mask, and which item identity does the class detector give it?

There is no published ground truth for these clips, so the object's region is segmented by colour (the
black thermos: dark pixels; the yellow box: saturated yellow), cleaned to the convex hull of its large
blobs (checked by eye on the pictures this writes: it follows the object, hand excluded).
Per frame after the object has left its first-frame place (region IoU with frame 0 < 0.5):
- ``object_recall``: fraction of the object's region inside the change mask (the *current* place);
- ``vacated_recall``: fraction of its first-frame region, now uncovered, inside the mask (where it *was*).
The detector side reports how often an item track sits on the object, and under which class names.

The clips have no camera_info and no depth, so the item memory gets positions through an assumed camera
(evaluate.assumed_camera: not metric), and its answer for the object's item (the item whose confirmed
tracks sat on the object most often) is projected back into the image and scored by evaluate.follow:
is current on the object, is usual still at its first place, does displaced turn true. The class
detector's item tracks are named by vote (detector.item_class_vote: SSD calls the thermos `cell phone`
and `remote` in turn) and followed by optical flow where SSD misses them (detector.follow_items: it
names the box `book` at rest and almost never while it moves).
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from ..core.config import PipelineConfig
from ..core.errors import BadInputError
from ..core.pipeline import Pipeline
from ..core.types import Frame, TrackState
from ..io.outputs import json_text
from ..viz import contact_sheet, draw_caption, overlay_mask
from .assumed_camera import AssumedCamera
from .config import default_config
from .follow import NEAR_PX, FollowScore, FrameAnswer, static_guess_near

HTML_DIR = Path("/usr/share/doc/opencv-doc/opencv4/html")
CLIPS = ("cup", "box")
_MOVED_IOU = 0.5  # region IoU with the first frame below which the object counts as moved
_APPEARS = 0.3  # a frame "shows" the object when at least this fraction of it is in the change mask
# The memory's default distances (place 0.3 m, displaced 0.5 m) are room scale; these are a desk's. Fixed
# before any scoring: the thermos moves about 0.1-0.2 m in the assumed scale, under the room distances.
_DESK_PLACE_RADIUS_M = 0.05
_DESK_DISPLACED_M = 0.10
ASSUMED_CAMERA = AssumedCamera()
# HSV ranges of each clip's object (cv2.inRange): the box's yellow print; the black thermos on a white wall
OBJECT_HSV = {"box": ((8, 120, 120), (35, 255, 255)), "cup": ((0, 0, 0), (180, 255, 60))}
_CELL_WIDTH = 320  # px, a picture in the contact sheet


def object_region(image_bgr: np.ndarray, clip: str) -> np.ndarray:
    """(H, W) bool: the moved object's silhouette, by colour (convex hull of the largest matching blob)."""
    raw = object_colour(image_bgr, clip)
    # The opening removes thin dark lines (the arm's shadow edge, print on the box); the fingers split the
    # object into pieces, so every piece at least a fifth of the largest one belongs to it.
    raw = cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((11, 11), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(raw)
    out = np.zeros(raw.shape, np.uint8)
    if n > 1:
        areas = stats[1:, cv2.CC_STAT_AREA]
        pieces = 1 + np.nonzero(areas >= 0.2 * areas.max())[0]
        pts = cv2.findNonZero(np.isin(labels, pieces).astype(np.uint8))
        cv2.fillConvexPoly(out, cv2.convexHull(pts), 1)
    return out > 0


def object_colour(image_bgr: np.ndarray, clip: str) -> np.ndarray:
    """(H, W) uint8, 255 where a pixel has the clip's object colour (OBJECT_HSV)."""
    lo, hi = OBJECT_HSV["box" if clip == "box" else "cup"]
    return cv2.inRange(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2HSV), lo, hi)


def has_moved(region: np.ndarray, first: np.ndarray) -> bool:
    """Whether the object (region, bool) has left its first-frame place: region IoU with it under _MOVED_IOU."""
    return bool(region.any()) and (region & first).sum() / max((region | first).sum(), 1) < _MOVED_IOU


def clip_path(clip: str, folder: Path) -> Path:
    """opencv-doc's CLIP.mp4.gz unpacked into folder (a temporary one: the videos are never kept)."""
    if clip not in CLIPS:
        raise BadInputError(f"clip must be one of {CLIPS}, got {clip!r}")
    src = HTML_DIR / f"{clip}.mp4.gz"
    if not src.is_file():
        raise BadInputError(f"no {src}: apt-get install opencv-doc")
    dst = folder / f"{clip}.mp4"
    with gzip.open(src, "rb") as fin, dst.open("wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def evaluate_moved(
    clip: str, out: Path, *, config: PipelineConfig | None = None, max_frames: int | None = None,
    camera: AssumedCamera | None = ASSUMED_CAMERA,
) -> dict[str, Any]:
    """Run the pipeline over CLIP; write OUT/CLIP_metrics.json and CLIP_change.png; return the metrics.

    config: None = evaluate.config.default_config(), the node's coco pipeline. camera: the assumed camera
    that positions detections; None = none (no positions, so no memory answers to score).
    """
    config = (config or default_config()).validate()
    out.mkdir(parents=True, exist_ok=True)
    follow = FollowScore(camera or AssumedCamera(), {
        "room": config.memory,
        "desk": dataclasses.replace(config.memory, place_radius_m=_DESK_PLACE_RADIUS_M,
                                    displaced_distance_m=_DESK_DISPLACED_M),
    })
    detected_now: list[set[str]] = []  # per moved frame: items whose confirmed track is on the object now
    found_now: list[bool] = []  # per moved frame: an item-class detection (not a followed box) on the object
    static_near: list[bool] = []
    shots: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, dict[str, FrameAnswer]]] = []
    obj_recall: list[float] = []
    vacated_recall: list[float] = []
    on_object: collections.Counter[str] = collections.Counter()
    frames = moved_frames = 0
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Pipeline.open(config) as pipeline:
        cap = cv2.VideoCapture(str(clip_path(clip, Path(tmp))))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        first: np.ndarray | None = None
        bar = tqdm(total=total if max_frames is None else min(total, max_frames), unit="frame", desc=clip,
                   disable=None, leave=False)  # on a terminal only
        while max_frames is None or frames < max_frames:
            ok, image = cap.read()
            if not ok:
                break
            h, w = image.shape[:2]
            frame = Frame(image=image, stamp=frames / fps)
            if camera is not None:
                frame = dataclasses.replace(frame, intrinsics=camera.intrinsics(w, h), T_map_cam=camera.T_map_cam,
                                            depth=camera.depth(w, h))
            t0 = time.perf_counter()
            result = pipeline.update(frame)
            seconds.append(time.perf_counter() - t0)
            follow.observe(result.observations)
            region = object_region(image, clip)
            first = region if first is None else first
            changed = result.change_mask > 0
            here = set()
            for t in result.tracks:
                if (t.item and t.state == TrackState.CONFIRMED and t.last_seen == result.stamp
                        and _mostly_on(t.box, region)):  # the box is mostly on the object
                    on_object[t.item] += 1
                    here.add(t.item)
            if has_moved(region, first):
                moved_frames += 1
                detected_now.append(here)
                found_now.append(any(_mostly_on(d.box, region) for d in result.detections
                                     if d.label in config.detector.item_classes and not d.followed))
                static_near.append(static_guess_near(region, first))
                follow.record(region, first)
                obj_recall.append(float(changed[region].mean()))
                vacated = first & ~region
                if vacated.sum() > 0.2 * first.sum():
                    vacated_recall.append(float(changed[vacated].mean()))
            if frames in (total // 5, 2 * total // 5, 3 * total // 5, 4 * total // 5):
                now = follow.answers_now("desk", region, first)  # room scale: one place, usual drifts
                shots.append((image, result.change_mask, region, first, frames, now))
            frames += 1
            bar.update()
        bar.close()
        cap.release()
    if frames == 0:
        raise BadInputError(f"no frame of {clip}.mp4 could be read")
    item = on_object.most_common(1)[0][0] if on_object else ""
    sheet = [_draw(img, mask, region, first, index, answers.get(item), item)
             for img, mask, region, first, index, answers in shots]
    metrics = {
        "clip": f"{clip}.mp4 (opencv-doc)",
        "frames": frames,
        "moved_frames": moved_frames,
        "object_recall_mean": float(np.mean(obj_recall)) if obj_recall else 0.0,
        "object_appears_fraction": float(np.mean(np.array(obj_recall) >= _APPEARS)) if obj_recall else 0.0,
        "vacated_recall_mean": float(np.mean(vacated_recall)) if vacated_recall else 0.0,
        "item_tracks_on_object": dict(on_object.most_common()),
        "item_classes": list(config.detector.item_classes),
        "item_class_vote": config.detector.item_class_vote,
        "follow_items": config.detector.follow_items,
        "object_item": item,
        "assumed_camera": None if camera is None else {
            "hfov_deg": camera.hfov_deg, "distance_m": camera.distance_m,
            "metres_per_px": camera.metres_per_px(int(first.shape[1])) if first is not None else 0.0},
        "near_px": NEAR_PX,
        # a confirmed track of the item on the object (with follow_items, followed boxes count)
        "item_detected_on_object_fraction": float(np.mean([item in d for d in detected_now])) if detected_now else 0.0,
        # the detector itself: an item-class detection on the object
        "detector_on_object_fraction": float(np.mean(found_now)) if found_now else 0.0,
        "follows": follow.summarise(item) if item and camera is not None else {},
        "static_guess_near_fraction": float(np.mean(static_near)) if static_near else 0.0,
        "ms_per_frame_mean": float(np.mean(seconds) * 1000.0),
    }
    (out / f"{clip}_metrics.json").write_text(json_text(metrics))
    (out / f"{clip}_change.png").unlink(missing_ok=True)  # drawn only when the run reaches its frames
    if sheet:
        # 16 levels per channel keep the PNG small enough for docs/.
        cv2.imwrite(str(out / f"{clip}_change.png"), contact_sheet(sheet, 2, cell_width=_CELL_WIDTH) // 16 * 16 + 8,
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return metrics


def _mostly_on(box: np.ndarray, region: np.ndarray) -> bool:
    """Whether more than 30 % of a box (4,) px lies on the object's region (H, W) bool."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    patch = region[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)]
    return bool(patch.size and patch.mean() > 0.3)


def _draw(
    image: np.ndarray, mask: np.ndarray, region: np.ndarray, first: np.ndarray, index: int,
    answer: FrameAnswer | None, item: str,
) -> np.ndarray:
    img = overlay_mask(image.copy(), mask)
    for m, colour in ((region, (0, 255, 0)), (first, (255, 255, 0))):
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, colour, 2, cv2.LINE_AA)
    caption = f"frame {index}: tint = change mask\ngreen = object now, cyan = at frame 0\n"
    if answer is None:
        return _small_caption(img, caption + (f"no answer for '{item}' yet" if item else "no item answer"))
    marks = ((answer.usual_uv, (255, 0, 255), "usual"), (answer.current_uv, (0, 255, 255), "current"))
    for (u, v), colour, name in marks:
        if np.isfinite(u) and np.isfinite(v):
            p = (int(round(u)), int(round(v)))
            shape = cv2.MARKER_TILTED_CROSS if name == "usual" else cv2.MARKER_CROSS
            # usual's label below its mark, current's above: the two marks are often close together
            at = (p[0] + 16, p[1] + 40) if name == "usual" else (p[0] + 16, p[1] - 12)
            for c, width in (((0, 0, 0), 11), (colour, 5)):  # a dark rim keeps it visible on the tint
                cv2.drawMarker(img, p, c, shape, 40, width)
                cv2.putText(img, name, at, cv2.FONT_HERSHEY_SIMPLEX, 1.1, c, width - 2, cv2.LINE_AA)
    flag = "displaced" if answer.displaced else "not displaced"
    return _small_caption(img, caption + f"'{item}' (desk-scale memory): {flag}")


def _small_caption(image: np.ndarray, text: str) -> np.ndarray:
    """image scaled to the contact sheet's cell width first, so that the caption stays legible there."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (_CELL_WIDTH, int(round(h * _CELL_WIDTH / w))), interpolation=cv2.INTER_AREA)
    return draw_caption(small, text)


def format_report(m: dict[str, Any]) -> str:
    items = ", ".join(f"{k} x{v}" for k, v in m["item_tracks_on_object"].items()) or "none"
    return (f"{m['clip']}: {m['frames']} frames, object moved in {m['moved_frames']}\n"
            f"change mask covers {m['object_recall_mean']:.0%} of the object on average; the object shows "
            f"(>= {_APPEARS:.0%} covered) in {m['object_appears_fraction']:.0%} of moved frames; "
            f"vacated place {m['vacated_recall_mean']:.0%} covered\n"
            f"confirmed item tracks on the object: {items}; {m['ms_per_frame_mean']:.0f} ms/frame"
            + "".join(f"\n{scale} memory, '{m['object_item']}': current within {m['near_px']:.0f} px of the object in "
                      f"{f['current_near_fraction']:.0%} of moved frames (inside {f['current_inside_fraction']:.0%}), "
                      f"usual at the first place in {f['usual_at_first_place_fraction']:.0%}, displaced in "
                      f"{f['displaced_fraction']:.0%} of those answered"
                      for scale, f in m["follows"].items()))
