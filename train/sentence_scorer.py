"""Train a cross-encoder sentence scorer: all-MiniLM-L6-v2 fine-tuned to say whether a sentence answers a question.

    python -m train.sentence_scorer --out train/runs/sentences          # fine-tune, checkpointing; resumes
    python -m train.sentence_scorer --export train/runs/sentences --target DIR   # ONNX + int8
    python -m train.sentence_scorer --evaluate DIR --split val          # answer-sentence choice, gold passage
    python -m train.sentence_scorer --evaluate DIR --records REC         # added to the reader, on validation

The reader issue asked for this measurement: a sentence scorer from the same weights, against the span
reader's choice of sentence. The pair is (question, sentence); the label is 1 for a sentence holding the
answer, 0 for the other sentences of its passage (the hardest negatives: same subject, same words) and
for sentences of same-subject passages that lack the answer (train.prepare's negatives). One logit,
binary cross-entropy, so a score means the same in any passage: what a choice across retrieved chunks
needs. Trained on train/data/train.jsonl only; --evaluate reads the validation or test split, --records
the calibration records of `python -m train.calibrate --records REC` (validation questions through the
real pipeline), and adds the logit, weighted, to each finding's score as the bot would.

Measured (bot/models/reader/MODEL_CARD.md, docs/benchmarks.md): it does not pay, so the bot does not ship it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from train.reader import load_rows

HERE = Path(__file__).resolve().parent
_WORD = re.compile(r"\w+")
MAX_QUESTION_TOKENS = 64


def encode(tokenizer, question: str, sentence: str, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids and segment ids of [CLS] question [SEP] sentence [SEP], the sentence cut to fit max_len."""
    q = tokenizer.encode(question, add_special_tokens=False).ids[:MAX_QUESTION_TOKENS]
    s = tokenizer.encode(sentence, add_special_tokens=False).ids[: max(8, max_len - len(q) - 3)]
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    return [cls, *q, sep, *s, sep], [0] * (len(q) + 2) + [1] * (len(s) + 1)


class SentenceScorer:
    """An exported scorer folder (model.onnx, tokenizer.json, scorer.json) ready to score sentences."""

    def __init__(self, folder: str | Path, threads: int | None = None):
        from tokenizers import Tokenizer

        from bot.errors import ReaderUnavailable
        from index.embedding import cpu_session

        folder = Path(folder)
        missing = [n for n in ("model.onnx", "tokenizer.json", "scorer.json") if not (folder / n).is_file()]
        if missing:
            raise ReaderUnavailable(f"the sentence scorer in {folder} is incomplete (missing {', '.join(missing)})")
        self.folder = folder
        self.max_len = int(json.loads((folder / "scorer.json").read_text(encoding="utf-8")).get("max_len", 128))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.session = cpu_session(folder / "model.onnx", threads)

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """One logit per sentence, in order (an empty array for none)."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        enc = [encode(self.tokenizer, question, s, self.max_len) for s in sentences]
        width = max(len(i) for i, _ in enc)
        ids = np.zeros((len(enc), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for k, (i, t) in enumerate(enc):
            ids[k, : len(i)], mask[k, : len(i)], types[k, : len(t)] = i, 1, t
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32).reshape(-1)


def _overlap(question: str, sentence: str) -> int:
    q = {w.lower() for w in _WORD.findall(question) if len(w) > 3}
    return len(q & {w.lower() for w in _WORD.findall(sentence)})


def answer_sentences(row: dict) -> tuple[list[str], set[int]]:
    """The passage's sentences and the indexes of those holding the answer (none for a negative)."""
    from train.prepare import sentences

    spans = sentences(row["context"])
    texts = [row["context"][a:b].strip() for a, b in spans]
    gold: set[int] = set()
    if row["answerable"] and row["answer_start"] >= 0:
        a0 = row["answer_start"]
        a1 = a0 + len(row["answer_text"])
        gold = {i for i, (a, b) in enumerate(spans) if a < a1 and b > a0}
    return texts, gold


