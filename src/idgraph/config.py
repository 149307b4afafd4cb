"""Settings, in one place: one validated model read from ``idgraph.toml`` and ``IDGRAPH_*``
environment variables (the environment wins), then command-line flags (applied by the
caller with :func:`dataclasses.replace`).

Every section is a pydantic dataclass: attribute docstrings are the user documentation
(``python -m idgraph.configdoc`` writes ``docs/configuration.md`` from them), unknown keys
are refused, and values keep their TOML type (``port = "80"`` is refused; an environment
variable's text is parsed as its field's type). :func:`load_settings` reports every
problem at once, each with where it came from: the file and the key path, or the
environment variable.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass as plain_dataclass
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_args, get_origin

import phonenumbers
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainValidator,
    Strict,
    TypeAdapter,
    ValidationError,
)
from pydantic.dataclasses import dataclass
from pydantic_core import CoreSchema, core_schema

from idgraph.domain.consent import DEFAULT_PURPOSES, Purpose
from idgraph.domain.retention import RetentionPolicy
from idgraph.domain.rules import DEFAULT_LIMIT, DEFAULT_LIMITS, DEFAULT_MAX_SIZE, Rules
from idgraph.encryption.datakey import DataKey, data_key_configured, load_data_key
from idgraph.errors import ConfigError
from idgraph.secret import ServerSecret, default_secret_path, load_secret
from idgraph.store.url import is_neo4j

DEFAULT_STORE = "sqlite:///idgraph.db"
SQLITE_BATCH_SIZE = 10_000
NEO4J_BATCH_SIZE = 5_000
DEFAULT_CONFIG_FILE = "idgraph.toml"
CONFIG_ENV = "IDGRAPH_CONFIG"

SECTION = ConfigDict(extra="forbid", use_attribute_docstrings=True)

Count = Annotated[int, Strict(), Field(gt=0)]
Seconds = Annotated[float, Strict(), Field(gt=0)]
Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict()]


@plain_dataclass(frozen=True)
class Env:
    """Field marker: the environment variable that sets this field (over the file)."""

    name: str


@plain_dataclass(frozen=True)
class Table:
    """Field marker: the field is written in ``idgraph.toml`` as a table checked by
    ``schema`` and turned into the field's (domain) type by ``build``. A value of the
    field's type, as code passes it, is taken as it is."""

    schema: Any
    build: Callable[[Any], Any]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        kind = get_origin(source) or source
        table = core_schema.no_info_after_validator_function(
            self.build, handler.generate_schema(self.schema)
        )

        def validate(value: Any, validate_table: core_schema.ValidatorFunctionWrapHandler) -> Any:
            return value if isinstance(value, kind) else validate_table(value)

        return core_schema.no_info_wrap_validator_function(validate, table)


def _region(code: str) -> str:
    region = code.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"{code!r} is not a region phonenumbers knows (an ISO 3166 code such as US, GB, DE)"
        )
    return region


def _pattern(pattern: object) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise ValueError("must be a string")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None


ORIGIN = re.compile(r"\*|https?://[^/\s]+")


def _origin(origin: str) -> str:
    if not ORIGIN.fullmatch(origin):
        raise ValueError(f"CORS origin {origin!r} must be scheme://host[:port] (no path), or *")
    return origin


