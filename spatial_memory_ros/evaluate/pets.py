"""People tracking on PETS09-S2L1 (OpenCV's vtest.avi) against the MOTChallenge ground truth.

One pass over the video runs the Pipeline with a class detector (coco by default) and feeds the very
same person detections to ByteTrack (supervision), so the two trackers differ only in association.
Both are scored with bench.metrics.TrackingAccumulator: detection F1 at IoU 0.5, HOTA, IDF1, MOTA.

Scoring conventions:
- only confirmed tracks matched in the frame are reported for ours (tentative and lost ones are not
  boxes in the image); ByteTrack reports what update_with_detections returns;
- ground-truth boxes with flag 0 (people standing by the parked cars, one leaving at the edge) are
  "don't care": a prediction that goes to one (bench.tracking_metrics.dont_care_kept: after the matching to
  the scored boxes, at IoU >= 0.5) is left out of the scores, for both; the written tracks keep it;
- MOT boxes are 1-based (bb_left 1 = the first pixel column); they are shifted to our 0-based pixels;
- stamps are frame / 7 s: PETS09 was captured at 7 fps (the AVI header's 10 fps is not the capture rate).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from ..bench.metrics import TrackingAccumulator
from ..core.config import PipelineConfig
from ..core.errors import BadInputError
from ..core.item_memory import ItemMemory
from ..core.machine import cpu_name
from ..core.pipeline import Pipeline
from ..core.store import MemoryStore
from ..core.types import Detection, Frame, TrackState
from ..detect.base import ObjectDetector
from ..detect.factory import make_detector
from ..io.outputs import json_text
from ..reid.base import AppearanceEmbedder
from ..viz import contact_sheet, draw_caption, overlay_mask, track_color
from .config import default_config
from .people_change import PeopleChangeScore
from .turning_view import TurningView

VTEST_AVI = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
# The repository's sibling shared/ folder (where the team keeps data that must not be committed).
DEFAULT_GT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pets09-s2l1" / "gt.txt"
CAPTURE_FPS = 7.0
PERSON = "person"
SHEET_FRAMES = (100, 250, 400, 650)  # 1-based MOT frame numbers drawn in tracks.png


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """One frame's boxes: ids (N,), boxes (N, 4) 0-based x1y1x2y2 px, scored (N,) bool (flag 1)."""

    ids: np.ndarray
    boxes: np.ndarray
    scored: np.ndarray


def read_mot_gt(path: Path) -> dict[int, GroundTruth]:
    """MOTChallenge gt.txt -> {1-based frame: GroundTruth}; BadInputError if missing or malformed."""
    if not path.is_file():
        raise BadInputError(f"no ground truth at {path} (PETS09-S2L1 gt.txt in MOTChallenge format); pass --gt")
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as e:
        raise BadInputError(f"{path} is not a MOTChallenge gt.txt: {e}") from None
    if rows.shape[1] < 7:
        raise BadInputError(f"{path}: expected >= 7 comma-separated columns, got {rows.shape[1]}")
    out = {}
    for frame in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == frame]
        x1, y1 = r[:, 2] - 1.0, r[:, 3] - 1.0
        boxes = np.column_stack([x1, y1, x1 + r[:, 4], y1 + r[:, 5]])
        out[int(frame)] = GroundTruth(r[:, 1].astype(np.int64), boxes, r[:, 6] > 0)
    return out


class TimedEmbedder:
    """Wraps an appearance embedder and keeps its per-call wall time (s), like TimedDetector."""

    def __init__(self, inner: AppearanceEmbedder) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.seconds: list[float] = []

    def embed(self, image_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.embed(image_bgr, boxes)
        self.seconds.append(time.perf_counter() - t0)
        return out


class TimedDetector:
    """Wraps a detector and keeps its per-call wall time (s), so the report can split detector and tracker."""

    def __init__(self, inner: ObjectDetector) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    def detect(self, frame: Frame) -> list[Detection]:
        t0 = time.perf_counter()
        out = self.inner.detect(frame)
        self.seconds.append(time.perf_counter() - t0)
        return out


def _ms(seconds: list[float]) -> dict[str, float]:
    a = np.asarray(seconds) * 1000.0
    if a.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0}
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95))}


