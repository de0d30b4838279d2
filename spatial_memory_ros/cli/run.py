"""`spatial-memory run`: every frame of a recording through the Pipeline, results written to a folder."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from ..core.config import PipelineConfig
from ..core.errors import BadInputError, SpatialMemoryError
from ..core.types import Frame, FrameResult, ItemAnswer, TrackState
from ..io import open_input
from ..io.bag_topics import BagOptions
from ..io.outputs import (
    DEFAULT_CAMERA_FRAME,
    MotWriter,
    remove_change_masks,
    write_change_mask,
    write_items_json,
)
from ..progress import bar_interval
from .stopping import stop_after_the_frame

# Bad frames are all counted, but only the first few are printed: a wholly unreadable input would
# otherwise bury the summary.
MAX_BAD_FRAMES_SHOWN = 10


class PipelineLike(Protocol):
    """The part of core.pipeline.Pipeline that `run` uses (so tests can pass a stand-in)."""

    def update(self, frame: Frame) -> FrameResult: ...

    def list_items(self) -> list[ItemAnswer]: ...

    def save(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunSummary:
    out_dir: Path
    frames: int  # processed by the pipeline
    bad_frames: int  # unreadable or rejected by the pipeline, skipped
    first_error: str  # the first bad frame's reason, "" if none
    tracks: int  # distinct confirmed track ids
    observations: int  # item observations committed to memory
    items: list[ItemAnswer]
    extended_memory: bool  # memory.db existed and was added to
    interrupted: bool  # stopped by Ctrl-C; outputs hold the frames done so far
    elapsed_s: float
    out_bag: Path | None = None  # the MCAP bag folder written beside, if any


def run_offline(
    input_path: str | Path,
    out_dir: str | Path,
    config: PipelineConfig,
    *,
    fps: float | None = None,
    camera_yaml: str | Path | None = None,
    max_frames: int | None = None,
    depth_units_per_m: float | None = None,
    bag: BagOptions | None = None,
    out_bag: str | Path | None = None,
    open_pipeline: Callable[[PipelineConfig], PipelineLike] | None = None,
) -> RunSummary:
    """Process input_path into out_dir: tracks.txt, change_masks/NNNNNN.png, items.json, memory.db.

    bag: topics and frames when the input is a ROS 2 bag (io/bag.py). out_bag: also write the node's
    topics (tracks, change_mask, markers) to a new MCAP bag folder there (io/bag_writer.py).

    config.memory.db_path is replaced by out_dir/memory.db. Frames the reader cannot read or the pipeline
    rejects (BadInputError) are counted, reported on stderr and skipped. Frame numbers in the outputs are
    1-based positions in the input, so skipped frames leave gaps rather than shifting later ones.
    open_pipeline: defaults to core.pipeline.Pipeline.open.
    """
    out_dir = Path(out_dir)
    source = open_input(input_path, fps=fps, camera_yaml=camera_yaml, depth_units_per_m=depth_units_per_m,
                        bag=bag)
    masks_dir = out_dir / "change_masks"
    new_dirs = [d for d in (out_dir, masks_dir) if not d.exists()]  # what a run that processes nothing removes
    out_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(exist_ok=True)
    db_path = out_dir / "memory.db"
    extended = db_path.exists()
    config = dataclasses.replace(config, memory=dataclasses.replace(config.memory, db_path=str(db_path)))
    if open_pipeline is None:
        from ..core.pipeline import Pipeline

        open_pipeline = Pipeline.open

    bad: list[str] = []

    def on_bad(index: int, error: BadInputError) -> None:
        bad.append(str(error))
        if len(bad) <= MAX_BAD_FRAMES_SHOWN:
            tqdm.write(f"skipping frame {index + 1}: {error}", file=sys.stderr)
        if len(bad) == MAX_BAD_FRAMES_SHOWN:
            tqdm.write("further bad frames are counted but not shown", file=sys.stderr)

    total = len(source) or None
    if max_frames is not None and total is not None:
        total = min(total, max_frames)
    frames = observations = 0
    claimed = False
    track_ids: set[int] = set()
    interrupted = False
    start = time.monotonic()
    results_bag = None
    try:
        with contextlib.ExitStack() as outputs:
            if out_bag is not None:
                from ..io.bag_writer import BagResultWriter

                results_bag = outputs.enter_context(BagResultWriter(out_bag, map_frame=source.output_frame))
            pipeline = open_pipeline(config)
            outputs.callback(pipeline.close)
            store = getattr(getattr(pipeline, "memory", None), "store", None)
            if getattr(store, "moved_aside_to", None) is not None:  # unusable: moved aside, this run starts empty
                extended = False
            # an earlier run's tracks and masks go only once a frame of this one has been processed: a run refused at
            # the start (an --out-bag that exists, a model that does not load) or whose every frame fails (a camera
            # YAML of another size, a folder of corrupt images) leaves that run's results as they were
            mot: MotWriter | None = None

            def started() -> MotWriter:
                nonlocal mot
                if mot is None:
                    remove_change_masks(masks_dir)
                    mot = outputs.enter_context(MotWriter(out_dir / "tracks.txt"))
                return mot

            bar = outputs.enter_context(tqdm(total=total, unit="frame", mininterval=bar_interval()))
            stopping = outputs.enter_context(stop_after_the_frame())
            try:
                for index, frame in source.frames(on_bad, limit=max_frames):
                    if stopping():
                        interrupted = True
                        break
                    bar.update(index + 1 - bar.n)  # skipped frames count as done too
                    if not claimed:  # before the first frame goes in: a memory in another frame is refused whole
                        claimed = True
                        if store is not None:
                            store.claim_frame(_frame_of(source))
                    try:
                        result = pipeline.update(frame)
                    except BadInputError as e:
                        on_bad(index, e)
                        continue
                    frames += 1
                    observations += len(result.observations)
                    track_ids.update(t.track_id for t in result.tracks if t.state == TrackState.CONFIRMED)
                    started().write(index + 1, result.tracks)
                    write_change_mask(masks_dir, index + 1, result.change_mask)
                    if results_bag is not None:  # the markers show the memory as it was at this frame
                        results_bag.write(frame.stamp, result, pipeline.list_items(),
                                          getattr(source, "last_header", None))
                    if stopping():
                        interrupted = True
                        break
            except KeyboardInterrupt:  # a second Ctrl-C: keep what was done, the outputs below are still written
                interrupted = True
            items = pipeline.list_items()
            if frames:
                write_items_json(out_dir / "items.json", items, map_frame=source.map_frame, frame_id=_frame_of(source))
            try:
                pipeline.save()
            except SpatialMemoryError as exc:  # a reader holds the file (spatial-memory locate): every commit is kept
                tqdm.write(f"warning: {exc}", file=sys.stderr)
    finally:
        if frames == 0:
            _undo_outputs(db_path if not extended else None, results_bag.path if results_bag is not None else None,
                          new_dirs)
    return RunSummary(
        out_dir=out_dir, frames=frames, bad_frames=len(bad), first_error=bad[0] if bad else "",
        tracks=len(track_ids), observations=observations, items=items, extended_memory=extended,
        interrupted=interrupted, elapsed_s=time.monotonic() - start,
        out_bag=Path(out_bag) if out_bag is not None else None,
    )


def _frame_of(source: object) -> str:
    """The frame the run's positions are in: the bag's map frame with tf, else the camera's own (a static camera's
    bag names it in each image: the latest one's stands for all)."""
    header = getattr(source, "last_header", None)
    return (getattr(source, "output_frame", None) or (header.frame_id if header is not None else "")
            or DEFAULT_CAMERA_FRAME)


