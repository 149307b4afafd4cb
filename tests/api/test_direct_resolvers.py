"""Fields whose arguments are scalars, lists of them or input objects made of them, and
whose only extensions are permission checks, resolve without Strawberry's wrappers
(idgraph.api.direct); every answer must be the one Strawberry's own resolvers give,
errors included."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import pytest
import strawberry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries
from strawberry.extensions import FieldExtension
from strawberry.types import Info

from idgraph.api.access import needs
from idgraph.api.direct import strawberrys_resolvers, use_direct_resolvers
from idgraph.api.scalars import DateTime
from idgraph.config import Settings
from idgraph.domain.access import Permission
from idgraph.errors import Forbidden
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import Api, new_key, nodes, open_api
from tests.api.fuzzing import SCHEMA
from tests.api.test_plain_fields import READS, SEED


@strawberry.enum
class Size(enum.Enum):
    SMALL = "small"


@strawberry.input
class Box:
    label: str
    note: str | None
    tags: list[str] | None = None
    count: int = 3
    at: datetime | None = strawberry.field(default_factory=lambda: None)
    level: int | None = 5
    short_name: str | None = None


@strawberry.input
class Crate:
    box: Box


@strawberry.input
class Made:  # built by a function of its own (as strawberry.pydantic's are): Strawberry's way
    label: str


Made.__strawberry_definition__.from_input = lambda cls, value, context: cls(  # type: ignore[attr-defined]
    label=value["label"].upper()
)


@strawberry.input
class Sized:
    size: Size  # an enum: Strawberry's way


class Shout(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        return str(await next_(source, info, **kwargs)).upper()


@dataclass
class Context:
    """What the resolvers here need of idgraph's request context."""

    granted: frozenset[Permission]

    def check(self, permission: Permission) -> None:
        if permission not in self.granted:
            raise Forbidden(f"no {permission.value!r} permission")


def shown(*values: Any) -> str:
    return repr(values)


@strawberry.type
class Holder:
    shown: str = strawberry.field(extensions=needs(Permission.RESOLVE))
    hidden: str = strawberry.field(extensions=needs(Permission.FORGET))
    missing: str = strawberry.field(extensions=needs(Permission.RESOLVE))
    basic: int


@strawberry.type
class Query:
    @strawberry.field
    def holder(self) -> Holder:
        return Holder(shown="s", hidden="h", missing=None, basic=1)  # type: ignore[arg-type]

    @strawberry.field
    async def plain(self, info: Info, first: int | None = None, word: str = "w") -> str:
        return shown(first, word, type(info).__name__)

    @strawberry.field(name="renamed")
    async def with_names(
        self,
        page_size: int | None = None,
        kinds: Annotated[list[str] | None, strawberry.argument(name="kind")] = None,
        since: datetime | None = None,
        ids: list[strawberry.ID | None] | None = None,
    ) -> str:
        if kinds is not None:
            kinds.append("changed")  # a default list is the resolver's own to change
        return shown(page_size, kinds, since, ids)

    @strawberry.field(extensions=needs(Permission.RESOLVE))
    async def allowed(self, info: Info, n: int = 0) -> str:
        return shown(n)

    @strawberry.field(extensions=[*needs(Permission.RESOLVE), *needs(Permission.FORGET)])
    async def forbidden(self, n: int = 0) -> str:
        return shown(n)

    @strawberry.field
    async def fails(self, n: int = 1) -> int:
        return 1 // (n - 1)

    @strawberry.field
    async def boxed(self, box: Box | None = None) -> str:
        if box is not None and box.tags is not None:
            box.tags.append("changed")
        return shown(box)

    @strawberry.field
    async def crated(self, crate: Crate) -> str:
        return shown(crate)

    @strawberry.field
    async def crates(self, crates: list[Crate]) -> str:  # a list of objects: Strawberry's way
        return shown(crates)

    @strawberry.field
    async def sized_input(self, sized: Sized) -> str:
        return shown(sized)

    @strawberry.field
    async def made(self, made: Made) -> str:
        return shown(made)

    @strawberry.field
    async def maybe(self, word: strawberry.Maybe[str]) -> str:  # Strawberry's way
        return shown(word)

    @strawberry.field
    async def maybe_null(self, word: strawberry.Maybe[str | None]) -> str:
        return shown(word)

    @strawberry.field
    async def sized(self, size: Size = Size.SMALL) -> str:  # an enum
        return shown(size)

    @strawberry.field(extensions=[Shout()])
    async def shouted(self, word: str = "w") -> str:  # another extension
        return word

    @strawberry.field(extensions=needs(Permission.RESOLVE))
    def synchronous(self, info: Info, word: str = "w") -> str:
        return shown(word, type(info).__name__)

    @strawberry.field(extensions=needs(Permission.FORGET))
    def synchronous_forbidden(self) -> str:
        return "no"

    @strawberry.field
    async def rooted(self, root: Any, word: str = "w") -> str:
        return shown(word)


