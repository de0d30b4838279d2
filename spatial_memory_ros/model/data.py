"""Training streams from the scene generator: warehouse and home, static and patrol cameras, low resolution.

Only training seeds (>= TRAIN_SEED_MIN) are accepted: benchmark seeds 100-199 and test/demo seeds 0-99
stay unseen. Scenes are the presets with denser events (more item moves, shorter walker pauses), so
that a few minutes of training see many changes; the camera route starts at a random corner and static
cameras look at random busy spots from random heights; patrol pitch and board sizes vary. Half the
streams are rendered at twice the model's size and shrunk with INTER_AREA, as the runtime shrinks camera
images, so the model sees both kinds of pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..sim import SimFrame, get_preset, make_scene
from ..sim.spec import Footprint, ScenePreset
from .appearance import Appearance
from .background import StillBackground
from .config import TRAIN_SEED_MIN, ModelConfig
from .photo_stream import ITEM_BASE, photo_training_size, render_photo_scene

ITEM_LABEL = 70000  # instance label of an item = ITEM_LABEL + tag id (agent ids are 1..65535)


@dataclass(frozen=True)
class Stream:
    """One rendered sequence at the model's resolution, from the start of its scene."""

    seed: int
    name: str  # e.g. "warehouse/patrol"
    images: np.ndarray  # (L, H, W, 3) uint8 BGR
    masks: np.ndarray  # (L, H, W) uint8, 1 = changed
    agents: np.ndarray  # (L, H, W) uint8, 1 = an agent (the rest of a changed mask: items appeared, left or moved)
    labels: np.ndarray  # (L, rows, cols) int32 instance per patch (agent id, ITEM_LABEL + tag id), 0 = none
    T_map_cam: np.ndarray  # (L, 4, 4) float32
    K: np.ndarray  # (3, 3) float32 intrinsics at the model's resolution
    # with ModelConfig.background: the still camera's background before each frame (model.background)
    background: np.ndarray | None = None  # (L, H, W, 3) uint8
    background_valid: np.ndarray | None = None  # (L,) bool
    # painted by model.appearance, its racks in the agents' colours (decoy_preset), or cut from photographs
    # (model.photo_stream): not the simulator's look, which a network trained without them knows (an anchor model
    # is not followed there)
    recoloured: bool = False

    def __len__(self) -> int:
        return len(self.images)


