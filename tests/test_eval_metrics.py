"""Metric computations on hand-made inputs (no model, no index)."""

from __future__ import annotations

import math

import pytest

from eval import metrics as M


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The  Quick, brown fox!", "quick brown fox"),
        ("Chen Min\u2019er", "chen min er"),
        ("Chen Min'er", "chen min er"),
        ("\u201cQuoted\u201d\u00a0text", "quoted text"),
        ("an apple a day", "apple day"),
        ("6.15 billion yuan", "615 billion yuan"),
        ("", ""),
    ],
)
def test_normalize(text, expected):
    assert M.normalize(text) == expected


def test_contains_whole_words_after_normalising():
    assert M.contains("He met Dr. Chen Bin in May.", ["chen bin"])
    assert M.contains("Chen Min\u2019er spoke", ["Chen Min'er"])
    assert M.contains("It cost 1,647 yuan", ["1647"])
    assert not M.contains("There were 100 people", ["10"])
    assert not M.contains("anything", [])
    assert not M.contains("the", ["The"])  # an answer that normalises to nothing never matches


def test_token_f1():
    assert M.token_f1("Denver Broncos", ["Denver Broncos"]) == 1.0
    assert M.token_f1("the Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8)  # p=2/3, r=1
    assert M.token_f1("Carolina", ["Denver Broncos", "Carolina Panthers"]) == pytest.approx(2 / 3)
    assert M.token_f1("nothing here", ["Denver"]) == 0.0
    assert M.token_f1("", ["Denver"]) == 0.0


def test_hit_at_k_and_mrr_are_document_level():
    retrieved = ["a#0", "a#1", "b#0", "c#3"]
    docs = [c.split("#")[0] for c in retrieved]
    assert M.distinct_docs(docs) == ["a", "b", "c"]
    assert M.hit_at_k(docs, ["b"], 1) == 0.0
    assert M.hit_at_k(docs, ["b"], 2) == 1.0  # b is the 2nd distinct document, though the 3rd chunk
    assert M.reciprocal_rank(docs, ["c"]) == pytest.approx(1 / 3)
    assert M.reciprocal_rank(docs, ["z"]) == 0.0
    assert M.hit_at_k(docs, [], 5) is None and M.reciprocal_rank(docs, []) is None


def test_context_recall_and_citation_precision():
    assert M.context_recall(["nothing", "born in Chongqing."], ["chongqing"]) is True
    assert M.context_recall(["nothing"], ["chongqing"]) is False
    assert M.context_recall(["x"], []) is None
    assert M.citation_precision(["a", "b", "a", "c"], ["a"]) == 0.5
    assert M.citation_precision([], ["a"]) is None
    assert M.citation_precision(["a"], []) is None


def test_abstention_precision_recall():
    answerable = [True, True, False, False, False]
    abstained = [True, False, True, True, False]
    precision, recall = M.abstention_scores(answerable, abstained)
    assert precision == pytest.approx(2 / 3) and recall == pytest.approx(2 / 3)
    assert M.abstention_scores([True], [False]) == (None, None)


def test_percentile_matches_linear_interpolation():
    xs = [10.0, 20.0, 30.0, 40.0]
    assert M.percentile(xs, 50) == 25.0
    assert M.percentile(xs, 95) == pytest.approx(38.5)
    assert M.percentile([5.0], 95) == 5.0
    assert M.percentile([], 50) is None
    assert M.percentile([1.0, float("nan"), 3.0], 50) == 2.0


def _qm(**kw):
    base = dict(answers=["Chongqing"], gold_docs=["a.txt"], answerable=True, answer_text="It was held in Chongqing [1].",
                abstained=False, cited_docs=["a.txt"], retrieved_docs=["a.txt", "b.txt"],
                retrieved_texts=["... held in Chongqing ..."])
    base.update(kw)
    return M.question_metrics(**base)


def test_question_metrics_answerable():
    m = _qm()
    assert m["correctness"] is True and m["passed"] is True
    assert m["f1"] == pytest.approx(2 * (1 / 5) * 1 / (1 / 5 + 1), abs=1e-4)  # 5 tokens vs "chongqing"
    assert m["hit@1"] == 1.0 and m["mrr"] == 1.0 and m["context_recall"] is True
    assert m["citation_precision"] == 1.0 and m["answer_words"] == 5

    wrong = _qm(answer_text="It was in Chengdu [1].", cited_docs=["b.txt"], retrieved_docs=["b.txt", "a.txt"])
    assert wrong["correctness"] is False and wrong["passed"] is False
    assert wrong["hit@1"] == 0.0 and wrong["hit@3"] == 1.0 and wrong["mrr"] == 0.5
    assert wrong["citation_precision"] == 0.0

    abstained = _qm(answer_text="Chongqing?", abstained=True, cited_docs=[])
    assert abstained["correctness"] is False and abstained["f1"] == 0.0 and abstained["answer_words"] == 0


def test_citation_markers_never_count_as_answers():
    m = _qm(answers=["1"], answer_text="Something else [1].")
    assert m["correctness"] is False


def test_question_metrics_unanswerable_and_ungraded():
    m = _qm(answerable=False, answers=[], gold_docs=[], abstained=True, answer_text="I couldn't find that.")
    assert m["passed"] is True and m["correctness"] is None and m["hit@5"] is None and m["f1"] is None
    assert _qm(answerable=False, answers=[], gold_docs=[])["passed"] is False
    no_gold = _qm(gold_docs=[])
    assert no_gold["hit@5"] is None and no_gold["mrr"] is None and no_gold["correctness"] is True


def _row(answerable=True, abstained=False, latency=10.0, **metrics):
    return {"answerable": answerable, "abstained": abstained, "latency_ms": latency,
            "metrics": {"answer_words": 3, **metrics}}


def test_summarize_skips_none_and_counts():
    rows = [
        _row(correctness=True, passed=True, **{"hit@5": 1.0}, latency=10),
        _row(correctness=False, passed=False, **{"hit@5": None}, latency=20),
        _row(answerable=False, abstained=True, correctness=None, passed=True, latency=30),
        _row(answerable=False, abstained=False, correctness=None, passed=False, latency=40),
    ]
    metrics, counts = M.summarize(rows)
    assert metrics["correctness"] == 0.5 and counts["correctness"] == 2
    assert metrics["hit@5"] == 1.0 and counts["hit@5"] == 1
    assert metrics["pass_rate"] == 0.5 and counts["pass_rate"] == 4
    assert metrics["abstention_precision"] == 1.0 and metrics["abstention_recall"] == 0.5
    assert metrics["latency_p50_ms"] == 25.0 and metrics["latency_p95_ms"] == pytest.approx(38.5)
    assert metrics["mrr"] is None and counts["mrr"] == 0
    assert "faithfulness" not in metrics  # no judge ran
    assert set(metrics) <= set(M.SUMMARY_METRICS)


def test_failed_or_nan_judgements_are_counted_not_averaged():
    rows = [
        _row(faithfulness=1.0, relevancy=1.0, judge_failed=[]),
        _row(faithfulness=None, relevancy=0.0, judge_failed=["faithfulness"]),
        _row(faithfulness=float("nan"), relevancy=1.0),
        _row(),  # abstained or not judged: no judge metrics at all
    ]
    metrics, counts = M.summarize(rows)
    assert metrics["faithfulness"] == 1.0 and counts["faithfulness"] == 1
    assert metrics["relevancy"] == pytest.approx(0.6667) and counts["relevancy"] == 3
    assert metrics["judge_failed"] == 2
    assert not any(isinstance(v, float) and math.isnan(v) for v in metrics.values())
