"""The benchmark's scenes: a sim preset at the bench resolution, with a static or a patrol camera.

The presets were drawn for 640 x 480. The bench renders 320 x 240 so that a 2-hour sequence (72,000 frames)
runs in well under an hour on two CPU cores, and changes the few things that decide whether AprilTags can
still be read at that size (measured on warehouse seed 100, patrol, 320 x 240):

- tags: the warehouse's 0.2 m tags gave 8 of 18 items decoded in 2.5 min; 0.4 m tags give 17. Home tags
  go from 0.16 m to 0.24 m. Boards grow to keep a white quiet zone of at least a quarter tag each side.
- patrol pitch 45 deg instead of 32 / 35: floor tags seen from a shallow angle are squashed to a few rows
  of pixels; looking down more steeply doubles their height in the image.
- the presets have no static camera, so each gets one here: a camera on a mast over a zone with items,
  moves and traffic (warehouse: the first aisle around x = 9 m; home: the living room; depot: its first aisle).

Everything else (floor, items' homes, traffic, moves, lights, noise, blur) is the preset's, and the seed
draws the random parts. See bench/seeds.py for which seeds are held out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..core.errors import BadInputError
from ..sim import CameraSpec, ScenePreset, SimScene, get_preset

BENCH_WIDTH, BENCH_HEIGHT = 320, 240
# The longest scene: the scene script of a huge --minutes (1e300) was built without end and without a word; a week
# of warehouse script takes 4 s and 170 MB.
MAX_MINUTES = 7 * 24 * 60
CAMERA_MODES = ("static", "patrol")


@dataclass(frozen=True)
class BenchView:
    """What the bench changes in a preset so that its tags are readable at the bench resolution."""

    tag_m: float  # tag black-border edge, m (one size per scene: TagConfig has one)
    min_board_m: float  # boards smaller than this are enlarged (white quiet zone around the tag)
    patrol_pitch_deg: float  # patrol camera tilt below the horizon
    static_camera: CameraSpec


# a layout no training stream uses (sim/presets.py); seen like the warehouse, the static camera over the first aisle
# from across the next rack
_DEPOT_VIEW = BenchView(
    tag_m=0.4,
    min_board_m=0.6,
    patrol_pitch_deg=45.0,
    static_camera=CameraSpec(mode="static", position=(9.2, 7.7, 4.5), look_at=(5.4, 7.7, 0.0)),
)
BENCH_VIEWS: dict[str, BenchView] = {
    "warehouse": BenchView(
        tag_m=0.4,
        min_board_m=0.6,
        patrol_pitch_deg=45.0,
        static_camera=CameraSpec(mode="static", position=(9.0, 3.0, 4.5), look_at=(9.0, 6.8, 0.0)),
    ),
    "depot": _DEPOT_VIEW,
    "depot_orange": _DEPOT_VIEW,  # the same map, its racks the agents' orange
    "home": BenchView(
        tag_m=0.24,
        min_board_m=0.36,
        patrol_pitch_deg=45.0,
        static_camera=CameraSpec(mode="static", position=(3.0, 0.2, 2.6), look_at=(3.0, 2.8, 0.0)),
    ),
}


def bench_preset(
    preset: str, camera: str, minutes: float, *, width: int = BENCH_WIDTH, height: int = BENCH_HEIGHT,
    patrol_speed: float = 0.0, patrol_stop_s: float = 0.0,
) -> ScenePreset:
    """The ScenePreset the bench runs: `preset` ("warehouse", "home") seen by a `camera` ("static",
    "patrol") for `minutes` of simulated time at width x height px. patrol_speed: the patrol camera drives its
    route at this many m/s instead of the preset's (0: the preset's; 0.8 warehouse, 0.5 home): a robot creeping
    along (a few cm/s) stays within a still camera's pose tolerance for many frames while its picture grows.
    patrol_stop_s: the patrol robot stands this long at each corner of its route before it turns (0: it does not):
    a still camera for that while, on a robot."""
    if preset not in BENCH_VIEWS:
        raise BadInputError(f"no benchmark scene for preset {preset!r}; choose one of {sorted(BENCH_VIEWS)}")
    if camera not in CAMERA_MODES:
        raise BadInputError(f"camera must be one of {CAMERA_MODES}, not {camera!r}")
    if not 0 < minutes <= MAX_MINUTES:
        raise BadInputError(f"minutes must be > 0 and at most {MAX_MINUTES} (a week), got {minutes:g}")
    if not (patrol_speed >= 0 and patrol_speed < float("inf")) or (patrol_speed > 0 and camera != "patrol"):
        raise BadInputError(f"patrol_speed must be >= 0 and finite, and only for a patrol camera; got {patrol_speed}")
    if not (patrol_stop_s >= 0 and patrol_stop_s < float("inf")) or (patrol_stop_s > 0 and camera != "patrol"):
        raise BadInputError(f"patrol_stop_s must be >= 0 and finite, and only for a patrol camera; got {patrol_stop_s}")
    base, view = get_preset(preset), BENCH_VIEWS[preset]
    items = tuple(replace(it, tag_m=view.tag_m, board_m=max(it.board_m, view.min_board_m)) for it in base.items)
    cam = view.static_camera if camera == "static" else replace(base.camera, pitch_deg=view.patrol_pitch_deg)
    if patrol_speed > 0:
        cam = replace(cam, speed=float(patrol_speed))
    if patrol_stop_s > 0:
        cam = replace(cam, stop_s=float(patrol_stop_s))
    return replace(
        base, items=items, camera=cam, duration_s=float(minutes) * 60.0, width=int(width), height=int(height)
    )


def make_bench_scene(
    preset: str,
    camera: str,
    minutes: float,
    seed: int,
    *,
    width: int = BENCH_WIDTH,
    height: int = BENCH_HEIGHT,
    patrol_speed: float = 0.0,
    patrol_stop_s: float = 0.0,
) -> SimScene:
    """SimScene of bench_preset(...) with this seed; frames stream, so any length needs no disk."""
    return SimScene(bench_preset(preset, camera, minutes, width=width, height=height, patrol_speed=patrol_speed,
                                 patrol_stop_s=patrol_stop_s), seed=seed)
