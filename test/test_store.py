"""MemoryStore: round trips, atomic commits, corrupt files, and durability against kill -9."""

from __future__ import annotations

import logging
import math
import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from spatial_memory_ros.core.errors import BadInputError, CorruptStoreError, SpatialMemoryError
from spatial_memory_ros.core.store import (
    SCHEMA_VERSION,
    ItemState,
    LastObservation,
    MemoryStore,
    PlaceRecord,
)
from spatial_memory_ros.core.store_file import is_corruption

REPO = Path(__file__).resolve().parents[1]
PLACE_FIELDS = (
    "place_id", "position", "orientation", "dwell_s", "observations", "first_seen", "last_seen", "seen_empty",
    "returns", "stay_sightings", "since_stay",
)
GARBAGE = b"this is not a database\x00\xff" * 300


def state(item: str, n_places: int = 2, stamp: float = 10.0) -> ItemState:
    places = [
        PlaceRecord(
            place_id=k,
            position=np.array([k, 2.0 * k, 0.5]),
            orientation=np.array([0.0, 0.0, np.sin(0.1 * k), np.cos(0.1 * k)]),
            dwell_s=100.0 * k,
            observations=3 + k,
            first_seen=float(k),
            last_seen=stamp,
            seen_empty=-np.inf if k % 2 else stamp + k,
            returns=k,
            stay_sightings=2 * k,
            since_stay=k % 2 == 1,
        )
        for k in range(n_places)
    ]
    current = LastObservation(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 0, 1.0]), stamp, 0.9, n_places - 1)
    return ItemState(item, places, current, next_place_id=n_places + 5)


def assert_same_state(a: ItemState, b: ItemState) -> None:
    assert (a.item, a.next_place_id, len(a.places)) == (b.item, b.next_place_id, len(b.places))
    for field in ("position", "orientation", "stamp", "confidence", "place_id"):
        np.testing.assert_array_equal(getattr(a.current, field), getattr(b.current, field))
    for pa, pb in zip(a.places, b.places, strict=True):
        for field in PLACE_FIELDS:
            np.testing.assert_array_equal(getattr(pa, field), getattr(pb, field))


def filled_db(path: Path) -> Path:
    with MemoryStore(path) as store:
        store.commit([state(f"item{k}", n_places=8) for k in range(40)])
    return path  # closed: the WAL is folded into the main file


@pytest.mark.parametrize("path", ["", ":memory:"])
def test_in_memory_store(path: str) -> None:
    with MemoryStore(path) as store:
        assert store.path is None and store.moved_aside_to is None
        store.commit([state("mug")])
        assert_same_state(store.load()["mug"], state("mug"))
        store.checkpoint()


def test_round_trip_across_reopen_and_missing_parent_dir(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("mug"), state("keys", n_places=1)])
        store.commit([state("mug", n_places=3, stamp=20.0)])  # replaces mug's places, keeps keys
    with MemoryStore(str(db)) as store:
        loaded = store.load()
    assert sorted(loaded) == ["keys", "mug"]
    assert_same_state(loaded["mug"], state("mug", n_places=3, stamp=20.0))
    assert_same_state(loaded["keys"], state("keys", n_places=1))


