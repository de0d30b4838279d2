"""Deterministic synthetic scenes with ground truth, for the demo and the benchmark (no ROS).

Start with :func:`make_scene` and :func:`to_frame`; presets are data in :mod:`.presets`.
"""

from .presets import PRESETS, get_preset
from .scene import AgentTruth, FrameTruth, ItemTruth, SimFrame, SimScene, make_scene, to_frame
from .spec import (
    AgentSpec,
    CameraSpec,
    FloorSpec,
    Footprint,
    ItemSpec,
    LightEvent,
    MoveSpec,
    NuisanceSpec,
    ScenePreset,
    ShuffleSpec,
    WalkerSpec,
)

__all__ = [
    "PRESETS",
    "AgentSpec",
    "AgentTruth",
    "CameraSpec",
    "FloorSpec",
    "Footprint",
    "FrameTruth",
    "ItemSpec",
    "ItemTruth",
    "LightEvent",
    "MoveSpec",
    "NuisanceSpec",
    "ScenePreset",
    "ShuffleSpec",
    "SimFrame",
    "SimScene",
    "WalkerSpec",
    "get_preset",
    "make_scene",
    "to_frame",
]
