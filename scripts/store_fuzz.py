"""Random damage to a memory database: what opening it gives, file by file.

    .venv/bin/python scripts/store_fuzz.py [--files 400] [--seed 1]

Writes a store of 30 items (5 places each), then, for each of --files copies, changes 1, 2 or 4 random bytes
past the file header and opens the copy as the node does (MemoryStore + ItemMemory, moving an unusable file
aside), lists every item and records two sightings. Each copy ends as one of:
- read whole: opened in place with all 30 items;
- moved aside: found unusable, kept as <db>.corrupt-<time>, an empty memory started;
- refused: a SpatialMemoryError at open (the node stops with that message, the file left as it was);
- items lost: opened in place with fewer items, without a word (what the store must never do);
- crash: any other exception (the node would die with a traceback).
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spatial_memory_ros.core.config import MemoryConfig
from spatial_memory_ros.core.errors import SpatialMemoryError
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.types import ItemObservation

ITEMS = 30


def _sighting(item: str, x: float, y: float, stamp: float) -> ItemObservation:
    return ItemObservation(item=item, position=np.array([x, y, 0.0]), stamp=stamp, confidence=0.9)


def _outcome(db: Path) -> str:
    try:
        store = MemoryStore(db)
        memory = ItemMemory(MemoryConfig(), store)
        known = len(memory.items())
        memory.list_all()
        memory.observe([_sighting("item3", 0.0, 3.0, 1000.0)])
        memory.observe([_sighting("new", 0.0, 3.0, 1000.0)])
        memory.close()
    except SpatialMemoryError as exc:
        return f"refused: {str(exc)[:90]}"
    except Exception as exc:  # noqa: BLE001 - what the node would die of is what this counts
        return f"crash: {type(exc).__name__}"
    if store.moved_aside_to is not None:
        return "moved aside"
    return "read whole" if known == ITEMS else f"items lost ({known} of {ITEMS} read)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=400)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    logging.disable(logging.CRITICAL)  # the store logs every file it moves aside
    work = Path(tempfile.mkdtemp(prefix="store_fuzz_"))
    base = work / "base.db"
    with ItemMemory(MemoryConfig(), MemoryStore(base)) as memory:
        for i in range(ITEMS):
            for k in range(5):
                memory.observe([_sighting(f"item{i}", float(k), float(i), 100.0 + 10 * k + i)])
    raw = base.read_bytes()
    rng = random.Random(args.seed)
    counts: collections.Counter[str] = collections.Counter()
    copy_dir = work / "copy"
    for _ in tqdm(range(args.files), unit="file", file=sys.stderr):
        data = bytearray(raw)
        for _ in range(rng.choice([1, 1, 2, 4])):
            data[rng.randrange(100, len(data))] = rng.randrange(256)
        shutil.rmtree(copy_dir, ignore_errors=True)
        copy_dir.mkdir()
        (copy_dir / "m.db").write_bytes(bytes(data))
        counts[_outcome(copy_dir / "m.db")] += 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"{args.files} damaged copies of a {len(raw)}-byte store of {ITEMS} items (seed {args.seed}):")
    for outcome, n in counts.most_common():
        print(f"  {n:4d}  {outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
