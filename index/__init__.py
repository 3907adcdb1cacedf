"""Offline, incremental indexing of articles into Chroma plus a BM25 index beside it."""
