"""Encoding: ids identical to tiktoken and to HF tokenizers on real vocabularies."""

from __future__ import annotations

import os
import re
import signal
import time
import warnings
from unittest import mock

import numpy as np
import pytest
import tiktoken
import tokforge
from hypothesis import given
from hypothesis import strategies as st
from tiktoken.load import load_tiktoken_bpe
from tiktoken_ext import openai_public
from tokenizers import Tokenizer as HFTokenizer
from tokforge import Tokenizer

#: tiktoken's own definition of each rank file (``tiktoken_ext.openai_public``); gpt2.tiktoken
#: is r50k_base's rank file (same sha256)
OPENAI_DEFINITION = {"gpt2": openai_public.r50k_base, "cl100k_base": openai_public.cl100k_base}


def tiktoken_encoding(path) -> tiktoken.Encoding:
    """The peer as tiktoken defines it (name, pattern, special tokens), ranks read from ``path``
    instead of downloaded."""
    ranks = load_tiktoken_bpe(str(path))
    with mock.patch.object(openai_public, "load_tiktoken_bpe", lambda *a, **k: ranks):
        definition = OPENAI_DEFINITION[path.name.split(".")[0]]()
    return tiktoken.Encoding(**definition)


@pytest.fixture(scope="session", params=["gpt2", "cl100k"])
def pair(request, gpt2_file, cl100k_file):
    path = gpt2_file if request.param == "gpt2" else cl100k_file
    return Tokenizer.from_file(path), tiktoken_encoding(path)


def test_openai_rank_files_load_with_tiktokens_pattern_and_special_tokens(pair):
    ours, theirs = pair
    assert ours.special_tokens == theirs._special_tokens
    assert ours.pattern == theirs._pat_str


def _per_text(flat, offsets):
    """The id lists of a flat batch (``encode_batch_numpy``'s ids and offsets)."""
    return [flat[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]


@pytest.fixture(scope="session")
def gpt2(gpt2_file):
    return Tokenizer.from_file(gpt2_file)


@pytest.fixture(scope="session")
def hf_of(pair):
    ours, _ = pair
    return HFTokenizer.from_str(ours.to_json())


def test_ids_equal_tiktoken_on_every_corpus_file(pair, corpus_docs):
    ours, theirs = pair
    for name, text in corpus_docs.items():
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text), name
        assert ours.encode(text, disallowed_special=()) == theirs.encode(
            text, disallowed_special=()
        ), name


def test_exported_tokenizer_json_gives_tiktoken_ids_in_hf(pair, hf_of, corpus_docs):
    _, theirs = pair
    for name, text in corpus_docs.items():
        assert hf_of.encode(text, add_special_tokens=False).ids == theirs.encode(
            text, allowed_special="all"
        ), name


def test_tokenizer_json_round_trip_keeps_ids(pair, corpus_docs, tmp_path):
    ours, _ = pair
    back = Tokenizer.from_file(ours.save(tmp_path / "t.json"))
    text = corpus_docs["code-python"] + corpus_docs["ja"]
    assert back.encode_ordinary(text) == ours.encode_ordinary(text)
    assert back.vocab_size == ours.vocab_size and back.special_tokens == ours.special_tokens


def test_tiktoken_export_round_trips(pair, tmp_path, corpus_docs):
    ours, theirs = pair
    p = ours.save_tiktoken(tmp_path / "x.tiktoken")
    assert load_tiktoken_bpe(str(p)) == theirs._mergeable_ranks
    back = Tokenizer.from_tiktoken(p, pattern=ours.pattern, special_tokens=ours.special_tokens)
    assert back.encode_ordinary(corpus_docs["de"]) == ours.encode_ordinary(corpus_docs["de"])


hard_text = st.text(
    st.one_of(
        st.characters(exclude_categories=("Cs",)),
        st.sampled_from(
            list(" \t\n\r\x0b\x0c\u00a0\u3000'sSdDtTlLvVeE0123456789\u0301\U0001f600\u200d")
        ),
    ),
    max_size=300,
)


@given(text=hard_text)
def test_ids_equal_tiktoken_on_any_text(pair, text):
    ours, theirs = pair
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


@given(text=hard_text)
def test_ids_equal_hf_on_any_text(pair, hf_of, text):
    ours, _ = pair
    assert hf_of.encode(text, add_special_tokens=False).ids == ours.encode(
        text, allowed_special="all"
    )


@given(text=st.text(max_size=300))
def test_decode_bytes_inverts_encode(pair, text):
    ours, _ = pair
    want = (
        text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        else text
    )
    # lone surrogates become U+FFFD, like tiktoken
    assert ours.decode_bytes(ours.encode_ordinary(text)) == _fix(text).encode("utf-8")
    assert ours.decode(ours.encode_ordinary(text)) == _fix(want)


def _fix(text):
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def test_spec_vectors_tv5(gpt2, cl100k_file):
    """TV5 of docs/bpe.md §6: ids of the real gpt2 and cl100k files."""
    cl = Tokenizer.from_file(cl100k_file)
    assert gpt2.encode("hello world") == [31373, 995]
    assert cl.encode("hello world") == [15339, 1917]
    assert gpt2.encode(" lower newest") == [2793, 15530]
    assert cl.encode("I'm 12345 tokens!\n\n  x") == [
        40,
        2846,
        220,
        4513,
        1774,
        11460,
        2268,
        220,
        865,
    ]


