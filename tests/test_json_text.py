"""The embedded store writes trait values and interaction properties as JSON text with
msgspec and reads them back with ``json``: every value an event may carry comes back
equal, with its type (an int stays an int, 1.0 stays a float, -0.0 keeps its sign)."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from idgraph.store.sqlite import json_text

text = st.text(st.characters(blacklist_categories=["Cs"]))
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


@given(values)
@example({"f": 1e16, "z": -0.0, "one": 1.0, "big": 2**63 - 1, "tab": "a\tb", "é": "ü"})
def test_a_value_reads_back_as_it_was(value: object) -> None:
    back = json.loads(json_text(value))
    assert repr(back) == repr(value)
