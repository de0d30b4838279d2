"""SQLite persistence for item memory: one transaction per frame; an unusable file is never overwritten.

Durability: WAL journal with ``synchronous=NORMAL``. A commit is durable once ``commit()`` returns as far as a
process kill (kill -9, OOM killer, crash) is concerned, because the WAL frames are already in the OS page
cache; only an OS crash or power loss can lose the last few commits, and even then the file stays consistent
(the previous committed state). That is our requirement; ``synchronous=FULL`` would add an fsync per frame.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

import numpy as np

from .errors import BadInputError, CorruptStoreError, SpatialMemoryError

logger = logging.getLogger(__name__)

# 2 added places.seen_empty and places.returns; 3 added items.arrived; 4 added items.settled; 5 added
# places.stay_sightings and places.since_stay. Older files are migrated in place.
SCHEMA_VERSION = 5

_POSE = ("x", "y", "z", "qx", "qy", "qz", "qw")
_ITEM_COLUMNS = ("item", "next_place_id", *_POSE, "stamp", "confidence", "place_id", "arrived", "settled")
_PLACE_COLUMNS = (
    "item", "place_id", *_POSE, "dwell_s", "observations", "first_seen", "last_seen", "seen_empty", "returns",
    "stay_sightings", "since_stay",
)
_TABLES = {"schema_version": ("version",), "items": _ITEM_COLUMNS, "places": _PLACE_COLUMNS}
_TABLES_V4 = {**_TABLES, "places": _PLACE_COLUMNS[:-2]}
_TABLES_V3 = {**_TABLES_V4, "items": _ITEM_COLUMNS[:-1]}
_TABLES_V2 = {**_TABLES_V4, "items": _ITEM_COLUMNS[:-2]}
_TABLES_V1 = {**_TABLES_V2, "places": _PLACE_COLUMNS[:-4]}
_NEVER = -1.0e300  # seen_empty of a place never seen empty (SQLite REAL has no portable -inf literal)

# One script, one transaction: a kill during creation leaves an empty file, never half a schema.
_CREATE = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (       -- one row per item: its last confirmed observation
    item TEXT PRIMARY KEY,
    next_place_id INTEGER NOT NULL,      -- per-item id counter, so ids are never reused
    x REAL NOT NULL, y REAL NOT NULL, z REAL NOT NULL,                        -- m, map frame
    qx REAL NOT NULL, qy REAL NOT NULL, qz REAL NOT NULL, qw REAL NOT NULL,   -- map frame
    stamp REAL NOT NULL,                 -- s
    confidence REAL NOT NULL,            -- 0..1
    place_id INTEGER NOT NULL,           -- the place this observation was assigned to
    arrived REAL NOT NULL,               -- s, first sighting at that place since the item was seen elsewhere
    settled INTEGER NOT NULL             -- place_id of its last stay (item_memory: what earns a return); -1 none
);
CREATE TABLE IF NOT EXISTS places (      -- the places an item has been at
    item TEXT NOT NULL,
    place_id INTEGER NOT NULL,
    x REAL NOT NULL, y REAL NOT NULL, z REAL NOT NULL,                        -- centre, m, map frame
    qx REAL NOT NULL, qy REAL NOT NULL, qz REAL NOT NULL, qw REAL NOT NULL,   -- mean orientation
    dwell_s REAL NOT NULL,               -- s observed at this place
    observations INTEGER NOT NULL,
    first_seen REAL NOT NULL,            -- s
    last_seen REAL NOT NULL,             -- s
    seen_empty REAL NOT NULL,            -- s, last time the place was in view without the item; -1e300 never
    returns INTEGER NOT NULL,            -- times the item came back here from elsewhere
    stay_sightings INTEGER NOT NULL,     -- sightings here towards a stay (item_memory), since the last at the last stay
    since_stay INTEGER NOT NULL,         -- 1: made since the item's last stay (a stay here is no return), else 0
    PRIMARY KEY (item, place_id)
) WITHOUT ROWID;
INSERT INTO schema_version SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM schema_version);
COMMIT;
"""

