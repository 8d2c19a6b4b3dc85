"""Check a built book: every page of the table of contents exists, and no executed
cell left an error in it.  Usage: python tests/check_book_html.py _build/html"""
import sys
from pathlib import Path

import yaml


def pages(toc_file: Path) -> list[str]:
    toc = yaml.safe_load(toc_file.read_text())
    found = [toc["root"]]
    stack = list(toc.get("chapters", [])) + [c for p in toc.get("parts", []) for c in p["chapters"]]
    while stack:
        entry = stack.pop()
        found.append(entry["file"])
        stack.extend(entry.get("sections", []))
    return found


def main(html: str) -> int:
    root = Path(__file__).resolve().parents[1]
    problems = []
    for page in pages(root / "_toc.yml"):
        path = Path(html) / f"{page}.html"
        if not path.is_file():
            problems.append(f"missing page: {path}")
            continue
        text = path.read_text(encoding="utf-8")
        for marker in ("Traceback (most recent call last)", 'class="output traceback', "output stderr"):
            if marker in text:
                problems.append(f"{path}: contains {marker!r}")
    for p in problems:
        print(p)
    print(f"checked {len(pages(root / '_toc.yml'))} pages: {'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "_build/html"))