def mini_schema(direct: bool) -> strawberry.Schema:
    schema = strawberry.Schema(query=Query, scalar_overrides={datetime: DateTime})
    if direct:
        use_direct_resolvers(schema)
    return schema


DIRECT = mini_schema(direct=True)
STRAWBERRYS = mini_schema(direct=False)
GRANTED = Context(frozenset({Permission.RESOLVE}))


def test_the_fields_resolved_directly_are_those_with_scalar_arguments_and_checks() -> None:
    assert sorted(name for _, name in strawberrys_resolvers(DIRECT._schema)) == [
        "allowed",
        "boxed",
        "crated",
        "fails",
        "forbidden",
        "hidden",
        "holder",
        "missing",
        "plain",
        "renamed",
        "shown",
        "synchronous",
        "synchronousForbidden",
    ]


def test_a_profiles_fields_resolve_directly_in_idgraphs_schema() -> None:
    """The fields of bench/api.py's ``resolve`` (and of ``customer``) keep the short way: a
    change that sends them back through Strawberry's wrappers costs every profile read."""
    direct = strawberrys_resolvers(SCHEMA)
    for field in [
        ("Query", "resolve"),
        ("Query", "customer"),
        ("Customer", "size"),
        ("Customer", "identifiers"),
        ("Customer", "traits"),
        ("Customer", "interactions"),
        ("InteractionConnection", "totalCount"),
    ]:
        assert field in direct, field


async def assert_answers_are_strawberrys(query: str, variables: Any = None) -> None:
    direct = await DIRECT.execute(query, variables, context_value=GRANTED)
    strawberrys = await STRAWBERRYS.execute(query, variables, context_value=GRANTED)
    assert direct.data == strawberrys.data
    assert [(e.message, e.path) for e in direct.errors or ()] == [
        (e.message, e.path) for e in strawberrys.errors or ()
    ]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ plain }", None),
        ('{ plain(first: 3, word: "x") a: plain(first: null) }', None),
        ('{ renamed(pageSize: 2, kind: ["a", "b"], since: "2026-01-01T00:00:00Z") }', None),
        ("{ renamed(ids: [1, null]) again: renamed(kind: []) }", None),
        ("query($k: [String!]) { a: renamed(kind: $k) b: renamed(kind: $k) }", {"k": ["x"]}),
        ("{ allowed(n: 2) forbidden fails(n: 2) }", None),
        ("{ fails }", None),
        ('{ synchronous(word: "x") synchronousForbidden }', None),
        ("{ holder { shown basic } h: holder { hidden } m: holder { missing } }", None),
        ('{ boxed(box: {label: "b", note: null}) b: boxed(box: {label: "c", tags: []}) }', None),
        ('{ boxed(box: {label: "b", note: "n", count: 1, at: "2026-01-01T00:00:00Z"}) }', None),
        ('{ boxed(box: {label: "b", note: "n", level: null, shortName: "s"}) }', None),
        ('{ made(made: {label: "x"}) maybe(word: "w") maybeNull(word: null) }', None),
        ("query($b: Box) { a: boxed(box: $b) b: boxed(box: $b) }", {"b": {"label": "x"}}),
        ('{ crated(crate: {box: {label: "b", tags: ["t"]}}) }', None),
        ('{ crates(crates: [{box: {label: "b"}}, {box: {label: "c"}}]) }', None),
        ("{ sizedInput(sized: {size: SMALL}) sized shouted rooted }", None),
    ],
)
async def test_answers_are_strawberrys(query: str, variables: Any) -> None:
    await assert_answers_are_strawberrys(query, variables)


