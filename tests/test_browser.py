"""The rendered book as a reader sees it: every page of the table of contents opened
offline in headless Chromium (tests/browser.py lists what it checks), and the same
checks shown failing on a deliberately broken page.

The book test needs a built book (``make book``; ``make test`` builds one first) and
Debian's chromium and chromium-driver (``.ci/run`` installs them); without them it is
skipped with the reason."""
import os
import shutil
from pathlib import Path

import pytest

import browser  # tests/browser.py

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("TXTHEORY_BOOK_HTML", ROOT / "_build" / "html"))
needs_chromium = pytest.mark.skipif(not browser.available(),
                                    reason="needs chromium, chromium-driver and selenium (.ci/run installs them)")


@needs_chromium
def test_every_page_renders_as_a_reader_sees_it():
    pages = browser.book_pages(ROOT)
    if not all((HTML / page).is_file() for page in pages):
        pytest.skip(f"the book is not built at {HTML} (make book)")
    shots = HTML.parent / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)
    found = browser.check_site(HTML, pages, shots)
    assert sorted(found) == sorted(pages)
    problems = {page: p for page, p in found.items() if p}
    assert not problems, "\n".join(f"{page}: {p}" for page, ps in problems.items() for p in ps)
    assert len(list(shots.glob("*.png"))) == len(pages)


BROKEN = """<!doctype html><html><head><meta charset="utf-8"><title>broken</title></head>
<body><main style="width: 688px">
<p>Raw maths: $$x^2$$ and <span class="math notranslate nohighlight">\\(y\\)</span>.</p>
<img src="missing.png" alt="a figure that is not there">
<div style="width: 2000px; height: 10px; background: red">too wide</div>
<div class="cell_output"><pre>{long_line}</pre></div>
<p><span class="xref std std-ref">an unresolved reference</span></p>
<p><a href="nowhere.html#nothing">a broken link</a> and <a href="#missing-anchor">another</a>.</p>
<script>console.error("something broke");</script>
</main></body></html>
"""


@needs_chromium
def test_a_broken_page_fails_every_check(tmp_path):
    (tmp_path / "broken.html").write_text(BROKEN.format(long_line="x" * 400), encoding="utf-8")
    (problems,) = browser.check_site(tmp_path, ["broken.html"]).values()
    expected = ["raw TeX", "maths not typeset", "image did not load", "element wider than the column",
                "output line wider than the column", "unresolved cross-reference", "console error",
                "link to a missing file", "link to a missing anchor"]
    for kind in expected:
        assert any(kind in p for p in problems), f"not reported: {kind}; got {problems}"


@needs_chromium
def test_a_clean_page_passes(tmp_path):
    (tmp_path / "clean.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>'
        '<body><main style="width: 688px"><p id="a">Fine, <a href="#a">here</a>.</p></main></body></html>',
        encoding="utf-8")
    assert browser.check_site(tmp_path, ["clean.html"]) == {"clean.html": []}
