"""A character-level text corpus that works offline: by default the standard library's
docstrings and the ``pydoc_data`` topics, which every Python installation has; or a
user's own UTF-8 file.

Explained in ``book/language.md`` ("Language models"), section "A corpus on every laptop".

    c = load_corpus()                       # the standard library's English, deduplicated
    c = load_corpus(path)                   # or a user's UTF-8 text file
    ids = c.encode(c.train)                 # (N,) int64 character ids
    c.report()                              # sizes, vocabulary, split

Three decisions, each because the obvious choice misleads:

* **Parsed, never imported.** Docstrings are read from the source files with ``ast``, so
  no module runs (``antigravity`` would open a browser) and the text does not depend on
  what is installed beside the standard library. It does depend on the Python version;
  ``Corpus.sha256`` tells two corpora apart.
* **Deduplicated by paragraph.** Docstrings are copied from class to class and stock
  sentences recur: exact repeats of a paragraph are dropped, first one kept.
* **Split by interleaved blocks.** The text is cut into contiguous blocks of
  ``block`` characters and every ``valid_every``-th block is held out, so validation is
  spread over every source and shares with training only the paragraphs that a block's
  edge cuts in two. (A tail split puts the last sources, ``pydoc_data``'s topics, in
  validation alone.)
"""
from __future__ import annotations

import ast
import functools
import hashlib
import os
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ._checks import check_int

BLOCK = 2048  # characters per contiguous block of the split
VALID_EVERY = 10  # every 10th block is validation: a 90/10 split
MIN_CHARS = 20 * BLOCK  # a corpus needs enough text for both parts
CORPUS_FORMAT = 1  # bump when the default corpus's construction changes (invalidates the disk cache)
# Parts of the standard library that are not its documentation: tests, demos, vendored tools.
SKIP_DIRS = ("test", "tests", "idle_test", "site-packages", "dist-packages", "turtledemo", "ensurepip",
             "lib2to3", "__pycache__")


@dataclass(frozen=True)
class Corpus:
    """A text split into training and validation parts, with its character vocabulary."""

    name: str  # "stdlib" or the user's file path
    train: str
    valid: str
    vocab: tuple[str, ...]  # sorted characters; a character's id is its index
    sha256: str  # of the deduplicated text, before the split
    raw_chars: int  # characters before deduplication
    paragraphs: int  # unique paragraphs kept

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {ch: i for i, ch in enumerate(self.vocab)}

    @functools.cached_property
    def train_ids(self) -> torch.Tensor:
        """``encode(train)``, computed once: (N,) int64."""
        return self.encode(self.train)

    @functools.cached_property
    def valid_ids(self) -> torch.Tensor:
        """``encode(valid)``, computed once: (N,) int64."""
        return self.encode(self.valid)

    def encode(self, text: str) -> torch.Tensor:
        """text -> (N,) int64 ids; a character outside the vocabulary raises ValueError."""
        index = self._index
        try:
            return torch.tensor([index[ch] for ch in text], dtype=torch.int64)
        except KeyError as err:
            raise ValueError(f"text holds the character {err.args[0]!r}, which is not in this "
                             f"corpus's vocabulary of {self.vocab_size}") from None

    def decode(self, ids) -> str:
        """(N,) ids -> text."""
        ids = torch.as_tensor(ids).reshape(-1).tolist()
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids must lie in 0..{self.vocab_size - 1}, got {bad[0]}")
        return "".join(self.vocab[i] for i in ids)

    def report(self) -> dict:
        """What a reader should know about the corpus: sizes, vocabulary, split."""
        total = len(self.train) + len(self.valid)
        return {"name": self.name, "sha256": self.sha256[:12], "raw_chars": self.raw_chars,
                "unique_chars": total, "paragraphs": self.paragraphs, "vocab_size": self.vocab_size,
                "train_chars": len(self.train), "valid_chars": len(self.valid),
                "valid_fraction": len(self.valid) / total, "python": sys.version.split()[0]}


def ngram_overlap(corpus: Corpus, n: int) -> float:
    """The fraction of the validation text's n-grams (every start position) that occur
    somewhere in the training text: a measure of how much of validation a model could
    have seen verbatim. A leak (a validation block copied into training) drives it to 1.

    The training n-grams are kept as Python string hashes (64 bits), so a validation
    n-gram is miscounted as seen with probability about N_train / 2^64 < 1e-12."""
    if not isinstance(corpus, Corpus):
        raise ValueError(f"corpus must be a Corpus (load_corpus()), got {type(corpus).__name__}")
    n = check_int("n", n, minimum=1)
    if n > min(len(corpus.train), len(corpus.valid)):
        raise ValueError(f"n must be at most the shorter part's length, "
                         f"{min(len(corpus.train), len(corpus.valid))}, got {n}")
    train, valid = corpus.train, corpus.valid
    seen = {hash(train[i:i + n]) for i in range(len(train) - n + 1)}
    hits = sum(hash(valid[i:i + n]) in seen for i in range(len(valid) - n + 1))
    return hits / (len(valid) - n + 1)


