"""Files idgraph creates that hold personal data (store files, exports): private to
their owner (mode 0600) from the first byte, whatever the umask; and output that must
arrive whole through a pipe."""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

PRIVATE = 0o600


def create_private(path: str | Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True if it was created.
    An existing file keeps its mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    except FileExistsError:
        return False
    return True


def open_private(path: str | Path) -> TextIO:
    """Open ``path`` to write UTF-8 text (truncated), with mode 0600. A regular file that
    exists already is made 0600 too: what is written into it is personal data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE)
        return open(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def text_output(path: str) -> Iterator[TextIO]:
    """``path`` opened by :func:`open_private`, or for ``-`` standard output, whose
    every write arrives whole (see :func:`write_all`)."""
    if path != "-":
        with open_private(path) as out:
            yield out
        return
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, io.UnsupportedOperation):  # no descriptor, no pipe to cut
        yield sys.stdout
        return
    sys.stdout.flush()
    out = io.TextIOWrapper(io.BufferedWriter(_WholeWrites(fd)), encoding="utf-8", newline="")
    try:
        yield out
    finally:
        out.flush()


def write_all(fd: int, data: bytes | bytearray | memoryview) -> int:
    """Write all of ``data``. A blocking write to a pipe returns short when its process is
    stopped and continued (SIGSTOP and SIGCONT: a debugger, a container pause, Ctrl-Z and
    ``fg``, a suspend). CPython's buffered files lost bytes then, for writes larger than
    their buffer (80 KB and 1 MB writes to ``sys.stdout`` did; tests/test_bulk_ingest.py
    and tests/test_cli_segments.py stop a writer to show it)."""
    view = memoryview(data).cast("B")
    size = len(view)
    while view:
        view = view[os.write(fd, view) :]
    return size


class _WholeWrites(io.RawIOBase):
    """A file descriptor written with :func:`write_all` (left open when this closes)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def writable(self) -> bool:
        return True

    def write(self, data: Any, /) -> int:  # what BufferedWriter hands: bytes or a view
        return write_all(self._fd, data)
