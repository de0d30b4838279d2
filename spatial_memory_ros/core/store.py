"""SQLite persistence for item memory: one transaction per frame; an unusable file is never overwritten.

Durability: WAL journal with ``synchronous=NORMAL``. A commit is durable once ``commit()`` returns as far as a
process kill (kill -9, OOM killer, crash) is concerned, because the WAL frames are already in the OS page
cache; only an OS crash or power loss can lose the last few commits, and even then the file stays consistent
(the previous committed state). That is our requirement; ``synchronous=FULL`` would add an fsync per frame.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

import numpy as np

from .errors import BadInputError, CorruptStoreError, FrameMismatchError, SpatialMemoryError
from .store_file import (
    check_file,
    copy_beside_journal,
    is_hot,
    is_sqlite,
    lock_exclusively,
    move_aside,
    read_into_memory,
    roll_back,
    schema_version,
    sidecars,
)
from .store_schema import (
    CREATE,
    ITEM_COLUMNS,
    MIGRATE_1_TO_2,
    MIGRATE_2_TO_3,
    MIGRATE_3_TO_4,
    MIGRATE_4_TO_5,
    MIGRATE_5_TO_6,
    MIGRATE_6_TO_7,
    NEVER,
    PLACE_COLUMNS,
    SCHEMA_VERSION,
)

logger = logging.getLogger(__name__)

# how long a write waits for another program holding the write lock (see _open_checked)
_WRITE_WAIT_MS = 1000


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


_SQLITE_READONLY = 8  # sqlite3 names it from Python 3.11


def in_ram(path: str | os.PathLike[str]) -> bool:
    """Whether a store at path keeps nothing on disk: memory.db_path's "" and ":memory:"."""
    return os.fspath(path) in ("", ":memory:")


