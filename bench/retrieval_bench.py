#!/usr/bin/env python
"""Retrieval quality and scale on real corpora: this project vs LlamaIndex's default pipeline vs BM25.

Systems, run by this one script on the same corpus and the same questions, each in its own process:
  P1  LlamaIndex default: SimpleDirectoryReader(recursive=True) -> VectorStoreIndex.from_documents
      (default SentenceSplitter, 1024 tokens) into Chroma with HuggingFaceEmbedding(all-MiniLM-L6-v2);
      queries: index.as_retriever(similarity_top_k=K).retrieve(q)
  P2  bm25s alone over this project's chunks (read from its chunk table), bm25s' README tokenisation
      (English stop words + PyStemmer), top K chunks
  qa  this project: build_index (ONNX MiniLM, 200-word-piece chunks, BM25 + sentence vectors) and its
      HybridRetriever (dense + BM25 + best sentence, fused as its Settings say) and the pipeline's
      sentence-evidence rerank, via Pipeline.from_settings; pipeline.retrieve(q, k=K);
      and Pipeline.ask (top_k 8 + the offline extractive answerer) for answer correctness
      For RealTime QA also the article passages an LLM would read (Pipeline.sources: the K ranked
      chunks regrouped into one passage per article, the best 5 articles, each at most QA_PASSAGE_CHARS):
      their context recall@5 and characters, beside P1's top-5 nodes.
K = 20 units (chunks / nodes) per question for every system. Document-level metrics map units to
their document, drop duplicates keeping the order, and score the first 10 distinct documents
(hit@1, hit@5, MRR@10). Context recall@5: an acceptable answer (normalised, whole words, eval.metrics
.contains) occurs in the text of the first 5 units. Latency: the wall time of that one retrieval call
per question, warm (the first --warmup questions run once untimed first).

Corpora (eval.datasets.prepare, from ../shared/data):
  squad       SQuAD v1.1 dev, 2,067 paragraphs as documents, 10,570 questions (gold = own paragraph)
  rtqa2026    RealTime QA 2026 news articles and its quiz (gold answer = the correct choice)
  scale       RealTime QA 2025 + 2026 + SQuAD paragraphs in one collection, this project only:
              build time, chunks, du, build peak RSS; then pipeline.retrieve and pipeline.ask p50 / p95
              over --scale-questions questions (half RealTime QA, half SQuAD, random, seed 0) and the
              peak RSS of that query process
Indexes are cached under bench/out/retrieval/cache/<collection>/ keyed by a digest of the corpus; a
re-run reuses them (the build figures are then reported as "reused", never re-used as measured)
unless --rebuild. Results: tables on stdout, bench/out/retrieval/retrieval_bench.json (+ .md), the
per-question rows under bench/out/retrieval/retrieval_bench/, and the quality-vs-latency plot
(docs/img/quality_vs_latency.png; a --limit run writes bench/out/retrieval/*_limited.* instead).
The digest of the project's code (bot/, index/) is recorded per step: the report warns if it changed.

  .venv/bin/python bench/retrieval_bench.py --rebuild                      # full run, fresh indexes
  .venv/bin/python bench/retrieval_bench.py --squad-limit 300 --rtqa-limit 100   # quick run
  .venv/bin/python bench/retrieval_bench.py --report-from bench/out/retrieval/retrieval_bench.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (OUT, REPO, fresh_dir, machine, mib,  # noqa: E402
                     percentile, run_worker, table, write_json)

HERE = Path(__file__).resolve().parent
RWORKERS = str(HERE / "_retrieval_workers.py")
ROOT = OUT / "retrieval"
DATA = ROOT / "data"
CACHE = ROOT / "cache"
LOG = ROOT / "workers.log"
RUN = ROOT  # per-run work files (question files, per-question rows): ROOT/<result file stem>/, set by main
COLLECTION = "articles"
LLAMA_COLLECTION = "llamaindex"
SYSTEMS = ("llamaindex", "bm25s", "project")
PRECISION = "float32"  # of this project's embedding (--precision); int8 indexes are cached apart


def project_name() -> str:
    """The cache folder (and build record stem) of this project's index at the chosen precision."""
    return "project" if PRECISION == "float32" else f"project-{PRECISION}"


def project_env() -> dict:
    """Extra environment of this project's workers: the embedding precision they build and query with."""
    return {"QA_EMBED_PRECISION": PRECISION}
LABEL = {"llamaindex": "P1 LlamaIndex default", "bm25s": "P2 bm25s", "project": "this project (qa)"}


