"""Scene descriptions as plain data: a preset is one ScenePreset value, never a code branch.

Map frame: metres, z up, the floor is the plane z = 0. A 2D pose on the floor is (x, y, yaw) with yaw in
radians about +z. Times are seconds from the start of the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Point2 = tuple[float, float]
Pose2 = tuple[float, float, float]  # x m, y m, yaw rad
Color = tuple[int, int, int]  # BGR


@dataclass(frozen=True)
class Footprint:
    """A static rectangle drawn into the floor texture (shelf, pallet rack, sofa, table...)."""

    rect: tuple[float, float, float, float]  # x1, y1, x2, y2 m, map frame
    color: Color
    label: str = ""
    cross: bool = True  # draw diagonals (furniture, racks); False for room floors


@dataclass(frozen=True)
class FloorSpec:
    """Procedural floor texture; drawn once per scene and cached."""

    extent: tuple[float, float, float, float]  # x1, y1, x2, y2 m: the textured part of the floor
    px_per_m: float = 100.0  # texture and truth-grid resolution; 1 texel = 1 cm at 100
    base_color: Color = (150, 150, 150)
    tile_m: float = 1.0  # tile grid pitch; 0 disables the grid
    tile_jitter: int = 12  # +- grey levels between tiles, so the floor is not uniform
    grain: float = 6.0  # per-texel noise std, grey levels
    blotch: float = 10.0  # low-frequency stain amplitude, grey levels
    lines: tuple[tuple[Point2, Point2], ...] = ()  # painted aisle lines, m
    line_color: Color = (40, 200, 230)
    line_width_m: float = 0.08
    footprints: tuple[Footprint, ...] = ()
    outside_color: Color = (90, 90, 90)  # floor beyond the extent
    wall_color: Color = (170, 160, 150)  # above the horizon (no floor hit, depth NaN)


@dataclass(frozen=True)
class ItemSpec:
    """A flat board with an AprilTag 36h11 in its centre, lying face up on the floor."""

    name: str
    tag_id: int
    home: Pose2
    board_m: float = 0.3  # white board edge
    tag_m: float = 0.16  # tag black-border edge (what TagConfig.tag_size_m means)


@dataclass(frozen=True)
class MoveSpec:
    """Item picked up at t_pick and put down at `to` at t_place; carried by `carrier` in between."""

    item: str
    t_pick: float
    t_place: float
    to: Pose2
    # Who carries it: a template whose key frames are generated (its first key frame, if any, is where it
    # enters and leaves); None = the item just vanishes and reappears.
    carrier: AgentSpec | None = None


@dataclass(frozen=True)
class AgentSpec:
    """A moving person or vehicle, active from its first to its last key frame."""

    name: str
    kind: str  # "person" | "forklift" | anything a benchmark wants to count
    shape: str  # "cylinder" | "box"
    size: tuple[float, float, float]  # cylinder: (radius, radius, height); box: (length, width, height)
    color: Color
    keyframes: tuple[tuple[float, float, float], ...]  # (t, x, y); straight lines in between


@dataclass(frozen=True)
class WalkerSpec:
    """Background traffic: `count` agents repeatedly walking one of `routes`, generated from the seed."""

    kind: str
    shape: str
    size: tuple[float, float, float]
    color: Color
    count: int
    speed: float  # m/s
    routes: tuple[tuple[Point2, ...], ...]
    pause_s: tuple[float, float] = (2.0, 10.0)  # idle time range between trips (off scene)


@dataclass(frozen=True)
class ShuffleSpec:
    """Generated moves: items are carried to a spot and back home again, at a mean rate."""

    moves_per_min: float
    spots: tuple[Pose2, ...]  # where moved items are put down
    away_s: tuple[float, float] = (60.0, 600.0)  # time range an item stays away before return
    carrier: AgentSpec | None = None  # template (its key frames are generated); None = item just vanishes
    carrier_speed: float = 1.0  # m/s; also sets how long an invisible move takes


@dataclass(frozen=True)
class CameraSpec:
    """'static': fixed at `position` looking at `look_at`. 'patrol': on a robot driving `route` in a loop."""

    mode: str = "static"
    position: tuple[float, float, float] = (0.0, -2.5, 3.0)
    look_at: tuple[float, float, float] = (0.0, 0.5, 0.0)
    route: tuple[Point2, ...] = ()
    height_m: float = 1.2  # patrol camera height
    pitch_deg: float = 30.0  # patrol camera tilt below the horizon
    speed: float = 0.6  # m/s along the route
    yaw_rate_deg: float = 45.0  # turn-in-place rate at route corners
    stop_s: float = 0.0  # the robot stands this long at each route corner before it turns (picking, waiting)


@dataclass(frozen=True)
class LightEvent:
    """From t on, the global illumination gain ramps linearly to `gain` over `ramp_s`."""

    t: float
    gain: float
    ramp_s: float = 0.5


@dataclass(frozen=True)
class NuisanceSpec:
    """Image degradations. They never enter the change-mask truth (they are not changes of content)."""

    noise_sigma: float = 3.0  # sensor noise std, grey levels
    lights: tuple[LightEvent, ...] = ()
    light_toggles_per_min: float = 0.0  # generated on/off switching between gain 1 and dark_gain
    dark_gain: float = 0.45
    drift_amplitude: float = 0.0  # slow sinusoidal gain drift (0.05 = +-5 %)
    drift_period_s: float = 120.0
    # Fraction of the frame period the shutter is open: blur = exposure * the camera's image motion
    # (a patrol camera's; agents are drawn sharp).
    exposure: float = 0.5
    max_blur_px: int = 15


@dataclass(frozen=True)
class ScenePreset:
    """Everything that defines a scene except the seed. Modify with dataclasses.replace."""

    name: str
    floor: FloorSpec
    items: tuple[ItemSpec, ...]
    camera: CameraSpec = field(default_factory=CameraSpec)
    moves: tuple[MoveSpec, ...] = ()
    agents: tuple[AgentSpec, ...] = ()
    walkers: tuple[WalkerSpec, ...] = ()
    shuffle: ShuffleSpec | None = None
    nuisance: NuisanceSpec = field(default_factory=NuisanceSpec)
    duration_s: float = 20.0
    rate_hz: float = 10.0
    width: int = 640
    height: int = 480
    focal_px: float = 500.0  # at 640 px width; scaled with the width
    change_settle_s: float = 2.0  # see the change-mask truth in sim/scene.py
