"""`spatial-memory bench --export DIR`: a benchmark sequence on disk, for `spatial-memory run` or any other system.

    DIR/rgb/<t>.png, rgb.txt           colour frames, t = seconds from the start ("%.6f")
    DIR/depth/<t>.png, depth.txt       16-bit depth, millimetres, 0 = no surface
    DIR/groundtruth.txt                camera poses "t tx ty tz qx qy qz qw" (map <- camera optical frame)
    DIR/camera.yaml                    ROS camera_info YAML
    DIR/params.yaml                    tag_size_m and items ("name=id") for `run --config DIR/params.yaml`
    DIR/sequence.json                  which scene, seed, size and rate this is
    DIR/gt/gt.txt                      MOTChallenge ground truth of the dynamic agents in view:
                                       frame,id,x,y,w,h,flag,-1,-1,-1 (frame 1-based, box px; flag 1 =
                                       scored, 0 = don't-care: fewer than min_agent_px pixels in view)
    DIR/gt/change_masks/NNNNNN.png     change-mask truth, 255 = changed, numbered like gt.txt
    DIR/gt/items.json                  per item: tag id, home and the timeline of its true position

The first four are the TUM RGB-D layout that io.TumReader (and so `spatial-memory run`) reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from ..core.errors import BadInputError
from ..core.geometry import split_transform
from ..io.camera_yaml import save_camera_yaml
from ..io.outputs import json_text, remove_change_masks, write_change_mask
from ..sim import ItemTruth, SimScene
from .seeds import seed_role

_MM_PER_M = 1000.0
_MOVED_M = 0.01  # an on-floor position change smaller than this is not a new timeline entry


@dataclass(frozen=True)
class ExportSummary:
    out_dir: Path
    frames: int
    gt_boxes: int  # rows of gt/gt.txt, scored (flag 1)
    dont_care_boxes: int  # rows of gt/gt.txt with flag 0


def _stamp_name(t: float) -> str:
    return f"{t:.6f}"


def _depth_mm(depth: np.ndarray) -> np.ndarray:
    """(H, W) float32 m, NaN = none -> (H, W) uint16 mm, 0 = none (also beyond 65.535 m)."""
    mm = np.nan_to_num(depth * _MM_PER_M, nan=0.0, posinf=0.0, neginf=0.0)
    mm[mm > np.iinfo(np.uint16).max] = 0
    return np.round(mm).astype(np.uint16)


def _imwrite(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")


def _state(item: ItemTruth) -> dict[str, Any]:
    where = [float(v) for v in item.position] if np.isfinite(item.position).all() else None
    return {"position": where, "on_floor": bool(item.on_floor), "carrier": int(item.carrier)}


def _changed(prev: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether an item's new state deserves a timeline entry (on the floor, positions are always known)."""
    if (prev["on_floor"], prev["carrier"]) != (now["on_floor"], now["carrier"]):
        return True
    if not now["on_floor"]:  # carried: the position follows the carrier every frame; one entry is enough
        return False
    return float(np.hypot(*(np.subtract(now["position"][:2], prev["position"][:2])))) > _MOVED_M


