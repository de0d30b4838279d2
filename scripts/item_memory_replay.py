"""Record what each memory method's item memory is told during one bench run, then replay it into item memories
of other settings in seconds instead of re-running the scene (BENCHMARKS "Replaying the item memory").

    .venv/bin/python scripts/item_memory_replay.py record --preset warehouse --camera patrol --minutes 120 \
        --seed 1005 [--methods pipeline,pipeline_reader,learned] [--log out/replay/warehouse_patrol_1005_120.pkl]
    .venv/bin/python scripts/item_memory_replay.py replay out/replay/warehouse_patrol_1005_120.pkl \
        [--set min_stay_sightings=5 ...] [--visits]

record runs `bench` as it is and keeps, per memory method, every call its pipeline makes to the item memory
(advance, observe, observe_absent) in order, the bench's queries at the moments it asks them (with the truth they
are scored against), and, for each sighting, where the item truly was in that frame. It prints the bench's own
layout and R@1 figures.

replay feeds each method's calls to a fresh ItemMemory with the recorded memory config, changed by --set
(MemoryConfig fields), asks the same queries and scores them as the bench does. With no --set it must give the
bench's figures exactly (printed side by side): that is the check that the recording is complete. It is exact for
rules that change how places are ranked, not which places exist: observe_absent names places by the ids the
recorded run had (a rule that forgets other places would see some of those checks go to a place it no longer has).
--visits prints, per method, the visits (runs of sightings at one place) by length in sightings, split by whether
the item truly was within the place radius of the sighting (real) or not (a misread).

A diagnosis and tuning harness: a held-out seed needs --allow-held-out, and nothing may be tuned on one.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from spatial_memory_ros.bench import runner
from spatial_memory_ros.bench.cli import add_scene_arguments
from spatial_memory_ros.bench.metrics import _within
from spatial_memory_ros.bench.runner import RADIUS_M, BenchConfig, run_bench
from spatial_memory_ros.bench.seeds import TRAIN_SEED_MIN
from spatial_memory_ros.core.config import MemoryConfig
from spatial_memory_ros.core.errors import UnknownItemError
from spatial_memory_ros.core.item_memory import ItemMemory

# A call log: ("advance", stamp) | ("observe", [ItemObservation], [true xyz or None])
# | ("absent", [(item, place)], stamp) | ("query", item, true home xyz, true position xyz, on_floor, displaced, age s)
Call = tuple[Any, ...]


@dataclass
class Recording:  # pickled as the script's __main__.Recording: load it with this script
    config: dict[str, Any]  # the bench scene: preset, camera, minutes, seed
    memory: dict[str, MemoryConfig] = field(default_factory=dict)  # method -> its item memory's config
    centre_weight_cap: dict[str, int] = field(default_factory=dict)
    calls: dict[str, list[Call]] = field(default_factory=dict)
    bench: dict[str, tuple[float, int, float, int]] = field(default_factory=dict)  # layout acc, n, R@1, n


_truth: dict[str, Any] = {}  # the frame being processed: item -> truth, set before the methods see it


class _Recorder:
    """Stands in for a pipeline's ItemMemory: passes every call on and logs those that change it."""

    def __init__(self, memory: ItemMemory, log: list[Call]) -> None:
        self._memory = memory
        self._log = log

    def advance(self, stamp: float) -> None:
        self._log.append(("advance", float(stamp)))
        self._memory.advance(stamp)

    def observe(self, observations: Any) -> None:
        observations = list(observations)
        truth = [None if o.item.strip() not in _truth else np.asarray(_truth[o.item.strip()].position, float).copy()
                 for o in observations]
        self._log.append(("observe", observations, truth))
        self._memory.observe(observations)

    def observe_absent(self, checked: Any, stamp: float) -> None:
        self._log.append(("absent", [(str(n), int(p)) for n, p in checked], float(stamp)))
        self._memory.observe_absent(checked, stamp)

    def __getattr__(self, name: str) -> Any:  # places_to_check, locate, close, ...: unchanged, not logged
        return getattr(self._memory, name)