def evaluate_pets09(
    out: Path,
    *,
    video: Path = VTEST_AVI,
    gt_path: Path = DEFAULT_GT,
    config: PipelineConfig | None = None,
    max_frames: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    turning: TurningView | None = None,
) -> dict[str, Any]:
    """Run both trackers over the video, write OUT/metrics.json, ours.txt, bytetrack.txt, tracks.png.

    Returns the metrics dict (also in metrics.json). config: the pipeline's (default: default_config()).
    turning: see the video through a camera that pans and tilts (evaluate.turning_view): every frame, the
    truth's boxes and the pose go through it; boxes less than half in view are not scored.
    """
    import supervision as sv  # only the evaluation needs it

    if not video.is_file():
        raise BadInputError(f"no video at {video}: apt-get install opencv-doc (PETS09-S2L1 is its vtest.avi)")
    gt = read_mot_gt(gt_path)
    config = (config or default_config()).validate()
    if config.detector.backend == "apriltag":
        raise BadInputError("the PETS09 evaluation needs a class detector: detector.backend coco or onnx")
    detector = TimedDetector(make_detector(config.detector, config.tags))
    embedder = None
    if config.tracker.reid:
        from ..reid.mobilenet import MobileNetV2Embedder  # torch: only when re-id is on

        embedder = TimedEmbedder(MobileNetV2Embedder(device="cpu"))
    out.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if max_frames is not None:
        total = min(total, max_frames)
    with warnings.catch_warnings():  # supervision 0.30 points at the `trackers` package, which we cannot use
        warnings.simplefilter("ignore", FutureWarning)
        byte = sv.ByteTrack(  # lost tracks kept as long as ours (max_age_s); its buffer counts 30 fps frames
            frame_rate=CAPTURE_FPS, lost_track_buffer=int(round(config.tracker.max_age_s * 30))
        )
    acc = {"ours": TrackingAccumulator(), "bytetrack": TrackingAccumulator()}
    rows: dict[str, list[str]] = {"ours": [], "bytetrack": []}
    t_pipe: list[float] = []
    t_byte: list[float] = []
    sheet: list[np.ndarray] = []
    change_sheet: list[np.ndarray] = []
    people_change = PeopleChangeScore()
    outside: list[float] = []  # per frame, the share of the turning camera's picture outside the video
    blur: list[float] = []  # per frame, px the turning camera's picture moved while its shutter was open
    intrinsics = turning.intrinsics if turning is not None else None
    memory = ItemMemory(config.memory, MemoryStore(config.memory.db_path))
    with (Pipeline(config, memory, detector=detector, embedder=embedder) as pipeline,
          tqdm(total=total, unit="frame", desc="pets09", disable=None, leave=False) as bar):  # on a terminal only
        for index in range(total):
            ok, image = cap.read()
            if not ok:
                break
            number = index + 1
            stamp = index / CAPTURE_FPS
            g = gt.get(number)
            T_map_cam = None
            if turning is not None:
                image, T_map_cam = turning.frame(image, stamp), turning.pose(stamp)
                if index % 25 == 0:
                    outside.append(turning.fraction_outside(stamp))
                blur.append(turning.blur_px(stamp))
                if g is not None:
                    boxes, inside = turning.boxes(g.boxes, stamp)
                    g = GroundTruth(g.ids, boxes, g.scored & inside)
            t0 = time.perf_counter()
            result = pipeline.update(Frame(image=image, stamp=stamp, intrinsics=intrinsics, T_map_cam=T_map_cam))
            t_pipe.append(time.perf_counter() - t0)
            ours = [
                t for t in result.tracks
                if t.label == PERSON and t.state == TrackState.CONFIRMED and t.last_seen == result.stamp
            ]
            people = [d for d in result.detections if d.label == PERSON]
            dets = sv.Detections(
                xyxy=np.array([d.box for d in people], dtype=np.float32).reshape(-1, 4),
                confidence=np.array([d.score for d in people], dtype=np.float32),
                class_id=np.zeros(len(people), dtype=int),
            )
            t0 = time.perf_counter()
            tracked = byte.update_with_detections(dets)
            t_byte.append(time.perf_counter() - t0)
            preds = {
                "ours": (np.array([t.box for t in ours]).reshape(-1, 4), np.array([t.track_id for t in ours])),
                "bytetrack": (np.asarray(tracked.xyxy, dtype=np.float64).reshape(-1, 4),
                              np.asarray(tracked.tracker_id, dtype=np.int64).reshape(-1)),
            }
            changed = result.change_mask > 0
            people_change.add(changed, g.boxes if g is not None else np.zeros((0, 4)),
                              g.scored if g is not None else np.zeros(0, bool))
            for name, (boxes, ids) in preds.items():
                gi = g.ids[g.scored] if g is not None else np.zeros(0, np.int64)
                gb = g.boxes[g.scored] if g is not None else np.zeros((0, 4))
                dont_care = g.boxes[~g.scored] if g is not None else np.zeros((0, 4))
                acc[name].add(number, gi, gb, ids.astype(np.int64), boxes, dont_care)
                rows[name] += [
                    f"{number},{i},{b[0] + 1:.2f},{b[1] + 1:.2f},{b[2] - b[0]:.2f},{b[3] - b[1]:.2f},-1,-1,-1,-1"
                    for i, b in zip(ids, boxes)
                ]
            if number in SHEET_FRAMES:
                sheet.append(_draw(image, g, preds["ours"], preds["bytetrack"], number))
                change_sheet.append(_draw_change(image, changed, g, number, config.change.method))
            bar.update(1)  # a frame done, not one begun
            if progress is not None:
                progress(index + 1, total)
    cap.release()
    if not t_pipe:
        raise BadInputError(f"no frame of {video} could be read")
    for name, lines in rows.items():
        (out / f"{name}.txt").write_text("\n".join(lines) + "\n")
    for stale in ("tracks.png", "change.png"):  # drawn only when the run reaches SHEET_FRAMES: not an earlier run's
        (out / stale).unlink(missing_ok=True)
    if sheet:
        # 16 grey levels per channel: a third of the PNG's size and still readable (it goes into docs/).
        cv2.imwrite(str(out / "tracks.png"), contact_sheet(sheet, 2, cell_width=384) // 16 * 16 + 8,
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
        cv2.imwrite(str(out / "change.png"), contact_sheet(change_sheet, 2, cell_width=384) // 16 * 16 + 8,
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
    metrics = {
        "sequence": "PETS09-S2L1 (vtest.avi)" + (", turning camera" if turning is not None else ""),
        "frames": len(t_pipe),
        "turning": None if turning is None else {**dataclasses.asdict(turning),
                                                 "max_fraction_outside": max(outside, default=0.0),
                                                 "blur_px_mean": float(np.mean(blur)) if blur else 0.0,
                                                 "blur_px_max": max(blur, default=0.0)},
        "detector": config.detector.backend,
        "score_threshold": config.detector.score_threshold,
        "tracker": dataclasses.asdict(config.tracker),
        "ours": acc["ours"].summary().as_dict(),
        "bytetrack": acc["bytetrack"].summary().as_dict(),
        # the change mask against the people's boxes (evaluate.people_change): box-level, see there
        "change": {"method": config.change.method, **people_change.summary()},
        "ms_per_frame": {"pipeline": _ms(t_pipe), "detector": _ms(detector.seconds), "bytetrack": _ms(t_byte),
                         "reid": _ms(embedder.seconds if embedder is not None else [])},
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "opencv": cv2.__version__,
                    "python": platform.python_version(), "load_avg_1min": os.getloadavg()[0]},
    }
    (out / "metrics.json").write_text(json_text(metrics))
    return metrics


def _draw(
    image: np.ndarray, gt: GroundTruth | None, ours: tuple[np.ndarray, np.ndarray],
    byte: tuple[np.ndarray, np.ndarray], number: int,
) -> np.ndarray:
    """Ground truth white (thin), ours in per-id colours, ByteTrack's ids in grey beside."""
    img = image.copy()
    if gt is not None:
        for b, scored in zip(gt.boxes, gt.scored):
            cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 255, 255), 1)
            if not scored:
                cv2.line(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 255, 255), 1)
    for b, i in zip(*ours):
        cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), track_color(int(i)), 2)
        cv2.putText(img, str(int(i)), (int(b[0]), int(b[1]) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    track_color(int(i)), 2, cv2.LINE_AA)
    for b, i in zip(*byte):
        cv2.putText(img, f"b{int(i)}", (int(b[0]), int(b[3]) + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (200, 200, 200), 1, cv2.LINE_AA)
    return draw_caption(img, f"frame {number}: white = truth, colour = ours (id), b# = ByteTrack id")


def _draw_change(image: np.ndarray, mask: np.ndarray, gt: GroundTruth | None, number: int, method: str) -> np.ndarray:
    """The change mask tinted, the people's boxes in white."""
    img = overlay_mask(image.copy(), mask)
    if gt is not None:
        for b in gt.boxes:
            cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 255, 255), 1)
    return draw_caption(img, f"frame {number}: tint = change mask ({method}), white = people (truth)")




