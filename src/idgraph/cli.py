"""The ``idgraph`` command line.

Every command takes ``--store`` and ``--config``, before or after its name. Reads of
personal data (``resolve``, ``export``) and steward actions (``unlink``, ``forget``) are
written to the store's audit log with actor ``cli``, misses included.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from idgraph.config import Settings, load_settings
from idgraph.demo import FEATURED_IDENTIFIER, write_demo_file
from idgraph.domain.access import Operation
from idgraph.errors import ConfigError, IdgraphError, InvalidInput, NotFound
from idgraph.export import write_csv, write_graphml
from idgraph.files import PRIVATE, open_private, text_output
from idgraph.jsonl import LineError, ingest_file
from idgraph.keys import KeyRing
from idgraph.segments import FORMATS, Segments, segment_json
from idgraph.segments import export as export_segment
from idgraph.service import IdentityGraph, Profile
from idgraph.store.factory import erasure_key, open_store
from idgraph.store.url import sqlite_path

Command = Callable[[IdentityGraph, argparse.Namespace], Awaitable[int]]

CLI_ACTOR = "cli"
# The purpose of CLI audit entries: an operator at the command line declares none.
OPERATOR = "operator"
NOT_FOUND = "not found"


async def _audit(
    graph: IdentityGraph,
    operation: Operation,
    customer_id: str | None,
    detail: str = "",
    purpose: str = OPERATOR,
) -> None:
    """One audit entry of this command (never with an identifier value in it)."""
    await graph.audit(CLI_ACTOR, purpose, operation, [customer_id], detail)


def profile_json(profile: Profile) -> dict[str, Any]:
    c = profile.customer
    return {
        "customer_id": c.id,
        "aliases": list(c.aliases),
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "split_from": c.split_from,
        "size": c.size,
        "identity_nodes": [
            {
                "key": n.key,
                "kind": n.kind,
                "value": n.value,
                **({"attrs": n.attrs} if n.attrs else {}),
            }
            for n in profile.nodes
        ],
        "traits": {
            name: {
                "value": t.value,
                "source": t.source,
                "at": t.at.isoformat(),
                "identity_node": t.key,
                "event_id": t.event_id,
            }
            for name, t in profile.traits.items()
        },
    }


async def cmd_ingest(graph: IdentityGraph, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    summary = await _ingest_with_progress(graph, path, args.progress, args.quiet)
    print(f"{path}: {summary.text()}", file=sys.stderr)
    return 1 if summary.rejected else 0


async def _ingest_with_progress(
    graph: IdentityGraph, path: Path, progress: bool | None, quiet: bool
) -> Any:
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        disable=not show,
        desc=path.name,
        file=sys.stderr,
    )

    def report(errors: list[LineError]) -> None:
        if errors and not quiet:  # one write per batch: each redraws the bar
            bar.write("\n".join(f"{path}:{e.line}: {e.message}" for e in errors), file=sys.stderr)

    from idgraph.api.metrics import shared_metrics

    metrics = shared_metrics()  # counted by the server when it shares the directory
    try:
        return await ingest_file(
            graph,
            path,
            graph.settings.batch_size_for(),
            bar.update,
            report,
            metrics.record_batch if metrics else lambda result: None,
        )
    finally:
        bar.close()
        if metrics:
            metrics.close()


async def cmd_demo(graph: IdentityGraph, args: argparse.Namespace) -> int:
    path = Path(args.file)
    lines = write_demo_file(path, events=args.events, people=args.people, seed=args.seed)
    print(f"wrote {lines} demo lines to {path} (4 of them deliberately broken)", file=sys.stderr)
    summary = await _ingest_with_progress(graph, path, args.progress, quiet=False)
    print(f"{path}: {summary.text()}", file=sys.stderr)
    print(f"try: idgraph resolve {FEATURED_IDENTIFIER}", file=sys.stderr)
    return 1 if summary.rejected else 0


DEMO_KEYS = (("IDGRAPH_ADMIN_KEY", "admin"), ("IDGRAPH_KEY", "reader"))


async def _demo_keys(graph: IdentityGraph) -> None:
    """An admin key and a reader key for every configured purpose, printed (stderr) as
    shell lines. Only hashes of secrets are stored, so an earlier run's keys cannot be
    shown again: they are revoked, and the new names get a random suffix."""
    ring = KeyRing(graph.store, graph.settings)
    for key in await ring.list():
        if key.revoked_at is None and key.name.startswith(
            tuple(f"demo-{r}-" for _, r in DEMO_KEYS)
        ):
            await ring.revoke(key.name)
            print(f"idgraph: revoked the earlier demo key {key.name}", file=sys.stderr)
    purposes = [p.name for p in graph.settings.purposes]
    suffix = secrets.token_hex(3)
    print("idgraph: demo API keys, shown once (run these lines in your shell):", file=sys.stderr)
    for variable, role in DEMO_KEYS:
        key, secret = await ring.create(f"demo-{role}-{suffix}", role, purposes)
        print(f"export {variable}={secret}  # key {key.name}, role {role}", file=sys.stderr)


async def cmd_serve(graph: IdentityGraph, args: argparse.Namespace) -> int:
    from idgraph.api.metrics import shared_directory

    with shared_directory(args.workers):
        return await _serve(graph, args)


async def _serve(graph: IdentityGraph, args: argparse.Namespace) -> int:
    import uvicorn  # its access log is off: URLs of GET queries carry personal data

    from idgraph.api.app import create_app, serving_gc

    if args.demo:
        demo = argparse.Namespace(
            file="demo-events.jsonl", events=2000, people=200, seed=7, progress=args.progress
        )
        await cmd_demo(graph, demo)
        await _demo_keys(graph)
    api = graph.settings.api
    api = dataclasses.replace(
        api,
        host=args.host or api.host,
        port=args.port or api.port,
        graphiql=api.graphiql or args.demo,
    )
    settings = dataclasses.replace(graph.settings, api=api)
    print(f"idgraph: GraphQL API on http://{api.host}:{api.port}/graphql", file=sys.stderr)
    if args.workers > 1:
        # Each worker process builds its own app from the environment.
        os.environ["IDGRAPH_STORE"] = settings.store
        if api.graphiql:
            os.environ["IDGRAPH_GRAPHIQL"] = "1"
        if args.config:
            os.environ["IDGRAPH_CONFIG"] = args.config
        uvicorn.run(
            "idgraph.api.app:app_from_env",
            factory=True,
            host=api.host,
            port=api.port,
            workers=args.workers,
            access_log=False,
            log_config=_log_config(),
        )
    else:
        config = uvicorn.Config(
            create_app(settings, graph.store),
            host=api.host,
            port=api.port,
            access_log=False,
            log_config=_log_config(),
        )
        serving_gc()
        await uvicorn.Server(config).serve()
    return 0


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with idgraph's own loggers (scheduled purges, configuration
    errors, the store's warnings; never personal data) on its stderr handler at INFO:
    without a handler, Python drops INFO records."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["idgraph"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


async def cmd_resolve(graph: IdentityGraph, args: argparse.Namespace) -> int:
    profile = await graph.resolve(args.identifier)
    if profile is None:
        await _audit(graph, Operation.RESOLVE, None, NOT_FOUND)
        raise NotFound(f"no customer has {graph.normalizer.parse_key(args.identifier).key}")
    await _audit(graph, Operation.RESOLVE, profile.customer.id)
    print(json.dumps(profile_json(profile), indent=2, ensure_ascii=False))
    return 0


async def cmd_unlink(graph: IdentityGraph, args: argparse.Namespace) -> int:
    try:
        plan = await graph.unlink(args.a, args.b, ban=args.ban)
    except NotFound:
        await _audit(graph, Operation.UNLINK, None, NOT_FOUND)
        raise
    parts = [p.customer_id for p in sorted(plan.parts, key=lambda p: p.is_new)]
    detail = f"unlink ban={args.ban} parts={','.join(parts)} reason={args.reason or ''}"
    await _audit(graph, Operation.UNLINK, plan.customer_id, detail)
    print(
        json.dumps(
            {
                "customer_id": plan.customer_id,
                "note": plan.note,
                "rejected_links": [{"a": a, "b": b, "rule": r} for a, b, r in plan.rejected_links],
                "parts": [
                    {"customer_id": p.customer_id, "new": p.is_new, "size": len(p.keys)}
                    for p in plan.parts
                ],
                "banned": list(plan.ban) if plan.ban else None,
            },
            indent=2,
        )
    )
    return 0


async def cmd_check(graph: IdentityGraph, args: argparse.Namespace) -> int:
    problems = await graph.check()
    counts = await graph.store.counts()
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
    if problems:
        print(f"{len(problems)} invariant violations ({summary}):")
        for problem in problems[: args.limit]:
            print(f"  - {problem}")
        if len(problems) > args.limit:
            print(f"  … and {len(problems) - args.limit} more")
        return 1
    print(f"ok: every invariant holds ({summary})")
    return 0


async def cmd_repair(graph: IdentityGraph, args: argparse.Namespace) -> int:
    repaired = await graph.repair()
    print(
        f"ok: dropped {repaired.interactions} interaction and {repaired.consents} consent "
        "attachments; each event's data now sits on its subject alone"
    )
    return 0


async def cmd_export(graph: IdentityGraph, args: argparse.Namespace) -> int:
    if args.to:
        return await _export_to_neo4j(graph, args)
    if args.output is None:
        raise InvalidInput("export needs an output file (or - for stdout), or --to neo4j://host")
    writers = {"graphml": write_graphml, "csv": write_csv}
    with text_output(args.output) as out:
        written = await writers[args.format](graph.store, out)
    await _audit(graph, Operation.EXPORT, None, f"{args.format}: {written} identity nodes")
    print(f"exported {written} identity nodes as {args.format} to {args.output}", file=sys.stderr)
    return 0


async def _export_to_neo4j(graph: IdentityGraph, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from idgraph.transfer import export_to_neo4j, total_records

    show = sys.stderr.isatty() if args.progress is None else args.progress
    total = await total_records(graph.store) if show else None
    with tqdm(total=total, unit=" records", disable=not show, file=sys.stderr) as bar:
        copied = await export_to_neo4j(
            graph.store,
            args.to,
            graph.settings.neo4j,
            erasure_key=erasure_key(graph.settings),
            replace=args.replace,
            batch_size=graph.settings.batch_size_for(args.to),
            progress=bar.update,
        )
    summary = ", ".join(f"{n} {what}" for what, n in copied.items())
    await _audit(graph, Operation.EXPORT, None, f"neo4j: {copied['nodes']} identity nodes")
    print(f"exported {summary} to {args.to}", file=sys.stderr)
    return 0


async def cmd_report(graph: IdentityGraph, args: argparse.Namespace) -> int:
    from idgraph.api.tokens import Tokens
    from idgraph.report import build

    page = await build(graph.store, Tokens.from_secret(graph.settings.secret()).node_id)
    with open_private(args.output) as out:
        out.write(page)
    print(f"wrote the health report to {args.output}", file=sys.stderr)
    return 0


async def cmd_backup(graph: IdentityGraph, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from idgraph.backup import write_backup

    path = Path(args.file)
    # Written beside the file and renamed when complete: a failed backup leaves no
    # file that looks like one.
    partial = path.with_name(f".{path.name}.partial")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    started = time.perf_counter()
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
        with (
            os.fdopen(fd, "wb") as out,
            tqdm(unit=" records", disable=not show, file=sys.stderr) as bar,
        ):
            counts = await write_backup(
                graph.store,
                out,
                batch_size=graph.settings.batch_size_for(),
                progress=bar.update,
            )
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    await _audit(graph, Operation.EXPORT, None, f"backup: {sum(counts.values())} records")
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    print(f"backed up {summary} to {path} in {seconds:.1f} s", file=sys.stderr)
    return 0


async def cmd_restore(graph: IdentityGraph, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from idgraph.backup import restore

    show = sys.stderr.isatty() if args.progress is None else args.progress
    started = time.perf_counter()
    with tqdm(unit=" records", disable=not show, file=sys.stderr) as bar:
        header = await restore(
            Path(args.file),
            graph.store,
            force=args.force,
            batch_size=graph.settings.batch_size_for(),
            progress=bar.update,
        )
    seconds = time.perf_counter() - started
    print(
        f"restored the backup of a {header.store} store taken at "
        f"{header.created_at.isoformat()} into {graph.store.url} in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


async def cmd_init_schema(graph: IdentityGraph, args: argparse.Namespace) -> int:
    from idgraph.store.encrypted import EncryptedStore
    from idgraph.store.neo4j import Neo4jStore

    store = graph.store.inner if isinstance(graph.store, EncryptedStore) else graph.store
    if isinstance(store, Neo4jStore):
        statements = await store.init_schema()
        print(f"ok: {len(statements)} constraints and indexes in place on {graph.store.url}")
    else:
        print(f"ok: {graph.store.url} creates its schema when it opens")
    return 0


async def cmd_keys(graph: IdentityGraph, args: argparse.Namespace) -> int:
    ring = KeyRing(graph.store, graph.settings)
    if args.action == "create":
        key, secret = await ring.create(args.name, args.role, args.purpose or [])
        print(secret)
        print(
            f"created key {key.name!r} (role {key.role.value}; purposes "
            f"{', '.join(key.purposes)}). The secret above is shown once: store it now.",
            file=sys.stderr,
        )
    elif args.action == "revoke":
        await ring.revoke(args.name)
        print(f"revoked key {args.name!r}", file=sys.stderr)
    else:
        for key in await ring.list():
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            print(
                f"{key.name}\t{key.role.value}\t{','.join(key.purposes)}\t"
                f"{key.created_at:%Y-%m-%d}\t{state}"
            )
    return 0


async def cmd_forget(graph: IdentityGraph, args: argparse.Namespace) -> int:
    try:
        report = await graph.forget(args.subject)
    except NotFound:
        await _audit(graph, Operation.FORGET, None, NOT_FOUND, purpose="erasure")
        raise
    await _audit(graph, Operation.FORGET, report.customer_id, purpose="erasure")
    print(json.dumps(dataclasses.asdict(report), indent=2))
    return 0


async def cmd_purge(graph: IdentityGraph, args: argparse.Namespace) -> int:
    from idgraph import retention
    from idgraph.domain.model import utcnow

    settings = graph.settings.retention
    if args.apply:
        from tqdm import tqdm

        show = sys.stderr.isatty() if args.progress is None else args.progress
        with tqdm(unit=" rows", disable=not show, file=sys.stderr) as bar:
            report = await retention.purge(
                graph.store,
                settings,
                utcnow(),
                actor=CLI_ACTOR,
                on_batch=lambda _, deleted: bar.update(deleted),
            )
    else:
        report = await retention.count(graph.store, settings, utcnow())
    if not report.cutoffs:
        print("nothing to purge: no policy is set in [retention] (docs/operations.md)")
        return 0
    print(f"{'policy':<21} {'older than':<26} {'deleted' if report.applied else 'to delete':>10}")
    for policy, cutoff in report.cutoffs.items():
        print(f"{policy.value:<21} {cutoff:%Y-%m-%d %H:%M:%S UTC}    {report.counts[policy]:>10}")
    if not report.applied:
        print("dry run: nothing deleted; idgraph purge --apply deletes these", file=sys.stderr)
    return 0


async def cmd_rotate_key(graph: IdentityGraph, args: argparse.Namespace) -> int:
    from idgraph.encryption.datakey import DataKey
    from idgraph.secret import read_key_file
    from idgraph.store.encrypted import EncryptedStore

    if not isinstance(graph.store, EncryptedStore):
        raise ConfigError("no data key is configured: the store is not encrypted")
    new = DataKey(read_key_file(Path(args.new_key_file), "the new data key file"))
    keyring = graph.store.keyring
    rewrapped = keyring.rotate(new)
    print(
        f"re-wrapped {rewrapped} data-encryption keys in {keyring.path} under the new data "
        "key (no data rewritten). Configure the new key (IDGRAPH_DATA_KEY_FILE or "
        "[encryption] data_key_file) and restart every idgraph process; the old key no "
        "longer opens the keyring.",
        file=sys.stderr,
    )
    return 0


async def cmd_segment(graph: IdentityGraph, args: argparse.Namespace) -> int:
    segments = Segments(graph.store, graph.settings)
    if args.action == "list":
        for segment in await segments.list():
            print(json.dumps(segment_json(segment), ensure_ascii=False))
        return 0
    if args.action == "save":
        saved = await segments.save(args.name, _filter_json(args.filter), args.description)
        print(f"saved segment {saved.name!r}", file=sys.stderr)
        return 0
    if args.action == "delete":
        await segments.delete(args.name)
        print(f"deleted segment {args.name!r}", file=sys.stderr)
        return 0
    purpose = None
    if args.purpose is not None:
        purpose = graph.settings.purpose(args.purpose)
        if purpose is None:
            raise InvalidInput(
                f"unknown purpose {args.purpose!r}; configured: {graph.purpose_names}"
            )
    raw = None if args.filter is None else _filter_json(args.filter)
    query = segments.query(await segments.selection(raw, args.segment), purpose)
    what = f"segment {args.segment}" if args.segment else "filter"
    if args.action == "count":
        count = await graph.store.count_segment(query)
        await _audit(
            graph,
            Operation.SEGMENT_EXPORT,
            None,
            f"count {what}: {count}",
            args.purpose or OPERATOR,
        )
        print(count)
        return 0
    return await _export_segment(graph, args, query, what)


async def _export_segment(
    graph: IdentityGraph, args: argparse.Namespace, query: Any, what: str
) -> int:
    from tqdm import tqdm

    show = sys.stderr.isatty() if args.progress is None else args.progress
    total = await graph.store.count_segment(query) if show else None

    async def audit(ids: list[str]) -> None:
        purpose = args.purpose or OPERATOR
        await graph.audit(
            CLI_ACTOR, purpose, Operation.SEGMENT_EXPORT, ids, f"{args.format} {what}"
        )

    started = time.perf_counter()
    with (
        tqdm(total=total, unit=" customers", disable=not show, file=sys.stderr) as bar,
        text_output(args.output) as out,
    ):
        written = await export_segment(
            graph.store,
            query,
            out,
            format=args.format,
            traits=args.trait or (),
            progress=bar.update,
            audit=audit,
        )
    seconds = time.perf_counter() - started
    print(
        f"exported {written} customers as {args.format} to {args.output} in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def _filter_json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInput("--filter: not valid JSON") from None


DESCRIPTION = "idgraph: stitch customer identifiers into customers and serve them over GraphQL."
EPILOG = """\
--store and --config may come before or after the command.
store URLs: sqlite:///relative/path.db, sqlite:////absolute/path.db, a file path,
            neo4j://host:7687 (else IDGRAPH_STORE, else store in idgraph.toml,
            else sqlite:///idgraph.db)