def pairs_for_epoch(rows: list[dict], rng: random.Random, same: int, other: int,
                    news_repeat: int) -> list[tuple[str, str, float]]:
    """(question, sentence, label) pairs: each positive's answer sentence, up to `same` other sentences of its
    passage and `other` sentences of its group's negative passages (those sharing the most question words
    first, then at random); news questions repeated news_repeat times."""
    negatives: dict[str, list[dict]] = {}
    for r in rows:
        if not r["answerable"]:
            negatives.setdefault(r["group"], []).append(r)
    out = []
    for r in rows:
        if not r["answerable"]:
            continue
        texts, gold = answer_sentences(r)
        if not gold:
            continue
        rest = [t for i, t in enumerate(texts) if i not in gold]
        rest.sort(key=lambda t: (-_overlap(r["question"], t), rng.random()))
        pool = [t for n in negatives.get(r["group"], []) for t in answer_sentences(n)[0]]
        pool.sort(key=lambda t: (-_overlap(r["question"], t), rng.random()))
        for _ in range(news_repeat if r["source"] == "realtimeqa" else 1):
            out += [(r["question"], texts[i], 1.0) for i in sorted(gold)]
            out += [(r["question"], t, 0.0) for t in rest[:same]]
            out += [(r["question"], t, 0.0) for t in pool[:other]]
    rng.shuffle(out)
    return out


