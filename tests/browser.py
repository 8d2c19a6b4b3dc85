"""Open built pages in headless Chromium, offline, as a reader sees them, and list what is wrong.

Used by tests/test_browser.py (on the built book and on a deliberately broken page) and
runnable by hand: ``python tests/browser.py _build/html`` prints the problems and saves a
screenshot of each page under ``_build/screenshots/``.

A page fails on: a console error; maths left as raw TeX or not typeset by MathJax (with
every host but 127.0.0.1 unreachable, so a CDN cannot help); an image that does not load;
a figure drawn wider than the content column (the page shrinks it, and its labels with
it); an element wider than the column that does not scroll inside its own box; a
typeset display formula wider than the column; an internal link whose target does not
exist; a cross-reference Sphinx could not resolve.
"""
from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import socketserver
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 1000  # a laptop's window, as the review measured

# Runs in the page after MathJax (if any) has typeset; returns the problems it sees.
PAGE_CHECKS = r"""
const column = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const box = column.getBoundingClientRect(), pad = getComputedStyle(column);
// the content box: the column less its padding (about 688 px in the book's theme at 1280 px)
const colRect = {left: box.left + parseFloat(pad.paddingLeft), right: box.right - parseFloat(pad.paddingRight)};
colRect.width = colRect.right - colRect.left;
const problems = [];
const text = column.innerText;
for (const raw of ['$$', '\\begin{', '\\[']) {
  if (text.includes(raw)) problems.push(`raw TeX left in the page: "${raw}"`);
}
const maths = column.querySelectorAll('.math, span.math, div.math');
for (const m of maths) {
  if (!m.querySelector('mjx-container')) { problems.push(`maths not typeset: "${m.textContent.slice(0, 60)}"`); break; }
}
for (const img of document.images) {
  if (!img.complete || img.naturalWidth === 0) problems.push(`image did not load: ${img.getAttribute('src')}`);
  else if (img.naturalWidth > img.getBoundingClientRect().width + 1 && column.contains(img))
    problems.push(`figure shrunk to fit: drawn ${img.naturalWidth} px wide, shown at ${Math.round(img.getBoundingClientRect().width)} px (${img.getAttribute('alt') || img.getAttribute('src')})`);
}
function scrolls(el) {
  for (let a = el.parentElement; a && a !== column.parentElement; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (['auto', 'scroll'].includes(s.overflowX) && a.scrollWidth > a.clientWidth - 1) return a.clientWidth <= colRect.width + 1;
    if (['auto', 'scroll'].includes(s.overflowX)) return true;
  }
  return false;
}
let reported = 0;
for (const el of column.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  if (el.matches('mjx-container[display="true"]')) {
    // a display block is as wide as the line; what must fit is the typeset formula inside it
    const inner = el.querySelector('mjx-math');
    const w = inner ? inner.getBoundingClientRect().width : r.width;
    if (w > colRect.width + 1)
      problems.push(`display formula ${Math.round(w)} px wide in a ${Math.round(colRect.width)} px column: "${(el.closest('.math') || el).textContent.slice(0, 50)}"`);
    continue;
  }
  if (el.closest('mjx-container[display="true"]')) continue;  // judged as a whole above
  if (el.closest('mjx-assistive-mml')) continue;  // MathJax's clipped copy for screen readers
  if (r.right > colRect.right + 1 && !scrolls(el) && reported < 5) {
    reported += 1;
    problems.push(`element wider than the column: <${el.tagName.toLowerCase()} class="${el.className}"> ends at ${Math.round(r.right)} px, the column at ${Math.round(colRect.right)} px`);
  }
}
for (const pre of column.querySelectorAll('div.cell_output pre, div.output pre, div.cell_input pre')) {
  if (pre.offsetParent === null || pre.closest('details:not([open])')) continue;  // folded (hide-input)
  if (pre.scrollWidth > pre.clientWidth + 1) {
    const where = pre.closest('div.cell_input') ? 'code' : 'output';
    problems.push(`${where} line wider than the column (${pre.scrollWidth} px in ${pre.clientWidth} px): "${pre.textContent.trim().split('\n')[0].slice(0, 60)}"`);
  }
}
for (const x of column.querySelectorAll('span.xref, code.xref')) {
  if (!x.closest('a')) problems.push(`unresolved cross-reference: "${x.textContent}"`);
}
return problems;
"""

WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const ready = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)
  ? MathJax.startup.promise.then(() => done(true), () => done(false)) : done(null);
if (document.readyState === 'complete') setTimeout(ready, 50); else window.addEventListener('load', () => setTimeout(ready, 50));
"""


def serve(root: Path):
    """An HTTP server for ``root`` on 127.0.0.1 (a free port), in a thread: (server, base URL)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


def browser():
    """Headless Chromium with every host but 127.0.0.1 unreachable (the offline reader)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='txtheory-chromium-')}",
                 '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    return driver


def available() -> bool:
    """Whether Chromium, ChromeDriver and selenium are installed."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def check_page(driver, url: str, screenshot: Path | None = None) -> list[str]:
    """Every problem a reader would meet on the page at ``url``."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    typeset = driver.execute_async_script(WAIT_FOR_MATHJAX)
    problems = [] if typeset is not False else ["MathJax failed to typeset the page"]
    problems += driver.execute_script(PAGE_CHECKS)
    for entry in driver.get_log("browser"):
        if entry["level"] == "SEVERE":
            problems.append(f"console error: {entry['message'][:200]}")
    if screenshot is not None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WIDTH, min(max(height, HEIGHT), 16000))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        driver.set_window_size(WIDTH, HEIGHT)
    return problems


def broken_links(root: Path, pages: list[Path]) -> list[str]:
    """Internal links (href) whose file or #anchor does not exist in the built site."""
    ids: dict[Path, set[str]] = {}
    problems = []
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for href in re.findall(r'href="([^"]+)"', html):
            parsed = urlparse(href)
            if parsed.scheme or href.startswith(("mailto:", "javascript:", "//")):
                continue
            target = (page.parent / unquote(parsed.path)).resolve() if parsed.path else page.resolve()
            if not target.exists():
                problems.append(f"{page.relative_to(root)}: link to a missing file: {href}")
                continue
            if parsed.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = set(re.findall(r'id="([^"]+)"', target.read_text(encoding="utf-8")))
                if unquote(parsed.fragment) not in ids[target]:
                    problems.append(f"{page.relative_to(root)}: link to a missing anchor: {href}")
    return problems


def check_site(root: Path, pages: list[str], screenshots: Path | None = None) -> dict[str, list[str]]:
    """{page: problems} for the given pages (paths relative to ``root``), in one browser."""
    root = Path(root)
    server, base = serve(root)
    driver = browser()
    try:
        found = {}
        for page in pages:
            shot = None if screenshots is None else screenshots / (page.replace("/", "__").removesuffix(".html") + ".png")
            found[page] = check_page(driver, f"{base}/{page}", shot)
        for problem in broken_links(root, [root / p for p in pages]):
            found[problem.split(":", 1)[0]].append(problem.split(": ", 1)[1])
        return found
    finally:
        driver.quit()
        server.shutdown()


def book_pages(repo: Path) -> list[str]:
    """The HTML pages of the book's table of contents, relative to _build/html."""
    sys.path.insert(0, str(repo / "tests"))
    from check_book_html import pages

    return [f"{p}.html" for p in pages(repo / "_toc.yml")] + ["genindex.html", "prf-prf.html"]


if __name__ == "__main__":
    repo = Path(__file__).resolve().parents[1]
    html = Path(sys.argv[1] if len(sys.argv) > 1 else repo / "_build" / "html")
    shots = html.parent / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)
    result = check_site(html, book_pages(repo), shots)
    print(json.dumps(result, indent=1))
    sys.exit(1 if any(result.values()) else 0)