def load_corpus(corpus: str | os.PathLike | None = None, *, block: int = BLOCK,
                valid_every: int = VALID_EVERY) -> Corpus:
    """The default corpus (``corpus=None`` or ``"stdlib"``) or a user's UTF-8 text file.

    A missing, empty, too short (under ``MIN_CHARS`` characters once deduplicated) or
    non-UTF-8 file raises ValueError saying which.
    """
    block = check_int("block", block, minimum=16)
    valid_every = check_int("valid_every", valid_every, minimum=2)
    if corpus is None or corpus == "stdlib":
        name, documents = "stdlib", _cached_stdlib_documents()
    else:
        name, documents = str(corpus), [_read_user_file(Path(corpus))]
    raw_chars = sum(len(d) for d in documents)
    paragraphs = unique_paragraphs(documents)
    text = "\n\n".join(paragraphs)
    if len(text) < MIN_CHARS:
        raise ValueError(f"corpus {name!r} is too short: {len(text)} characters once deduplicated, "
                         f"and a split needs at least {MIN_CHARS}")
    train, valid = split_blocks(text, block, valid_every)
    return Corpus(name=name, train=train, valid=valid, vocab=tuple(sorted(set(text))),
                  sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), raw_chars=raw_chars,
                  paragraphs=len(paragraphs))


def unique_paragraphs(documents: list[str]) -> list[str]:
    """The paragraphs (blank-line separated, stripped) of ``documents``, each exact repeat
    dropped, in first-seen order."""
    seen, kept = set(), []
    for doc in documents:
        for para in doc.replace("\r\n", "\n").split("\n\n"):
            para = para.strip()
            if para and para not in seen:
                seen.add(para)
                kept.append(para)
    return kept


def split_blocks(text: str, block: int, valid_every: int) -> tuple[str, str]:
    """(train, valid): contiguous blocks of ``block`` characters, every ``valid_every``-th
    block (the last of each group) to validation. Train's blocks are joined in order, so
    a training window may span two blocks, never a validation one."""
    blocks = [text[i:i + block] for i in range(0, len(text), block)]
    valid = [b for k, b in enumerate(blocks) if k % valid_every == valid_every - 1]
    train = [b for k, b in enumerate(blocks) if k % valid_every != valid_every - 1]
    return "".join(train), "".join(valid)


def stdlib_documents() -> list[str]:
    """Every docstring of the standard library's modules (module, class, function), read
    with ``ast`` from the sources in sorted path order, then every ``pydoc_data`` topic in
    sorted key order. Deterministic for a given Python build."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for path in sorted(root.rglob("*.py")):
        if set(path.relative_to(root).parts[:-1]) & set(SKIP_DIRS):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):  # a few test fixtures are not Python 3
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    docs.append(doc)
    from pydoc_data.topics import topics

    docs.extend(topics[key] for key in sorted(topics))
    return docs


@functools.lru_cache(maxsize=1)
def _cached_stdlib_documents() -> tuple[str, ...]:
    """``stdlib_documents()``, cached in memory and on disk (a few seconds to build)."""
    sep = "\n\x00\n"  # never in a docstring: the documents' separator on disk
    path = _cache_dir() / f"stdlib-py{sys.version.split()[0]}-v{CORPUS_FORMAT}.txt"
    try:
        return tuple(path.read_text(encoding="utf-8").split(sep))
    except OSError:
        pass
    docs = tuple(stdlib_documents())
    if any(sep in d for d in docs):  # cannot be stored with this separator
        return docs
    try:  # atomic write; a read-only home only loses the cache
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as f:
            f.write(sep.join(docs))
        os.replace(f.name, path)
    except OSError:
        pass
    return docs


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "txtheory"


def _read_user_file(path: Path) -> str:
    if not path.exists():
        raise ValueError(f"corpus file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"corpus {str(path)!r} is not a file")
    data = path.read_bytes()
    if not data.strip():
        raise ValueError(f"corpus file {str(path)!r} is empty")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"corpus file {str(path)!r} is not UTF-8 text (byte {err.start}: "
                         f"{data[err.start:err.start + 1]!r})") from None
