"""Reading JSON Lines: the fast decoder gives exactly what the strict one gives — the
same values, or the same refusal worded the same way."""

from __future__ import annotations

import io
import json

from hypothesis import example, given
from hypothesis import strategies as st

from idgraph.config import Settings
from idgraph.jsonl import LineError, read_lines


def strict(raw: bytes) -> str:
    """How a line read before msgspec: the repr of its value, or the error message."""

    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not a JSON number")

    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
        return repr(json.loads(text, parse_constant=refuse))
    except ValueError as exc:  # decoding errors, NaN, over 4,300 digits
        return f"invalid JSON: {exc}"
    except RecursionError:
        return "invalid JSON: nested too deeply"


def fast(raw: bytes) -> str:
    [(_, _, parsed)] = list(read_lines(io.BytesIO(raw), Settings().max_line_bytes))
    return parsed.message if isinstance(parsed, LineError) else repr(parsed)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: the event checks refuse those by range
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # lone surrogates too: the event checks refuse those by field
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values, st.booleans())
@example({"a": "\ud800"}, True)
@example({"n": 2**64 + 1, "m": -(2**63) - 1, "f": -0.0}, False)
def test_a_json_line_reads_as_the_strict_decoder_reads_it(value: object, ascii: bool) -> None:
    line = (json.dumps(value, ensure_ascii=ascii) + "\n").encode("utf-8", "surrogatepass")
    assert fast(line) == strict(line)


@given(st.binary(max_size=40).filter(lambda b: b.strip() and b"\n" not in b[:-1]))
@example(b"\xef\xbb\xbf{}")
@example(b'{"a": NaN}')
@example(b'{"a": 1e400}')
@example(b'{"a": "\xed\xa0\x80"}')
@example(b'{"a": 1, "a": 2}')
@example(b'{"a": "x\x01"}')
def test_any_line_reads_as_the_strict_decoder_reads_it(line: bytes) -> None:
    """Values, refusals and their messages are the same for any bytes."""
    expected = strict(line)
    if expected.startswith("invalid JSON: Exceeds the limit"):
        expected = "invalid JSON: an integer with over 4,300 digits"
    assert fast(line) == expected
