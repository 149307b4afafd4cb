"""Settings, in one place: defaults, then ``idgraph.toml``, then environment variables,
then command-line flags (applied by the caller with :func:`dataclasses.replace`).

Environment variables: ``IDGRAPH_STORE``, ``IDGRAPH_CONFIG`` (path of the TOML file),
``IDGRAPH_DEFAULT_REGION``, ``IDGRAPH_NEO4J_USER``, ``IDGRAPH_NEO4J_PASSWORD``,
``IDGRAPH_NEO4J_DATABASE``, ``IDGRAPH_HOST`` and ``IDGRAPH_PORT`` (where ``idgraph serve``
listens), ``IDGRAPH_GRAPHIQL=1`` (serve the GraphiQL page), ``IDGRAPH_SECRET_FILE`` (where the
server secret lives; ``IDGRAPH_SECRET`` gives the secret itself, see :mod:`idgraph.secret`),
``IDGRAPH_MAX_CLOCK_SKEW_SECONDS`` (how far in the future an event's timestamp may lie),
``IDGRAPH_CORS_ORIGINS`` (comma-separated origins whose browser pages may call the API).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idgraph.domain.consent import DEFAULT_PURPOSES, Purpose
from idgraph.domain.rules import DEFAULT_LIMIT, DEFAULT_LIMITS, DEFAULT_MAX_SIZE, Rules
from idgraph.errors import ConfigError
from idgraph.secret import ServerSecret, load_secret

DEFAULT_STORE = "sqlite:///idgraph.db"
DEFAULT_CONFIG_FILE = "idgraph.toml"


@dataclass(frozen=True)
class Neo4jSettings:
    user: str = "neo4j"
    password: str = ""
    database: str = "neo4j"


@dataclass(frozen=True)
class ApiSettings:
    """The GraphQL API: where it listens and the limits it enforces on every request (see
    :mod:`idgraph.api.limits`; every limit but ``host``, ``port`` and ``graphiql`` can be
    set in the ``[api]`` table of ``idgraph.toml``, and so can ``cors_origins``, a list)."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_depth: int = 10
    max_aliases: int = 30
    # An upper bound on the fields a response can hold: lists multiply (a page by its
    # size, identity nodes by rules.max_size, other lists by list_size).
    max_cost: int = 100_000
    list_size: int = 20
    max_tokens: int = 2_000
    max_repeats: int = 10  # one response name, or distinct fragments, per selection set
    max_page: int = 100
    default_page: int = 20
    max_body_bytes: int = 1_048_576
    # Deep enough that event traits nested far deeper than events allow (a thousand
    # levels) are refused per event, with the valid events of the batch applied.
    max_json_depth: int = 2_048
    max_response_bytes: int = 8_388_608
    timeout: float = 10.0  # seconds a query may run (mutations run to their end)
    max_batch: int = 1000
    # Failed authentications (HTTP 401) from one client address within auth_window
    # seconds, after which its requests get HTTP 429 until the window ends.
    auth_failures: int = 20
    auth_window: float = 60.0
    # The GraphiQL page holds no data (its queries need a key like any other), but it is
    # off unless asked for: a production API has no use for it.
    graphiql: bool = False
    # Origins whose browser pages may call the API (see idgraph.api.cors): none by default.
    cors_origins: tuple[str, ...] = ()


ORIGIN = re.compile(r"\*|https?://[^/\s]+")

# The limits ``[api]`` may set, each a positive number.
API_LIMITS = frozenset(
    name
    for name, kind in ApiSettings.__annotations__.items()
    if kind in ("int", "float") and name != "port"
)