def format_report(m: dict[str, Any]) -> str:
    """A small text table of both trackers' scores and the timings."""
    reid = "on" if m.get("tracker", {}).get("reid") else "off"
    lines = [f"{m['sequence']}: {m['frames']} frames, detector {m['detector']} (score >= {m['score_threshold']}), "
             f"re-id {reid}",
             f"{'tracker':<10} {'det F1':>7} {'HOTA':>6} {'IDF1':>6} {'MOTA':>6} {'IDSW':>5}"]
    for name in ("ours", "bytetrack"):
        s = m[name]
        lines.append(f"{name:<10} {s['det_f1']:7.3f} {s['hota']:6.3f} {s['idf1']:6.3f} {s['mota']:6.3f} "
                     f"{s['id_switches']:5d}")
    c = m.get("change")
    if c:
        lines.append(f"change mask ({c['method']}): people's boxes covered {c['box_coverage_mean']:.3f} on average, "
                     f"found (>= {c['found_threshold']:.0%}) {c['box_found_fraction']:.3f}; "
                     f"{c['false_px_per_frame']:.0f} px a frame off people "
                     f"({c['off_people_fraction']:.0%} of the mask); found by box height: "
                     + ", ".join(f"{k} {v:.3f}" for k, v in c["box_found_fraction_by_height"].items()))
    t = m["ms_per_frame"]
    lines.append(f"ms/frame: pipeline {t['pipeline']['mean']:.1f} (detector {t['detector']['mean']:.1f}, "
                 f"re-id {t.get('reid', {}).get('mean', 0.0):.1f}), "
                 f"ByteTrack {t['bytetrack']['mean']:.2f}; load avg {m['machine']['load_avg_1min']:.1f} "
                 f"on {m['machine']['cores']} cores")
    return "\n".join(lines)
