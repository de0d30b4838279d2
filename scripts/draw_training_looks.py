"""Draw training streams' first frames as `train` makes them look, for BENCHMARKS.md.

    .venv/bin/python scripts/draw_training_looks.py --out docs/bench/training_looks.jpg [--seeds 1000 1002 1005]

One row per training seed; columns: the simulator's own look, `--decoys` (racks and furniture in the agents'
colours), `--floors` (a floor of a random look), both. Each is the stream with that share at 1, so every column
shows its change; at the model's input size (128 x 96), drawn 2x.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from spatial_memory_ros.model.config import ModelConfig
from spatial_memory_ros.model.data import render_stream
from spatial_memory_ros.viz import contact_sheet

LOOKS: tuple[tuple[str, dict[str, float]], ...] = (
    ("plain", {}), ("decoys", {"decoys": 1.0}), ("floors", {"floors": 1.0}), ("both", {"decoys": 1.0, "floors": 1.0}),
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[1000, 1002, 1005])
    args = p.parse_args()
    config = ModelConfig()
    tiles = []
    for seed in args.seeds:
        for name, options in LOOKS:
            tile = render_stream(seed, 1, config, **options).images[0].copy()
            cv2.putText(tile, f"{seed} {name}", (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1,
                        cv2.LINE_AA)
            tiles.append(tile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), contact_sheet(tiles, len(LOOKS), cell_width=2 * config.image_width),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
