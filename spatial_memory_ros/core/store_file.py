"""The memory store's file on disk: its lock, a write cut short in rollback mode, the read-only opens, the checks
that decide a file is unusable, and moving an unusable one aside (never overwriting it). core/store.py opens and
writes the store through these.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from .errors import BadInputError, CorruptStoreError
from .store_schema import (
    SCHEMA_VERSION,
    TABLES,
    TABLES_V1,
    TABLES_V2,
    TABLES_V3,
    TABLES_V4,
    TABLES_V5,
    TABLES_V6,
)

# SQLITE_CORRUPT, SQLITE_NOTADB: "the bytes are not a sound database". Anything else (permissions, locks,
# I/O) is not the file's fault and must not get it moved aside. (Literals: sqlite3 names them from 3.11.)
_CORRUPT_CODES = (11, 26)


def lock_exclusively(path: Path) -> IO[str] | None:
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
            "writers would overwrite each other's items. Give each node its own memory.db_path (each "
            "`spatial-memory run` its own --out)."
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
    return f"{uri}?mode=ro" if sidecars(path)[0].exists() else f"{uri}?mode=ro&immutable=1"


def read_into_memory(path: Path) -> sqlite3.Connection:
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


def is_hot(journal: Path) -> bool:
    """Whether a rollback journal holds a write to roll back: SQLite's TRUNCATE and PERSIST modes leave an empty
    or zeroed one after every commit, which holds nothing."""
    return _starts_with(journal, _JOURNAL_MAGIC) is True


@contextmanager
def copy_beside_journal(path: Path, journal: Path) -> Iterator[Path]:
    """A temporary copy of the database with its rollback journal and its sidecars, under the same names, for a
    reader to roll back."""
    with tempfile.TemporaryDirectory(prefix="spatial_memory_") as tmp:
        copy = Path(tmp) / path.name
        try:
            for src in (path, *sidecars(path)):
                if src.exists():
                    shutil.copyfile(src, copy.with_name(src.name))
        except OSError as exc:
            raise CorruptStoreError(f"cannot read spatial memory store {path} and {journal.name}: {exc}") from exc
        yield copy


def is_sqlite(path: Path) -> bool | None:
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


def _format_versions(path: Path) -> tuple[int, int] | None:
    """The header's file format write and read versions (bytes 18 and 19: 1 legacy, 2 WAL); None if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    return (head[18], head[19]) if len(head) == 20 else None


def roll_back(path: Path) -> None:
    """Open path read-write and read it, so that SQLite rolls back the write its hot journal records."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5.0)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise CorruptStoreError(f"cannot roll back the cut-short write to spatial memory store {path} "
                                f"({path.name}-journal beside it): {exc}") from exc


def sidecars(path: Path) -> list[Path]:
    """-wal (first), -shm and a rollback -journal: what goes with the database when it is moved aside."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def check_file(path: Path) -> tuple[str | None, bool]:
    """Why ``path`` is not a usable store, or None; and whether its indexes need rebuilding (REINDEX), which
    the file's tables allow: only its indexes are damaged, and a copy rebuilt in RAM checks whole. Read-only:
    the database file is not modified."""
    if is_sqlite(path) is False:  # decided by its header, before SQLite sees a journal beside it
        return "file is not a database", False
    if (versions := _format_versions(path)) is not None and max(versions) > 2:
        # SQLite opens such a file read-only (write version) or not at all (read version), and the store then
        # blamed the file's permissions
        return (f"SQLite file format versions {versions[0]} (write) and {versions[1]} (read) in its header, where "
                "this SQLite knows 1 and 2: a damaged header, or a file of a future SQLite"), False
    existed = {p for p in sidecars(path) if p.exists()}
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
        if not is_corruption(exc) and not str(exc).startswith(_NOT_UTF8):
            raise CorruptStoreError(f"cannot open spatial memory store {path}: {exc}") from exc
        problem = str(exc)
    except UnicodeDecodeError as exc:  # SQLite's own message quoting a damaged byte of its schema text
        problem = f"text that is not UTF-8 ({exc})"
    finally:
        if conn is not None:
            conn.close()
    if problem is not None:
        # A read-only open of a WAL-mode file creates empty -wal/-shm files; remove only the ones we made.
        for p in sidecars(path):
            if p not in existed:
                p.unlink(missing_ok=True)
    return problem, reindex and problem is None


_NOT_UTF8 = "Could not decode to UTF-8"  # CPython's sqlite3 message for a stored text that does not decode
# integrity_check's lines for an index that disagrees with its table (SQLite's sqlite3CheckIndex wording)
_INDEX_DAMAGE = re.compile(r"(missing from|wrong # of entries in|non-unique entry in) index ")