# One transaction: a kill leaves the version-1 file as it was, and it is migrated again on the next start.
_MIGRATE_1_TO_2 = f"""
BEGIN IMMEDIATE;
ALTER TABLE places ADD COLUMN seen_empty REAL NOT NULL DEFAULT {_NEVER};
ALTER TABLE places ADD COLUMN returns INTEGER NOT NULL DEFAULT 0;
UPDATE schema_version SET version = 2;
COMMIT;
"""

# A migrated item "arrived" at its last sighting: the latest it can have, so the return prior counts the
# least time away (it errs towards the last sighting, as it does everywhere).
_MIGRATE_2_TO_3 = """
BEGIN IMMEDIATE;
ALTER TABLE items ADD COLUMN arrived REAL NOT NULL DEFAULT 0;
UPDATE items SET arrived = stamp;
UPDATE schema_version SET version = 3;
COMMIT;
"""
# A migrated item "settled" where it was last seen: its next stay elsewhere earns a return, as a sighting there
# did before version 4.
_MIGRATE_3_TO_4 = """
BEGIN IMMEDIATE;
ALTER TABLE items ADD COLUMN settled INTEGER NOT NULL DEFAULT -1;
UPDATE items SET settled = place_id;
UPDATE schema_version SET version = 4;
COMMIT;
"""
# A migrated place has no sighting towards a stay and counts as known before the last stay, as every place did
# after a restart before version 5.
_MIGRATE_4_TO_5 = """
BEGIN IMMEDIATE;
ALTER TABLE places ADD COLUMN stay_sightings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE places ADD COLUMN since_stay INTEGER NOT NULL DEFAULT 0;
UPDATE schema_version SET version = 5;
COMMIT;
"""

# SQLITE_CORRUPT, SQLITE_NOTADB: "the bytes are not a sound database". Anything else (permissions, locks,
# I/O) is not the file's fault and must not get it moved aside. (Literals: sqlite3 names them from 3.11.)
_CORRUPT_CODES = (11, 26)


@dataclass(eq=False)  # numpy fields: == would be ambiguous
class PlaceRecord:
    """One place an item has been at: a dwell-weighted cluster of its observations."""

    place_id: int
    position: np.ndarray  # (3,) m, map frame: capped running mean of the observations
    orientation: np.ndarray  # (4,) quaternion xyzw, map frame: capped running mean
    dwell_s: float  # s the item was observed staying here
    observations: int
    first_seen: float  # s
    last_seen: float  # s
    # s, the last time the place was in view, decodable and unoccluded, without the item (-inf: never);
    # "seen empty since the item was last seen" is what tells item memory that it has gone
    seen_empty: float = -np.inf
    returns: int = 0  # times the item came back here after being seen elsewhere: what makes a place "usual"
    # core.item_memory's stays: sightings here since the item's last sighting at its last stay (ItemState.settled),
    # and whether the place was made since that stay (a stay here is then no return). Stored, so that a restart
    # neither starts a visit under way over nor makes a place a misread made yesterday "known before".
    stay_sightings: int = 0
    since_stay: bool = False


@dataclass(eq=False)  # numpy fields: == would be ambiguous
class LastObservation:
    """An item's last confirmed observation ("current")."""

    position: np.ndarray  # (3,) m, map frame
    orientation: np.ndarray  # (4,) quaternion xyzw, map frame
    stamp: float  # s
    confidence: float  # 0..1
    place_id: int  # the PlaceRecord it was assigned to
    # s, the first sighting at that place since the item was last seen at another one: when the memory
    # first knew it was there (the return prior counts the time away from it)
    arrived: float = -np.inf


@dataclass(eq=False)  # numpy fields: == would be ambiguous
class ItemState:
    """Everything item memory knows about one item; what the store saves and restores."""

    item: str
    places: list[PlaceRecord]
    current: LastObservation
    next_place_id: int  # id for the next new place
    # place_id of the item's last stay (memory.min_stay_sightings sightings there, core.item_memory): a stay at
    # another place earns that place a return; -1 before the first stay
    settled: int = -1


