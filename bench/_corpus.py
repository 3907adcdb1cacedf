"""The RealTime QA article corpus of the benchmarks, and its quiz questions.

Articles come from `eval.datasets.realtimeqa` (the project's loader: every distinct search result of
`past/<year>/*_gcs.jsonl`, by url, as `<sha1(url)[:16]>.txt` = title line, publish-date line, blank
line, text; empty texts skipped). It writes the whole year under bench/out/rtqa/; a cap of N articles
then takes the first N files in name order (names are sha1 hashes, so this is an arbitrary but fixed
sample) into bench/out/corpus/rtqa<year>_a<N>/, rewriting only files that changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from _common import OUT, REPO


def source_dir() -> Path:
    """The shared data folder as configured (QA_SHARED_DATA_DIR, default ../shared/data)."""
    from bot.config import load_settings

    return load_settings().shared_data_dir


def news_texts(years: tuple[str, ...] = ("2025",), min_chars: int = 500) -> list[str]:
    """Article texts of RealTime QA's retrieved news for these years (`*_gcs.jsonl`), in file order."""
    out = []
    for year in years:
        for path in sorted((source_dir() / "realtimeqa" / "past" / year).glob("*_gcs.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                for r in json.loads(line)["search_result"]:
                    if len(r.get("text") or "") >= min_chars:
                        out.append(r["text"])
    return out


def materialize(year: int, articles: int | None) -> tuple[Path, int, int]:
    """(corpus folder, articles in it, articles available for the year)."""
    from eval.datasets import realtimeqa
    from index.files import write_if_changed

    ds = realtimeqa(year, OUT / "rtqa", source_dir())
    files = sorted(p.name for p in ds.corpus_dir.glob("*.txt"))
    total = len(files)
    n = total if not articles or articles >= total else articles
    target = OUT / "corpus" / f"rtqa{year}_a{n}"
    target.mkdir(parents=True, exist_ok=True)
    keep = set(files[:n])
    for name in files[:n]:
        write_if_changed(target / name, (ds.corpus_dir / name).read_bytes())
    for p in target.glob("*.txt"):
        if p.name not in keep:
            p.unlink()
    return target, n, total


def quiz_questions(year: int, limit: int = 200) -> list[str]:
    """question_sentence of past/<year>/*_qa.jsonl in file order, at most limit."""
    folder = source_dir() / "realtimeqa" / "past" / str(year)
    out: list[str] = []
    for path in sorted(folder.glob("*_qa.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                q = str(json.loads(line).get("question_sentence") or "").strip()
                if q:
                    out.append(q)
                if len(out) >= limit:
                    return out
    return out


def seed_questions() -> list[str]:
    """The questions of eval/questions.jsonl."""
    path = REPO / "eval" / "questions.jsonl"
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
