"""`spatial-memory locate` / `list` on a saved memory: answers, JSON, and files left untouched."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from tum_scene import TAG_Z_M, write_tum_folder

from spatial_memory_ros.cli.main import main
from spatial_memory_ros.core.config import MemoryConfig
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.types import ItemObservation
from spatial_memory_ros.io.outputs import answer_to_dict

HAVE_PIPELINE = importlib.util.find_spec("spatial_memory_ros.core.pipeline") is not None


def observe(memory: ItemMemory, item: str, at: tuple[float, float, float], start: float, n: int) -> None:
    """n sightings of item at `at`, 10 s apart from `start` (s)."""
    memory.observe([ItemObservation(item, np.array(at), stamp=start + 10.0 * k) for k in range(n)])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A memory where the mug lived on the desk (0, 0, 0) for 100 s and was just moved to (2, 0, 0)."""
    path = tmp_path / "memory.db"
    with ItemMemory(MemoryConfig(db_path=str(path)), MemoryStore(path)) as memory:
        observe(memory, "mug", (0.0, 0.0, 0.0), 0.0, 11)
        observe(memory, "mug", (2.0, 0.0, 0.0), 110.0, 2)
        observe(memory, "box", (1.0, 1.0, 0.0), 0.0, 3)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_locate_prints_a_readable_answer(db: Path, capsys) -> None:
    assert main(["locate", "mug", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mug (map frame, m)")
    assert "current  (+2.000, +0.000, +0.000)" in out
    assert "usual    (+0.000, +0.000, +0.000)" in out
    assert "DISPLACED: 2.00 m from its usual place" in out
    assert "also found at:" in out  # the new place is an alternative to the usual one


def test_locate_json_is_the_answer_dict(db: Path, capsys) -> None:
    assert main(["locate", "mug", "--db", str(db), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with ItemMemory(MemoryConfig(), MemoryStore(db, on_corrupt="raise")) as memory:
        expected = answer_to_dict(memory.locate("mug"))
    assert printed == json.loads(json.dumps(expected))
    assert printed["displaced"] is True and printed["current"]["position"] == [2.0, 0.0, 0.0]


def test_locate_uses_the_configured_displacement_distance(db: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "params.yaml").write_text("memory.displaced_distance_m: 5.0\n")
    assert main(["locate", "mug", "--db", str(db), "--json", "--config", str(tmp_path / "params.yaml")]) == 0
    assert json.loads(capsys.readouterr().out)["displaced"] is False


def test_list(db: Path, capsys) -> None:
    assert main(["list", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"2 items in {db} (map frame, m)"
    assert lines[1].split()[0] == "box" and "usual place" in lines[1]
    assert lines[2].split()[0] == "mug" and "DISPLACED 2.00 m" in lines[2]
    assert main(["list", "--db", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["frame_id"] == "map" and [i["item"] for i in doc["items"]] == ["box", "mug"]


def test_unknown_item_exits_2_listing_known_items(db: Path, capsys) -> None:
    before = digest(db)
    assert main(["locate", "cup", "--db", str(db)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "spatial-memory: error: unknown item 'cup'; known items: box, mug"
    assert main(["locate", " ", "--db", str(db)]) == 2
    assert "item name is empty" in capsys.readouterr().err
    assert digest(db) == before  # a query writes nothing


def test_missing_db_exits_2_and_is_not_created(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "sub" / "memory.db"
    assert main(["locate", "mug", "--db", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"spatial-memory: error: no memory database at {missing}"
    assert main(["list", "--db", str(missing)]) == 2
    assert not missing.exists() and not missing.parent.exists()


def test_corrupt_db_exits_2_and_is_left_where_it_is(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "memory.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    before = digest(bad)
    assert main(["locate", "mug", "--db", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["memory.db"]  # never moved aside
    assert digest(bad) == before


@pytest.mark.skipif(not HAVE_PIPELINE, reason="core.pipeline not written yet")
def test_locate_on_a_db_written_by_run(tmp_path: Path, capsys) -> None:
    write_tum_folder(tmp_path / "seq", n_frames=8, moving=False)
    assert main(["run", str(tmp_path / "seq"), "--out", str(tmp_path / "out"), "--items", "mug=3"]) == 0
    items_json = json.loads((tmp_path / "out" / "items.json").read_text())
    capsys.readouterr()

    assert main(["locate", "mug", "--db", str(tmp_path / "out" / "memory.db"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(answer["current"]["position"], [0.0, 0.0, TAG_Z_M], atol=0.02)
    assert answer == items_json["items"][0]  # the offline answer has one shape wherever it is printed

    assert main(["locate", "tag_5", "--db", str(tmp_path / "out" / "memory.db")]) == 2
    assert "known items: mug" in capsys.readouterr().err


def test_list_and_locate_never_write_the_file(db: Path, tmp_path: Path, capsys) -> None:
    """An empty file stays empty (it was given our schema), an older schema is read through a migrated copy (the
    file was migrated in place), and a memory whose newest commits are still in its -wal is answered in full."""
    import sqlite3
    from contextlib import closing

    from test_store import _V1_SCHEMA

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert main(["list", "--db", str(empty)]) == 0
    assert "no items" in capsys.readouterr().out and empty.stat().st_size == 0
    old = tmp_path / "v1.db"
    with closing(sqlite3.connect(old)) as conn:
        conn.executescript(_V1_SCHEMA)
    before = digest(old)
    assert main(["locate", "mug", "--db", str(old)]) == 0
    assert "mug" in capsys.readouterr().out and digest(old) == before
    with closing(sqlite3.connect(old)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    with ItemMemory(MemoryConfig(db_path=str(db)), MemoryStore(db)) as memory:  # a node running: its -wal
        observe(memory, "keys", (3.0, 0.0, 0.0), 200.0, 2)
        main_file = digest(db)
        assert main(["list", "--db", str(db)]) == 0
        assert "keys" in capsys.readouterr().out and digest(db) == main_file


def test_a_missing_item_is_not_said_to_be_at_its_usual_place() -> None:
    """Its usual place was seen empty: the answer said MISSING and, a line below, "at its usual place"."""
    import numpy as np

    from spatial_memory_ros.cli.query import format_answer
    from spatial_memory_ros.core.types import ItemAnswer, ItemLocation

    here = ItemLocation(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]), 1.0, 5.0, 10, 30.0)
    text = format_answer(ItemAnswer("mug", here, here, False, 0.0, [], missing=True))
    assert "MISSING" in text and "at its usual place" not in text
    assert "at its usual place" in format_answer(ItemAnswer("mug", here, here, False, 0.0, []))


def test_list_says_missing_and_predicted_not_usual_place() -> None:
    """`list` said "usual place" for an item whose last place was seen empty, where `locate` said MISSING."""
    from spatial_memory_ros.cli.query import format_items
    from spatial_memory_ros.core.types import ItemAnswer, ItemLocation

    here = ItemLocation(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]), 1.0, 5.0, 10, 30.0)
    lines = format_items([ItemAnswer("cup", here, here, False, 0.0, [], missing=True),
                          ItemAnswer("key", here, here, False, 0.0, [], missing=True, current_inferred=True),
                          ItemAnswer("mug", here, here, False, 0.0, [], current_inferred=True),
                          ItemAnswer("pen", here, here, False, 0.0, [])], "m.db").splitlines()[1:]
    assert ["MISSING, last seen" in lines[0], "MISSING, likeliest" in lines[1], "PREDICTED back" in lines[2],
            "usual place" in lines[3]] == [True] * 4
    assert not any("usual place" in line for line in lines[:3])


def test_locate_and_list_name_the_frame_the_file_records(db: Path, capsys) -> None:
    """They said "map frame" whatever frame the positions were in; the file now records it (MemoryStore)."""
    assert main(["locate", "mug", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("mug (map frame, m)")  # a file that does not say: map
    with MemoryStore(db) as store:
        store.claim_frame("odom")
    assert main(["locate", "mug", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("mug (odom frame, m)")
    assert main(["locate", "mug", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frame_id"] == "odom"
    assert main(["list", "--db", str(db)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"2 items in {db} (odom frame, m)"
    assert main(["list", "--db", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["frame_id"] == "odom" and {i["frame_id"] for i in doc["items"]} == {"odom"}
