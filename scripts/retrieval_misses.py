"""Why a memory method answers "where is ITEM now" wrong: its R@1 queries split by what the camera showed and
what the memory knew (BENCHMARKS "A place seen empty before the item left", "Items the camera showed but
nobody read").

    .venv/bin/python scripts/retrieval_misses.py --preset warehouse --camera patrol --minutes 120 --seed 1005 \
        [--method pipeline_prior] [--reads] [--spots]

Runs `bench` on one scene with one memory method and, at every query the bench scores, files the query under
(seen / unseen: the camera had shown the item where it lies now, bench.ceiling; right / wrong; the truth at
home / away; the answer missing (its last place seen empty), current_inferred, and at home / away). Prints
R@1, the (seen) share and the count of each kind.

--reads (a method with the tag reader: pipeline_reader, learned) also logs every quad the reader was given, and
for each item placement the camera showed (>= 100 board pixels) but the method got wrong, prints in how many
frames a quad lay within 30 px of the item, how often the reader ranked the item's id first, its median
margin over the runner-up, and the margin of the log-likelihoods summed over those frames: whether a reader
that pooled frames would have named it.

--spots asks whether a memory of where displaced things get put down would find the missing items it answers
wrong. For each such query (its last place seen empty, the answer not where the item lies) the candidates are
the item's own places away from home, and every other item's places away from that item's home, that were not
checked since the item was found gone (a place is checked when it was in view and decodable without its item,
or its item was seen there; the place of another item still there is left out). It prints whether the truth is
among the candidates, how many there are, and the truth's rank when they are taken oldest check first and
newest first: how many answers such a guess could win at R@1.

A diagnosis, not a score: it patches the bench's query and the reader's read in this process only. A held-out
seed needs --allow-held-out and must tune nothing.
"""

from __future__ import annotations

import argparse
import collections
from collections.abc import Iterator
from typing import Any

import numpy as np

from spatial_memory_ros.bench import runner, stream
from spatial_memory_ros.bench.ceiling import MOVED_M, lies_on_floor
from spatial_memory_ros.bench.cli import add_scene_arguments
from spatial_memory_ros.bench.metrics import _within
from spatial_memory_ros.bench.runner import BenchConfig, run_bench
from spatial_memory_ros.bench.seeds import TRAIN_SEED_MIN
from spatial_memory_ros.core import item_memory, item_places
from spatial_memory_ros.core.errors import UnknownItemError
from spatial_memory_ros.core.types import PlaceToCheck
from spatial_memory_ros.sim import SimFrame

NEAR_PX = 30.0  # a quad centre this close to the item's projected centre is taken to be its board


