"""Where two memory methods answer an item query differently, and why: layout ("where does ITEM usually live")
and R@1 ("where is it now") queries of one bench run, with each method's places for the item (BENCHMARKS "A
return needs a stay").

    .venv/bin/python scripts/memory_disagreements.py --preset warehouse --camera patrol --minutes 120 --seed 1005 \
        [--methods pipeline,pipeline_reader,learned] [--wrong] [--jsonl out/disagreements.jsonl]

Runs `bench` on one scene with the given memory methods and, at every query where their answers are scored
differently (--wrong: also where all are wrong on layout), writes a JSON line with every method's answer, its
places for the item ranked as `locate` ranks them (returns, dwell, observations, first/last seen, seen empty) and
where the item truly was so far (0.5 m cells, frames there, and frames it was in view). The file is written as
the run goes, so a failed printout loses nothing. Then, for the first two methods (and the second and third, when
given), it counts the disagreements by kind: for layout, whether the wrong method's usual place is somewhere the
item never stayed (no cell within 1 m where it spent >= 20 frames) and whether it holds returns; for R@1, whether
the wrong answer was the last sighting or an inferred / predicted place; and the items behind them.

A diagnosis, not a score: it patches the bench's query and its truth counter in this process only. A held-out
seed needs --allow-held-out and must tune nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

import numpy as np

from spatial_memory_ros.bench import runner
from spatial_memory_ros.bench.cli import add_scene_arguments
from spatial_memory_ros.bench.metrics import _within
from spatial_memory_ros.bench.runner import RADIUS_M, BenchConfig, run_bench
from spatial_memory_ros.bench.seeds import TRAIN_SEED_MIN
from spatial_memory_ros.core import item_memory as im
from spatial_memory_ros.core.item_places import ranking

_CELL_M = 0.5
_PHANTOM_M = 1.0
_PHANTOM_FRAMES = 20
_MIN_ITEM_PX = BenchConfig().min_item_px  # the bench's "in view"

truth_cells: dict[str, collections.Counter[tuple[float, float]]] = collections.defaultdict(collections.Counter)
seen_cells: dict[str, collections.Counter[tuple[float, float]]] = collections.defaultdict(collections.Counter)


class _CountingSeen(runner.SeenTruth):
    """bench's SeenTruth, also counting where each item is in every frame (seen or not)."""

    def add(self, f: Any) -> None:
        for name, item in f.truth.items.items():
            x, y = (round(float(v) / _CELL_M) * _CELL_M for v in item.position[:2])
            cell = (x, y)
            truth_cells[name][cell] += 1
            if item.visible_px >= _MIN_ITEM_PX:
                seen_cells[name][cell] += 1
        super().add(f)


def _right(name: str, answer: Any, truth: Any) -> bool:
    """Scored right as the bench scores it (a non-finite answer is no answer)."""
    return _within(name, runner._finite(answer), truth, RADIUS_M)


def _xy(p: Any) -> list[float]:
    return [round(float(v), 2) for v in np.asarray(p)[:2]]


def _places(memory: im.ItemMemory, name: str) -> dict[str, Any] | None:
    state = memory._items.get(name)
    if state is None:
        return None
    ranked = sorted(state.places, key=ranking(state, memory._config.dwell_per_return_s))
    return dict(current=dict(place=state.current.place_id, pos=_xy(state.current.position),
                             stamp=round(float(state.current.stamp), 1)),
                places=[dict(id=p.place_id, pos=_xy(p.position), returns=p.returns, dwell=round(p.dwell_s, 1),
                             obs=p.observations, first=round(float(p.first_seen), 1), last=round(float(p.last_seen), 1),
                             empty=round(float(p.seen_empty), 1)) for p in ranked])


