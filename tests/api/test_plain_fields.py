"""Plain fields (fields that only read an attribute, with their whole selection when it
is plain too) take a short way through the executor (idgraph.api.execution); every
answer must be graphql-core's own, errors included."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from graphql import GraphQLObjectType, get_named_type, is_leaf_type, is_required_argument
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from idgraph.api.execution import Execution, plain_fields
from idgraph.api.scalars import DateTime
from idgraph.service import IdentityGraph
from tests.api.conftest import RESOLVE_PROFILE, Api
from tests.api.fuzzing import SCHEMA
from tests.events import event


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Part:
    label: str
    size: int | None


@strawberry.type
class Owner(Named):  # implements an interface: Strawberry gives it an is_type_of check
    parts: list[Part]


@strawberry.type
class Thing:
    name: str
    note: str | None
    count: int
    color: Color
    at: datetime
    parts: list[Part]
    maybe_parts: list[Part | None] | None
    best: Part | None
    owner: Owner
    named: Named  # abstract: never the short way

    @strawberry.field
    def shout(self) -> str:  # a resolver: never a plain field
        return self.name.upper()

    @strawberry.field
    def first_part(self) -> Part | None:  # a resolver's object: its own fields may be plain
        return self.parts[0] if self.parts else None


class Broken:
    """A source whose attribute raises."""

    note = None
    count = 1
    color = Color.RED
    at = datetime(2026, 1, 1, tzinfo=UTC)
    parts: tuple[Part, ...] = ()
    maybe_parts = None
    best = None

    @property
    def name(self) -> str:
        raise RuntimeError("no name")

    @property
    def owner(self) -> Owner:
        raise RuntimeError("no owner")

    named = owner


class Impostor:
    """Has every attribute of an ``Owner`` without being one."""

    name = "imp"
    parts: tuple[Part, ...] = ()


def parts() -> Iterator[Part]:
    """Any iterable is a list's value; a generator can be read only once."""
    yield Part(label="g", size=7)
    yield Part(label=None, size=8)  # type: ignore[arg-type]


ON = datetime(2026, 1, 1, tzinfo=UTC)
BOB = Owner(name="bob", parts=[Part(label="p", size=1)])
THINGS: list[Any] = [
    Thing(
        name="a",
        note=None,
        count=1,
        color=Color.RED,
        at=ON,
        parts=[Part(label="x", size=None), Part(label="y", size=2)],
        maybe_parts=[None, Part(label="z", size=3)],
        best=Part(label="x", size=None),
        owner=BOB,
        named=BOB,
    ),
    Thing(
        name=None,  # type: ignore[arg-type]
        note="n",
        count=2,
        color=Color.BLUE,
        at=datetime(2026, 1, 2, tzinfo=UTC),
        parts=(Part(label=None, size=1),),  # type: ignore[arg-type]
        maybe_parts=[Part(label="q", size="big")],  # type: ignore[list-item]
        best=None,
        owner=Impostor(),  # type: ignore[arg-type]
        named=BOB,
    ),
    Thing(
        name="c",
        note=5,  # type: ignore[arg-type]
        count="x",  # type: ignore[arg-type]
        color="green",  # type: ignore[arg-type]
        at="noon",  # type: ignore[arg-type]
        parts=parts(),  # type: ignore[arg-type]
        maybe_parts=[BOB],  # type: ignore[list-item]
        best="x",  # type: ignore[arg-type]
        owner=Owner(name="ann", parts=[None]),  # type: ignore[list-item]
        named=Part(label="p", size=1),  # type: ignore[arg-type]
    ),
    Broken(),
    None,
]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return THINGS


def schema(
    execution: type[StrawberryGraphQLCoreExecutionContext], incremental: bool = False
) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        types=[Owner],
        scalar_overrides={datetime: DateTime},
        execution_context_class=execution,
        config=StrawberryConfig(enable_experimental_incremental_execution=incremental),
    )


SHORT = schema(Execution)
FULL = schema(StrawberryGraphQLCoreExecutionContext)


async def execute(schema: strawberry.Schema, query: str) -> Any:
    THINGS[2].parts = parts()  # a generator is spent once read
    return await schema.execute(query)


async def assert_answers_are_graphql_cores(query: str) -> None:
    short = await execute(SHORT, query)
    full = await execute(FULL, query)
    assert short.data == full.data
    assert [(e.message, e.path) for e in short.errors or ()] == [
        (e.message, e.path) for e in full.errors or ()
    ]


def test_plain_fields_are_the_fields_that_only_read_an_attribute() -> None:
    found = plain_fields(SHORT._schema)
    assert sorted(name for type_name, name in found if type_name == "Thing") == [
        "at",
        "best",
        "color",
        "count",
        "maybeParts",
        "name",
        "named",
        "note",
        "owner",
        "parts",
    ]


