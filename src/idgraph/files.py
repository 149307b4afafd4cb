"""Files idgraph creates that hold personal data (store files, exports): private to
their owner (mode 0600) from the first byte, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TextIO

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
