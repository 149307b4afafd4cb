"""The health report: one self-contained HTML page of plots an operator would rather look
at than read (``idgraph report FILE.html``, ``/ui/health`` in ``serve``).

The charts are matplotlib figures rendered to SVG and inlined: the page needs no
JavaScript, loads nothing from anywhere, and prints. It shows counts and distributions
only; a super-node candidate appears as its kind and its opaque ``idn_…`` id (what the
GraphQL ``node(id:)`` field takes), never its value.
"""

from __future__ import annotations

import asyncio
import html
import io
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from idgraph.domain.health import HealthStats
from idgraph.domain.model import utcnow
from idgraph.store.port import Store

if TYPE_CHECKING:  # matplotlib loads only when a report is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Colour-blind-safe (Okabe-Ito), one per series in a chart.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
NO_DECISION = "#BBBBBB"
# The prolog, namespaces and metadata matplotlib writes: an inline SVG in HTML needs none
# of them, and their URLs would look like references to the outside.
SVG_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
SVG_NOISE = re.compile(r'\s+xmlns(:xlink)?="[^"]*"|<metadata>.*?</metadata>\s*', re.DOTALL)
# matplotlib's rc settings are process-wide: one render at a time.
_render_lock = threading.Lock()

NodeId = Callable[[str], str]


async def build(store: Store, node_id: NodeId) -> str:
    """The page for the store as it is now; the charts are drawn in a worker thread."""
    stats = await store.health(utcnow())
    return await asyncio.to_thread(render, stats, node_id)


def render(stats: HealthStats, node_id: NodeId) -> str:
    """The page. ``node_id`` seals an identity node's key into its opaque id."""
    import matplotlib

    with (
        _render_lock,
        matplotlib.rc_context(
            {
                "svg.fonttype": "none",  # text stays text: smaller, and selectable
                "svg.hashsalt": "idgraph",  # ids in the SVG the same from one run to the next
                "font.size": 9,
                "axes.spines.top": False,
                "axes.spines.right": False,
            }
        ),
    ):
        sections = [
            _section(
                "Customer sizes",
                "Live customers by how many identity nodes they hold (both axes logarithmic). "
                "A long tail to the right is a customer that keeps absorbing others.",
                _sizes(stats),
            ),
            _section(
                "Merges and new customers",
                "Per day: customers created (still live) and customers absorbed by a merge.",
                _merges(stats),
            ),
            _section(
                "Links refused, by rule",
                "Per day, by the rule that last refused each link.",
                _refused(stats),
            ),
            _section(
                "Super-node candidates",
                "The identity nodes linked to the most others (accepted and refused evidence).",
                _super_nodes(stats) + _super_node_table(stats, node_id),
            ),
            _section(
                "Consent coverage",
                "Customers per purpose by their latest decision across their identity nodes.",
                _consent(stats),
            ),
            _section(
                "Interactions by type",
                "Interactions stored, per type.",
                _interactions(stats),
            ),
            _section(
                "Store size and growth",
                "Events applied per day, and their running total.",
                _growth(stats) + _counts_table(stats),
            ),
        ]
    return PAGE.format(
        at=html.escape(stats.at.isoformat(timespec="seconds")), body="".join(sections)
    )


# ---- charts ----------------------------------------------------------------------------


def _figure(height: float = 2.6) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, height), layout="constrained")
    return figure, figure.add_subplot()


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    return SVG_NOISE.sub("", SVG_PROLOG.sub("", buffer.getvalue()))


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes)


def _dates(ax: Axes, days: list[date]) -> None:
    """A day axis at least a week wide, so one day's bar is a bar, not the whole plot."""
    from matplotlib import dates

    first, last = _x([days[0], days[-1]])
    pad = max(1.0, (7 - (last - first)) / 2)
    ax.set_xlim(first - pad, last + pad)
    locator = dates.AutoDateLocator(minticks=3)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))


def _x(days: list[date]) -> Any:
    from matplotlib import dates

    return dates.date2num(days)


def _sizes(stats: HealthStats) -> str:
    figure, ax = _figure()
    sizes = sorted(stats.customer_sizes.items())
    if sizes:
        ax.bar([s for s, _ in sizes], [n for _, n in sizes], width=0.6, color=COLOURS[0])
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        _empty(ax, "customers")
    ax.set_xlabel("identity nodes in the customer")
    ax.set_ylabel("customers")
    return _svg(figure)


def _daily_bars(ax: Axes, series: Mapping[str, Mapping[date, int]], what: str) -> None:
    """Stacked bars per day, one colour per series, with a legend."""
    days = sorted({day for counts in series.values() for day in counts})
    if not days:
        _empty(ax, what)
        return
    bottom = [0] * len(days)
    for colour, (label, counts) in zip(_cycle(), series.items(), strict=False):
        heights = [counts.get(day, 0) for day in days]
        ax.bar(_x(days), heights, bottom=bottom, width=0.8, label=label, color=colour)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    _dates(ax, days)
    ax.legend(loc="upper left", frameon=False)