def export_sequence(
    scene: SimScene, out_dir: Path, *, min_agent_px: int = 100, limit: int | None = None, progress: bool = True
) -> ExportSummary:
    """Write the scene's frames and truth to out_dir (layout in the module docstring); limit: first N frames.

    gt.txt holds the agents the benchmark scores (at least min_agent_px visible pixels) with flag 1, and those
    in view with fewer with flag 0, don't-care, as the bench scores them (MOTChallenge's meaning). An item's timeline
    gets an entry whenever it is picked up, put down or moved; while carried its position is the
    carrier's and is not repeated every frame.
    """
    out_dir = Path(out_dir)
    if len(scene) == 0 or (limit is not None and limit < 1):  # wrote an empty sequence and said so, exit 0
        raise BadInputError("nothing to export: the scene is shorter than one frame (give more --minutes)")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "sequence.json").is_file():
        # the stale-frame clean-up below deletes PNGs: only ever in a folder an earlier export wrote
        raise BadInputError(f"{out_dir} is not empty and is not an earlier export (no sequence.json): nothing was "
                            "written; give a new or empty folder")
    for sub in ("rgb", "depth", "gt/change_masks"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    # an earlier, longer export's frames would sit beside this one's, unlisted in rgb.txt but in the folders
    for stale in [*(out_dir / "rgb").glob("*.png"), *(out_dir / "depth").glob("*.png")]:
        stale.unlink()
    remove_change_masks(out_dir / "gt" / "change_masks")
    p = scene.preset
    save_camera_yaml(scene.intrinsics, out_dir / "camera.yaml", camera_name=f"sim_{p.name}")
    params = {"tag_size_m": scene.tag_size_m, "items": [f"{n}={i}" for n, i in scene.items.items()]}
    (out_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    n = len(scene) if limit is None else min(limit, len(scene))
    timelines: dict[str, list[dict[str, Any]]] = {}
    homes: dict[str, dict[str, Any]] = {}
    rows = dont_care = 0
    with (
        (out_dir / "rgb.txt").open("w", encoding="utf-8") as rgb_txt,
        (out_dir / "depth.txt").open("w", encoding="utf-8") as depth_txt,
        (out_dir / "groundtruth.txt").open("w", encoding="utf-8") as poses,
        (out_dir / "gt" / "gt.txt").open("w", encoding="utf-8") as gt,
    ):
        rgb_txt.write("# timestamp filename\n")
        depth_txt.write("# timestamp filename (16-bit PNG, millimetres, 0 = no reading)\n")
        poses.write("# timestamp tx ty tz qx qy qz qw (map <- camera optical frame)\n")
        frames = tqdm(scene.frames(limit=n), total=n, unit="frame", desc=f"export {out_dir}", disable=not progress)
        for f in frames:
            name = _stamp_name(f.stamp)
            _imwrite(out_dir / "rgb" / f"{name}.png", f.image)
            _imwrite(out_dir / "depth" / f"{name}.png", _depth_mm(f.depth))
            rgb_txt.write(f"{name} rgb/{name}.png\n")
            depth_txt.write(f"{name} depth/{name}.png\n")
            t, q = split_transform(f.T_map_cam)
            poses.write(f"{name} " + " ".join(f"{v:.6f}" for v in (*t, *q)) + "\n")
            for a in f.truth.agents:
                x1, y1, x2, y2 = (float(v) for v in a.box)
                flag = int(a.visible_px >= min_agent_px)
                # 1-based pixels, as MOTChallenge's ground truth (evaluate.pets.read_mot_gt) and run's tracks.txt
                gt.write(f"{f.index + 1},{a.agent_id},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{flag},"
                         "-1,-1,-1\n")
                rows += flag
                dont_care += 1 - flag
            write_change_mask(out_dir / "gt" / "change_masks", f.index + 1, f.truth.change_mask)
            for item_name, item in f.truth.items.items():
                homes.setdefault(item_name, {"tag_id": item.tag_id, "home": [float(v) for v in item.home]})
                state = _state(item)
                line = timelines.setdefault(item_name, [])
                if not line or _changed(line[-1], state):
                    line.append({"t": f.stamp, "frame": f.index + 1, **state})
    items = {name: {**homes[name], "timeline": timelines[name]} for name in sorted(homes)}
    doc = {
        "map_frame": "simulated map frame: metres, z up, floor z = 0",
        "units": {"position": "m", "t": "s from the start", "frame": "1-based, as gt.txt"},
        "notes": "position: board centre on the floor, or in the carrier's hands (carrier = agent id, as in "
        "gt.txt); null while moved by nobody visible. An entry starts whenever the item is picked up, put "
        "down or moved; it holds until the next one.",
        "items": items,
    }
    (out_dir / "gt" / "items.json").write_text(json_text(doc), encoding="utf-8")
    meta = {
        "preset": p.name,
        "camera": p.camera.mode,
        "seed": scene.seed,
        "seed_role": seed_role(scene.seed),
        "frames": n,
        "rate_hz": p.rate_hz,
        "width": p.width,
        "height": p.height,
        "duration_s": p.duration_s,
    }
    (out_dir / "sequence.json").write_text(json_text(meta), encoding="utf-8")
    return ExportSummary(out_dir, n, rows, dont_care)