def _near(name: str, a: np.ndarray, b: np.ndarray) -> bool:
    """The bench's own test of an answer (within RADIUS_M in the floor plane), so "right" here is right there."""
    return _within(name, a, b, runner.RADIUS_M)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scene_arguments(p, seed=1005)
    p.add_argument("--method", default="pipeline_prior", help="one memory method of bench (default pipeline_prior)")
    p.add_argument("--reads", action="store_true", help="log the tag reader's scores (a method with the reader)")
    p.add_argument("--spots", action="store_true", help="would other items' put-down places find missing items?")
    p.add_argument("--allow-held-out", action="store_true", help="allow a benchmark seed (diagnosis only)")
    args = p.parse_args()
    if args.seed < TRAIN_SEED_MIN and not args.allow_held_out:
        raise SystemExit(f"seed {args.seed} is not a training seed (>= {TRAIN_SEED_MIN}); pass --allow-held-out")

    kinds: collections.Counter[tuple[str, ...]] = collections.Counter()
    wrong_seen: list[dict[str, Any]] = []
    put_frame: dict[str, int] = {}  # item -> frame it was last put down at (truth)
    bench_query = runner._query
    spots = _SpotProbe() if args.spots else None

    def query(f: SimFrame, memories: list[Any], scores: Any, last_seen: dict[str, float], first_at: dict[str, Any],
              seen: Any) -> None:
        pipeline = memories[0].pipeline
        for name, item in f.truth.items.items():
            if name not in last_seen or not lies_on_floor(item):
                continue  # the bench scores R@1 only for these
            try:
                answer = pipeline.locate(name)
            except UnknownItemError:
                kinds[("unknown to the memory",)] += 1
                continue
            cur = answer.current.position
            shown = name in seen._seen_here
            right = _near(name, cur, item.position)
            kinds[("seen" if shown else "unseen", "right" if right else "wrong",
                   "truth@home" if _near(name, item.position, item.home) else "truth@away",
                   "missing" if answer.missing else "-", "inferred" if answer.current_inferred else "-",
                   "answer@home" if _near(name, cur, item.home) else "answer@away")] += 1
            if spots is not None and answer.missing and not right:
                spots.classify(pipeline.memory, name, item.position, shown)
            if shown and not right:
                wrong_seen.append({"item": name, "frame": f.index, "put": put_frame[name]})
        bench_query(f, memories, scores, last_seen, first_at, seen)

    runner._query = query

    # Per frame: where each item's centre projects (and its board pixels); the reader's quads and scores.
    projected: dict[int, dict[str, tuple[float, float, int]]] = {}
    reads: dict[int, list[tuple[np.ndarray, np.ndarray]]] = collections.defaultdict(list)
    frame_now = {"index": -1}
    bench_frames = stream.sim_frames

    def frames(scene: Any, jobs: int = 1) -> Iterator[SimFrame]:
        put_at: dict[str, np.ndarray] = {}
        for f in bench_frames(scene, jobs=jobs):
            frame_now["index"] = f.index
            T_cam_map, K = np.linalg.inv(f.T_map_cam), f.intrinsics
            here = {}
            for name, item in f.truth.items.items():
                if lies_on_floor(item):
                    xy = item.position[:2]
                    if name not in put_at or float(np.hypot(*(xy - put_at[name]))) > MOVED_M:
                        put_at[name], put_frame[name] = xy.copy(), f.index
                if args.reads and item.visible_px > 0 and np.isfinite(item.position).all():
                    pc = T_cam_map[:3, :3] @ item.position + T_cam_map[:3, 3]
                    if pc[2] > 0:
                        here[name] = (K.fx * pc[0] / pc[2] + K.cx, K.fy * pc[1] / pc[2] + K.cy, int(item.visible_px))
            projected[f.index] = here
            yield f

    stream.sim_frames = frames
    if args.reads:
        from spatial_memory_ros.model import tag_reader

        reader_read = tag_reader.TagReader.read

        def read(self: tag_reader.TagReader, gray: np.ndarray, quads: list[np.ndarray]) -> list[tag_reader.TagRead]:
            if quads and self.ids:
                ll, _, _ = self.scores(np.stack([tag_reader.warp_quad(gray, q) for q in quads]))
                reads[frame_now["index"]] += [(np.asarray(q).reshape(4, 2).mean(axis=0), s) for q, s in zip(quads, ll)]
            return reader_read(self, gray, quads)

        tag_reader.TagReader.read = read  # type: ignore[method-assign]

    config = BenchConfig(preset=args.preset, camera=args.camera, minutes=args.minutes, seed=args.seed,
                         methods=(args.method,), jobs=1)
    result = run_bench(config)
    print(f"R@1 {result.methods[args.method]['retrieval']['recall_at_1']:.4f}; (seen) {result.seen}")
    for kind, n in kinds.most_common():
        print(f"{n:6d}  {' '.join(kind)}")
    if spots is not None:
        spots.print()
    if args.reads:
        _print_reads(config, wrong_seen, projected, reads)