class MemoryStore:
    """Item memory on disk (or in memory for ``":memory:"`` / ``""``).

    Not thread-safe: use from one thread at a time. It may be created in one thread and used in another;
    the caller serialises access with its own lock.

    If the file is not a database, fails ``PRAGMA integrity_check`` (but for damaged indexes, which are rebuilt
    from the tables: nothing is lost), holds another schema, holds rows that SQLite calls sound but that cannot be
    read right (text that is not UTF-8, text in a number column, an item row and its places that name different
    items: a damaged byte in a row), or only a -wal is left without its database, then with
    ``on_corrupt="move_aside"`` it is renamed, with its -wal/-shm/-journal, to ``<path>.corrupt-<UTC time>``, an
    ERROR is logged, ``moved_aside_to`` is set and an empty store is started; with ``on_corrupt="raise"``
    CorruptStoreError is raised and the file is left as it was.
    A missing parent directory is created. A write that another program made in SQLite's rollback mode and was
    cut short (a hot ``<path>-journal``) is rolled back to its last commit: by a writer in the file, once it
    holds the lock; by a reader in a temporary copy.

    One writer per file: with ``exclusive`` (the default) the store holds an exclusive lock on ``<path>.lock``
    until close(), and a second one on the same file raises BadInputError. Two nodes on one file (two cameras
    launched with one params file) would each write their own picture of an item over the other's, and
    each answer from its own. The kernel drops the lock when the process dies, so a kill -9 leaves none
    behind. A reader that writes nothing (``spatial-memory locate``) passes exclusive=False and may open the
    file while a node runs: it reads a copy of the file, made in RAM at open, and never writes the file (an
    empty file stays empty, an older schema is migrated in the copy only).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, on_corrupt: Literal["move_aside", "raise"] = "move_aside",
        exclusive: bool = True,
    ) -> None:
        if on_corrupt not in ("move_aside", "raise"):
            raise ValueError(f"on_corrupt must be 'move_aside' or 'raise', not {on_corrupt!r}")
        self.path: Path | None = None if os.fspath(path) in ("", ":memory:") else Path(path)
        self.moved_aside_to: Path | None = None
        self._lock: IO[str] | None = None
        if self.path is None:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                ":memory:", isolation_level=None, check_same_thread=False
            )
        else:
            self._conn = self._open_file(self.path, on_corrupt, exclusive)
        try:
            self._conn.executescript(_CREATE)
            old = _schema_version(self._conn)
            if old == 1:
                self._conn.executescript(_MIGRATE_1_TO_2)
            if old in (1, 2):
                self._conn.executescript(_MIGRATE_2_TO_3)
            if old in (1, 2, 3):
                self._conn.executescript(_MIGRATE_3_TO_4)
            if old in (1, 2, 3, 4):
                self._conn.executescript(_MIGRATE_4_TO_5)
                logger.info("spatial memory store %s migrated from schema version %d to %d", self.path, old,
                            SCHEMA_VERSION)
        except sqlite3.Error as exc:
            self.close()
            raise CorruptStoreError(f"cannot initialise spatial memory store {self.path}: {exc}") from exc

    # ---- opening -----------------------------------------------------------------------------------------

    def _open_file(self, path: Path, on_corrupt: str, exclusive: bool) -> sqlite3.Connection:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a directory belongs, no permission, a read-only mount
            raise BadInputError(f"cannot create the folder of spatial memory store {path} (memory.db_path): "
                                f"{exc}") from exc
        journal = path.with_name(path.name + "-journal")
        try:
            with contextlib.ExitStack() as copies:
                source = path  # what is checked and a reader reads: the file, or a copy with its write rolled back
                if _is_hot(journal) and _is_sqlite(path):
                    # A write that a program made in SQLite's rollback mode and that was cut short (the store
                    # itself writes through its -wal). A read-only open cannot roll it back and fails with "attempt
                    # to write a readonly database"; a read-write open rolls it back to the last commit. The writer
                    # does that to the file, once it holds the lock; a reader, to a copy.
                    if exclusive:
                        self._lock = _lock_exclusively(path)
                    else:
                        source = copies.enter_context(_copy_beside_journal(path, journal))
                    _roll_back(source)
                    logger.warning("spatial memory store %s: rolled back a write that was cut short (%s was "
                                   "beside it)%s", path, journal.name,
                                   "" if exclusive else " in a copy; the file is as it was")
                return self._open_checked(path, source, on_corrupt, exclusive)
        except BaseException:
            self._unlock()  # a store that failed to open holds nothing
            raise

    def _open_checked(self, path: Path, source: Path, on_corrupt: str, exclusive: bool) -> sqlite3.Connection:
        """_open_file once no write is left to roll back; source is path, or a reader's rolled-back copy of it."""
        problem = None
        reindex = False
        wal = _sidecars(source)[0]
        if source.exists() and source.stat().st_size == 0 and wal.exists() and wal.stat().st_size > 0:
            # truncated from outside (a backup or restore tool): SQLite, opening the empty file, deletes the WAL
            # and the items in it; keep both for a person to look at
            problem = "an empty database beside a -wal file that holds data"
        elif source.exists():
            problem, reindex = _check_file(source)  # read-only, so harmless to another writer's file
        elif wal.exists():
            problem = "a -wal file without its database"  # SQLite would replay it into the new file
        if problem is not None and on_corrupt == "raise":
            raise CorruptStoreError(
                f"spatial memory store {path} is unusable ({problem}); it was left as it was found (but for a "
                "write cut short in rollback mode, rolled back). "
                "Move or delete it to start an empty memory (a node given this file moves it aside itself)."
            )
        if not exclusive and problem is None and source.exists():
            conn = _read_into_memory(source)
            if reindex:  # in the copy only: a reader never writes the file
                conn.execute("REINDEX")
                logger.warning("spatial memory store %s has damaged indexes; read with them rebuilt in a copy "
                               "(the file is left as it is: the node that writes it rebuilds them)", path)
            return conn
        if exclusive and self._lock is None:  # before anything is moved or written (not before a refusal, which
            self._lock = _lock_exclusively(path)  # leaves nothing behind): another writer's file is never touched
        if problem is not None:
            self.moved_aside_to = _move_aside(path)
            logger.error("spatial memory store %s is unusable (%s); moved it aside to %s; starting empty",
                         path, problem, self.moved_aside_to)
        try:
            conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable against a process kill; see module docstring
            # Only another program can hold the write lock (one writer per file: the .lock). A write waits this long
            # for it, under the item memory's lock that the services take too; a frame's failed write is retried
            # later (item_memory), so the wait need not be long.
            conn.execute(f"PRAGMA busy_timeout = {_WRITE_WAIT_MS}")
            if reindex:  # checked on a copy first (_check_file): the tables are whole, so nothing is lost
                conn.execute("REINDEX")
                logger.warning("spatial memory store %s had damaged indexes; rebuilt them from its tables, "
                               "nothing lost", path)
        except sqlite3.Error as exc:
            raise CorruptStoreError(f"cannot open spatial memory store {path}: {exc}") from exc
        return conn

    # ---- public API --------------------------------------------------------------------------------------

    def load(self) -> dict[str, ItemState]:
        """Every item's state, as last committed; fresh objects the caller may mutate."""
        conn = self._connection()
        try:
            places: dict[str, list[PlaceRecord]] = {}
            cols = ", ".join(_PLACE_COLUMNS)
            for r in conn.execute(f"SELECT {cols} FROM places ORDER BY item, place_id"):
                places.setdefault(r[0], []).append(
                    PlaceRecord(
                        place_id=int(r[1]),
                        position=np.array(r[2:5], dtype=np.float64),
                        orientation=np.array(r[5:9], dtype=np.float64),
                        dwell_s=float(r[9]),
                        observations=int(r[10]),
                        first_seen=float(r[11]),
                        last_seen=float(r[12]),
                        seen_empty=float(r[13]) if r[13] > _NEVER else -np.inf,
                        returns=int(r[14]),
                        stay_sightings=int(r[15]),
                        since_stay=bool(r[16]),
                    )
                )
            states: dict[str, ItemState] = {}
            for r in conn.execute(f"SELECT {', '.join(_ITEM_COLUMNS)} FROM items ORDER BY item"):
                current = LastObservation(
                    position=np.array(r[2:5], dtype=np.float64),
                    orientation=np.array(r[5:9], dtype=np.float64),
                    stamp=float(r[9]),
                    confidence=float(r[10]),
                    place_id=int(r[11]),
                    arrived=float(r[12]),
                )
                states[r[0]] = ItemState(r[0], places.get(r[0], []), current, int(r[1]), settled=int(r[13]))
        except (sqlite3.Error, ValueError, TypeError) as exc:  # ValueError: also text that is not UTF-8
            raise CorruptStoreError(f"cannot read spatial memory store {self.path}: {exc}") from exc
        return states

    def commit(self, states: Iterable[ItemState]) -> None:
        """Write these items' full states (replacing what was stored for them) in one transaction.

        A kill at any point leaves either all of them or none of them on disk.
        """
        states = list(states)
        # Converted before BEGIN, so a bad value cannot leave a transaction open.
        item_rows = [_item_row(s) for s in states]
        place_rows = [_place_row(s.item, p) for s in states for p in s.places]
        names = [(s.item,) for s in states]
        if not names:
            return
        with self._transaction() as conn:
            conn.executemany(f"INSERT OR REPLACE INTO items VALUES ({_marks(_ITEM_COLUMNS)})", item_rows)
            conn.executemany("DELETE FROM places WHERE item = ?", names)
            conn.executemany(f"INSERT INTO places VALUES ({_marks(_PLACE_COLUMNS)})", place_rows)

    def reset(self) -> None:
        """Forget every item (the schema stays)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM places")
            conn.execute("DELETE FROM items")

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it, so the .db alone holds everything."""
        try:
            rows = self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            raise SpatialMemoryError(f"cannot checkpoint spatial memory store {self.path}: {exc}") from exc
        if rows and rows[0][0]:  # (busy, WAL frames, frames copied): SQLite says busy in a row, not an error
            raise SpatialMemoryError(
                f"cannot checkpoint spatial memory store {self.path}: another connection is reading it (e.g. "
                f"spatial-memory locate); {rows[0][2]} of {rows[0][1]} WAL frames copied. Every commit is safe in "
                "the -wal file; try again when the reader is done")

    def close(self) -> None:
        """Close the database (idempotent). SQLite checkpoints and removes the WAL on the last close."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases its flock
            self._lock = None

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- helpers -----------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SpatialMemoryError(f"spatial memory store {self.path or ':memory:'} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise SpatialMemoryError(f"cannot write spatial memory store {self.path}: {exc}") from exc


def _item_row(s: ItemState) -> tuple[object, ...]:
    c = s.current
    pose = (*_floats(c.position, 3), *_floats(c.orientation, 4))
    return (s.item, int(s.next_place_id), *pose, float(c.stamp), float(c.confidence), int(c.place_id),
            float(c.arrived), int(s.settled))


def _place_row(item: str, p: PlaceRecord) -> tuple[object, ...]:
    pose = (*_floats(p.position, 3), *_floats(p.orientation, 4))
    stats = (float(p.dwell_s), int(p.observations), float(p.first_seen), float(p.last_seen))
    return (item, int(p.place_id), *pose, *stats, max(float(p.seen_empty), _NEVER), int(p.returns),
            int(p.stay_sightings), int(bool(p.since_stay)))


def _floats(values: np.ndarray, n: int) -> list[float]:
    out = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    if len(out) != n:
        raise BadInputError(f"expected {n} values, got {len(out)}")
    return out


def _marks(columns: tuple[str, ...]) -> str:
    return ", ".join("?" * len(columns))


def _lock_exclusively(path: Path) -> IO[str] | None:
    """An open <path>.lock holding an exclusive flock, with this process's id in it; BadInputError naming the
    holder if another open store has it. None where there is no flock (not POSIX): no guard there."""
    try:
        import fcntl
    except ImportError:
        return None
    real = path.resolve()  # two names of one file (a symlink) must meet at one lock
    lock_path = real.with_name(real.name + ".lock")
    try:
        f = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115  (held open until close(): it is the lock)
    except OSError as exc:
        raise BadInputError(f"cannot create the lock file {lock_path} of spatial memory store {path}: {exc}") from exc
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise BadInputError(
            f"spatial memory store {path} is in use by another process (pid {holder}, holding {lock_path}): two "
            "writers would overwrite each other's items. Give each node its own memory.db_path."
        ) from exc
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _read_only_uri(path: Path) -> str:
    """A read-only open of ``path``. Without a -wal beside it no writer has it open (the store writes through
    its -wal), and it is opened immutable: a plain read-only open of a WAL-mode file created empty -wal and
    -shm files beside it (`list`, `locate` left them) and failed where it could not (a read-only mount)."""
    uri = path.resolve().as_uri()
    return f"{uri}?mode=ro" if _sidecars(path)[0].exists() else f"{uri}?mode=ro&immutable=1"


def _read_into_memory(path: Path) -> sqlite3.Connection:
    """The file's database as it is now (its -wal included), copied into RAM through a read-only connection: a
    reader that writes nothing never writes the file, not even the schema of an empty file or the migration of
    an older one, which then happen to the copy."""
    try:
        src = sqlite3.connect(_read_only_uri(path), uri=True, timeout=5.0)
        try:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            src.backup(conn)
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise CorruptStoreError(f"cannot read spatial memory store {path}: {exc}") from exc
    return conn


_JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")  # a rollback journal's header while it holds a write


def _is_hot(journal: Path) -> bool:
    """Whether a rollback journal holds a write to roll back: SQLite's TRUNCATE and PERSIST modes leave an empty
    or zeroed one after every commit, which holds nothing."""
    return _starts_with(journal, _JOURNAL_MAGIC) is True


@contextmanager
def _copy_beside_journal(path: Path, journal: Path) -> Iterator[Path]:
    """A temporary copy of the database with its rollback journal and its sidecars, under the same names, for a
    reader to roll back."""
    with tempfile.TemporaryDirectory(prefix="spatial_memory_") as tmp:
        copy = Path(tmp) / path.name
        try:
            for src in (path, *_sidecars(path)):
                if src.exists():
                    shutil.copyfile(src, copy.with_name(src.name))
        except OSError as exc:
            raise CorruptStoreError(f"cannot read spatial memory store {path} and {journal.name}: {exc}") from exc
        yield copy


def _is_sqlite(path: Path) -> bool | None:
    """Whether a file with data starts as an SQLite database does; None when that cannot be told (not a regular
    file, empty, unreadable: SQLite says why). One that does not is left, journal and all, to the check that moves
    it aside: opening it read-write would make SQLite delete the journal beside it."""
    return _starts_with(path, b"SQLite format 3\x00")


def _starts_with(path: Path, magic: bytes) -> bool | None:
    """Whether a regular file with data starts with magic; None when it is missing, empty, not a regular file or
    unreadable."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return None
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return None


