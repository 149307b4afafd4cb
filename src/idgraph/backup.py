"""``idgraph backup`` and ``idgraph restore``: the whole store in one portable file.

The format (docs/backup.md, version :data:`VERSION`) is gzip'd JSON lines: a header,
one line per record in the order :func:`idgraph.transfer.read_store` reads them (a
restore imports them in that order, so every record finds what it names), and a
trailer holding the count of each record type and the SHA-256 of every byte (before
compression) above it. It is the same for both stores, so a backup of one kind restores
into the other.

A restore reads the file twice: once to check all of it (gzip integrity, the header's
format and version, every record's type and fields, the counts and the checksum), and
only then again to write it, in batches. So a truncated, tampered or foreign file is
refused before anything is written.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from idgraph.domain.access import ApiKey
from idgraph.domain.model import (
    ConsentRecord,
    CustomerRecord,
    InteractionView,
    Link,
    NodeRecord,
    TraitRecord,
    utcnow,
)
from idgraph.domain.segment import SavedSegment
from idgraph.errors import ConfigError, InvalidInput
from idgraph.store.encrypted import KEYRING_META
from idgraph.store.erasure import KEY_CHECK
from idgraph.store.port import ImportBatch, Store
from idgraph.store.url import is_neo4j
from idgraph.transfer import Progress, Tally, read_store

FORMAT = "idgraph-backup"
VERSION = 1

# Record type in the file → (ImportBatch field, Python type of one record).
RECORDS: dict[str, tuple[str, Any]] = {
    "customer": ("customers", CustomerRecord),
    "node": ("nodes", NodeRecord),
    "trait": ("traits", TraitRecord),
    "consent": ("consents", ConsentRecord),
    "interaction": ("interactions", InteractionView),
    "link": ("links", Link),
    "ban": ("bans", tuple[str, str]),
    "erased": ("erased", str),
    "event": ("events", str),
    "segment": ("segments", SavedSegment),
    "api_key": ("api_keys", ApiKey),
}
TYPE_OF = {part: kind for kind, (part, _) in RECORDS.items()}
LEGACY_SALT = "legacy_salt"

# Mappings with their keys sorted, so that the same content is the same line whichever
# store it was read from (Neo4j returns a node's attributes in its own order).
_encode = msgspec.json.Encoder(order="deterministic").encode


@dataclass(frozen=True, slots=True)
class Header:
    """The first line of a backup."""

    store: str
    created_at: datetime
    counts: dict[str, int]
    # The fingerprint of the source's erasure key (none in files of earlier versions): a
    # restore refuses to load an erasure record into a store under another secret.
    erasure_key_check: str | None = None
    # The id of the keyring that sealed its values (encryption at rest), or None.
    keyring: str | None = None


async def write_backup(
    source: Store, out: IO[bytes], *, batch_size: int = 5000, progress: Progress = lambda n: None
) -> dict[str, int]:
    """Write everything of ``source`` (read from its consistent view) to ``out``, gzip'd.
    Returns the count of each record type."""
    digest = hashlib.sha256()
    tally = Tally()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:

        def line(obj: object) -> None:
            data = _encode(obj) + b"\n"
            digest.update(data)
            gz.write(data)

        async with source.consistent_view() as view:
            line(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "store": "neo4j" if is_neo4j(source.url) else "sqlite",
                    "created_at": utcnow(),
                    "counts": await view.counts(),
                    "erasure_key_check": await source.meta(KEY_CHECK),
                    "keyring": await source.meta(KEYRING_META),
                }
            )
            async for batch in read_store(view, batch_size, at=utcnow()):
                for part, kind in TYPE_OF.items():
                    for record in getattr(batch, part):
                        line({"type": kind, "record": _plain(record)})
                if batch.legacy_salt is not None:
                    line({"type": LEGACY_SALT, "record": batch.legacy_salt})
                tally.add(batch)
                progress(len(batch))
        counts = {TYPE_OF[part]: n for part, n in tally.counts.items()}
        gz.write(_encode({"type": "end", "counts": counts, "sha256": digest.hexdigest()}) + b"\n")
    return counts


def _plain(record: object) -> object:
    """A record as the JSON the file holds: a consent's ``seq`` is left out (its place in
    the file orders it, and each store numbers decisions its own way)."""
    if isinstance(record, ConsentRecord):
        plain = msgspec.to_builtins(record)
        del plain["seq"]
        return plain
    return record


def verify(path: Path) -> tuple[Header, dict[str, int]]:
    """Check the whole file; raise :class:`InvalidInput` naming what is wrong. Returns
    its header and the number of records of each type."""
    header: list[Header] = []
    counts: dict[str, int] = {}
    for _ in _records(path, header, counts):
        pass
    return header[0], counts


async def restore(
    path: Path,
    target: Store,
    *,
    force: bool = False,
    batch_size: int = 5000,
    progress: Progress = lambda n: None,
) -> Header:
    """Check ``path`` whole, then load it into ``target``, which must be empty unless
    ``force`` (then it is cleared first), as one unit (:meth:`Store.import_all`: should
    it fail, the target holds none of it). Returns the backup's header."""
    from idgraph.transfer import is_empty

    header, records = verify(path)
    empty = await is_empty(target)
    if not empty and not force:
        raise InvalidInput(
            f"{target.url} is not empty: restore into an empty store, "
            "or pass --force to delete everything it holds first"
        )
    if records.get("erased") and header.erasure_key_check not in (
        None,
        await target.meta(KEY_CHECK),
    ):
        raise ConfigError(
            f"{path} holds an erasure record written under another server secret than "
            f"{target.url}'s: restore with the secret of the store the backup was taken "
            "from (IDGRAPH_SECRET or the secret file; docs/operations.md), or erased "
            "identifiers would no longer be refused"
        )
    if header.keyring is not None and header.keyring != (
        keyring := await target.meta(KEYRING_META)
    ):
        raise ConfigError(
            f"{path} holds values encrypted at rest by keyring {header.keyring}, and "
            + (
                f"{target.url} has no data key configured"
                if keyring is None
                else f"{target.url} is sealed by keyring {keyring}"
            )
            + ": restore with the data key and the keyring file of the store the backup "
            'was taken from (docs/operations.md, "Encryption at rest")'
        )
    await target.import_all(_batches(path, batch_size, progress), clear=not empty)
    return header