def training_preset(seed: int, config: ModelConfig, teleports: float = 0.0) -> tuple[ScenePreset, str, int]:
    """The randomised scene for a training seed: (preset, name, render scale 1 or 2).

    teleports: the share of streams whose items are moved by nobody (they vanish, then appear at a spot),
    three times as often, with static cameras looking at item places. Carried moves almost never show
    the floor an item left within a 20 s stream (0.1 % of changed pixels in seeds 1000-1011; 3.5-7 % on a
    10-minute bench warehouse patrol), so without these the place memory has nothing to learn from.
    """
    if seed < TRAIN_SEED_MIN:
        raise ValueError(f"training seeds must be >= {TRAIN_SEED_MIN} (0-199 are tests and the benchmark)")
    teleport = bool(np.random.default_rng([seed, 78]).random() < teleports)  # own stream: the rest is unchanged
    rng = np.random.default_rng([seed, 77])
    base = get_preset("warehouse" if rng.random() < 0.5 else "home")
    scale = 2 if rng.random() < 0.5 else 1
    cam = base.camera
    route = list(cam.route)
    start = int(rng.integers(len(route)))
    route = route[start:] + route[:start]
    if rng.random() < 0.5:
        route = route[::-1]
    mode = "patrol" if rng.random() < 0.5 else "static"
    if mode == "patrol":  # the benchmark looks down more steeply than the presets (45 deg): cover both
        cam = replace(cam, route=tuple(route), pitch_deg=float(rng.uniform(28.0, 50.0)),
                      height_m=cam.height_m * float(rng.uniform(0.8, 1.3)))
    else:
        target = _busy_spot(base, rng)
        if teleport and base.shuffle is not None:  # where items leave and arrive
            places = [it.home[:2] for it in base.items] + [sp[:2] for sp in base.shuffle.spots]
            target = np.array(places[int(rng.integers(len(places)))], dtype=np.float64) + rng.normal(0.0, 0.5, 2)
        yaw, back = rng.uniform(0, 2 * math.pi), rng.uniform(1.5, 4.0)
        eye = target - back * np.array([math.cos(yaw), math.sin(yaw)])
        cam = replace(
            cam, mode="static", position=(float(eye[0]), float(eye[1]), float(rng.uniform(2.0, 5.0))),
            look_at=(float(target[0]), float(target[1]), 0.0),
        )
    walkers = tuple(replace(w, count=w.count + 2, pause_s=(1.0, 8.0)) for w in base.walkers)
    shuffle = base.shuffle
    if shuffle is not None:
        shuffle = replace(shuffle, moves_per_min=float(rng.uniform(4.0, 12.0)), away_s=(10.0, 60.0))
        if teleport:
            shuffle = replace(shuffle, moves_per_min=3 * shuffle.moves_per_min, carrier=None)
    board = float(rng.uniform(1.0, 2.0))  # larger boards too (the benchmark enlarges them to keep tags legible)
    items = tuple(replace(it, board_m=it.board_m * board, tag_m=it.tag_m * board) for it in base.items)
    preset = replace(
        base, camera=cam, walkers=walkers, shuffle=shuffle, items=items,
        width=config.image_width * scale, height=config.image_height * scale,
        change_settle_s=float(rng.choice([1.0, 2.0, 2.0, 3.0])),
    )
    return preset, f"{base.name}/{mode}", scale


def _busy_spot(preset: ScenePreset, rng: np.random.Generator) -> np.ndarray:
    """(2,) m: a point on a walker route, near an item spot or at a piece of furniture (a sofa can look like a
    person: only the memory says it was always there), so that a static camera sees something to learn."""
    routes = [np.asarray(r, dtype=np.float64) for w in preset.walkers for r in w.routes]
    spots = [np.array(s[:2]) for s in preset.shuffle.spots] if preset.shuffle else []
    furniture = [np.array(f.rect, dtype=np.float64) for f in preset.floor.footprints if f.cross]
    u = rng.random()
    if furniture and u < 0.35:
        x1, y1, x2, y2 = furniture[int(rng.integers(len(furniture)))]
        point = np.array([rng.uniform(x1, x2), rng.uniform(y1, y2)])
    elif routes and (not spots or u < 0.8):
        route = routes[int(rng.integers(len(routes)))]
        i = int(rng.integers(len(route) - 1))
        point = route[i] + rng.random() * (route[i + 1] - route[i])
    elif spots:
        point = spots[int(rng.integers(len(spots)))]
    else:
        x1, y1, x2, y2 = preset.floor.extent
        point = np.array([rng.uniform(x1, x2), rng.uniform(y1, y2)])
    x1, y1, x2, y2 = preset.floor.extent
    return np.clip(point + rng.normal(0.0, 0.7, 2), [x1 + 0.5, y1 + 0.5], [x2 - 0.5, y2 - 0.5])


def decoy_preset(preset: ScenePreset, rng: np.random.Generator) -> ScenePreset:
    """preset with each rack and piece of furniture (a floor footprint drawn with its cross) painted in one of the
    colours its agents wear, a little off (+-20 per channel), so that an agent's colour no longer tells what
    moves (TrainConfig.decoys). Room floors (no cross) keep theirs."""
    worn = [w.color for w in preset.walkers]
    worn += [m.carrier.color for m in preset.moves if m.carrier is not None]
    if preset.shuffle is not None and preset.shuffle.carrier is not None:
        worn.append(preset.shuffle.carrier.color)
    if not worn:
        return preset

    def paint(fp: Footprint) -> Footprint:
        base = np.asarray(worn[int(rng.integers(len(worn)))], dtype=np.float64)
        colour = np.clip(base + rng.uniform(-20.0, 20.0, 3), 0, 255).round().astype(int)
        return replace(fp, color=(int(colour[0]), int(colour[1]), int(colour[2])))

    footprints = tuple(paint(fp) if fp.cross else fp for fp in preset.floor.footprints)
    return replace(preset, floor=replace(preset.floor, footprints=footprints))


