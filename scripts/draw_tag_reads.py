"""Draw what the learned tag reader adds on a patrol: docs/bench/tag_reader_reads.jpg.

Runs the classical pipeline with detector.learned_tag_reader on over a training-seed warehouse patrol (seed
1020, which train-tag-reader holds back) and keeps the first frames, at least 20 s apart, where an item was
read but not decoded. Green: decoded tags; orange: learned reads (with the item name); grey: quads the
finder rejected that stayed unread. Usage: .venv/bin/python scripts/draw_tag_reads.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from spatial_memory_ros.bench.methods import pipeline_config, with_tag_reader
from spatial_memory_ros.bench.scene import make_bench_scene
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.types import PositionSource
from spatial_memory_ros.detect.apriltag import AprilTagDetector
from spatial_memory_ros.sim.scene import to_frame

SCALE = 2  # 320x240 frames drawn at 640x480


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """text at (x, y) on a dark box, so that it reads on any floor."""
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
    cv2.rectangle(img, (x - 3, y - h - 5), (x + w + 3, y + 5), (30, 30, 30), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2)


def main(out: Path) -> None:
    scene = make_bench_scene("warehouse", "patrol", 5.0, 1020, width=320, height=240)
    config = with_tag_reader(pipeline_config(scene))
    pipeline = Pipeline.open(config)
    tags = AprilTagDetector(config.tags)  # the pipeline's finder, again: to draw the quads it rejected
    panels: list[np.ndarray] = []
    last = -np.inf
    for f in scene.frames():
        result = pipeline.update(to_frame(f))
        reads = [d for d in result.detections if d.label == "item" and d.position_source == PositionSource.GROUND_PLANE]
        if not reads or f.stamp - last < 20.0:
            continue
        last = f.stamp
        _, rejected = tags.detect_tags_with_rejected(to_frame(f))  # the quads the reader saw (and the rest)
        img = cv2.resize(f.image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
        for q in rejected:
            cv2.polylines(img, [np.int32(q * SCALE)], True, (150, 150, 150), 1)
        for t in result.tags:
            cv2.polylines(img, [np.int32(t.corners * SCALE)], True, (0, 200, 0), 2)
        for d in reads:
            x1, y1, x2, y2 = (d.box * SCALE).astype(int)
            cv2.rectangle(img, (x1, y1), (x2, y2), (0, 140, 255), 2)
            _label(img, d.item, x1, y2 + 18, (0, 140, 255))
        _label(img, f"t = {f.stamp:.1f} s: {len(result.tags)} decoded, {len(reads)} read", 8, img.shape[0] - 10,
               (255, 255, 255))
        panels.append(img)
        if len(panels) == 4:
            break
    pipeline.close()
    if len(panels) < 4:
        raise SystemExit(f"only {len(panels)} frames with reads")
    grid = np.vstack([np.hstack(panels[:2]), np.hstack(panels[2:])])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), grid, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/bench/tag_reader_reads.jpg"))
