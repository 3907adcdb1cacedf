"""Evaluation: question sets, datasets, metrics, runs and reports (eval imports bot; bot never imports eval)."""

# Here rather than in eval.datasets so that the CLI can offer them as choices without importing the loaders.
DATASETS = ("newsqa-dev", "realtimeqa-2026", "realtimeqa-2025", "squad", "squad-val", "squad-test")
