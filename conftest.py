"""Let ``pytest --nbval-lax book/`` run the chapters straight from their MyST sources.

nbval only collects ``.ipynb``; the book's only source is ``book/*.md`` (Jupytext MyST).
This collector reads each chapter through jupytext and hands the notebook to nbval, so no
notebook is ever written to disk.  The kernel works in ``book/``, like the book build.
"""
from unittest import mock

import pytest


def pytest_collect_file(file_path, parent):
    opt = parent.config.option
    if not (getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False)):
        return None
    if file_path.suffix == ".md" and file_path.parent.name == "book" and _is_notebook(file_path):
        return MarkdownNotebook.from_parent(parent, path=file_path)
    return None


def _is_notebook(path) -> bool:
    """A chapter with code is a MyST notebook: its front matter has a kernelspec.
    Plain Markdown pages (the intro) have none, and their code blocks are not cells."""
    text = path.read_text(encoding="utf-8")
    return text.startswith("---") and "kernelspec:" in text.split("\n---", 1)[0]


try:
    import jupytext
    import nbval.plugin

    class MarkdownNotebook(nbval.plugin.IPyNbFile):
        """An nbval notebook whose cells come from a Jupytext ``.md`` file."""

        def collect(self):
            notebook = jupytext.read(str(self.path))
            with mock.patch.object(nbval.plugin.nbformat, "read", lambda *a, **k: notebook):
                yield from super().collect()

except ImportError:  # nbval or jupytext missing: plain unit tests still run
    MarkdownNotebook = None