def test_forgotten_places_are_deleted(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.db") as store:
        store.commit([state("mug", n_places=4)])
        fewer = state("mug", n_places=4)
        fewer.places = fewer.places[2:]
        store.commit([fewer])
        assert [p.place_id for p in store.load()["mug"].places] == [2, 3]


def test_wal_mode_and_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        store.commit([state("mug")])
        with closing(sqlite3.connect(db)) as other:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        wal = db.with_name("m.db-wal")
        assert wal.stat().st_size > 0
        store.checkpoint()
        assert wal.stat().st_size == 0


def test_commit_is_all_or_nothing() -> None:
    with MemoryStore(":memory:") as store:
        store.commit([state("mug")])
        broken = state("keys", stamp=float("nan"))  # SQLite stores NaN as NULL: violates NOT NULL mid-write
        with pytest.raises(SpatialMemoryError, match="cannot write"):
            store.commit([state("mug", n_places=5, stamp=99.0), broken])
        loaded = store.load()
        assert list(loaded) == ["mug"]
        assert_same_state(loaded["mug"], state("mug"))
        store.commit([state("wallet")])  # still usable: no transaction left open
        assert sorted(store.load()) == ["mug", "wallet"]


def test_reset(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        store.commit([state("mug"), state("keys")])
        store.reset()
        assert store.load() == {}
    with MemoryStore(db, on_corrupt="raise") as store:
        assert store.load() == {}


def test_closed_store_raises() -> None:
    store = MemoryStore(":memory:")
    store.close()
    store.close()  # idempotent
    with pytest.raises(SpatialMemoryError, match="closed"):
        store.load()


def test_created_in_one_thread_used_in_another(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.db")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store.commit([state("mug")])
            store.load()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread to fail the test
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    store.close()
    assert errors == []


def test_zero_byte_file_is_an_empty_database(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    db.touch()
    with MemoryStore(db, on_corrupt="raise") as store:
        assert store.load() == {} and store.moved_aside_to is None


def _truncated(path: Path, keep: float) -> bytes:
    data = filled_db(path).read_bytes()
    return data[: int(len(data) * keep)]


def _foreign(path: Path, sql: str) -> bytes:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(sql)
    return path.read_bytes()


def _future_version(path: Path) -> bytes:
    filled_db(path)
    return _foreign(path, "UPDATE schema_version SET version = 99;")


def _a_byte_of(path: Path, where: str, find: bytes, new: int) -> bytes:
    """filled_db with one byte changed: of `find` in the page of table `where` (its root page), or, where is "",
    anywhere in the file. SQLite checks pages and indexes, not values: these pass integrity_check or look like a
    damaged index only."""
    filled_db(path)
    data = bytearray(path.read_bytes())
    start, end = 0, len(data)
    if where:
        with closing(sqlite3.connect(path)) as conn:
            root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (where,)).fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        start, end = (root - 1) * size, root * size
    at = data.find(find, start, end)
    assert at >= 0
    data[at] = new
    return bytes(data)


BAD_FILES = {
    "garbage": lambda p: GARBAGE,
    "truncated_header": lambda p: _truncated(p, 0.01),
    "truncated_half": lambda p: _truncated(p, 0.5),
    "foreign_schema": lambda p: _foreign(p, "CREATE TABLE notes (id INTEGER, text TEXT);"),
    "future_version": _future_version,
    # a hand edit: load() met float("1,5") and the node did not start (ValueError), the file left in place
    "text_in_a_number_column": lambda p: _foreign(filled_db(p), "UPDATE items SET x = '1,5' WHERE item = 'item3';"),
    # a damaged byte in the stored CREATE TABLE: SQLite's message quoting it raised UnicodeDecodeError
    "schema_text_not_utf8": lambda p: _a_byte_of(p, "", b"NOT NULL", 0xC1),
    # a damaged byte in an item's name: "Could not decode to UTF-8" at load, the node did not start
    "item_name_not_utf8": lambda p: _a_byte_of(p, "items", b"item3", 0xC1),
    # "item3" -> "jtem3" in its row only: read as index damage, the index rebuilt to agree, and item3's places were
    # dropped without a word at its next sighting ("nothing lost", the log said)
    "item_row_renamed": lambda p: _a_byte_of(p, "items", b"item3", ord("j")),
    # a hand edit: an infinity in a count is stored as a REAL there; load() raised OverflowError (a traceback, the
    # node in a restart loop, the file left in place)
    "infinity_in_a_count": lambda p: _foreign(filled_db(p), "UPDATE places SET observations = 9e999"),
    # and a fraction there was read as its whole part without a word
    "fraction_in_an_id": lambda p: _foreign(filled_db(p), "UPDATE items SET settled = 1.5 WHERE item = 'item3';"),
    # a damaged type byte of a table's name in SQLite's own table list: sorted() met text and bytes (TypeError,
    # the node did not start, the file left in place)
    "table_name_not_text": lambda p: _foreign(filled_db(p), "PRAGMA writable_schema = ON; UPDATE sqlite_master "
                                              "SET name = CAST(name AS BLOB) WHERE name = 'items';"),
    # the clock's type was not checked: the store opened and ItemMemory raised TypeError in math.isfinite
    "clock_not_a_number": lambda p: _foreign(filled_db(p), "UPDATE schema_version SET clock = 'x';"),
    # a stored time of infinity loaded, became the memory's clock, and every later commit failed (NaN dwell times)
    "infinite_time": lambda p: _foreign(filled_db(p), "UPDATE items SET stamp = 9e999 WHERE item = 'item3';"),
    # header byte 18, the file format's write version, above 2: SQLite opens it read-only, and the store blamed
    # the file's permissions
    "newer_file_format": lambda p: _a_header_byte(p, 18, 3),
}


def _a_header_byte(path: Path, at: int, value: int) -> bytes:
    data = bytearray(filled_db(path).read_bytes())
    data[at] = value
    return bytes(data)


def _write_bad(path: Path, kind: str) -> bytes:
    content = BAD_FILES[kind](path)
    for side in path.parent.glob(path.name + "*"):
        side.unlink()
    path.write_bytes(content)
    return content


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_is_moved_aside(tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "memory.db"
    content = _write_bad(db, kind)
    with caplog.at_level(logging.ERROR, logger="spatial_memory_ros.core.store"):
        store = MemoryStore(db)
    moved = store.moved_aside_to
    assert moved is not None and moved.name.startswith("memory.db.corrupt-") and moved.name.endswith("Z")
    assert moved.read_bytes() == content
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert str(db) in caplog.text and str(moved) in caplog.text
    # the fresh store works and survives a reopen
    store.commit([state("mug")])
    store.close()
    with MemoryStore(db, on_corrupt="raise") as reopened:
        assert list(reopened.load()) == ["mug"]
    assert moved.read_bytes() == content


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_raises_and_is_left_untouched(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "memory.db"
    content = _write_bad(db, kind)
    mtime = db.stat().st_mtime_ns
    with pytest.raises(CorruptStoreError) as info:
        MemoryStore(db, on_corrupt="raise")
    assert str(db) in str(info.value) and "delete" in str(info.value)
    assert db.read_bytes() == content and db.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.db"]  # no renames, no -wal/-shm left


def test_unopenable_path_is_not_moved_aside(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    db.mkdir()  # not a database's fault: permissions, a directory, a lock
    with pytest.raises(CorruptStoreError, match="cannot open"):
        MemoryStore(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.db"] and db.is_dir()


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    """memory.db_path under a file (or where no folder can be made): BadInputError naming the parameter, which
    the node turns into "cannot start: ..." instead of a traceback."""
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(BadInputError, match=r"cannot create the folder .*memory.db_path"):
        MemoryStore(tmp_path / "taken" / "sub" / "memory.db")
    assert (tmp_path / "taken").read_text() == "a file, not a folder"


@pytest.mark.parametrize(
    ("error", "corrupt"),
    [
        (sqlite3.DatabaseError("file is not a database"), True),  # as Python 3.10 raises them: no error code
        (sqlite3.OperationalError("unable to open database file"), False),
    ],
)
def test_corruption_is_told_apart_without_error_codes(error: sqlite3.DatabaseError, corrupt: bool) -> None:
    assert is_corruption(error) == corrupt


def test_moving_aside_never_overwrites(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    moved = []
    for k in range(3):  # within one second: the timestamps collide
        db.write_bytes(GARBAGE + bytes([k]))
        with MemoryStore(db) as store:
            moved.append(store.moved_aside_to)
        db.unlink()
    assert len(set(moved)) == 3
    assert [p.read_bytes()[-1] for p in moved if p is not None] == [0, 1, 2]


def test_wal_is_moved_with_its_database(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    db.write_bytes(GARBAGE)
    db.with_name("memory.db-wal").write_bytes(b"wal bytes")
    with MemoryStore(db) as store:
        moved = store.moved_aside_to
    assert moved is not None
    assert moved.with_name(moved.name + "-wal").read_bytes() == b"wal bytes"


@pytest.mark.parametrize("on_corrupt", ["move_aside", "raise"])
def test_orphaned_wal_is_not_replayed_into_a_new_database(tmp_path: Path, on_corrupt: str) -> None:
    db = tmp_path / "memory.db"
    wal = db.with_name("memory.db-wal")
    wal.write_bytes(b"wal bytes")
    if on_corrupt == "raise":
        with pytest.raises(CorruptStoreError, match="-wal file without its database"):
            MemoryStore(db, on_corrupt="raise")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.db-wal"]
        return
    with MemoryStore(db) as store:
        moved = store.moved_aside_to
        assert store.load() == {}
    assert moved is not None and moved.with_name(moved.name + "-wal").read_bytes() == b"wal bytes"


# The child records each committed call on stdout; everything it reported must survive kill -9.
CHILD = """
import sys
import numpy as np
from spatial_memory_ros.core.config import MemoryConfig
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.types import ItemObservation
memory = ItemMemory(MemoryConfig(), MemoryStore(sys.argv[1], on_corrupt="raise"))
i = int(memory.locate("counter").current.last_seen) + 1 if memory.items() else 0
while True:
    memory.observe([ItemObservation("counter", np.zeros(3), float(i)),
                    ItemObservation(f"n{i}", np.array([float(i), 0.0, 0.0]), float(i))])
    print(i, flush=True)
    i += 1
"""


def _run_and_kill(db: Path, commits: int) -> int:
    """Start the child, wait for ``commits`` reported commits, SIGKILL it; the last index it reported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    out, deadline = b"", time.monotonic() + 20.0
    try:
        while out.count(b"\n") < commits:
            assert time.monotonic() < deadline, "child did not report its commits in time"
            ready, _, _ = select.select([child.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(child.stdout.fileno(), 65536)
                assert chunk, f"child exited early: {child.stderr.read().decode() if child.stderr else ''}"
                out += chunk
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10.0)
        child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return int(out[: out.rindex(b"\n")].rsplit(b"\n", 1)[-1])


def test_kill_9_keeps_every_reported_commit(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    for round_ in range(3):
        reported = _run_and_kill(db, commits=150)
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        with MemoryStore(db, on_corrupt="raise") as store:
            states = store.load()
        numbered = sorted(int(name[1:]) for name in states if name.startswith("n"))
        assert numbered == list(range(len(numbered))), "a commit went missing"
        assert numbered[-1] >= reported >= 150 * (round_ + 1) - 1
        # both observations of a call are in one transaction: never one without the other
        assert states["counter"].current.stamp == numbered[-1]
        assert states["counter"].places[0].observations == numbered[-1] + 1


_V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE items (item TEXT PRIMARY KEY, next_place_id INTEGER NOT NULL, x REAL NOT NULL, y REAL NOT NULL,
    z REAL NOT NULL, qx REAL NOT NULL, qy REAL NOT NULL, qz REAL NOT NULL, qw REAL NOT NULL, stamp REAL NOT NULL,
    confidence REAL NOT NULL, place_id INTEGER NOT NULL);
CREATE TABLE places (item TEXT NOT NULL, place_id INTEGER NOT NULL, x REAL NOT NULL, y REAL NOT NULL,
    z REAL NOT NULL, qx REAL NOT NULL, qy REAL NOT NULL, qz REAL NOT NULL, qw REAL NOT NULL,
    dwell_s REAL NOT NULL, observations INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    PRIMARY KEY (item, place_id)) WITHOUT ROWID;
INSERT INTO schema_version VALUES (1);
INSERT INTO items VALUES ('mug', 2, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 50.0, 0.9, 1);
INSERT INTO places VALUES ('mug', 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 300.0, 30, 0.0, 40.0);
INSERT INTO places VALUES ('mug', 1, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 10.0, 3, 45.0, 50.0);
"""


def _versions_on_disk(path: Path) -> list[tuple[int]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT version FROM schema_version").fetchall()


def test_a_version_1_file_is_migrated_not_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(_V1_SCHEMA)
    with MemoryStore(path, on_corrupt="raise") as store:
        assert store.moved_aside_to is None
        states = store.load()
        places = states["mug"].places
        assert [p.dwell_s for p in places] == [300.0, 10.0]
        assert all(p.seen_empty == -np.inf and p.returns == 0 for p in places)
        assert states["mug"].current.arrived == 50.0  # unknown before version 3: the last sighting
        assert states["mug"].settled == states["mug"].current.place_id == 1  # before 4: where it was last seen
        places[1].seen_empty, places[1].returns = 60.0, 2
        states["mug"].current.arrived = 45.0
        store.commit([states["mug"]])
    with MemoryStore(path, on_corrupt="raise") as store:  # now the current version: read as is
        again = store.load()["mug"]
        assert (again.places[1].seen_empty, again.places[1].returns) == (60.0, 2)
        assert again.current.arrived == 45.0
    assert _versions_on_disk(path) == [(SCHEMA_VERSION,)]
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []


# what versions 2 and 3 added to version 1's tables
_V2_COLUMNS = ("ALTER TABLE places ADD COLUMN seen_empty REAL NOT NULL DEFAULT -1e300;"
               "ALTER TABLE places ADD COLUMN returns INTEGER NOT NULL DEFAULT 0;")
_V3_COLUMNS = _V2_COLUMNS + "ALTER TABLE items ADD COLUMN arrived REAL NOT NULL DEFAULT 0;"
_V4_COLUMNS = _V3_COLUMNS + "ALTER TABLE items ADD COLUMN settled INTEGER NOT NULL DEFAULT -1;"
_V5_COLUMNS = _V4_COLUMNS + ("ALTER TABLE places ADD COLUMN stay_sightings INTEGER NOT NULL DEFAULT 0;"
                             "ALTER TABLE places ADD COLUMN since_stay INTEGER NOT NULL DEFAULT 0;")


def _open_old_file(path: Path, script: str) -> MemoryStore:
    """A store opened on a file of version 1's tables changed by script: migrated, not moved aside."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(_V1_SCHEMA)
        conn.executescript(script)
    store = MemoryStore(path, on_corrupt="raise")
    assert store.moved_aside_to is None
    return store


def test_a_version_2_file_is_migrated_with_arrived_at_the_last_sighting(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    script = _V2_COLUMNS + "UPDATE places SET returns = 3 WHERE place_id = 0; UPDATE schema_version SET version = 2;"
    with _open_old_file(path, script) as store:
        mug = store.load()["mug"]
        assert mug.current.arrived == mug.current.stamp == 50.0 and mug.places[0].returns == 3
        assert mug.settled == mug.current.place_id == 1
    assert _versions_on_disk(path) == [(SCHEMA_VERSION,)]


def test_a_version_3_file_is_migrated_with_the_item_settled_where_last_seen(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    script = _V3_COLUMNS + "UPDATE items SET arrived = 45.0; UPDATE schema_version SET version = 3;"
    with _open_old_file(path, script) as store:
        mug = store.load()["mug"]
        assert mug.settled == mug.current.place_id == 1 and mug.current.arrived == 45.0
        mug.settled = 0
        store.commit([mug])
    with MemoryStore(path, on_corrupt="raise") as store:
        assert store.load()["mug"].settled == 0
    assert _versions_on_disk(path) == [(SCHEMA_VERSION,)]


def test_a_version_4_file_is_migrated_with_no_sighting_counted_and_every_place_known(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    script = _V4_COLUMNS + "UPDATE items SET arrived = 45.0, settled = 0; UPDATE schema_version SET version = 4;"
    with _open_old_file(path, script) as store:
        mug = store.load()["mug"]
        assert mug.settled == 0 and mug.current.arrived == 45.0
        assert [(p.stay_sightings, p.since_stay) for p in mug.places] == [(0, False), (0, False)]
        mug.places[1].stay_sightings, mug.places[1].since_stay = 2, True
        store.commit([mug])
    with MemoryStore(path, on_corrupt="raise") as store:
        assert [(p.stay_sightings, p.since_stay) for p in store.load()["mug"].places] == [(0, False), (2, True)]
    assert _versions_on_disk(path) == [(SCHEMA_VERSION,)]


def test_an_unknown_schema_version_is_still_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "v9.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(_V1_SCHEMA.replace("VALUES (1)", "VALUES (9)"))
    with MemoryStore(path) as store:
        assert store.moved_aside_to is not None and store.load() == {}


HOLDER = """
import sys, time
from spatial_memory_ros.core.store import MemoryStore
from test_store import state
store = MemoryStore(sys.argv[1])
store.commit([state("mug")])
print("ready", flush=True)
time.sleep(60)
"""


def test_one_writer_per_file_and_a_kill_frees_it(tmp_path: Path) -> None:
    """Two nodes on one file (two cameras, one params file) would write their own picture of each item over
    the other's: the second writer is refused, naming the holder; a reader that writes nothing is not; the
    kernel frees the file when the holder is killed, so a crash leaves no stale lock."""
    db = tmp_path / "memory.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "test"),
                                                        os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
        with pytest.raises(BadInputError, match=rf"in use by another process \(pid {holder.pid},.*memory.db_path"):
            MemoryStore(db)
        assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []
        with MemoryStore(db, exclusive=False) as reader:  # `spatial-memory locate` while the node runs
            assert list(reader.load()) == ["mug"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10.0)
        if holder.stdout is not None:
            holder.stdout.close()
    with MemoryStore(db) as store:  # the killed holder's lock went with it; its commit is there
        assert list(store.load()) == ["mug"]


def test_a_second_store_in_one_process_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    first = MemoryStore(db)
    with pytest.raises(BadInputError, match=f"in use by another process \\(pid {os.getpid()}"):
        MemoryStore(db)
    first.commit([state("mug")])
    first.close()
    with MemoryStore(db) as second:
        assert list(second.load()) == ["mug"]
    with MemoryStore(":memory:"), MemoryStore(":memory:"):  # RAM stores share nothing and lock nothing
        pass


def test_two_names_of_one_file_share_its_lock(tmp_path: Path) -> None:
    """A symlink to the database is the same file: its lock must be the same too, or two writers run on one file."""
    (tmp_path / "data").mkdir()
    (tmp_path / "other").mkdir()
    db = tmp_path / "data" / "memory.db"
    link = tmp_path / "other" / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("mug")])
        link.symlink_to(db)
        with pytest.raises(BadInputError, match="in use by another process"):
            MemoryStore(link)
    with MemoryStore(link) as store:  # and through the link, once free
        assert list(store.load()) == ["mug"]


def test_a_checkpoint_a_reader_keeps_from_finishing_is_an_error(tmp_path: Path) -> None:
    """SQLite reports a busy checkpoint in its result row, not as an error: save() said the file was
    self-contained while the -wal still held commits (a copy of the .db alone lacked them)."""
    db = tmp_path / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("mug")])
        with closing(sqlite3.connect(db, isolation_level=None)) as reader:  # e.g. `spatial-memory locate`
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM items").fetchall()  # a read snapshot, held
            store.commit([state("keys")])  # lands in the -wal after the reader's snapshot
            with pytest.raises(SpatialMemoryError, match="another connection is reading it"):
                store.checkpoint()
            reader.execute("COMMIT")
        store.checkpoint()  # the reader is done
        assert db.with_name("memory.db-wal").stat().st_size == 0
        assert sorted(store.load()) == ["keys", "mug"]


@pytest.mark.parametrize("on_corrupt", ["move_aside", "raise"])
def test_an_emptied_database_beside_its_wal_keeps_the_wal(tmp_path: Path, on_corrupt: str) -> None:
    """A database truncated from outside (a backup or restore tool) beside a -wal that holds commits: opening the
    empty file made SQLite delete that -wal, items and all, even for the read-only `list` / `locate`."""
    source = tmp_path / "source.db"
    store = MemoryStore(source)
    store.commit([state("mug")])  # in the -wal, not yet in the main file
    db = tmp_path / "memory.db"
    db.write_bytes(b"")
    wal_bytes = source.with_name("source.db-wal").read_bytes()
    assert wal_bytes
    db.with_name("memory.db-wal").write_bytes(wal_bytes)
    store.close()
    if on_corrupt == "raise":
        with pytest.raises(CorruptStoreError, match="empty database beside a -wal"):
            MemoryStore(db, on_corrupt="raise")
        assert db.with_name("memory.db-wal").read_bytes() == wal_bytes  # left untouched
        return
    with MemoryStore(db) as fresh:
        moved = fresh.moved_aside_to
        assert fresh.load() == {}
    assert moved is not None and moved.with_name(moved.name + "-wal").read_bytes() == wal_bytes


def test_a_bad_file_that_cannot_be_moved_aside_is_a_clear_error(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A file bind-mounted into a container cannot be renamed (EBUSY): say so, put the -wal back beside it."""
    db = tmp_path / "memory.db"
    db.write_bytes(GARBAGE)
    wal = db.with_name("memory.db-wal")
    wal.write_bytes(b"wal bytes")
    rename = Path.rename

    def busy(self: Path, target: Path) -> Path:  # type: ignore[override]
        if self == db:
            raise OSError(16, "Device or resource busy")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", busy)
    with pytest.raises(CorruptStoreError, match="could not be moved aside.*Device or resource busy.*by hand"):
        MemoryStore(db)
    assert db.read_bytes() == GARBAGE and wal.read_bytes() == b"wal bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.db", "memory.db-wal", "memory.db.lock"]


def damage_items_index(path: Path, item: str) -> None:
    """Rewrite one key in the items table's primary-key index (not in the table), as a bad sector or a torn write
    of that page would: quick_check still says ok, the index and its table disagree."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_items_1'").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    at = data.find(item.encode(), start, start + page_size)
    assert at >= 0
    data[at + len(item) - 1] += 1  # "bread" -> "breae": still in key order
    path.write_bytes(bytes(data))
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]


def test_damaged_indexes_are_rebuilt_and_nothing_is_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """quick_check does not compare an index with its table: with the items' key index damaged, load() read a
    wrong item name (the index covers the query) and commit() added a second row for one item."""
    db = tmp_path / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("apple"), state("bread"), state("cheese")])
    damage_items_index(db, "bread")
    with caplog.at_level(logging.WARNING), MemoryStore(db) as store:
        assert store.moved_aside_to is None
        assert sorted(store.load()) == ["apple", "bread", "cheese"]
        store.commit([state("bread", stamp=20.0)])
    assert "rebuilt them from its tables, nothing lost" in caplog.text
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert sorted(conn.execute("SELECT item, stamp FROM items")) == [
            ("apple", 10.0), ("bread", 20.0), ("cheese", 10.0)]


def test_a_reader_rebuilds_damaged_indexes_in_its_copy_only(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("apple"), state("bread")])
    damage_items_index(db, "bread")
    before = db.read_bytes()
    with MemoryStore(db, on_corrupt="raise", exclusive=False) as reader:
        assert sorted(reader.load()) == ["apple", "bread"]
    assert db.read_bytes() == before


def test_indexes_that_cannot_be_rebuilt_mean_a_corrupt_file(tmp_path: Path) -> None:
    """Two rows for one item (what the damaged index let a commit add): no primary key index can hold them."""
    db = tmp_path / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("apple"), state("bread")])
    damage_items_index(db, "bread")
    with closing(sqlite3.connect(db)) as conn:  # through the damaged index "bread" is not there: a second row
        conn.execute("INSERT INTO items SELECT * FROM items NOT INDEXED WHERE item = 'bread'")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM items NOT INDEXED WHERE item = 'bread'").fetchone()[0] == 2
    with pytest.raises(CorruptStoreError, match="integrity_check"):
        MemoryStore(db, on_corrupt="raise", exclusive=False)
    with MemoryStore(db) as store:
        assert store.moved_aside_to is not None and store.load() == {}


def cut_short_in_rollback_mode(path: Path) -> None:
    """Another program (the sqlite3 shell, a backup tool) writes the store in rollback-journal mode and is killed
    mid-transaction, its changes already spilled into the file: a hot <db>-journal holds the pages to restore."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    code = (f"import sqlite3, time\nc = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('PRAGMA cache_size=1'); c.execute('BEGIN IMMEDIATE'); c.execute('UPDATE items SET stamp = 99')\n"
            "c.execute('CREATE TABLE junk(x)')\n"
            "c.executemany('INSERT INTO junk VALUES (?)', [(b'x' * 1000,) for _ in range(2000)])\n"
            "print('ready', flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    child.kill()
    child.wait()
    assert path.with_name(path.name + "-journal").stat().st_size > 0


def test_a_write_cut_short_in_rollback_mode_is_rolled_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A read-only check could not roll a hot journal back: the node would not start ("attempt to write a
    readonly database"), though the file and its journal held every commit."""
    db = tmp_path / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("apple"), state("bread")])
    cut_short_in_rollback_mode(db)
    with caplog.at_level(logging.WARNING), MemoryStore(db) as store:
        assert store.moved_aside_to is None
        assert {k: v.current.stamp for k, v in store.load().items()} == {"apple": 10.0, "bread": 10.0}
        store.commit([state("bread", stamp=20.0)])
    assert "rolled back a write that was cut short" in caplog.text
    assert not db.with_name("memory.db-journal").exists()
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'junk'").fetchall() == []
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_reader_rolls_back_a_cut_short_write_in_a_copy(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("apple"), state("bread")])
    cut_short_in_rollback_mode(db)
    journal = db.with_name("memory.db-journal")
    before = db.read_bytes(), journal.read_bytes()
    with MemoryStore(db, on_corrupt="raise", exclusive=False) as reader:
        assert {k: v.current.stamp for k, v in reader.load().items()} == {"apple": 10.0, "bread": 10.0}
    assert (db.read_bytes(), journal.read_bytes()) == before


def test_a_file_that_is_not_a_database_beside_a_journal_is_moved_aside_with_it(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    db.write_bytes(GARBAGE)
    journal = db.with_name("memory.db-journal")
    journal.write_bytes(b"journal bytes" * 100)
    with MemoryStore(db) as store:
        moved = store.moved_aside_to
        assert store.load() == {}
    assert moved is not None and moved.read_bytes() == GARBAGE
    assert moved.with_name(moved.name + "-journal").read_bytes() == b"journal bytes" * 100
    assert not journal.exists()


@pytest.mark.parametrize("leftover", [b"", bytes(512)], ids=["truncate-mode", "persist-mode"])
def test_a_journal_that_holds_no_write_is_left_alone(tmp_path: Path, leftover: bytes,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """SQLite's TRUNCATE and PERSIST modes leave an empty or zeroed -journal after each commit. Taken for a write
    cut short, it made a reader copy the database without its -wal and answer with none of a running node's items."""
    db = tmp_path / "memory.db"
    writer = MemoryStore(db)
    try:
        writer.commit([state("apple"), state("bread")])  # in the -wal while the node runs
        db.with_name("memory.db-journal").write_bytes(leftover)
        with caplog.at_level(logging.WARNING), MemoryStore(db, on_corrupt="raise", exclusive=False) as reader:
            assert sorted(reader.load()) == ["apple", "bread"]
        assert "rolled back" not in caplog.text
    finally:
        writer.close()


def test_a_reader_leaves_nothing_beside_a_closed_store(tmp_path: Path) -> None:
    """`list` and `locate` left empty -wal and -shm files beside a store closed cleanly (and, needing to create
    them, failed on a read-only mount: "unable to open database file")."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("apple"), state("bread")])
    before = sorted(p.name for p in folder.iterdir())
    assert "memory.db-wal" not in before
    with MemoryStore(db, on_corrupt="raise", exclusive=False) as reader:
        assert sorted(reader.load()) == ["apple", "bread"]
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_version_5_file_is_migrated_and_its_frame_is_said_by_the_first_to_claim_it(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    with _open_old_file(path, _V5_COLUMNS + "UPDATE schema_version SET version = 5;") as store:
        assert "mug" in store.load() and store.map_frame == ""
        store.claim_frame("odom")
    assert _versions_on_disk(path) == [(SCHEMA_VERSION,)]
    with MemoryStore(path, on_corrupt="raise") as store:
        assert store.map_frame == "odom" and "mug" in store.load()


def test_a_version_6_file_is_migrated_with_its_frame_and_no_clock(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    script = _V5_COLUMNS + ("ALTER TABLE schema_version ADD COLUMN map_frame TEXT NOT NULL DEFAULT '';"
                            "UPDATE schema_version SET version = 6, map_frame = 'map';")
    with _open_old_file(path, script) as store:
        assert "mug" in store.load() and store.map_frame == "map" and store.clock == -math.inf
        store.commit([], clock=1234.5)
    assert _versions_on_disk(path) == [(SCHEMA_VERSION,)]
    with MemoryStore(path, on_corrupt="raise") as store:
        assert store.clock == 1234.5 and store.map_frame == "map"
        store.reset()
        assert store.clock == -math.inf and store.map_frame == "map"


def test_an_infinite_clock_reads_as_none_and_the_memory_goes_on_writing(tmp_path: Path) -> None:
    """Unlike a stored time of infinity (BAD_FILES), the clock is only where the memory had reached: it reads as
    none yet, as a migrated file's does, and the first frame sets it."""
    from spatial_memory_ros.core.config import MemoryConfig
    from spatial_memory_ros.core.item_memory import ItemMemory
    from spatial_memory_ros.core.types import ItemObservation

    path = tmp_path / "m.db"
    _foreign(filled_db(path), "UPDATE schema_version SET clock = 9e999;")
    memory = ItemMemory(MemoryConfig(db_path=str(path)), MemoryStore(path, on_corrupt="raise"))
    memory.observe([ItemObservation(item="item3", position=np.zeros(3), stamp=2.0)])
    assert memory.write_error is None
    memory.close()
    with MemoryStore(path, on_corrupt="raise") as store:
        assert store.clock == 2.0 and "item3" in store.load()


def test_a_memory_in_one_frame_is_not_answered_in_another(tmp_path: Path) -> None:
    """The file held bare numbers: a node restarted with map_frame odom answered the map positions as odom's."""
    from spatial_memory_ros.core.errors import BadInputError, FrameMismatchError

    path = tmp_path / "m.db"
    with MemoryStore(path) as store:
        store.claim_frame("map")
        store.claim_frame("map")  # the same frame again: nothing to say
        store.reset()  # forgetting the items keeps the frame
    before = path.read_bytes()
    with MemoryStore(path) as store:
        with pytest.raises(FrameMismatchError, match="holds positions in frame 'map', not 'odom'") as info:
            store.claim_frame("odom")
        assert isinstance(info.value, BadInputError) and store.map_frame == "map"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT map_frame FROM schema_version").fetchall() == [("map",)]
    assert len(before) > 0
    with MemoryStore(":memory:") as ram:  # a memory in RAM claims its frame too (bench, tests)
        ram.claim_frame("map")
        assert ram.map_frame == "map"


def test_a_frame_that_is_not_text_moves_the_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with MemoryStore(path) as store:
        store.claim_frame("map")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE schema_version SET map_frame = CAST(x'ff00' AS TEXT)")
        conn.commit()
    with MemoryStore(path) as store:
        assert store.moved_aside_to is not None and store.map_frame == ""


def test_a_reader_through_a_symlink_reads_the_writers_wal(tmp_path: Path) -> None:
    """SQLite keeps the -wal beside the link's target. Looking beside the link, a reader saw no -wal, opened the file
    immutable and answered from the commits already folded into it: yesterday's positions, today's items missing."""
    (tmp_path / "data").mkdir()
    db, link = tmp_path / "data" / "memory.db", tmp_path / "memory.db"
    link.symlink_to(db)
    with MemoryStore(db) as writer:
        writer.commit([state("mug")])
        writer.checkpoint()
        writer.commit([state("keys"), state("mug", stamp=99.0)])  # in the -wal only
        with MemoryStore(link, exclusive=False) as reader:
            held = reader.load()
        assert sorted(held) == ["keys", "mug"] and held["mug"].current.stamp == 99.0


def test_an_emptied_database_through_a_symlink_keeps_its_wal(tmp_path: Path) -> None:
    """Through a link, the guard for an emptied database beside a -wal that holds commits looked beside the link,
    found no -wal, and SQLite deleted it, items and all, without a word."""
    (tmp_path / "data").mkdir()
    db, link = tmp_path / "data" / "memory.db", tmp_path / "memory.db"
    link.symlink_to(db)
    source = tmp_path / "source.db"
    store = MemoryStore(source)
    store.commit([state("mug")])
    wal_bytes = source.with_name("source.db-wal").read_bytes()
    db.write_bytes(b"")
    db.with_name("memory.db-wal").write_bytes(wal_bytes)
    store.close()
    with MemoryStore(link) as fresh:
        moved = fresh.moved_aside_to
    assert moved is not None and moved.with_name(moved.name + "-wal").read_bytes() == wal_bytes


def test_a_next_place_id_in_use_is_moved_past_the_items_places(tmp_path: Path) -> None:
    """A damaged counter (integrity and content checks pass) gave the item's next place an id in use; that commit
    failed on the places' key, and so did every later one, which carries every item waiting."""
    db = tmp_path / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("keys", n_places=3), state("mug")])
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE items SET next_place_id = 1 WHERE item = 'keys'")
        conn.commit()
    with MemoryStore(db) as store:
        keys = store.load()["keys"]
        assert keys.next_place_id == 3
        keys.places.append(replace(keys.places[0], place_id=keys.next_place_id))
        store.commit([keys, state("wallet")])  # failed: UNIQUE constraint failed: places.item, places.place_id
        assert sorted(store.load()) == ["keys", "mug", "wallet"]


class _Killed(BaseException):
    """A kill between two renames (no except clause runs)."""


def test_a_kill_while_moving_a_file_aside_is_not_an_empty_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """The -wal was renamed first: a kill right after left the emptied database without it, and the next start
    began an empty memory without a word, the items in a -wal nobody was told of. The database goes first now: the
    -wal left without it is moved aside at the next start, with an error."""
    source = tmp_path / "source.db"
    store = MemoryStore(source)
    store.commit([state("mug")])
    db = tmp_path / "memory.db"
    db.write_bytes(b"")
    db.with_name("memory.db-wal").write_bytes(source.with_name("source.db-wal").read_bytes())
    store.close()
    rename = Path.rename

    def rename_then_die(self: Path, target: Path) -> Path:
        rename(self, target)
        raise _Killed

    monkeypatch.setattr(Path, "rename", rename_then_die)
    with pytest.raises(_Killed):
        MemoryStore(db)
    monkeypatch.setattr(Path, "rename", rename)
    with MemoryStore(db) as again:
        assert again.moved_aside_to is not None  # said, with an error: not a silent empty start
        assert again.moved_aside_to.with_name(again.moved_aside_to.name + "-wal").exists()


_OPEN_AS_WRITER = """
import sys
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.store import MemoryStore
try:
    MemoryStore(sys.argv[1]).close()
except BadInputError as exc:
    print("BadInputError:", exc)
"""


def test_a_file_this_user_cannot_write_is_said_to_be_so_not_corrupt() -> None:
    """A memory copied in from another machine, owned by another user: it was called corrupt ("cannot initialise
    ...: attempt to write a readonly database", CorruptStoreError). As root, the writer runs as nobody (setpriv), in
    a folder of its own under /tmp (pytest's are private to their user)."""
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="spatial_memory_ro_"))
    try:
        _open_unwritable(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _open_unwritable(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "shared"
    folder.mkdir()
    db = folder / "memory.db"
    with MemoryStore(db) as store:
        store.commit([state("mug")])
    db.with_name("memory.db.lock").unlink()
    before = db.read_bytes()
    os.chmod(db, 0o644)
    os.chmod(folder, 0o777)
    os.chmod(tmp_path, 0o755)
    command = [sys.executable, "-c", _OPEN_AS_WRITER, str(db)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv: root writes any file")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        os.chmod(db, 0o644)
    else:
        os.chmod(db, 0o444)
    out = subprocess.run(command, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "BadInputError:" in out.stdout and "cannot be written" in out.stdout, out.stdout + out.stderr
    assert db.read_bytes() == before