def _cycle() -> Iterable[str]:
    while True:
        yield from COLOURS


def _merges(stats: HealthStats) -> str:
    figure, ax = _figure()
    series = {"new customers": stats.new_customers, "merges": stats.merges}
    _daily_bars(ax, series, "customers")
    ax.set_ylabel("per day")
    return _svg(figure)


def _refused(stats: HealthStats) -> str:
    figure, ax = _figure()
    series = {rule or "(no rule)": days for rule, days in sorted(stats.refused_links.items())}
    _daily_bars(ax, series, "refused links")
    ax.set_ylabel("links per day")
    return _svg(figure)


def _hbars(ax: Axes, labels: list[str], values: list[int], what: str) -> None:
    if not values:
        _empty(ax, what)
        return
    ax.barh(labels[::-1], values[::-1], color=COLOURS[0])


def _super_nodes(stats: HealthStats) -> str:
    figure, ax = _figure()
    labels = [f"#{rank} {node.kind}" for rank, node in enumerate(stats.super_nodes, 1)]
    _hbars(ax, labels, [node.links for node in stats.super_nodes], "links")
    ax.set_xlabel("links to other identity nodes")
    return _svg(figure)


def _consent(stats: HealthStats) -> str:
    figure, ax = _figure()
    purposes = list(stats.consent)
    if not purposes:
        _empty(ax, "consent decisions")
        return _svg(figure)
    total = stats.counts.get("customers", 0)
    decisions = list(stats.consent.values())
    left = [0] * len(purposes)
    parts = (
        ("granted", COLOURS[2], [c.granted for c in decisions]),
        ("denied", COLOURS[3], [c.denied for c in decisions]),
        ("expired grant", COLOURS[1], [c.expired for c in decisions]),
        ("no decision", NO_DECISION, [total - c.granted - c.denied - c.expired for c in decisions]),
    )
    for label, colour, widths in parts:
        ax.barh(purposes, widths, left=left, label=label, color=colour)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlabel("customers")
    ax.legend(loc="lower right", frameon=False, ncols=4, bbox_to_anchor=(1, 1))
    return _svg(figure)


def _interactions(stats: HealthStats) -> str:
    figure, ax = _figure()
    by_volume = sorted(stats.interactions.items(), key=lambda item: (-item[1], item[0]))[:15]
    _hbars(ax, [t for t, _ in by_volume], [n for _, n in by_volume], "interactions")
    ax.set_xlabel("interactions")
    return _svg(figure)


def _growth(stats: HealthStats) -> str:
    figure, ax = _figure()
    days = sorted(stats.events)
    if not days:
        _empty(ax, "events")
        return _svg(figure)
    daily = [stats.events[day] for day in days]
    ax.bar(_x(days), daily, width=0.8, color=COLOURS[5], label="events that day")
    total = ax.twinx()
    running = [sum(daily[: i + 1]) for i in range(len(daily))]
    total.step(_x(days), running, where="mid", color=COLOURS[0], label="events in all")
    total.set_ylim(bottom=0)
    total.spines["right"].set_visible(True)
    ax.set_ylabel("events per day")
    total.set_ylabel("events in all")
    _dates(ax, days)
    return _svg(figure)


# ---- tables and the page ---------------------------------------------------------------


def _super_node_table(stats: HealthStats, node_id: NodeId) -> str:
    if not stats.super_nodes:
        return ""
    rows = "".join(
        f"<tr><td>#{rank}</td><td>{html.escape(node.kind)}</td>"
        f"<td><code>{html.escape(node_id(node.key))}</code></td>"
        f"<td>{node.links:,}</td><td>{node.refused:,}</td></tr>"
        for rank, node in enumerate(stats.super_nodes, 1)
    )
    return (
        "<table><thead><tr><th></th><th>kind</th><th>id (GraphQL <code>node(id:)</code>)"
        f"</th><th>links</th><th>refused</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _counts_table(stats: HealthStats) -> str:
    rows = [(name.replace("_", " "), f"{n:,}") for name, n in stats.counts.items()]
    if stats.store_bytes is not None:
        rows.insert(0, ("database files", f"{stats.store_bytes / 2**20:,.1f} MiB"))
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table class=counts><tbody>{cells}</tbody></table>"


def _section(title: str, caption: str, body: str) -> str:
    return f"<section><h2>{title}</h2><p>{caption}</p><figure>{body}</figure></section>\n"


PAGE = """<!doctype html>
<html lang=en>
<head>
<meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>idgraph health</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 62rem;
       padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.15rem; margin-top: 2.5rem; }}
figure {{ margin: 0; }} svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; margin-top: .5rem; font-size: .9rem; }}
th, td {{ padding: .2rem .8rem .2rem 0; text-align: left; }}
td {{ font-variant-numeric: tabular-nums; }} code {{ font-size: .8rem; word-break: break-all; }}
</style>
</head>
<body>
<h1>idgraph health</h1>
<p>Read at {at}. Counts and distributions only: no identifier value, trait or
interaction content appears on this page.</p>
{body}</body>
</html>
"""
