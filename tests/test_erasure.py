"""The erasure record's hashes (idgraph.store.erasure), whatever the keys."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from idgraph.store.erasure import ErasureHasher
from tests.conftest import ERASURE_KEY

keys = st.lists(st.text(st.characters(exclude_categories=["Cs"]), min_size=1), max_size=20)


@given(keys, keys, st.none() | st.text(st.characters(codec="ascii"), min_size=1))
def test_candidates_find_exactly_the_erased_keys_under_both_schemes(
    erased: list[str], asked: list[str], salt: str | None
) -> None:
    hasher = ErasureHasher(ERASURE_KEY, salt)
    record = {hasher.hash(k) for k in erased}
    if salt is not None:  # entries of a store erased before the HMAC, re-keyed
        record |= {hasher.rekey(hashlib.sha256(f"{salt}:{k}".encode()).hexdigest()) for k in erased}
    found = {key for h, key in hasher.candidates(asked).items() if h in record}
    assert found == set(asked) & set(erased)


@given(st.text(min_size=1, alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])))
def test_the_hash_depends_on_the_key(key: str) -> None:
    other = ErasureHasher(b"another-erasure-key".ljust(32, b"x"))
    assert ErasureHasher(ERASURE_KEY).hash(key) != other.hash(key)
    assert ErasureHasher(ERASURE_KEY).key_check != other.key_check
