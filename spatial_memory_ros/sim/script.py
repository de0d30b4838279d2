"""Expand a ScenePreset and a seed into a concrete timeline: where every item and agent is at any time.

The script is computed once, up front, and is small (events, not frames), so a 2-hour sequence costs
nothing until it is rendered. All randomness comes from one numpy Generator seeded by the scene seed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .spec import AgentSpec, LightEvent, MoveSpec, Pose2, ScenePreset, WalkerSpec

CARRIER_SPEED = 1.0  # m/s, how fast carriers of scripted moves walk in and out
HANDLING_S = 0.5  # carriers stand this long before and after a pick or a put-down
BESIDE_M = 0.45  # carriers stand this far from the item's centre while handling it
CARRY_HEIGHT_M = 0.9  # a carried item's true z


@dataclass(frozen=True)
class Placement:
    """One item lying at one pose; the change truth compares placements, so a moved item is a new one."""

    item: int  # index into SceneScript.items
    pose: Pose2


@dataclass(frozen=True)
class AgentTrack:
    """An agent's whole life: present from t[0] to t[-1], straight lines between key frames."""

    agent_id: int  # >= 1; also its value in the instance mask
    spec: AgentSpec
    t: np.ndarray  # (N,) s, non-decreasing
    xy: np.ndarray  # (N, 2) m

    def state(self, t: float) -> tuple[np.ndarray, float, np.ndarray]:
        """((2,) position m, heading rad, (2,) velocity m/s) at time t (clamped to the life span)."""
        pos = np.array([np.interp(t, self.t, self.xy[:, 0]), np.interp(t, self.t, self.xy[:, 1])])
        i = int(np.clip(np.searchsorted(self.t, t, side="right") - 1, 0, len(self.t) - 2))
        dt = self.t[i + 1] - self.t[i]
        vel = (self.xy[i + 1] - self.xy[i]) / dt if dt > 0 else np.zeros(2)
        # Standing still keeps the heading of the last leg that moved.
        j = i
        while j > 0 and not np.any(self.xy[j + 1] != self.xy[j]):
            j -= 1
        d = self.xy[j + 1] - self.xy[j]
        return pos, math.atan2(d[1], d[0]) if np.any(d != 0) else 0.0, vel


@dataclass
class SceneScript:
    preset: ScenePreset
    placements: list[Placement]
    item_events: list[list[tuple[float, int, int]]]  # per item: (t, placement or -1, carrier agent id or 0)
    agents: list[AgentTrack]
    moves: list[MoveSpec]  # scripted + generated, by t_pick
    lights: list[LightEvent]  # by t

    def __post_init__(self) -> None:
        self._t0 = np.array([a.t[0] for a in self.agents] or [np.inf])
        self._t1 = np.array([a.t[-1] for a in self.agents] or [-np.inf])
        self._light_t = [ev.t for ev in self.lights]
        # Gain reached when each light event starts (the previous ramp may still be running then).
        self._light_g0: list[float] = []
        g = 1.0
        for k, ev in enumerate(self.lights):
            if k:
                prev = self.lights[k - 1]
                u = 1.0 if prev.ramp_s <= 0 else min(1.0, (ev.t - prev.t) / prev.ramp_s)
                g = g + u * (prev.gain - g)
            self._light_g0.append(g)

    def item_state(self, item: int, t: float) -> tuple[int, int]:
        """(placement index or -1 while carried, carrier agent id or 0) of an item at time t."""
        ev = self.item_events[item]
        i = bisect.bisect_right(ev, (t, math.inf, math.inf)) - 1
        _, p, c = ev[max(i, 0)]
        return p, c

    def active_agents(self, t: float) -> list[AgentTrack]:
        return [self.agents[i] for i in np.nonzero((self._t0 <= t) & (t <= self._t1))[0]]

    def gain(self, t: float) -> float:
        """Global illumination gain at time t (1 = nominal)."""
        g = 1.0
        k = bisect.bisect_right(self._light_t, t) - 1
        if k >= 0:
            ev = self.lights[k]
            u = 1.0 if ev.ramp_s <= 0 else min(1.0, (t - ev.t) / ev.ramp_s)
            g = self._light_g0[k] + u * (ev.gain - self._light_g0[k])
        n = self.preset.nuisance
        if n.drift_amplitude:
            g *= 1.0 + n.drift_amplitude * math.sin(2 * math.pi * t / n.drift_period_s)
        return g