def varied_floor(preset: ScenePreset, rng: np.random.Generator) -> ScenePreset:
    """preset with its floor in a random look (TrainConfig.floors): a grey of 85-185 tinted up to +-20 per channel,
    stains of 3-22 and grain of 2-10 grey levels, tiles in a third of them, painted lines in a random colour. The
    footprints (racks, furniture, rooms) and everything that moves stay as they are."""
    grey = rng.uniform(85.0, 185.0)
    base = np.clip(grey + rng.uniform(-20.0, 20.0, 3), 0, 255).round().astype(int)
    line = rng.integers(30, 240, 3)
    tiles = rng.random() < 1 / 3
    floor = replace(
        preset.floor, base_color=(int(base[0]), int(base[1]), int(base[2])),
        blotch=float(rng.uniform(3.0, 22.0)), grain=float(rng.uniform(2.0, 10.0)),
        tile_m=float(rng.uniform(0.5, 1.5)) if tiles else 0.0, tile_jitter=int(rng.integers(4, 16)),
        line_color=(int(line[0]), int(line[1]), int(line[2])),
    )
    return replace(preset, floor=floor)


def render_stream(seed: int, frames: int, config: ModelConfig, teleports: float = 0.0,
                  recolour: float = 0.0, recolour_patrol: float | None = None, photos: float = 0.0,
                  decoys: float = 0.0, floors: float = 0.0) -> Stream:
    """Render `frames` frames of training seed `seed` at the model's resolution.

    recolour: the share of streams whose agents and palette take random colours (model.appearance); which
    streams is decided by the seed alone, so the rest of a stream is the same either way. recolour_patrol:
    that share for patrolling cameras' streams, if not the same (None). photos: the share of streams cut
    from photographs instead of the simulator (model.photo_stream), also decided by the seed alone. decoys: the
    share of streams whose racks and furniture wear the agents' colours (decoy_preset), by the seed alone too.
    floors: the share of streams whose floor takes a random look (varied_floor), likewise."""
    if photos > 0 and np.random.default_rng([seed, 80]).random() < photos:
        return render_photo_stream(seed, frames, config)
    preset, name, scale = training_preset(seed, config, teleports)
    if recolour_patrol is not None and preset.camera.mode != "static":
        recolour = recolour_patrol
    decoy_rng = np.random.default_rng([seed, 81])  # its own generator: the rest of the stream is the same either way
    decoyed = bool(decoy_rng.random() < decoys)
    if decoyed:
        preset = decoy_preset(preset, decoy_rng)
    floor_rng = np.random.default_rng([seed, 83])  # its own generator too
    floored = bool(floor_rng.random() < floors)
    if floored:
        preset = varied_floor(preset, floor_rng)
    rng = np.random.default_rng([seed, 79])
    appearance = Appearance.draw(rng) if rng.random() < recolour else None
    preset = replace(preset, duration_s=max(preset.duration_s, frames / preset.rate_hz + 1.0))
    scene = make_scene(preset, seed=seed)
    size = (config.image_width, config.image_height)
    L = frames
    images = np.empty((L, config.image_height, config.image_width, 3), np.uint8)
    masks = np.empty((L, config.image_height, config.image_width), np.uint8)
    agents = np.empty_like(masks)
    labels = np.empty((L, *config.grid), np.int32)
    poses = np.empty((L, 4, 4), np.float32)
    for i, f in enumerate(scene.frames(limit=frames)):
        img, mask = f.image, f.truth.change_mask
        if appearance is not None:
            img = appearance.apply(img, f.truth.instance_mask)
        agent = (f.truth.instance_mask > 0).astype(np.uint8) * 255
        if scale != 1:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)  # 0..255 partial coverage
            agent = cv2.resize(agent, size, interpolation=cv2.INTER_AREA)
        images[i] = img
        masks[i] = mask >= 128
        agents[i] = agent >= 128
        labels[i] = patch_labels(f, config, scale)
        poses[i] = f.T_map_cam
    K = scene.intrinsics.K.astype(np.float32)
    K[:2] /= scale
    background, valid = _backgrounds(images, masks, poses, config)
    # a decoyed or floored stream is not the simulator's look either: an anchor model would be followed there
    return Stream(seed, name, images, masks, agents, labels, poses, K, background, valid,
                  appearance is not None or decoyed or floored)


