"""A deterministic synthetic scene that streams camera frames with ground truth.

    scene = make_scene("demo", seed=0)
    for f in scene:                      # SimFrame, one at a time: a 2-hour sequence needs no disk
        result = pipeline.update(to_frame(f))
        f.truth.change_mask, f.truth.items["mug"].position, ...

Change-mask truth (FrameTruth.change_mask), precisely. Every floor texel remembers a *reference*: which
item placement (a given item at a given pose), or bare floor, lies there as far as the scene's memory
knows. Each frame, the memory first learns from the texels in view and not hidden by an agent: a texel
seen for the first time takes what lies there as its reference (a first sighting is not a change);
content that differs from the reference replaces it once it has been there for
`ScenePreset.change_settle_s`, counted from the frame that first showed it (time out of view included:
the same idea as the pipeline's stable_frames), but never in that first frame. Then a pixel is changed if
  (a) it shows an agent (people and vehicles are always dynamic), or
  (b) it shows the floor, unhidden by agents, and what lies at its texel now differs from the texel's
      reference: an item appeared, disappeared or moved (a moved item is a new placement, so both its
      old and its new footprint are changed).
So a change stays in the mask for change_settle_s from the first frame that shows it (at least one
frame); with settle 0 the reference is literally what was there the last time the place was seen.
Lighting, noise and blur never count as change. The texel grid is the floor texture's (1 / px_per_m m),
so mask edges may be off by about one texel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.config import TagConfig
from ..core.geometry import project_points
from ..core.types import CameraIntrinsics, Frame
from .camera import CameraPath
from .presets import get_preset
from .render import Renderer
from .script import CARRY_HEIGHT_M, SceneScript, scene_script
from .spec import ScenePreset
from .truth import ChangeTruth


@dataclass(frozen=True)
class AgentTruth:
    agent_id: int  # 1..65535, its value in instance_mask; unique over the whole sequence
    name: str
    kind: str  # "person", "forklift", ...
    box: np.ndarray  # (4,) px, projected hull clipped to the image (occlusion by other agents ignored)
    visible_px: int  # pixels of instance_mask that are this agent (after occlusion)
    position: np.ndarray  # (3,) m map, footprint centre on the floor
    velocity: np.ndarray  # (3,) m/s map


@dataclass(frozen=True)
class ItemTruth:
    name: str
    tag_id: int
    position: np.ndarray  # (3,) m map: board centre on the floor, in the carrier's hands (z > 0), or NaN
    # while moved by no visible agent (MoveSpec.carrier None)
    orientation: np.ndarray  # (4,) xyzw map, tag frame (z up when on the floor)
    home: np.ndarray  # (3,) m map, the preset's home pose of the item
    on_floor: bool  # False while carried
    carrier: int  # agent_id carrying it, 0 if none
    box: np.ndarray | None  # (4,) px, projected board clipped to the image; None if out of view
    visible_px: int  # board pixels in view and not hidden by agents


@dataclass(frozen=True)
class FrameTruth:
    change_mask: np.ndarray  # (H, W) uint8, 255 = changed (see the module docstring)
    instance_mask: np.ndarray  # (H, W) uint16, agent_id per pixel, 0 = none
    agents: tuple[AgentTruth, ...]  # agents with at least one pixel in the frame
    items: dict[str, ItemTruth]  # every item, in or out of view
    gain: float  # global illumination gain applied to this frame
    blur_px: tuple[float, float]  # motion-blur extent along x, y


@dataclass(frozen=True)
class SimFrame:
    index: int
    stamp: float  # s from the start
    image: np.ndarray  # (H, W, 3) uint8 BGR
    depth: np.ndarray  # (H, W) float32 m (z-depth), NaN where no surface (above the horizon)
    T_map_cam: np.ndarray  # (4, 4)
    intrinsics: CameraIntrinsics
    truth: FrameTruth


class SimScene:
    """A preset + a seed: the same pair always streams the same frames and truth."""

    def __init__(self, preset: ScenePreset | str = "demo", *, seed: int = 0) -> None:
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        self.seed = seed
        p = self.preset
        if p.width <= 0 or p.height <= 0 or p.rate_hz <= 0 or p.duration_s <= 0:
            raise ValueError("width, height, rate_hz and duration_s must be > 0")
        sizes = {it.tag_m for it in p.items}
        if len(sizes) > 1:
            raise ValueError(f"all tags in a scene must share one size (TagConfig has one): {sizes}")
        f = p.focal_px * p.width / 640.0
        self.intrinsics = CameraIntrinsics(f, f, p.width / 2.0, p.height / 2.0, p.width, p.height)
        self.script: SceneScript = scene_script(p, seed)
        self.camera = CameraPath(p.camera)
        self.items: dict[str, int] = {it.name: it.tag_id for it in p.items}  # name -> tag id
        self.tag_size_m: float = p.items[0].tag_m if p.items else 0.16
        self._renderer: Renderer | None = None
        self._corners_h: np.ndarray | None = None  # (P, 4, 3) homogeneous board corners, map

    def __len__(self) -> int:
        return int(math.floor(self.preset.duration_s * self.preset.rate_hz + 1e-9))

    def __iter__(self) -> Iterator[SimFrame]:
        return self.frames()

    def tag_config(self) -> TagConfig:
        """The TagConfig a pipeline needs to name this scene's items."""
        return TagConfig(tag_size_m=self.tag_size_m, items=dict(self.items))

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:  # the floor texture is drawn once per scene, on first use
            self._renderer = Renderer(self.script, self.intrinsics, self.seed)
        return self._renderer

    def frames(self, limit: int | None = None) -> Iterator[SimFrame]:
        """Stream frames from the start (the change truth is stateful); at most `limit` of them."""
        p, r = self.preset, self.renderer
        truth = ChangeTruth(r.grid, self.script.placements, r.edges_m, p.change_settle_s)
        n = len(self) if limit is None else min(limit, len(self))
        size = (p.width, p.height)
        for k in range(n):
            t = k / p.rate_hz
            rng = np.random.default_rng([self.seed, 3, k])
            T = self.camera.pose(t)
            states = [self.script.item_state(i, t) for i in range(len(p.items))]
            current = tuple(sorted(pl for pl, _ in states if pl >= 0))
            img, depth, H_img_tex = r.static_layer(T, current)
            floor_ok = ~np.isnan(depth)
            inst, agents = r.draw_agents(img, depth, T, t)
            agent_px = inst > 0
            seen = floor_ok & ~agent_px
            truth.set_current(current)
            floor_changed, cur_img = truth.update(t, H_img_tex, seen, size)
            changed = floor_changed | agent_px
            label_px = np.bincount(cur_img[seen], minlength=len(self.script.placements) + 1)
            agent_px_count = np.bincount(inst.ravel(), minlength=len(self.script.agents) + 1)
            agent_truth = tuple(
                AgentTruth(
                    a.track.agent_id,
                    a.track.spec.name,
                    a.track.spec.kind,
                    a.box,
                    int(agent_px_count[a.track.agent_id]),
                    a.position,
                    a.velocity,
                )
                for a in agents
                if a.box is not None and agent_px_count[a.track.agent_id] > 0
            )
            boxes = self._placement_boxes(H_img_tex @ r.grid.A_tex_map, current)
            items = {
                it.name: self._item_truth(i, t, states[i], boxes, label_px) for i, it in enumerate(p.items)
            }
            gain = self.script.gain(t)
            blur = self._blur(T, t, depth)
            r.degrade(img, gain, blur, rng)
            ft = FrameTruth(
                changed.astype(np.uint8) * 255,
                inst,
                agent_truth,
                items,
                gain,
                (float(blur[0]), float(blur[1])),
            )
            yield SimFrame(k, t, img, depth, T, self.intrinsics, ft)

    def _placement_boxes(self, H_img_map: np.ndarray, placements: tuple[int, ...]) -> dict[int, np.ndarray]:
        """Image box (4,) of each given placement's board, clipped; left out where out of view or behind."""
        if self._corners_h is None:
            c = np.stack(self.renderer.corners)  # (P, 4, 2)
            self._corners_h = np.concatenate([c, np.ones((*c.shape[:2], 1))], axis=2)
        q = self._corners_h[list(placements)] @ H_img_map.T  # (N, 4, 3); q_z is each corner's camera z
        w, h = self.preset.width, self.preset.height
        out: dict[int, np.ndarray] = {}
        for p, pc in zip(placements, q):
            if np.all(pc[:, 2] > 0):
                uv = pc[:, :2] / pc[:, 2:3]
                lo, hi = np.maximum(uv.min(axis=0), 0), np.minimum(uv.max(axis=0), (w, h))
                if np.all(hi > lo):
                    out[p] = np.array([lo[0], lo[1], hi[0], hi[1]])
        return out

    def _item_truth(
        self, i: int, t: float, state: tuple[int, int], boxes: dict[int, np.ndarray], label_px: np.ndarray
    ) -> ItemTruth:
        spec = self.preset.items[i]
        pl, carrier = state
        home = np.array([spec.home[0], spec.home[1], 0.0])
        if pl >= 0:
            x, y, yaw = self.script.placements[pl].pose
            pos, box, visible = np.array([x, y, 0.0]), boxes.get(pl), int(label_px[pl + 1])
        elif carrier:  # in the carrier's hands
            xy, yaw, _ = self.script.agents[carrier - 1].state(t)
            pos, box, visible = np.array([xy[0], xy[1], CARRY_HEIGHT_M]), None, 0
        else:  # moved by nobody visible: nowhere, until it is put down
            pos, yaw, box, visible = np.full(3, np.nan), 0.0, None, 0
        quat = np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])
        return ItemTruth(spec.name, spec.tag_id, pos, quat, home, pl >= 0, carrier, box, visible)

    def _blur(self, T: np.ndarray, t: float, depth: np.ndarray) -> np.ndarray:
        """Image motion of the centre pixel's scene point during the exposure, px (x, y)."""
        p = self.preset
        if self.camera.is_static or p.nuisance.exposure <= 0:
            return np.zeros(2)
        K = self.intrinsics.K
        d = depth[int(K[1, 2]), int(K[0, 2])]
        d = 5.0 if not np.isfinite(d) else float(d)
        pt = T[:3, :3] @ np.array([0.0, 0.0, d]) + T[:3, 3]  # centre ray point, map frame
        uv, z = project_points(K, self.camera.pose(t - p.nuisance.exposure / p.rate_hz), pt[None])
        return np.abs(uv[0] - K[:2, 2]) if z[0] > 0 else np.zeros(2)


def make_scene(preset: ScenePreset | str = "demo", *, seed: int = 0, **changes: Any) -> SimScene:
    """SimScene of a preset with some fields replaced, e.g. make_scene("demo", width=320, height=240)."""
    base = get_preset(preset) if isinstance(preset, str) else preset
    return SimScene(replace(base, **changes) if changes else base, seed=seed)


def to_frame(sim_frame: SimFrame, *, with_pose: bool = True, with_depth: bool = True) -> Frame:
    """The pipeline's input for a SimFrame; the truth stays behind."""
    return Frame(
        image=sim_frame.image,
        stamp=sim_frame.stamp,
        intrinsics=sim_frame.intrinsics,
        T_map_cam=sim_frame.T_map_cam.copy() if with_pose else None,
        depth=sim_frame.depth if with_depth else None,
    )
