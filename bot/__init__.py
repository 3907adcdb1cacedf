"""Chat-style question answering over news articles, with cited sources."""