@settings(max_examples=150, deadline=None)
@given(query=queries(STRAWBERRYS._schema))
async def test_any_query_is_answered_as_strawberry_would(query: str) -> None:
    await assert_answers_are_strawberrys(query)


@pytest.fixture
async def strawberrys_api(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    """An app on the same store as ``api``, with Strawberry's resolvers only (tests send
    it ``api``'s key, so that both hand out the same cursors)."""
    with monkeypatch.context() as patch:
        patch.setattr("idgraph.api.schema.use_direct_resolvers", lambda schema: None)
        async for opened in open_api(settings, store, admin="test-admin-2"):
            yield opened


ARGUMENTS = st.sampled_from(
    [
        "identifiers(first: 1) { edges { cursor node { value } } pageInfo { hasNextPage } }",
        'identifiers(kind: "cookie") { edges { node { kind value customer { size } } } }',
        'identifiers(after: "nonsense") { edges { node { value } } }',
        'interactions(first: 2, type: ["view"], since: "2026-03-02T00:00:00Z") '
        "{ totalCount edges { cursor node { at properties nodes { value } } } }",
        "interactions(first: 0) { totalCount edges { node { id } } }",
        "traits(first: 1) { edges { node { name value node { kind } } } pageInfo { endCursor } }",
        "devices(first: 1) { edges { node { value os } } } accounts { edges { node { value } } }",
        "consents { purpose status node { value } } redacted { identifiers interactions }",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.one_of(
        READS,
        ARGUMENTS.map(
            lambda s: f'{{ resolve(identifier: {{kind: "email", value: "ann@x.com"}}) {{ {s} }} }}'
        ),
    )
)
async def test_any_query_of_the_api_reads_as_strawberry_would(
    api: Api, strawberrys_api: Api, graph: IdentityGraph, query: str
) -> None:
    """Selections generated from idgraph's own schema, and fields with arguments, on
    customers with data in every part (cursors are the same key's in both apps)."""
    await graph.ingest(SEED)
    direct = await api.client.post("/graphql", json={"query": query}, headers=api.headers)
    strawberrys = await strawberrys_api.client.post(
        "/graphql", json={"query": query}, headers=api.headers
    )
    assert direct.status_code == 200
    assert "GRAPHQL_VALIDATION_FAILED" not in direct.text, query
    assert direct.json() == strawberrys.json()


async def test_a_key_with_the_resolve_permission_only_reads_as_with_strawberry(
    api: Api, strawberrys_api: Api, graph: IdentityGraph, settings: Settings, store: Store
) -> None:
    await graph.ingest(SEED)
    secret = await new_key(store, settings, "resolver", "resolver")
    resolve = '{ resolve(identifier: {kind: "email", value: "ann@x.com"}) { id %s } }'
    permitted = "identifiers { edges { node { value } } }"
    refused = "traits { edges { node { name } } }"
    answers = [await api.as_(secret).query(resolve % s) for s in (permitted, refused)]
    assert nodes(answers[0]["data"]["resolve"]["identifiers"]) == [{"value": "ann@x.com"}]
    assert [(e["path"], e["extensions"]["code"]) for e in answers[1]["errors"]] == [
        (["resolve", "traits"], "FORBIDDEN")
    ]
    assert [
        await strawberrys_api.as_(secret).query(resolve % s) for s in (permitted, refused)
    ] == answers
