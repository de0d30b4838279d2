"""RViz markers (visualization_msgs/MarkerArray) for tracks and item memory. No plugin needed.

Namespaces, so each can be toggled in RViz: ``tracks`` (spheres + text at each positioned track, the text
ending in how the position was measured: ``[tag]``, ``[depth]`` or ``[ground plane]``),
``usual`` (green cylinders), ``current`` (blue cubes), ``displaced`` (red arrows usual -> current) and
``item_labels``. Every marker has a lifetime, so markers of a stopped node or a dead track vanish.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from spatial_memory_ros.core.types import ItemAnswer, PositionSource, TrackInfo, TrackState

_TRACK_COLOURS = {
    TrackState.TENTATIVE: ColorRGBA(r=1.0, g=1.0, b=0.0, a=0.6),
    TrackState.CONFIRMED: ColorRGBA(r=1.0, g=0.5, b=0.0, a=0.9),
    TrackState.LOST: ColorRGBA(r=0.5, g=0.5, b=0.5, a=0.5),
}
_USUAL = ColorRGBA(r=0.1, g=0.8, b=0.2, a=0.8)
_CURRENT = ColorRGBA(r=0.2, g=0.4, b=1.0, a=0.9)
_DISPLACED = ColorRGBA(r=1.0, g=0.1, b=0.1, a=1.0)
_TEXT = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
# How each track's position was measured, shown in its label so a wrong assumption is visible in RViz.
POSITION_WORDS = {
    PositionSource.NONE: "",
    PositionSource.TAG: "tag",
    PositionSource.DEPTH: "depth",
    PositionSource.GROUND_PLANE: "ground plane",
}


def _duration(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int((seconds - sec) * 1e9))


def _point(p: np.ndarray, dz: float = 0.0) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]) + dz)


class MarkerBuilder:
    """Builds a MarkerArray; keeps the per-item marker ids stable across calls."""

    def __init__(self, frame_id: str, lifetime_s: float) -> None:
        self.frame_id = frame_id
        self.lifetime_s = lifetime_s
        self._item_ids: dict[str, int] = {}

    def _marker(self, ns: str, marker_id: int, kind: int, stamp: Time, colour: ColorRGBA) -> Marker:
        m = Marker()
        m.header.frame_id = self.frame_id
        m.header.stamp = stamp
        m.ns, m.id, m.type, m.action = ns, marker_id, kind, Marker.ADD
        m.pose.orientation.w = 1.0
        m.color = colour
        m.lifetime = _duration(self.lifetime_s)
        return m

    def _item_id(self, item: str) -> int:
        return self._item_ids.setdefault(item, len(self._item_ids))

    def build(self, tracks: Sequence[TrackInfo], answers: Sequence[ItemAnswer], stamp: Time) -> MarkerArray:
        out = MarkerArray()
        for t in tracks:
            if t.position is None or not np.all(np.isfinite(t.position)):
                continue
            sphere = self._marker("tracks", t.track_id, Marker.SPHERE, stamp, _TRACK_COLOURS[t.state])
            sphere.pose.position = _point(t.position)
            sphere.scale.x = sphere.scale.y = sphere.scale.z = 0.25 if t.is_dynamic else 0.15
            text = self._marker("tracks", 1_000_000 + t.track_id, Marker.TEXT_VIEW_FACING, stamp, _TEXT)
            text.pose.position = _point(t.position, 0.3)
            text.scale.z = 0.15
            text.text = f"#{t.track_id} {t.item or t.label} [{POSITION_WORDS[t.position_source]}]"
            out.markers += [sphere, text]
        for a in answers:
            i = self._item_id(a.item)
            usual = self._marker("usual", i, Marker.CYLINDER, stamp, _USUAL)
            usual.pose.position = _point(a.usual.position)
            usual.scale.x = usual.scale.y = 0.3
            usual.scale.z = 0.02
            current = self._marker("current", i, Marker.CUBE, stamp, _CURRENT)
            current.pose.position = _point(a.current.position, 0.05)
            q = a.current.orientation
            current.pose.orientation.x, current.pose.orientation.y = float(q[0]), float(q[1])
            current.pose.orientation.z, current.pose.orientation.w = float(q[2]), float(q[3])
            current.scale.x = current.scale.y = 0.2
            current.scale.z = 0.1
            label = self._marker("item_labels", i, Marker.TEXT_VIEW_FACING, stamp, _TEXT)
            label.pose.position = _point(a.current.position, 0.4)
            label.scale.z = 0.15
            label.text = a.item + (" (displaced)" if a.displaced else "")
            out.markers += [usual, current, label]
            arrow = self._marker("displaced", i, Marker.ARROW, stamp, _DISPLACED)
            if a.displaced:
                arrow.points = [_point(a.usual.position, 0.05), _point(a.current.position, 0.05)]
                arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.04, 0.1, 0.15  # shaft, head width, head length
            else:
                arrow.action = Marker.DELETE  # an item put back loses its arrow at once
            out.markers.append(arrow)
        return out
