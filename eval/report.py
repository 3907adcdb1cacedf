"""Outputs of an evaluation run, comparisons of two runs, and `--fail-under` thresholds.

A run directory holds `results.jsonl` (one row per question), `summary.json` (with the retrieval and
answer settings of the run), `report.md` (charts as files under charts/) and `report.html`
(self-contained: charts embedded as base64 PNG). Both reports put the failed questions first and end
with a glossary of the metrics. `--compare A B --out DIR` writes `comparison.md` and `comparison.json`.

Question sets are untrusted text: report.html escapes it as HTML, report.md as Markdown (a Markdown
renderer would otherwise make `<script>` or `[x](javascript:...)` from a question set live).
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import QAError
from eval.metrics import SUMMARY_METRICS
from index.sanitize import safe_text

if TYPE_CHECKING:
    from rich.console import Console

_MS = ("latency_p50_ms", "latency_p95_ms")


def fmt(name: str, value: Any) -> str:
    """A metric value for people: rates with 3 decimals, milliseconds and counts as integers."""
    if value is None:
        return "n/a"
    if name in _MS or name in ("judge_failed",):
        return f"{value:.0f}"
    if name == "answer_words":
        return f"{value:.1f}"
    return f"{value:.3f}"


def _ordered(metrics: dict[str, Any]) -> list[str]:
    return [n for n in SUMMARY_METRICS if n in metrics] + sorted(n for n in metrics if n not in SUMMARY_METRICS)


# What each metric measures, for the reports' glossary (the definitions live in eval/metrics.py).
GLOSSARY: dict[str, str] = {
    "pass_rate": "share of questions that passed: an answerable question answered correctly, an unanswerable "
                 "one abstained; a question the pipeline rejected fails",
    "correctness": "an acceptable answer appears, as whole words, in the answer text (answerable questions)",
    "f1": "word overlap (F1) between the answer and the best acceptable answer, as in SQuAD",
    "hit@1": "a gold article is the first retrieved article",
    "hit@3": "a gold article is among the first 3 retrieved articles",
    "hit@5": "a gold article is among the first 5 retrieved articles",
    "mrr": "mean reciprocal rank of the first gold article among the retrieved articles (0 when absent)",
    "context_recall": "an acceptable answer appears in the retrieved chunks (the same ranked chunks in every mode)",
    "citation_precision": "share of cited articles that are gold articles",
    "abstention_precision": "share of abstentions that were on unanswerable questions",
    "abstention_recall": "share of unanswerable questions on which the bot abstained",
    "answer_words": "mean length of the non-abstaining answers, in words",
    "latency_p50_ms": "median time to answer one question, in milliseconds",
    "latency_p95_ms": "95th-percentile time to answer one question, in milliseconds",
    "faithfulness": "LLM judge: the answer is supported by what the answerer read (an LLM's passages, else the chunks)",
    "relevancy": "LLM judge: the answer and what the answerer read address the question",
    "judge_failed": "LLM judgements that could not be made (errors, unparseable replies)",
}

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}<>()#+!|~])")


def md(text: Any) -> str:
    """Text made inert in Markdown (and in the HTML a renderer makes of it): one line, specials escaped."""
    flat = " ".join(safe_text(str(text)).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _glossary_md(names: list[str]) -> list[str]:
    return ["## Glossary", ""] + [f"- **{n}**: {GLOSSARY[n]}" for n in names if n in GLOSSARY]


def _settings_lines(settings: dict[str, Any]) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(settings.items())]


# --- writing ------------------------------------------------------------------------------
def write_run(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Path]:
    """Write every output file of a run into out/; returns their paths by name."""
    from eval.charts import all_charts

    out = Path(out)
    (out / "charts").mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("results.jsonl", "summary.json", "report.md", "report.html")}
    with paths["results.jsonl"].open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    paths["summary.json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    charts = all_charts(rows, summary)
    for name, png in charts.items():
        (out / "charts" / name).write_bytes(png)
    paths["report.md"].write_text(render_markdown(rows, summary, list(charts)), encoding="utf-8")
    paths["report.html"].write_text(render_html(rows, summary, charts), encoding="utf-8")
    return paths


def _expected(row: dict[str, Any]) -> str:
    if not row["answerable"]:
        return "(abstain)"
    return " | ".join(row["answers"]) or "?"


def _got(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"error: {row['error']}"
    return "(abstained)" if row["abstained"] else row["answer"]


def _failed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["metrics"].get("passed") is False]


def failures_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the failed questions first, then the passed, then those without a verdict (order kept within)."""
    rank = {False: 0, True: 1, None: 2}
    return sorted(rows, key=lambda r: rank.get(r["metrics"].get("passed"), 2))


