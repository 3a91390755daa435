"""One native model class, ``tokforge._core.TokenModel``, for BPE and LiB: the same methods give
the same guarantees for both families, and family-specific members say clearly what they are."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tokforge import InputError, Tokenizer, VocabError, _core, lib_model
from tokforge.lib_model import LibConfig
from tokforge.report import compression_report

SPECIALS = ["<|endoftext|>", "<|pad|>"]


@pytest.fixture(scope="module")
def bpe(corpus_docs) -> Tokenizer:
    return Tokenizer.train(
        texts=[corpus_docs["en"], corpus_docs["de"]],
        vocab_size=600,
        pattern="gpt2",
        special_tokens=SPECIALS,
    )


@pytest.fixture(scope="module")
def lib(corpus_docs) -> Tokenizer:
    return Tokenizer.train(
        texts=[corpus_docs["en"], corpus_docs["de"]],
        vocab_size=None,
        algorithm="lib",
        special_tokens=SPECIALS,
        lib=LibConfig(steps=100, article_len=20),
    )


@pytest.fixture(params=["bpe", "lib"])
def tok(request, bpe, lib) -> Tokenizer:
    return {"bpe": bpe, "lib": lib}[request.param]


def test_one_native_class_for_both_families(bpe, lib):
    assert type(bpe.model) is type(lib.model) is _core.TokenModel
    assert (bpe.kind, lib.kind) == ("bpe", "lib")
    assert (bpe.model.kind, lib.model.kind) == ("bpe", "lib")
    assert repr(lib).startswith("Tokenizer(kind='lib'")
    assert repr(bpe.model) == "TokenModel(kind='bpe', vocab_size=600, pattern='gpt2')"


text_strategy = st.text(alphabet=st.sampled_from("the cat\n ünï🙂<|endoftext|>,."), max_size=80)


@given(texts=st.lists(text_strategy, max_size=6))
def test_batch_numpy_spans_and_decode_agree_with_encode(bpe, lib, texts):
    for tok in (bpe, lib):
        m = tok.model
        allowed = [tok.special_tokens["<|endoftext|>"]]
        single = [m.encode(t, allowed) for t in texts]
        assert m.encode_batch(texts, allowed, 1) == single
        assert m.encode_batch(texts, allowed, 2) == single
        flat, off = m.encode_batch_numpy(texts, allowed, 2)
        assert flat.dtype == np.uint32 and off.dtype == np.int64
        assert [flat[off[i] : off[i + 1]].tolist() for i in range(len(texts))] == single
        for t, ids in zip(texts, single):
            assert m.decode_bytes(ids) == t.encode()
            ids2, spans = m.encode_with_spans(t, allowed)
            assert ids2 == ids
            data = t.encode()
            assert [data[s:e] for s, e in spans] == [m.token_bytes(i) for i in ids]
            assert m.encode(t, []) == m.encode_ordinary(t)


def test_vocabulary_members_agree(tok):
    m = tok.model
    assert [tok.id_to_token(i) for i in range(3)] == [m.token_bytes(i) for i in range(3)]
    eot = m.token_id("<|endoftext|>")
    assert m.is_special(eot) and ("<|endoftext|>", eot) in m.special_tokens
    assert not m.is_special(m.token_id(b"a"))
    assert m.token_bytes(m.token_id(b"a")) == b"a"
    with pytest.raises(VocabError):
        m.token_bytes(m.vocab_size)
    with pytest.raises(VocabError):
        m.decode_bytes([-1])
    with pytest.raises(InputError):
        m.token_id(3)


def test_stream_cut_prefix_encodes_alone(tok, corpus_docs):
    text = corpus_docs["fr"][:3000]
    cut = tok.model.stream_cut(text)
    assert 0 < cut < len(text)
    assert tok.encode_ordinary(text[:cut]) + tok.encode_ordinary(text[cut:]) == (
        tok.encode_ordinary(text)
    )


def test_json_round_trip_keeps_the_family_and_the_ids(tok, corpus_docs):
    again = _core.TokenModel.from_json_str(tok.model.to_json())
    assert again.kind == tok.kind
    text = corpus_docs["en"][:2000]
    assert again.encode_ordinary(text) == tok.encode_ordinary(text)


def test_family_members_are_none_or_raise_a_clear_error(bpe, lib, tmp_path):
    b, m = bpe.model, lib.model
    assert b.merges is not None and m.merges is None
    assert b.priority == "merges" and m.priority is None
    assert b.ignore_merges is not None and m.ignore_merges is None
    assert b.units is None and m.units is not None
    assert b.segmenter is None and m.segmenter == "lib"
    assert b.training is None and json.loads(m.training)["steps"] == 100
    assert b.pretokenize == "gpt2" and m.pretokenize is None
    assert (b.pattern_name, m.pattern_name) == ("gpt2", "lib")
    with pytest.raises(InputError, match="only for LiB"):
        b.with_segmenter("greedy")
    assert m.with_segmenter("greedy").segmenter == "greedy"
    with pytest.raises(InputError, match="only for BPE"):
        m.to_tiktoken()
    for bpe_only in (lambda: lib.merges, lambda: lib.save_tiktoken(tmp_path / "x.tiktoken")):
        with pytest.raises(InputError, match="only for BPE tokenizers, and this is a 'lib'"):
            bpe_only()
    assert not (tmp_path / "x.tiktoken").exists()


def test_bpe_only_native_functions_name_the_problem(lib):
    with pytest.raises(InputError, match="only for BPE"):
        _core.retokenize(lib.model, [b"ab"])


def test_tokenizer_takes_only_a_native_model():
    with pytest.raises(InputError, match="TokenModel"):
        Tokenizer("not a model")  # type: ignore[arg-type]


def test_multiword_uses_unicode_white_space_not_str_isspace():
    # U+001C..U+001F: str.isspace() says whitespace, Unicode White_Space (Rust) says not
    for c in "\x1c\x1d\x1e\x1f":
        assert c.isspace()
        assert not lib_model.is_multiword(f"a{c}b")
    assert lib_model.is_multiword("a\u00a0b") and lib_model.is_multiword("of the")
    assert not lib_model.is_multiword(" the ")
    model = _core.TokenModel.from_units(["a\x1fb", "of the", "the", "a b c"])
    assert lib_model.multiword_share(model) == 0.5


def test_multiword_share_needs_a_lib_model(bpe, lib):
    assert 0 < lib_model.multiword_share(lib.model) < 1
    with pytest.raises(InputError, match="LiB"):
        lib_model.multiword_share(bpe.model)


def test_compression_report_counts_files_and_texts_alike(tok, corpora_dir, corpus_docs):
    path = corpora_dir / "en.txt"
    lines = corpus_docs["de"].splitlines()[:40]
    by_file, by_texts = compression_report(tok, {"en": path, "de": lines})
    ids = tok.encode_ordinary(corpus_docs["en"])
    assert (by_file.name, by_file.tokens, by_file.types) == ("en", len(ids), len(set(ids)))
    assert by_file.bytes == len(corpus_docs["en"].encode())
    rows = [tok.encode_ordinary(t) for t in lines]
    assert by_texts.tokens == sum(map(len, rows))
    assert by_texts.types == len({i for r in rows for i in r})
    assert by_texts.tokens_per_byte == by_texts.tokens / sum(len(t.encode()) for t in lines)
    with pytest.raises(InputError, match=r"pathlib\.Path"):
        compression_report(tok, {"x": str(path)})
