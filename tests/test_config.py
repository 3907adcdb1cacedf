"""Settings: defaults, environment, and checks across fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings


def test_fusion_weights_default_leave_half_to_bm25():
    s = Settings(_env_file=None)
    assert s.dense_weight + s.sentence_weight == pytest.approx(0.5)


def test_fusion_weights_over_one_are_refused_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("QA_DENSE_WEIGHT", "0.8")
    monkeypatch.setenv("QA_SENTENCE_WEIGHT", "0.3")
    with pytest.raises(ValidationError, match="must be at most 1"):
        Settings(_env_file=None)


def test_library_settings_keep_their_names_and_the_qa_prefix_works_too(monkeypatch):
    for name in ("CHROMA_HOST", "CHROMA_PORT", "QA_CHROMA_HOST", "QA_CHROMA_PORT", "SLACK_API_URL", "QA_SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHROMA_HOST", "10.0.0.5")
    monkeypatch.setenv("CHROMA_PORT", "8001")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    s = Settings(_env_file=None)
    assert (s.chroma_host, s.chroma_port) == ("10.0.0.5", 8001)
    assert s.llm_enabled and s.openai_base_url == "http://127.0.0.1:9/v1"
    assert s.slack_bot_token.get_secret_value() == "xoxb-test"
    assert s.backend == "chroma server 10.0.0.5:8001"
    monkeypatch.delenv("CHROMA_HOST")
    monkeypatch.setenv("QA_CHROMA_HOST", "10.0.0.6")  # the QA_ spelling is accepted as well
    monkeypatch.setenv("QA_SLACK_API_URL", "http://127.0.0.1:9/api/")
    s = Settings(_env_file=None)
    assert s.chroma_host == "10.0.0.6" and s.slack_api_url == "http://127.0.0.1:9/api/"


def test_dot_env_is_read_and_the_environment_wins(monkeypatch, tmp_path):
    monkeypatch.delenv("QA_CANDIDATES", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    env = tmp_path / ".env"
    env.write_text("QA_TOP_K=3\nQA_CANDIDATES=11\nOPENAI_API_KEY=sk-from-dotenv\n# a comment\n", encoding="utf-8")
    monkeypatch.setenv("QA_TOP_K", "5")
    s = Settings(_env_file=env)
    assert s.candidates == 11 and s.openai_api_key.get_secret_value() == "sk-from-dotenv"
    assert s.top_k == 5  # the environment beats .env
    monkeypatch.chdir(tmp_path)  # the default: .env in the working directory
    assert Settings().candidates == 11


def test_explicit_overrides_win_and_none_means_unset(monkeypatch, tmp_path):
    from bot.config import load_settings

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("QA_COLLECTION", "from-env")
    assert load_settings(collection=None).collection == "from-env"
    assert load_settings(collection="given").collection == "given"