def build_script(preset: ScenePreset, rng: np.random.Generator) -> SceneScript:
    """Resolve the preset's scripted and generated events for its duration."""
    names = [it.name for it in preset.items]
    if len(set(names)) != len(names) or len({it.tag_id for it in preset.items}) != len(names):
        raise ValueError("item names and tag ids must be unique in a preset")
    agents: list[AgentTrack] = []

    def add_agent(spec: AgentSpec, keys: list[tuple[float, float, float]]) -> int:
        if spec.shape not in ("cylinder", "box"):
            raise ValueError(f"agent {spec.name!r}: shape must be 'cylinder' or 'box', not {spec.shape!r}")
        k = np.asarray(keys, dtype=np.float64)
        if len(k) < 2 or np.any(np.diff(k[:, 0]) < 0):
            raise ValueError(f"agent {spec.name!r} needs >= 2 key frames in time order")
        agents.append(AgentTrack(len(agents) + 1, spec, k[:, 0].copy(), k[:, 1:].copy()))
        return len(agents)

    for spec in preset.agents:
        add_agent(spec, list(spec.keyframes))
    for w in preset.walkers:
        _add_walkers(w, preset.duration_s, rng, add_agent)
    moves = sorted(list(preset.moves) + _shuffle_moves(preset, rng), key=lambda m: m.t_pick)

    placements: list[Placement] = []

    def placement(item: int, pose: Pose2) -> int:
        p = Placement(item, tuple(float(v) for v in pose))  # type: ignore[arg-type]
        if p not in placements:
            placements.append(p)
        return placements.index(p)

    events = [[(-math.inf, placement(i, it.home), 0)] for i, it in enumerate(preset.items)]
    where = {i: it.home for i, it in enumerate(preset.items)}
    for m in moves:
        if m.item not in names:
            raise ValueError(f"move of unknown item {m.item!r}; items are {names}")
        i = names.index(m.item)
        src = where[i]
        carrier = 0
        if m.carrier is not None:
            carrier = add_agent(*_carrier_path(m, src, rng))
        events[i].append((m.t_pick, -1, carrier))
        events[i].append((m.t_place, placement(i, m.to), 0))
        where[i] = m.to
    lights = sorted(list(preset.nuisance.lights) + _light_toggles(preset, rng), key=lambda e: e.t)
    return SceneScript(preset, placements, events, agents, moves, lights)


def scene_script(preset: ScenePreset, seed: int) -> SceneScript:
    """The script SimScene(preset, seed=seed) plays: stream 0 of the seed drives it (rendering and noise have
    streams of their own), so a scene's events can be read without building or rendering the scene."""
    return build_script(preset, np.random.default_rng([seed, 0]))


