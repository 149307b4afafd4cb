"""Normalization: the fast email path never disagrees with email-validator."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from idgraph.domain.normalize import Normalizer, plain_email
from idgraph.errors import IdentifierError

local = st.text(alphabet="abcXYZ09._+-'!~", min_size=1, max_size=70)
domain = st.text(alphabet="abcxyz09-.", min_size=1, max_size=20)
tld = st.sampled_from(["com", "org", "de", "test", "local", "x", "c0m", "io", "co1", ""])


@settings(max_examples=2000, deadline=None)
@given(local=local, domain=domain, tld=tld)
def test_fast_path_accepts_only_what_email_validator_accepts(
    local: str, domain: str, tld: str
) -> None:
    address = f"{local}@{domain}.{tld}".lower()
    if plain_email(address):
        assert validate_email(address, check_deliverability=False).normalized.lower() == address


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        (" Alice@Example.COM ", "alice@example.com"),
        ("user@münchen.de", "user@münchen.de"),
        ("a" * 65 + "@x.com", "a" * 65 + "@x.com"),
    ],
)
def test_email_normalization(raw: str, normalized: str) -> None:
    assert Normalizer().identifier("email", raw).value == normalized


@pytest.mark.parametrize("raw", ["a..b@x.com", "a@x.test", "a@x", "a b@x.com", "@x.com"])
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(IdentifierError, match="invalid email address"):
        Normalizer().identifier("email", raw)
    with pytest.raises(EmailNotValidError):
        validate_email(raw, check_deliverability=False)


@pytest.mark.parametrize(
    ("region", "raw", "e164"),
    [
        ("US", "(650) 253-0000", "+16502530000"),
        ("GB", "020 7946 0018", "+442079460018"),
        ("US", "+44 20 7946 0018", "+442079460018"),
    ],
)
def test_phones_become_e164_in_the_default_region(region: str, raw: str, e164: str) -> None:
    assert Normalizer(region).identifier("phone", raw).value == e164


def test_parse_key_handles_devices_and_accounts() -> None:
    normalizer = Normalizer()
    assert normalizer.parse_key("device: D1 ").key == "device:D1"
    assert normalizer.parse_key("account:Shop:42").key == "account:shop:42"
    with pytest.raises(IdentifierError, match="is not account:system:id"):
        normalizer.parse_key("account:42")
