"""RViz markers (visualization_msgs/MarkerArray) for tracks and item memory. No plugin needed.

Namespaces, so each can be toggled in RViz: ``tracks`` (``tracks/<camera>`` with several cameras; spheres
+ text at each positioned track, the text ending in how the position was measured: ``[tag]``, ``[depth]`` or
``[ground plane]``), ``usual`` (green cylinders), ``current`` (blue cubes; grey when inferred, the last place
having been seen empty), ``displaced`` (red arrows usual -> current) and ``item_labels``. A marker drawn before
and not now (a track that ended, an item forgotten) is deleted at once (DELETE; clear() after a reset), and every
marker has a lifetime, so a stopped node's markers vanish too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from spatial_memory_ros.core.types import ItemAnswer, PositionSource, TrackInfo, TrackState

from .encode import MessageTypes, duration, rclpy_types

Rgba = tuple[float, float, float, float]
_TRACK_COLOURS: dict[TrackState, Rgba] = {
    TrackState.TENTATIVE: (1.0, 1.0, 0.0, 0.6),
    TrackState.CONFIRMED: (1.0, 0.5, 0.0, 0.9),
    TrackState.LOST: (0.5, 0.5, 0.5, 0.5),
}
_USUAL: Rgba = (0.1, 0.8, 0.2, 0.8)
_CURRENT: Rgba = (0.2, 0.4, 1.0, 0.9)
_DISPLACED: Rgba = (1.0, 0.1, 0.1, 1.0)
_INFERRED: Rgba = (0.6, 0.6, 0.7, 0.6)
_TEXT: Rgba = (1.0, 1.0, 1.0, 1.0)
# How each track's position was measured, shown in its label so a wrong assumption is visible in RViz.
POSITION_WORDS = {
    PositionSource.NONE: "",
    PositionSource.TAG: "tag",
    PositionSource.DEPTH: "depth",
    PositionSource.GROUND_PLANE: "ground plane",
}




class MarkerBuilder:
    """Builds a MarkerArray; keeps the per-item marker ids stable across calls.

    types: the message classes, rclpy's by default; the offline bag writer passes rosbags' (encode.py).
    """

    def __init__(self, frame_id: str, lifetime_s: float, types: MessageTypes | None = None) -> None:
        self.frame_id = frame_id
        self.lifetime_s = lifetime_s
        self._item_ids: dict[str, int] = {}
        self._types = types or rclpy_types()
        # (ns, id) drawn by the last build() of each track namespace, and of the items: what the next must delete
        self._drawn: dict[str, set[tuple[str, int]]] = {}

    def _point(self, p: np.ndarray, dz: float = 0.0) -> Any:
        return self._types.Point(x=float(p[0]), y=float(p[1]), z=float(p[2]) + dz)

    def _marker(self, ns: str, marker_id: int, kind: int, stamp: Any, colour: Rgba) -> Any:
        T = self._types
        m = T.Marker()
        m.header.frame_id = self.frame_id
        m.header.stamp = stamp
        m.ns, m.id, m.type, m.action = ns, marker_id, kind, T.Marker.ADD
        m.pose.orientation.w = 1.0
        m.color = T.ColorRGBA(r=colour[0], g=colour[1], b=colour[2], a=colour[3])
        m.lifetime = duration(self.lifetime_s, T)
        return m

    def _item_id(self, item: str) -> int:
        return self._item_ids.setdefault(item, len(self._item_ids))

    def build(self, tracks: Sequence[TrackInfo], answers: Sequence[ItemAnswer], stamp: Any,
              track_ns: str = "tracks") -> Any:
        """visualization_msgs/MarkerArray for these tracks and item answers; stamp: builtin_interfaces/Time.
        track_ns: the tracks' namespace; a node with several cameras gives each its own (ids are per camera)."""
        Marker = self._types.Marker
        out = self._types.MarkerArray()
        label_ns = "track_labels" + track_ns.removeprefix("tracks")  # track_labels, track_labels/<camera>
        drawn: dict[str, set[tuple[str, int]]] = {track_ns: set(), "": set()}  # "": the items' markers
        for t in tracks:
            if t.position is None or not np.all(np.isfinite(t.position)):
                continue
            drawn[track_ns] |= {(track_ns, t.track_id), (label_ns, t.track_id)}
            sphere = self._marker(track_ns, t.track_id, Marker.SPHERE, stamp, _TRACK_COLOURS[t.state])
            sphere.pose.position = self._point(t.position)
            sphere.scale.x = sphere.scale.y = sphere.scale.z = 0.25 if t.is_dynamic else 0.15
            # the label in a namespace of its own, under the track's id: an id offset by 1,000,000 in the sphere's
            # namespace met track 1,000,000 + n's sphere in a node that ran long enough, and RViz drew one of them
            text = self._marker(label_ns, t.track_id, Marker.TEXT_VIEW_FACING, stamp, _TEXT)
            text.pose.position = self._point(t.position, 0.3)
            text.scale.z = 0.15
            text.text = f"#{t.track_id} {t.item or t.label} [{POSITION_WORDS[t.position_source]}]"
            out.markers += [sphere, text]
        for a in answers:
            i = self._item_id(a.item)
            usual = self._marker("usual", i, Marker.CYLINDER, stamp, _USUAL)
            usual.pose.position = self._point(a.usual.position)
            usual.scale.x = usual.scale.y = 0.3
            usual.scale.z = 0.02
            # an inferred current is drawn greyed: a guess, not a sighting; so is a missing item's last sighting,
            # at a place since seen empty (it was drawn as a sighting there)
            current = self._marker("current", i, Marker.CUBE, stamp,
                                   _INFERRED if a.current_inferred or a.missing else _CURRENT)
            current.pose.position = self._point(a.current.position, 0.05)
            q = a.current.orientation
            current.pose.orientation.x, current.pose.orientation.y = float(q[0]), float(q[1])
            current.pose.orientation.z, current.pose.orientation.w = float(q[2]), float(q[3])
            current.scale.x = current.scale.y = 0.2
            current.scale.z = 0.1
            label = self._marker("item_labels", i, Marker.TEXT_VIEW_FACING, stamp, _TEXT)
            # above the track label (z + 0.3, as tall): the two texts of an item in view overlapped
            label.pose.position = self._point(a.current.position, 0.5)
            label.scale.z = 0.15
            label.text = a.item + (" (missing)" if a.missing else "") + (" (displaced)" if a.displaced else "")
            out.markers += [usual, current, label]
            arrow = self._marker("displaced", i, Marker.ARROW, stamp, _DISPLACED)
            if a.displaced:
                arrow.points = [self._point(a.usual.position, 0.05), self._point(a.current.position, 0.05)]
                arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.04, 0.1, 0.15  # shaft, head width, head length
            else:
                arrow.action = Marker.DELETE  # an item put back loses its arrow at once
            out.markers.append(arrow)
            drawn[""] |= {("usual", i), ("current", i), ("item_labels", i), ("displaced", i)}
        for group, now in drawn.items():
            gone = self._drawn.get(group, set()) - now
            out.markers += [self._delete(ns, marker_id, stamp) for ns, marker_id in sorted(gone)]
            self._drawn[group] = now
        return out

    def clear(self, stamp: Any) -> Any:
        """A MarkerArray deleting every marker drawn so far (after reset_memory: the forgotten items' markers had
        stayed until their lifetime ran out); item ids start again."""
        out = self._types.MarkerArray()
        out.markers = [self._delete(ns, marker_id, stamp) for group in self._drawn.values()
                       for ns, marker_id in sorted(group)]
        self._drawn.clear()
        self._item_ids.clear()
        return out

    def _delete(self, ns: str, marker_id: int, stamp: Any) -> Any:
        m = self._marker(ns, marker_id, self._types.Marker.SPHERE, stamp, _TEXT)
        m.action = self._types.Marker.DELETE
        return m