def _tensors(batch, pad):
    import torch

    width = max(len(i) for i, _, _ in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    types = torch.zeros((len(batch), width), dtype=torch.long)
    for k, (i, t, _) in enumerate(batch):
        ids[k, : len(i)] = torch.tensor(i)
        mask[k, : len(i)] = 1
        types[k, : len(t)] = torch.tensor(t)
    return ids, mask, types, torch.tensor([y for _, _, y in batch], dtype=torch.float)


def _tokenizer():
    from tokenizers import Tokenizer

    from index.embedding import model_dir

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def train(args) -> None:
    """Fine-tune, checkpointing every --save-every steps; a re-run resumes from the last checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from index.embedding import model_dir
    from train.reader import checkpoint, optimizer, resume, update

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer()
    pad = tok.token_to_id("[PAD]")
    rows = load_rows(Path(args.data) / "train.jsonl")
    if args.limit:
        rows = rows[: args.limit]
    plan = []
    for epoch in range(args.epochs):
        rng = random.Random(args.seed + epoch)
        enc = [(*encode(tok, q, s, args.max_len), y)
               for q, s, y in pairs_for_epoch(rows, rng, args.same, args.other, args.news_repeat)]
        # Similar lengths together within pools of 50 batches (less padding), batches in random order.
        pool = 50 * args.batch_size
        bs = []
        for p in range(0, len(enc), pool):
            part = sorted(enc[p : p + pool], key=lambda e: len(e[0]))
            bs += [part[i : i + args.batch_size] for i in range(0, len(part), args.batch_size)]
        rng.shuffle(bs)
        plan += [(epoch, b) for b in bs]
    total = len(plan)
    print(f"{len(rows)} rows, {total} steps over {args.epochs} epochs", flush=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir()), num_labels=1,
                                                               attn_implementation="eager")
    opt, sched = optimizer(model, args.lr, args.warmup, total)
    ckpt = out / "checkpoint.pt"
    step = resume(ckpt, model, opt, sched)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    t0, losses = time.time(), []
    for k in range(step, total):
        ids, mask, types, y = _tensors(plan[k][1], pad)
        logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[:, 0]
        loss = loss_fn(logits, y)
        losses.append(update(loss, model, opt, sched))
        step = k + 1
        if step % 50 == 0:
            print(f"step {step}/{total} epoch {plan[k][0]} loss {np.mean(losses[-50:]):.4f} "
                  f"{(time.time() - t0) / max(1, len(losses)):.2f}s/step", flush=True)
        if step % args.save_every == 0 or step == total:
            checkpoint(ckpt, model, opt, sched, step)
    model.save_pretrained(out / "final")
    print("saved", out / "final", flush=True)


def export_onnx(model, target: Path) -> Path:
    """An ONNX file with one "logit" per row for a (transformers) one-label sequence classifier."""
    import torch

    class _Logit(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).logits[:, 0]

    ids = torch.ones(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad():
        torch.onnx.export(_Logit(model).eval(), (ids, ids, torch.zeros_like(ids)), str(target), input_names=names,
                          output_names=["logit"],
                          dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "logit": {0: "batch"}},
                          opset_version=17, dynamo=False)
    return target


def export(args) -> None:
    """ONNX (float) and onnxruntime dynamic int8 of the trained scorer, into --target."""
    import shutil

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification

    from index.embedding import model_dir

    work, target = Path(args.export), Path(args.target)
    target.mkdir(parents=True, exist_ok=True)
    src = work / "final"
    if src.exists():
        model = AutoModelForSequenceClassification.from_pretrained(str(src), attn_implementation="eager")
    else:  # an unfinished run: its last checkpoint
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir()), num_labels=1,
                                                                   attn_implementation="eager")
        model.load_state_dict(torch.load(work / "checkpoint.pt", weights_only=False)["model"])
    float_path = export_onnx(model, work / "scorer-float.onnx")
    quantize_dynamic(str(float_path), str(target / "model.onnx"), weight_type=QuantType.QInt8)
    shutil.copy(model_dir() / "tokenizer.json", target / "tokenizer.json")
    (target / "scorer.json").write_text(json.dumps({"max_len": args.max_len}, indent=2) + "\n")
    for f in sorted(target.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 1e6:.1f} MB")


def evaluate(args) -> None:
    """Gold passage given: how often the scorer's best sentence holds the answer, beside the span reader's
    sentence (train.evaluate's figure), per source; and how often the best sentence of a negative passage
    scores below 0 (no answer)."""
    from bot.answer.span_reader import SHIPPED_MODEL, SpanReader
    from eval.metrics import contains
    from train.evaluate import read_best

    rows = load_rows(Path(args.data) / f"{args.split}.jsonl")
    if args.limit:
        rows = rows[: args.limit]
    scorer = SentenceScorer(args.evaluate)
    reader = SpanReader(args.reader or str(SHIPPED_MODEL))
    result = {}
    for source in sorted({r["source"] for r in rows}):
        ce, rd, neg_low, n_sent = [], [], [], []
        for r in (x for x in rows if x["source"] == source):
            texts, _ = answer_sentences(r)
            if not texts:
                continue
            logits = scorer.score(r["question"], texts)
            if not r["answerable"]:
                neg_low.append(float(logits.max()) < 0)
                continue
            n_sent.append(len(texts))
            ce.append(bool(contains(texts[int(np.argmax(logits))], r["answers"])))
            rd.append(bool(contains(read_best(reader, r)[2], r["answers"])))
        result[source] = {"positives": len(ce), "sentences_per_passage": round(float(np.mean(n_sent)), 1),
                          "scorer_sentence_holds_answer": round(float(np.mean(ce)), 4),
                          "reader_sentence_holds_answer": round(float(np.mean(rd)), 4),
                          "negatives": len(neg_low), "scorer_no_answer": round(float(np.mean(neg_low)), 4)}
    print(json.dumps({"scorer": args.evaluate, "split": args.split, "figures": result}, indent=2))


WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)  # the scorer's logit, added to each finding's score, at these weights


def with_logits(results: dict[str, list[dict]], weight: float) -> dict[str, list[dict]]:
    """A copy of calibration records whose every finding's span score has weight x its sentence's logit added
    (the logits stored under "logits" by `compare`)."""
    import copy

    out = copy.deepcopy(results)
    for recs in out.values():
        for r in recs:
            for k, logits in r["logits"].items():
                for f, x in zip(r["raw"][k], logits):
                    f[0] += weight * x
    return out


def rates(results: dict[str, list[dict]], choice: tuple) -> dict[str, tuple[float, float, float, float]]:
    """Per set, (threshold, answered correctly, false abstention, abstention) at a grid choice."""
    from train.calibrate import THRESHOLDS, sweep

    _, n, t, p, w = choice
    i = int(np.argmin(np.abs(THRESHOLDS - t)))
    return {name: sweep(recs, n, p, w)[i] for name, recs in results.items()}


def compare(args) -> None:
    """Each finding of train.calibrate's records (validation questions through the real pipeline) scored by
    the sentence scorer, then the calibration grid with the logit added at each of WEIGHTS, against the reader
    alone at its own choice, paired over the questions. A weight is eligible when it gains on the 95 %
    interval and abstains on no more answerable questions of either set than the reader alone (the rule
    coverage and the type penalty follow, train.calibrate)."""
    from train.calibrate import choose, choose_type_penalty, per_question, retype

    results = json.loads(Path(args.records).read_text())
    scorer = SentenceScorer(args.evaluate)
    t0 = time.perf_counter()
    for recs in results.values():
        for r in recs:
            if "sentences" not in r:
                raise SystemExit("these records hold no sentences: run train.calibrate --records again")
            r["logits"] = {k: scorer.score(r["question"], ss).tolist() for k, ss in r["sentences"].items()}
    print(f"scored every finding's sentence in {time.perf_counter() - t0:.0f} s", flush=True)
    retype(results)
    share = args.answerable_share

    def settled(recs):
        # The grid's choice with the type penalty it takes (as train.calibrate chooses).
        choice = choose(recs, share, caps=caps)
        penalty, typed = choose_type_penalty(recs, share, choice)
        return choose(recs, share, weights=((*choice[4][:2], penalty),), caps=caps) if typed else choice

    caps = None
    base = settled(results)
    caps = {k: row[2] + 1e-9 for k, row in rates(results, base).items()}
    base_q = {name: per_question(recs, base[1], base[3], base[2], share, base[4]) for name, recs in results.items()}
    print(f"reader alone: {base}; false abstention {caps}")
    rows = []
    for weight in WEIGHTS:
        new = with_logits(results, weight)
        choice = settled(new)
        _, n, t, p, w = choice
        cells = "; ".join(f"{name} correct {row[1]:.3f} false-abst {row[2]:.3f} abstain {row[3]:.3f}"
                          for name, row in rates(new, choice).items())
        new_q = {name: per_question(recs, n, p, t, share, w) for name, recs in new.items()}
        b = _paired(base_q, new_q)
        rows.append((weight, new, choice, b))
        print(f"weight {weight:g}: depth {n} penalty {p} coverage/type {w} threshold {t:.2f} | {cells} | objective "
              f"{b['new']:.4f} vs {b['base']:.4f}, gain {b['gain']:+.4f} (95 % interval {b['low']:+.4f} to "
              f"{b['high']:+.4f})", flush=True)
    # A grid that found no setting within the caps scores -1 (train.calibrate.choose).
    eligible = [r for r in rows if r[3]["low"] > 0 and r[2][0] > 0]
    if not eligible:
        print("no weight gains on the 95 % interval without more false abstention: the scorer does not pay")
        return
    weight, _, choice, b = max(eligible, key=lambda r: r[3]["gain"])
    print(f"it pays at weight {weight:g}: {choice}, gain {b['gain']:+.4f}")


def _paired(base: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict:
    """The mean over sets of new minus base per-question objectives, with a 95 % paired bootstrap interval."""
    from train.calibrate import bootstrap_diffs

    lo, hi = np.percentile(bootstrap_diffs([(base[name], new[name]) for name in base]), [2.5, 97.5])
    b, n = (float(np.mean([v.mean() for v in x.values()])) for x in (base, new))
    return {"base": b, "new": n, "gain": n - b, "low": float(lo), "high": float(hi)}


def main(argv: list[str] | None = None) -> None:
    """Train (default), export or evaluate the sentence scorer."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(HERE / "data"))
    ap.add_argument("--out", default=str(HERE / "runs" / "sentences"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--warmup", type=float, default=0.06)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--same", type=int, default=3, help="other sentences of the answer's passage per question")
    ap.add_argument("--other", type=int, default=2, help="sentences of same-subject passages without the answer")
    ap.add_argument("--news-repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N rows only (smoke test)")
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--export", default=None, help="a run folder to export instead of training")
    ap.add_argument("--target", default=str(HERE / "runs" / "sentences" / "model"),
                    help="where --export writes the scorer")
    ap.add_argument("--evaluate", default=None, help="an exported scorer folder to evaluate")
    ap.add_argument("--reader", default=None, help="the span reader to compare with (default: the shipped one)")
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--records", default=None, help="with --evaluate: train.calibrate records to rescore")
    ap.add_argument("--answerable-share", type=float, default=0.75)
    args = ap.parse_args(argv)
    if args.evaluate and args.records:
        compare(args)
    elif args.evaluate:
        evaluate(args)
    elif args.export:
        export(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