def test_preset_patterns_are_tiktokens_pattern_strings(monkeypatch):
    from tiktoken_ext import openai_public

    # the constructors download their rank files; only their pattern strings are needed here
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})
    for preset, ctor in [("gpt2", "r50k_base"), ("cl100k", "cl100k_base"), ("o200k", "o200k_base")]:
        assert tokforge.preset_pattern(preset) == getattr(openai_public, ctor)()["pat_str"]


def test_special_tokens_follow_tiktoken_rules(gpt2):
    assert gpt2.encode("<|endoftext|>hi", allowed_special="all") == [50256, 5303]
    assert gpt2.encode("<|endoftext|>hi", allowed_special={"<|endoftext|>"}) == [50256, 5303]
    ordinary = [27, 91, 437, 1659, 5239, 91, 29, 5303]
    assert gpt2.encode_ordinary("<|endoftext|>hi") == ordinary
    assert gpt2.encode("<|endoftext|>hi", disallowed_special=()) == ordinary
    with pytest.raises(tokforge.InputError, match="endoftext"):
        gpt2.encode("x <|endoftext|>hi")
    with pytest.raises(ValueError):  # tiktoken raises ValueError too
        gpt2.encode_batch(["fine", "<|endoftext|>"])
    assert gpt2.eot_token == 50256 and gpt2.n_vocab == 50257


def test_pathological_inputs_match_tiktoken(pair):
    ours, theirs = pair
    for text in ["a" * 100_000, " " * 50_000 + "x", "1" * 30_000, "^" * 100_000, "\n" * 20_000]:
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


def test_batch_and_numpy_equal_single_calls(pair, corpus_docs):
    ours, theirs = pair
    texts = list(corpus_docs.values())
    want = [theirs.encode_ordinary(t) for t in texts]
    assert ours.encode_batch(texts, disallowed_special=()) == want
    assert ours.encode_batch(texts, disallowed_special=(), num_threads=1) == want
    flat, offsets = ours.encode_batch_numpy(texts, disallowed_special=(), num_threads=2)
    assert flat.dtype == np.uint32 and offsets.dtype == np.int64
    assert len(offsets) == len(texts) + 1
    for i, w in enumerate(want):
        assert flat[offsets[i] : offsets[i + 1]].tolist() == w


def test_freed_batch_arrays_are_reused_without_touching_live_ones(gpt2, corpus_docs):
    """A freed flat array's memory is kept for the next batch of about its size, only once no
    array or view uses it; arrays alive meanwhile keep their ids; release frees the memory."""
    tokforge.release_batch_output()
    small = list(corpus_docs.values())[:3]
    big = [small[0]] * 40  # a few MiB of ids: kept (small arrays are left to the heap)
    want = gpt2.encode_batch_numpy(big, disallowed_special=())[0].copy()
    assert want.nbytes > 1 << 20
    a, _ = gpt2.encode_batch_numpy(big, disallowed_special=())
    address = a.__array_interface__["data"][0]
    view = a[7:]
    del a
    assert tokforge.batch_output_info()["buffers"] == 0  # the view still holds the memory
    b, _ = gpt2.encode_batch_numpy(big, disallowed_special=())
    assert b.__array_interface__["data"][0] != address
    del view
    info = tokforge.batch_output_info()
    assert info["buffers"] == 1 and info["bytes"] >= want.nbytes
    c, _ = gpt2.encode_batch_numpy(big, disallowed_special=())  # reuses a's memory
    assert c.__array_interface__["data"][0] == address
    assert np.array_equal(b, want) and np.array_equal(c, want)
    c[:] = 0  # the caller's array to write; the next batch starts from its own ids
    del c
    d, _ = gpt2.encode_batch_numpy(big[:36], disallowed_special=())  # 90 %: fits a's memory
    assert d.__array_interface__["data"][0] == address
    assert np.array_equal(d, want[: len(d)]) and np.array_equal(b, want)
    flat, _ = gpt2.encode_batch_numpy(small, disallowed_special=())  # far smaller: new
    assert flat.__array_interface__["data"][0] != address
    del b, d
    assert tokforge.batch_output_info()["buffers"] == 2
    info = tokforge.batch_output_info()
    freed = tokforge.release_batch_output()
    assert freed == info["bytes"] >= 2 * want.nbytes
    assert tokforge.batch_output_info() == {"buffers": 0, "bytes": 0, "limit": 256 << 20}


@pytest.mark.parametrize("threads", [1, 2])
def test_an_empty_batch_gives_no_ids(gpt2, threads):
    flat, offsets = gpt2.encode_batch_numpy([], num_threads=threads)
    assert flat.dtype == np.uint32 and len(flat) == 0 and offsets.tolist() == [0]
    assert gpt2.encode_batch([], num_threads=threads) == []
    flat, offsets = gpt2.encode_batch_numpy(["", ""], num_threads=threads)
    assert len(flat) == 0 and offsets.tolist() == [0, 0, 0]