def render_photo_stream(seed: int, frames: int, config: ModelConfig, directory: str | None = None) -> Stream:
    """A training stream cut from photographs (model.photo_stream) at the model's resolution: rendered at
    twice the size and shrunk with INTER_AREA, its settle time drawn as the simulator's streams draw theirs."""
    settle_s = float(np.random.default_rng([seed, 82]).choice([1.0, 2.0, 2.0, 3.0]))
    size = photo_training_size(config)
    scene = render_photo_scene(seed, frames, size, settle_frames=round(settle_s * 10), directory=directory)
    small = (config.image_width, config.image_height)
    scale = size[0] // config.image_width

    def shrink(a: np.ndarray) -> np.ndarray:
        return cv2.resize(a, small, interpolation=cv2.INTER_AREA)

    images = np.stack([shrink(im) for im in scene.images])
    masks = np.stack([shrink(m.astype(np.uint8) * 255) >= 128 for m in scene.masks]).astype(np.uint8)
    agents = np.stack([shrink(m.astype(np.uint8) * 255) >= 128 for m in scene.agents]).astype(np.uint8)
    p = config.patch_size * scale
    rows, cols = config.grid
    inst = scene.instances[:, p // 2 :: p, p // 2 :: p][:, :rows, :cols]
    labels = np.where(inst >= ITEM_BASE, ITEM_LABEL + inst - ITEM_BASE, inst).astype(np.int32)
    poses = np.repeat(scene.T_map_cam[None].astype(np.float32), frames, axis=0)
    K = scene.K.astype(np.float32)
    K[:2] /= scale
    background, valid = _backgrounds(images, masks, poses, config)
    return Stream(seed, "photo/static", images, masks, agents, labels, poses, K, background, valid, True)


def _backgrounds(images: np.ndarray, masks: np.ndarray, poses: np.ndarray,
                 config: ModelConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """With ModelConfig.background: the still camera's background before each frame and whether it has one."""
    if not config.background:
        return None, None
    still = StillBackground()
    skips = masks if config.background_skips_changes else [None] * len(images)
    steps = [still.step(images[i], poses[i], skips[i]) for i in range(len(images))]
    return np.stack([b for b, _ in steps]), np.array([v for _, v in steps], dtype=bool)


def patch_labels(frame: SimFrame, config: ModelConfig, scale: int) -> np.ndarray:
    """(rows, cols) int32 instance at each patch centre: agents first, then item boards by their box."""
    p = config.patch_size * scale
    rows, cols = config.grid
    inst = frame.truth.instance_mask[p // 2 :: p, p // 2 :: p][:rows, :cols].astype(np.int32)
    centres_x = (np.arange(cols) + 0.5) * p
    centres_y = (np.arange(rows) + 0.5) * p
    for item in frame.truth.items.values():
        if item.box is None or item.visible_px == 0:
            continue
        x1, y1, x2, y2 = item.box
        inside = ((centres_y >= y1) & (centres_y < y2))[:, None] & ((centres_x >= x1) & (centres_x < x2))[None, :]
        inst[inside & (inst == 0)] = ITEM_LABEL + item.tag_id
    return inst


def stream_seeds(first: int) -> Iterator[int]:
    """first, first + 1, ...: the deterministic order of training streams."""
    seed = first
    while True:
        yield seed
        seed += 1
