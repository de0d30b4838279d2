"""bench.ceiling.SeenTruth: which memory queries the camera had answered, from the truth alone."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from spatial_memory_ros.bench.ceiling import SeenTruth, lies_on_floor

HOME = np.array([2.0, 3.0, 0.0])


def _frame(x: float, y: float, *, px: int = 500, on_floor: bool = True) -> SimpleNamespace:
    """A SimFrame stand-in with one item, "box", at (x, y) on the floor (NaN while carried unseen)."""
    position = np.array([x, y, 0.0]) if on_floor else np.full(3, np.nan)
    item = SimpleNamespace(position=position, home=HOME, on_floor=on_floor, visible_px=px)
    return SimpleNamespace(truth=SimpleNamespace(items={"box": item}))


def _asked(seen: SeenTruth, frame: SimpleNamespace) -> tuple[float, float]:
    """Ask about "box" as the bench does; the (layout, retrieval) shares so far."""
    seen.query("box", lies_on_floor(frame.truth.items["box"]))  # type: ignore[arg-type]
    s = seen.summary()
    return s.layout, s.retrieval


def test_a_home_never_shown_is_not_seen_until_it_is() -> None:
    seen = SeenTruth(radius_m=0.5, min_item_px=100)
    away = _frame(8.0, 3.0)
    seen.add(away)  # type: ignore[arg-type]
    assert _asked(seen, away) == (0.0, 1.0)  # where it is now was shown; its home was not
    home = _frame(2.3, 3.0)  # within 0.5 m of home
    seen.add(home)  # type: ignore[arg-type]
    assert _asked(seen, home) == (0.5, 1.0)  # the second query is seen on both counts
    assert seen.summary().n_layout == 2 and seen.summary().n_retrieval == 2


def test_too_few_pixels_is_not_seen() -> None:
    seen = SeenTruth(radius_m=0.5, min_item_px=100)
    far = _frame(2.0, 3.0, px=99)
    seen.add(far)  # type: ignore[arg-type]
    assert _asked(seen, far) == (0.0, 0.0)


def test_a_move_unseen_makes_the_retrieval_query_unseen() -> None:
    seen = SeenTruth(radius_m=0.5, min_item_px=100)
    seen.add(_frame(2.0, 3.0))  # type: ignore[arg-type]
    carried = _frame(0.0, 0.0, px=0, on_floor=False)
    seen.add(carried)  # type: ignore[arg-type]
    _asked(seen, carried)
    assert seen.summary().n_retrieval == 0  # carried: no retrieval query, a layout one
    put_down = _frame(6.0, 1.0, px=0)  # out of view where it was put
    seen.add(put_down)  # type: ignore[arg-type]
    assert _asked(seen, put_down) == (1.0, 0.0)  # its home stays known; where it is now was never shown
    slid = _frame(6.0, 1.0, px=300)
    seen.add(slid)  # type: ignore[arg-type]
    assert _asked(seen, slid) == (1.0, 0.5)
    nudged = _frame(6.2, 1.0, px=0)  # moved 0.2 m on the floor while out of view
    seen.add(nudged)  # type: ignore[arg-type]
    assert _asked(seen, nudged)[1] == 1 / 3


def test_items_never_asked_about_are_not_counted() -> None:
    seen = SeenTruth(radius_m=0.5, min_item_px=100)
    seen.add(_frame(2.0, 3.0))  # type: ignore[arg-type]  # shown at home, but no query about it
    assert seen.summary().n_layout == 0 and seen.summary().layout == 0.0


def test_the_queries_that_need_a_memory_are_counted_apart() -> None:
    """The hard queries' share the camera showed: the ceiling for R@1 hard."""
    seen = SeenTruth(radius_m=0.5, min_item_px=100)
    seen.add(_frame(6.0, 1.0, px=300))  # type: ignore[arg-type]  # shown where it lies
    seen.query("box", True, hard=True)
    seen.add(_frame(8.0, 1.0, px=0))  # type: ignore[arg-type]  # moved out of view
    seen.query("box", True, hard=True)
    seen.query("box", True)
    s = seen.summary()
    assert (s.n_retrieval, s.n_retrieval_hard, s.retrieval_hard) == (3, 2, 0.5)
