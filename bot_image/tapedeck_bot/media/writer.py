"""Where encoded bytes go: a stream that is only ever appended to.

Writers expose no `seek`, so muxers treat the output as non-seekable and never go back to
patch a header: what was written stays valid, which lets an uploader ship it while recording.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tapedeck_bot.contract import Output

__all__ = ["FileWriter", "OpenWriter", "OutputWriter"]


class OutputWriter(Protocol):
    @property
    def bytes_written(self) -> int: ...

    def write(self, data: bytes) -> int: ...

    def close(self) -> None: ...


# Opens the writer of an output, given what it will hold (its key is the file name).
OpenWriter = Callable[[Output], OutputWriter]


class FileWriter:
    """Appends to a local file, flushing each write so a reader sees it at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb")
        self._written = 0

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._file.flush()
        self._written += len(data)
        return len(data)

    def close(self) -> None:
        self._file.close()
