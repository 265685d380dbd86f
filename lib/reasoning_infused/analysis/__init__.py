"""Beside the pipeline, reading its saved results: error and explanation analysis, reasoning quality,
tables, findings as sentences, figures, and the explorer."""
