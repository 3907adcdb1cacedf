"""Answerers: extractive (offline), LLM (OpenAI-compatible), and citation validation."""

ABSTAIN_TEXT = "I couldn't find that in the articles."