def _origins(value: object) -> object:
    """Origins trimmed and blanks dropped; the environment gives them comma-separated."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return value
    return [
        v.strip() if isinstance(v, str) else v for v in items if not isinstance(v, str) or v.strip()
    ]


def _port(port: int) -> int:
    if not 0 < port < 65536:
        raise ValueError("must be a TCP port, 1 to 65535")
    return port


@dataclass(frozen=True, config=SECTION)
class Neo4jSettings:
    """``[neo4j]``: how to log in to Neo4j when ``store`` is a Neo4j URL."""

    user: Annotated[Text, Env("IDGRAPH_NEO4J_USER")] = "neo4j"
    """User name."""
    password: Annotated[Text, Env("IDGRAPH_NEO4J_PASSWORD")] = Field(default="", repr=False)
    """Password; prefer the environment variable to the file."""
    database: Annotated[Text, Env("IDGRAPH_NEO4J_DATABASE")] = "neo4j"
    """Database name (always passed to the driver)."""


@dataclass(frozen=True, config=SECTION)
class ApiSettings:
    """``[api]``: the GraphQL API, where it listens and the limits it enforces on every
    request (see :mod:`idgraph.api.limits`)."""

    host: Annotated[Text, Env("IDGRAPH_HOST")] = "127.0.0.1"
    """Address ``idgraph serve`` listens on (``--host``)."""
    port: Annotated[int, Strict(), AfterValidator(_port), Env("IDGRAPH_PORT")] = 8000
    """Port ``idgraph serve`` listens on (``--port``)."""
    graphiql: Annotated[Flag, Env("IDGRAPH_GRAPHIQL")] = False
    """Serve the GraphiQL page at ``/graphql``. It holds no data (its queries need a key
    like any other), but a production API has no use for it."""
    max_depth: Count = 10
    """Deepest selection a query may nest."""
    max_aliases: Count = 30
    """Aliases a query may use."""
    max_cost: Count = 100_000
    """Upper bound on the fields a response can hold: lists multiply (a page by its size,
    identity nodes by ``rules.max_size``, other lists by ``list_size``)."""
    list_size: Count = 20
    """Size counted for lists that are not paged, in the query cost."""
    max_tokens: Count = 2_000
    """Tokens a query document may have."""
    max_repeats: Count = 10
    """One response name, or distinct fragments spread, per selection set."""
    max_page: Count = 100
    """Largest page a connection returns (``first``)."""
    default_page: Count = 20
    """Page size when ``first`` is not given."""
    max_body_bytes: Count = 1_048_576
    """Largest request body, in bytes (HTTP 413 above)."""
    max_json_depth: Count = 2_048
    """Deepest JSON nesting in a request body: deep enough that event traits nested far
    deeper than events allow are refused per event, the rest of the batch applied."""
    max_response_bytes: Count = 8_388_608
    """Largest response body, in bytes."""
    timeout: Seconds = 10.0
    """Seconds a query may run (mutations run to their end)."""
    max_batch: Count = 1000
    """Events one ``ingest`` mutation may carry."""
    auth_failures: Count = 20
    """Failed authentications (HTTP 401) from one client address within
    ``auth_window`` seconds, after which its requests get HTTP 429 until the window ends."""
    auth_window: Seconds = 60.0
    """Seconds over which ``auth_failures`` are counted."""
    audit_linger: Annotated[float, Strict(), Field(ge=0, le=1)] = 0.02
    """Seconds a query's audit entries may wait for their write after its response left,
    so that the entries of many requests share one write (entries handed over while a
    write is under way wait for the next). A crash (not a clean stop) loses the entries
    of at most that long and the write under way. 0: a query answers only once its entries
    are committed, so no read is ever unaudited, at the cost of a write transaction's
    wait in every request (~5 ms on Neo4j). Changes always wait for theirs."""
    key_cache_seconds: Annotated[float, Strict(), Field(ge=0)] = 1.0
    """Seconds an API key, once found live, is trusted without asking the store again (a
    round trip per request saved, on Neo4j a large part of a request's time). A key
    revoked by this process is refused at once; one revoked by another process
    (``idgraph keys revoke``, another worker) at most this long after. 0: ask the store
    on every request."""
    cors_origins: Annotated[
        tuple[Annotated[Text, AfterValidator(_origin)], ...],
        BeforeValidator(_origins),
        Env("IDGRAPH_CORS_ORIGINS"),
    ] = ()
    """Origins whose browser pages may call the API (``https://app.example.com``, as
    browsers send them: no path, no trailing slash; ``*`` for any), see
    ``idgraph.api.cors``; the variable takes them comma-separated. None by default."""


@dataclass(frozen=True, config=SECTION)
class EncryptionSettings:
    """``[encryption]``: trait values and interaction properties encrypted at rest, when a
    data key is configured (``IDGRAPH_DATA_KEY`` gives the key itself); see the operations
    guide, "Encryption at rest"."""

    data_key_file: Annotated[Text | None, Env("IDGRAPH_DATA_KEY_FILE")] = None
    """File of the data key (at least 32 characters, e.g. ``openssl rand -hex 32``); never
    created for you. Unset, and no ``IDGRAPH_DATA_KEY``: nothing is encrypted."""
    keyring: Annotated[Text | None, Env("IDGRAPH_KEYRING")] = None
    """File of the keyring: the per-identity-node data keys, wrapped by the data key, kept
    outside the store so that erasure shreds them. Unset: beside the server secret, with
    the suffix ``.keyring`` (``idgraph.keyring``)."""


@dataclass(frozen=True, config=SECTION)
class NormalizationSettings:
    """``[normalization]``: how identifier values are normalized."""

    default_region: Annotated[Text, AfterValidator(_region), Env("IDGRAPH_DEFAULT_REGION")] = "US"
    """Region of phone numbers written without a country code (``+44``…): a two-letter
    code phonenumbers knows."""


@dataclass(frozen=True, config=SECTION)
class RulesTable:
    """``[rules]``: what a merge must satisfy (README, "Resolution rules")."""

    limits: dict[str, Count] = field(default_factory=dict)
    """Most identity nodes of a kind one customer may hold, by kind; added to the
    defaults ``user_id = 1``, ``email = 5``, ``phone = 5``."""
    default_limit: Count = DEFAULT_LIMIT
    """The limit of kinds ``limits`` does not name."""
    max_size: Count = DEFAULT_MAX_SIZE
    """Most identity nodes in one customer."""
    blocked: dict[str, list[Text]] = field(default_factory=dict)
    """Values never linked, by kind (compared trimmed, case-insensitively); placeholders
    such as ``null`` or ``n/a`` always are."""
    blocked_patterns: dict[str, list[Annotated[re.Pattern[str], PlainValidator(_pattern)]]] = field(
        default_factory=dict
    )
    """Regular expressions (case-insensitive, matching the whole value) of values never
    linked, by kind."""
    priorities: dict[str, Annotated[int, Strict()]] = field(default_factory=dict)
    """Order in which an event's nodes join, by kind: lower first. Defaults: user_id 0,
    email 1, phone 2, other kinds and accounts 3, cookie 4, device 5."""

    def rules(self) -> Rules:
        return Rules(
            limits={**DEFAULT_LIMITS, **self.limits},
            default_limit=self.default_limit,
            max_size=self.max_size,
            blocked_values={
                kind: frozenset(v.strip().lower() for v in values)
                for kind, values in self.blocked.items()
            },
            blocked_patterns={k: tuple(v) for k, v in self.blocked_patterns.items()},
            priorities=dict(self.priorities),
        )


@dataclass(frozen=True, config=SECTION)
class PurposeTable:
    """``[purposes.NAME]``: a purpose callers declare; when any is given, they replace the
    built-in purposes (support, analytics, marketing, personalization)."""

    description: Text = ""
    """What the purpose is for."""
    default: Literal["allow", "deny"] = "deny"
    """What consent says when a customer made no decision: ``deny`` for opt-in purposes."""


def _purposes(table: dict[str, PurposeTable]) -> tuple[Purpose, ...]:
    return tuple(Purpose(name, p.description, p.default == "allow") for name, p in table.items())


INTERVAL = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _interval(value: object) -> float:
    """An interval in seconds, from a number of hours or text such as ``"24h"``,
    ``"30m"``, ``"7d"``, ``"90s"``."""
    if isinstance(value, bool):
        raise ValueError('must be a number of hours or an interval such as "24h"')
    if isinstance(value, int | float):
        seconds = float(value) * 3600
    elif isinstance(value, str) and (match := INTERVAL.fullmatch(value.strip())):
        seconds = float(match[1]) * UNIT_SECONDS[match[2]]
    else:
        raise ValueError('must be a number of hours or an interval such as "24h"')
    if not 0 < seconds < float("inf"):
        raise ValueError("must be longer than zero")
    return seconds


Days = Annotated[int, Strict(), Field(gt=0)]


@dataclass(frozen=True, config=SECTION)
class RetentionSettings:
    """``[retention]``: what ``idgraph purge`` deletes, and how often ``idgraph serve``
    runs it (docs/operations.md, "Retention"). Every policy is off unless set."""

    interactions_days: Days | None = None
    """Delete interactions dated (by their event's timestamp) more than this many days
    ago."""
    anonymous_customers_days: Days | None = None
    """Delete customers made only of cookies and devices that were inactive for this
    many days: no change to the customer, and no link, trait, consent decision or
    interaction on its nodes, dated within them."""
    audit_days: Days | None = None
    """Delete audit entries older than this many days."""
    event_ids_days: Days | None = None
    """Forget applied event ids (idempotency records) older than this many days, except
    those whose interaction is still stored; such an event sent again is applied again."""
    keep_expired_consents: Flag = True
    """Keep expired consent decisions as history; ``false`` deletes those a later
    decision of the same identity node for the same purpose replaced."""
    schedule: Annotated[float | None, PlainValidator(_interval)] = None
    """How often ``idgraph serve`` purges (with ``--apply``): hours, or text such as
    ``"24h"``, ``"30m"``, ``"7d"``. Unset: only ``idgraph purge`` does."""
    batch_size: Count = 1_000
    """Rows a purge examines (and at most deletes) per transaction."""

    def policy(self) -> RetentionPolicy:
        return RetentionPolicy(
            interactions_days=self.interactions_days,
            anonymous_customers_days=self.anonymous_customers_days,
            audit_days=self.audit_days,
            event_ids_days=self.event_ids_days,
            keep_expired_consents=self.keep_expired_consents,
        )


RulesField = Annotated[Rules, Table(RulesTable, RulesTable.rules)]
PurposesField = Annotated[
    tuple[Purpose, ...],
    Table(Annotated[dict[str, PurposeTable], Field(min_length=1)], _purposes),
]


@dataclass(frozen=True, config=SECTION)
class Settings:
    """The top level of ``idgraph.toml``."""

    store: Annotated[Text, Env("IDGRAPH_STORE")] = DEFAULT_STORE
    """Where the graph lives (``--store``): ``sqlite:///relative/path.db``,
    ``sqlite:////absolute/path.db``, a plain file path, or ``neo4j://host:7687`` (also
    ``bolt://``, ``neo4j+s://``…)."""
    batch_size: Count | None = None
    """Lines of a file whose events ``idgraph ingest`` applies in one transaction (lines
    1 to ``batch_size``, then the next ``batch_size``…: at most this many events), and
    records that ``idgraph restore``, ``backup`` and ``export --to`` handle in one.
    Unset: 10,000 into SQLite, 5,000 into Neo4j (for ``export --to``, the Neo4j
    target's). Larger batches hold the store's write lock longer (about 0.5 s per 5,000
    events) and take more memory, in idgraph and in Neo4j's transaction state. Into
    SQLite each commit writes every page its batch touched, so larger batches write
    fewer: over a million events on a 2-core machine, 10,000 took the writing process 5%
    less CPU than 5,000 and ran 7% more events/s, for 877 MiB at peak across both
    processes against 845; 20,000 (an earlier version) took 6-9% less CPU than 5,000 for
    991 MiB. Into a Neo4j 5.13 server, 10,000 were a little slower than 5,000 (250-266
    µs of server CPU per event against 220-238), and 20,000 ran now faster and now 7
    times slower (a small server's heap)."""
    worker_min_bytes: Count = 4_194_304
    """``idgraph ingest`` reads and checks the lines of a file this large or larger in a
    second process while the first one writes, when it may use more than one core;
    ``1``: every file. That process takes about half a second to start, while the first
    one checks and applies the first batch itself; each later event then costs the
    writing process some 25 µs less. Measured on two cores, into SQLite (whole runs of
    ``idgraph ingest``, three each, alternated): a file of 2 MB (8,000 typical lines,
    less than a batch) took 3% less to 24% more time that way, one of 4 MB 7–19% less,
    one of 8 MB 9–16% less; into Neo4j, whose writes wait on the server, 16 MB took
    ~6% less (an earlier version). A file of 4 MiB or more is checked by the second
    process."""
    max_line_bytes: Annotated[Count, Env("IDGRAPH_MAX_LINE_BYTES")] = 1_048_576
    """Longest line ``idgraph ingest`` reads, in bytes; a longer one is refused without
    being read whole."""
    max_clock_skew_seconds: Annotated[
        int, Strict(), Field(ge=0), Env("IDGRAPH_MAX_CLOCK_SKEW_SECONDS")
    ] = 300
    """Events dated further ahead of idgraph's clock are refused. NTP-synced hosts agree
    within a second; five minutes (Kerberos' tolerance) absorbs an unsynced clock, yet an
    event cannot claim hours or years ahead and outrank what comes meanwhile."""
    secret_file: Annotated[Text | None, Env("IDGRAPH_SECRET_FILE")] = None
    """File of the server secret (``IDGRAPH_SECRET`` gives the secret itself); unset:
    ``idgraph.secret`` beside an SQLite store, else in the working directory."""
    normalization: NormalizationSettings = field(default_factory=NormalizationSettings)
    rules: RulesField = field(default_factory=Rules)
    purposes: PurposesField = DEFAULT_PURPOSES
    neo4j: Neo4jSettings = field(default_factory=Neo4jSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    encryption: EncryptionSettings = field(default_factory=EncryptionSettings)

    @property
    def default_region(self) -> str:
        return self.normalization.default_region

    def secret(self) -> ServerSecret:
        return load_secret(self.store, self.secret_file)

    @property
    def encrypted(self) -> bool:
        """Whether a data key is configured (trait values are then sealed)."""
        return data_key_configured(self.encryption.data_key_file)

    def data_key(self) -> DataKey | None:
        return load_data_key(self.encryption.data_key_file)

    def keyring_path(self) -> Path:
        if self.encryption.keyring:
            return Path(self.encryption.keyring)
        beside = Path(self.secret_file) if self.secret_file else default_secret_path(self.store)
        return beside.with_suffix(".keyring")

    def purpose(self, name: str) -> Purpose | None:
        return next((p for p in self.purposes if p.name == name), None)

    def batch_size_for(self, store_url: str | None = None) -> int:
        """``batch_size``, or when unset the one that suits the store at ``store_url``
        (by default ``store``, the one these settings open)."""
        if self.batch_size is not None:
            return self.batch_size
        return NEO4J_BATCH_SIZE if is_neo4j(store_url or self.store) else SQLITE_BATCH_SIZE


# ---- loading --------------------------------------------------------------------------


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> Settings:
    """Defaults, then ``config_file`` (else ``IDGRAPH_CONFIG``, else ``./idgraph.toml`` if
    present), then the environment. Raises :class:`ConfigError` listing every problem."""
    env = os.environ if environ is None else environ
    path = Path(config_file or env.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    elif config_file or env.get(CONFIG_ENV):
        raise ConfigError(f"config file {path} does not exist")
    problems: list[str] = []
    from_env: set[tuple[str, ...]] = set()
    for name, loc, adapter in _ENV_FIELDS:
        text = env.get(name)
        if not text:  # unset or empty: the file's value, else the default
            continue
        try:
            value = adapter.validate_strings(text)
        except ValidationError as exc:
            problems += [f"{name}: {_reason(e, loc)}" for e in _errors(exc)]
            continue
        section = data
        for key in loc[:-1]:
            section = section.setdefault(key, {}) if isinstance(section, dict) else {}
        if isinstance(section, dict):
            section[loc[-1]] = value
            from_env.add(loc)
    try:
        settings = _SETTINGS.validate_python(data)
    except ValidationError as exc:
        for error in _errors(exc):
            loc = tuple(str(part) for part in error["loc"])
            where = _env_name(loc) if loc in from_env else f"{path}: {'.'.join(loc)}"
            problems.append(f"{where}: {_reason(error, loc)}")
    if problems:
        raise ConfigError("\n".join(problems))
    return settings


def _errors(exc: ValidationError) -> list[Any]:
    # No input values: a password or an identifier must not reach a message.
    return exc.errors(include_input=False, include_url=False, include_context=False)


def _reason(error: Any, loc: tuple[str, ...]) -> str:
    kind = error["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        close = difflib.get_close_matches(loc[-1], keys_at(loc[:-1]), n=1)
        return "unknown setting" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind in ("dataclass_type", "dataclass_exact_type", "dict_type"):
        return f"must be a table ([{'.'.join(loc)}])"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def sections() -> Iterator[tuple[tuple[str, ...], type]]:
    """Every table of the file, as (key path, its pydantic dataclass); ``*`` stands for a
    name the user chooses (``purposes.*``)."""

    def walk(loc: tuple[str, ...], cls: type) -> Iterator[tuple[tuple[str, ...], type]]:
        yield loc, cls
        for name, info in cls.__pydantic_fields__.items():  # type: ignore[attr-defined]
            inner = _section_type(info.annotation, info.metadata)
            if inner is not None:
                yield from walk((*loc, name, *inner[0]), inner[1])

    yield from walk((), Settings)


def _section_type(annotation: Any, metadata: list[Any]) -> tuple[tuple[str, ...], type] | None:
    """The table type a field holds, with ``("*",)`` when it is a table of such tables."""
    table = next((m for m in metadata if isinstance(m, Table)), None)
    candidate = table.schema if table else annotation
    if get_origin(candidate) is Annotated:
        candidate = get_args(candidate)[0]
    if get_origin(candidate) is dict:
        inner = get_args(candidate)[1]
        return (("*",), inner) if hasattr(inner, "__pydantic_fields__") else None
    return ((), candidate) if hasattr(candidate, "__pydantic_fields__") else None


def keys_at(loc: tuple[str, ...]) -> list[str]:
    """The keys the table at ``loc`` may hold (for "did you mean")."""
    for path, cls in sections():
        if len(path) == len(loc) and all(p in ("*", k) for p, k in zip(path, loc, strict=True)):
            return list(cls.__pydantic_fields__)  # type: ignore[attr-defined]
    return []


def env_fields() -> Iterator[tuple[str, tuple[str, ...], Any]]:
    """Every field an environment variable sets: (variable, key path, field info)."""
    for loc, cls in sections():
        for name, info in cls.__pydantic_fields__.items():  # type: ignore[attr-defined]
            for marker in info.metadata:
                if isinstance(marker, Env):
                    yield marker.name, (*loc, name), info


def _env_name(loc: tuple[str, ...]) -> str:
    return next(name for name, path, _ in env_fields() if path == loc)


_SETTINGS = TypeAdapter(Settings)
_ENV_FIELDS: list[tuple[str, tuple[str, ...], TypeAdapter[Any]]] = [
    (name, loc, TypeAdapter(cast(Any, Annotated[info.annotation, *info.metadata])))
    for name, loc, info in env_fields()
]