def record(args: argparse.Namespace) -> None:
    if args.seed < TRAIN_SEED_MIN and not args.allow_held_out:
        raise SystemExit(f"seed {args.seed} is not a training seed (>= {TRAIN_SEED_MIN}); pass --allow-held-out")
    rec = Recording(dict(preset=args.preset, camera=args.camera, minutes=args.minutes, seed=args.seed))
    make_methods, to_frame, bench_query = runner.make_methods, runner.to_frame, runner._query

    def recording_methods(*a: Any, **k: Any) -> Any:
        methods = make_methods(*a, **k)
        for m in methods:
            memory = getattr(getattr(m, "pipeline", None), "memory", None)
            if isinstance(memory, ItemMemory):
                rec.memory[m.name] = memory._config
                rec.centre_weight_cap[m.name] = memory._centre_weight_cap
                m.pipeline.memory = _Recorder(memory, rec.calls.setdefault(m.name, []))  # type: ignore[attr-defined]
        return methods

    def stash_truth(f: Any) -> Any:
        _truth.clear()
        _truth.update(f.truth.items)
        return to_frame(f)

    def logged_query(f: Any, memories: Any, scores: Any, last_seen: dict[str, float], first_at: dict[str, Any],
                     seen: Any) -> None:
        for name, item in f.truth.items.items():
            if name not in last_seen:
                continue
            on_floor = runner.lies_on_floor(item)
            displaced = not on_floor or float(np.hypot(*(item.position[:2] - item.home[:2]))) > RADIUS_M
            call = ("query", name, np.asarray(item.home, float).copy(), np.asarray(item.position, float).copy(),
                    bool(on_floor), bool(displaced), float(f.stamp - last_seen[name]))
            for log in rec.calls.values():
                log.append(call)
        bench_query(f, memories, scores, last_seen, first_at, seen)

    runner.make_methods, runner._query = recording_methods, logged_query
    runner.to_frame = stash_truth  # type: ignore[assignment]
    result = run_bench(BenchConfig(preset=args.preset, camera=args.camera, minutes=args.minutes, seed=args.seed,
                                   methods=tuple(args.methods.split(",")), jobs=2))
    for name, v in result.methods.items():
        if name in rec.calls:
            lay, ret = v["layout"], v["retrieval"]
            rec.bench[name] = (lay["accuracy"], lay["n"], ret["recall_at_1"], ret["n"])
            print(f"bench  {name}: layout {lay['accuracy']:.4f} of {lay['n']}, R@1 {ret['recall_at_1']:.4f} of "
                  f"{ret['n']}")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "wb") as out:
        pickle.dump(rec, out, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"recorded {sum(len(c) for c in rec.calls.values())} calls to {args.log}")


@dataclass
class Replayed:
    layout: int = 0
    layout_n: int = 0
    r1: int = 0
    r1_n: int = 0
    right: list[tuple[bool, bool | None]] = field(default_factory=list)  # per query: layout right, R@1 right


def replay_one(calls: list[Call], config: MemoryConfig, centre_weight_cap: int) -> Replayed:
    """Feed one method's calls to a fresh in-RAM ItemMemory of this config; score its answers as the bench does."""
    memory = ItemMemory(config, None, centre_weight_cap=centre_weight_cap)
    out = Replayed()
    for call in calls:
        kind = call[0]
        if kind == "advance":
            memory.advance(call[1])
        elif kind == "observe":
            memory.observe(call[1])
        elif kind == "absent":
            memory.observe_absent(call[1], call[2])
        else:
            _, name, home, position, on_floor, _displaced, _age = call
            try:
                answer = memory.locate(name)
                usual, current = runner._finite(answer.usual.position), runner._finite(answer.current.position)
            except UnknownItemError:  # as the bench's PipelineMethod.locate: counted wrong; anything else is a bug
                usual = current = None
            lay = _within(name, usual, home, RADIUS_M)
            out.layout += lay
            out.layout_n += 1
            r1 = _within(name, current, position, RADIUS_M) if on_floor else None
            if on_floor:
                out.r1 += bool(r1)
                out.r1_n += 1
            out.right.append((lay, r1))
    return out


def _settings(pairs: list[str]) -> dict[str, Any]:
    types = {f.name: f.type for f in fields(MemoryConfig)}
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"--set {pair}: {key!r} is not a MemoryConfig field ({', '.join(sorted(types))})")
        kind = str(types[key])
        settings[key] = (value.lower() in ("1", "true", "yes") if "bool" in kind else
                         int(value) if kind.startswith("int") else float(value) if "float" in kind else value)
    return settings


