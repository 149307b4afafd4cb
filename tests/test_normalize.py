"""Normalization: the fast email path never disagrees with email-validator; any text is a
node or an IdentifierError (lone surrogates and control characters are refused)."""

from __future__ import annotations

import unicodedata

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


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("cookie:a\ud800b", "value: contains a lone surrogate (U+D800)"),
        ("email:a\x00@x.com", "value: contains a control character (U+0000)"),
        ("phone:+1650\x1b2530000", "value: contains a control character (U+001B)"),
        ("device:d\x7f1", "id: contains a control character (U+007F)"),
        ("account:shop:4\udc002", "id: contains a lone surrogate (U+DC00)"),
        ("account:sh\x9fop:42", "system: contains a control character (U+009F)"),
        ("cookie\n:c", "kind: kind 'cookie\\n' must match [a-z][a-z0-9_]*"),
        ("a" * 65 + ":c", "kind: kind 'aaaa"),
        ("\ud800", "'\\ud800' is not kind:value"),
    ],
)
def test_unacceptable_text_is_an_identifier_error(key: str, message: str) -> None:
    with pytest.raises(IdentifierError) as info:
        Normalizer().parse_key(key)
    assert str(info.value).startswith(message)


def test_surrounding_whitespace_is_trimmed_before_the_text_is_checked() -> None:
    assert Normalizer().parse_key("cookie:\tck-1\r\n").key == "cookie:ck-1"


any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates too
kinds = st.sampled_from(["email", "phone", "cookie", "user_id", "device", "account"]) | any_text
values = any_text | st.sampled_from(["a@x.com", "A@Ünïcode.de", "+1 650 253 0000", "shop:42"])


@settings(max_examples=1000, deadline=None)
@given(kind=kinds, value=values)
def test_any_text_is_a_node_or_an_identifier_error(kind: str, value: str) -> None:
    normalizer = Normalizer()
    for normalize in (
        lambda: normalizer.parse_key(f"{kind}:{value}"),
        lambda: normalizer.identifier(kind, value),
        lambda: normalizer.device(value),
        lambda: normalizer.account(kind, value),
    ):
        try:
            node = normalize()
        except IdentifierError as exc:
            str(exc).encode("utf-8")  # the message can always be shown
            continue
        for text in (node.key, node.kind, node.value, *node.attrs.values()):
            assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in text)
            assert text == text.strip()
