"""One benchmark run: render a scene once, feed every frame to every method, score them all against the truth.

What is scored, per frame or per query (see BENCHMARKS.md for the numbers):

- tracking (TRACKING methods): ground truth = the dynamic agents (people, forklifts) with at least
  min_agent_px visible pixels, their sim box and agent id; predictions = the method's dynamic tracks. An agent
  in view with fewer pixels is don't-care: a box on it is left out, neither a hit nor a false positive.
- change (CHANGE methods): the method's mask against the sim's change-mask truth, every change_every-th
  frame (1 = all).
- layout and retrieval (MEMORY methods): queries at random times, on average every query_period_s of
  simulated time (seeded), for every item the camera has seen (truth: at least min_item_px board pixels
  in view) at least once. Layout: usual vs the item's home, for all of them (displaced ones included);
  retrieval: current vs the true position, for the items lying on the floor (not in someone's hands),
  bucketed by the time since the camera last saw the item (truth). Beside them, from the truth alone, the
  share of those queries whose answer the camera had shown (bench.ceiling: "seen" in the table).
- cost: frames/s of each method's update() alone; for the whole step (rendering waits, every method and
  the scoring): frames/s, the process's peak RSS and its RSS growth per simulated hour.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from ..core.config import ChangeConfig
from ..core.errors import BadInputError
from ..sim import SimFrame, to_frame
from .ceiling import SeenTruth, lies_on_floor
from .depth_error import DepthError
from .methods import CHANGE, DEFAULT_METHODS, MEMORY, TRACKING, Method, make_methods
from .metrics import (
    ChangeAccumulator,
    CostMeter,
    LayoutAccumulator,
    RetrievalAccumulator,
    TrackingAccumulator,
)
from .pose_error import PoseError
from .samples import Sample, SampleCollector
from .scene import BENCH_HEIGHT, BENCH_WIDTH, MAX_MINUTES, make_bench_scene
from .seeds import seed_role

RADIUS_M = 0.5  # an item answer is right within this floor distance of the truth (the 0.5 m)
RETRIEVAL_BUCKETS_S = (60.0, 600.0, 3600.0, 7200.0)  # last seen <= 1, 10, 60, 120 min ago (and older)
RSS_SAMPLE_PERIOD_S = 60.0  # simulated seconds between memory samples
_TRACK_BOX_BYTES = 24  # TrackingAccumulator keeps float32 x4 + int64 per box (its docstring)


@dataclass(frozen=True)
class BenchConfig:
    """One run. Defaults are the benchmark's; tests shrink minutes and the image."""

    preset: str = "warehouse"
    camera: str = "patrol"
    minutes: float = 10.0
    seed: int = 100
    width: int = BENCH_WIDTH
    height: int = BENCH_HEIGHT
    methods: tuple[str, ...] = DEFAULT_METHODS
    query_period_s: float = 30.0  # mean simulated time between item queries
    change_every: int = 1  # score change masks on every n-th frame (1 = all)
    min_agent_px: int = 100  # agents with fewer visible pixels are not in the tracking truth
    min_item_px: int = 100  # an item counts as seen when this many board pixels are in view
    samples: int = 4  # frames kept for samples.png
    jobs: int = 2  # 2: render in a second process while the methods run; 1: all in this process
    model_path: str = ""  # the learned methods' model file; "" = the one shipped in the package
    still_head_scale: int = ChangeConfig().still_head_scale  # the learned methods' change.still_head_scale
    follow_turns: bool | None = None  # change.follow_turns (pipeline, no_memory, learned); None = its default
    pose_noise_deg: float = 0.0  # a localiser's jitter on the methods' camera pose (bench.pose_error), deg
    pose_noise_m: float = 0.0  # and m; the truth keeps the exact pose
    depth_noise_m: float = 0.0  # a depth camera's error on the methods' depth (bench.depth_error): std at 1 m, m
    depth_holes: float = 0.0  # and the share of its pixels with no depth; the truth keeps the exact depth
    patrol_speed: float = 0.0  # the patrol camera's speed, m/s (bench.scene.bench_preset); 0 = the preset's
    patrol_stop_s: float = 0.0  # the patrol robot stands this long at each corner (bench.scene.bench_preset)

    def validate(self) -> BenchConfig:
        checks = [
            (0 < self.minutes <= MAX_MINUTES, f"minutes must be > 0 and at most {MAX_MINUTES} (a week)"),
            (self.width >= 32 and self.height >= 32, "width and height must be >= 32 px"),
            (self.query_period_s > 0, "query_period_s must be > 0"),
            (self.change_every >= 1, "change_every must be >= 1"),
            (self.min_agent_px >= 1 and self.min_item_px >= 1, "min_agent_px and min_item_px must be >= 1"),
            (self.samples >= 0, "samples must be >= 0"),
            (self.jobs in (1, 2), "jobs must be 1 or 2"),
            (self.pose_noise_deg >= 0 and self.pose_noise_m >= 0, "pose noise must be >= 0"),
            (self.depth_noise_m >= 0 and 0 <= self.depth_holes < 1, "depth noise must be >= 0, holes in [0, 1)"),
            (0 <= self.patrol_speed < math.inf and (self.patrol_speed == 0 or self.camera == "patrol"),
             "patrol_speed must be >= 0 and finite, and only for the patrol camera"),
            (0 <= self.patrol_stop_s < math.inf and (self.patrol_stop_s == 0 or self.camera == "patrol"),
             "patrol_stop_s must be >= 0 and finite, and only for the patrol camera"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInputError(message)
        return self


@dataclass
class BenchResult:
    """Everything a run produced: JSON-ready scores plus the frames kept for the pictures."""

    config: BenchConfig
    frames: int
    methods: dict[str, dict[str, Any]]  # method -> {"capabilities", "tracking", "change", ... "cost"}
    run: dict[str, Any]  # the whole step's cost and the run's facts
    items: dict[str, dict[str, Any]]  # item -> home, final truth, each memory method's usual/current at the end
    samples: list[Sample]
    seen: dict[str, Any] | None = None  # SeenScores: the queries whose truth the camera showed; None without memories

    def to_json(self) -> dict[str, Any]:
        bench = asdict(self.config)
        bench.update(seed_role=seed_role(self.config.seed), frames=self.frames, radius_m=RADIUS_M)
        return {"benchmark": bench, "run": self.run, "methods": self.methods, "items": self.items, "seen": self.seen}


@dataclass(frozen=True)
class TrackedFrame:
    """One method's tracks on one frame, with the truth they are scored against (run_bench's ``watch``)."""

    frame: SimFrame  # the rendered frame and its whole truth
    method: str
    gt_ids: np.ndarray  # (N,) the scored agents
    gt_boxes: np.ndarray  # (N, 4) x1y1x2y2 px
    dont_care: np.ndarray  # (K, 4) agents in view too small to score
    track_ids: np.ndarray  # (M,) what the method published
    track_boxes: np.ndarray  # (M, 4)


class _Queries:
    """Query times: gaps drawn uniformly in [0.5, 1.5] x period from the seed, so they are not in step
    with the patrol's loop or the traffic."""

    def __init__(self, seed: int, period_s: float) -> None:
        self._rng = np.random.default_rng([seed, 0xBE7C])
        self._period = period_s
        self.next_s = float(self._rng.uniform(0.5, 1.5)) * period_s

    def due(self, stamp: float) -> bool:
        if stamp < self.next_s:
            return False
        self.next_s += float(self._rng.uniform(0.5, 1.5)) * self._period
        return True


class _Scores:
    """The accumulators of one method, for what it does."""

    def __init__(self, method: Method) -> None:
        caps = method.capabilities
        self.tracking = TrackingAccumulator() if TRACKING in caps else None
        self.change = ChangeAccumulator() if CHANGE in caps else None
        self.layout = LayoutAccumulator(RADIUS_M) if MEMORY in caps else None
        self.retrieval = RetrievalAccumulator(RADIUS_M, RETRIEVAL_BUCKETS_S) if MEMORY in caps else None
        self.cost = CostMeter()

    def as_dict(self, method: Method) -> dict[str, Any]:
        parts = {"tracking": self.tracking, "change": self.change, "layout": self.layout, "retrieval": self.retrieval}
        out: dict[str, Any] = {"capabilities": sorted(method.capabilities)}
        out.update({k: None if acc is None else acc.summary().as_dict() for k, acc in parts.items()})
        cost = self.cost.summary().as_dict()
        out["cost"] = {"fps": cost["fps"], "n_frames": cost["n_frames"], "wall_s": cost["wall_s"]}
        return out


def truth_tracks(frame: SimFrame, min_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (N,), boxes (N, 4) px) of the agents with at least min_px visible pixels, and the boxes (K, 4) of
    those in view with fewer: not scored, but a box on one is no false positive (don't-care)."""
    agents = [a for a in frame.truth.agents if a.visible_px >= min_px]
    boxes = np.array([a.box for a in agents], np.float64).reshape(-1, 4)
    dont_care = np.array([a.box for a in frame.truth.agents if a.visible_px < min_px], np.float64).reshape(-1, 4)
    return np.array([a.agent_id for a in agents], np.int64), boxes, dont_care


def _finite(p: np.ndarray | None) -> np.ndarray | None:
    return p if p is not None and np.isfinite(p[:2]).all() else None


def run_bench(
    config: BenchConfig, *, progress: bool = True, watch: Callable[[TrackedFrame], None] | None = None
) -> BenchResult:
    """Run every method of config on one scene; see the module docstring for what is scored.

    watch, if given, sees every tracking method's boxes on every frame as they are scored (scripts' diagnoses)."""
    from .stream import sim_frames  # multiprocessing only when a run starts

    config.validate()
    scene = make_bench_scene(
        config.preset, config.camera, config.minutes, config.seed, width=config.width, height=config.height,
        patrol_speed=config.patrol_speed, patrol_stop_s=config.patrol_stop_s,
    )
    if len(scene) == 0:
        raise BadInputError(f"{config.minutes:g} min is shorter than one frame of the scene: nothing to score")
    pose_error = PoseError(config.pose_noise_deg, config.pose_noise_m, seed=config.seed)
    depth_error = DepthError(config.depth_noise_m, config.depth_holes, seed=config.seed)
    methods = make_methods(list(config.methods), scene, model_path=config.model_path,
                           still_head_scale=config.still_head_scale,
                           follow_turns=config.follow_turns)
    scores = {m.name: _Scores(m) for m in methods}
    memories = [m for m in methods if MEMORY in m.capabilities]
    queries = _Queries(config.seed, config.query_period_s)
    collector = SampleCollector(config.samples, scene.preset.duration_s)
    last_seen: dict[str, float] = {}  # item -> stamp it was last in view (truth)
    first_at: dict[str, np.ndarray] = {}  # item -> where it was when first in view (truth)
    seen = SeenTruth(RADIUS_M, config.min_item_px) if memories else None
    step: CostMeter | None = None
    next_rss_s = 0.0
    frames = 0
    last: SimFrame | None = None
    load_start = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    start = time.monotonic()
    desc = f"bench {config.preset}/{config.camera} seed {config.seed}"
    try:
        stream = sim_frames(scene, jobs=config.jobs)
        for f in tqdm(stream, total=len(scene), unit="frame", desc=desc, disable=not progress, mininterval=2.0):
            if step is None:
                step = CostMeter()  # from the first frame's arrival: the renderer's start-up is not a step
            frame = to_frame(f)
            if pose_error.active and frame.T_map_cam is not None:
                frame = replace(frame, T_map_cam=pose_error.apply(frame.T_map_cam, f.index))
            if depth_error.active and frame.depth is not None:
                frame = replace(frame, depth=depth_error.apply(frame.depth, f.index))
            gt_ids, gt_boxes, dont_care = truth_tracks(f, config.min_agent_px)
            sample = collector.add(f, gt_boxes) if collector.wants(f) else None
            for m in methods:
                acc = scores[m.name]
                with acc.cost:
                    out = m.update(frame)
                if acc.tracking is not None:
                    if out.track_ids is None or out.track_boxes is None:
                        raise BadInputError(f"method {m.name} does tracking but returned no tracks")
                    acc.tracking.add(f.index, gt_ids, gt_boxes, out.track_ids, out.track_boxes, dont_care)
                    if watch is not None:
                        watch(TrackedFrame(f, m.name, gt_ids, gt_boxes, dont_care, out.track_ids, out.track_boxes))
                    if sample is not None:
                        sample.boxes[m.name] = out.track_boxes
                if acc.change is not None:
                    if out.change_mask is None:
                        raise BadInputError(f"method {m.name} does change detection but returned no mask")
                    if f.index % config.change_every == 0:
                        acc.change.add(out.change_mask, f.truth.change_mask, f.truth.instance_mask)
                    if sample is not None:
                        sample.masks[m.name] = out.change_mask.copy()
            for name, item in f.truth.items.items():
                if item.visible_px >= config.min_item_px:
                    last_seen[name] = f.stamp
                    first_at.setdefault(name, item.position.copy())
            if seen is not None:
                seen.add(f)
                if queries.due(f.stamp):
                    _query(f, memories, scores, last_seen, first_at, seen)
            if f.stamp >= next_rss_s:
                step.sample(f.stamp)
                next_rss_s += RSS_SAMPLE_PERIOD_S
            step.tick()
            frames += 1
            last = f
        items = _final_items(last, memories) if last is not None else {}
    finally:
        for m in methods:
            m.close()
    method_scores = {m.name: scores[m.name].as_dict(m) for m in methods}
    run = _run_facts(step, method_scores, time.monotonic() - start, config)
    run.update(cpus=os.cpu_count(), load_avg_1min_start=load_start, load_avg_1min_end=os.getloadavg()[0])
    summary = None if seen is None else seen.summary().as_dict()
    return BenchResult(config, frames, method_scores, run, items, collector.samples, summary)


def _query(f: SimFrame, memories: list[Method], scores: dict[str, _Scores], last_seen: dict[str, float],
           first_at: dict[str, np.ndarray], seen: SeenTruth) -> None:
    """Ask every memory method about every item seen so far; score usual and current; count the same
    queries in seen. A retrieval query is hard when the item is out of view and away from where it was first
    seen: neither the frame nor a first sighting answers it."""
    for name, item in f.truth.items.items():
        if name not in last_seen:  # never in view: no method could know it
            continue
        on_floor = lies_on_floor(item)
        hard = (on_floor and last_seen[name] < f.stamp
                and float(np.hypot(*(item.position[:2] - first_at[name][:2]))) > RADIUS_M)
        seen.query(name, on_floor, hard=hard)
        displaced = not on_floor or float(np.hypot(*(item.position[:2] - item.home[:2]))) > RADIUS_M
        for m in memories:
            answer = m.locate(name)
            usual, current = (None, None) if answer is None else (_finite(answer[0]), _finite(answer[1]))
            acc = scores[m.name]
            assert acc.layout is not None and acc.retrieval is not None
            acc.layout.add(name, usual, item.home, displaced)
            if on_floor:
                acc.retrieval.add(name, current, item.position, f.stamp - last_seen[name], hard=hard)


def _xyz(p: np.ndarray | None) -> list[float] | None:
    return None if p is None or not np.isfinite(p).all() else [float(v) for v in p]


def _final_items(last: SimFrame, memories: list[Method]) -> dict[str, dict[str, Any]]:
    """Per item at the end: home, true position (None while carried by nobody visible), each answer."""
    out: dict[str, dict[str, Any]] = {}
    for name, item in sorted(last.truth.items.items()):
        answers: dict[str, Any] = {}
        for m in memories:
            a = m.locate(name)
            answers[m.name] = None if a is None else {"usual": _xyz(a[0]), "current": _xyz(a[1])}
        out[name] = {
            "tag_id": item.tag_id,
            "home": _xyz(item.home),
            "true_position": _xyz(item.position),
            "on_floor": bool(item.on_floor),
            "answers": answers,
        }
    return out


def _run_facts(
    step: CostMeter | None, methods: dict[str, dict[str, Any]], elapsed_s: float, config: BenchConfig
) -> dict[str, Any]:
    """The whole step's cost, and how much of the RSS the scorers' own stored boxes account for."""
    boxes = sum(
        s["tracking"]["num_gt"] + s["tracking"]["num_pred"] for s in methods.values() if s["tracking"] is not None
    )
    cost = step.summary().as_dict() if step is not None else {}
    growth = cost.get("growth_mb_per_hour", math.nan)
    return {
        "fps": cost.get("fps", 0.0),
        "wall_s": elapsed_s,
        "peak_rss_mb": cost.get("peak_rss_mb", math.nan),
        "growth_mb_per_hour": growth,
        "scorer_boxes_mb": boxes * _TRACK_BOX_BYTES / 2.0**20,
        "render": "second process" if config.jobs == 2 else "same process",
    }
