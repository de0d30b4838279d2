"""`spatial-memory demo`: the "demo" sim scene through the core Pipeline, with the ground truth beside it.

Writes the outputs of `run` but its memory (tracks.txt, change_masks/, items.json; the demo's memory lives in
RAM, so no memory.db) plus contact_sheet.png and an annotated demo.avi (MJPG: every OpenCV build can write it),
and prints the tracks and, per item, the pipeline's usual/current answer next to the truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..core.config import MemoryConfig, PipelineConfig
from ..core.types import FrameResult, ItemAnswer, TrackInfo, TrackState
from ..io.outputs import MotWriter, remove_change_masks, write_change_mask, write_items_json
from ..progress import bar_interval
from ..sim import SimFrame, make_scene, to_frame
from ..viz import annotate, contact_sheet, draw_caption, overlay_mask
from .stopping import EXIT_INTERRUPTED, stop_after_the_frame

SHEET_ROWS, SHEET_COLS = 3, 4
SHEET_CELL_PX = 480  # cells are scaled to this width; labels stay legible at 0.75 of 640
TRUTH_COLOR = (0, 255, 0)  # outline of the true change mask
MAP_FRAME = "simulated map frame (z up, floor z = 0)"


@dataclass
class _TrackRow:
    label: str
    item: str
    state: TrackState
    first_seen: float
    last_seen: float
    frames: int = 0
    confirmed: bool = False


def run_demo(
    out_dir: Path,
    *,
    seed: int = 0,
    db_path: str = ":memory:",
    video: bool = True,
    width: int = 640,
    height: int = 480,
    duration_s: float | None = None,
) -> int:
    """Simulate the demo scene, run the Pipeline on it, print and write the results; returns 0.

    width/height/duration_s shrink the scene (tests); the moves happen at fixed times (see
    sim/presets.py: the mug leaves at 4 s and is back at 14 s, the box moves at 14-16 s and stays).
    """
    from ..core.pipeline import Pipeline  # lazily: the CLI starts without loading the pipeline

    out_dir = Path(out_dir)
    changes: dict[str, object] = {"width": width, "height": height}
    if duration_s is not None:
        changes["duration_s"] = duration_s
    scene = make_scene("demo", seed=seed, **changes)
    config = PipelineConfig(tags=scene.tag_config(), memory=MemoryConfig(db_path=db_path))
    names = {tag_id: name for name, tag_id in scene.items.items()}
    n = len(scene)
    sheet_at = set(np.linspace(0, n - 1, SHEET_ROWS * SHEET_COLS).round().astype(int).tolist())
    masks_dir = out_dir / "change_masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    writer: cv2.VideoWriter | None = None
    rows: dict[int, _TrackRow] = {}
    cells: list[np.ndarray] = []
    last: SimFrame | None = None
    interrupted = False
    start = time.monotonic()
    try:
        with Pipeline.open(config) as pipe, MotWriter(out_dir / "tracks.txt") as mot, \
                stop_after_the_frame() as stopping:
            # an earlier run's results in this folder go now (not before the models load: a Ctrl-C then, or a
            # model that fails to load, left them whole but for an emptied demo.avi): a run stopped half way must
            # not sit beside a finished run's items.json and contact sheet, looking finished itself
            (out_dir / "items.json").unlink(missing_ok=True)
            (out_dir / "contact_sheet.png").unlink(missing_ok=True)
            remove_change_masks(masks_dir)
            writer = _video_writer(out_dir / "demo.avi", scene.preset.rate_hz, (width, height)) if video else None
            for f in tqdm(scene, total=n, unit="frame", desc="demo", mininterval=bar_interval()):
                result = pipe.update(to_frame(f))
                _count_tracks(rows, result.tracks)
                mot.write(f.index + 1, result.tracks)
                write_change_mask(masks_dir, f.index + 1, result.change_mask)
                if writer is not None or f.index in sheet_at:
                    frame_img = _annotated(f, result, names, n)
                    if writer is not None:
                        writer.write(frame_img)
                    if f.index in sheet_at:
                        cells.append(frame_img)
                last = f
                if stopping():  # Ctrl-C or SIGTERM: this frame is in every output; the items as they stand
                    interrupted = True
                    break
            answers = pipe.list_items()
            pipe.save()
    finally:
        if writer is not None:
            writer.release()
    elapsed = time.monotonic() - start
    write_items_json(out_dir / "items.json", answers, map_frame=MAP_FRAME)
    sheet = contact_sheet(cells, SHEET_COLS, cell_width=SHEET_CELL_PX)
    legend = (
        f"spatial_memory demo, seed {seed}: red = pipeline change mask, green outline = true change, "
        "boxes = confirmed tracks (grey: lost), yellow = AprilTags"
    )
    sheet = np.vstack([draw_caption(np.full((22, sheet.shape[1], 3), 40, np.uint8), legend), sheet])
    if not cv2.imwrite(str(out_dir / "contact_sheet.png"), sheet):
        raise OSError(f"cannot write {out_dir / 'contact_sheet.png'}")
    done = 0 if last is None else last.index + 1
    print(f"{'interrupted after' if interrupted else 'processed'} {done} of {n} simulated frames ({width}x{height}) "
          f"in {elapsed:.1f} s ({done / elapsed:.1f} frames/s)")
    print()
    print(format_tracks(rows))
    print()
    assert last is not None
    print(format_items(answers, last, scene.items, config.memory.displaced_distance_m))
    print()
    written = ["tracks.txt", "change_masks/", "items.json", "contact_sheet.png"] + (
        ["demo.avi"] if writer is not None else []
    )
    print(f"wrote {out_dir}/: {', '.join(written)}")
    return EXIT_INTERRUPTED if interrupted else 0


def _video_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter | None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():  # a build without a writer backend: the demo still runs without a video
        print(f"cannot open a video writer for {path}; skipping the video")
        return None
    return writer


def _count_tracks(rows: dict[int, _TrackRow], tracks: list[TrackInfo]) -> None:
    for t in tracks:
        row = rows.setdefault(t.track_id, _TrackRow(t.label, t.item, t.state, t.first_seen, t.last_seen))
        row.state, row.last_seen, row.item = t.state, t.last_seen, t.item or row.item
        row.frames += 1
        row.confirmed |= t.state == TrackState.CONFIRMED


def _annotated(f: SimFrame, result: FrameResult, names: dict[int, str], n: int) -> np.ndarray:
    """The pipeline's view of a frame, with the true change outlined and what is really going on."""
    away = [
        f"{name} {'carried' if not it.on_floor else 'moved'}"
        for name, it in f.truth.items.items()
        if not it.on_floor or np.linalg.norm(it.position - it.home) > 0.05
    ]
    caption = f"t={f.stamp:4.1f} s  frame {f.index + 1}/{n}  truth: {', '.join(away) or 'all items at home'}"
    out = annotate(f.image, result, names=names, caption=caption)
    overlay_mask(out, f.truth.change_mask, TRUTH_COLOR, alpha=0.0)
    return out