# --- running workers --------------------------------------------------------------------------------
def run_rworker(mode: str, *args: str, env: dict | None = None) -> dict:
    """_common.run_worker for the modes of _retrieval_workers.py, noting the load and the code version."""
    code = code_digest(f"{mode} {Path(args[0]).parent.name}/{Path(args[0]).name}")
    load0 = os.getloadavg()[0]
    result = run_worker(mode, *args, log=LOG, script=RWORKERS, env=env)
    result["loadavg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    result["code_digest"] = code
    return result


CODE_SEEN: dict[str, list[str]] = {}  # digest of the project's code -> the steps that ran with it


def code_digest(step: str | None = None) -> str:
    """A digest of the project's code (bot/ and index/ *.py); with step, note that step ran with it.

    Other engineers edit bot/ and index/ while benchmarks run; the report says which version was
    measured, and warns when a run saw more than one.
    """
    h = hashlib.sha1()
    for p in sorted([*(REPO / "bot").rglob("*.py"), *(REPO / "index").rglob("*.py")]):
        h.update(p.relative_to(REPO).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    digest = h.hexdigest()[:12]
    if step:
        CODE_SEEN.setdefault(digest, []).append(step)
    return digest


def du_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) * 1024


def du_h(path: Path) -> str:
    return subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]


