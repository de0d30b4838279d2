"""evaluate.people_change: the change mask scored against people's boxes (PETS09's box-level truth)."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.evaluate.people_change import FOUND, PeopleChangeScore


def _mask(h: int = 100, w: int = 200) -> np.ndarray:
    return np.zeros((h, w), bool)


def test_a_mask_on_the_person_covers_and_finds_it_with_nothing_false() -> None:
    score = PeopleChangeScore()
    mask = _mask()
    mask[20:60, 30:50] = True  # exactly the box
    score.add(mask, np.array([[30, 20, 50, 60]]), np.array([True]))
    s = score.summary()
    assert s["boxes"] == 1 and s["box_coverage_mean"] == pytest.approx(1.0)
    assert s["box_found_fraction"] == 1.0 and s["false_px_per_frame"] == 0.0 and s["off_people_fraction"] == 0.0


def test_pixels_off_people_count_as_false_but_the_grown_margin_does_not() -> None:
    score = PeopleChangeScore()
    mask = _mask()
    mask[61, 40] = True  # 1 px below a 40 px tall box: inside its 10 % margin
    mask[90, 150:160] = True  # 10 px far from anyone
    score.add(mask, np.array([[30, 20, 50, 60]]), np.array([True]))
    s = score.summary()
    assert s["false_px_per_frame"] == 10.0
    assert s["off_people_fraction"] == pytest.approx(10 / 11)
    assert s["box_found_fraction"] == 0.0


def test_coverage_below_the_threshold_is_not_found_and_unscored_boxes_only_excuse_pixels() -> None:
    score = PeopleChangeScore()
    mask = _mask()
    mask[20:60, 30:33] = True  # 3 of 20 columns: 15 % of the box
    mask[0:10, 100:120] = True  # on a don't-care person
    boxes = np.array([[30, 20, 50, 60], [100, 0, 120, 10]])
    score.add(mask, boxes, np.array([True, False]))
    s = score.summary()
    assert s["boxes"] == 1  # the don't-care box is not scored
    assert s["box_coverage_mean"] == pytest.approx(0.15) and FOUND > 0.15
    assert s["box_found_fraction"] == 0.0
    assert s["false_px_per_frame"] == 0.0  # ... but its pixels are not false


def test_frames_without_people_and_tiny_or_outside_boxes() -> None:
    score = PeopleChangeScore()
    mask = _mask()
    mask[:2, :50] = True
    score.add(mask, np.zeros((0, 4)), np.zeros(0, bool))  # nobody: every mask pixel is false
    score.add(_mask(), np.array([[5, 5, 10, 10], [300, 0, 320, 50]]), np.array([True, True]))  # tiny; outside
    s = score.summary()
    assert s["frames"] == 2 and s["boxes"] == 0
    assert s["false_px_per_frame"] == 50.0 and s["box_coverage_mean"] == 0.0


def test_a_mask_that_is_not_boolean_is_refused() -> None:
    with pytest.raises(ValueError, match="bool"):
        PeopleChangeScore().add(np.zeros((10, 10), np.uint8), np.zeros((0, 4)), np.zeros(0, bool))


def test_found_is_split_by_box_height() -> None:
    score = PeopleChangeScore()
    mask = _mask(200, 200)
    mask[0:100, 0:20] = True  # covers the tall person only
    boxes = np.array([[0, 0, 20, 100], [100, 0, 120, 40]])  # 100 px and 40 px tall
    score.add(mask, boxes, np.array([True, True]))
    s = score.summary()
    assert s["box_found_fraction_by_height"] == {"under_90px": 0.0, "90px_and_over": 1.0}
    assert s["boxes_by_height"] == {"under_90px": 1, "90px_and_over": 1}