@pytest.mark.parametrize(
    "query",
    [
        "{ things { name note count color at shout } }",
        "{ things { n: name, again: name, note } }",
        "{ things { ... on Thing { color } count @skip(if: true) } }",
        "{ things { __typename name } }",
        "{ things { parts { label size } best { label } } }",
        "{ things { maybeParts { label size __typename } } }",
        "{ things { owner { name parts { label } } } }",
        "{ things { owner { __typename ... on Named { name } } } }",
        "{ things { owner { __typename } } }",
        "{ things { named { name ... on Owner { parts { size } } } } }",
        "{ things { firstPart { label size } } }",
        "{ things { parts { label } p: parts { size label } } }",
        "{ things { parts { label @include(if: false) size } } }",
    ],
)
async def test_answers_are_graphql_cores(query: str) -> None:
    await assert_answers_are_graphql_cores(query)


@settings(max_examples=150, deadline=None)
@given(query=queries(FULL._schema))
async def test_any_query_is_answered_as_graphql_core_would(query: str) -> None:
    await assert_answers_are_graphql_cores(query)


async def test_deferred_fields_take_the_full_way() -> None:
    """idgraph's schema has no ``@defer``; a schema with it still answers right."""
    query = "{ things { parts { label ... @defer { size } } } }"
    short = await execute(schema(Execution, incremental=True), query)
    full = await execute(schema(StrawberryGraphQLCoreExecutionContext, incremental=True), query)
    assert short.initial_result.data == full.initial_result.data  # type: ignore[union-attr]
    assert [p.path for p in short.initial_result.pending] == [  # type: ignore[union-attr]
        p.path
        for p in full.initial_result.pending  # type: ignore[union-attr]
    ]
    assert full.initial_result.pending  # type: ignore[union-attr]


@contextmanager
def full_way() -> Iterator[None]:
    """Every field through graphql-core's own way, as if there were no short one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            Execution, "execute_field", StrawberryGraphQLCoreExecutionContext.execute_field
        )
        yield


async def test_a_profile_reads_the_same_through_the_api(api: Api) -> None:
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
    with full_way():
        assert await api.query(RESOLVE_PROFILE, variables) == short
    assert short["data"]["resolve"]["size"] == 1


SEED = [
    event(
        "email:ann@x.com",
        "cookie:c1",
        "device:d1",
        at=f"2026-03-0{day}T10:00:00Z",
        traits={"city": "Lima", "tier": day},
        consent={"purpose": "support", "status": "granted"},
        interaction={"type": "view", "channel": "web", "properties": {"day": day}},
    )
    for day in range(1, 4)
] + [event("email:bo@x.com", "account:crm:7", traits={"tags": ["a", "b"]})]


def selections(type_: GraphQLObjectType, depth: int) -> st.SearchStrategy[str]:
    """Random selection sets on ``type_`` of idgraph's schema: fields that need no
    argument (their defaults apply), aliases, ``__typename``, inline fragments on
    interfaces and unions, ``@include``/``@skip``; objects nest ``depth`` deep."""
    fields = [
        name
        for name, field in type_.fields.items()
        if not any(is_required_argument(a) for a in field.args.values())
        and (depth > 0 or is_leaf_type(get_named_type(field.type)))
    ]

    def selected(name: str) -> st.SearchStrategy[str]:
        named = get_named_type(type_.fields[name].type)
        if is_leaf_type(named):
            inner = st.just("")
        elif isinstance(named, GraphQLObjectType):
            inner = selections(named, depth - 1).map(lambda s: f" {{ {s} }}")
        else:
            possible = SCHEMA.get_possible_types(named)  # type: ignore[arg-type]
            inner = st.sampled_from(possible).flatmap(
                lambda t: selections(t, depth - 1).map(
                    lambda s, t=t: f" {{ __typename ... on {t.name} {{ {s} }} }}"
                )
            )
        alias = st.sampled_from(["", f"{name}Again: "])  # unique: no conflicting fields
        directive = st.sampled_from(["", "", " @include(if: false)", " @skip(if: false)"])
        return st.tuples(alias, inner, directive).map(lambda p: f"{p[0]}{name}{p[2]}{p[1]}")

    if not fields:
        return st.just("__typename")
    chosen = st.lists(st.sampled_from(fields), min_size=1, max_size=5, unique=True)
    return chosen.flatmap(lambda names: st.tuples(*map(selected, names))).map(
        lambda parts: " ".join(("__typename", *parts))
    )


CUSTOMER = SCHEMA.get_type("Customer")
READS = selections(CUSTOMER, 3).flatmap(  # type: ignore[arg-type]
    lambda s: st.sampled_from(
        [
            f'{{ resolve(identifier: {{kind: "email", value: "ann@x.com"}}) {{ {s} }} }}',
            f"{{ customers(filter: {{all: []}}, first: 3) {{ edges {{ node {{ {s} }} }} }} }}",
        ]
    )
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=READS)
async def test_any_query_of_the_api_reads_the_same_the_full_way(
    api: Api, graph: IdentityGraph, query: str
) -> None:
    """Selections generated from idgraph's own schema on customers with data in every
    part: the same answer, errors included, with the short way switched off."""
    await graph.ingest(SEED)
    short = await api.client.post("/graphql", json={"query": query}, headers=api.headers)
    with full_way():
        full = await api.client.post("/graphql", json={"query": query}, headers=api.headers)
    assert (short.status_code, short.json()) == (full.status_code, full.json()), query