@dataclass(frozen=True)
class Settings:
    store: str = DEFAULT_STORE
    default_region: str = "US"
    rules: Rules = field(default_factory=Rules)
    batch_size: int = 5_000
    neo4j: Neo4jSettings = field(default_factory=Neo4jSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    purposes: tuple[Purpose, ...] = DEFAULT_PURPOSES
    secret_file: str | None = None  # None: the default of :mod:`idgraph.secret`
    # Events dated further ahead of idgraph's clock are refused. NTP-synced hosts agree
    # within a second; five minutes (Kerberos' tolerance) absorbs an unsynced clock,
    # yet an event cannot claim hours or years ahead and outrank what comes meanwhile.
    max_clock_skew_seconds: int = 300

    def secret(self) -> ServerSecret:
        return load_secret(self.store, self.secret_file)

    def purpose(self, name: str) -> Purpose | None:
        return next((p for p in self.purposes if p.name == name), None)


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> Settings:
    env = os.environ if environ is None else environ
    path = Path(config_file or env.get("IDGRAPH_CONFIG", DEFAULT_CONFIG_FILE))
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    elif config_file or "IDGRAPH_CONFIG" in env:
        raise ConfigError(f"config file {path} does not exist")
    try:
        return _settings(data, env)
    except (TypeError, ValueError, re.error) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _settings(data: dict[str, Any], env: Mapping[str, str]) -> Settings:
    unknown = data.keys() - {
        "store",
        "batch_size",
        "normalization",
        "rules",
        "neo4j",
        "purposes",
        "secret_file",
        "max_clock_skew_seconds",
        "api",
    }
    if unknown:
        raise ConfigError(f"unknown setting {sorted(unknown)[0]!r} in config file")
    normalization = data.get("normalization", {})
    neo4j = data.get("neo4j", {})
    api = dict(data.get("api", {}))
    origins = api.pop("cors_origins", [])
    if "IDGRAPH_CORS_ORIGINS" in env:
        origins = env["IDGRAPH_CORS_ORIGINS"].split(",")
    return Settings(
        store=env.get("IDGRAPH_STORE") or data.get("store", DEFAULT_STORE),
        default_region=env.get("IDGRAPH_DEFAULT_REGION")
        or normalization.get("default_region", "US"),
        rules=_rules(data.get("rules", {})),
        batch_size=int(data.get("batch_size", Settings.batch_size)),
        neo4j=Neo4jSettings(
            user=env.get("IDGRAPH_NEO4J_USER") or neo4j.get("user", "neo4j"),
            password=env.get("IDGRAPH_NEO4J_PASSWORD") or neo4j.get("password", ""),
            database=env.get("IDGRAPH_NEO4J_DATABASE") or neo4j.get("database", "neo4j"),
        ),
        api=ApiSettings(
            host=env.get("IDGRAPH_HOST") or ApiSettings.host,
            port=int(env.get("IDGRAPH_PORT") or ApiSettings.port),
            graphiql=env.get("IDGRAPH_GRAPHIQL", "") in ("1", "true"),
            cors_origins=_origins(origins),
            **_api_limits(api),
        ),
        purposes=_purposes(data.get("purposes")),
        secret_file=env.get("IDGRAPH_SECRET_FILE") or data.get("secret_file"),
        max_clock_skew_seconds=_non_negative(
            "max_clock_skew_seconds",
            env.get("IDGRAPH_MAX_CLOCK_SKEW_SECONDS")
            or data.get("max_clock_skew_seconds", Settings.max_clock_skew_seconds),
        ),
    )


def _non_negative(name: str, value: object) -> int:
    number = int(str(value))
    if number < 0:
        raise ConfigError(f"{name} must be 0 or more, got {number}")
    return number


def _origins(values: object) -> tuple[str, ...]:
    """CORS origins as browsers send them (``https://app.example.com``, no path, no
    trailing slash), or ``*`` for any; blanks are dropped."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"api.cors_origins must be a list of origins, got {values!r}")
    origins = tuple(v.strip() for v in values if v.strip())
    for origin in origins:
        if not ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"CORS origin {origin!r} must be scheme://host[:port] (no path), or *"
            )
    return origins


def _api_limits(data: dict[str, Any]) -> dict[str, Any]:
    """``[api]``: limits by their ``ApiSettings`` names, each a positive number."""
    unknown = data.keys() - API_LIMITS
    if unknown:
        raise ConfigError(f"unknown api setting {sorted(unknown)[0]!r}")
    limits: dict[str, Any] = {}
    for name, value in data.items():
        integer = ApiSettings.__annotations__[name] == "int"
        if type(value) not in ((int,) if integer else (int, float)) or value <= 0:
            kind = "a positive integer" if integer else "a positive number"
            raise ConfigError(f"api.{name} must be {kind}, got {value!r}")
        limits[name] = value
    return limits


def _purposes(data: dict[str, Any] | None) -> tuple[Purpose, ...]:
    """``[purposes.NAME]`` tables with ``description`` and ``default = "allow"|"deny"``;
    when given, they replace the built-in purposes."""
    if data is None:
        return DEFAULT_PURPOSES
    purposes = []
    for name, spec in data.items():
        default = spec.get("default", "deny")
        if default not in ("allow", "deny"):
            raise ConfigError(f"purposes.{name}.default must be 'allow' or 'deny'")
        purposes.append(Purpose(name, spec.get("description", ""), default == "allow"))
    return tuple(purposes)


def _rules(data: dict[str, Any]) -> Rules:
    unknown = data.keys() - {
        "limits",
        "default_limit",
        "max_size",
        "blocked",
        "blocked_patterns",
        "priorities",
    }
    if unknown:
        raise ConfigError(f"unknown rule setting {sorted(unknown)[0]!r}")
    limits = {**DEFAULT_LIMITS, **{k: int(v) for k, v in data.get("limits", {}).items()}}
    return Rules(
        limits=limits,
        default_limit=int(data.get("default_limit", DEFAULT_LIMIT)),
        max_size=int(data.get("max_size", DEFAULT_MAX_SIZE)),
        blocked_values={
            kind: frozenset(v.strip().lower() for v in values)
            for kind, values in data.get("blocked", {}).items()
        },
        blocked_patterns={
            kind: tuple(re.compile(p, re.IGNORECASE) for p in patterns)
            for kind, patterns in data.get("blocked_patterns", {}).items()
        },
        priorities={k: int(v) for k, v in data.get("priorities", {}).items()},
    )