exit codes: 0 success; 1 the command ran but found a problem (rejected events, broken
            invariants, unknown identifier); 2 bad usage, bad configuration or a
            store that cannot be opened"""


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """--store and --config. Subcommands add them with the default SUPPRESS, so a value
    given before the command is not reset by the subcommand's parser."""
    parser.add_argument(
        "--store", metavar="URL", default=default, help="the store (URL forms: idgraph --help)"
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="idgraph.toml to read (else IDGRAPH_CONFIG, else ./idgraph.toml if present)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idgraph",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help)

    def progress_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="progress bar on stderr (default: when stderr is a terminal)",
        )

    p = command("ingest", help="ingest a JSON Lines file of events")
    p.add_argument("file")
    p.add_argument("--quiet", action="store_true", help="summary only, no per-line errors")
    progress_flags(p)
    p.set_defaults(run=cmd_ingest)

    p = command("demo", help="write a realistic demo dataset and ingest it")
    p.add_argument("--file", default="demo-events.jsonl")
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--people", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    progress_flags(p)
    p.set_defaults(run=cmd_demo)

    p = command("serve", help="serve the GraphQL API (uvicorn)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, IDGRAPH_HOST)")
    p.add_argument("--port", type=int, help="port (default 8000, IDGRAPH_PORT)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="ingest the demo dataset, make an admin and a reader key, serve GraphiQL",
    )
    progress_flags(p)
    p.set_defaults(run=cmd_serve)

    p = command("resolve", help="print the customer of an identifier (kind:value)")
    p.add_argument("identifier", help="e.g. email:alice@example.com, device:ab12, account:shop:42")
    p.set_defaults(run=cmd_resolve)

    p = command("unlink", help="split two identity nodes into different customers")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--ban", action="store_true", help="never merge these two again")
    p.add_argument("--reason", help="why, for the audit log (e.g. a ticket number)")
    p.set_defaults(run=cmd_unlink)

    p = command("check", help="verify the graph invariants")
    p.add_argument("--limit", type=int, default=50, help="violations to print at most")
    p.set_defaults(run=cmd_check)

    p = command(
        "repair",
        help="keep each event's interaction and consent on its subject alone "
        "(earlier versions attached them to every node of the event)",
    )
    p.set_defaults(run=cmd_repair)

    p = command("export", help="export the graph (graphml, csv) or copy it into Neo4j")
    p.add_argument("output", nargs="?", help="output file, or - for stdout (not with --to)")
    p.add_argument("--format", choices=["graphml", "csv"], default="graphml")
    p.add_argument(
        "--to",
        metavar="URL",
        help="copy the store into Neo4j at URL (neo4j://host:7687; IDGRAPH_NEO4J_* credentials)",
    )
    p.add_argument("--replace", action="store_true", help="with --to: wipe the target first")
    progress_flags(p)
    p.set_defaults(run=cmd_export)

    p = command("report", help="write the health report (plots, no personal data) as HTML")
    p.add_argument("output", help="the HTML file to write, e.g. health.html")
    p.set_defaults(run=cmd_report)

    p = command("backup", help="write the whole store to FILE (while it serves): docs/backup.md")
    p.add_argument("file")
    progress_flags(p)
    p.set_defaults(run=cmd_backup)

    p = command("restore", help="load a backup FILE into an empty store (of either kind)")
    p.add_argument("file")
    p.add_argument("--force", action="store_true", help="delete everything the store holds first")
    progress_flags(p)
    p.set_defaults(run=cmd_restore)

    p = command(
        "init-schema", help="create Neo4j constraints and indexes (idempotent; also at start)"
    )
    p.set_defaults(run=cmd_init_schema)

    p = command("keys", help="manage API keys: create, list, revoke")
    keys = p.add_subparsers(dest="action", required=True)
    create = keys.add_parser(
        "create", parents=[common], help="create a key; prints its secret once"
    )
    create.add_argument("name")
    create.add_argument("--role", required=True, help="admin, steward, writer, reader or resolver")
    create.add_argument(
        "--purpose", action="append", help="a purpose the key may use (repeat for several)"
    )
    keys.add_parser("list", parents=[common], help="name, role, purposes, created, state")
    keys.add_parser("revoke", parents=[common], help="revoke a key at once").add_argument("name")
    p.set_defaults(run=cmd_keys)

    p = command("segment", help="find, count and export customers by a filter; saved segments")
    segment = p.add_subparsers(dest="action", required=True)

    def chooser(q: argparse.ArgumentParser) -> None:
        q.add_argument("--filter", metavar="JSON", help="a filter (docs/segments.md)")
        q.add_argument("--segment", metavar="NAME", help="a saved segment (with --filter: both)")
        q.add_argument(
            "--purpose", help="only customers this purpose may see; traits as it sees them"
        )

    export = segment.add_parser(
        "export", parents=[common], help="write the members, one row per customer"
    )
    export.add_argument("output", help="output file, or - for stdout")
    chooser(export)
    export.add_argument("--format", choices=FORMATS, default="csv")
    export.add_argument(
        "--trait", action="append", metavar="NAME", help="a trait column (repeat for several)"
    )
    progress_flags(export)
    chooser(segment.add_parser("count", parents=[common], help="print how many members"))
    segment.add_parser("list", parents=[common], help="the saved segments, as JSON lines")
    save = segment.add_parser("save", parents=[common], help="save a filter under a name")
    save.add_argument("name")
    save.add_argument("--filter", metavar="JSON", required=True, help="the filter")
    save.add_argument("--description", default="", help="what it is for")
    segment.add_parser("delete", parents=[common], help="delete a saved segment").add_argument(
        "name"
    )
    p.set_defaults(run=cmd_segment)

    p = command("purge", help="count, or with --apply delete, what [retention] keeps no more")
    p.add_argument(
        "--apply", action="store_true", help="delete, in batches (default: a dry run that counts)"
    )
    progress_flags(p)
    p.set_defaults(run=cmd_purge)

    p = command("forget", help="erase a customer (by identifier kind:value or id)")
    p.add_argument("subject", help="e.g. email:alice@example.com or cus_…")
    p.set_defaults(run=cmd_forget)

    p = command(
        "rotate-key",
        help="re-wrap the data-encryption keys under a new data key (no data rewritten)",
    )
    p.add_argument("--new-key-file", required=True, metavar="PATH", help="file of the new data key")
    p.set_defaults(run=cmd_rotate_key)
    return parser


async def _run(run: Command, settings: Settings, args: argparse.Namespace) -> int:
    new_file = _new_sqlite_file(settings) if run is cmd_restore else None
    try:
        store = await open_store(settings, restoring=run is cmd_restore)
        try:
            return await run(IdentityGraph(store, settings), args)
        finally:
            await store.close()
    except BaseException:
        if new_file is not None:  # a refused restore leaves no empty store behind
            for file in (new_file, Path(f"{new_file}-wal"), Path(f"{new_file}-shm")):
                file.unlink(missing_ok=True)
        raise


def _new_sqlite_file(settings: Settings) -> Path | None:
    """The configured SQLite file if it does not exist yet, else None."""
    path = sqlite_path(settings.store)
    if path is None or path == ":memory:" or Path(path).exists():
        return None
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(config_file=args.config)
        if args.store:
            settings = dataclasses.replace(settings, store=args.store)
        return asyncio.run(_run(args.run, settings, args))
    except NotFound as exc:
        print(f"idgraph: {exc}", file=sys.stderr)
        return 1
    except IdgraphError as exc:
        for line in str(exc).splitlines():
            print(f"idgraph: {line}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `idgraph export - | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "idgraph: interrupted; applied batches are kept, run again to continue", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
