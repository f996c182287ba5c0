"""Reporting: the notebook contract's bookkeeping (`start`, `NotebookRun`: figures, tables and
metrics with provenance), plots, 2-D embeddings, and the papermill chain (`run_chain`).
Nothing below imports this package; notebooks and the command line do."""

from .notebook import NotebookRun, markdown_table, start

__all__ = ["NotebookRun", "markdown_table", "start"]