def test_batches_of_odd_texts_equal_single_calls(pair):
    """Both batch forms read each str's own UTF-8 buffer: empty texts, specials, lone
    surrogates (the UTF-8 step fails, the texts are fixed and retried), str subclasses, a text
    longer than the rest and texts of over 1 MiB (which the calling thread, encoding short texts
    of the list batch itself, leaves to the pool) give the ids of single calls, on any thread
    count."""
    ours, _ = pair

    class S(str):
        pass

    texts = ["", "a<|endoftext|>b", "x" * 20_000, S("sub class é"), "\ud83d lone", "", "ok"]
    texts += [f"doc {i} " * (i % 7) for i in range(200)]
    texts[3:3] = ["long é text " * 100_000, "and another " * 100_000]
    texts.append("a last long one " * 70_000)
    for allowed in [frozenset(), "all"]:
        want = [ours.encode(t, allowed_special=allowed, disallowed_special=()) for t in texts]
        for threads in [1, 2, 3]:
            kw = {"allowed_special": allowed, "disallowed_special": (), "num_threads": threads}
            assert ours.encode_batch(texts, **kw) == want
            flat, offsets = ours.encode_batch_numpy(texts, **kw)
            assert offsets[0] == 0 and offsets[-1] == len(flat) == sum(map(len, want))
            got = _per_text(flat, offsets)
            assert got == want


