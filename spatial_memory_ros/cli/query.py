"""`spatial-memory locate` / `list`: read a saved memory without ever changing where the file is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..core.config import MemoryConfig
from ..core.errors import BadInputError
from ..core.item_memory import ItemMemory
from ..core.store import MemoryStore
from ..core.types import ItemAnswer, ItemLocation
from ..io.outputs import MAP_FRAME_ID

# Stamps above this are wall-clock (ROS time, TUM); below, seconds since the start of a recording.
_EPOCH_STAMP_MIN = 1e9


def open_memory(db: str | Path, config: MemoryConfig) -> ItemMemory:
    """ItemMemory over an existing database file.

    BadInputError if there is no file (it is not created: a typo must not yield an empty memory);
    CorruptStoreError if it is unusable, and the file is left where it is (an offline query must never
    move a user's file aside, unlike the node, which has to keep running). It takes no writer's lock, so it
    answers while a node runs on the same file.
    """
    db = Path(db)
    if not db.is_file():
        raise BadInputError(f"no memory database at {db}")
    store = MemoryStore(db, on_corrupt="raise", exclusive=False)  # it writes nothing: a running node may hold it
    try:
        return ItemMemory(config, store)
    except BaseException:
        store.close()
        raise


def recorded_frame(memory: ItemMemory) -> str:
    """The frame the memory's positions are in, as its file records it ("map" for a file that does not say)."""
    store = memory.store
    return (store.map_frame if store is not None else "") or MAP_FRAME_ID


def format_answer(answer: ItemAnswer, frame: str = MAP_FRAME_ID) -> str:
    """A few readable lines: current, usual, displaced, alternatives (positions in `frame`, m)."""
    lines = [
        f"{answer.item} ({frame} frame, m)",
        f"  current  {_location(answer.current)}",
        f"  usual    {_location(answer.usual)}",
    ]
    if answer.missing:
        lines.append("  MISSING: its last place was seen empty; current is "
                     + ("the likeliest remembered place" if answer.current_inferred else "that last sighting"))
    elif answer.current_inferred:
        lines.append("  PREDICTED: last seen away from its usual place long enough ago that it is probably back "
                     f"(return prior, P = {answer.current.confidence:.2f})")
    if answer.displaced:
        lines.append(f"  DISPLACED: {answer.distance_m:.2f} m from its usual place")
    elif not answer.missing:  # a missing item's usual place was seen empty: it is not there
        lines.append(f"  at its usual place ({answer.distance_m:.2f} m away)")
    if answer.alternatives:
        lines.append("  also found at:")
        lines += [f"           {_location(a)}" for a in answer.alternatives]
    return "\n".join(lines)


def format_items(answers: Sequence[ItemAnswer], db: str | Path, frame: str = MAP_FRAME_ID) -> str:
    """One line per item: where it is now and whether that is its usual place (positions in `frame`, m)."""
    if not answers:
        return f"no items in {db}"
    width = max(len(a.item) for a in answers)
    lines = [f"{len(answers)} items in {db} ({frame} frame, m)"]
    for a in answers:
        x, y, z = a.current.position
        status = _status(a)
        lines.append(f"  {a.item:<{width}}  now ({x:+.3f}, {y:+.3f}, {z:+.3f})  {status:<18}  "
                     f"last seen {_when(a.current.last_seen)}")
    return "\n".join(lines)


def _status(a: ItemAnswer) -> str:
    """A word or two on `now`, as format_answer's lines say it: a missing item's usual place was seen empty, so
    "usual place" would send someone to a place known to be empty."""
    if a.missing:
        return "MISSING, likeliest" if a.current_inferred else "MISSING, last seen"
    if a.current_inferred:
        return "PREDICTED back"
    return f"DISPLACED {a.distance_m:.2f} m" if a.displaced else "usual place"


def _location(loc: ItemLocation) -> str:
    x, y, z = loc.position
    return (f"({x:+.3f}, {y:+.3f}, {z:+.3f})  confidence {loc.confidence:.2f}  "
            f"last seen {_when(loc.last_seen)}  {loc.observations} obs, {loc.dwell_s:.1f} s there")


def _when(stamp: float) -> str:
    if stamp >= _EPOCH_STAMP_MIN:
        return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp:.2f} s"
