"""txtheory.corpus: the default corpus, a user's file, deduplication and the split."""
import pytest

from txtheory import corpus as corpus_mod
from txtheory.corpus import BLOCK, MIN_CHARS, load_corpus, split_blocks, unique_paragraphs


@pytest.fixture(scope="module")
def stdlib():
    return load_corpus()


def test_the_default_corpus_is_deterministic_english_and_split_90_10(stdlib):
    again = load_corpus("stdlib")
    assert again.sha256 == stdlib.sha256 and again.train == stdlib.train
    report = stdlib.report()
    assert report["unique_chars"] > 500_000 and report["raw_chars"] >= report["unique_chars"]
    assert 0.09 < report["valid_fraction"] < 0.11
    assert 50 < stdlib.vocab_size < 400 and "e" in stdlib.vocab
    assert "Return" in stdlib.train and "Return" in stdlib.valid  # both parts read like the sources


def test_validation_shares_no_paragraph_with_training(stdlib):
    # a paragraph wholly inside a validation block never appears in the training text
    # (the validation text is whole blocks end to end; the first and last paragraph of
    # each block may be cut by its edges)
    blocks = [stdlib.valid[k:k + BLOCK] for k in range(0, len(stdlib.valid), BLOCK)]
    inner = [p for b in blocks for p in b.split("\n\n")[1:-1] if len(p) > 200]
    assert inner, "the validation part should hold whole paragraphs"
    assert not any(p in stdlib.train for p in inner[:200])


def test_encode_and_decode_round_trip_and_reject_what_they_cannot_read(stdlib):
    text = stdlib.valid[:500]
    ids = stdlib.encode(text)
    assert ids.dtype.is_floating_point is False and ids.max() < stdlib.vocab_size
    assert stdlib.decode(ids) == text
    with pytest.raises(ValueError, match="vocabulary"):
        stdlib.encode("\x07")
    with pytest.raises(ValueError, match="ids must lie"):
        stdlib.decode([stdlib.vocab_size])


def test_paragraphs_are_deduplicated_in_first_seen_order():
    docs = ["a\n\nb", "b\n\n  c  ", "a"]
    assert unique_paragraphs(docs) == ["a", "b", "c"]


def test_blocks_alternate_between_the_parts():
    train, valid = split_blocks("".join(str(k) * 4 for k in range(10)), block=4, valid_every=5)
    assert valid == "4444" + "9999"
    assert train == "0000111122223333" + "5555666677778888"


def test_a_users_file_is_read_and_split(tmp_path):
    words = " ".join(f"word{k}" for k in range(MIN_CHARS // 4))
    path = tmp_path / "mine.txt"
    path.write_text(words, encoding="utf-8")
    mine = load_corpus(path)
    assert mine.name == str(path) and len(mine.train) + len(mine.valid) == len(words)
    assert set(mine.vocab) == set(words)


@pytest.mark.parametrize("content, match", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"   \n\n ", "is empty"),
    (b"short text", "too short"),
    (b"caf\xe9 " * 20000, "not UTF-8"),
])
def test_bad_files_get_their_own_error(tmp_path, content, match):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_corpus(path)


def test_a_folder_is_not_a_corpus(tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        load_corpus(tmp_path)


def test_bad_split_arguments_are_named():
    with pytest.raises(ValueError, match="valid_every"):
        load_corpus(valid_every=1)
    with pytest.raises(ValueError, match="block"):
        load_corpus(block=0)


def test_the_disk_cache_is_used_and_survives_a_read_only_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    corpus_mod._cached_stdlib_documents.cache_clear()
    try:
        first = corpus_mod._cached_stdlib_documents()
        assert list((tmp_path / "cache" / "txtheory").glob("stdlib-*.txt"))
        corpus_mod._cached_stdlib_documents.cache_clear()
        assert corpus_mod._cached_stdlib_documents() == first  # read back from disk
        assert first == tuple(corpus_mod.stdlib_documents())
    finally:
        corpus_mod._cached_stdlib_documents.cache_clear()


def _corpus(train: str, valid: str) -> corpus_mod.Corpus:
    text = train + valid
    return corpus_mod.Corpus(name="t", train=train, valid=valid, vocab=tuple(sorted(set(text))), sha256="0" * 64,
                             raw_chars=len(text), paragraphs=1)


def test_the_ngram_overlap_sees_a_planted_leak_and_counts_every_position():
    train = "the quick brown fox jumps over the lazy dog " * 3
    assert corpus_mod.ngram_overlap(_corpus(train, train[5:40]), 8) == 1.0  # validation copied from training
    assert corpus_mod.ngram_overlap(_corpus("aaaaaaaa", "bbbbbbbb"), 2) == 0.0
    # "abcX": of its 3 bigrams, "ab" and "bc" are in "abcd", "cX" is not
    assert corpus_mod.ngram_overlap(_corpus("abcd", "abcX"), 2) == pytest.approx(2 / 3)


def test_the_stdlib_split_shares_few_long_ngrams(stdlib):
    # a copied validation block would put this near 1; English alone keeps it low
    assert corpus_mod.ngram_overlap(stdlib, 64) < 0.05


@pytest.mark.parametrize("n, match", [(0, "n must be"), (10**9, "n must be at most"), (2.5, "n must be")])
def test_bad_ngram_arguments_are_named(n, match):
    with pytest.raises(ValueError, match=match):
        corpus_mod.ngram_overlap(_corpus("abcd", "abcX"), n)
    with pytest.raises(ValueError, match="corpus must be"):
        corpus_mod.ngram_overlap("abcd", 2)
