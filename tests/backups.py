"""Backup files for tests: records read back, and files rewritten so that they pass
every check a restore makes before it writes."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

Records = list[dict[str, Any]]


def lines_of(path: Path) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A backup's header and its records by type."""
    with gzip.open(path, "rt") as file:
        header, *body, _ = [json.loads(line) for line in file]
    by_type: dict[str, list[Any]] = {}
    for line in body:
        by_type.setdefault(line["type"], []).append(line["record"])
    return header, by_type


def rewritten(
    path: Path,
    out: Path,
    edit: Callable[[Records], Records] = lambda records: records,
    *,
    edit_header: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Path:
    """A copy of the backup ``path`` at ``out`` with its record lines changed by ``edit``
    (and its header by ``edit_header``), and the end line's counts and checksum made to
    match them."""
    with gzip.open(path, "rb") as file:
        header, *body, _ = file.read().splitlines()
    if edit_header is not None:
        header = json.dumps(edit_header(json.loads(header))).encode()
    records = edit([json.loads(line) for line in body])
    data = b"".join(line + b"\n" for line in [header, *(json.dumps(r).encode() for r in records)])
    counts = Counter(r["type"] for r in records if r["type"] != "legacy_salt")
    end = {"type": "end", "counts": counts, "sha256": hashlib.sha256(data).hexdigest()}
    with gzip.open(out, "wb") as file:
        file.write(data + json.dumps(end).encode() + b"\n")
    return out


def with_a_customer_twice(records: Records) -> Records:
    """The first customer again after the last record: the file reads well, and a store
    refuses it only at the end of the restore, after writing everything else."""
    first = next(r for r in records if r["type"] == "customer")
    return [*records, first]
