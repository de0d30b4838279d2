"""Result writers: MOTChallenge tracks.txt, change-mask PNGs and items.json.

answer_to_dict is the one ItemAnswer -> JSON conversion, shared by items.json and `locate --json`, so an
offline answer has the same fields as the LocateItem service (ItemAnswer's, plus the frame id).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from ..core.atomic_file import replace_file, temp_file_beside
from ..core.errors import BadInputError
from ..core.types import ItemAnswer, ItemLocation, TrackInfo, TrackState

MAP_FRAME_ID = "map"
DEFAULT_CAMERA_FRAME = "camera"  # the frame of inputs without frame names (videos, a bag's unnamed images)


def location_to_dict(location: ItemLocation) -> dict[str, Any]:
    """position (m) and orientation (x, y, z, w) in the map frame; last_seen and dwell_s in s."""
    return {
        "position": _floats(location.position),
        "orientation": _floats(location.orientation),
        "confidence": _float(location.confidence),
        "last_seen": _float(location.last_seen),
        "observations": int(location.observations),
        "dwell_s": _float(location.dwell_s),
    }


def answer_to_dict(answer: ItemAnswer, frame_id: str = MAP_FRAME_ID) -> dict[str, Any]:
    """A JSON-ready dict of the answer; non-finite numbers become null (JSON has no NaN). frame_id: the frame its
    positions are in (the memory's map frame)."""
    return {
        "item": answer.item,
        "frame_id": frame_id,
        "usual": location_to_dict(answer.usual),
        "current": location_to_dict(answer.current),
        "displaced": bool(answer.displaced),
        "distance_m": _float(answer.distance_m),
        "missing": bool(answer.missing),
        "current_inferred": bool(answer.current_inferred),
        "alternatives": [location_to_dict(a) for a in answer.alternatives],
    }


def items_to_dict(answers: Iterable[ItemAnswer], *, map_frame: str | None = None,
                  frame_id: str = MAP_FRAME_ID) -> dict[str, Any]:
    """The items.json document: every answer, sorted by item name.

    map_frame: what the map frame is for this input, in words (e.g. "static camera: map frame = camera
    optical frame"); left out when unknown, as for a database read back on its own. frame_id: its name, as a
    tf frame (a bag's --map-frame, a static camera's optical frame).
    """
    doc: dict[str, Any] = {"frame_id": frame_id}
    if map_frame is not None:
        doc["map_frame"] = map_frame
    doc["units"] = {"position": "m", "time": "s", "orientation": "quaternion x, y, z, w"}
    doc["items"] = [answer_to_dict(a, frame_id) for a in sorted(answers, key=lambda a: a.item)]
    return doc


def write_items_json(
    path: str | Path, answers: Iterable[ItemAnswer], *, map_frame: str | None = None, frame_id: str = MAP_FRAME_ID
) -> None:
    """items.json, through core.atomic_file.replace_file: a Ctrl-C, a kill or a power loss mid-write leaves the old
    file or the new one, never half of one."""
    text = json.dumps(items_to_dict(answers, map_frame=map_frame, frame_id=frame_id), indent=2, allow_nan=False)
    replace_file(Path(path), lambda f: f.write((text + "\n").encode("utf-8")))


def json_text(data: Any) -> str:
    """Indented JSON with every NaN or infinity as null: JSON has neither (json.dumps wrote a bare NaN, which
    JavaScript's JSON.parse and strict readers refuse)."""
    return json.dumps(_plain(data), indent=2, allow_nan=False) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def mot_rows(frame_number: int, tracks: Iterable[TrackInfo]) -> list[str]:
    """MOTChallenge rows "frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z" for one frame.

    frame_number is 1-based, and so are the pixels (MOTChallenge: the top-left pixel is (1, 1); PETS09's and the
    MOT benchmarks' ground truth are written so, and bench --export's gt.txt too). Only CONFIRMED tracks are
    written: tentative ones are not yet claimed by the tracker and lost ones only have a predicted box, so neither
    should be scored.
    x, y, z are the track's map-frame position (m), or -1 when it has none.
    """
    rows = []
    for t in sorted(tracks, key=lambda t: t.track_id):
        if t.state != TrackState.CONFIRMED:
            continue
        x1, y1, x2, y2 = (float(v) for v in t.box)
        if t.position is not None and np.isfinite(t.position).all():
            xyz = ",".join(f"{v:.3f}" for v in t.position)
        else:
            xyz = "-1,-1,-1"
        rows.append(f"{frame_number},{t.track_id},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                    f"{t.confidence:.3f},{xyz}")
    return rows


class MotWriter:
    """Streams tracks.txt, one frame at a time, so a long run never holds every track in memory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = self.path.open("w", encoding="utf-8")
        self.rows_written = 0

    def write(self, frame_number: int, tracks: Sequence[TrackInfo]) -> None:
        for row in mot_rows(frame_number, tracks):
            self._file.write(row + "\n")
            self.rows_written += 1
        # to the OS each frame: a process killed outright left tracks.txt frames behind the masks (or empty)
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MotWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def change_mask_path(folder: str | Path, frame_number: int) -> Path:
    """folder/NNNNNN.png, numbered like tracks.txt (1-based) so a mask lines up with its rows."""
    return Path(folder) / f"{frame_number:06d}.png"


def remove_change_masks(folder: str | Path) -> None:
    """Delete the masks an earlier run wrote into folder (change_mask_path's NNNNNN.png names; other files there
    are not ours), so a shorter run does not leave the earlier one's later frames beside its own."""
    for path in Path(folder).glob("[0-9]" * 6 + ".png"):
        path.unlink()


def write_change_mask(folder: str | Path, frame_number: int, mask: np.ndarray) -> Path:
    """Write a (H, W) uint8 mask (255 = changed) as a PNG; returns its path."""
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise BadInputError(f"change mask must be (H, W) uint8, got {mask.dtype} {mask.shape}")
    path = change_mask_path(folder, frame_number)
    if not cv2.imwrite(str(path), mask):
        raise OSError(f"cannot write {path}")
    return path


def _float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _floats(values: np.ndarray) -> list[float | None]:
    return [_float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def check_writable(path: Path, what: str) -> None:
    """BadInputError now, before minutes of work, if `path` cannot be written: a folder, or a folder that cannot be
    made or written to."""
    if path.is_dir():
        raise BadInputError(f"the {what} {path} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInputError(f"cannot create the folder of the {what} {path}: {e.strerror or e}") from e
    try:  # a file beside it, as core.atomic_file.replace_file writes first
        fd, probe = temp_file_beside(path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise BadInputError(f"cannot write the {what} {path}: {e.strerror or e}") from e
