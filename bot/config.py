"""Settings: the only module that reads the environment and `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every knob of the bot. Project settings use the QA_ prefix; library ones keep their usual names."""

    model_config = SettingsConfigDict(
        env_prefix="QA_", env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Index
    data_dir: Path = Path(".qa")
    corpus_dir: Path = Path("seeds")
    collection: str = "articles"
    chunk_size: int = Field(200, gt=16, le=256, description="tokens of the embedding model per chunk")
    chunk_overlap: int = Field(32, ge=0)
    embed_batch_size: int = Field(64, gt=0)
    embed_precision: Literal["float32", "int8"] = Field(
        "float32", description="embedding model arithmetic: float32, or int8 (derived once; an index keeps the one that built it)"
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "qa-bot",
        description="where the ONNX export of the embedding model is kept",
    )
    chroma_host: str | None = Field(None, validation_alias=_alias("CHROMA_HOST", "QA_CHROMA_HOST"))
    chroma_port: int = Field(8000, validation_alias=_alias("CHROMA_PORT", "QA_CHROMA_PORT"))

    shared_data_dir: Path = Field(
        default_factory=lambda: Path(__file__).resolve().parent.parent.parent / "shared" / "data",
        description="real data sets for `qa eval --dataset` and bench/ (RealTime QA, SQuAD)",
    )

    # Retrieval and answering
    top_k: int = Field(8, gt=0, le=50, description="chunks handed to the answerer")
    candidates: int = Field(20, gt=0, le=200, description="hits taken from each retriever before fusion")
    fusion: Literal["rrf", "relative"] = Field("relative", description="relative-score or reciprocal-rank fusion")
    dense_weight: float = Field(0.3, ge=0, le=1, description="weight of vector search in relative-score fusion")
    sentence_weight: float = Field(
        0.2, ge=0, le=1, description="weight of each candidate's best sentence in relative-score fusion (BM25 gets the rest)"
    )
    rerank_depth: int = Field(
        20, ge=0, le=200, description="fused candidates re-ranked by their best sentence's evidence (0 = off)"
    )
    rerank_weight: float = Field(1.0, ge=0, description="weight of the sentence evidence in that rerank")
    llm_sources: int = Field(5, gt=0, le=20, description="articles given to an LLM, one passage each")
    passage_chars: int = Field(
        4000, ge=0, description="characters of each article passage given to an LLM (0 = the ranked chunks alone)"
    )
    max_question_chars: int = 4000
    offline_answerer: Literal["reader", "heuristic"] = Field(
        "reader", description="offline answers: the trained span reader, or the heuristic sentence scorer"
    )
    reader_model: str | None = Field(
        None,
        description="a reader model folder (ONNX or Hugging Face), an ONNX file beside its tokenizer.json, "
        "or a cached Hugging Face id; default: the shipped one",
    )
    reader_threshold: float | None = Field(
        None, description="abstain below this span score (margin over no-answer plus weighted question coverage, "
        "less the type penalty); "
        "default: the model's calibrated value (or gate)"
    )
    reader_chunks: int | None = Field(
        None, gt=0, le=50, description="retrieved chunks the reader reads; default: the model's calibrated depth"
    )
    abstain_threshold: float = Field(
        0.348, description="minimum evidence score of the offline answerer; calibrated by bench/calibrate.py"
    )

    # LLM (any OpenAI-compatible server)
    openai_api_key: SecretStr | None = Field(None, validation_alias=_alias("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_alias("OPENAI_BASE_URL"))
    llm_model: str = "gpt-4o-mini"
    llm_temperature: float = 0.0
    llm_timeout: float = Field(30.0, gt=0)
    llm_max_retries: int = Field(2, ge=0)

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_alias("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_alias("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_alias("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_alias("SLACK_API_URL", "QA_SLACK_API_URL"))
    slack_allowed_channels: str = Field("", description="comma-separated channel ids; empty allows all")
    slack_rate_limit: int = Field(5, ge=1, description="questions per user per minute")
    feedback_db_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite under data_dir")

    @model_validator(mode="after")
    def _weights_leave_room_for_bm25(self) -> Settings:
        if self.dense_weight + self.sentence_weight > 1.0:
            raise ValueError(
                f"QA_DENSE_WEIGHT ({self.dense_weight}) + QA_SENTENCE_WEIGHT ({self.sentence_weight}) must be at most 1"
            )
        return self

    @property
    def llm_enabled(self) -> bool:
        """True when an OpenAI-compatible LLM is configured."""
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def backend(self) -> str:
        """Human-readable name of the Chroma backend in use."""
        from index.indexer import IndexConfig

        return IndexConfig.from_settings(self).backend

    @property
    def feedback_url(self) -> str:
        """The SQLAlchemy URL of the feedback store."""
        return self.feedback_db_url or f"sqlite:///{(self.data_dir / 'feedback.sqlite').resolve()}"


def load_settings(**overrides) -> Settings:
    """Read settings from the environment and `.env`, with explicit overrides winning."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
