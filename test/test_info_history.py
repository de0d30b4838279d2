"""core.info_history: which camera_info goes with an image."""

from __future__ import annotations

from spatial_memory_ros.core.info_history import InfoHistory


def test_the_info_of_the_images_stamp_wins_over_a_newer_one() -> None:
    infos: InfoHistory[str] = InfoHistory()
    assert infos.pick(1.0) is None
    for stamp, zoom in ((1.0, "x1"), (1.1, "x2"), (1.2, "x3")):
        infos.add(stamp, zoom)
    assert [infos.pick(t) for t in (1.0, 1.1, 1.2)] == ["x1", "x2", "x3"]
    assert infos.pick(1.15) == "x2"  # no info of that stamp: the one in force then
    assert infos.pick(5.0) == "x3"
    assert infos.pick(0.5) == "x3"  # older than every info (another clock): the newest, as pairing by arrival


def test_unstamped_or_repeated_stamps_give_the_newest_of_them() -> None:
    infos: InfoHistory[str] = InfoHistory()
    infos.add(0.0, "first")
    infos.add(0.0, "second")  # a driver that stamps camera_info 0
    assert infos.pick(1234.5) == "second"
    assert infos.pick(0.0) == "second"


def test_only_the_last_few_are_kept() -> None:
    infos: InfoHistory[int] = InfoHistory(size=3)
    for i in range(10):
        infos.add(float(i), i)
    assert infos.pick(2.0) == 9  # forgotten: the newest
    assert infos.pick(7.0) == 7
