"""The MiniLM encoder exposed as a LlamaIndex `BaseEmbedding`, for LlamaIndex pipelines."""

from __future__ import annotations

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding

from index.embedding import MiniLMEncoder


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 through ONNX Runtime; vectors identical to sentence-transformers'."""

    _encoder: MiniLMEncoder = PrivateAttr()

    def __init__(self, encoder: MiniLMEncoder, embed_batch_size: int = 64, **kwargs):
        # LlamaIndex hands us at most embed_batch_size texts per call; a larger call lets the encoder
        # sort by length across more texts and pad less, so the caller may raise it.
        super().__init__(model_name=encoder.name, embed_batch_size=embed_batch_size, **kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex's registry name for this embedding."""
        return "MiniLMOnnxEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode_one(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encoder.encode_one(text).tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode(texts, batch_size=64).tolist()