def corpus_digest(corpus: Path) -> tuple[str, int]:
    """A digest of every file (relative path + content) under corpus, and the file count."""
    h = hashlib.sha1()
    n = 0
    for p in sorted(corpus.rglob("*.txt")):
        if p.name.startswith("."):
            continue
        h.update(p.relative_to(corpus).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
        n += 1
    return h.hexdigest()[:16], n


# --- builds (cached) ----------------------------------------------------------------------------------
def ensure_side(name: str, side: str, corpus: Path, digest: str, rebuild: bool) -> dict:
    """Build one side's index for a corpus (or reuse the cached one); returns its build record."""
    root = CACHE / name
    target = root / (project_name() if side == "project" else "llamaindex_chroma")
    meta_path = root / f"{project_name() if side == 'project' else side}.build.json"
    if not rebuild and meta_path.exists() and target.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("digest") == digest:
            print(f"  {name}/{side}: reusing the index built {meta['built_at']}", flush=True)
            return {**meta, "status": "reused"}
    root.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)
    fresh_dir(target)
    print(f"  {name}/{side}: building ...", flush=True)
    load0 = os.getloadavg()[0]
    if side == "project":
        code = code_digest(f"project-build {name}")
        res = run_worker("project-build", str(corpus), str(target), COLLECTION, log=LOG, env=project_env())
        res["precision"] = PRECISION
        res["code_digest"] = code
    else:
        res = run_rworker("llama-build", str(corpus), str(target), LLAMA_COLLECTION)
    res["loadavg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    res["du_bytes"] = du_bytes(target)
    res["du_h"] = du_h(target)
    res["digest"] = digest
    res["built_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    meta_path.write_text(json.dumps(res, indent=1))
    print(f"    {res['chunks']} chunks, {res['build_s']:.1f} s (CPU {res['build_cpu_s']:.1f} s), "
          f"peak RSS {mib(res['peak_rss_bytes'])}, {res['du_h']}", flush=True)
    return {**res, "status": "built"}


# --- questions and metrics ----------------------------------------------------------------------------
def qfile(name: str, questions: list) -> Path:
    path = RUN / f"questions_{name}.json"
    path.write_text(json.dumps([{"id": q.id, "question": q.question, "answers": list(q.answers),
                                 "gold_docs": list(q.gold_docs)} for q in questions]))
    return path


def doc_metrics(rows: list[dict], gold: dict[str, tuple]) -> dict:
    """hit@1, hit@5 and MRR@10 of the gold documents (eval.metrics' definitions), over questions with gold."""
    from eval.metrics import hit_at_k, reciprocal_rank

    h1 = h5 = rr = 0.0
    n = 0
    for r in rows:
        g = set(gold.get(r["id"]) or ())
        if not g:
            continue
        n += 1
        docs = r["docs"][:10]
        h1 += hit_at_k(docs, g, 1)
        h5 += hit_at_k(docs, g, 5)
        rr += reciprocal_rank(docs, g)
    return {"n_gold": n, "hit@1": h1 / n if n else None, "hit@5": h5 / n if n else None,
            "mrr@10": rr / n if n else None}


def summarize(res: dict, gold: dict[str, tuple]) -> dict:
    rows = res["rows"]
    ms = [r["ms"] for r in rows]
    out = {**doc_metrics(rows, gold), "n": len(rows),
           "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "mean_ms": sum(ms) / len(ms),
           "context_chars_top5": sum(r["c5"] for r in rows) / len(rows),
           "peak_rss_bytes": res["peak_rss_bytes"], "load_s": res["load_s"],
           "query_cpu_ms_per_q": 1000 * res["query_cpu_s"] / len(rows) if res.get("query_cpu_s") else None,
           "loadavg_1m": res.get("loadavg_1m")}
    r5 = [r["r5"] for r in rows if "r5" in r]
    out["recall@5"] = sum(r5) / len(r5) if r5 else None
    pr5 = [r["pr5"] for r in rows if "pr5" in r]
    if pr5:
        out["passage_recall@5"] = sum(pr5) / len(pr5)
        out["passage_chars_top5"] = sum(r["pc5"] for r in rows) / len(rows)
        out["passage_p95_ms"] = percentile([r["passage_ms"] for r in rows], 95)
        # Retrieval + passage building per question: the latency of what an LLM is given.
        out["with_passages_p50_ms"] = percentile([r["ms"] + r["passage_ms"] for r in rows], 50)
    graded = [r for r in rows if "a_at" in r]
    if graded:
        out["recall@1"] = sum(r["a_at"] == 0 for r in graded) / len(graded)
        out["recall@K"] = sum(r["a_at"] >= 0 for r in graded) / len(graded)
        out["context_chars_topK"] = sum(r["cum"][-1] if r["cum"] else 0 for r in graded) / len(graded)
    if any("ask_ms" in r for r in rows):
        ask = [r["ask_ms"] for r in rows]
        graded = [r["correct"] for r in rows if r.get("correct") is not None]
        out.update({"correct": sum(graded) / len(graded), "abstain_rate": sum(r["abstained"] for r in rows) / len(rows),
                    "ask_p50_ms": percentile(ask, 50), "ask_p95_ms": percentile(ask, 95),
                    "ask_recall@8": sum(bool(r["ask_recall"]) for r in rows) / len(rows)})
    return out


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def pts(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{100 * (a - b):+.1f} pts"


def xr(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def quality_table(s: dict, metrics: list[tuple[str, str]], extra: list[list[str]]) -> str:
    p1, p2, qa = (s[k] for k in SYSTEMS)
    rows = []
    for key, label in metrics:
        rows.append([label, pct(p1.get(key)), pct(p2.get(key)), pct(qa.get(key)),
                     pts(qa.get(key), p1.get(key)), pts(qa.get(key), p2.get(key))])
    for key, label in (("p50_ms", "retrieval p50, ms (warm)"), ("p95_ms", "retrieval p95, ms (warm)")):
        rows.append([label, ms(p1[key]), ms(p2[key]), ms(qa[key]), xr(qa[key], p1[key]), xr(qa[key], p2[key])])
    rows.append(["query process peak RSS", mib(p1["peak_rss_bytes"]), mib(p2["peak_rss_bytes"]),
                 mib(qa["peak_rss_bytes"]), xr(qa["peak_rss_bytes"], p1["peak_rss_bytes"]),
                 xr(qa["peak_rss_bytes"], p2["peak_rss_bytes"])])
    rows.append(["chars in the top-5 units (mean)", f"{p1['context_chars_top5']:.0f}", f"{p2['context_chars_top5']:.0f}",
                 f"{qa['context_chars_top5']:.0f}", xr(qa["context_chars_top5"], p1["context_chars_top5"]),
                 xr(qa["context_chars_top5"], p2["context_chars_top5"])])
    rows.append(["context recall@1 (%)", pct(p1.get("recall@1")), pct(p2.get("recall@1")), pct(qa.get("recall@1")),
                 pts(qa.get("recall@1"), p1.get("recall@1")), pts(qa.get("recall@1"), p2.get("recall@1"))])
    rows.append(["context recall within the characters of P1's top 5 (%)", pct(p1.get("recall@5")),
                 pct(p2.get("recall@p1_chars")), pct(qa.get("recall@p1_chars")),
                 pts(qa.get("recall@p1_chars"), p1.get("recall@5")), pts(qa.get("recall@p1_chars"), p2.get("recall@p1_chars"))])
    rows.append(["  (questions where that budget exceeds all K units, %)", "-", pct(p2.get("p1_budget_exceeds_K")),
                 pct(qa.get("p1_budget_exceeds_K")), "-", "-"])
    if qa.get("passage_recall@5") is not None:
        rows.append(["qa article passages (the LLM's context): context recall@5 (%)", pct(p1.get("recall@5")), "-",
                     pct(qa["passage_recall@5"]), pts(qa["passage_recall@5"], p1.get("recall@5")), "-"])
        rows.append(["  chars in those 5 passages (mean; P1: its top-5 nodes)", f"{p1['context_chars_top5']:.0f}", "-",
                     f"{qa['passage_chars_top5']:.0f}", xr(qa["passage_chars_top5"], p1["context_chars_top5"]), "-"])
        rows.append(["  passage building p95, ms (after retrieval)", "-", "-", ms(qa["passage_p95_ms"]), "-", "-"])
    rows += extra
    return table(rows, ["metric", LABEL["llamaindex"], LABEL["bm25s"], LABEL["project"], "qa vs P1", "qa vs P2"])


def quality_goals(name: str, s: dict, keys: list[str], plus5: list[str]) -> list[str]:
    goals = []
    for key in keys:
        qa = s["project"][key]
        best_name = max(("llamaindex", "bm25s"), key=lambda k: s[k][key])
        best = s[best_name][key]
        need = best + (0.05 if key in plus5 else 0.0)
        ok = qa >= need - 1e-12
        goals.append(f"{name} {key}: qa {pct(qa)} vs best peer {LABEL[best_name]} {pct(best)}"
                     f"{' + 5 pts' if key in plus5 else ''} -> {'met' if ok else 'MISSED'} ({pts(qa, best)})")
        passages = s["project"].get("passage_recall@5")
        if key == "recall@5" and passages is not None:
            ok = passages >= need - 1e-12
            goals.append(f"{name} {key}, qa's article passages (what its LLM reads, {s['project']['passage_chars_top5']:.0f}"
                         f" chars vs P1's {s['llamaindex']['context_chars_top5']:.0f}): {pct(passages)} vs"
                         f" {LABEL[best_name]} {pct(best)}{' + 5 pts' if key in plus5 else ''}"
                         f" -> {'met' if ok else 'MISSED'} ({pts(passages, best)})")
    return goals


# --- the parts ----------------------------------------------------------------------------------------
def part_quality(name: str, ds, questions: list, args, results: dict, answer: bool) -> None:
    corpus = ds.corpus_dir.resolve()
    digest, nfiles = corpus_digest(corpus)
    print(f"[{name}] corpus {corpus} ({nfiles} documents, digest {digest}); {len(questions)} questions", flush=True)
    builds = {side: ensure_side(ds.collection, side, corpus, digest, args.rebuild) for side in ("project", "llamaindex")}
    qpath = qfile(name, questions)
    project_dir = CACHE / ds.collection / project_name()
    llama_dir = CACHE / ds.collection / "llamaindex_chroma"
    k, w = str(args.k), str(args.warmup)
    raw = {}
    print("  P1 queries ...", flush=True)
    raw["llamaindex"] = run_rworker("llama-query", str(llama_dir), LLAMA_COLLECTION, str(corpus), str(qpath), k, w)
    print("  P2 queries ...", flush=True)
    raw["bm25s"] = run_rworker("bm25-query", str(project_dir), COLLECTION, str(qpath), k, w)
    print(f"  qa queries{' + answers' if answer else ''} ...", flush=True)
    raw["project"] = run_rworker("project-query", str(project_dir), COLLECTION, str(qpath), k, w, "1" if answer else "0",
                                 env=project_env())
    gold = {q.id: q.gold_docs for q in questions}
    summary = {side: summarize(raw[side], gold) for side in SYSTEMS}
    # Recall at an equal amount of text: for each question, the units of P2 / qa whose cumulative
    # characters fit in the characters of P1's top-5 nodes for that question.
    p1 = {r["id"]: r for r in raw["llamaindex"]["rows"]}
    for side in ("bm25s", "project"):
        graded = [r for r in raw[side]["rows"] if "a_at" in r and r["id"] in p1]
        if graded:
            hit = sum(r["a_at"] >= 0 and r["cum"][r["a_at"]] <= p1[r["id"]]["c5"] for r in graded)
            capped = sum(bool(r["cum"]) and r["cum"][-1] < p1[r["id"]]["c5"] for r in graded)
            summary[side]["recall@p1_chars"] = hit / len(graded)
            summary[side]["p1_budget_exceeds_K"] = capped / len(graded)
    if args.p1_one_thread:
        # Diagnostic, not a peer: P1's latency with torch on one thread (OMP_NUM_THREADS=1), same questions.
        print(f"  P1 diagnostic: latency with OMP_NUM_THREADS=1 over {min(args.p1_one_thread, len(questions))} questions ...",
              flush=True)
        sub = RUN / f"questions_{name}_p1diag.json"
        sub.write_text(json.dumps(json.loads(qpath.read_text())[: args.p1_one_thread]))
        diag = run_rworker("llama-query", str(llama_dir), LLAMA_COLLECTION, str(corpus), str(sub), k, w,
                           env={"OMP_NUM_THREADS": "1"})
        summary["llamaindex_1thread"] = summarize(diag, gold)
        summary["llamaindex_1thread"]["questions"] = len(diag["rows"])
    for side in SYSTEMS:
        print(f"    {side}: " + ", ".join(f"{m} {pct(summary[side].get(m))}" for m in ("hit@1", "hit@5", "mrr@10", "recall@5"))
              + f", p50 {ms(summary[side]['p50_ms'])} ms", flush=True)
    (RUN / f"rows_{name}.json").write_text(json.dumps({s: raw[s]["rows"] for s in SYSTEMS}))
    results[name] = {"corpus": str(corpus), "documents": nfiles, "digest": digest, "questions": len(questions),
                     "builds": builds, "summary": summary,
                     "workers": {s: {k2: v for k2, v in raw[s].items() if k2 != "rows"} for s in SYSTEMS}}


def link_corpus(sources: list[Path], target: Path) -> int:
    """target/ holds every file of the sources (hard links; a later source wins on a name clash)."""
    files: dict[str, Path] = {}
    for src in sources:
        for p in src.rglob("*.txt"):
            if not p.name.startswith("."):
                files[p.relative_to(src).as_posix()] = p
    target.mkdir(parents=True, exist_ok=True)
    for rel, src in files.items():
        dst = target / rel
        if dst.exists() and os.path.samefile(dst, src):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            dst.write_bytes(src.read_bytes())
    for p in list(target.rglob("*.txt")):
        if p.relative_to(target).as_posix() not in files:
            p.unlink()
    return len(files)


def part_scale(datasets: dict, args, results: dict) -> None:
    tag = "scale" + (f"_n{args.rtqa_limit}_{args.squad_limit}" if (args.rtqa_limit or args.squad_limit) else "")
    corpus = (DATA / "datasets" / tag / "corpus").resolve()
    n = link_corpus([datasets["rtqa2025"].corpus_dir, datasets["rtqa2026"].corpus_dir, datasets["squad"].corpus_dir], corpus)
    digest, nfiles = corpus_digest(corpus)
    print(f"[scale] corpus {corpus} ({nfiles} documents: RealTime QA 2025 + 2026 + SQuAD; digest {digest})", flush=True)
    build = ensure_side(tag, "project", corpus, digest, args.rebuild)
    data_dir = CACHE / tag / project_name()
    rng = random.Random(0)
    half = args.scale_questions // 2
    rtqa_pool = datasets["rtqa2025"].questions + datasets["rtqa2026"].questions
    sample = rng.sample(rtqa_pool, min(half, len(rtqa_pool)))
    sample += rng.sample(datasets["squad"].questions, min(args.scale_questions - len(sample), len(datasets["squad"].questions)))
    rng.shuffle(sample)
    qpath = qfile("scale", sample)
    print(f"  qa latency over {len(sample)} questions ...", flush=True)
    res = run_rworker("project-scale", str(data_dir), COLLECTION, str(qpath), str(args.warmup), env=project_env())
    summary = {"retrieve_p50_ms": percentile(res["retrieve_ms"], 50), "retrieve_p95_ms": percentile(res["retrieve_ms"], 95),
               "ask_p50_ms": percentile(res["ask_ms"], 50), "ask_p95_ms": percentile(res["ask_ms"], 95),
               "query_peak_rss_bytes": res["peak_rss_bytes"], "questions": len(sample),
               "rtqa_questions": half, "squad_questions": len(sample) - half}
    print(f"    retrieve p50 {ms(summary['retrieve_p50_ms'])} / p95 {ms(summary['retrieve_p95_ms'])} ms; ask p50 "
          f"{ms(summary['ask_p50_ms'])} / p95 {ms(summary['ask_p95_ms'])} ms; RSS {mib(res['peak_rss_bytes'])}", flush=True)
    results["scale"] = {"corpus": str(corpus), "documents": nfiles, "files_linked": n, "digest": digest,
                        "build": build, "data_dir_du_h": du_h(data_dir), "data_dir_du_bytes": du_bytes(data_dir),
                        "summary": summary, "worker": res}


# --- report -------------------------------------------------------------------------------------------
def build_table(results: dict) -> tuple[str, list[str]]:
    rows, goals, notes = [], [], []
    for name in ("squad", "rtqa2026"):
        if name not in results:
            continue
        b = results[name]["builds"]
        p, l = b["project"], b["llamaindex"]
        bm = results[name]["workers"]["bm25s"]
        if "build_s" in p and "build_s" in l:  # measured in this run, or recorded when the cached index was built
            speed = l["build_s"] / p["build_s"]
            rows += [
                [f"{name}: full build, s", f"{l['build_s']:.1f}", f"{bm['build_s']:.2f} (bm25s index only)", f"{p['build_s']:.1f}",
                 f"{speed:.2f}x"],
                [f"{name}: build CPU, s", f"{l['build_cpu_s']:.1f}", f"{bm['build_cpu_s']:.2f}", f"{p['build_cpu_s']:.1f}",
                 f"{l['build_cpu_s'] / p['build_cpu_s']:.2f}x"],
                [f"{name}: build peak RSS", mib(l["peak_rss_bytes"]), "(in the query process)", mib(p["peak_rss_bytes"]),
                 xr(l["peak_rss_bytes"], p["peak_rss_bytes"])],
                [f"{name}: chunks / nodes", str(l["chunks"]), str(bm["chunks"]), str(p["chunks"]), xr(l["chunks"], p["chunks"])],
                [f"{name}: on disk (du)", l["du_h"], "-", p["du_h"], xr(l["du_bytes"], p["du_bytes"])],
            ]
            goals.append(f"{name} index build >= 1.5x faster than P1: P1 {l['build_s']:.1f} s / qa {p['build_s']:.1f} s = "
                         f"{speed:.2f}x -> {'met' if speed >= 1.5 else 'MISSED'}")
            for side, meta in (("qa", p), ("P1", l)):
                if meta["status"] == "reused":
                    notes.append(f"{name}: {side} build figures recorded when it was built ({meta['built_at']}, "
                                 f"project code {meta.get('code_digest', '?')}), index reused in this run")
        else:
            rows.append([f"{name}: full build", l["status"], "-", p["status"], "re-run with --rebuild to measure"])
    text = table(rows, ["build", LABEL["llamaindex"], LABEL["bm25s"], LABEL["project"], "P1 / qa (speed-up of qa)"])
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return text, goals


def scale_table(results: dict) -> tuple[str, list[str]]:
    sc = results["scale"]
    b, s = sc["build"], sc["summary"]
    when = "" if b["status"] == "built" else f" (recorded when built, {b['built_at']})"
    rows = [
        ["documents (RealTime QA 2025 + 2026 + SQuAD paragraphs)", str(sc["documents"])],
        ["chunks", str(b["chunks"])],
        ["index build, s" + when, f"{b['build_s']:.1f}"],
        ["index build CPU, s" + when, f"{b['build_cpu_s']:.1f}"],
        ["build process peak RSS" + when, mib(b["peak_rss_bytes"])],
        ["data dir on disk (du -sh)", sc["data_dir_du_h"]],
        [f"retrieval p50 / p95, ms ({s['questions']} questions, pipeline.retrieve, top_k {sc['worker']['top_k']})",
         f"{ms(s['retrieve_p50_ms'])} / {ms(s['retrieve_p95_ms'])}"],
        ["whole offline answer p50 / p95, ms (pipeline.ask)", f"{ms(s['ask_p50_ms'])} / {ms(s['ask_p95_ms'])}"],
        ["query process peak RSS", mib(s["query_peak_rss_bytes"])],
    ]
    goals = [
        f"scale retrieval p95 <= 150 ms: {ms(s['retrieve_p95_ms'])} ms -> {'met' if s['retrieve_p95_ms'] <= 150 else 'MISSED'}",
        f"scale whole-answer p95 <= 150 ms: {ms(s['ask_p95_ms'])} ms -> {'met' if s['ask_p95_ms'] <= 150 else 'MISSED'}",
        f"query process peak RSS <= 600 MB: {mib(s['query_peak_rss_bytes'])} -> "
        f"{'met' if s['query_peak_rss_bytes'] <= 600e6 else 'MISSED'}",
    ]
    return table(rows, ["scale index (this project)", "value"]), goals


def plot(results: dict, path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(n, key, title) for n, key, title in
              (("squad", "hit@5", "SQuAD v1.1 dev: hit@5 (document)"),
               ("rtqa2026", "recall@5", "RealTime QA 2026: context recall@5"))
              if n in results]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.6), squeeze=False)
    style = {"llamaindex": ("#1f77b4", "o"), "bm25s": ("#ff7f0e", "s"), "project": ("#2ca02c", "D")}
    for ax, (name, key, title) in zip(axes[0], panels):
        s = results[name]["summary"]
        xs = [s[k]["p50_ms"] for k in SYSTEMS]
        for side in SYSTEMS:
            color, marker = style[side]
            x, y = s[side]["p50_ms"], 100 * s[side][key]
            ax.scatter([x], [y], s=120, color=color, marker=marker, label=LABEL[side], zorder=3)
            ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(8, 6), fontsize=10)
        passages = s["project"].get("passage_recall@5") if key == "recall@5" else None
        if passages is not None and s["project"].get("with_passages_p50_ms"):
            x, y = s["project"]["with_passages_p50_ms"], 100 * passages
            ax.scatter([x], [y], s=120, facecolors="none", edgecolors=style["project"][0], marker="D", zorder=3,
                       label="qa article passages (what its LLM reads)")
            ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(8, 6), fontsize=10)
            xs.append(x)
        diag = s.get("llamaindex_1thread")
        if diag:  # same quality as P1 (same index and retriever); only the latency differs
            x, y = diag["p50_ms"], 100 * s["llamaindex"][key]
            ax.scatter([x], [y], s=120, facecolors="none", edgecolors=style["llamaindex"][0], marker="o", zorder=3,
                       label="P1, torch on 1 thread (diagnostic: same quality, latency only)")
            ax.annotate("", xy=(x, y), xytext=(s["llamaindex"]["p50_ms"], y),
                        arrowprops={"arrowstyle": "->", "color": style["llamaindex"][0], "alpha": 0.5})
            xs.append(x)
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 2, max(xs) * 2.5)
        ys = [100 * s[k][key] for k in SYSTEMS] + ([100 * passages] if passages is not None else [])
        ax.set_ylim(max(0, min(ys) - 10), min(103, max(ys) + 6))
        ax.set_xlabel("retrieval latency p50, ms (warm, log scale)")
        ax.set_ylabel(f"{key} (%)")
        ax.set_title(f"{title}\n{results[name]['questions']} questions, {results[name]['documents']} documents", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    legend: dict = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(3, len(legend)), fontsize=9, frameon=False)
    fig.suptitle(f"Quality vs latency (up and to the left is better) - {subtitle}", fontsize=11)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=0, help="quick run: SQuAD and RealTime QA question limit (0 = all)")
    ap.add_argument("--squad-limit", type=int, default=None, help="SQuAD limit (overrides --limit; prepare()'s limit, "
                    "so the corpus shrinks too)")
    ap.add_argument("--rtqa-limit", type=int, default=None, help="RealTime QA limit (overrides --limit)")
    ap.add_argument("--squad-sample", type=int, default=0, help="a random sample (seed 0) of this many SQuAD questions "
                    "over the full corpus (0 = all 10,570)")
    ap.add_argument("--k", type=int, default=20, help="units (chunks / nodes) retrieved per question (default 20)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed warm-up questions per process (default 20)")
    ap.add_argument("--scale-questions", type=int, default=200, help="questions timed on the scale index (default 200)")
    ap.add_argument("--parts", default="squad,rtqa,scale", help="comma-separated: squad, rtqa, scale")
    ap.add_argument("--p1-one-thread", type=int, default=200, help="diagnostic: time P1 again with torch on one "
                    "thread (OMP_NUM_THREADS=1) over this many questions (0 = skip; default 200)")
    ap.add_argument("--report-from", type=Path, default=None, help="only re-render the tables and the plot of a "
                    "finished run's JSON (no measurement)")
    ap.add_argument("--no-answers", action="store_true", help="retrieval only: skip this project's offline answers "
                    "(the reader answering 10,570 SQuAD questions is most of a run's time)")
    ap.add_argument("--precision", choices=("float32", "int8"), default="float32",
                    help="this project's embedding precision (QA_EMBED_PRECISION); int8 indexes and results are kept apart")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached indexes (so build figures are measured)")
    ap.add_argument("--json", type=Path, default=None, help="result file (default bench/out/retrieval/retrieval_bench[_limited].json)")
    ap.add_argument("--plot", type=Path, default=None, help="PNG (default docs/img/quality_vs_latency.png for a full run)")
    args = ap.parse_args(argv)
    args.squad_limit = args.limit if args.squad_limit is None else args.squad_limit
    args.rtqa_limit = args.limit if args.rtqa_limit is None else args.rtqa_limit
    limited = bool(args.squad_limit or args.rtqa_limit)  # a --squad-sample run is still a full run
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    global PRECISION
    PRECISION = args.precision
    tag = "" if PRECISION == "float32" else f"_{PRECISION}"
    json_path = args.json or ROOT / (f"retrieval_bench{tag}_limited.json" if limited else f"retrieval_bench{tag}.json")
    plot_path = args.plot or (ROOT / f"quality_vs_latency{tag}{'_limited' if limited else ''}.png" if limited or tag
                              else REPO / "docs" / "img" / "quality_vs_latency.png")
    command = "python bench/retrieval_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.report_from:
        data = json.loads(args.report_from.read_text())
        if args.plot is None:
            plot_path = (ROOT / "quality_vs_latency_limited.png" if data.get("limited")
                         else REPO / "docs" / "img" / "quality_vs_latency.png")
        render(data, args.report_from, plot_path)
        return 0

    global RUN
    RUN = ROOT / json_path.stem
    RUN.mkdir(parents=True, exist_ok=True)

    from bot.config import Settings
    from eval.datasets import prepare

    source = Settings(_env_file=None).shared_data_dir
    info = machine()
    t_all = time.perf_counter()
    ROOT.mkdir(parents=True, exist_ok=True)
    print(f"preparing datasets under {DATA} ...", flush=True)
    datasets = {}
    if parts & {"squad", "scale"}:
        datasets["squad"] = prepare("squad", DATA, source, limit=args.squad_limit or None)
    if parts & {"rtqa", "scale"}:
        datasets["rtqa2026"] = prepare("realtimeqa-2026", DATA, source, limit=args.rtqa_limit or None)
    if "scale" in parts:
        datasets["rtqa2025"] = prepare("realtimeqa-2025", DATA, source, limit=args.rtqa_limit or None)
    for key, ds in datasets.items():
        print(f"  {key}: {ds.n_docs} documents, {len(ds.questions)} questions ({ds.collection})", flush=True)

    results: dict = {}
    if "squad" in parts:
        qs = datasets["squad"].questions
        if args.squad_sample and args.squad_sample < len(qs):
            qs = random.Random(0).sample(qs, args.squad_sample)
        part_quality("squad", datasets["squad"], qs, args, results, answer=not args.no_answers)
        write_json(json_path, {"partial": True, "results": results, "machine": dict(info)})
    if "rtqa" in parts:
        part_quality("rtqa2026", datasets["rtqa2026"], datasets["rtqa2026"].questions, args, results,
                     answer=not args.no_answers)
        write_json(json_path, {"partial": True, "results": results, "machine": dict(info)})
    if "scale" in parts:
        part_scale(datasets, args, results)

    write_json(json_path, {"partial": True, "results": results, "machine": dict(info)})
    code_digest("end of run")
    data = {"benchmark": "retrieval_bench", "command": command, "machine": info, "project_code": CODE_SEEN,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "limited": limited, "results": results, "total_wall_s": time.perf_counter() - t_all}
    render(data, json_path, plot_path)
    return 0


