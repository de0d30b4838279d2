"""settings_io: the node's parameter YAML -> PipelineConfig, and the items 'name=id' list."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from spatial_memory_ros.core.config import PipelineConfig, TagConfig
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.settings_io import (
    NODE_ONLY_KEYS,
    config_from_params,
    load_pipeline_config,
    parse_items,
)

NODE_YAML = Path(__file__).resolve().parents[1] / "config" / "spatial_memory.yaml"


def load(tmp_path: Path, text: str, **kwargs) -> PipelineConfig:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_pipeline_config(path, **kwargs)


def test_ros_parameter_file_with_flat_dotted_keys(tmp_path: Path) -> None:
    config = load(tmp_path, """
/**:
  ros__parameters:
    use_sim_time: false
    tag_size_m: 0.1
    items: ["mug=3", "pallet_A=17"]
    change.threshold: 25.0
    tracker.min_hits: 5
    memory.db_path: /tmp/mem.db
""")
    assert config.tags.tag_size_m == 0.1
    assert config.tags.items == {"mug": 3, "pallet_A": 17}
    assert config.change.threshold == 25.0 and isinstance(config.change.threshold, float)
    assert config.tracker.min_hits == 5
    assert config.memory.db_path == "/tmp/mem.db"
    assert config.change.stable_frames == PipelineConfig().change.stable_frames  # untouched -> default


def test_nested_maps_plain_mapping_and_items_map(tmp_path: Path) -> None:
    config = load(tmp_path, """
tags:
  tag_size_m: 0.2
  items: {mug: 3}
change: {threshold: 40.5, stable_frames: 7}
memory:
  place_radius_m: 0.25
""")
    assert config.tags == TagConfig(tag_size_m=0.2, items={"mug": 3})
    assert (config.change.threshold, config.change.stable_frames) == (40.5, 7)
    assert config.memory.place_radius_m == 0.25


def test_a_named_node_section_and_empty_files(tmp_path: Path) -> None:
    named = load(tmp_path, "spatial_memory:\n  ros__parameters:\n    tracker.min_iou: 0.3\n")
    assert named.tracker.min_iou == 0.3
    assert load(tmp_path, "") == PipelineConfig()
    assert load(tmp_path, "/**:\n  ros__parameters:\n") == PipelineConfig()
    assert load(tmp_path, 'items: [""]\n').tags.items == {}  # how ROS files spell an empty string array


def test_the_node_parameter_file_loads_as_it_is() -> None:
    """`run --config config/spatial_memory.yaml` must work: the node's own keys are skipped, not refused."""
    params = yaml.safe_load(NODE_YAML.read_text())["/**"]["ros__parameters"]
    config = load_pipeline_config(NODE_YAML)
    assert config.tags.items == parse_items(params["items"])
    assert config.memory.db_path == params["memory.db_path"]


def test_node_only_keys_match_the_node() -> None:
    params = pytest.importorskip("spatial_memory_ros.ros.params", reason="needs rclpy")
    node_fields = {f.name for f in dataclasses.fields(params.NodeSettings)} - {"pipeline"}
    assert node_fields | {"use_sim_time", "start_type_description_service"} == NODE_ONLY_KEYS


def test_rclpys_own_parameters_are_skipped_as_the_node_skips_them(tmp_path: Path) -> None:
    """README's QoS section puts qos_overrides in the params file: the offline tools refused the file."""
    config = load(tmp_path, """
/**:
  ros__parameters:
    start_type_description_service: true
    qos_overrides./image.subscription.reliability: reliable
    qos_overrides:
      /camera_info:
        subscription:
          depth: 5
    tracker.min_hits: 4
""")
    assert config.tracker.min_hits == 4


def test_a_ros_parameter_file_is_read_as_the_node_reads_it(tmp_path: Path) -> None:
    """An integer for a float setting, or items as a map: the offline tools took them, the node refused the file
    (rclpy: INTEGER for a DOUBLE) or started with no items (rcl made the map items.mug, items.box). A plain
    mapping, which the node never reads, still takes both."""
    with pytest.raises(BadInputError, match="change.threshold takes a float: write 25.0"):
        load(tmp_path, "/**:\n  ros__parameters:\n    change.threshold: 25\n")
    with pytest.raises(BadInputError, match="items must be a list of 'name=id' strings in a ROS parameter file"):
        load(tmp_path, "spatial_memory:\n  ros__parameters:\n    items: {mug: 3}\n")
    assert load(tmp_path, "change.threshold: 25\nitems: {mug: 3}\n").change.threshold == 25.0


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"params.yaml: unknown settings: change.treshold, foo") as e:
        load(tmp_path, "/**:\n  ros__parameters:\n    change.treshold: 3\n    foo: 1\n")
    assert "change.threshold" in str(e.value)  # the known keys are listed to spot the typo
    config = load(tmp_path, "image_topic: camera/image\nchange.threshold: 3\n", ignore_keys={"image_topic"})
    assert config.change.threshold == 3.0


@pytest.mark.parametrize(
    "text, match",
    [
        ("tracker.min_hits: 2.5\n", "tracker.min_hits must be an integer"),
        ("change.threshold: yes\n", "change.threshold must be a number"),
        ("memory.db_path: 3\n", "memory.db_path must be a string"),
        ("change.threshold: 300\n", r"change.threshold must be in \(0, 255\)"),  # PipelineConfig.validate
        ("change.still_head_scale: 5\n", r"change.still_head_scale must be in \[1, 4\]"),
        ("change.threshold: 3\nchange: {threshold: 4}\n", "change.threshold is given twice"),
        ("tag_size_m: 0.1\ntags: {tag_size_m: 0.2}\n", "tags.tag_size_m is given twice"),
        ("a:\n  ros__parameters: {}\nb:\n  ros__parameters: {}\n", "one '<node>: ros__parameters:' section"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("change: [unclosed\n", "not valid YAML"),
        ("items: [mug]\n", "'mug' must look like 'name=id'"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        load(tmp_path, text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no config file at"):
        load_pipeline_config(tmp_path / "nope.yaml")


def test_config_from_params_is_what_the_node_passes() -> None:
    config = config_from_params({"tag_size_m": 0.05, "items": ["a=1"], "memory.displaced_distance_m": 1.0})
    assert (config.tags.tag_size_m, config.tags.items) == (0.05, {"a": 1})
    assert config.memory.displaced_distance_m == 1.0


@pytest.mark.parametrize(
    "items, expected",
    [
        (["mug=3", "pallet_A=17"], {"mug": 3, "pallet_A": 17}),
        ([" mug = 3 ", ""], {"mug": 3}),
        ({"mug": 3, "box": "4"}, {"mug": 3, "box": 4}),
        ("mug=3,pallet_A=17", {"mug": 3, "pallet_A": 17}),
        ([], {}),
    ],
)
def test_parse_items(items, expected: dict[str, int]) -> None:
    assert parse_items(items) == expected


@pytest.mark.parametrize(
    "items, match",
    [
        (["mug"], "must look like 'name=id'"),
        (["mug=3=4"], "must look like 'name=id'"),
        (["=3"], "no item name"),
        (["mug=three"], "tag id must be a non-negative integer"),
        (["mug=-1"], "non-negative integer"),
        (["mug=587"], r"ids are 0..586"),
        ({"mug": True}, "must be an integer"),
        (["mug=3", "mug=4"], "'mug' is given twice"),
        (["mug=3", "cup=3"], "both 'mug' and 'cup' to tag id 3"),
        ([3], "must be a string"),
        (3, "must be a list"),
    ],
)
def test_parse_items_errors(items, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        parse_items(items)


@pytest.mark.parametrize("name", [" mug ", "  ", ""])
def test_tag_item_names_are_stripped_and_not_blank(name: str) -> None:
    """The item memory strips names: " mug " was stored as "mug", which names no tag, and a blank name made every
    frame that saw its tag fail (parse_items strips; a TagConfig built in Python did not)."""
    from spatial_memory_ros.core.config import PipelineConfig, TagConfig

    with pytest.raises(BadInputError, match="no spaces around them"):
        PipelineConfig(tags=TagConfig(items={name: 3, "book": 5})).validate()


def test_a_file_lays_its_settings_over_the_base_given(tmp_path: Path) -> None:
    """`evaluate --config` with only the change method set: over PipelineConfig() the detector went back to
    apriltag, and pets09 refused the file (cup ran with tags only)."""
    from spatial_memory_ros.evaluate.config import default_config

    path = tmp_path / "classical.yaml"
    path.write_text("change:\n  method: classical\n")
    config = load_pipeline_config(path, base=default_config())
    assert config.change.method == "classical"
    assert config.detector.backend == "coco" and not config.detector.apriltag_items
    assert load_pipeline_config(path).detector.backend == PipelineConfig().detector.backend


@pytest.mark.parametrize(("section", "name", "value", "match"), [
    ("tags", "tag_size_m", math.inf, r"^tag_size_m must be a finite number, got inf"),
    ("tracker", "max_age_s", math.inf, r"^tracker.max_age_s must be a finite number"),
    ("memory", "max_dwell_gap_s", math.nan, r"^memory.max_dwell_gap_s must be a finite number, got nan"),
    ("change", "pose_reset_translation_m", -1.0, r"^change.pose_reset_translation_m must be > 0"),
    ("change", "pose_reset_rotation_deg", 0.0, r"^change.pose_reset_rotation_deg must be > 0"),
])
def test_settings_no_frame_can_use_are_refused(section: str, name: str, value: float, match: str) -> None:
    """Accepted before: inf passed every "> 0", and a negative pose_reset_translation_m silently turned the
    classical change detector off (a change never marked)."""
    config = PipelineConfig()
    bad = dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **{name: value})})
    with pytest.raises(BadInputError, match=match):
        bad.validate()
