"""The `coco` detector's cost per frame on this OpenCV: the graph cut down to the config's classes (OpenCV 5) or
the whole graph (OpenCV 4.x, where the cut-down one does not run: detect/coco_ssd.forward_runs), BENCHMARKS "The
coco detector on OpenCV 4.11".

    .venv/bin/python scripts/coco_cost.py [--full] [--frames 60]
    PYTHONPATH=<a folder holding opencv-python-headless 4.11> .venv/bin/python scripts/coco_cost.py

One thread, vtest.avi's first frames (768 x 576, Debian's opencv-doc), after five warm-up frames: the median and
90th percentile of CocoSsdDetector.raw. --full runs the whole graph where the cut-down one would run too.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from spatial_memory_ros.core.config import DetectorConfig
from spatial_memory_ros.detect.coco_ssd import CocoSsdDetector
from spatial_memory_ros.evaluate.pets import VTEST_AVI


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="the whole graph even where the cut-down one runs")
    p.add_argument("--frames", type=int, default=60, help="frames timed (default 60)")
    args = p.parse_args()
    cv2.setNumThreads(1)
    detector = CocoSsdDetector(DetectorConfig(backend="coco"), prune=not args.full)
    cap = cv2.VideoCapture(str(VTEST_AVI))
    frames = [image for ok, image in (cap.read() for _ in range(args.frames + 5)) if ok]
    if len(frames) < args.frames + 5:
        raise SystemExit(f"{VTEST_AVI}: fewer than {args.frames + 5} frames (apt-get install opencv-doc)")
    for image in frames[:5]:
        detector.raw(image)
    times = []
    for image in frames[5:]:
        start = time.perf_counter()
        detector.raw(image)
        times.append(1e3 * (time.perf_counter() - start))
    graph = "cut down" if detector.pruned else "whole"
    print(f"OpenCV {cv2.__version__}, {graph} graph, {len(times)} frames: median {np.median(times):.1f} ms, "
          f"p90 {np.percentile(times, 90):.1f} ms")


if __name__ == "__main__":
    main()