def _carrier_path(m: MoveSpec, src: Pose2, rng: np.random.Generator) -> tuple[AgentSpec, list]:
    assert m.carrier is not None
    a, b = np.array(src[:2]), np.array(m.to[:2])
    if m.carrier.keyframes:
        entry = np.array(m.carrier.keyframes[0][1:3])
    else:
        ang = rng.uniform(0, 2 * math.pi)
        entry = a + 5.0 * np.array([math.cos(ang), math.sin(ang)])

    def beside(p: np.ndarray) -> np.ndarray:
        d = entry - p
        n = float(np.linalg.norm(d))
        return p + (d / n * BESIDE_M if n > 1e-9 else np.array([BESIDE_M, 0.0]))

    pa, pb = beside(a), beside(b)
    t_in = float(np.linalg.norm(pa - entry)) / CARRIER_SPEED
    t_out = float(np.linalg.norm(entry - pb)) / CARRIER_SPEED
    if m.t_place - m.t_pick < 2 * HANDLING_S:
        raise ValueError(f"move of {m.item!r}: t_place - t_pick must be >= {2 * HANDLING_S} s with a carrier")
    h = HANDLING_S
    keys = [
        (m.t_pick - h - t_in, *entry),
        (m.t_pick - h, *pa),
        (m.t_pick + h, *pa),
        (m.t_place - h, *pb),
        (m.t_place + h, *pb),
        (m.t_place + h + t_out, *entry),
    ]
    return replace(m.carrier, name=f"{m.carrier.name}_{m.item}@{m.t_pick:.1f}"), keys


def _shuffle_moves(preset: ScenePreset, rng: np.random.Generator) -> list[MoveSpec]:
    """Poisson-timed round trips: an item at home goes to a free spot and, later, back home."""
    sh = preset.shuffle
    if sh is None or sh.moves_per_min <= 0 or not sh.spots or not preset.items:
        return []
    busy_item = [-math.inf] * len(preset.items)  # busy until
    busy_spot = [-math.inf] * len(sh.spots)
    out: list[MoveSpec] = []
    t = 0.0
    while True:
        t += float(rng.exponential(60.0 / sh.moves_per_min))
        if t >= preset.duration_s:
            return out
        free_items = [i for i, b in enumerate(busy_item) if b < t]
        free_spots = [s for s, b in enumerate(busy_spot) if b < t]
        if not free_items or not free_spots:
            continue
        i = free_items[int(rng.integers(len(free_items)))]
        s = free_spots[int(rng.integers(len(free_spots)))]
        item, spot = preset.items[i], sh.spots[s]
        carry = 2 * HANDLING_S + math.dist(item.home[:2], spot[:2]) / sh.carrier_speed + 1.0
        away = float(rng.uniform(*sh.away_s))
        t_back = t + carry + away
        out.append(MoveSpec(item.name, t, t + carry, spot, sh.carrier))
        out.append(MoveSpec(item.name, t_back, t_back + carry, item.home, sh.carrier))
        busy_item[i] = busy_spot[s] = t_back + carry + 1.0


def _add_walkers(
    w: WalkerSpec, duration: float, rng: np.random.Generator, add_agent: Callable[[AgentSpec, list], int]
) -> None:
    """Each walker: pause, walk a random route in a random direction, repeat until the end."""
    for k in range(w.count):
        t = float(rng.uniform(0, w.pause_s[1]))
        trip = 0
        while t < duration and w.routes:
            route = np.asarray(w.routes[int(rng.integers(len(w.routes)))], dtype=np.float64)
            if rng.random() < 0.5:
                route = route[::-1]
            seg = np.linalg.norm(np.diff(route, axis=0), axis=1)
            times = t + np.concatenate([[0.0], np.cumsum(seg)]) / w.speed
            spec = AgentSpec(f"{w.kind}_{k}.{trip}", w.kind, w.shape, w.size, w.color, ())
            add_agent(spec, [(float(tt), float(x), float(y)) for tt, (x, y) in zip(times, route)])
            t = float(times[-1]) + float(rng.uniform(*w.pause_s))
            trip += 1


def _light_toggles(preset: ScenePreset, rng: np.random.Generator) -> list[LightEvent]:
    n = preset.nuisance
    if n.light_toggles_per_min <= 0:
        return []
    out: list[LightEvent] = []
    t, on = 0.0, True
    while True:
        t += float(rng.exponential(60.0 / n.light_toggles_per_min))
        if t >= preset.duration_s:
            return out
        on = not on
        out.append(LightEvent(t, 1.0 if on else n.dark_gain, ramp_s=0.2))
