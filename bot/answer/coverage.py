"""How much of the question an answer's sentence covers: a lexical check beside the trained reader.

The reader scores each chunk alone and learned from a few thousand questions; a sentence that shares the
question's topic but not its particulars can still win. The idf-weighted share of the question's terms
found in the span's sentence, and in that sentence with its neighbours, tells those apart across data
the reader never saw: fitted on one validation set and scored on the other, adding it to the reader's
margin raised the calibration objective on both (train/calibrate.py prints that check on every run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Vocabulary(Protocol):
    """What coverage needs from the lexical index: its tokenizer and its idf (index.lexical.LexicalIndex)."""

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]: ...

    def idf(self, terms: Sequence[str]) -> dict[str, float]: ...


@dataclass(frozen=True)
class Cover:
    """Shares (0-1) of the question's idf weight in the span's sentence and in it with its neighbours."""

    sentence: float = 0.0
    near: float = 0.0


NO_COVER = Cover()


def covers(vocab: Vocabulary, question: str, texts: Sequence[tuple[str, str]], answered: str = "") -> list[Cover]:
    """Cover of each (sentence, sentence with neighbours) pair for the question, tokenized in one batch.

    With `answered` (the first part of a two-part answer), only the question terms it does not hold count:
    the second part answers the rest of the question, not the part already answered.
    """
    if not texts:
        return []
    tokens = vocab.tokenize([question, answered, *(t for pair in texts for t in pair)])
    terms = set(tokens[0]) - set(tokens[1])
    if not terms:
        return [NO_COVER for _ in texts]
    idf = vocab.idf(sorted(terms))
    total = sum(idf.values()) or 1.0

    def share(toks: list[str]) -> float:
        return sum(idf[t] for t in terms.intersection(toks)) / total

    return [Cover(share(tokens[2 + 2 * i]), share(tokens[3 + 2 * i])) for i in range(len(texts))]