def test_a_batch_of_new_strs_equals_tiktoken(pair, corpus_docs):
    """The strs of a batch are made UTF-8 one after another by the calling thread while the
    other threads already encode those made: new strs (their UTF-8 form not made yet, as when
    a dataset is read batch by batch) of every corpus file, with short and long ones mixed,
    give tiktoken's ids in both batch forms on any thread count; a lone surrogate half-way
    through (the UTF-8 step fails while the others encode) is fixed and the batch retried."""
    ours, theirs = pair
    lines = [ln for text in corpus_docs.values() for ln in text.splitlines(keepends=True)]
    docs = ["".join(lines[i : i + 1 + i % 40]) for i in range(0, len(lines), 25)]
    assert sum(not d.isascii() for d in docs) > len(docs) // 20
    want = theirs.encode_ordinary_batch(docs, num_threads=1)

    def fresh(texts):  # equal strs, none with a UTF-8 form made yet
        return [t.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass") for t in texts]

    for threads in [1, 2, 3]:
        assert ours.encode_batch(fresh(docs), disallowed_special=(), num_threads=threads) == want
        flat, offsets = ours.encode_batch_numpy(
            fresh(docs), disallowed_special=(), num_threads=threads
        )
        assert np.array_equal(flat, np.concatenate([np.array(w, np.uint32) for w in want]))
        assert offsets.tolist() == np.cumsum([0] + [len(w) for w in want]).tolist()
    bad = docs[:]
    bad[len(bad) // 2] += "\ud83d lone"
    fixed = theirs.encode_ordinary(bad[len(bad) // 2])  # tiktoken fixes it too
    got = ours.encode_batch(fresh(bad), disallowed_special=(), num_threads=2)
    assert got[len(bad) // 2] == fixed and got[:3] == want[:3]
    flat, offsets = ours.encode_batch_numpy(fresh(bad), disallowed_special=(), num_threads=2)
    k = len(bad) // 2
    assert flat[offsets[k] : offsets[k + 1]].tolist() == fixed


@pytest.mark.parametrize("form", ["numpy", "lists"])
def test_a_loop_of_batches_of_new_strs_equals_tiktoken(pair, corpus_docs, form):
    """A dataset read batch by batch: a call's new pieces are stored into the shared table
    after it returns, and the next call waits for that, while its strs (fresh, their UTF-8
    form not made yet) are made UTF-8 by the calling thread. Calls right after a fresh model's
    first batch (whose tables are always merged after it returns): many short strs, with a
    lone surrogate among them (the batch stops, the strs are fixed and it is retried), then
    longer ones with another in a later call, give tiktoken's ids."""
    ours, theirs = pair  # a fresh model
    lines = [ln for text in corpus_docs.values() for ln in text.splitlines(keepends=True)]
    docs = ["".join(lines[i : i + 1 + i % 30]) for i in range(0, len(lines), 7)]
    # a lone surrogate in one of the later calls' documents (odd), and one early among the
    # short strs of the second call (odd lines)
    docs[len(docs) // 3 | 1] += "\ud83d lone"
    lines[len(lines) // 8 | 1] += "\ud83d lone"

    def fresh(texts):  # equal strs, none with a UTF-8 form made yet
        return [t.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass") for t in texts]

    def ids(out):
        return out if isinstance(out, list) else _per_text(*out)

    later = docs[1::2]
    calls = [docs[0::2], lines[1::2]] + [later[k : k + 50] for k in range(0, len(later), 50)]
    want = [theirs.encode_ordinary_batch(texts) for texts in calls]
    # one call right after another, as a loop over a dataset makes them
    strs = [fresh(texts) for texts in calls]
    encode = ours.encode_batch if form == "lists" else ours.encode_batch_numpy
    got = [encode(texts, disallowed_special=(), num_threads=2) for texts in strs]
    for k in range(len(calls)):
        assert ids(got[k]) == want[k], k


def test_disallowed_special_text_raises_in_every_encode_form(pair):
    """tiktoken's rule: the text of a special token that is not allowed raises, unless it is
    left out of ``disallowed_special``. The encoder checks each text as it encodes it (a batch
    on its own threads): the error names the token, the text's index in a batch and the
    character where it starts; tiktoken raises on the same inputs, and the ids are tiktoken's
    wherever neither raises."""
    ours, theirs = pair
    eot = "<|endoftext|>"
    # another special, where the vocabulary has one (gpt2 has only eot: an empty set then)
    other = {t for t in ours.special_tokens if t != eot}
    texts = [f"doc {i} é ü " * (i % 13) for i in range(120)]
    bad = texts[:]
    bad[77] = "héllo wörld " * 50 + eot + " tail"
    at = bad[77].index(eot)
    single = [
        lambda t, **kw: ours.encode(t, **kw),
        lambda t, **kw: ours.encode_numpy(t, **kw),
        lambda t, **kw: ours.encode_with_offsets(t, **kw),
    ]
    for f in single:
        with pytest.raises(tokforge.InputError, match=rf"'{re.escape(eot)}' \(character {at}\)"):
            f(bad[77])
        with pytest.raises(tokforge.InputError, match="disallowed"):
            f(bad[77], disallowed_special={eot})
        f(bad[77], disallowed_special=other)  # not refused: plain text
    with pytest.raises(ValueError):
        theirs.encode(bad[77])
    for threads in [1, 2, 3]:
        for f in [ours.encode_batch, ours.encode_batch_numpy]:
            with pytest.raises(
                tokforge.InputError, match=rf"'{re.escape(eot)}' \(text 77, character {at}\)"
            ):
                f(bad, num_threads=threads)
            with pytest.raises(tokforge.InputError, match="text 77"):
                f(bad, allowed_special=other, num_threads=threads)
        want = theirs.encode_batch(bad, allowed_special="all")
        assert ours.encode_batch(bad, allowed_special="all", num_threads=threads) == want
        assert ours.encode_batch(bad, disallowed_special=other, num_threads=threads) == [
            theirs.encode(t, disallowed_special=other) for t in bad
        ]
        flat, _ = ours.encode_batch_numpy(texts, num_threads=threads)
        assert flat.tolist() == [i for ids in theirs.encode_batch(texts) for i in ids]


def test_id_lists_hold_one_reference_per_item(gpt2):
    """Lists of ids are written straight into the list's item array with the shared ints'
    counts bumped in place: each list holds exactly one reference per item, given back when
    the list goes (no leak, no early free), for small (shared by CPython) and larger ids."""
    import gc
    import sys

    text = "the the the cat sat on the mat, the end " * 20
    ids = gpt2.encode_ordinary(text)
    small = next(i for i in ids if i <= 256)
    large = max(ids)
    assert large > 256
    obj = gpt2.encode_ordinary("x the")[-1]  # the shared int of " the"
    gc.collect()
    before = sys.getrefcount(obj)
    lists = [gpt2.encode_ordinary(text) for _ in range(50)]
    lists += gpt2.encode_batch([text] * 50, num_threads=2)
    per_list = ids.count(obj)
    assert per_list > 0 and all(lst == ids for lst in lists)
    assert sys.getrefcount(obj) == before + 100 * per_list
    del lists
    gc.collect()
    assert sys.getrefcount(obj) == before
    assert gpt2.encode_ordinary(text) == ids and small in ids and large in ids


def test_id_lists_are_left_out_of_the_cycle_collector(gpt2):
    """A list of ints cannot be in a reference cycle, so the lists of ids are untracked: a
    collection does not walk every id of every list the caller keeps. The batch's outer list
    holds lists and stays tracked; an untracked list still behaves as a list."""
    import gc

    text = "the cat sat on the mat " * 30
    one = gpt2.encode_ordinary(text)
    also = gpt2.encode(text, allowed_special="all")
    batch = gpt2.encode_batch([text, "", "x"], num_threads=2)
    assert not gc.is_tracked(one) and not gc.is_tracked(also)
    assert gc.is_tracked(batch) and not any(gc.is_tracked(ids) for ids in batch)
    assert not any(o is one for o in gc.get_objects())
    assert gc.is_tracked([1, 2, 3][:])  # the check itself tells a tracked list
    copy = list(one)
    one.append(5)
    one.sort()
    gc.collect()
    assert sorted(copy + [5]) == one and also == copy and batch[0] == copy


def test_offsets_cover_the_text(gpt2):
    text = "héllo 世界 <|endoftext|> ok"
    ids, spans = gpt2.encode_with_offsets(text, allowed_special="all")
    data = text.encode()
    assert b"".join(data[s:e] for s, e in spans) == data
    assert [gpt2.id_to_token(i) for i in ids] == [data[s:e] for s, e in spans]
    ids2, cspans = gpt2.encode_with_offsets(text, unit="chars", allowed_special="all")
    assert ids2 == ids
    k = ids.index(50256)
    assert text[cspans[k][0] : cspans[k][1]] == "<|endoftext|>"
    assert cspans[-1][1] == len(text)


def test_partial_utf8_tokens_decode_with_chosen_errors(gpt2):
    ids = gpt2.encode("世")
    assert len(ids) > 1
    with pytest.raises(UnicodeDecodeError):
        gpt2.decode(ids[:1], errors="strict")
    assert gpt2.decode(ids[:1]) == "\ufffd"
    assert gpt2.decode(ids[:1], errors="ignore") == ""


def test_vocabulary_accessors(gpt2):
    assert gpt2.token_to_id(b"hello") == 31373
    assert gpt2.token_to_id("<|endoftext|>") == 50256
    assert gpt2.id_to_token(31373) == b"hello"
    assert gpt2.special_tokens == {"<|endoftext|>": 50256}
    assert gpt2.vocab_size == 50257
    assert len(gpt2.merges) > 50000


def test_tiktoken_file_without_known_name_needs_a_pattern(gpt2_file, tmp_path):
    p = tmp_path / "mine.tiktoken"
    p.write_bytes(gpt2_file.read_bytes())
    with pytest.raises(tokforge.InputError, match="pattern"):
        Tokenizer.from_file(p)
    tok = Tokenizer.from_file(p, pattern="gpt2", special_tokens={"<|endoftext|>": 50256})
    assert tok.encode("hello world") == [31373, 995]


@given(cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_encode_stream_equals_whole_text(pair, corpus_docs, cuts):
    ours, _ = pair
    text = (
        corpus_docs["code-go"][:2000]
        + corpus_docs["th"][:1000]
        + "\n\n  x  \n"
        + corpus_docs["fr"][:1000]
    )
    bounds = sorted({0, len(text), *[c % (len(text) + 1) for c in cuts]})
    chunks = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    got = [i for ids in ours.encode_stream(chunks, min_chunk=64) for i in ids]
    assert got == ours.encode_ordinary(text)


@pytest.fixture(scope="session")
def tekken(tekken_file):
    """tokforge's tekken loader and the tiktoken encoding mistral-common builds from the file."""
    import base64
    import json

    doc = json.loads(tekken_file.read_text(encoding="utf-8"))
    cfg = doc["config"]
    n_special = cfg["default_num_special_tokens"]
    n_regular = cfg["default_vocab_size"] - n_special
    ranks = {base64.b64decode(t["token_bytes"]): t["rank"] for t in doc["vocab"][:n_regular]}
    enc = tiktoken.Encoding(
        name="tekken", pat_str=cfg["pattern"], mergeable_ranks=ranks, special_tokens={}
    )
    return Tokenizer.from_file(tekken_file), enc, n_special


def test_tekken_ids_equal_mistral_numbering(tekken, corpus_docs):
    ours, enc, n_special = tekken
    assert ours.vocab_size == 131072 and ours.special_tokens["</s>"] == 2
    for name, text in corpus_docs.items():
        assert ours.encode_ordinary(text) == [i + n_special for i in enc.encode_ordinary(text)], (
            name
        )


@given(text=hard_text)
def test_tekken_ids_on_any_text(tekken, text):
    ours, enc, n_special = tekken
    assert ours.encode_ordinary(text) == [i + n_special for i in enc.encode_ordinary(text)]


# ---- encode_stream: chunked encoding equals encoding the whole text -------------------------
#: custom pre-tokenizers with look-aheads, look-behinds, alternations, anchors and pieces that
#: span anything; the preset regexes passed as text (recognised as the presets); and one close
#: to a preset but not equal to it (so it runs as a custom regex)
STREAM_PATTERNS = [
    r"\s+(?!\S)|\S+",
    r"\s+(?!\S)|\s+|\w+|[^\w\s]+",
    r".+",
    r"[\s\S]+",
    r"a|ab|abc|\w+| ?[^\s\w]+|\s",
    r"(?<=\s)\w+|\w+|\s+",
    r"\b\w\w|\B\w|\s+$|\s+|.",
    r"^\w+|\w+$|\w+|\W",
    r"(?i:the)\s+\w+|\d{1,2}|\p{L}+|\s*\n|\s+(?!\S)|\s+",
    tokforge.preset_pattern("gpt2"),
    tokforge.preset_pattern("cl100k"),
    tokforge.preset_pattern("o200k"),
    tokforge.preset_pattern("gpt2").replace(r"\s++$|", ""),
    "gpt2",
    "cl100k",
    "o200k",
]

_STREAM_TOKS: dict[str, Tokenizer] = {}


def stream_tokenizer(pattern: str) -> Tokenizer:
    """A small BPE trained with ``pattern`` (merges across spaces when the pattern allows them,
    so a wrong cut changes ids, not only pieces)."""
    if pattern not in _STREAM_TOKS:
        texts = ["the cat  sat\non the mat,  the dog\n\n ate 12 345 bones.\t " * 4,
                 "abc ab a abcabc  ab\n c " * 6]
        _STREAM_TOKS[pattern] = Tokenizer.train(
            texts=texts, vocab_size=330, pattern=pattern, special_tokens=["<|eot|>"]
        )
    return _STREAM_TOKS[pattern]


stream_text = st.lists(
    st.one_of(
        st.sampled_from(
            ["the", "cat", " ", "  ", "\n", "\n\n", "\t", "ab", "abc", "a", "c", "12", "345",
             ",", ".", " x", "é", "名前", "\r\n", "/", "'s", "The", "<|eot|>", "<|eo"]
        ),
        st.text(st.sampled_from(list("ab c\n\t1.é'")), max_size=6),
    ),
    max_size=60,
).map("".join)


def _chunks(text: str, cuts: list[int]) -> list[str]:
    bounds = sorted({0, len(text), *[c % (len(text) + 1) for c in cuts]})
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("pattern", STREAM_PATTERNS)
@given(
    text=stream_text,
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    min_chunk=st.integers(1, 24),
)
def test_encode_stream_equals_encode_for_custom_patterns_and_presets(
    pattern, text, cuts, min_chunk
):
    tok = stream_tokenizer(pattern)
    chunks = _chunks(text, cuts)
    got = [i for ids in tok.encode_stream(chunks, min_chunk=min_chunk) for i in ids]
    assert got == tok.encode(text, disallowed_special=())
    got = [
        i
        for ids in tok.encode_stream(chunks, allowed_special="all", min_chunk=min_chunk)
        for i in ids
    ]
    assert got == tok.encode(text, allowed_special="all")


@pytest.mark.parametrize("pattern", STREAM_PATTERNS)
def test_encode_stream_of_corpus_lines_equals_encode(pattern, corpus_docs):
    tok = stream_tokenizer(pattern)
    text = corpus_docs["en"][:3000] + corpus_docs["code-python"][:3000] + corpus_docs["ja"][:1000]
    lines = text.splitlines(keepends=True)
    got = [i for ids in tok.encode_stream(lines, min_chunk=32) for i in ids]
    assert got == tok.encode_ordinary(text)


_STREAM_LIB: dict[str | None, Tokenizer] = {}


@pytest.mark.parametrize("pretokenize", [None, "gpt2", r".+", r"\s+(?!\S)|\S+"])
@given(
    text=stream_text,
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    min_chunk=st.integers(1, 24),
)
def test_encode_stream_equals_encode_for_lib_tokenizers(pretokenize, text, cuts, min_chunk):
    from tokforge.lib_model import LibConfig

    if pretokenize not in _STREAM_LIB:
        _STREAM_LIB[pretokenize] = Tokenizer.train(
            texts=["the cat  sat\non the mat,  the dog\n ate 12 345 bones.\t "] * 8,
            vocab_size=None,
            algorithm="lib",
            lib=LibConfig(steps=30, article_len=4, pretokenize=pretokenize),
            special_tokens=["<|eot|>"],
        )
    tok = _STREAM_LIB[pretokenize]
    chunks = _chunks(text, cuts)
    got = [i for ids in tok.encode_stream(chunks, min_chunk=min_chunk) for i in ids]
    assert got == tok.encode(text, disallowed_special=())


_SPACED_SPECIALS = ["<|end of text|>", "a b", "the cat", "\n\n"]
_SPACED_TOKS: dict[str, Tokenizer] = {}


@pytest.mark.parametrize("pattern", ["gpt2", "cl100k", "o200k"])
@given(
    parts=st.lists(
        st.one_of(st.sampled_from(_SPACED_SPECIALS + ["<|end of", " text|>", "a", " b", "the"]),
                  st.text(st.sampled_from(list("ab c\n!t")), max_size=5)),
        max_size=40,
    ),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    min_chunk=st.integers(1, 24),
)
def test_encode_stream_never_cuts_inside_an_allowed_special(pattern, parts, cuts, min_chunk):
    """Special tokens whose text holds a safe pre-tokenizer cut (a space between letters, a
    blank line) are still recognised whole when the stream is cut."""
    if pattern not in _SPACED_TOKS:
        _SPACED_TOKS[pattern] = Tokenizer.train(
            texts=["the cat sat on the mat! a b\n\n"] * 5, vocab_size=300, pattern=pattern,
            special_tokens=_SPACED_SPECIALS,
        )
    tok = _SPACED_TOKS[pattern]
    text = "".join(parts)
    chunks = _chunks(text, cuts)
    got = [
        i
        for ids in tok.encode_stream(chunks, allowed_special="all", min_chunk=min_chunk)
        for i in ids
    ]
    assert got == tok.encode(text, allowed_special="all")


# ---- the piece table (docs/bpe.md §13): bounded, shared across calls, never changes an id ----
TABLE_LIMITS = [0, 7, 5000]  # off; a few pieces; below every OpenAI seed (unseeded table)


@pytest.fixture(scope="session", params=["gpt2", "cl100k_base", "o200k_base"])
def limited(request):
    """(tokenizer with the default table, the same vocabulary under each tiny limit, tiktoken)."""
    from vocabularies import fetch

    path = fetch(f"{request.param}.tiktoken")
    ours = Tokenizer.from_file(path)
    tiny = []
    for limit in TABLE_LIMITS:
        t = Tokenizer.from_file(path)
        t.set_cache_limit(limit)
        tiny.append(t)
    theirs = tiktoken.Encoding(
        name=request.param,
        pat_str=ours.pattern,
        mergeable_ranks=load_tiktoken_bpe(str(path)),
        special_tokens=ours.special_tokens,
    )
    return ours, tiny, theirs


def test_piece_table_limits_change_no_id_on_corpora(limited, corpus_docs):
    ours, tiny, theirs = limited
    for _ in range(2):  # cold, then with tables filled by the first pass
        for name, text in corpus_docs.items():
            want = theirs.encode_ordinary(text)
            assert ours.encode_ordinary(text) == want, name
            for t in tiny:
                assert t.encode_ordinary(text) == want, (name, t.cache_info())
    for t, limit in zip(tiny, TABLE_LIMITS):
        info = t.cache_info()
        assert info["limit"] == limit and info["seed"] == 0
        assert info["slots"] <= max(8, 4 * limit)


@given(text=hard_text)
def test_piece_table_limits_change_no_id_on_any_text(limited, text):
    ours, tiny, theirs = limited
    text = _fix(text)
    want = theirs.encode_ordinary(text)
    assert ours.encode_ordinary(text) == want
    assert ours.encode_numpy(text, disallowed_special=()).tolist() == want
    for t in tiny:
        assert t.encode_ordinary(text) == want


def test_piece_table_limit_changes_no_id_of_a_merge_order_model(corpus_docs):
    """HF-style priority (merge-list order, no whole-piece lookup): seeded values are merge
    results, not the tokens' own ids."""
    texts = list(corpus_docs.values())
    tok = Tokenizer.train(texts=texts[:6], vocab_size=1500)
    hf = HFTokenizer.from_str(tok.to_json())
    small = Tokenizer.from_json_str(tok.to_json())
    small.set_cache_limit(3)
    for _ in range(2):
        for text in texts:
            want = hf.encode(text, add_special_tokens=False).ids
            assert tok.encode_ordinary(text) == want
            assert small.encode_ordinary(text) == want


def test_piece_table_is_bounded_reported_and_kept_across_calls(cl100k_file):
    import random

    rng = random.Random(0)
    unique = " ".join(
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyzäöüß", k=rng.randint(3, 12)))
        for _ in range(60_000)
    )
    tok = Tokenizer.from_file(cl100k_file)
    assert tok.cache_info()["tables"] == 0  # nothing built before the first encode
    tok.set_cache_limit(200_000)
    tok.encode_ordinary(unique)
    info = tok.cache_info()
    assert info["tables"] == 1 and info["limit"] == 200_000
    assert info["seed"] > 90_000  # cl100k's tokens of <= 15 bytes
    assert info["seed"] < info["entries"] <= 200_000 + 1000  # (+ pieces over 15 bytes)
    assert info["slots"] <= 2**19 and info["bytes"] < 40 << 20
    # kept across calls: the same text adds nothing
    tok.encode_ordinary(unique)
    assert tok.cache_info()["entries"] == info["entries"]
    # bounded: a tiny limit stops growth whatever the stream
    tok.set_cache_limit(1000)
    for k in range(3):
        tok.encode_ordinary(unique[k::3])
    small = tok.cache_info()
    assert small["seed"] == 0 and small["slots"] <= 4096
    lib = Tokenizer(tokforge._core.TokenModel.from_units(["ab"]))
    assert lib.cache_info() is None
    with pytest.raises(tokforge.InputError, match="no piece table"):
        lib.set_cache_limit(10)


def test_a_batch_shares_one_piece_table_and_changes_no_id(limited, corpus_docs):
    """The threads of a batch read one table and merge their misses into it at the end
    (docs/bpe.md §13.4; a model's first batch gives each thread a table, and those are made
    one when it ends): the table a batch leaves holds every piece of its texts; ids as
    tiktoken's."""
    from vocabularies import fetch

    _, _, theirs = limited
    docs = [d[i : i + 3000] for d in corpus_docs.values() for i in range(0, len(d), 3000)]
    want = [theirs.encode_ordinary(d) for d in docs]
    for limit in [None, *TABLE_LIMITS]:
        tok = Tokenizer.from_file(fetch(f"{theirs.name}.tiktoken"))
        if limit is not None:
            tok.set_cache_limit(limit)
        for k in range(2):
            flat, offsets = tok.encode_batch_numpy(docs, disallowed_special=(), num_threads=2)
            got = _per_text(flat, offsets)
            assert got == want, limit
            if k == 0:
                # the threads' tables made one (tables that hold nothing learn nothing, and
                # are kept as they are: one or two, as the threads borrowed them)
                tables = tok.cache_info()["tables"]
                assert tables in ((1, 2) if limit == 0 else (1,)), (limit, tok.cache_info())
            assert tok.encode_batch(docs, disallowed_special=(), num_threads=2) == want, limit
        info = tok.cache_info()
        assert info["tables"] <= 2, (limit, info)
        if limit is None:
            # every piece of the batch was merged into the table: encoding adds nothing
            for d in docs:
                tok.encode_ordinary(d)
            assert tok.cache_info()["entries"] == info["entries"]
        else:
            assert info["slots"] <= info["tables"] * max(8, 4 * limit)


def test_a_batch_that_learns_nothing_keeps_its_tables_and_a_small_batch_runs_alone(cl100k_file):
    """A batch under 16 KiB is encoded by the calling thread alone, with one table. A model's
    batch whose every piece is a whole token (in every table from the start) leaves its
    threads' tables as they were (each holds the seed and nothing more: before, every such
    call built a table for its second thread and merged it back, 3 ms a call of 100 short
    texts; which tables are kept is `piece_table::tests::merging_keeps_tables_that_learnt_
    nothing_and_makes_the_others_one`, as how many a call borrows depends on which thread
    starts first). A batch that learns makes the tables one again. Ids as tiktoken's."""
    theirs = tiktoken_encoding(cl100k_file)
    tok = Tokenizer.from_file(cl100k_file)

    def batch(texts):
        flat, offsets = tok.encode_batch_numpy(texts, disallowed_special=(), num_threads=2)
        got = _per_text(flat, offsets)
        assert got == theirs.encode_ordinary_batch(texts)
        assert tok.encode_batch(texts, disallowed_special=(), num_threads=2) == got
        return tok.cache_info()

    words = " the cat sat on the mat and"
    assert batch([words] * 8)["tables"] == 1
    for _ in range(3):
        info = batch([words * 100] * 20)
        assert info["tables"] in (1, 2) and info["entries"] == info["tables"] * info["seed"], info
    info = batch([f" Quetzalcoatlus{k} arrives" * 50 for k in range(40)])
    assert info["tables"] == 1 and info["entries"] > info["seed"], info


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork exists only on POSIX systems")
def test_a_first_batch_merges_its_tables_after_the_call_and_a_fork_does_not_wait(
    cl100k_file, corpus_docs
):
    """A model's first batch on 2 threads gives each thread a table of its own; they are
    made one on the merge thread after the call returns, and the next call that needs a
    table waits for that (``cache_info`` too): one table, holding what both threads learnt. A
    child forked right after the call, while that merge may still run in the parent, has no
    such thread: its calls go on without waiting, and its own batches run on threads of its
    own, the parent's batch pools included (a hang here is a failure, not a skip)."""
    theirs = tiktoken_encoding(cl100k_file)
    docs = list(corpus_docs.values())
    for _ in range(3):
        tok = Tokenizer.from_file(cl100k_file)
        tok.encode_ordinary("a")  # the seed, and one table of it
        flat, offsets = tok.encode_batch_numpy(docs, disallowed_special=(), num_threads=2)
        with warnings.catch_warnings():
            # Python 3.12 warns about forking a process that runs threads: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: exit 0 only with the right ids
            ok = all(tok.encode_ordinary(d) == theirs.encode_ordinary(d) for d in docs[:4])
            # its batches run on threads of its own (the parent's pools and merge thread are
            # not here: work sent to them used to wait forever)
            for _ in range(2):
                again = tok.encode_batch(docs, disallowed_special=(), num_threads=2)
                ok = ok and again == theirs.encode_ordinary_batch(docs)
                f, o = tok.encode_batch_numpy(docs, disallowed_special=(), num_threads=2)
                ok = ok and _per_text(f, o) == again
            ok = ok and tok.cache_info()["tables"] == 1
            os._exit(0 if ok else 1)
        info = tok.cache_info()
        assert info["tables"] == 1 and info["entries"] > info["seed"], info
        got = _per_text(flat, offsets)
        assert got == theirs.encode_ordinary_batch(docs)
        deadline = time.monotonic() + 60
        while (status := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if status[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in its first call")
        assert os.waitstatus_to_exitcode(status[1]) == 0


def test_a_later_batch_of_new_text_leaves_one_table_with_every_piece(cl100k_file, corpus_docs):
    """A batch after the first shares the model's table and keeps what it lacks in a table per
    thread, stored into it when the call ends (after the call, on a thread of its own, when
    they hold many pieces: the next call waits for that). Ids as tiktoken's; then one table
    with exactly the pieces of a model that met the same texts one call at a time, and a batch
    over the same texts again learns nothing."""
    theirs = tiktoken_encoding(cl100k_file)
    docs = list(corpus_docs.values())
    first, later = docs[0::2], docs[1::2]
    one = Tokenizer.from_file(cl100k_file)
    for d in first + later:
        one.encode_ordinary(d)
    tok = Tokenizer.from_file(cl100k_file)
    tok.encode_batch_numpy(first, disallowed_special=(), num_threads=2)
    before = tok.cache_info()
    flat, offsets = tok.encode_batch_numpy(later, disallowed_special=(), num_threads=2)
    info = tok.cache_info()
    got = _per_text(flat, offsets)
    assert got == theirs.encode_ordinary_batch(later)
    assert info["tables"] == 1, info
    # enough new pieces that they were stored apart (ABSORB_APART is 4096)
    assert info["entries"] - before["entries"] > 4096, (before, info)
    assert info["entries"] == one.cache_info()["entries"], (info, one.cache_info())
    assert tok.encode_batch(later, disallowed_special=(), num_threads=2) == got
    assert tok.cache_info()["entries"] == info["entries"]


def test_encode_numpy_equals_encode(pair, corpus_docs):
    """A text under 1 MiB is encoded into a buffer kept per thread, its ids copied into numpy's
    own array; from 1 MiB the array wraps the encoder's buffer (no copy). Calls one after the
    other reuse that buffer, so a longer text before a shorter one must leave nothing behind.
    Plain text (``disallowed_special=()``) takes the ordinary path."""
    ours, theirs = pair
    eot = "<|endoftext|>"
    texts = list(corpus_docs.values())[:5] + [f"a{eot}b", "", "\ud83d lone"]
    # 1024 and 1025 ids; 300,000 ids (more than the per-thread buffer keeps); 1 MiB of text
    texts += ["x " * 1023, "x " * 1024, "y" * 3, "w " * 300_000, "v", "z " * (1 << 19), "z"]
    for text in texts:
        arr = ours.encode_numpy(text, allowed_special="all")
        assert arr.dtype == np.uint32 and arr.ndim == 1
        assert arr.flags.owndata == (len(text) < 1 << 20)
        assert arr.tolist() == ours.encode(text, allowed_special="all")
        assert arr.tolist() == theirs.encode(text, allowed_special="all")
        plain = ours.encode_numpy(text, disallowed_special=())
        assert plain.flags.owndata == (len(text) < 1 << 20)
        assert plain.tolist() == ours.encode_ordinary(text) == theirs.encode_ordinary(text)
    assert [len(ours.encode_numpy(t, disallowed_special=())) for t in texts[8:10]] == [1024, 1025]
    with pytest.raises(tokforge.InputError, match="disallowed"):
        ours.encode_numpy(eot)