def _undo_outputs(new_db: Path | None, new_bag: Path | None, new_dirs: list[Path]) -> None:
    """What a run that processed no frame made goes again (refused at its start by a model file that does not
    load, or every frame refused): a memory.db it created made the next run "extend the existing memory", an
    empty one, and an --out-bag folder with no message made a retry fail ("exists")."""
    if new_db is not None:
        from ..core.store_file import sidecars

        for made in (new_db, new_db.with_name(new_db.name + ".lock"), *sidecars(new_db)):
            made.unlink(missing_ok=True)
    if new_bag is not None:
        shutil.rmtree(new_bag, ignore_errors=True)
    for folder in reversed(new_dirs):  # the masks folder first, then the output folder, each only if empty
        with contextlib.suppress(OSError):
            folder.rmdir()


def format_summary(s: RunSummary) -> str:
    rate = s.frames / s.elapsed_s if s.elapsed_s > 0 else 0.0
    lines = [
        f"{'interrupted after' if s.interrupted else 'processed'} {s.frames} frames in {s.elapsed_s:.1f} s "
        f"({rate:.1f} frames/s); {s.bad_frames} bad frames skipped",
        f"{s.tracks} confirmed tracks, {s.observations} item observations, {len(s.items)} items "
        f"({sum(a.displaced for a in s.items)} displaced)",
    ]
    for a in s.items:
        x, y, z = a.current.position
        where = f"DISPLACED {a.distance_m:.2f} m from usual" if a.displaced else "at its usual place"
        lines.append(f"  {a.item}: now at ({x:+.3f}, {y:+.3f}, {z:+.3f}) m, {where}")
    memory = "memory.db (extended the existing memory)" if s.extended_memory else "memory.db"
    if s.frames:
        lines.append(f"wrote {s.out_dir}/: tracks.txt, change_masks/, items.json, {memory}")
    else:
        lines.append(f"{s.out_dir}/ left as it was: no frame was processed")
    if s.out_bag is not None and s.frames:  # with no frame, the bag folder was removed again
        lines.append(f"wrote {s.out_bag}/ (MCAP: /tracks, /change_mask, /markers)")
    return "\n".join(lines)