def visits(calls: list[Call], place_radius_m: float) -> dict[str, collections.Counter[int]]:
    """Runs of consecutive sightings of an item within place_radius_m of the run's first sighting, by length,
    under "real" when the item truly stood within place_radius_m of that first sighting, else "misread"."""
    runs: dict[str, collections.Counter[int]] = {"real": collections.Counter(), "misread": collections.Counter()}
    open_runs: dict[str, tuple[np.ndarray, int, bool]] = {}
    for call in calls:
        if call[0] != "observe":
            continue
        for o, truth in zip(call[1], call[2]):
            p = np.asarray(o.position, float)
            at = open_runs.get(o.item)
            if at is not None and np.linalg.norm(p - at[0]) <= place_radius_m:
                open_runs[o.item] = (at[0], at[1] + 1, at[2])
                continue
            if at is not None:
                runs["real" if at[2] else "misread"][at[1]] += 1
            real = truth is not None and float(np.hypot(*(p[:2] - truth[:2]))) <= place_radius_m
            open_runs[o.item] = (p, 1, real)
    for _, n, real in open_runs.values():
        runs["real" if real else "misread"][n] += 1
    return runs


def _as_recorded(recorded: MemoryConfig) -> MemoryConfig:
    """The recorded config in this code's MemoryConfig: fields this code lacks are dropped, fields the recording's
    code lacked take this code's defaults (so a recording from before a rule replays with it: not the bench's run)."""
    known = {f.name for f in fields(MemoryConfig)}
    return MemoryConfig(**{k: v for k, v in vars(recorded).items() if k in known})


def replay(args: argparse.Namespace) -> None:
    with open(args.log, "rb") as f:
        rec: Recording = pickle.load(f)
    print(f"{args.log}: {rec.config}")
    settings = _settings(args.set)
    for name, calls in rec.calls.items():
        base_config = _as_recorded(rec.memory[name])
        start = time.monotonic()
        base = replay_one(calls, base_config, rec.centre_weight_cap[name])
        bench = rec.bench.get(name)
        line = (f"{name}: replayed layout {base.layout}/{base.layout_n} = {base.layout / max(base.layout_n, 1):.4f}, "
                f"R@1 {base.r1}/{base.r1_n} = {base.r1 / max(base.r1_n, 1):.4f}")
        if bench is not None:
            line += f"  (bench {bench[0]:.4f} / {bench[2]:.4f})"
        print(line + f"  [{time.monotonic() - start:.0f} s]")
        if settings:
            new = replay_one(calls, replace(base_config, **settings), rec.centre_weight_cap[name])
            gained = [sum(1 for a, b in zip(base.right, new.right) if a[i] is not None and a[i] != b[i] and b[i])
                      for i in (0, 1)]
            lost = [sum(1 for a, b in zip(base.right, new.right) if a[i] is not None and a[i] != b[i] and not b[i])
                    for i in (0, 1)]
            print(f"  with {settings}: layout {new.layout} ({new.layout - base.layout:+d}: +{gained[0]} -{lost[0]}), "
                  f"R@1 {new.r1} ({new.r1 - base.r1:+d}: +{gained[1]} -{lost[1]})")
        if args.visits:
            for kind, counts in visits(calls, base_config.place_radius_m).items():
                shown = ", ".join(f"{n}:{counts[n]}" for n in sorted(counts) if n <= 30)
                more = sum(v for n, v in counts.items() if n > 30)
                print(f"  {kind} visits by sightings: {shown}; >30: {more}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="run bench once and log what each item memory is told")
    add_scene_arguments(r, seed=1005)
    r.add_argument("--methods", default="pipeline,pipeline_reader,learned", help="bench methods (memory ones logged)")
    r.add_argument("--log", type=Path, default=None, help="default out/replay/PRESET_CAMERA_SEED_MINUTES.pkl")
    r.add_argument("--allow-held-out", action="store_true", help="allow a benchmark seed (diagnosis only)")
    q = sub.add_parser("replay", help="replay a log into item memories of other settings")
    q.add_argument("log", type=Path)
    q.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a MemoryConfig field to change")
    q.add_argument("--visits", action="store_true", help="print visits by length, real and misread")
    args = p.parse_args()
    if args.command == "record":
        if args.log is None:
            args.log = Path(f"out/replay/{args.preset}_{args.camera}_{args.seed}_{args.minutes:g}.pkl")
        record(args)
    else:
        replay(args)


if __name__ == "__main__":
    main()
