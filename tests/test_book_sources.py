"""Checks of the chapters' sources that keep the rendered page readable, cheaper than the
browser test (tests/test_browser.py) and independent of fonts: visible code fits the
column, plotting and bookkeeping cells are folded, every figure has a numbered caption,
and the repository's address is one setting."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.md") if "kernelspec:" in p.read_text().split("\n---", 1)[0])
CODE_COLUMN = 72  # characters of code that fit the code box (654 px) without scrolling


def cells(path: Path):
    """(first line number, tags, code lines) of every code cell."""
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("```{code-cell}"):
            start, tags, i = i + 1, [], i + 1
            while lines[i].startswith(":"):
                if lines[i].startswith(":tags:"):
                    tags = re.findall(r"[\w-]+", lines[i].split(":", 2)[2])
                i += 1
            body = []
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            yield start, tags, body
        i += 1


def folded(tags) -> bool:
    return bool({"hide-input", "remove-input", "remove-cell"} & set(tags))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_visible_code_fits_the_column(path):
    long = [f"line {start + k}: {len(line)} characters" for start, tags, body in cells(path)
            if not folded(tags) for k, line in enumerate(body) if len(line) > CODE_COLUMN]
    assert not long, f"{path.name}: visible code wider than {CODE_COLUMN} characters: {long}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_plotting_cells_are_folded_and_figures_captioned(path):
    text = path.read_text(encoding="utf-8")
    for start, tags, body in cells(path):
        code = "\n".join(body)
        if "page.figure(" in code or "plt.subplots(" in code:
            assert folded(tags), f"{path.name}, cell at line {start}: a plotting cell must be folded (hide-input)"
            assert "glue(" in code and "plt.close(" in code, \
                f"{path.name}, cell at line {start}: glue the figure into a numbered {{glue:figure}} and close it"
    code = "\n".join(line for _, _, body in cells(path) for line in body)
    glued = set(re.findall(r'"(fig_\w+)"', code))  # every figure name the code glues
    captioned = set(re.findall(r"```\{glue:figure\} (fig_\w+)", text))
    assert glued == captioned, f"{path.name}: figures glued but not captioned: {glued - captioned}"


@pytest.mark.parametrize("path", [p for p in CHAPTERS if p.name != "intro.md"], ids=lambda p: p.name)
def test_every_chapter_states_its_run_time_and_has_exercises(path):
    # (the front door, book/intro.md, runs one hidden cell for its findings: not a chapter)
    text = path.read_text(encoding="utf-8")
    assert '{glue:text}`page_runtime`' in text and 'glue("page_runtime", page.runtime()' in text
    assert text.count("```{exercise}") + text.count("````{exercise}") >= 2, f"{path.name}: fewer than 2 exercises"


def test_the_repository_address_is_one_setting():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"]
    assert config["parse"]["myst_substitutions"]["repository_url"] == url
    assert url in (ROOT / "README.md").read_text() and url in (ROOT / "CITATION.cff").read_text()
    assert "{{ repository_url }}" in (ROOT / "book" / "intro.md").read_text()


def test_the_checks_can_fail(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("---\nkernelspec:\n  name: python3\n---\n\n```{code-cell} ipython3\n"
                   "fig, ax = page.figure()\n" + "x = 1" + " " * 80 + "\n```\n")
    (start, tags, body), = cells(bad)
    assert not folded(tags) and max(len(line) for line in body) > CODE_COLUMN
