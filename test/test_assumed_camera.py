"""The assumed camera of the cup/box evaluation (evaluate.assumed_camera): lifting a box with it and projecting
the position back gives the box's pixel whatever the assumed field of view and distance."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.core.config import LiftingConfig
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.lifting import lift
from spatial_memory_ros.core.types import Detection, Frame, PositionSource
from spatial_memory_ros.evaluate.assumed_camera import AssumedCamera


@pytest.mark.parametrize("hfov_deg", [40.0, 60.0, 90.0])
@pytest.mark.parametrize("distance_m", [0.3, 0.45, 2.0])
def test_the_assumed_camera_cancels_in_the_projection_round_trip(hfov_deg: float, distance_m: float) -> None:
    camera = AssumedCamera(hfov_deg=hfov_deg, distance_m=distance_m)
    frame = Frame(image=np.zeros((480, 640, 3), np.uint8), stamp=0.0, intrinsics=camera.intrinsics(640, 480),
                  T_map_cam=camera.T_map_cam, depth=camera.depth(640, 480))
    for box in ([10.0, 20.0, 50.0, 90.0], [300.0, 200.0, 420.0, 470.0], [590.0, 0.0, 640.0, 30.0]):
        lifted = lift(Detection(box=np.array(box), label="cup", score=0.9, item="cup"), frame,
                      LiftingConfig())
        assert lifted.position_source == PositionSource.DEPTH
        centre = ((box[0] + box[2] - 1) / 2, (box[1] + box[3] - 1) / 2)  # the pixel the lifting's ray goes through
        assert tuple(camera.project(lifted.position, 640, 480)[0]) == pytest.approx(centre, abs=1e-6)
        assert lifted.position[0] == pytest.approx(distance_m)  # level camera: depth is map x
    # the memory's metres are the assumption's: pixels per metre scale with 1 / distance
    assert camera.metres_per_px(640) == pytest.approx(distance_m * np.tan(np.radians(hfov_deg) / 2) / 320)


def test_an_impossible_assumed_camera_is_refused() -> None:
    with pytest.raises(BadInputError, match="hfov_deg"):
        AssumedCamera(hfov_deg=180.0)
    with pytest.raises(BadInputError, match="distance_m"):
        AssumedCamera(distance_m=0.0)