async def _batches(path: Path, batch_size: int, progress: Progress) -> AsyncIterator[ImportBatch]:
    """The records of ``path`` in batches of ``batch_size``, in file order;
    ``progress(n)`` once a batch of ``n`` records is taken."""
    at = utcnow()
    batch = ImportBatch(at)
    seq = 0
    for part, record in _records(path, []):
        if part == LEGACY_SALT:
            batch.legacy_salt = record
            continue
        if isinstance(record, ConsentRecord):
            seq += 1
            record = _with_seq(record, seq)
        getattr(batch, part).append(record)
        if len(batch) >= batch_size:
            yield batch
            progress(len(batch))
            batch = ImportBatch(at)
    yield batch
    progress(len(batch))


def _with_seq(record: ConsentRecord, seq: int) -> ConsentRecord:
    return msgspec.structs.replace(record, seq=seq)


def _records(
    path: Path, header_out: list[Header], counts: dict[str, int] | None = None
) -> Iterator[tuple[str, Any]]:
    """Every record of the file as (ImportBatch field, record), each checked; the
    trailer's counts and checksum are checked after the last record, the header is
    appended to ``header_out`` and the records of each type counted in ``counts``."""
    digest = hashlib.sha256()
    counts = {} if counts is None else counts
    header: Header | None = None
    trailer: dict[str, Any] | None = None
    try:
        with gzip.open(path, "rb") as lines:
            for number, data in enumerate(lines, 1):
                where = f"{path}, line {number}"
                if trailer is not None:
                    raise InvalidInput(f"{where}: data after the end of the backup")
                obj = _json(data, where)
                if header is None:
                    header = _header(obj, where)
                    header_out.append(header)
                elif obj.get("type") == "end":
                    trailer = obj
                    continue
                else:
                    kind, record = _record(obj, where)
                    if kind != LEGACY_SALT:
                        counts[kind] = counts.get(kind, 0) + 1
                    yield record
                digest.update(data)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise InvalidInput(f"cannot read the backup {path}: {exc.strerror}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInput(
            f"{path} is not a complete backup (truncated or corrupt): {exc}"
        ) from exc
    if header is None:
        raise InvalidInput(f"{path} is empty: not an idgraph backup")
    if trailer is None:
        raise InvalidInput(f"{path} is truncated: its end line is missing")
    if trailer.get("sha256") != digest.hexdigest():
        raise InvalidInput(f"{path} fails its checksum: it was changed after it was written")
    written = {k: n for k, n in (trailer.get("counts") or {}).items() if n}
    if written != counts:
        raise InvalidInput(f"{path} holds other records than its end line counts")


def _json(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"{where}: not JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where}: not a JSON object")
    return obj


def _header(obj: dict[str, Any], where: str) -> Header:
    if obj.get("format") != FORMAT:
        raise InvalidInput(f"{where}: not an idgraph backup (no {FORMAT!r} header)")
    if obj.get("version") != VERSION:
        raise InvalidInput(
            f"{where}: backup format version {obj.get('version')!r} is unknown to this "
            f"idgraph, which reads version {VERSION}"
        )
    try:
        fields = ("store", "created_at", "counts", "erasure_key_check", "keyring")
        return msgspec.convert({k: obj.get(k) for k in fields}, Header)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{where}: bad header: {exc}") from exc


def _record(obj: dict[str, Any], where: str) -> tuple[str, tuple[str, Any]]:
    kind = obj.get("type")
    if kind == LEGACY_SALT and isinstance(obj.get("record"), str):
        return kind, (LEGACY_SALT, obj["record"])
    if kind not in RECORDS:
        raise InvalidInput(f"{where}: unknown record type {kind!r}")
    part, cls = RECORDS[kind]
    plain = obj.get("record")
    if kind == "consent" and isinstance(plain, dict):
        plain = {**plain, "seq": 0}
    try:
        record = msgspec.convert(plain, cls)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{where}: bad {kind} record: {exc}") from exc
    return kind, (part, record)
