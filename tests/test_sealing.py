"""Sealed values and the keyring: any JSON value round-trips; a ciphertext moved to
another node, trait or interaction does not open; shredded keys leave values out; two
processes sharing a keyring agree on each node's key; a rotated keyring refuses the old
key, also to a process that opened it before the rotation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgraph.config import Settings
from idgraph.domain.model import InteractionView, TraitRecord
from idgraph.encryption.datakey import DataKey
from idgraph.encryption.keyring import Keyring
from idgraph.encryption.sealing import Sealer
from idgraph.errors import ConfigError, StoreError

KEY = DataKey(b"tests-only-data-key-0123456789abcdef")
NEW_KEY = DataKey(b"tests-only-rotated-key-0123456789abcdef")
AT = datetime(2026, 3, 1, tzinfo=UTC)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def sealer(tmp_path_factory: pytest.TempPathFactory) -> Sealer:
    return Sealer(Keyring(tmp_path_factory.mktemp("keyring") / "idgraph.keyring", KEY))


def trait(key: str, name: str, value: Any) -> TraitRecord:
    return TraitRecord(key, name, value, "web", AT, "e1")


def view(id: str, keys: tuple[str, ...], properties: dict[str, Any]) -> InteractionView:
    return InteractionView(id, "purchase", None, AT, "web", properties, "e1", keys)


@given(value=json_values, key=st.text(min_size=1), name=st.text(min_size=1))
def test_any_trait_value_round_trips_and_opens_only_where_it_was_sealed(
    sealer: Sealer, value: Any, key: str, name: str
) -> None:
    [sealed] = sealer.seal_traits([trait(key, name, value)])
    assert isinstance(sealed.value, str)
    assert sealed.value.startswith("idgraph:sealed:1:")
    assert sealer.open_traits([sealed]) == [trait(key, name, value)]
    for moved in (
        dataclasses.replace(sealed, name=name + "x"),  # another trait of the node
        dataclasses.replace(sealed, key=key + "x"),  # the same trait of another node
        dataclasses.replace(sealed, event_id="e2"),  # another report of the same trait
    ):
        with pytest.raises(StoreError, match="not sealed by this store's keyring"):
            sealer.open_traits([moved])


def test_interaction_properties_open_only_on_their_interaction(sealer: Sealer) -> None:
    properties = {"sku": "X-1", "items": [1, 2]}
    [sealed] = sealer.seal_views([view("i1", ("email:a@x.com",), properties)])
    assert list(sealed.properties) == ["idgraph:sealed"]
    assert sealer.open_interactions([sealed])[0].properties == properties
    with pytest.raises(StoreError):
        sealer.open_interactions([dataclasses.replace(sealed, id="i2")])
    with pytest.raises(StoreError):
        sealer.open_interactions([dataclasses.replace(sealed, keys=("email:b@x.com",))])
    with pytest.raises(StoreError):  # plaintext where a sealed value belongs
        sealer.open_interactions([view("i3", ("email:a@x.com",), properties)])
    assert sealer.open_interactions([view("i4", ("email:a@x.com",), {})])[0].properties == {}


def test_shredded_values_are_left_out(tmp_path: Path) -> None:
    sealer = Sealer(Keyring(tmp_path / "k.keyring", KEY))
    traits = sealer.seal_traits(
        [trait("email:a@x.com", "city", "Oslo"), trait("email:b@x.com", "city", "Lima")]
    )
    [interaction] = sealer.seal_views([view("i1", ("email:a@x.com",), {"p": 1})])
    assert sealer.keyring.shred(["email:a@x.com"]) == 1
    assert [t.value for t in sealer.open_traits(traits)] == ["Lima"]
    assert sealer.open_interactions([interaction])[0].properties == {}
    reopened = Sealer(Keyring(tmp_path / "k.keyring", KEY))  # nothing kept in the file
    assert [t.value for t in reopened.open_traits(traits)] == ["Lima"]
    assert b"Oslo" not in (tmp_path / "k.keyring").read_bytes()


def test_processes_sharing_a_keyring_agree_on_each_nodes_key(tmp_path: Path) -> None:
    one, two = (Keyring(tmp_path / "k.keyring", KEY) for _ in range(2))
    sealed = Sealer(one).seal_traits([trait("email:a@x.com", "city", "Oslo")])
    Sealer(two).seal_traits([trait("email:a@x.com", "tier", 2)])  # finds the same key
    assert [t.value for t in Sealer(two).open_traits(sealed)] == ["Oslo"]
    assert one.id == two.id


def test_after_a_rotation_only_the_new_key_opens_the_keyring(tmp_path: Path) -> None:
    path = tmp_path / "k.keyring"
    running = Keyring(path, KEY)  # a process started before the rotation
    sealed = Sealer(running).seal_traits([trait("email:a@x.com", "city", "Oslo")])
    assert Keyring(path, KEY).rotate(NEW_KEY) == 1
    with pytest.raises(ConfigError, match="not the key the keyring"):
        Keyring(path, KEY)
    with pytest.raises(ConfigError, match="re-wrapped under another data key"):
        Sealer(running).seal_traits([trait("email:b@x.com", "city", "Lima")])
    assert [t.value for t in Sealer(Keyring(path, NEW_KEY)).open_traits(sealed)] == ["Oslo"]


def test_the_keyring_lives_beside_the_server_secret_unless_configured() -> None:
    assert Settings(store="sqlite:///data/idgraph.db").keyring_path() == Path(
        "data/idgraph.keyring"
    )
    assert Settings(store="bolt://db:7687").keyring_path() == Path("idgraph.keyring")
    assert Settings(secret_file="/etc/idgraph/secret").keyring_path() == Path(
        "/etc/idgraph/secret.keyring"
    )
