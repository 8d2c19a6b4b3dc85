"""Sphinx fixes for the rendered book, loaded from _config.yml (``sphinx: local_extensions``).

- Some scripts reach a page twice (sphinx-thebe and sphinx-togglebutton register their
  inline configuration on an event that runs twice in a Jupyter Book build), and the
  second ``const THEBE_JS_URL`` is a console error. Keep the first copy of each.
- MathJax is served from the book itself (``sphinx-mathjax-offline``), so an offline reader
  sees the maths. If that copy cannot load, fall back to the CDN.
- sphinx-proof's index of theorems lists their raw labels (``lem-f1``); list their titles,
  grouped by kind, instead.
"""
from __future__ import annotations

import re
from collections import defaultdict

CDN = "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-chtml.js"
FALLBACK = (
    "window.addEventListener('load', function () {"
    " if (!document.querySelector('script[src*=\"_static/mathjax/\"]')) return;"  # a page without maths
    " if (window.MathJax && window.MathJax.version) return;"
    f" var s = document.createElement('script'); s.src = '{CDN}'; s.async = true; document.head.appendChild(s);"
    " });"
)


def _key(js) -> tuple:
    """What makes two scripts the same: the file (None and "" both mean inline) and attributes."""
    return (getattr(js, "filename", str(js)) or "", tuple(sorted(getattr(js, "attributes", {}).items())))


def dedupe_scripts(app, pagename, templatename, context, doctree):
    if "script_files" not in context:
        return
    seen, kept = set(), []
    for js in context["script_files"]:
        key = _key(js)
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"][:] = kept  # in place: handlers after this one may still add page scripts


_PLAIN = {r"\ell^1": "ℓ¹", r"\ell^2": "ℓ²", r"\ell": "ℓ"}


def _plain(title: str) -> str:
    """A title's maths as plain text, for the index."""
    title = title.strip()
    if title.startswith("(") and title.endswith(")"):  # sphinx-proof stores " (title)"
        title = title[1:-1]
    for tex, text in _PLAIN.items():
        title = title.replace(tex, text)
    return re.sub(r"\\(\w+)", r"\1", title).replace("$", "")


def record_titles(app, doctree):
    """Keep each theorem's title next to its label, for the index."""
    proofs = getattr(app.env, "proof_list", {})
    for node in doctree.findall(lambda n: hasattr(n, "get") and n.get("realtype") and n.get("label")):
        if node["label"] in proofs:
            proofs[node["label"]]["title"] = node.get("title", "")


def titled_index(self, docnames=None):
    """sphinx-proof's ProofIndex.generate, with titles for names and one group per kind."""
    content = defaultdict(list)
    for anchor, entry in getattr(self.domain.env, "proof_list", {}).items():
        name = _plain(entry.get("title") or anchor)
        kind = entry["realtype"].capitalize()
        content[f"{kind}s"].append((f"{kind}: {name}", 0, entry["docname"], anchor, "", "", ""))
    return sorted((group, sorted(entries)) for group, entries in content.items()), True


def setup(app):
    from sphinx_proof.domain import ProofIndex

    ProofIndex.generate = titled_index
    app.connect("doctree-read", record_titles)
    # early: html-page-context stops at the first handler that returns a template name
    app.connect("html-page-context", dedupe_scripts, priority=100)
    app.add_js_file(None, body=FALLBACK)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