def _integrity_problem(conn: sqlite3.Connection) -> str | None:
    """PRAGMA integrity_check's findings (at most 10, one a line), or None. Not quick_check: it does not compare
    an index with its table. It costs about what quick_check does: 10 ms for 2,000 items of 16 places (2.4 MB)."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(10)").fetchall()]
    return None if rows == ["ok"] else "\n".join(rows)


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is None:  # 3.10: corruption is a plain DatabaseError; open, lock and I/O errors are subclasses
        return type(exc) is sqlite3.DatabaseError
    return code & 0xFF in _CORRUPT_CODES


def _schema_problem(conn: sqlite3.Connection) -> str | None:
    query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    tables = {r[0] for r in conn.execute(query)}
    if not tables:
        return None  # an empty database (e.g. a zero-byte file): ours to initialise
    if tables != set(TABLES):
        # key=str: a damaged name may be a blob or a number, which sorted() cannot compare with text
        return f"foreign schema: tables {sorted(tables, key=str)}, expected {sorted(TABLES)}"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    if versions not in ([1], [2], [3], [4], [5], [6], [SCHEMA_VERSION]):  # 1 to 6 are migrated when the store opens
        return f"schema version {versions}, this code reads versions 1 to {SCHEMA_VERSION}"
    old = {1: TABLES_V1, 2: TABLES_V2, 3: TABLES_V3, 4: TABLES_V4, 5: TABLES_V5, 6: TABLES_V6}
    for name, expected in old.get(versions[0], TABLES).items():
        columns = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({name})"))
        if columns != expected:
            return f"foreign schema: table {name} has columns {columns}"
    return None


# SQLite's typeof() of what each column may hold. A REAL in an INTEGER column is a fraction or an infinity (a whole
# number is stored as an integer there): load() read 1.5 as 1 without a word, and infinity raised OverflowError.
_TEXT, _NUMBER, _INTEGER = "'text'", "'integer', 'real'", "'integer'"


_MINUS_INFINITY_OK = ("arrived",)  # items.arrived: -inf while the item has not settled anywhere (LastObservation)


def _wrong_value(column: str, kinds: str) -> str:
    """SQL true where column holds a value of none of kinds, or an infinity. A stored time of infinity (a damaged
    byte, a hand edit) loaded, became the memory's clock, and every later commit failed: the shift it made of the
    next frame's time turned dwell times into NaN, which SQLite stores as NULL. Other "never"s are -1e300."""
    size = column if column in _MINUS_INFINITY_OK else f"abs({column})"
    return f"typeof({column}) NOT IN ({kinds}) OR {size} > 1.7976931348623157e308"


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
        kinds = dict(conn.execute(f"SELECT name, type FROM pragma_table_info('{table}')").fetchall())  # in order
        wrong = " OR ".join(_wrong_value(c, _TEXT if c == "item" else _INTEGER if kind == "INTEGER" else _NUMBER)
                            for c, kind in kinds.items())
        bad = conn.execute(f"SELECT count(*) FROM {table} WHERE {wrong}").fetchone()[0]
        if bad:
            return (f"{bad} row(s) of {table} hold a value of the wrong type (text in a number column, or the reverse, "
                    "a fraction in a count or id column, or an infinity)")
    # the items' names only: a place's name that is not UTF-8 names no item row, which the check below finds
    for (raw,) in conn.execute("SELECT CAST(item AS BLOB) FROM items"):
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return f"an item name that is not UTF-8: {bytes(raw)!r}"
    if "map_frame" in [r[0] for r in conn.execute("SELECT name FROM pragma_table_info('schema_version')")]:
        for raw, kind in conn.execute("SELECT CAST(map_frame AS BLOB), typeof(map_frame) FROM schema_version"):
            try:
                bytes(raw or b"").decode("utf-8")
                readable = kind == "text"
            except UnicodeDecodeError:
                readable = False
            if not readable:
                return f"the frame the positions are in is not UTF-8 text: {bytes(raw or b'')!r}"
    # the clock's type only: a non-finite clock reads as none yet (MemoryStore.clock), as a migrated file's does
    has_clock = "clock" in [r[0] for r in conn.execute("SELECT name FROM pragma_table_info('schema_version')")]
    clock_query = f"SELECT count(*) FROM schema_version WHERE typeof(clock) NOT IN ({_NUMBER})"
    if has_clock and conn.execute(clock_query).fetchone()[0]:
        return "the item memory's clock is not a number"
    orphans = conn.execute("SELECT count(DISTINCT item) FROM places WHERE item NOT IN (SELECT item FROM items)")
    bare = conn.execute("SELECT count(*) FROM items WHERE item NOT IN (SELECT item FROM places)")
    lost, empty = orphans.fetchone()[0], bare.fetchone()[0]
    if lost or empty:
        return (f"items and places disagree: {lost} item name(s) with places but no item row, {empty} item row(s) "
                "without places (a damaged row)")
    return None


def schema_version(conn: sqlite3.Connection) -> int:
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    return int(rows[0][0]) if rows else 0


def move_aside(path: Path) -> Path:
    """Rename ``path`` and its -wal/-shm/-journal to ``<path>.corrupt-<UTC time>``; never overwrites a file."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    n = 0
    while True:
        dest = path.with_name(f"{path.name}.corrupt-{stamp}" + (f"-{n}" if n else ""))
        if not any(p.exists() for p in [dest, *sidecars(dest)]):
            break
        n += 1
    # The database first: a kill between renames leaves its -wal without a database, which the next start moves
    # aside too, with an error. Sidecars first left an empty database without the -wal that held the items, and
    # the next start began an empty memory without a word.
    moved: list[tuple[Path, Path]] = []
    try:
        for src, dst in zip([path, *sidecars(path)], [dest, *sidecars(dest)], strict=True):
            if src.exists():  # the database is absent when only an orphaned -wal was found
                src.rename(dst)
                moved.append((src, dst))
    except OSError as exc:  # e.g. a file bind-mounted into a container cannot be renamed (EBUSY)
        for src, dst in reversed(moved):  # put back what was moved: the files stay together
            with contextlib.suppress(OSError):
                dst.rename(src)
        raise CorruptStoreError(
            f"spatial memory store {path} is unusable and could not be moved aside ({exc}); move or delete it "
            "(and its -wal / -shm / -journal files) by hand to start an empty memory") from exc
    return dest
