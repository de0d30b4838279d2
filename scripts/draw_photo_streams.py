"""Draw photo training streams (model/photo_stream.py) with their change truth, for BENCHMARKS.md.

    .venv/bin/python scripts/draw_photo_streams.py --out docs/bench/photo_streams.jpg [--seeds 9000 9001 9002]

One row per stream (seeds from 9000 by default: never drawn by training); frames 30, 70, 110, 150 as the model
gets them (128 x 96, shown 2x), each with the changed pixels tinted red beneath it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from spatial_memory_ros.model.config import ModelConfig
from spatial_memory_ros.model.data import render_photo_stream

FRAMES = (30, 70, 110, 150)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[9000, 9001, 9002])
    args = p.parse_args()
    rows = []
    for seed in args.seeds:
        s = render_photo_stream(seed, max(FRAMES) + 1, ModelConfig())
        tiles = []
        for i in FRAMES:
            tinted = s.images[i].copy()
            changed = s.masks[i] > 0
            tinted[changed] = (0.5 * tinted[changed] + np.array([0, 0, 127])).astype(np.uint8)
            tile = np.concatenate([s.images[i], tinted], axis=0)
            cv2.putText(tile, f"{seed} t{i}", (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(np.pad(tile, ((1, 1), (1, 1), (0, 0))))
        rows.append(np.concatenate(tiles, axis=1))
    picture = cv2.resize(np.concatenate(rows, axis=0), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
