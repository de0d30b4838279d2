"""The named scenes, as data. Start from one and change fields with dataclasses.replace."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .spec import (
    AgentSpec,
    CameraSpec,
    FloorSpec,
    Footprint,
    ItemSpec,
    MoveSpec,
    NuisanceSpec,
    ScenePreset,
    ShuffleSpec,
    WalkerSpec,
)

PERSON = AgentSpec("person", "person", "cylinder", (0.25, 0.25, 1.75), (60, 50, 140), ())
WORKER = AgentSpec("worker", "person", "cylinder", (0.25, 0.25, 1.8), (40, 120, 230), ())
FORKLIFT = AgentSpec("forklift", "forklift", "box", (2.2, 1.1, 2.1), (20, 140, 235), ())


def _entering(agent: AgentSpec, x: float, y: float) -> AgentSpec:
    """A carrier template that enters (and leaves) at (x, y)."""
    return replace(agent, keyframes=((0.0, x, y),))


# Demo: a 3 m high static camera over a 6 x 5 m patch of floor. Tags are larger than the warehouse ones
# so that they stay readable (> 4 px per tag cell) from 3.5 m away at 640 x 480.
_DEMO_BOARD, _DEMO_TAG = 0.4, 0.24
DEMO = ScenePreset(
    name="demo",
    floor=FloorSpec(
        extent=(-3.0, -1.5, 3.0, 4.5),
        px_per_m=150.0,
        base_color=(150, 155, 160),
        tile_m=0.6,
        lines=(((-3.0, -0.2), (3.0, -0.2)), ((-3.0, 3.6), (3.0, 3.6))),
        footprints=(Footprint((-2.8, 3.8, 2.8, 4.4), (110, 90, 70), "shelf"),),
    ),
    items=(
        ItemSpec("mug", 3, (-0.9, 0.7, 0.0), _DEMO_BOARD, _DEMO_TAG),
        ItemSpec("box", 7, (0.9, 0.9, 0.4), _DEMO_BOARD, _DEMO_TAG),
        ItemSpec("pallet_A", 17, (0.0, 2.3, -0.2), _DEMO_BOARD, _DEMO_TAG),
    ),
    camera=CameraSpec(mode="static", position=(0.0, -1.0, 3.0), look_at=(0.0, 1.4, 0.0)),
    moves=(
        # The mug goes to the far right and comes back; the box is moved at the end and stays moved.
        MoveSpec("mug", 4.0, 7.5, (1.0, 2.5, 0.6), _entering(PERSON, -4.0, 1.8)),
        MoveSpec("mug", 10.5, 14.0, (-0.9, 0.7, 0.0), _entering(PERSON, 4.0, 2.0)),
        MoveSpec("box", 14.0, 16.0, (-0.8, 2.4, -0.3), _entering(WORKER, 4.0, 0.5)),
    ),
    agents=(
        AgentSpec(
            "walker",
            "person",
            "cylinder",
            (0.25, 0.25, 1.7),
            (90, 140, 60),
            ((0.5, 3.5, -0.6), (7.0, -3.5, 1.6)),
        ),
    ),
    nuisance=NuisanceSpec(noise_sigma=3.0, drift_amplitude=0.05, drift_period_s=20.0),
    duration_s=20.0,
    rate_hz=10.0,
)


def _warehouse() -> ScenePreset:
    racks = tuple(Footprint((3.0, y, 26.0, y + 1.2), (120, 100, 70), "rack") for y in (2.0, 7.2, 12.4, 17.6))
    aisles_y = (5.1, 10.3, 15.5)  # aisle centre lines, between racks
    lines = tuple(((2.5, y), (26.5, y)) for r in racks for y in (r.rect[1] - 0.3, r.rect[3] + 0.3))
    lines += (((28.0, 1.0), (28.0, 19.0)),)
    items: list[ItemSpec] = []
    spots: list[tuple[float, float, float]] = []
    for k, x in enumerate((5.0, 9.0, 13.0, 17.0, 21.0, 25.0)):
        for j, y in enumerate(aisles_y):
            kind = "pallet" if (k + j) % 2 == 0 else "box"
            side = 1.0 if j % 2 == 0 else -1.0
            board = 0.8 if kind == "pallet" else 0.4
            items.append(
                ItemSpec(f"{kind}_{len(items)}", 100 + len(items), (x, y + side * 1.2, 0.0), board, 0.2)
            )
            spots.append((x + 2.0, y - side * 1.3, 0.3 * side))
    spots += [(28.8, 2.0 + 1.5 * i, 0.0) for i in range(12)]  # staging lane
    return ScenePreset(
        name="warehouse",
        floor=FloorSpec(
            extent=(0.0, 0.0, 30.0, 20.0),
            px_per_m=100.0,
            base_color=(140, 140, 135),
            tile_m=0.0,
            blotch=14.0,
            lines=lines,
            footprints=racks,
        ),
        items=tuple(items),
        camera=CameraSpec(
            mode="patrol",
            route=(
                (1.5, 5.1),
                (27.0, 5.1),
                (27.0, 10.3),
                (1.5, 10.3),
                (1.5, 15.5),
                (27.0, 15.5),
                (27.0, 19.0),
                (1.0, 19.0),
            ),
            height_m=1.5,
            pitch_deg=32.0,
            speed=0.8,
        ),
        **_warehouse_traffic(
            tuple(((-2.0, y), (32.0, y)) for y in aisles_y),
            tuple(((x, -1.0), (x, 21.0)) for x in (2.0, 27.0, 29.5)) + tuple(((-1.0, y), (31.0, y)) for y in aisles_y),
            spots,
        ),
    )


def _warehouse_traffic(
    forklift_routes: tuple[tuple[tuple[float, float], ...], ...],
    person_routes: tuple[tuple[tuple[float, float], ...], ...],
    spots: list[tuple[float, float, float]],
) -> dict[str, Any]:
    """A warehouse's walkers, shuffle, nuisance and length (ScenePreset fields): two forklifts and three people on
    these routes, an item moved to one of these spots about once a minute by a worker."""
    return {
        "walkers": (
            WalkerSpec("forklift", "box", FORKLIFT.size, FORKLIFT.color, 2, 1.5, forklift_routes, (5.0, 40.0)),
            WalkerSpec("person", "cylinder", PERSON.size, PERSON.color, 3, 1.1, person_routes, (5.0, 30.0)),
        ),
        "shuffle": ShuffleSpec(
            moves_per_min=1.0, spots=tuple(spots), away_s=(120.0, 900.0), carrier=WORKER, carrier_speed=1.2
        ),
        "nuisance": NuisanceSpec(noise_sigma=4.0, drift_amplitude=0.08, drift_period_s=600.0),
        "duration_s": 600.0,
    }


def _home() -> ScenePreset:
    rooms = (
        Footprint((0.0, 0.0, 6.0, 5.0), (70, 110, 150), "living room", cross=False),  # wood
        Footprint((6.0, 0.0, 10.0, 5.0), (200, 200, 195), "kitchen", cross=False),
        Footprint((0.0, 5.0, 5.0, 9.0), (150, 120, 130), "bedroom", cross=False),
        Footprint((5.0, 5.0, 10.0, 9.0), (120, 140, 120), "hall", cross=False),
    )
    furniture = (
        Footprint((0.5, 0.4, 3.0, 1.3), (60, 60, 140), "sofa"),
        Footprint((1.5, 2.5, 2.7, 3.3), (40, 70, 100), "coffee table"),
        Footprint((6.2, 0.2, 9.8, 0.8), (170, 170, 170), "counter"),
        Footprint((7.2, 2.0, 8.8, 3.2), (60, 90, 120), "dining table"),
        Footprint((0.4, 6.5, 2.4, 8.6), (180, 150, 200), "bed"),
    )
    walls = (((6.0, 0.0), (6.0, 4.0)), ((0.0, 5.0), (3.5, 5.0)), ((5.0, 6.0), (5.0, 9.0)))
    names = ("keys", "wallet", "remote", "mug", "book", "glasses", "phone", "bag")
    homes = (
        (3.4, 2.0, 0.2),
        (8.0, 1.3, 0.0),
        (1.8, 1.8, 1.2),
        (7.0, 3.8, -0.4),
        (3.2, 7.0, 0.0),
        (2.9, 6.0, 0.7),
        (6.0, 7.5, 0.0),
        (8.5, 6.5, -0.2),
    )
    items = tuple(ItemSpec(n, 40 + i, h, 0.3, 0.16) for i, (n, h) in enumerate(zip(names, homes)))
    spots = (
        (4.5, 3.5, 0.3),
        (9.0, 4.2, -0.5),
        (3.5, 5.8, 0.0),
        (7.5, 5.6, 1.0),
        (1.0, 4.4, 0.0),
        (4.0, 8.3, 0.4),
        (9.2, 8.2, 0.0),
        (5.3, 1.5, 0.9),
    )
    return ScenePreset(
        name="home",
        floor=FloorSpec(
            extent=(0.0, 0.0, 10.0, 9.0),
            px_per_m=100.0,
            base_color=(128, 128, 128),
            tile_m=0.0,
            blotch=6.0,
            lines=walls,
            line_color=(230, 230, 230),
            line_width_m=0.12,
            footprints=rooms + furniture,
        ),
        items=items,
        camera=CameraSpec(
            mode="patrol",
            route=(
                (4.0, 2.2),
                (9.0, 2.2),
                (9.0, 4.3),
                (4.2, 4.3),
                (4.2, 7.8),
                (8.5, 7.8),
                (8.5, 5.8),
                (3.5, 5.8),
                (3.5, 4.2),
            ),
            height_m=1.0,
            pitch_deg=35.0,
            speed=0.5,
            yaw_rate_deg=40.0,
        ),
        walkers=(
            WalkerSpec(
                "person",
                "cylinder",
                PERSON.size,
                PERSON.color,
                2,
                0.9,
                (((4.0, 0.2), (4.5, 4.5), (6.5, 7.0), (9.5, 8.5)), ((0.5, 4.0), (5.5, 4.2), (9.5, 3.8))),
                (10.0, 60.0),
            ),
        ),
        shuffle=ShuffleSpec(
            moves_per_min=0.5, spots=spots, away_s=(90.0, 900.0), carrier=PERSON, carrier_speed=0.9
        ),
        nuisance=NuisanceSpec(noise_sigma=4.0, light_toggles_per_min=0.3, dark_gain=0.45),
        duration_s=600.0,
    )


# The depot's racks: a green grey that no agent and nothing in the training maps has. "depot_orange" paints them
# the orange of the simulator's forklifts and workers (common for real racks): the learned model, whose agents
# in training were all flat orange, red or purple shapes, then marks the racks as agents (BENCHMARKS.md).
DEPOT_RACKS = (95, 125, 100)
DEPOT_ORANGE_RACKS = (50, 90, 150)


def _depot(rack_color: tuple[int, int, int] = DEPOT_RACKS, name: str = "depot") -> ScenePreset:
    """A second warehouse that no training stream uses (model/data.py draws warehouse and home only): racks run
    north-south, not east-west, four of them 5.6 m apart; another floor, other rack and line colours, items at
    other places, other tag ids, a serpentine patrol. What it measures: whether the learned model learned this
    kind of scene or the two maps it was trained on (the bench's seeds change traffic, moves and light, never
    the map)."""
    racks = tuple(Footprint((x, 3.0, x + 1.2, 23.0), rack_color, "rack") for x in (2.0, 7.6, 13.2, 18.8))
    aisles_x = (5.4, 11.0, 16.6)  # aisle centre lines, between racks
    lines = tuple(((x, 2.5), (x, 23.5)) for r in racks for x in (r.rect[0] - 0.3, r.rect[2] + 0.3))
    lines += (((1.0, 25.0), (23.0, 25.0)),)
    items: list[ItemSpec] = []
    spots: list[tuple[float, float, float]] = []
    for k, y in enumerate((5.5, 10.0, 14.5, 19.0)):
        for j, x in enumerate(aisles_x):
            kind = "pallet" if (k + j) % 2 == 1 else "box"
            side = 1.0 if (k + j) % 2 == 0 else -1.0
            board = 0.8 if kind == "pallet" else 0.4
            items.append(ItemSpec(f"{kind}_{len(items)}", 200 + len(items), (x + side * 1.1, y, 1.2 * side), board,
                                  0.2))
            spots.append((x - side * 1.2, y + 1.8, -0.4 * side))
    spots += [(2.0 + 1.6 * i, 26.3, 0.0) for i in range(12)]  # staging lane, across the far end
    return ScenePreset(
        name=name,
        floor=FloorSpec(
            extent=(0.0, 0.0, 24.0, 28.0),
            px_per_m=100.0,
            base_color=(118, 124, 132),
            tile_m=0.0,
            blotch=10.0,
            lines=lines,
            line_color=(190, 150, 60),
            footprints=racks,
        ),
        items=tuple(items),
        camera=CameraSpec(
            mode="patrol",
            route=(
                (5.4, 1.5),
                (5.4, 25.8),
                (11.0, 25.8),
                (11.0, 1.5),
                (16.6, 1.5),
                (16.6, 25.8),
                (22.6, 25.8),
                (22.6, 1.0),
            ),
            height_m=1.5,
            pitch_deg=32.0,
            speed=0.8,
        ),
        **_warehouse_traffic(
            tuple(((x, -2.0), (x, 30.0)) for x in aisles_x),
            tuple(((-1.0, y), (25.0, y)) for y in (1.2, 25.8, 27.2)) + tuple(((x, -1.0), (x, 29.0)) for x in aisles_x),
            spots,
        ),
    )


PRESETS: dict[str, ScenePreset] = {
    "demo": DEMO, "warehouse": _warehouse(), "home": _home(), "depot": _depot(),
    "depot_orange": _depot(DEPOT_ORANGE_RACKS, "depot_orange"),
}


def get_preset(name: str) -> ScenePreset:
    """The preset called `name` ("demo", "warehouse", "home", "depot", "depot_orange")."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown scene preset {name!r}; choose one of {sorted(PRESETS)}") from None
