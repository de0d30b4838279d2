"""Which files make a ROS 2 bag, and opening them with rosbags: io.bag's file handling, apart from its frames."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import BadInputError

if TYPE_CHECKING:  # rosbags loads when a bag is opened, so videos and TUM folders never need it
    from rosbags.highlevel import AnyReader
    from rosbags.interfaces import Connection

BAG_SUFFIXES = (".mcap", ".db3")


def is_bag(path: str | Path) -> bool:
    """A .mcap / .db3 file, a rosbag2 folder, or a folder without metadata.yaml (rosbag2 writes that when the
    recording is closed: a killed recorder leaves none) holding one bag file or a split recording's .mcap files."""
    path = Path(path)
    return (path.suffix in BAG_SUFFIXES and path.is_file()) or (path / "metadata.yaml").is_file() or (
        bool(unclosed_files(path)))


def bag_files(folder: Path) -> list[Path]:
    """The .mcap / .db3 files directly in a folder, in split order (name_0, name_1, ..., name_10)."""
    return sorted((f for f in folder.iterdir() if f.suffix in BAG_SUFFIXES and f.is_file()), key=_split_index)


def unclosed_files(path: Path) -> list[Path]:
    """A folder without metadata.yaml: its one bag file, or the .mcap files of a split recording, in split
    order (name_0, name_1, ..., name_10); else []. Several .db3 files are left out: a bare SQLite bag of a
    split needs the metadata rosbags reads it through (`ros2 bag reindex`)."""
    if not path.is_dir() or (path / "metadata.yaml").exists():
        return []
    files = bag_files(path)
    if len(files) > 1 and any(f.suffix != ".mcap" for f in files):
        return []
    return files


def _split_index(f: Path) -> tuple[str, int, str]:
    """rosbag2 names a split recording's files <name>_<n>: sort by name, then by n as a number (then by the
    whole file name, so that the order never depends on the folder's listing)."""
    stem, _, n = f.stem.rpartition("_")
    return (stem, int(n), f.name) if n.isdigit() else (f.stem, -1, f.name)


@contextlib.contextmanager
def open_reader(sources: list[Path], path: Path) -> Iterator[AnyReader]:
    """rosbags' reader over sources (the bag, or its files one by one), open inside the block; BadInputError,
    naming the bag at path, when they cannot be read."""
    try:
        from rosbags.highlevel import AnyReader, AnyReaderError

        from .bag_types import typestore
    except ImportError as exc:
        raise BadInputError(f"reading bags needs the rosbags package (pip install rosbags): {exc}") from None
    try:
        reader = AnyReader(sources, default_typestore=typestore())
        reader.open()
    except (AnyReaderError, OSError) as exc:  # rosbags' ReaderError subclasses wrap into AnyReaderError
        # on one line: a YAML parser's message spans several, with a caret under the column
        raise BadInputError(f"cannot read bag {path}: {' '.join(str(exc).split())}") from None
    except UnicodeDecodeError as exc:  # rosbags reads metadata.yaml as UTF-8 text
        raise BadInputError(f"cannot read bag {path}: its metadata.yaml is not text ({exc})") from None
    try:
        yield reader
    finally:
        reader.close()


class DamagedBagError(BadInputError):
    """A bag whose messages stop being readable part-way: a damaged record or page inside a file whose end is
    whole (a file cut short is recovered at open instead)."""


def read_messages(
    reader: AnyReader, connections: list[Connection], path: Path,
    on_damage: Callable[[DamagedBagError], None] | None = None,
) -> Iterator[tuple[Connection, int, bytes]]:
    """reader.messages(connections), with an error reading the bag's storage as DamagedBagError naming it: it
    escaped as rosbags' ReaderError, struct.error or the SQLite driver's error, a traceback part-way through a run
    that left its outputs unfinished. on_damage, if given, is told instead, and the messages end there: what came
    before the damage is good."""
    messages = reader.messages(connections)
    count = 0
    while True:
        try:
            item = next(messages)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - each storage plugin and its driver raise their own errors
            damage = DamagedBagError(f"bag {path} is damaged after {count} messages read: {type(exc).__name__}: "
                                     f"{' '.join(str(exc).split())}; the rest of it is not read")
            if on_damage is None:
                raise damage from None
            on_damage(damage)
            return
        count += 1
        yield item


def deserialize(reader: AnyReader, raw: bytes, conn: Connection) -> Any:
    """One message; BadInputError for bytes that do not decode as its type (a corrupt or mislabelled message),
    which the caller skips, as it does a frame that decodes but is unusable."""
    try:
        return reader.deserialize(raw, conn.msgtype)
    except Exception as exc:  # noqa: BLE001 - rosbags' errors for bad bytes vary (AnyReaderError, struct, index)
        raise BadInputError(f"a {conn.msgtype} message on {conn.topic} does not decode ({exc})") from exc