class _SpotProbe:
    """--spots: every remembered place is checked (the memory itself ignores the checks of a place its item has
    left, so its answers do not change), and the latest check of each is kept here."""

    def __init__(self) -> None:
        self.checked: dict[tuple[str, int], float] = {}
        self.kinds: collections.Counter[tuple[str, ...]] = collections.Counter()

        def every_place(memory: item_memory.ItemMemory) -> list[PlaceToCheck]:
            return [PlaceToCheck(name, p.place_id, p.position.copy(), p.orientation.copy())
                    for name, state in memory._items.items() for p in state.places]

        observe_absent = item_memory.ItemMemory.observe_absent

        def absent(memory: item_memory.ItemMemory, pairs: Any, stamp: float) -> None:
            for pair in pairs:
                self.checked[pair] = stamp
            observe_absent(memory, pairs, stamp)

        item_memory.ItemMemory.places_to_check = every_place  # type: ignore[method-assign,assignment]
        item_memory.ItemMemory.observe_absent = absent  # type: ignore[method-assign,assignment]

    def classify(self, memory: item_memory.ItemMemory, name: str, truth: np.ndarray, shown: bool) -> None:
        state = memory._items[name]
        at = next(p for p in state.places if p.place_id == state.current.place_id)
        gone = at.seen_empty  # when the item was found gone from its last place
        candidates: list[tuple[np.ndarray, float]] = []
        for other, s in memory._items.items():
            home = memory.locate(other).usual.position
            for p in s.places:
                if _near(other, p.position, home) or (other == name and p.place_id == at.place_id):
                    continue
                if other != name and s.current.place_id == p.place_id and not item_places.left(s, p):
                    continue  # the other item is there
                last = max(p.seen_empty, self.checked.get((other, p.place_id), -np.inf))
                if other != name:
                    last = max(last, p.last_seen)
                if last < gone:
                    candidates.append((p.position, last))
        distinct: list[tuple[np.ndarray, float]] = []
        for c in sorted(candidates, key=lambda c: -c[1]):  # one per place, its latest check
            if all(not _near(name, c[0], d[0]) for d in distinct):
                distinct.append(c)
        oldest = [i for i, c in enumerate(sorted(distinct, key=lambda c: c[1])) if _near(name, c[0], truth)]
        newest = [i for i, c in enumerate(sorted(distinct, key=lambda c: -c[1])) if _near(name, c[0], truth)]
        n = f"{len(distinct)}" if len(distinct) < 9 else ">=9"
        self.kinds[("seen" if shown else "unseen", "truth among them" if oldest else "truth not among them",
                    f"candidates {n}")] += 1
        if oldest:
            self.kinds[("rank, oldest check first", str(oldest[0]) if oldest[0] < 3 else ">=3")] += 1
            self.kinds[("rank, newest check first", str(newest[0]) if newest[0] < 3 else ">=3")] += 1

    def print(self) -> None:
        print("\nmissing items answered wrong: would a put-down place of another item find them?")
        for kind, n in sorted(self.kinds.items(), key=lambda kv: (kv[0][0], -kv[1])):
            print(f"{n:6d}  {' / '.join(kind)}")


def _print_reads(config: BenchConfig, wrong_seen: list[dict[str, Any]], projected: dict, reads: dict) -> None:
    from spatial_memory_ros.bench.scene import make_bench_scene

    scene = make_bench_scene(config.preset, config.camera, config.minutes, config.seed)
    ids = sorted({it.tag_id for it in scene.preset.items})
    column = {it.name: ids.index(it.tag_id) for it in scene.preset.items}
    queries = collections.Counter((w["item"], w["put"]) for w in wrong_seen)
    last_query = {(w["item"], w["put"]): w["frame"] for w in wrong_seen}
    print("\nitems shown but answered wrong: item, put down at frame, wrong queries, frames shown (>= 100 px), "
          "frames with a quad on it, read first, median margin, pooled margin")
    for (name, put), n in queries.items():
        k = column[name]
        shown = with_quad = first = 0
        margins: list[float] = []
        pooled = np.zeros(len(ids))
        for index in range(put, last_query[(name, put)] + 1):
            at = projected.get(index, {}).get(name)
            if at is None or at[2] < config.min_item_px:
                continue
            shown += 1
            near = [(float(np.hypot(c[0] - at[0], c[1] - at[1])), s) for c, s in reads.get(index, [])]
            near = [x for x in near if x[0] <= NEAR_PX]
            if not near:
                continue
            s = min(near, key=lambda x: x[0])[1]
            with_quad += 1
            first += int(np.argmax(s) == k)
            margins.append(float(s[k] - np.delete(s, k).max()))
            pooled += s
        median = f"{np.median(margins):6.1f}" if margins else "     -"
        pooled_margin = f"{pooled[k] - np.delete(pooled, k).max():6.1f}" if with_quad else "     -"
        print(f"{name:>12} {put:6d} {n:4d} {shown:5d} {with_quad:5d} {first:5d} {median} {pooled_margin}")


if __name__ == "__main__":
    main()
