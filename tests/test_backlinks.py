"""The package and the book point at each other, as in d2l: each module's docstring names
the chapter that explains it, and the chapters name the package's functions. These tests
keep every such pointer true: a file a module names exists, a chapter it names is in
_toc.yml, and a dotted name (``kernels.fit_free``) in a docstring or in a chapter's prose
resolves to a real attribute of txtheory."""
import ast
import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "txtheory"
SOURCES = sorted(PACKAGE.rglob("*.py"))
CHAPTERS = sorted((ROOT / "book").glob("*.md"))
PATH_RE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.(?:md|py|yml|yaml|toml|bib|txt|cfg|json|ipynb))\b")
TOP_MODULES = sorted({p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()})
DOTTED_RE = re.compile(r"(?<![\w./-])((?:txtheory\.)?(?:" + "|".join(m for m in TOP_MODULES if not m.startswith("_"))
                       + r")(?:\.[A-Za-z_]\w*)+)(?!\.?\w)")
FILE_SUFFIXES = {"md", "py", "yml", "yaml", "toml", "bib", "txt", "cfg", "json", "ipynb"}


def toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found, stack = {toc["root"]}, list(toc.get("chapters", [])) + [c for p in toc.get("parts", []) for c in p["chapters"]]
    while stack:
        entry = stack.pop()
        found.add(entry["file"])
        stack.extend(entry.get("sections", []))
    return {f if f.endswith(".md") else f + ".md" for f in found}


def docstrings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return [d for d in (ast.get_docstring(n) for n in nodes) if d]


def resolves(dotted: str) -> bool:
    parts = dotted.removeprefix("txtheory.").split(".")
    obj = importlib.import_module(f"txtheory.{parts[0]}")
    for i, part in enumerate(parts[1:], start=1):
        if part in getattr(obj, "__dataclass_fields__", {}):  # a field of a dataclass: resolved
            return True
        if not hasattr(obj, part):
            try:  # a submodule not imported by its package, e.g. txtheory.kernels.free
                obj = importlib.import_module("txtheory." + ".".join(parts[: i + 1]))
                continue
            except ImportError:
                return False
        obj = getattr(obj, part)
    return True


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_module_names_exists(path):
    named = set(PATH_RE.findall(path.read_text(encoding="utf-8")))
    missing = sorted(f for f in named if not (ROOT / f).exists())
    assert not missing, f"{path.name} names files that are not in the repository: {missing}"
    unlisted = sorted(f for f in named if f.startswith("book/") and f not in toc_files())
    assert not unlisted, f"{path.name} names chapters that are not in _toc.yml: {unlisted}"


@pytest.mark.parametrize("path", [p for p in SOURCES if not p.name.startswith("_") or p.name == "__init__.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_public_module_names_its_chapter(path):
    module_doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    chapters = set(re.findall(r"book/[\w-]+\.md", module_doc))
    assert chapters & toc_files(), f"{path.relative_to(ROOT)}: its docstring names no chapter of the book"


@pytest.mark.parametrize("path", SOURCES + CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dotted_name_resolves(path):
    if path.suffix == ".py":
        texts = docstrings(path)
    else:  # a chapter: its prose (code cells are run by nbval, which checks them better)
        texts = [re.sub(r"```\{code-cell\}.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)]
    names = {m for text in texts for m in DOTTED_RE.findall(text) if m.rsplit(".", 1)[-1] not in FILE_SUFFIXES}
    broken = sorted(n for n in names if not resolves(n.rstrip(".")))
    assert not broken, f"{path.relative_to(ROOT)} names attributes that do not exist: {broken}"


def test_the_checks_can_fail(tmp_path):
    # a stale pointer of each kind is caught
    assert not resolves("kernels.fit_freely") and resolves("kernels.fit_free") and resolves("kernels.free.fit_free")
    assert "book/old-chapter.md" not in toc_files() and "book/kernels.md" in toc_files()
    assert PATH_RE.findall("see ``construct.py`` and book/x.md") == ["construct.py", "book/x.md"]
