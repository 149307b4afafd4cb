"""Reading JSON Lines: the fast decoder gives exactly what the strict one gives — the
same values, or the same refusal worded the same way."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from idgraph.config import Settings
from idgraph.jsonl import LineError, ingest_file, read_lines
from idgraph.service import IdentityGraph
from tests.conftest import run_on_graph
from tests.events import event


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


# A line of a file to ingest: an event about a few of a small pool of keys (so events
# merge customers and repeat ids), an event the checks refuse, a line that is not JSON,
# or a blank line.
_keys = st.sampled_from(["email:a@x.com", "email:b@x.com", "cookie:c1", "cookie:c2", "phone:+1"])
_lines = st.one_of(
    st.builds(
        lambda keys, n: json.dumps(event(*keys, event_id=f"e{n}")),
        st.lists(_keys, min_size=1, max_size=3, unique=True),
        st.integers(0, 30),
    ),
    st.just("{not json"),
    st.just(""),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(_lines, max_size=30), st.integers(1, 4))
def test_ingest_in_batches_ends_as_one_batch_would(lines: list[str], batch_size: int) -> None:
    """Whatever the batch size, the summary, the errors (in line order), the bytes
    reported and the customers are those of ingesting the whole file as one batch."""
    data = "".join(line + "\n" for line in lines).encode()

    def run(size: int) -> tuple[object, ...]:
        ended: list[object] = []

        async def body(graph: IdentityGraph) -> None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "events.jsonl"
                path.write_bytes(data)
                read: list[int] = []
                errors: list[LineError] = []
                summary = await ingest_file(graph, path, size, read.append, errors.extend)
            customers = {k: await graph.customer_of(k) for k in ("email:a@x.com", "cookie:c1")}
            together = {
                k: customers[k] == await graph.customer_of(k) for k in customers if customers[k]
            }
            ended.extend(
                [
                    (summary.lines, summary.accepted, summary.duplicates, summary.rejected),
                    [(e.line, e.message) for e in errors],
                    summary.errors == errors,
                    sum(read),
                    sorted(k for k, found in customers.items() if found),
                    together,
                ]
            )

        run_on_graph("sqlite", Settings().rules, body)
        return tuple(ended)

    assert run(batch_size) == run(len(lines) + 1)
