"""A rosbags typestore that knows our interfaces, and rosbags message constructors for ros/encode.py.

rosbags has its own message classes (dataclasses generated from .msg text), so bags are read and written
without rclpy. Our msg/*.msg are registered from the source tree (editable install) or from the installed
share/spatial_memory/msg (CMake / colcon install).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from ..core.errors import BadInputError
from ..ros.encode import MessageTypes

PACKAGE = "spatial_memory"
_BASE_STORE = Stores.ROS2_KILTED  # has sensor_msgs, visualization_msgs, tf2_msgs, ...


def msg_dir() -> Path:
    """The folder holding our Track.msg etc.; BadInputError saying where it looked if there is none."""
    candidates = [Path(__file__).resolve().parents[2] / "msg"]  # the source tree
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    candidates += [Path(p) / "share" / PACKAGE / "msg" for p in prefixes]
    for folder in candidates:
        if (folder / "TrackArray.msg").is_file():
            return folder
    raise BadInputError(f"cannot find {PACKAGE}'s msg/*.msg (looked in {', '.join(map(str, candidates))})")


@functools.cache
def typestore() -> Typestore:
    """ROS 2 Kilted's standard types plus spatial_memory/msg/*."""
    store = get_typestore(_BASE_STORE)
    types: dict[str, Any] = {}
    for path in sorted(msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"{PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


class _Constructor:
    """Calls a rosbags message class with keyword fields, defaulting the rest (rosbags has no defaults);
    the message's constants are attributes, as on rclpy's classes."""

    def __init__(self, store: Typestore, typename: str) -> None:
        self._store, self._typename = store, typename
        self._cls = store.types[typename]
        consts, self._fields = store.fielddefs[typename]
        for name, _, value in consts:
            setattr(self, name, value)

    def __call__(self, **fields: Any) -> Any:
        for name, desc in self._fields:
            if name not in fields:
                fields[name] = _default(self._store, desc)
        return self._cls(**fields)


def make(typename: str, **fields: Any) -> Any:
    """A message of typestore()'s `typename` ("sensor_msgs/msg/Image"), unspecified fields at their defaults."""
    return _Constructor(typestore(), typename)(**fields)


_DTYPES = {
    "bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
    "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
    "float32": np.float32, "float64": np.float64,
}


def _default(store: Typestore, desc: Any) -> Any:
    """A field's ROS default from its rosbags description (Nodetype, detail)."""
    kind, detail = desc
    kind = int(kind)
    if kind == 1:  # BASE: (type name, string bound)
        name = detail[0]
        return "" if name in ("string", "wstring") else False if name == "bool" else (
            0.0 if name.startswith("float") else 0)
    if kind == 2:  # NAME: a nested message
        return _Constructor(store, detail)()
    (sub_kind, sub_detail), size = detail  # ARRAY (3, fixed size) or SEQUENCE (4, bound)
    count = size if kind == 3 else 0
    if int(sub_kind) == 1 and sub_detail[0] in _DTYPES:
        return np.zeros(count, dtype=_DTYPES[sub_detail[0]])  # rosbags keeps numeric arrays as numpy
    return [_default(store, (sub_kind, sub_detail)) for _ in range(count)]


@functools.cache
def rosbags_types() -> MessageTypes:
    """ros/encode.py's MessageTypes backed by typestore()."""
    store = typestore()
    names = {
        "Time": "builtin_interfaces/msg/Time", "Duration": "builtin_interfaces/msg/Duration",
        "Header": "std_msgs/msg/Header", "Point": "geometry_msgs/msg/Point", "Vector3": "geometry_msgs/msg/Vector3",
        "ColorRGBA": "std_msgs/msg/ColorRGBA", "Image": "sensor_msgs/msg/Image",
        "Marker": "visualization_msgs/msg/Marker", "MarkerArray": "visualization_msgs/msg/MarkerArray",
        "Track": f"{PACKAGE}/msg/Track", "TrackArray": f"{PACKAGE}/msg/TrackArray",
    }
    return MessageTypes(**{k: _Constructor(store, v) for k, v in names.items()},
                        uint8_data=lambda a: np.ascontiguousarray(a, dtype=np.uint8))
