"""Read a PipelineConfig from the node's parameter YAML, so the offline tools and the node share one file.

Accepted layouts (they can be mixed in one file):
- the ROS parameter-file wrapper ``<node or /**>: {ros__parameters: {...}}`` or a plain mapping;
- flat dotted keys (``change.threshold: 25``) and nested maps (``change: {threshold: 25}``);
- tag settings at the top level (``tag_size_m``, ``items``) as the node declares them, or under ``tags.``.

``items`` is a string array ``["mug=3", "pallet_A=17"]`` because ROS parameters cannot hold maps; a
``{name: id}`` map is accepted too, but not in a ROS parameter file (rcl would make it items.mug, which the node
does not read). The node's own parameters (NODE_ONLY_KEYS) and ROS's (qos_overrides.*) are skipped, so the
offline tools read config/spatial_memory.yaml as it is; any other unknown key raises BadInputError
naming it, so a typo never silently falls back to a default. A ROS parameter file is read as the node reads it:
a float setting written as an integer (25, not 25.0) is refused there, as rclpy refuses it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .config import PipelineConfig
from .errors import BadInputError

# AprilTag 36h11 has ids 0..586; any other id can never be detected, so it is a typo.
TAG36H11_IDS = 587

# Parameters of the ROS node that are not pipeline settings: ros/params.py NodeSettings (which imports
# rclpy, so cannot be asked from here; test_settings_io keeps the two in step), plus ROS's own.
NODE_ONLY_KEYS = frozenset({
    "device", "rate_hz", "map_frame", "camera_frame", "pose_source", "fixed_transform", "depth_max_dt_s",
    "publish_debug_image", "marker_lifetime_s", "tf_timeout_s", "image_transport", "image_rectified", "check_jpeg",
    "cameras", "use_sim_time", "start_type_description_service",
})
ROS_KEY_PREFIXES = ("qos_overrides.",)  # rclpy's QoS overrides of the node's topics (README, "QoS")

_SECTIONS = [f.name for f in dataclasses.fields(PipelineConfig)]  # "tags", "change", ...
_ALIASES = {"tag_size_m": "tags.tag_size_m", "items": "tags.items"}


def _field_types() -> dict[str, type]:
    """Dotted key -> declared type, e.g. "change.threshold" -> float."""
    hints = typing.get_type_hints(PipelineConfig)
    out: dict[str, type] = {}
    for section, cls in hints.items():
        for name, tp in typing.get_type_hints(cls).items():
            out[f"{section}.{name}"] = tp
    return out


_FIELD_TYPES = _field_types()
_STR_LIST = tuple[str, ...]  # class-name lists (detector.item_classes, ...), written as YAML string lists
_TYPE_WORDS: dict[Any, str] = {
    float: "a number", int: "an integer", str: "a string", bool: "true or false", _STR_LIST: "a list of strings",
}


def parse_items(items: Sequence[str] | Mapping[str, int | str] | str) -> dict[str, int]:
    """Item names -> AprilTag ids from ``["mug=3", ...]``, ``{"mug": 3}`` or ``"mug=3,pallet_A=17"``.

    Blank entries are skipped: ROS cannot infer the type of an empty list, so an empty string array is
    conventionally written ``[""]``. Raises BadInputError for malformed entries, ids outside 0..586 and
    names or ids used twice.
    """
    pairs: list[tuple[str, Any, str]] = []  # (name, raw id, entry as written, for messages)
    if isinstance(items, str):
        items = items.split(",")
    if isinstance(items, Mapping):
        pairs = [(str(k).strip(), v, f"{k}: {v}") for k, v in items.items()]
    elif isinstance(items, Sequence):
        for entry in items:
            if not isinstance(entry, str):
                raise BadInputError(f"items entry {entry!r} must be a string 'name=id'")
            if not entry.strip():
                continue
            name, sep, raw = entry.partition("=")
            if not sep or "=" in raw:
                raise BadInputError(f"items entry {entry!r} must look like 'name=id', e.g. 'mug=3'")
            pairs.append((name.strip(), raw.strip(), entry))
    else:
        raise BadInputError(f"items must be a list of 'name=id' strings or a map, not {type(items).__name__}")

    out: dict[str, int] = {}
    for name, raw, entry in pairs:
        if not name:
            raise BadInputError(f"items entry {entry!r} has no item name")
        tag_id = _as_tag_id(raw, entry)
        if name in out:
            raise BadInputError(f"item {name!r} is given twice in items")
        if tag_id in out.values():
            other = next(n for n, t in out.items() if t == tag_id)
            raise BadInputError(f"items maps both {other!r} and {name!r} to tag id {tag_id}")
        out[name] = tag_id
    return out


def _as_tag_id(raw: Any, entry: str) -> int:
    if isinstance(raw, bool):  # bool is an int subclass; `mug: yes` is a typo, not tag 1
        raise BadInputError(f"items entry {entry!r}: the tag id must be an integer")
    if isinstance(raw, int):
        tag_id = raw
    elif isinstance(raw, str) and raw.isdigit():
        tag_id = int(raw)
    else:
        raise BadInputError(f"items entry {entry!r}: the tag id must be a non-negative integer")
    if not 0 <= tag_id < TAG36H11_IDS:
        raise BadInputError(f"items entry {entry!r}: AprilTag 36h11 ids are 0..{TAG36H11_IDS - 1}")
    return tag_id


def load_pipeline_config(
    path: str | Path, *, ignore_keys: Collection[str] = NODE_ONLY_KEYS, base: PipelineConfig | None = None
) -> PipelineConfig:
    """Read and validate a PipelineConfig from a YAML file; settings not in the file keep their defaults (base's,
    when given: e.g. an evaluation's own defaults).

    ignore_keys: keys to accept and skip (by default the node's own parameters), so one parameter file
    serves both the node and the offline tools. Raises BadInputError naming the file for a missing or
    unparsable file, unknown keys or bad values.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"no config file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"cannot read config file {path}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BadInputError(f"config file {path} is not valid YAML: {yaml_error(e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInputError(f"config file {path} must hold a mapping of settings")
    try:
        return config_from_params(_unwrap_ros(data), ignore_keys=ignore_keys, base=base,
                                  ros_file=_is_ros_file(data))
    except BadInputError as e:
        raise BadInputError(f"{path}: {e}") from None


def config_from_params(
    params: Mapping[str, Any], *, ignore_keys: Collection[str] = NODE_ONLY_KEYS, base: PipelineConfig | None = None,
    ros_file: bool = False,
) -> PipelineConfig:
    """Build a validated PipelineConfig from flat dotted and/or nested settings (no ROS wrapper), e.g.
    ``{"tag_size_m": 0.1, "items": ["mug=3"], "change.threshold": 25}``; see load_pipeline_config. ros_file: the
    settings come from a ROS parameter file, to be refused where the node would refuse them."""
    flat = _flatten(params)
    skip = set(ignore_keys) | {k for k in flat if k.startswith(ROS_KEY_PREFIXES)}
    unknown = sorted(k for k in flat if k not in _FIELD_TYPES and k not in _ALIASES and k not in skip)
    if unknown:
        known = sorted(set(_FIELD_TYPES) - {"tags.tag_size_m", "tags.items"} | set(_ALIASES))
        raise BadInputError(f"unknown settings: {', '.join(unknown)} (known: {', '.join(known)})")

    values: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    for key, raw in flat.items():
        if key in skip:
            continue
        dotted = _ALIASES.get(key, key)
        section, name = dotted.split(".", 1)
        if name in values[section]:
            raise BadInputError(f"setting {dotted} is given twice (once as {key})")
        values[section][name] = _coerce(dotted, raw, ros_file)

    default = PipelineConfig() if base is None else base
    sections = {s: dataclasses.replace(getattr(default, s), **v) for s, v in values.items()}
    return PipelineConfig(**sections).validate()


def _is_ros_section(value: Any) -> bool:
    """A ROS parameter file's node section: ``{ros__parameters: {...}}``."""
    return isinstance(value, dict) and "ros__parameters" in value


def _is_ros_file(data: dict[Any, Any]) -> bool:
    return any(_is_ros_section(v) for v in data.values())


def _unwrap_ros(data: dict[Any, Any]) -> dict[Any, Any]:
    """Return the ros__parameters block of a ROS parameter file, or the mapping itself."""
    wrapped = {k: v for k, v in data.items() if _is_ros_section(v)}
    if not wrapped:
        return data
    if len(wrapped) != len(data) or len(wrapped) > 1:
        raise BadInputError(
            f"expected one '<node>: ros__parameters:' section, found top-level keys {sorted(map(str, data))}"
        )
    (node, block), = wrapped.items()
    extra = sorted(str(k) for k in block if k != "ros__parameters")
    if extra:
        raise BadInputError(f"unexpected keys beside ros__parameters under {node!r}: {', '.join(extra)}")
    params = block["ros__parameters"]
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise BadInputError(f"ros__parameters under {node!r} must be a mapping")
    return params


def _flatten(params: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        # An items map is a value, not a section to descend into.
        if isinstance(v, Mapping) and _ALIASES.get(key, key) != "tags.items":
            nested = _flatten(v, f"{key}.")
        else:
            nested = {key: v}
        for nk, nv in nested.items():
            if nk in out:
                raise BadInputError(f"setting {nk} is given twice")
            out[nk] = nv
    return out


def _coerce(key: str, raw: Any, ros_file: bool = False) -> Any:
    tp = _FIELD_TYPES[key]
    if key == "tags.items":
        if raw is None:
            return {}
        if ros_file and not isinstance(raw, list):
            # rcl makes a map items.mug, items.box (the node starts with no items); a string the node refuses
            raise BadInputError(f"items must be a list of 'name=id' strings in a ROS parameter file, as the node "
                                f"reads it (e.g. [\"mug=3\"]), not {raw!r}")
        return parse_items(raw)
    if ros_file and tp is float and isinstance(raw, int) and not isinstance(raw, bool):
        raise BadInputError(f"{key} takes a float: write {raw}.0, as the node (rclpy) refuses an integer for it")
    if tp is bool and isinstance(raw, bool):
        return raw
    if tp == _STR_LIST and isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return tuple(x.strip() for x in raw if x.strip())  # [""] is how ROS files spell an empty list
    if not isinstance(raw, bool) and raw is not None:  # YAML `yes`/`~` are never a number or a path here
        if tp is float and isinstance(raw, (int, float)):
            return float(raw)
        if tp in (int, str) and isinstance(raw, tp):
            return raw
    raise BadInputError(f"{key} must be {_TYPE_WORDS[tp]}, got {raw!r}")


def yaml_error(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: what it found and where (its own message quotes the lines around it)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem
