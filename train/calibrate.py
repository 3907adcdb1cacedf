"""Choose how the reader abstains, and how many chunks it reads, on validation data only.

    python -m train.calibrate [--model bot/models/reader] [--write]

Validation sets (never the measurement sets):
- `squad-val`: the 7 SQuAD articles of the validation split, indexed as a corpus, all their questions.
- `rtqa-val`: RealTime QA 2020-2024 questions of the validation quiz dates (train/data/val.jsonl),
  each question's evidence an article of one corpus.
Each question is asked through the real pipeline (hybrid retrieval + rerank) once as it is (answerable)
and twice made unanswerable:
- "elsewhere": every chunk of its gold document and every chunk holding an answer removed from what the
  reader sees (related articles, no answer);
- "cut": the same chunks in the same order with every sentence holding an answer cut out (the article
  about the question is there but does not say: the commoner case when people ask about the news).
The objective is the expected share of questions handled right when --answerable-share of them (default
0.75: most questions people ask are about what the articles say) are answerable: share x (answered
correctly | answerable) + (1 - share) x (abstained | unanswerable), the abstention averaged over the two
kinds and the result over the two sets.
1. A grid over reader depth, rank penalty and span-vs-no-answer margin threshold picks the depth and
   penalty (and the margin threshold, used when the gate is off and for a second answer sentence).
2. The answer gate: a logistic regression over the best finding's span score, its no-answer score, its
   chunk's rank and the runner-up's margin (bot.answer.reader.GATE_FEATURES), weighted as the objective
   weighs the questions, its cut-off chosen for the objective. It is also fitted on each set alone and
   scored on the other, beside the margin threshold, so the table shows whether it carries across data.
`--write` stores the choice in the model's reader.json; the gate only with `--gate` (on the shipped
model it won on validation data but did not carry to the measurement sets: see its model card).
`--records FILE --against OTHER` compares two models (each one's records file) at the settings the grid picks
for each, with a paired bootstrap over the questions: how a candidate model is accepted or turned down.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEPTHS = (3, 4, 5, 6, 8)


def _rtqa_val(data_dir: Path, val_file: Path, limit: int | None):
    """The RealTime QA validation questions and their evidence as a corpus (an eval Dataset)."""
    from eval.datasets import Dataset, _write_corpus
    from eval.questions import EvalQuestion, write_questions

    rows = [json.loads(x) for x in val_file.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows = [r for r in rows if r["source"] == "realtimeqa" and r["answerable"]]
    if limit:
        rows = rows[:limit]
    docs, questions = {}, []
    for r in rows:
        doc_id = f"rtqa/{r['id']}.txt"
        docs[doc_id] = f"News quiz evidence {r['id'].split('_')[0]}\n\n{r['context']}\n"
        questions.append(EvalQuestion(r["id"], r["question"], tuple(r["answers"]), (doc_id,)))
    root = data_dir / "datasets" / "rtqa_val"
    _write_corpus(root / "corpus", docs)
    write_questions(root / "questions.jsonl", questions)
    return Dataset("rtqa-val", "rtqa_val", root, questions, len(docs))


PENALTIES = (0.0, 0.25, 0.5, 1.0, 2.0)


def cut_answers(chunk, answers):
    """The chunk with every sentence holding an answer cut out (None when under 10 words are left)."""
    from bot.answer.reader import sentence_spans
    from bot.types import Sentence
    from eval.metrics import contains

    parts, sentences, pos, size = [], [], 0, 0
    for a, b in sentence_spans(chunk):
        if contains(chunk.text[a:b], answers):
            # The sentence goes; the text before it (headings, line breaks) stays.
            parts.append(chunk.text[pos:a])
            size += a - pos
            pos = b
            continue
        gap, piece = chunk.text[pos:a], chunk.text[a:b]
        parts += [gap, piece]
        sentences.append(Sentence(size + len(gap), size + len(gap) + len(piece)))
        size += len(gap) + len(piece)
        pos = b
    joined = "".join(parts) + chunk.text[pos:]
    if len(joined.split()) < 10 or contains(joined, answers):
        return None
    return replace(chunk, text=joined, sentences=tuple(sentences), parts=())


def _raw(found) -> list[tuple[float, float, int]]:
    """(span score, no-answer score, rank) of each finding: what the threshold and the answer gate read."""
    return [(f.span.score, f.span.null, f.rank) for f in found]


def _ordered(raw: list, n: int, p: float) -> list:
    """The raw findings of the top n chunks, best first as ReaderAnswerer.order ranks them."""
    return sorted((f for f in raw if f[2] < n), key=lambda f: f[0] - f[1] - p * f[2], reverse=True)


def _top_margin(raw: list, n: int, p: float) -> float:
    """The margin of the finding the reader would answer from (-1e9 when it found nothing)."""
    best = _ordered(raw, n, p)
    return best[0][0] - best[0][1] if best else -1e9


def observe(pipeline, answerer, questions, depth: int) -> list[dict]:
    """Per question: for each reader depth and rank penalty, the chosen margin and correctness as asked
    (composing the answer is needed to score it); and every finding's (span score, no-answer score, rank)
    as asked ("a") and made unanswerable both ways ("u": elsewhere, "c": cut), from which the margins of
    the unanswerable variants and the answer gate's features are derived."""
    from eval.metrics import contains

    out = []
    for q in questions:
        chunks = pipeline.retrieve(q.question, k=depth + 8)
        found = answerer.find(q.question, chunks)
        rec = {"id": q.id}
        for p in PENALTIES:
            for n in DEPTHS:
                fa = answerer.order([f for f in found if f.rank < n], p)
                if fa:
                    text = answerer.compose(q.question, chunks[:n], fa).text
                    rec[f"a{n}/{p}"] = (fa[0].span.margin, bool(contains(text, q.answers)), len(text.split()))
                else:
                    rec[f"a{n}/{p}"] = (-1e9, False, 0)
        # Unanswerable, "elsewhere": the same findings without the answer's chunks, ranked among what is left.
        bad = {c.id for c in chunks if c.doc_id in q.gold_docs or contains(c.text, q.answers)}
        kept_rank = {c.id: i for i, c in enumerate(c for c in chunks if c.id not in bad)}
        fu = [replace(f, rank=kept_rank[f.chunk.id]) for f in found
              if f.chunk.id in kept_rank and kept_rank[f.chunk.id] < depth]
        # Unanswerable, "cut": the same chunks, in the same places, with the answer's sentences cut out.
        cut = [(i, c2) for i, c in enumerate(chunks[:depth]) if (c2 := cut_answers(c, q.answers)) is not None]
        fc = [replace(f, rank=cut[f.rank][0]) for f in answerer.find(q.question, [c for _, c in cut])]
        rec["raw"] = {"a": _raw(f for f in found if f.rank < depth), "u": _raw(fu), "c": _raw(fc)}
        out.append(rec)
    return out


THRESHOLDS = np.arange(-6.0, 8.01, 0.25)  # the span-vs-no-answer margins the grid tries


def _margins(records: list[dict], n: int, p: float) -> tuple[np.ndarray, ...]:
    """Per question at one depth and penalty: the margin and correctness as asked, and the margins of its
    "elsewhere" and "cut" variants."""
    a = np.array([r[f"a{n}/{p}"][0] for r in records])
    ok = np.array([r[f"a{n}/{p}"][1] for r in records])
    u = np.array([_top_margin(r["raw"]["u"], n, p) for r in records])
    c = np.array([_top_margin(r["raw"]["c"], n, p) for r in records])
    return a, ok, u, c


def sweep(records: list[dict], n: int, p: float) -> list[tuple[float, float, float, float]]:
    """(threshold, answered-correct rate, false-abstention rate, abstention rate) for candidate thresholds.

    The abstention rate averages the two kinds of unanswerable question ("elsewhere" and "cut").
    """
    a, ok, u, c = _margins(records, n, p)
    out = []
    for t in THRESHOLDS:
        abstain = (np.mean(u < t) + np.mean(c < t)) / 2
        out.append((float(t), float(np.mean((a >= t) & ok)), float(np.mean(a < t)), float(abstain)))
    return out


def _gate_rows(records: list[dict], n: int, p: float):
    """Per set: gate features, label (answered correctly) and variant ("a", "u", "c") of every question."""
    from bot.answer.reader import GATE_FEATURES, gate_features

    X, y, kind = [], [], []
    for r in records:
        for k in ("a", "u", "c"):
            fs = _ordered(r["raw"][k], n, p)
            # Nothing found: features that no gate answers from (a very low span score, nothing else found).
            X.append(gate_features(fs) if fs else gate_features([(-100.0, 0.0, 0)]))
            y.append(1.0 if k == "a" and r[f"a{n}/{p}"][1] else 0.0)
            kind.append(k)
    assert len(X[0]) == len(GATE_FEATURES)
    return np.array(X), np.array(y), np.array(kind)


def _objective(s: np.ndarray, y: np.ndarray, kind: np.ndarray, t: float, share: float) -> tuple[float, ...]:
    """(objective, answered correctly, false abstention, abstention) when answering at score >= t."""
    a = kind == "a"
    correct = float(np.mean((s[a] >= t) & (y[a] == 1)))
    abstain = float(np.mean([np.mean(s[kind == k] < t) for k in ("u", "c")]))
    return share * correct + (1 - share) * abstain, correct, float(np.mean(s[a] < t)), abstain


def _margin_threshold(rows: tuple, share: float) -> float:
    """The margin threshold that maximises the objective on one set's gate rows (for comparison)."""
    X, y, kind = rows
    m = X[:, 0] - X[:, 1]
    return float(THRESHOLDS[int(np.argmax([_objective(m, y, kind, t, share)[0] for t in THRESHOLDS]))])


def fit_gate(sets: dict[str, tuple], share: float, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """Logistic regression (Newton steps, L2) of "answered correctly" on the gate features, each set and
    variant weighted as the objective weighs them; returns (weights, bias) with the threshold that
    maximises the mean objective over the sets folded into the bias."""
    X = np.concatenate([v[0] for v in sets.values()])
    y = np.concatenate([v[1] for v in sets.values()])
    w = np.concatenate([np.where(v[2] == "a", share / np.sum(v[2] == "a"), (1 - share) / np.sum(v[2] != "a"))
                        for v in sets.values()])
    w = w / w.mean()
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = np.hstack([(X - mu) / sd, np.ones((len(X), 1))])
    beta = np.zeros(Z.shape[1])
    reg = np.r_[np.full(X.shape[1], l2), 0.0]  # the intercept is not shrunk
    for _ in range(100):
        prob = 1 / (1 + np.exp(-(Z @ beta)))
        grad = Z.T @ (w * (prob - y)) + reg * beta
        hess = (Z * (w * prob * (1 - prob))[:, None]).T @ Z + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = beta[:-1] / sd
    bias = beta[-1] - float(weights @ mu)
    scores = {name: v[0] @ weights + bias for name, v in sets.items()}
    cands = np.unique(np.quantile(np.concatenate(list(scores.values())), np.linspace(0, 1, 801)))
    objective = [np.mean([_objective(scores[k], v[1], v[2], t, share)[0] for k, v in sets.items()]) for t in cands]
    return weights, bias - float(cands[int(np.argmax(objective))])


def choose(results: dict[str, list[dict]], share: float, verbose: bool = False) -> tuple[float, int, float, float]:
    """(objective, depth, threshold, rank penalty) that the grid picks from per-set records; prints it when verbose."""
    best = None
    if verbose:
        print(f"{'depth':>5} {'penalty':>7} {'threshold':>9} | " + " | ".join(f"{n:^29}" for n in results))
        print(f"{'':>5} {'':>7} {'':>9} | " + " | ".join(f"{'correct':>9} {'false-abst':>10} {'abstain':>8}"
                                                         for _ in results))
    for n in DEPTHS:
        for p in PENALTIES:
            tables = {name: sweep(recs, n, p) for name, recs in results.items()}
            scores = [np.mean([share * tables[name][i][1] + (1 - share) * tables[name][i][3] for name in tables])
                      for i in range(len(next(iter(tables.values()))))]
            i = int(np.argmax(scores))
            t = next(iter(tables.values()))[i][0]
            if verbose:
                cells = " | ".join(f"{tables[name][i][1]:>9.3f} {tables[name][i][2]:>10.3f} {tables[name][i][3]:>8.3f}"
                                   for name in tables)
                print(f"{n:>5} {p:>7} {t:>9.2f} | {cells}   objective {scores[i]:.3f}", flush=True)
            if best is None or scores[i] > best[0] + (0.003 if n > best[1] else 0.0):  # depth must pay for itself
                best = (float(scores[i]), n, float(t), p)
    return best


def per_question(records: list[dict], n: int, p: float, t: float, share: float) -> np.ndarray:
    """Each question's share of the objective at one setting (the set's objective is their mean)."""
    a, ok, u, c = _margins(records, n, p)
    return share * ((a >= t) & ok) + (1 - share) * ((u < t).astype(float) + (c < t)) / 2


def paired_bootstrap(base: dict[str, list[dict]], new: dict[str, list[dict]], share: float,
                     rounds: int = 5000, seed: int = 0) -> dict[str, float]:
    """The new model's objective minus the base's, each at the setting the grid picks for it, with a 95 %
    interval and the share of resamples where it does not gain: questions are resampled within each set,
    the same questions for both models, so what the two share (question difficulty) cancels out."""
    settings = {"base": choose(base, share), "new": choose(new, share)}
    xs = []
    for name in base:
        if [r["id"] for r in base[name]] != [r["id"] for r in new.get(name, [])]:
            raise ValueError(f"the two record files do not hold the same {name} questions")
        pair = []
        for key, recs in (("base", base), ("new", new)):
            _, n, t, p = settings[key]
            pair.append(per_question(recs[name], n, p, t, share))
        xs.append(pair)
    rng = np.random.default_rng(seed)
    diffs = np.empty(rounds)
    for j in range(rounds):
        d = 0.0
        for xa, xb in xs:
            i = rng.integers(0, len(xa), len(xa))
            d += xb[i].mean() - xa[i].mean()
        diffs[j] = d / len(xs)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"base": settings["base"][0], "new": settings["new"][0],
            "gain": settings["new"][0] - settings["base"][0], "low": float(lo), "high": float(hi),
            "p_no_gain": float(np.mean(diffs <= 0))}


def main(argv: list[str] | None = None) -> None:
    """Run the calibration and print the table (and write reader.json with --write)."""
    from bot.config import load_settings
    from bot.pipeline import Pipeline
    from eval.datasets import prepare
    from eval.runner import index_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="reader model folder (default: the shipped one)")
    ap.add_argument("--data-dir", type=Path, default=Path(".qa-calibrate"))
    ap.add_argument("--val-file", type=Path, default=HERE / "data" / "val.jsonl")
    ap.add_argument("--limit", type=int, default=None, help="questions per set (a quick run)")
    ap.add_argument("--write", action="store_true", help="store the chosen threshold and depth in reader.json")
    ap.add_argument("--gate", action="store_true", help="with --write: store the answer gate too")
    ap.add_argument("--answerable-share", type=float, default=0.75,
                    help="the share of answerable questions the threshold is chosen for")
    ap.add_argument("--records", type=Path, default=None,
                    help="save the per-question observations here, or reuse them if the file exists")
    ap.add_argument("--against", type=Path, default=None,
                    help="another model's --records file: compare the two objectives, paired over the questions")
    args = ap.parse_args(argv)

    settings = load_settings(data_dir=args.data_dir, offline_answerer="reader", reader_model=args.model)
    sets = [prepare("squad-val", args.data_dir, settings.shared_data_dir, args.limit),
            _rtqa_val(args.data_dir, args.val_file, args.limit)]
    results = {}
    if args.records and args.records.exists():
        results = json.loads(args.records.read_text())
        sets = []
    for ds in sets:
        s = index_dataset(ds, settings)
        pipeline = Pipeline.from_settings(s)
        answerer = pipeline.reader
        answerer.max_chunks = max(DEPTHS) + 8
        t0 = time.perf_counter()
        results[ds.name] = observe(pipeline, answerer, ds.questions, max(DEPTHS))
        print(f"{ds.name}: {len(ds.questions)} questions read in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.records and sets:
        args.records.write_text(json.dumps(results))

    _, n, t, p = choose(results, args.answerable_share, verbose=True)
    if args.against:
        cmp = paired_bootstrap(json.loads(args.against.read_text()), results, args.answerable_share)
        print(f"against {args.against}: objective {cmp['new']:.4f} vs {cmp['base']:.4f}, gain {cmp['gain']:+.4f} "
              f"(95 % interval {cmp['low']:+.4f} to {cmp['high']:+.4f}; no gain in {cmp['p_no_gain']:.1%} of "
              "resamples)")
    print(f"chosen: reader depth {n}, rank penalty {p}, threshold {t:.2f}")
    w = args.answerable_share
    gate_sets = {name: _gate_rows(recs, n, p) for name, recs in results.items()}
    print("answer gate (features: span score, no-answer score, rank, runner-up margin) against the margin threshold;")
    print("first fitted on one set and scored on the other, then fitted on both:")
    for fit_on, test_on in (list(gate_sets), list(gate_sets)[::-1]):
        gw, gb = fit_gate({fit_on: gate_sets[fit_on]}, w)
        tb = _margin_threshold(gate_sets[fit_on], w)
        X, y, k = gate_sets[test_on]
        g, m = _objective(X @ gw + gb, y, k, 0.0, w), _objective(X[:, 0] - X[:, 1], y, k, tb, w)
        print(f"  fit on {fit_on}, scored on {test_on}: gate objective {g[0]:.3f} (correct {g[1]:.3f}, "
              f"false abstention {g[2]:.3f}, abstention {g[3]:.3f}); margin threshold {tb:.2f}: {m[0]:.3f} "
              f"(correct {m[1]:.3f}, false abstention {m[2]:.3f}, abstention {m[3]:.3f})")
    gw, gb = fit_gate(gate_sets, w)
    for name, (X, y, k) in gate_sets.items():
        g = _objective(X @ gw + gb, y, k, 0.0, w)
        print(f"  fit on both, {name}: objective {g[0]:.3f} (correct {g[1]:.3f}, false abstention {g[2]:.3f}, "
              f"abstention {g[3]:.3f})")
    for name, recs in results.items():
        words = [r[f"a{n}/{p}"][2] for r in recs if r[f"a{n}/{p}"][0] >= t]
        print(f"  {name}: median answer {np.median(words) if words else 0:.0f} words")
    if args.write:
        from bot.answer.span_reader import SHIPPED_MODEL

        path = Path(args.model or SHIPPED_MODEL) / "reader.json"
        cfg = json.loads(path.read_text()) if path.exists() else {}
        from bot.answer.reader import GATE_FEATURES

        gate = {"features": list(GATE_FEATURES), "weights": [round(float(x), 6) for x in gw], "bias": round(gb, 6)}
        cfg.update({"threshold": round(t, 2), "depth": n, "rank_penalty": p, "calibrated_on": sorted(results)})
        cfg.pop("gate", None)
        if args.gate:
            cfg["gate"] = gate
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