def render_markdown(rows: list[dict[str, Any]], summary: dict[str, Any], chart_files: list[str]) -> str:
    """report.md: summary table, the questions that failed, charts, settings and the glossary."""
    run, metrics, counts = summary["run"], summary["metrics"], summary["counts"]
    lines = [
        "# Evaluation report", "",
        f"- questions: {md(run.get('questions', '?'))} ({run.get('n_questions', len(rows))} evaluated"
        + (f", {len(run['skipped'])} skipped" if run.get("skipped") else "") + ")",
        f"- answerer: {md(run.get('answerer', '?'))} ({md(run.get('model', '?'))}); index: {md(run.get('index', '?'))}",
        f"- started {md(run.get('started', '?'))}, took {md(run.get('seconds', '?'))} s", "",
        "| metric | value | over n questions |", "|---|---:|---:|",
    ]
    lines += [f"| {n} | {fmt(n, metrics[n])} | {counts.get(n, '')} |" for n in _ordered(metrics)]
    failed = _failed(rows)
    lines += ["", f"## Failed questions ({len(failed)} of {len(rows)})", ""]
    if failed:
        lines += ["| id | question | expected | got |", "|---|---|---|---|"]
        for r in failed:
            cells = [r["id"], r["question"], _expected(r), _got(r)]
            lines.append("| " + " | ".join(md(c) for c in cells) + " |")
    else:
        lines.append("None.")
    lines.append("")
    lines += [f"![{name}](charts/{name})" for name in chart_files]
    if summary.get("settings"):
        lines += ["", "## Settings", "", "`" + "`, `".join(md(x) for x in _settings_lines(summary["settings"])) + "`"]
    lines += [""] + _glossary_md(_ordered(metrics))
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .meta{color:#666;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.5rem .8rem;min-width:120px}
.card b{display:block;font-size:1.4rem} .card span{color:#666;font-size:.8rem}
img{max-width:100%;border:1px solid #eee;border-radius:6px;margin:.5rem 0}
table{border-collapse:collapse;width:100%;font-size:.85rem} td,th{border-bottom:1px solid #eee;padding:.3rem;text-align:left;vertical-align:top}
tr.fail td:first-child{border-left:4px solid #d64541} tr.pass td:first-child{border-left:4px solid #2e9d57}
tr.na td:first-child{border-left:4px solid #ccc} .num{text-align:right;white-space:nowrap}
"""


def render_html(rows: list[dict[str, Any]], summary: dict[str, Any], charts: dict[str, bytes]) -> str:
    """report.html: one self-contained page (headline numbers, embedded charts, every question)."""
    def e(text: Any) -> str:
        return html.escape(safe_text(str(text)))

    run, metrics, counts = summary["run"], summary["metrics"], summary["counts"]
    headline = [n for n in ("pass_rate", "correctness", "hit@5", "mrr", "context_recall", "citation_precision",
                            "abstention_recall", "latency_p95_ms", "faithfulness") if metrics.get(n) is not None]
    cards = "".join(f'<div class="card"><b>{fmt(n, metrics[n])}</b><span>{e(n)} (n={counts.get(n, 0)})</span></div>'
                    for n in headline)
    imgs = "".join(f'<img alt="{e(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                   for name, png in charts.items())
    table = "".join(f"<tr><td>{e(n)}</td><td class=num>{fmt(n, metrics[n])}</td><td class=num>{counts.get(n, '')}"
                    "</td></tr>" for n in _ordered(metrics))
    qrows = []
    for r in failures_first(rows):
        passed = r["metrics"].get("passed")
        cls = "na" if passed is None else "pass" if passed else "fail"
        docs = ", ".join(dict.fromkeys(x["doc_id"] for x in r["retrieved"]))
        qrows.append(
            f'<tr class="{cls}"><td>{e(str(r["id"]))}</td><td>{e(r["question"])}</td><td>{e(_expected(r))}</td>'
            f"<td>{e(_got(r))}</td><td>{e(docs)}</td><td class=num>{r['latency_ms']:.0f}</td></tr>"
        )
    skipped = "".join(f"<li>{e(p)}</li>" for p in run.get("skipped") or [])
    glossary = "".join(f"<dt>{e(n)}</dt><dd>{e(GLOSSARY[n])}</dd>" for n in _ordered(metrics) if n in GLOSSARY)
    settings_html = ""
    if summary.get("settings"):
        settings_html = "<h2>Settings</h2><p><code>" + "</code>, <code>".join(
            e(x) for x in _settings_lines(summary["settings"])) + "</code></p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation report</title><style>{_CSS}</style></head><body>
<h1>Evaluation report</h1>
<p class="meta">{e(str(run.get('questions', '')))}: {run.get('n_questions', len(rows))} questions;
answerer {e(str(run.get('answerer', '?')))} ({e(str(run.get('model', '?')))}); index {e(str(run.get('index', '?')))};
started {e(str(run.get('started', '?')))}, took {run.get('seconds', '?')} s</p>
<div class="cards">{cards}</div>
{imgs}
<h2>All metrics</h2><table><tr><th>metric</th><th class=num>value</th><th class=num>over n</th></tr>{table}</table>
{f"<h2>Skipped lines</h2><ul>{skipped}</ul>" if skipped else ""}
<h2>Questions ({len(_failed(rows))} failed of {len(rows)}; failures first)</h2>
<table><tr><th>id</th><th>question</th><th>expected</th><th>answer</th><th>retrieved documents</th><th class=num>ms</th></tr>
{''.join(qrows)}</table>
{settings_html}
<h2>Glossary</h2><dl>{glossary}</dl>
</body></html>
"""


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """The summary as a rich table."""
    from rich.markup import escape
    from rich.table import Table

    metrics, counts = summary["metrics"], summary["counts"]
    table = Table(title=f"Evaluation: {summary['run'].get('n_questions', '?')} questions")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("n", justify="right", style="dim")
    for n in _ordered(metrics):
        v = metrics[n]
        style = "" if v is None or n in _MS or n in ("answer_words", "judge_failed") else (
            "green" if v >= 0.8 else "yellow" if v >= 0.5 else "red")
        table.add_row(escape(n), f"[{style}]{fmt(n, v)}[/]" if style else fmt(n, v), str(counts.get(n, "")))
    console.print(table)


# --- reading and comparing -----------------------------------------------------------------
def load_run(path: Path) -> dict[str, Any]:
    """A run directory (or its summary.json) as {"path", "summary", "rows"}."""
    path = Path(path)
    folder = path.parent if path.name == "summary.json" else path
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
    except FileNotFoundError as exc:
        raise QAError(f"{folder} is not an evaluation run ({Path(exc.filename).name} is missing)") from None
    except json.JSONDecodeError as exc:
        raise QAError(f"{folder}: unreadable run files ({exc.msg})") from None
    return {"path": str(folder), "summary": summary, "rows": rows}


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per-metric deltas (b - a), the settings that differ, and the questions (by id) whose outcome flipped."""
    ma, mb = a["summary"]["metrics"], b["summary"]["metrics"]
    metrics = []
    for n in _ordered({**ma, **mb}):
        va, vb = ma.get(n), mb.get(n)
        delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        metrics.append({"name": n, "a": va, "b": vb, "delta": round(delta, 4) if delta is not None else None})
    sa, sb = a["summary"].get("settings") or {}, b["summary"].get("settings") or {}
    settings = [{"name": k, "a": sa.get(k), "b": sb.get(k)} for k in sorted({*sa, *sb}) if sa.get(k) != sb.get(k)]
    rows_a = {r["id"]: r for r in a["rows"]}
    rows_b = {r["id"]: r for r in b["rows"]}
    flipped = []
    for qid, rb in rows_b.items():
        ra = rows_a.get(qid)
        if ra is None:
            continue
        pa, pb = ra["metrics"].get("passed"), rb["metrics"].get("passed")
        if pa is not None and pb is not None and bool(pa) != bool(pb):
            flipped.append({"id": qid, "question": rb["question"], "a": bool(pa), "b": bool(pb),
                            "answer_a": _got(ra), "answer_b": _got(rb)})
    return {
        "a": a["path"],
        "b": b["path"],
        "metrics": metrics,
        "settings": settings,
        "settings_known": bool(sa and sb),
        "flipped": flipped,
        "only_a": [q for q in rows_a if q not in rows_b],
        "only_b": [q for q in rows_b if q not in rows_a],
    }


def _settings_change(cmp: dict[str, Any]) -> str:
    if not cmp.get("settings_known", True):
        return "settings: not recorded in both runs (runs made before settings were saved)"
    if not cmp.get("settings"):
        return "settings: the same in both runs"
    return "settings changed: " + ", ".join(f"{s['name']} {s['a']} -> {s['b']}" for s in cmp["settings"])


def print_comparison(console: Console, cmp: dict[str, Any], label_a: str = "A", label_b: str = "B") -> None:
    """Deltas, the settings that changed, and flips as rich tables (no text from the runs is read as markup)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(safe_text(f"{label_a} -> {label_b}")))
    for col, just in (("metric", "left"), ("A", "right"), ("B", "right"), ("delta", "right")):
        table.add_column(col, justify=just)
    for m in cmp["metrics"]:
        d = m["delta"]
        lower_better = m["name"] in _MS or m["name"] == "judge_failed"
        good = d is not None and d != 0 and ((d < 0) if lower_better else (d > 0))
        style = "" if not d else "green" if good else "red"
        text = "n/a" if d is None else f"{d:+.0f}" if m["name"] in _MS else f"{d:+.3f}"
        table.add_row(escape(m["name"]), fmt(m["name"], m["a"]), fmt(m["name"], m["b"]),
                      f"[{style}]{text}[/]" if style else text)
    console.print(table)
    console.print(escape(safe_text(_settings_change(cmp))), highlight=False)
    if not cmp["flipped"]:
        console.print("No question flipped between pass and fail.")
    else:
        flips = Table(title=f"{len(cmp['flipped'])} question(s) flipped")
        for col in ("id", "question", "A", "B"):
            flips.add_column(col)
        for f in cmp["flipped"]:
            flips.add_row(escape(safe_text(str(f["id"]))), escape(safe_text(f["question"])),
                          "pass" if f["a"] else "fail", "[green]pass[/]" if f["b"] else "[red]fail[/]")
        console.print(flips)
    if cmp["only_a"] or cmp["only_b"]:
        console.print(f"only in A: {len(cmp['only_a'])} questions; only in B: {len(cmp['only_b'])}", highlight=False)


def render_comparison_markdown(cmp: dict[str, Any]) -> str:
    """comparison.md: metric deltas, settings that changed, flipped questions, and the glossary."""
    lines = ["# Comparison of two evaluation runs", "", f"- A: {md(cmp['a'])}", f"- B: {md(cmp['b'])}",
             f"- {md(_settings_change(cmp))}", "",
             "| metric | A | B | delta |", "|---|---:|---:|---:|"]
    for m in cmp["metrics"]:
        d = m["delta"]
        text = "n/a" if d is None else f"{d:+.0f}" if m["name"] in _MS else f"{d:+.3f}"
        lines.append(f"| {m['name']} | {fmt(m['name'], m['a'])} | {fmt(m['name'], m['b'])} | {text} |")
    lines += ["", f"## Flipped questions ({len(cmp['flipped'])})", ""]
    if cmp["flipped"]:
        lines += ["| id | question | A | B | answer in B |", "|---|---|---|---|---|"]
        for f in cmp["flipped"]:
            lines.append(f"| {md(f['id'])} | {md(f['question'])} | {'pass' if f['a'] else 'fail'} | "
                         f"{'pass' if f['b'] else 'fail'} | {md(f['answer_b'])} |")
    else:
        lines.append("None.")
    if cmp["only_a"] or cmp["only_b"]:
        lines += ["", f"Only in A: {len(cmp['only_a'])} questions; only in B: {len(cmp['only_b'])}."]
    lines += [""] + _glossary_md([m["name"] for m in cmp["metrics"]])
    return "\n".join(lines) + "\n"


def write_comparison(out: Path, cmp: dict[str, Any]) -> dict[str, Path]:
    """Write comparison.md and comparison.json into out/; returns their paths by name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"comparison.md": out / "comparison.md", "comparison.json": out / "comparison.json"}
    paths["comparison.md"].write_text(render_comparison_markdown(cmp), encoding="utf-8")
    paths["comparison.json"].write_text(json.dumps(cmp, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths


# --- thresholds ----------------------------------------------------------------------------
def parse_thresholds(items: list[str] | None) -> dict[str, float]:
    """`["hit@5=0.9", ...]` -> {"hit@5": 0.9}; a bad item raises QAError naming the valid metrics."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value)
            if not sep or math.isnan(number):
                raise ValueError
        except ValueError:
            raise QAError(f"--fail-under wants METRIC=VALUE (e.g. hit@5=0.9), not {item!r}") from None
        if name not in SUMMARY_METRICS:
            raise QAError(f"--fail-under: unknown metric {name!r}; known: {', '.join(SUMMARY_METRICS)}")
        out[name] = number
    return out


def check_thresholds(metrics: dict[str, Any], thresholds: dict[str, float]) -> list[str]:
    """One message per missed threshold (a metric that could not be measured counts as missed)."""
    missed = []
    for name, minimum in thresholds.items():
        value = metrics.get(name)
        if value is None:
            missed.append(f"{name} was not measured (threshold {minimum:g})")
        elif value < minimum:
            missed.append(f"{name} = {fmt(name, value)} is under the threshold {minimum:g}")
    return missed