def format_tracks(rows: dict[int, _TrackRow]) -> str:
    """The tracks that were ever confirmed, as a table; tentative-only ones are just counted."""
    shown = {k: r for k, r in sorted(rows.items()) if r.confirmed}
    lines = [
        f"{'track':>5}  {'label':<7} {'item':<9} {'state':<9} {'first s':>7} {'last s':>7} {'frames':>6}"
    ]
    for k, r in shown.items():
        lines.append(
            f"{k:>5}  {r.label:<7} {r.item or '-':<9} {r.state.name.lower():<9} "
            f"{r.first_seen:7.1f} {r.last_seen:7.1f} {r.frames:6d}"
        )
    lines.append(f"{len(shown)} confirmed tracks ({len(rows) - len(shown)} never confirmed, not shown)")
    return "\n".join(lines)


def format_items(answers: list[ItemAnswer], last: SimFrame, items: dict[str, int], displaced_m: float) -> str:
    """Per item: the pipeline's usual/current answer next to the truth at the last frame."""

    def xy(p: np.ndarray) -> str:
        return f"({p[0]:+.2f}, {p[1]:+.2f})"

    by_name = {a.item: a for a in answers}
    head = (
        f"{'item':<9} {'usual':>15} {'true home':>15} {'current':>15} {'true now':>15} "
        f"{'displaced':>9} {'truth':>5} {'dist m':>6} {'err m':>5}"
    )
    lines = [head]
    for name in sorted(items):
        truth = last.truth.items[name]
        true_displaced = float(np.linalg.norm(truth.position[:2] - truth.home[:2])) > displaced_m
        a = by_name.get(name)
        if a is None:
            lines.append(
                f"{name:<9} {'never seen':>15} {xy(truth.home):>15} {'-':>15} {xy(truth.position):>15}"
            )
            continue
        err = max(
            float(np.linalg.norm(a.usual.position[:2] - truth.home[:2])),
            float(np.linalg.norm(a.current.position[:2] - truth.position[:2])),
        )
        said, real = ("yes" if a.displaced else "no"), ("yes" if true_displaced else "no")
        lines.append(
            f"{name:<9} {xy(a.usual.position):>15} {xy(truth.home):>15} {xy(a.current.position):>15} "
            f"{xy(truth.position):>15} {said:>9} {real:>5} {a.distance_m:6.2f} {err:5.2f}"
        )
    lines.append("err m: the larger of |usual - true home| and |current - true now| (x, y)")
    return "\n".join(lines)
