"""Plain leaves (fields that only read an attribute) take a short way through the
executor (idgraph.api.execution); every answer must be graphql-core's own."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from idgraph.api.execution import Execution, plain_leaves
from idgraph.api.scalars import DateTime
from tests.api.conftest import RESOLVE_PROFILE, Api


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Thing:
    name: str
    note: str | None
    count: int
    color: Color
    at: datetime

    @strawberry.field
    def shout(self) -> str:  # a resolver: never a plain leaf
        return self.name.upper()


class Broken:
    """A source whose attribute raises."""

    note = None
    count = 1
    color = Color.RED
    at = datetime(2026, 1, 1, tzinfo=UTC)

    @property
    def name(self) -> str:
        raise RuntimeError("no name")


THINGS: list[Any] = [
    Thing(name="a", note=None, count=1, color=Color.RED, at=datetime(2026, 1, 1, tzinfo=UTC)),
    Thing(name=None, note="n", count=2, color=Color.BLUE, at=datetime(2026, 1, 2, tzinfo=UTC)),  # type: ignore[arg-type]
    Thing(name="c", note=5, count="x", color="green", at="noon"),  # type: ignore[arg-type]
    Broken(),
]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return THINGS


def schema(execution: type[StrawberryGraphQLCoreExecutionContext]) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query, scalar_overrides={datetime: DateTime}, execution_context_class=execution
    )


def test_plain_leaves_are_the_fields_that_only_read_an_attribute() -> None:
    found = plain_leaves(schema(Execution)._schema)
    assert sorted(name for type_name, name in found if type_name == "Thing") == [
        "at",
        "color",
        "count",
        "name",
        "note",
    ]


@pytest.mark.parametrize(
    "query",
    [
        "{ things { name note count color at shout } }",
        "{ things { n: name, again: name, note } }",
        "{ things { ... on Thing { color } count @skip(if: true) } }",
        "{ things { __typename name } }",
    ],
)
async def test_answers_are_graphql_cores(query: str) -> None:
    short = await schema(Execution).execute(query)
    full = await schema(StrawberryGraphQLCoreExecutionContext).execute(query)
    assert short.data == full.data
    assert [(e.message, e.path) for e in short.errors or ()] == [
        (e.message, e.path) for e in full.errors or ()
    ]
    assert short.errors or "shout" not in query  # the cases above do raise


async def test_a_profile_reads_the_same_through_the_api(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.data(
        "mutation($e: [EventInput!]!) { ingest(events: $e) { accepted } }",
        {
            "e": [
                {
                    "id": f"e{i}",
                    "source": "web",
                    "timestamp": f"2026-03-0{i}T10:00:00Z",
                    "identifiers": [{"kind": "email", "value": "ann@example.com"}],
                    "traits": {"name": "Ann", "tier": i},
                    "interaction": {"type": "view", "channel": "web", "properties": {"i": i}},
                }
                for i in range(1, 4)
            ]
        },
    )
    variables = {"id": {"kind": "email", "value": "ann@example.com"}}
    short = await api.query(RESOLVE_PROFILE, variables)
    monkeypatch.setattr(Execution, "execute_field", Execution.__mro__[1].execute_field)
    assert await api.query(RESOLVE_PROFILE, variables) == short
    assert short["data"]["resolve"]["size"] == 1