def _roll_back(path: Path) -> None:
    """Open path read-write and read it, so that SQLite rolls back the write its hot journal records."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5.0)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise CorruptStoreError(f"cannot roll back the cut-short write to spatial memory store {path} "
                                f"({path.name}-journal beside it): {exc}") from exc


def _sidecars(path: Path) -> list[Path]:
    """-wal (first), -shm and a rollback -journal: what goes with the database when it is moved aside."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _check_file(path: Path) -> tuple[str | None, bool]:
    """Why ``path`` is not a usable store, or None; and whether its indexes need rebuilding (REINDEX), which
    the file's tables allow: only its indexes are damaged, and a copy rebuilt in RAM checks whole. Read-only:
    the database file is not modified."""
    if _is_sqlite(path) is False:  # decided by its header, before SQLite sees a journal beside it
        return "file is not a database", False
    existed = {p for p in _sidecars(path) if p.exists()}
    conn = None
    reindex = False
    rows_problem = None  # the rows' check, on the rebuilt copy when the file's indexes are damaged
    try:
        # mode=ro: a read-write connection would replay a WAL into a file we may be asked to leave untouched.
        conn = sqlite3.connect(_read_only_uri(path), uri=True, timeout=5.0)
        problem = _integrity_problem(conn)
        if problem is not None and all(_INDEX_DAMAGE.search(line) for line in problem.split("\n")):
            # An index that disagrees with its table: items' primary key index made load() read a wrong name
            # and commit() add a second row for one item. The rows are in the tables; a rebuilt index is whole.
            copy = sqlite3.connect(":memory:")
            try:
                conn.backup(copy)
                copy.execute("REINDEX")
                reindex = _integrity_problem(copy) is None
                # a damaged byte in a row reads as index damage too (the index still has the old value), and the
                # rebuilt index then agrees with the damaged row: only the rows' own check can tell
                rows_problem = _content_problem(copy) if reindex else None
            except sqlite3.DatabaseError:  # e.g. two rows for one item: the primary key cannot be rebuilt
                pass
            finally:
                copy.close()
        if problem is None or reindex:
            problem = _schema_problem(conn) or (rows_problem if reindex else _content_problem(conn))
        else:
            problem = "integrity_check: " + problem.replace("\n", "; ")
    except sqlite3.DatabaseError as exc:
        # Python's sqlite3 reports a stored text that is not UTF-8 (a damaged byte) as an OperationalError
        if not _is_corruption(exc) and not str(exc).startswith(_NOT_UTF8):
            raise CorruptStoreError(f"cannot open spatial memory store {path}: {exc}") from exc
        problem = str(exc)
    except UnicodeDecodeError as exc:  # SQLite's own message quoting a damaged byte of its schema text
        problem = f"text that is not UTF-8 ({exc})"
    finally:
        if conn is not None:
            conn.close()
    if problem is not None:
        # A read-only open of a WAL-mode file creates empty -wal/-shm files; remove only the ones we made.
        for p in _sidecars(path):
            if p not in existed:
                p.unlink(missing_ok=True)
    return problem, reindex and problem is None


