"""An MCAP bag cut short (the recorder killed, the robot's power lost) still holds every record written before
the cut; only its summary and footer are missing, and rosbags refuses a file without them. This copies the
complete records, through the `mcap` package's stream reader (which needs no footer) and writer, into a
well-formed file that rosbags reads like any other. A record torn by the cut, and everything after it, is
left out. The source is only read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..core.errors import BadInputError

MCAP_MAGIC = b"\x89MCAP0\r\n"


@dataclass(frozen=True)
class Recovered:
    """What recover_mcap() copied: the new file, its messages and the log time (ns) of the last one."""

    path: Path
    messages: int
    last_log_time_ns: int
    stopped_by: str  # why the copy ended: the reader's error at the cut


class NothingToRecover(BadInputError):
    """The file was cut short before its first complete message."""


def is_cut_short(path: Path) -> bool:
    """Whether an .mcap file lacks the closing magic every finished MCAP ends with. A file too short to hold both
    magics is one too: a split file its recorder had only just opened when it was killed (empty, or a header
    being written); recover_mcap finds nothing in it."""
    size = path.stat().st_size
    if size < 2 * len(MCAP_MAGIC):
        return True
    with path.open("rb") as f:
        head = f.read(len(MCAP_MAGIC))
        f.seek(-len(MCAP_MAGIC), 2)
        tail = f.read()
    return head == MCAP_MAGIC and tail != MCAP_MAGIC


def recover_mcap(source: Path, out: Path) -> Recovered:
    """Copy source's complete schemas, channels and messages to out (a new MCAP, lz4 chunks). BadInputError if
    the mcap package is missing, NothingToRecover if no message survives."""
    try:
        from mcap.exceptions import McapError
        from mcap.records import Channel, Header, Message, Schema
        from mcap.stream_reader import StreamReader
        from mcap.writer import CompressionType, Writer
    except ImportError as exc:
        raise BadInputError(f"{source} was cut short; recovering it needs the mcap package ({exc})") from None
    # what a torn record or chunk raises: the mcap package's own errors, struct's for a record header cut in
    # its length field, and the decompressors' (zstandard.ZstdError, lz4's RuntimeError) for a chunk cut or
    # zeroed (a power loss)
    torn: tuple[type[BaseException], ...] = (McapError, EOFError, ValueError, struct.error, RuntimeError)
    try:
        from zstandard import ZstdError

        torn += (ZstdError,)
    except ImportError:
        pass
    schemas: dict[int, int] = {}  # source schema id -> out schema id (0: no schema, in both)
    channels: dict[int, int] = {}
    messages, last = 0, 0
    stopped_by = "end of file"
    try:
        # A bag can be gigabytes: show how far the copy has read (on a terminal only).
        with source.open("rb") as raw, out.open("wb") as dst, tqdm.wrapattr(
                raw, "read", total=source.stat().st_size, desc=f"recovering {source.name}", disable=None,
                mininterval=2.0) as src:
            writer = Writer(dst, compression=CompressionType.LZ4)
            started = False
            records = iter(StreamReader(src, emit_chunks=False).records)
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    break
                except torn as exc:  # the cut: a torn record or chunk
                    stopped_by = f"{type(exc).__name__} {exc}".strip()
                    break
                if isinstance(record, Header):
                    writer.start(profile=record.profile, library=f"{record.library} (recovered)")
                    started = True
                elif isinstance(record, Schema):
                    schemas[record.id] = writer.register_schema(record.name, record.encoding, record.data)
                elif isinstance(record, Channel):
                    channels[record.id] = writer.register_channel(
                        record.topic, record.message_encoding, schemas.get(record.schema_id, 0), record.metadata)
                elif isinstance(record, Message) and record.channel_id in channels:
                    writer.add_message(channels[record.channel_id], record.log_time, record.data,
                                       record.publish_time, record.sequence)
                    messages += 1
                    last = max(last, record.log_time)
            if started:
                writer.finish()
    except OSError as exc:  # an I/O error on the bag, or the copy's disk full: not the cut
        raise BadInputError(f"cannot recover {source} into {out.parent} ({exc}); set TMPDIR to a disk with room "
                            "for a copy of the bag") from exc
    if messages == 0:
        raise NothingToRecover(f"{source} was cut short before any complete message ({stopped_by})")
    return Recovered(out, messages, last, stopped_by)