class MemoryStore:
    """Item memory on disk (or in memory for ``":memory:"`` / ``""``).

    Not thread-safe: use from one thread at a time. It may be created in one thread and used in another;
    the caller serialises access with its own lock.

    If the file is not a database, fails ``PRAGMA integrity_check`` (but for damaged indexes, which are rebuilt
    from the tables: nothing is lost), holds another schema, holds rows that SQLite calls sound but that cannot be
    read right (text that is not UTF-8, text in a number column, an infinity, an item row and its places that name
    different items: a damaged byte in a row), has a header asking for a newer SQLite file format, or only a -wal
    is left without its database, then with ``on_corrupt="move_aside"`` it is renamed, with its -wal/-shm/-journal,
    to ``<path>.corrupt-<UTC time>``, an ERROR is logged, ``moved_aside_to`` is set and an empty store is
    started; with ``on_corrupt="raise"`` CorruptStoreError is raised and the file is left as it was.
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
        self.path: Path | None = None if in_ram(path) else Path(path)
        self.moved_aside_to: Path | None = None
        self._lock: IO[str] | None = None
        if self.path is None:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                ":memory:", isolation_level=None, check_same_thread=False
            )
        else:
            # Every file decision (the -wal beside it, moving it aside) on the file itself: SQLite keeps the -wal
            # beside the link's target, and through a link the store looked beside the link. A reader read a stale
            # picture as immutable, and an emptied database's -wal, holding the items, was deleted.
            self._conn = self._open_file(self.path.resolve(), on_corrupt, exclusive)
        try:
            self._conn.executescript(CREATE)
            old = schema_version(self._conn)
            if old == 1:
                self._conn.executescript(MIGRATE_1_TO_2)
            if old in (1, 2):
                self._conn.executescript(MIGRATE_2_TO_3)
            if old in (1, 2, 3):
                self._conn.executescript(MIGRATE_3_TO_4)
            if old in (1, 2, 3, 4):
                self._conn.executescript(MIGRATE_4_TO_5)
            if old in (1, 2, 3, 4, 5):
                self._conn.executescript(MIGRATE_5_TO_6)
            if old in (1, 2, 3, 4, 5, 6):
                self._conn.executescript(MIGRATE_6_TO_7)
                logger.info("spatial memory store %s migrated from schema version %d to %d", self.path, old,
                            SCHEMA_VERSION)
        except sqlite3.Error as exc:
            self.close()
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_READONLY:  # the file's permissions, not its bytes
                raise BadInputError(
                    f"spatial memory store {self.path} cannot be written ({exc}): a file this user may not write, or "
                    "a read-only mount. Make it writable, or set memory.db_path to a place that is") from exc
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
                if is_hot(journal) and is_sqlite(path):
                    # A write that a program made in SQLite's rollback mode and that was cut short (the store
                    # itself writes through its -wal). A read-only open cannot roll it back and fails with "attempt
                    # to write a readonly database"; a read-write open rolls it back to the last commit. The writer
                    # does that to the file, once it holds the lock; a reader, to a copy.
                    if exclusive:
                        self._lock = lock_exclusively(path)
                    else:
                        source = copies.enter_context(copy_beside_journal(path, journal))
                    roll_back(source)
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
        wal = sidecars(source)[0]
        if source.exists() and source.stat().st_size == 0 and wal.exists() and wal.stat().st_size > 0:
            # truncated from outside (a backup or restore tool): SQLite, opening the empty file, deletes the WAL
            # and the items in it; keep both for a person to look at
            problem = "an empty database beside a -wal file that holds data"
        elif source.exists():
            problem, reindex = check_file(source)  # read-only, so harmless to another writer's file
        elif wal.exists():
            problem = "a -wal file without its database"  # SQLite would replay it into the new file
        if problem is not None and on_corrupt == "raise":
            raise CorruptStoreError(
                f"spatial memory store {path} is unusable ({problem}); it was left as it was found (but for a "
                "write cut short in rollback mode, rolled back). "
                "Move or delete it to start an empty memory (a node given this file moves it aside itself)."
            )
        if not exclusive and problem is None and source.exists():
            conn = read_into_memory(source)
            if reindex:  # in the copy only: a reader never writes the file
                conn.execute("REINDEX")
                logger.warning("spatial memory store %s has damaged indexes; read with them rebuilt in a copy "
                               "(the file is left as it is: the node that writes it rebuilds them)", path)
            return conn
        if exclusive and self._lock is None:  # before anything is moved or written (not before a refusal, which
            self._lock = lock_exclusively(path)  # leaves nothing behind): another writer's file is never touched
        if problem is not None:
            self.moved_aside_to = move_aside(path)
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
            if reindex:  # checked on a copy first (check_file): the tables are whole, so nothing is lost
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
            cols = ", ".join(PLACE_COLUMNS)
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
                        seen_empty=float(r[13]) if r[13] > NEVER else -np.inf,
                        returns=int(r[14]),
                        stay_sightings=int(r[15]),
                        since_stay=bool(r[16]),
                    )
                )
            states: dict[str, ItemState] = {}
            for r in conn.execute(f"SELECT {', '.join(ITEM_COLUMNS)} FROM items ORDER BY item"):
                current = LastObservation(
                    position=np.array(r[2:5], dtype=np.float64),
                    orientation=np.array(r[5:9], dtype=np.float64),
                    stamp=float(r[9]),
                    confidence=float(r[10]),
                    place_id=int(r[11]),
                    arrived=float(r[12]),
                )
                held = places.get(r[0], [])
                # The id counter past every id it holds: a damaged counter gave a new place an id in use, and the
                # commit of every item failed on the places' key from then on (each commit holds all waiting).
                next_id = max(int(r[1]), max((p.place_id for p in held), default=-1) + 1)
                if next_id != int(r[1]):
                    logger.warning("spatial memory store %s: item %r's next place id %d is in use; using %d",
                                   self.path, r[0], int(r[1]), next_id)
                states[r[0]] = ItemState(r[0], held, current, next_id, settled=int(r[13]))
        # ValueError: also text that is not UTF-8; OverflowError: an infinity where a count belongs
        except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
            raise CorruptStoreError(f"cannot read spatial memory store {self.path}: {exc}") from exc
        return states

    def commit(self, states: Iterable[ItemState], *, clock: float | None = None) -> None:
        """Write these items' full states (replacing what was stored for them) in one transaction, and the item
        memory's clock (s; None: left as stored) with them.

        A kill at any point leaves either all of them or none of them on disk.
        """
        states = list(states)
        # Converted before BEGIN, so a bad value cannot leave a transaction open.
        item_rows = [_item_row(s) for s in states]
        place_rows = [_place_row(s.item, p) for s in states for p in s.places]
        names = [(s.item,) for s in states]
        stamp = None if clock is None or not math.isfinite(clock) else float(clock)
        if not names and stamp is None:
            return
        with self._transaction() as conn:
            conn.executemany(f"INSERT OR REPLACE INTO items VALUES ({_marks(ITEM_COLUMNS)})", item_rows)
            conn.executemany("DELETE FROM places WHERE item = ?", names)
            conn.executemany(f"INSERT INTO places VALUES ({_marks(PLACE_COLUMNS)})", place_rows)
            if stamp is not None:
                conn.execute("UPDATE schema_version SET clock = ?", (stamp,))

    @property
    def clock(self) -> float:
        """The item memory's clock as last committed (s): the latest frame it had been told of, items seen or not;
        -inf before any. Stored, so that a restart, or `spatial-memory locate`, answers at the time the memory had
        reached (the return prior's "now"), not at the item's last sighting."""
        try:
            row = self._connection().execute("SELECT clock FROM schema_version").fetchone()
        except sqlite3.Error as exc:
            raise CorruptStoreError(f"cannot read spatial memory store {self.path}: {exc}") from exc
        return float(row[0]) if row is not None and math.isfinite(row[0]) and row[0] > NEVER else -math.inf

    @property
    def map_frame(self) -> str:
        """The frame the stored positions are in, as claim_frame() recorded it; "" while none has."""
        row = self._connection().execute("SELECT map_frame FROM schema_version").fetchone()
        return str(row[0]) if row is not None else ""

    def claim_frame(self, frame: str) -> None:
        """Record that the positions are in `frame`, or raise FrameMismatchError if the file says another.

        The positions are bare numbers: opened by a node with another map_frame (odom for map, a second robot's
        map), they were answered under the new frame's name, without a word, and every answer was wrong."""
        if not frame:
            raise ValueError("claim_frame needs a frame id")
        held = self.map_frame
        if held == frame:
            return
        if held:
            raise FrameMismatchError(
                f"spatial memory store {self.path or ':memory:'} holds positions in frame {held!r}, not {frame!r}: "
                f"set map_frame to {held!r}, or give this frame its own memory.db_path")
        with self._transaction() as conn:
            conn.execute("UPDATE schema_version SET map_frame = ?", (frame,))

    def reset(self) -> None:
        """Forget every item and the clock (the schema and the frame stay)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM places")
            conn.execute("DELETE FROM items")
            conn.execute(f"UPDATE schema_version SET clock = {NEVER}")

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
    return (item, int(p.place_id), *pose, *stats, max(float(p.seen_empty), NEVER), int(p.returns),
            int(p.stay_sightings), int(bool(p.since_stay)))


def _floats(values: np.ndarray, n: int) -> list[float]:
    out = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    if len(out) != n:
        raise BadInputError(f"expected {n} values, got {len(out)}")
    return out


def _marks(columns: tuple[str, ...]) -> str:
    return ", ".join("?" * len(columns))
