"""LLM-judged metrics (only when an LLM is configured): LlamaIndex Faithfulness and Relevancy.

Each judgement is 1.0 (passing) or 0.0; a judgement that raises, or comes back without a usable
score (None/NaN/invalid), is recorded as None and listed in the question's `judge_failed`, so the
summary counts it instead of averaging it in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)


class Judge:
    """Faithfulness (is the answer supported by the retrieved text?) and relevancy (does it answer the question?)."""

    def __init__(self, llm: Any, model: str = ""):
        from llama_index.core.evaluation import FaithfulnessEvaluator, RelevancyEvaluator

        import asyncio

        self.model = model
        # evaluate() wraps each call in a fresh asyncio.run(), but the LLM's async HTTP client keeps its
        # pooled connections bound to the first loop: later calls then fail with "Connection error".
        # One loop for the judge's lifetime keeps the pool valid.
        self._loop = asyncio.new_event_loop()
        self.evaluators = {
            "faithfulness": FaithfulnessEvaluator(llm=llm),
            "relevancy": RelevancyEvaluator(llm=llm),
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Judge | None:
        """A judge using the configured OpenAI-compatible model, or None when no LLM is configured."""
        if not settings.llm_enabled:
            return None
        from llama_index.llms.openai_like import OpenAILike

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
        llm = OpenAILike(
            model=settings.llm_model,
            api_base=settings.openai_base_url or "https://api.openai.com/v1",
            api_key=key,
            is_chat_model=True,
            temperature=0.0,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            context_window=16000,
        )
        return cls(llm, settings.llm_model)

    def judge(self, question: str, answer: str, contexts: Sequence[str]) -> dict[str, Any]:
        """{"faithfulness": score|None, "relevancy": score|None, "judge_failed": [names]}."""
        out: dict[str, Any] = {}
        failed: list[str] = []
        for name, evaluator in self.evaluators.items():
            try:
                result = self._loop.run_until_complete(
                    evaluator.aevaluate(query=question, response=answer, contexts=list(contexts))
                )
                score = result.score
                if result.invalid_result or score is None or math.isnan(float(score)):
                    raise ValueError(result.invalid_reason or f"no score ({score!r})")
                out[name] = float(score)
            except Exception as exc:  # any judge failure is counted, never fatal
                log.warning("%s judgement failed: %s", name, exc)
                out[name] = None
                failed.append(name)
        out["judge_failed"] = failed
        return out
