"""Charts of a run as PNG bytes (matplotlib, no display needed): metric bars, latency histogram, pass/fail grid."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

GREEN, RED, GREY, BLUE = "#2e9d57", "#d64541", "#e3e3e3", "#3a6fb0"
GRID_MAX_QUESTIONS = 200

# Rows of the pass/fail grid: label, and how a question's metrics give pass (True), fail (False) or n/a (None).
GRID_ROWS: tuple[tuple[str, Any], ...] = (
    ("passed", lambda m: m.get("passed")),
    ("correct answer", lambda m: m.get("correctness")),
    ("hit@1", lambda m: None if m.get("hit@1") is None else m["hit@1"] >= 1),
    ("hit@5", lambda m: None if m.get("hit@5") is None else m["hit@5"] >= 1),
    ("answer in context", lambda m: m.get("context_recall")),
    ("all citations gold", lambda m: None if m.get("citation_precision") is None else m["citation_precision"] >= 1),
    ("faithful (judge)", lambda m: None if m.get("faithfulness") is None else m["faithfulness"] >= 0.5),
)

# Metrics drawn as bars (all in [0, 1]).
BAR_METRICS = ("pass_rate", "correctness", "f1", "hit@1", "hit@3", "hit@5", "mrr", "context_recall",
               "citation_precision", "abstention_precision", "abstention_recall", "faithfulness", "relevancy")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def metric_bars(metrics: dict[str, Any], counts: dict[str, int]) -> bytes:
    """Horizontal bars, one per rate metric, labelled with value and the number of questions."""
    names = [n for n in BAR_METRICS if metrics.get(n) is not None]
    fig = _figure(7.5, 0.42 * max(len(names), 1) + 1.0)
    ax = fig.add_subplot()
    values = [metrics[n] for n in names]
    colors = [GREEN if v >= 0.8 else "#e0a526" if v >= 0.5 else RED for v in values]
    ax.barh(range(len(names)), values, color=colors)
    ax.set_yticks(range(len(names)), [f"{n} (n={counts.get(n, 0)})" for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    for i, v in enumerate(values):
        ax.text(v + 0.01, i, f"{v:.2f}", va="center", fontsize=9)
    ax.set_title("Metrics (higher is better)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def latency_histogram(latencies: Sequence[float], p50: float | None, p95: float | None) -> bytes:
    """Histogram of per-question latency with the p50 and p95 marked."""
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    if latencies:
        ax.hist(latencies, bins=min(30, max(5, len(latencies) // 3)), color=BLUE, alpha=0.85)
    for value, label, style in ((p50, "p50", "--"), (p95, "p95", ":")):
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, label=f"{label} {value:.0f} ms")
    ax.set_xlabel("latency per question (ms)")
    ax.set_ylabel("questions")
    ax.set_title("Latency")
    if p50 is not None:
        ax.legend()
    return _png(fig)


def pass_fail_grid(rows: Sequence[dict[str, Any]]) -> bytes:
    """One column per question, one row per check: green pass, red fail, grey not applicable."""
    from matplotlib.colors import ListedColormap

    shown = list(rows[:GRID_MAX_QUESTIONS])
    checks = [(label, f) for label, f in GRID_ROWS if any(f(r["metrics"]) is not None for r in shown)]
    grid = [[{None: 0, False: 1, True: 2}[None if (v := f(r["metrics"])) is None else bool(v)] for r in shown]
            for _, f in checks]
    fig = _figure(min(2.5 + 0.16 * len(shown), 40), 1.2 + 0.35 * len(checks) + 0.6)
    ax = fig.add_subplot()
    ax.imshow(grid or [[0]], cmap=ListedColormap([GREY, RED, GREEN]), vmin=0, vmax=2, aspect="auto",
              interpolation="nearest")
    ax.set_yticks(range(len(checks)), [label for label, _ in checks])
    ax.set_xticks(range(len(shown)), [str(r["id"]) for r in shown], rotation=90, fontsize=6)
    # Cell borders as two line collections (minor ticks would cost a tick artist per question).
    ax.vlines([x - 0.5 for x in range(1, len(shown))], -0.5, len(checks) - 0.5, color="white", linewidth=0.8)
    ax.hlines([y - 0.5 for y in range(1, len(checks))], -0.5, len(shown) - 0.5, color="white", linewidth=0.8)
    ax.tick_params(length=0)
    more = f" (first {len(shown)} of {len(rows)})" if len(rows) > len(shown) else ""
    ax.set_title(f"Per question: green pass, red fail, grey n/a{more}")
    return _png(fig)


def all_charts(rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> dict[str, bytes]:
    """Every chart of a run, by file name."""
    m = summary["metrics"]
    return {
        "metrics.png": metric_bars(m, summary["counts"]),
        "latency.png": latency_histogram([r["latency_ms"] for r in rows], m.get("latency_p50_ms"),
                                         m.get("latency_p95_ms")),
        "questions.png": pass_fail_grid(rows),
    }