def _patched_query(out: Any, wrong_too: bool) -> Any:
    bench_query = runner._query

    def query(f: Any, memories: list[Any], scores: Any, last_seen: dict[str, float], first_at: dict[str, Any],
              seen: Any) -> None:
        for name, item in f.truth.items.items():
            if name not in last_seen:
                continue
            answers = {m.name: m.locate(name) for m in memories}
            on_floor = runner.lies_on_floor(item)
            layout = {n: a is not None and _right(name, a[0], item.home) for n, a in answers.items()}
            r1 = {n: on_floor and a is not None and _right(name, a[1], item.position) for n, a in answers.items()}
            if len(set(layout.values())) > 1 or (on_floor and len(set(r1.values())) > 1) or (
                    wrong_too and not all(layout.values())):
                out.write(json.dumps(dict(
                    t=round(float(f.stamp), 1), item=name, home=_xy(item.home), pos=_xy(item.position),
                    on_floor=on_floor, layout=layout, r1=r1,
                    answers={n: None if a is None else [_xy(a[0]), _xy(a[1])] for n, a in answers.items()},
                    mem={m.name: _places(m.pipeline.memory, name) for m in memories},
                    truth_cells=[[list(k), v] for k, v in truth_cells[name].most_common(8)],
                    seen_cells=[[list(k), v] for k, v in seen_cells[name].most_common(8)])) + "\n")
                out.flush()
        bench_query(f, memories, scores, last_seen, first_at, seen)

    return query


def _stayed(pos: list[float], cells: list[Any]) -> bool:
    return any(np.hypot(pos[0] - c[0][0], pos[1] - c[0][1]) <= _PHANTOM_M and c[1] >= _PHANTOM_FRAMES for c in cells)


def summarise(rows: list[dict[str, Any]], a: str, b: str) -> None:
    kinds: collections.Counter[tuple[str, str]] = collections.Counter()
    items: collections.Counter[tuple[str, str]] = collections.Counter()
    first: dict[tuple[str, str], float] = {}
    for r in rows:
        for metric in ("layout", "r1"):
            if (metric == "r1" and not r["on_floor"]) or r[metric][a] == r[metric][b]:
                continue
            right, wrong = (a, b) if r[metric][a] else (b, a)
            who = f"{metric}: {right} right, {wrong} wrong"
            mem, answer = r["mem"][wrong], r["answers"][wrong]
            if mem is None:
                why = "item unknown to it"
            elif metric == "layout":
                top = mem["places"][0]
                why = ("usual place never stayed at" if not _stayed(top["pos"], r["truth_cells"]) else
                       "usual place a real one") + (", with returns" if top["returns"] else ", dwell only")
            else:
                cur = mem["current"]["pos"]
                last = answer is not None and np.hypot(answer[1][0] - cur[0], answer[1][1] - cur[1]) < 0.05
                why = "answered the last sighting" if last else "answered an inferred / predicted place"
            kinds[(who, why)] += 1
            items[(who, r["item"])] += 1
            first.setdefault((who, r["item"]), r["t"])
    for (who, why), n in sorted(kinds.items()):
        print(f"{n:6d}  {who}: {why}")
    for (who, item), n in items.most_common(20):
        print(f"{n:6d}  {who}: {item} (from {first[(who, item)]:.0f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scene_arguments(p, seed=1005)
    p.add_argument("--methods", default="pipeline,pipeline_reader,learned", help="memory methods of bench, >= 2")
    p.add_argument("--wrong", action="store_true", help="also log layout queries every method gets wrong")
    p.add_argument("--jsonl", type=Path, default=Path("out/disagreements.jsonl"))
    p.add_argument("--allow-held-out", action="store_true", help="allow a benchmark seed (diagnosis only)")
    args = p.parse_args()
    if args.seed < TRAIN_SEED_MIN and not args.allow_held_out:
        raise SystemExit(f"seed {args.seed} is not a training seed (>= {TRAIN_SEED_MIN}); pass --allow-held-out")
    methods = tuple(args.methods.split(","))
    if len(methods) < 2:
        raise SystemExit("--methods needs two memory methods or more")
    args.jsonl.parent.mkdir(parents=True, exist_ok=True)
    with open(args.jsonl, "w") as out:
        runner._query = _patched_query(out, args.wrong)
        runner.SeenTruth = _CountingSeen  # type: ignore[misc]
        result = run_bench(BenchConfig(preset=args.preset, camera=args.camera, minutes=args.minutes, seed=args.seed,
                                       methods=methods, jobs=2))
    for name, v in result.methods.items():
        lay, ret = v["layout"], v["retrieval"]
        print(f"{name}: layout {lay['accuracy']:.4f} of {lay['n']}, R@1 {ret['recall_at_1']:.4f} of {ret['n']}")
    rows = [json.loads(line) for line in args.jsonl.read_text().splitlines()]
    print(f"{len(rows)} queries logged to {args.jsonl}")
    summarise(rows, methods[0], methods[1])
    if len(methods) > 2:
        summarise(rows, methods[1], methods[2])


if __name__ == "__main__":
    main()