_WRITE_WAIT_MS = 1000
_NOT_UTF8 = "Could not decode to UTF-8"  # CPython's sqlite3 message for a stored text that does not decode
# integrity_check's lines for an index that disagrees with its table (SQLite's sqlite3CheckIndex wording)
_INDEX_DAMAGE = re.compile(r"(missing from|wrong # of entries in|non-unique entry in) index ")


def _integrity_problem(conn: sqlite3.Connection) -> str | None:
    """PRAGMA integrity_check's findings (at most 10, one a line), or None. Not quick_check: it does not compare
    an index with its table. It costs about what quick_check does: 10 ms for 2,000 items of 16 places (2.4 MB)."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(10)").fetchall()]
    return None if rows == ["ok"] else "\n".join(rows)


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is None:  # 3.10: corruption is a plain DatabaseError; open, lock and I/O errors are subclasses
        return type(exc) is sqlite3.DatabaseError
    return code & 0xFF in _CORRUPT_CODES


def _schema_problem(conn: sqlite3.Connection) -> str | None:
    query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    tables = {r[0] for r in conn.execute(query)}
    if not tables:
        return None  # an empty database (e.g. a zero-byte file): ours to initialise
    if tables != set(_TABLES):
        return f"foreign schema: tables {sorted(tables)}, expected {sorted(_TABLES)}"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    if versions not in ([1], [2], [3], [4], [SCHEMA_VERSION]):  # 1 to 4 are migrated when the store opens
        return f"schema version {versions}, this code reads versions 1 to {SCHEMA_VERSION}"
    old = {1: _TABLES_V1, 2: _TABLES_V2, 3: _TABLES_V3, 4: _TABLES_V4}
    for name, expected in old.get(versions[0], _TABLES).items():
        columns = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({name})"))
        if columns != expected:
            return f"foreign schema: table {name} has columns {columns}"
    return None


_TEXT, _NUMBER = "'text'", "'integer', 'real'"  # SQLite's typeof() of what each column must hold


def _content_problem(conn: sqlite3.Connection) -> str | None:
    """Rows that integrity_check passes but load() cannot read or would read wrong: SQLite checks pages and
    indexes, not values. A name that is not UTF-8, text in a number column (a hand edit), or an item row and its
    places that no longer name the same item (a damaged byte in a row: its index, rebuilt, agrees with it; the
    item's places would be dropped without a word at the next sighting). About 45 ms for 2,000 items of 16
    places, once at open."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"items", "places"} <= tables:
        return None  # an empty database: ours to initialise
    for table in ("items", "places"):  # one scan a table
        columns = [r[0] for r in conn.execute(f"SELECT name FROM pragma_table_info('{table}')")]
        wrong = " OR ".join(f"typeof({c}) NOT IN ({_TEXT if c == 'item' else _NUMBER})" for c in columns)
        bad = conn.execute(f"SELECT count(*) FROM {table} WHERE {wrong}").fetchone()[0]
        if bad:
            return f"{bad} row(s) of {table} hold a value of the wrong type (text in a number column, or the reverse)"
    # the items' names only: a place's name that is not UTF-8 names no item row, which the check below finds
    for (raw,) in conn.execute("SELECT CAST(item AS BLOB) FROM items"):
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return f"an item name that is not UTF-8: {bytes(raw)!r}"
    orphans = conn.execute("SELECT count(DISTINCT item) FROM places WHERE item NOT IN (SELECT item FROM items)")
    bare = conn.execute("SELECT count(*) FROM items WHERE item NOT IN (SELECT item FROM places)")
    lost, empty = orphans.fetchone()[0], bare.fetchone()[0]
    if lost or empty:
        return (f"items and places disagree: {lost} item name(s) with places but no item row, {empty} item row(s) "
                "without places (a damaged row)")
    return None


def _schema_version(conn: sqlite3.Connection) -> int:
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    return int(rows[0][0]) if rows else 0


def _move_aside(path: Path) -> Path:
    """Rename ``path`` and its -wal/-shm/-journal to ``<path>.corrupt-<UTC time>``; never overwrites a file."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    n = 0
    while True:
        dest = path.with_name(f"{path.name}.corrupt-{stamp}" + (f"-{n}" if n else ""))
        if not any(p.exists() for p in [dest, *_sidecars(dest)]):
            break
        n += 1
    # Sidecars first: a kill between renames must not leave a WAL next to an empty new database.
    moved: list[tuple[Path, Path]] = []
    try:
        for src, dst in zip(_sidecars(path), _sidecars(dest), strict=True):
            if src.exists():
                src.rename(dst)
                moved.append((src, dst))
        if path.exists():  # absent when only an orphaned -wal was found
            path.rename(dest)
    except OSError as exc:  # e.g. a file bind-mounted into a container cannot be renamed (EBUSY)
        for src, dst in reversed(moved):  # put the sidecars back beside their database
            with contextlib.suppress(OSError):
                dst.rename(src)
        raise CorruptStoreError(
            f"spatial memory store {path} is unusable and could not be moved aside ({exc}); move or delete it "
            "(and its -wal / -shm / -journal files) by hand to start an empty memory") from exc
    return dest