def render(data: dict, json_path: Path, plot_path: Path) -> None:
    """Tables, goals and the plot of a run's results; writes the JSON and its .md."""
    results, info, k = data["results"], data["machine"], data["args"]["k"]
    out: list[str] = [f"command: {data['command']}", f"date: {info['date']}; machine: {info['cpus']} CPUs "
                      f"({info['cpu_model']}), load average at start {info['loadavg_start']}", ""]
    code = data.get("project_code") or {}
    if len(code) == 1:
        out += [f"project code (bot/, index/) digest {next(iter(code))}, unchanged during the run", ""]
    elif code:
        out += ["WARNING: the project's code changed during the run; steps by code digest:",
                *(f"  {d}: {', '.join(steps)}" for d, steps in code.items()), ""]
    goals: list[str] = []
    if "squad" in results:
        r = results["squad"]
        s = r["summary"]
        out += [f"## SQuAD v1.1 dev: {r['documents']} paragraphs, {r['questions']} questions, K = {k} units", "",
                quality_table(s, [("hit@1", "hit@1 (%)"), ("hit@5", "hit@5 (%)"), ("mrr@10", "MRR@10 (x100)"),
                                  ("recall@5", "context recall@5 (%)")], answer_rows(s) + diag_rows(s)), ""]
        goals += quality_goals("SQuAD", s, ["hit@1", "hit@5", "mrr@10"], ["hit@5"])
        out += [settings_line(r), ""]
    if "rtqa2026" in results:
        r = results["rtqa2026"]
        s = r["summary"]
        extra = answer_rows(s) + diag_rows(s)
        out += [f"## RealTime QA 2026: {r['documents']} articles, {r['questions']} questions "
                f"({s['project']['n_gold']} with a gold article), K = {k} units", "",
                quality_table(s, [("recall@5", "context recall@5 (%)"), ("hit@1", "hit@1, gold article (%)"),
                                  ("hit@5", "hit@5, gold article (%)"), ("mrr@10", "MRR@10 (x100)")], extra), ""]
        goals += quality_goals("RealTime QA 2026", s, ["recall@5", "hit@1", "hit@5", "mrr@10"], ["recall@5"])
        out += [settings_line(r), ""]
    if "squad" in results or "rtqa2026" in results:
        text, g = build_table(results)
        out += ["## Index build (each side in its own process)", "", text, ""]
        goals += g
    if "scale" in results:
        text, g = scale_table(results)
        out += ["## Scale index", "", text, ""]
        goals += g
    out += ["## Goals", "", *(f"- {g}" for g in goals)]
    report = "\n".join(out)
    print("\n" + report, flush=True)
    if "squad" in results or "rtqa2026" in results:
        plot(results, plot_path, ("quick run, " if data.get("limited") else "") + info["date"][:10])
        print(f"\nplot: {plot_path}")
    data.update(goals=goals, report_markdown=report)
    data.pop("partial", None)
    write_json(json_path, data)
    json_path.with_suffix(".md").write_text(report + "\n")
    print(f"wrote {json_path} (+ .md); measurement took {data.get('total_wall_s', 0):.0f} s")


