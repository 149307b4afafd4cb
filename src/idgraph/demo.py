"""A realistic, reproducible stream of events: anonymous visits that later log in,
app sessions on devices, shop purchases, CRM exports, support tickets, a shared
tablet, placeholder values and a few broken records. Used by ``idgraph demo``,
``idgraph serve --demo``, the tests and the benchmarks."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from idgraph.files import open_private

FIRST = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "wendy",
]
LAST = [
    "smith",
    "jones",
    "garcia",
    "miller",
    "davis",
    "martin",
    "lee",
    "walker",
    "hall",
    "young",
    "king",
    "wright",
    "lopez",
    "hill",
    "scott",
    "green",
    "adams",
    "baker",
]
CITIES = ["Berlin", "Lisbon", "Austin", "Toronto", "Madrid", "Oslo", "Denver", "Dublin"]
AREA_CODES = [212, 310, 415, 617, 650, 718, 312, 206]
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class _Person:
    n: int
    name: str
    email: str
    phone: str
    user_id: str | None
    crm_id: str | None
    cookies: list[str] = field(default_factory=list)
    devices: list[tuple[str, str, str]] = field(default_factory=list)


def _person(rng: random.Random, n: int) -> _Person:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return _Person(
        n=n,
        name=f"{first.title()} {last.title()}",
        email=f"{first}.{last}{n}@example.com",
        phone=f"+1{rng.choice(AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}",
        user_id=f"u{n}" if rng.random() < 0.7 else None,
        crm_id=f"crm-{n:07d}" if rng.random() < 0.4 else None,
    )


FEATURED_IDENTIFIER = "email:Alice@Example.com"


def _alice() -> _Person:
    return _Person(0, "Alice Smith", "alice@example.com", "+16502530000", "u0", "crm-0000000")


class DemoGenerator:
    """Yields event dicts in time order. ``people`` sets how many real persons exist.

    Person 0 is Alice (``alice@example.com``), whose first events are scripted so the
    README's examples show a customer stitched from every touchpoint.
    """

    def __init__(self, people: int = 200, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.people = [_alice()] + [_person(self.rng, n) for n in range(1, people)]
        self.clock = START
        # Never ahead of now: ingest refuses events dated in the future (a million events
        # span about 17 months from START).
        self.until = datetime.now(UTC)
        self.seq = 0
        self.shared_tablet = f"tablet-{seed}-shared"

    def events(self, count: int) -> Iterator[dict[str, Any]]:
        rng = self.rng
        kinds = [self._web, self._login, self._app, self._purchase, self._crm, self._support]
        weights = [40, 20, 15, 12, 5, 8]
        alice = self.people[0]
        script = [self._web, self._login, self._app, self._purchase, self._crm, self._support]
        for i in range(count):
            self.seq += 1
            self.clock = min(self.clock + timedelta(seconds=rng.randint(1, 90)), self.until)
            if i < len(script):
                event = script[i](alice)
            else:
                person = rng.choice(self.people)
                event = rng.choices(kinds, weights)[0](person)
            event["id"] = f"evt-{self.seq:08d}"
            event["timestamp"] = self.clock.isoformat().replace("+00:00", "Z")
            yield event

    def _cookie(self, person: _Person) -> str:
        if not person.cookies or self.rng.random() < 0.1:
            person.cookies.append(
                f"ck-{person.n}-{len(person.cookies)}-{self.rng.getrandbits(32):08x}"
            )
        return self.rng.choice(person.cookies)

    def _device(self, person: _Person) -> dict[str, str]:
        if person.user_id and self.rng.random() < 0.01:
            return {"id": self.shared_tablet, "os": "android", "model": "Galaxy Tab"}
        if not person.devices:
            os_name = self.rng.choice(["ios", "android"])
            model = "iPhone 15" if os_name == "ios" else "Pixel 8"
            person.devices.append(
                (f"dev-{person.n}-{self.rng.getrandbits(40):010x}", os_name, model)
            )
        device_id, os_name, model = self.rng.choice(person.devices)
        return {"id": device_id, "os": os_name, "model": model}

    def _web(self, person: _Person) -> dict[str, Any]:
        return {
            "source": "web",
            "identifiers": [{"kind": "cookie", "value": self._cookie(person)}],
            "interaction": {
                "type": "page_view",
                "channel": "web",
                "properties": {"path": self.rng.choice(["/", "/shoes", "/cart"])},
            },
        }

    def _login(self, person: _Person) -> dict[str, Any]:
        ids = [
            {"kind": "cookie", "value": self._cookie(person)},
            {
                "kind": "email",
                "value": person.email.upper() if self.rng.random() < 0.1 else person.email,
            },
        ]
        if person.user_id:
            ids.append({"kind": "user_id", "value": person.user_id})
        event: dict[str, Any] = {
            "source": "web",
            "identifiers": ids,
            "traits": {"name": person.name},
        }
        if self.rng.random() < 0.2:
            event["consent"] = {
                "purpose": "marketing",
                "status": self.rng.choice(["granted", "denied"]),
            }
        return event

    def _app(self, person: _Person) -> dict[str, Any]:
        ids = (
            [{"kind": "user_id", "value": person.user_id}]
            if person.user_id
            else [{"kind": "email", "value": person.email}]
        )
        return {
            "source": "app",
            "identifiers": ids,
            "device": self._device(person),
            "interaction": {"type": "app_open", "channel": "app"},
        }

    def _purchase(self, person: _Person) -> dict[str, Any]:
        ids = [{"kind": "phone", "value": person.phone}]
        if self.rng.random() < 0.05:
            ids.append({"kind": "email", "value": "unknown"})
        return {
            "source": "pos",
            "identifiers": ids,
            "account": {"system": "shop", "id": f"{1000 + person.n}"},
            "traits": {"city": self.rng.choice(CITIES)},
            "interaction": {
                "type": "purchase",
                "channel": "store",
                "properties": {"amount": round(self.rng.uniform(5, 300), 2), "currency": "EUR"},
            },
        }

    def _crm(self, person: _Person) -> dict[str, Any]:
        ids = [{"kind": "email", "value": person.email}, {"kind": "phone", "value": person.phone}]
        if person.crm_id:
            ids.append({"kind": "crm_id", "value": person.crm_id})
        return {
            "source": "crm",
            "identifiers": ids,
            "traits": {"name": person.name, "tier": self.rng.choice(["bronze", "silver", "gold"])},
            "consent": {"purpose": "analytics", "status": "granted"},
        }

    def _support(self, person: _Person) -> dict[str, Any]:
        return {
            "source": "support",
            "identifiers": [{"kind": "email", "value": f"  {person.email} "}],
            "interaction": {
                "type": "ticket",
                "channel": "email",
                "properties": {"subject": "Where is my order?"},
            },
        }


BROKEN_LINES = [
    '{"id": "bad-1", "timestamp": "2026-01-05T10:00:00Z", "source": "web", '
    '"identifiers": [{"kind": "email", "value": "not-an-email"}]}',
    '{"id": "bad-2", "source": "web", "identifiers": [{"kind": "cookie", "value": "x"}]}',
    '{"id": "bad-3", "timestamp": "2026-01-05T10:00:00Z", "source": "web", '
    '"identifiers": [{"kind": "Bad Kind", "value": "x"}]}',
    "{this is not json",
]


def write_demo_file(path: Path, events: int = 2000, people: int = 200, seed: int = 7) -> int:
    """Write a demo JSONL file, with a few broken lines in it; returns lines written."""
    lines = [json.dumps(e) for e in DemoGenerator(people, seed).events(events)]
    for i, broken in enumerate(BROKEN_LINES):
        lines.insert((i + 1) * len(lines) // (len(BROKEN_LINES) + 1), broken)
    with open_private(path) as out:  # synthetic, but shaped like personal data
        out.write("\n".join(lines) + "\n")
    return len(lines)
