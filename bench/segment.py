"""Segment benchmark: a three-condition filter's first page with its total, and a full
export, on a store of DemoGenerator events; or (``--check``) the held-out check.

    python bench/segment.py                              # 270k events, temp SQLite store
    python bench/segment.py --store sqlite:////tmp/b.db  # reuse a store (built if empty)
    python bench/segment.py --store bolt://localhost:7687 --events 270000
    python bench/segment.py --check --events 100000      # precision/recall via the CLI

The check generates a dataset whose people the generator knows, exports a held-out
filter through ``idgraph segment export`` and compares the exported customers with the
people a reference computation over the raw events selects (never the store's answer).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import io
import json
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from idgraph.config import Settings, load_settings
from idgraph.demo import DemoGenerator
from idgraph.domain.access import AuditEntry
from idgraph.domain.model import utcnow
from idgraph.jsonl import ingest_file
from idgraph.segments import Segments, export
from idgraph.service import IdentityGraph
from idgraph.store.factory import open_store

# The example, in the demo's vocabulary.
EXAMPLE = {
    "all": [
        {"trait": {"name": "city", "eq": "Berlin"}},
        {"interactions": {"type": "purchase", "atLeast": 2}},
        {"consent": {"purpose": "marketing", "status": "GRANTED"}},
    ]
}
# The held-out filter of the check: people of a tier who said yes to marketing.
HELD_OUT = {
    "all": [
        {"trait": {"name": "tier", "in": ["gold", "silver"]}},
        {"consent": {"purpose": "marketing", "status": "GRANTED"}},
    ]
}


def reference_people(events: Iterable[dict[str, Any]]) -> set[str]:
    """The emails of the people :data:`HELD_OUT` selects, from the raw events alone: a
    person's tier is the one of their latest CRM export; their marketing decision the
    latest of their logins (no decision: the opt-in default, deny). Every CRM export and
    login carries the person's email, so a person is known by it.

    The generator draws phone numbers at random, so two people may share one, and then
    nothing tells them apart: such people count as one, with the latest tier and decision
    of either (a CRM export carries the email and the phone of its person)."""
    group: dict[str, str] = {}  # email or phone -> a representative email

    def find(item: str) -> str:
        while group.get(item, item) != item:
            item = group[item]
        return item

    tier: dict[str, tuple[int, str]] = {}
    marketing: dict[str, tuple[int, str]] = {}
    for n, event in enumerate(events):
        ids = {i["kind"]: i["value"].strip().lower() for i in event["identifiers"]}
        email = ids.get("email")
        if email is None:
            continue
        if event["source"] == "crm":
            group[find(email)] = find("phone:" + ids["phone"])  # union
            tier[email] = (n, event["traits"]["tier"])
        consent = event.get("consent")
        if consent and consent["purpose"] == "marketing":
            marketing[email] = (n, consent["status"])
    members: dict[str, set[str]] = {}
    for email in {*tier, *marketing}:
        members.setdefault(find(email), set()).add(email)
    chosen: set[str] = set()
    for emails in members.values():
        tiers = [tier[e] for e in emails if e in tier]
        decisions = [marketing[e] for e in emails if e in marketing]
        tiered = bool(tiers) and max(tiers)[1] in ("gold", "silver")
        if tiered and decisions and max(decisions)[1] == "granted":
            chosen |= emails
    return chosen


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    line = f"+-{'-' * width}-+-{'-' * 20}-+"
    return "\n".join([line, *(f"| {k:<{width}} | {v:>20} |" for k, v in rows), line])


def write_events(path: Path, events: int, people: int, seed: int) -> list[dict[str, Any]]:
    generated = list(DemoGenerator(people=people, seed=seed).events(events))
    with path.open("w") as out:
        for event in generated:
            out.write(json.dumps(event) + "\n")
    return generated


async def ensure_data(settings: Settings, args: argparse.Namespace, workdir: Path) -> None:
    store = await open_store(settings)
    try:
        if (await store.counts())["events"]:
            return
        path = workdir / "events.jsonl"
        write_events(path, args.events, args.people or max(args.events // 13, 10), seed=1)
        await ingest_file(IdentityGraph(store, settings), path, settings.batch_size_for())
    finally:
        await store.close()


def _p(values: list[float], percent: int) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]:,.1f}"


async def measure(settings: Settings, runs: int) -> list[tuple[str, str]]:
    store = await open_store(settings)
    segments = Segments(store, settings)
    marketing = settings.purpose("marketing")
    rows: list[tuple[str, str]] = [("customers", f"{(await store.counts())['customers']:,}")]
    try:
        for label, purpose in (("no purpose", None), ("purpose marketing", marketing)):
            timings: list[float] = []
            cpu: list[float] = []
            total = 0
            for _ in range(runs):
                started, used = time.perf_counter(), time.process_time()
                query = segments.query(segments.parse(EXAMPLE), purpose)
                page = await store.segment_page(query, first=50)
                timings.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - used) * 1000)
                total = page.total_count
            rows += [
                (f"page of 50 + total, {label}: members", f"{total:,}"),
                (f"  p50 / p95 ({runs} runs)", f"{_p(timings, 50)} / {_p(timings, 95)} ms"),
                # On a shared machine wall time includes waiting for a core; CPU time not.
                ("  CPU p50 / p95", f"{_p(cpu, 50)} / {_p(cpu, 95)} ms"),
            ]

        async def audit(ids: list[str]) -> None:
            now = utcnow()
            entries = [AuditEntry(now, "bench", "operator", "segment export", c) for c in ids]
            await store.append_audit(entries)

        everyone = segments.query(segments.parse({"all": []}), None)
        for traits in ((), ("city", "tier")):
            started = time.perf_counter()
            written = await export(
                store, everyone, io.StringIO(), format="csv", traits=traits, audit=audit
            )
            seconds = time.perf_counter() - started
            rows += [
                (f"export, every customer, audited, {len(traits)} traits", f"{written:,}"),
                ("  seconds", f"{seconds:,.2f}"),
                ("  customers/s", f"{written / seconds:,.0f}"),
            ]
    finally:
        await store.close()
    return rows


def check(events: int, people: int, workdir: Path, store: str | None) -> list[tuple[str, str]]:
    """Export :data:`HELD_OUT` through the CLI and score it against the reference."""
    from idgraph.cli import main

    url = store or f"sqlite:///{workdir / 'check.db'}"
    path = workdir / "held-out.jsonl"
    generated = write_events(path, events, people, seed=11)
    assert main(["ingest", "--store", url, "--quiet", "--no-progress", str(path)]) == 0
    out = workdir / "members.csv"
    assert (
        main(
            [
                "segment",
                "export",
                "--store",
                url,
                "--filter",
                json.dumps(HELD_OUT),
                "--no-progress",
                str(out),
            ]
        )
        == 0
    )
    with out.open() as rows:
        exported = {row["customer_id"] for row in csv.DictReader(rows)}
    expected = reference_people(generated)
    emails = sorted({p.email for p in DemoGenerator(people=people, seed=11).people})
    found = asyncio.run(_customers_of(url, emails))
    chosen = {email for email, customer in found.items() if customer in exported}
    hits = len(chosen & expected)
    unexplained = exported - {found[e] for e in chosen}
    return [
        ("held-out events", f"{events:,}"),
        ("people (reference)", f"{len(expected):,}"),
        ("customers exported", f"{len(exported):,}"),
        ("exported, no such person", f"{len(unexplained):,}"),
        ("precision", f"{hits / len(chosen) if chosen else 1.0:.3f}"),
        ("recall", f"{hits / len(expected) if expected else 1.0:.3f}"),
    ]


async def _customers_of(url: str, emails: list[str]) -> dict[str, str]:
    settings = dataclasses.replace(load_settings(), store=url)
    store = await open_store(settings)
    try:
        found = await store.customer_ids_of([f"email:{e}" for e in emails])
    finally:
        await store.close()
    return {key.removeprefix("email:"): cid for key, cid in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=270_000)
    parser.add_argument("--people", type=int, default=0, help="default: events / 13")
    parser.add_argument("--store", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--runs", type=int, default=40, help="timed runs of the page")
    parser.add_argument("--check", action="store_true", help="the held-out check instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.check:
            people = args.people or max(args.events // 13, 10)
            rows = check(args.events, people, Path(tmp), args.store)
        else:
            settings = dataclasses.replace(
                load_settings(), store=args.store or f"sqlite:///{tmp}/bench.db"
            )
            asyncio.run(ensure_data(settings, args, Path(tmp)))
            rows = asyncio.run(measure(settings, args.runs))
    print(table(rows))


if __name__ == "__main__":
    main()