def settings_line(r: dict) -> str:
    w = r["workers"]["project"]
    return (f"qa retriever as measured: fusion {w.get('fusion')}, dense weight {w.get('dense_weight')}, "
            f"sentence weight {w.get('sentence_weight', 0)}, rerank depth {w.get('rerank_depth', 0)} "
            f"(weight {w.get('rerank_weight', 0)}), "
            f"candidates {w.get('candidates')} per retriever, keep_top {w.get('keep_top')}; index {w.get('index')}")


def answer_rows(s: dict) -> list[list[str]]:
    """This project's offline-answer rows (no peer has an offline answerer)."""
    qa = s["project"]
    if "correct" not in qa:
        return []
    return [
        ["qa answer correctness (%), offline answerer", "-", "-", pct(qa["correct"]), "-", "-"],
        ["qa abstained (%)", "-", "-", pct(qa["abstain_rate"]), "-", "-"],
        ["qa context recall of the 8 chunks given to the answerer (%)", "-", "-", pct(qa["ask_recall@8"]), "-", "-"],
        ["qa whole offline answer p50 / p95, ms", "-", "-", f"{ms(qa['ask_p50_ms'])} / {ms(qa['ask_p95_ms'])}", "-", "-"],
    ]


def diag_rows(s: dict) -> list[list[str]]:
    d = s.get("llamaindex_1thread")
    if not d:
        return []
    return [[f"diagnostic: P1 retrieval p50 / p95 with OMP_NUM_THREADS=1, ms ({d['questions']} q)",
             f"{ms(d['p50_ms'])} / {ms(d['p95_ms'])}", "-", "-", "-", "-"]]


if __name__ == "__main__":
    sys.exit(main())
