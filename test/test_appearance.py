"""Appearance randomisation of training streams (model.appearance, `train --recolour`)."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.model.appearance import Appearance
from spatial_memory_ros.model.config import ModelConfig, TrainConfig
from spatial_memory_ros.model.data import render_stream, training_preset


def test_an_agent_keeps_its_colour_and_shading_and_the_rest_only_the_palette() -> None:
    look = Appearance.draw(np.random.default_rng(3))
    image = np.full((20, 30, 3), 100, np.uint8)
    image[5:10, 5:10] = (10, 200, 30)  # agent 7: one colour
    image[5:10, 5:7] = (5, 100, 15)  # half as bright on its left
    instances = np.zeros((20, 30), np.uint16)
    instances[5:10, 5:10] = 7
    out = look.apply(image, instances)
    again = look.apply(np.roll(image, 10, axis=1), np.roll(instances, 10, axis=1))  # the agent moved
    assert np.array_equal(out[5:10, 5:10], again[5:10, 15:20]), "an agent looks the same in every frame"
    bright, dark = out[7, 8].astype(float), out[7, 5].astype(float)
    assert (dark < bright).all(), "the rendering's shading is kept"
    assert not np.array_equal(out[7, 8], look.apply(image, np.zeros_like(instances))[7, 8]), "the agent is repainted"
    background = np.clip(np.array([100.0, 100.0, 100.0])[list(look.order)] * look.gain + look.offset, 0, 255)
    assert np.allclose(out[0, 0], background, atol=1), "the background only goes through the palette transform"


@pytest.mark.parametrize("option", ["recolour", "decoys", "floors"])
def test_repainted_streams_keep_their_truth_and_are_not_anchored(option: str) -> None:
    """A recoloured, decoyed or floored stream (warehouse patrol 1002: racks to paint) has the plain one's truth and
    other pixels; it is marked as not the simulator's own look, so that an --anchor model (which marks an agent painted
    otherwise, and such racks) is not followed on it; a share of 0 changes no stream."""
    cfg = ModelConfig()
    plain = render_stream(1002, 6, cfg)
    painted = render_stream(1002, 6, cfg, **{option: 1.0})
    for name in ("masks", "agents", "labels", "T_map_cam"):
        assert np.array_equal(getattr(plain, name), getattr(painted, name)), name
    assert not np.array_equal(plain.images, painted.images)
    assert painted.recoloured and not plain.recoloured
    assert np.array_equal(render_stream(1002, 6, cfg, **{option: 0.0}).images, plain.images)


def test_patrol_streams_can_take_their_own_share() -> None:
    cfg = ModelConfig()
    modes = {seed: training_preset(seed, cfg)[0].camera.mode for seed in range(1000, 1012)}
    patrol = next(s for s, m in modes.items() if m == "patrol")
    still = next(s for s, m in modes.items() if m == "static")
    for seed, recoloured in ((patrol, False), (still, True)):
        plain = render_stream(seed, 3, cfg).images
        images = render_stream(seed, 3, cfg, recolour=1.0, recolour_patrol=0.0).images
        assert np.array_equal(plain, images) != recoloured, modes[seed]


def test_recolour_share_is_checked() -> None:
    with pytest.raises(ValueError, match="recolour"):
        TrainConfig(recolour=1.5).validate()
    with pytest.raises(ValueError, match="recolour"):
        TrainConfig(recolour_patrol=-0.1).validate()


def test_decoys_paint_racks_and_furniture_in_the_agents_colours() -> None:
    """`train --decoys`: each footprint drawn with its cross takes a colour within 20 of one an agent wears; room
    floors keep theirs; nothing else about the scene changes."""
    from spatial_memory_ros.model.data import decoy_preset

    cfg = ModelConfig()
    for seed in (1000, 1002):  # a home and a warehouse
        preset = training_preset(seed, cfg)[0]
        worn = np.array([w.color for w in preset.walkers] + [preset.shuffle.carrier.color], dtype=float)
        painted = decoy_preset(preset, np.random.default_rng(0))
        for before, after in zip(preset.floor.footprints, painted.floor.footprints):
            if before.cross:
                assert np.abs(worn - np.array(after.color)).max(axis=1).min() <= 20, (before, after)
            else:
                assert after == before
        assert painted.walkers == preset.walkers and painted.items == preset.items
        assert any(a.color != b.color for a, b in zip(preset.floor.footprints, painted.floor.footprints))


def test_decoy_share_is_checked() -> None:
    with pytest.raises(ValueError, match="decoys"):
        TrainConfig(decoys=1.5).validate()


def test_varied_floors_change_the_floor_alone_and_differ_between_streams() -> None:
    """`train --floors`: the floor's tint, stains, grain, tiles and line colour are drawn; footprints, items, agents
    and the camera are the preset's; the draws spread over greys and tints (not one fixed other floor)."""
    from spatial_memory_ros.model.data import varied_floor

    preset = training_preset(1002, ModelConfig())[0]
    looks = [varied_floor(preset, np.random.default_rng(k)) for k in range(30)]
    for floored in looks:
        assert floored.floor.footprints == preset.floor.footprints and floored.floor.lines == preset.floor.lines
        assert floored.walkers == preset.walkers and floored.items == preset.items and floored.camera == preset.camera
    bases = np.array([f.floor.base_color for f in looks], dtype=float)
    assert np.ptp(bases.mean(axis=1)) > 50, "greys from dark to light"
    assert np.ptp(bases[:, 2] - bases[:, 0]) > 15, "tinted, not only grey"
    assert 0 < sum(f.floor.tile_m > 0 for f in looks) < len(looks), "some tiled, some not"


def test_floor_share_is_checked() -> None:
    with pytest.raises(ValueError, match="floors"):
        TrainConfig(floors=-0.5).validate()
