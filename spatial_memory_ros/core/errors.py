"""The package's one domain exception family."""


class SpatialMemoryError(Exception):
    """Base class for every error the core raises on purpose."""


class BadInputError(SpatialMemoryError, ValueError):
    """An input frame, image or parameter is malformed; the message says what to change."""


class UnknownItemError(SpatialMemoryError, KeyError):
    """The memory has never seen the requested item."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown item"


class CorruptStoreError(SpatialMemoryError):
    """The memory database could not be opened; it was moved aside (see message)."""


class FrameMismatchError(BadInputError):
    """The memory file holds positions in another frame than the one asked for (MemoryStore.claim_frame)."""
