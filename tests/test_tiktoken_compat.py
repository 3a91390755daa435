"""tokforge.tiktoken against tiktoken 0.14 itself: equal ids on corpora/ for every OpenAI
encoding, on random text (hypothesis), equal special-token errors, equal decoding and
unstable-token completions, pickling; and the offline rank-file lookup.

Both libraries read the same tiktoken cache (tests/tiktoken_env.py); HTTP(S) goes to a closed
local port, so nothing can be downloaded. tiktoken's own test suite runs separately
(tests/tiktoken_suite.py, in ``make test``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import tiktoken
import tokforge.tiktoken as tt
from hypothesis import given
from hypothesis import strategies as st
from tiktoken_env import FILES, data_gym_files, tiktoken_cache
from tokforge.tiktoken import load, openai_public

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "tiktoken-suite" / "cache"
OFFLINE = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}
NAMES = [
    "gpt2",
    "r50k_base",
    "p50k_base",
    "p50k_edit",
    "cl100k_base",
    "o200k_base",
    "o200k_harmony",
]
# one encoding per rank file and pattern, for the slower checks
MAIN = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base"]


@pytest.fixture(scope="module", autouse=True)
def offline_cache():
    """Both libraries read the cache built from PyPI packages; nothing reaches the network.
    Module-scoped: the proxy that blocks the network is lifted when this module ends, so later
    modules can still fetch their pinned files."""
    folder = tiktoken_cache(CACHE)
    saved = {k: os.environ.get(k) for k in ["TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR", *OFFLINE]}
    os.environ.update(TIKTOKEN_CACHE_DIR=str(folder), **OFFLINE)
    os.environ.pop("DATA_GYM_CACHE_DIR", None)
    yield folder
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def pair(name: str) -> tuple[tiktoken.Encoding, tt.Encoding]:
    return tiktoken.get_encoding(name), tt.get_encoding(name)


def outcome(f, *args, **kwargs):
    """A call's result, or its exception as (type, message), to compare both libraries."""
    try:
        return ("ok", f(*args, **kwargs))
    except Exception as e:
        return (type(e).__name__, str(e))


# ---- registry, model table, vocabulary facts ----------------------------------------------
def test_encoding_names_and_model_table_equal_tiktokens():
    import tiktoken.model as tm

    assert tt.list_encoding_names() == tiktoken.list_encoding_names() == NAMES
    assert tt.model.MODEL_TO_ENCODING == tm.MODEL_TO_ENCODING
    assert list(tt.model.MODEL_PREFIX_TO_ENCODING.items()) == list(
        tm.MODEL_PREFIX_TO_ENCODING.items()
    )
    for model in ["gpt-4o", "gpt-4-0613", "ft:gpt-4o:org", "gpt-oss-20b", "ada", "gpt-5-mini"]:
        assert tt.encoding_name_for_model(model) == tiktoken.encoding_name_for_model(model)
    assert outcome(tt.encoding_name_for_model, "no-such-model") == outcome(
        tiktoken.encoding_name_for_model, "no-such-model"
    )
    with pytest.raises(ValueError, match="Unknown encoding nope"):
        tt.get_encoding("nope")
    with pytest.raises(ValueError, match="Expected a string"):
        tt.get_encoding(3)


@pytest.mark.parametrize("name", NAMES)
def test_vocabulary_facts_equal_tiktokens(name):
    a, b = pair(name)
    assert b.name == a.name and repr(b) == repr(a)
    assert b._pat_str == a._pat_str
    assert b._mergeable_ranks == a._mergeable_ranks
    assert b._special_tokens == a._special_tokens
    assert (b.n_vocab, b.max_token_value, b.eot_token) == (
        a.n_vocab,
        a.max_token_value,
        a.eot_token,
    )
    assert b.special_tokens_set == a.special_tokens_set
    assert b.token_byte_values() == a.token_byte_values()
    for t in [0, 255, a.eot_token, a.max_token_value, a.max_token_value + 1]:
        assert b.is_special_token(t) == a.is_special_token(t)
        assert outcome(b.decode_single_token_bytes, t) == outcome(a.decode_single_token_bytes, t)


# ---- ids on real text ---------------------------------------------------------------------
@pytest.mark.parametrize("name", MAIN)
def test_ids_equal_tiktoken_on_corpora(name, corpus_docs):
    a, b = pair(name)
    docs = list(corpus_docs.values())
    for doc in docs:
        ids = a.encode_ordinary(doc)
        assert b.encode_ordinary(doc) == ids
        assert b.encode(doc, allowed_special="all") == a.encode(doc, allowed_special="all")
        assert b.decode(ids) == doc
    assert b.encode_batch(docs, disallowed_special=()) == a.encode_batch(
        docs, disallowed_special=()
    )
    assert b.encode_ordinary_batch(docs, num_threads=2) == a.encode_ordinary_batch(docs)
    assert b.decode_batch(a.encode_ordinary_batch(docs)) == docs
    arr = b.encode_to_numpy(docs[0])
    assert arr.dtype == np.uint32 and arr.tolist() == a.encode_to_numpy(docs[0]).tolist()


@pytest.mark.parametrize("name", MAIN)
def test_decode_with_offsets_equal_tiktoken_on_corpora(name, corpus_docs):
    a, b = pair(name)
    for doc in corpus_docs.values():
        ids = a.encode_ordinary(doc[:3000])
        assert b.decode_with_offsets(ids) == a.decode_with_offsets(ids)
        assert b.decode_tokens_bytes(ids) == a.decode_tokens_bytes(ids)


SPECIAL_TEXT = st.lists(
    st.sampled_from(["<|endoftext|>", "<|fim_prefix|>", "<|endofprompt|>", "<|", "|>", " ", "\n"])
    | st.characters(),
    max_size=20,
).map("".join)


@pytest.mark.parametrize("name", ["r50k_base", "cl100k_base", "o200k_harmony"])
@given(text=st.text() | SPECIAL_TEXT)
def test_ids_and_errors_equal_tiktoken_on_random_text(name, text):
    a, b = pair(name)
    assert b.encode_ordinary(text) == a.encode_ordinary(text)
    for kwargs in [
        {},
        {"allowed_special": "all"},
        {"disallowed_special": ()},
        {"allowed_special": {"<|endoftext|>"}},
        {"allowed_special": {"<|endoftext|>"}, "disallowed_special": ()},
        {"disallowed_special": {"<|endofprompt|>"}},
        {"allowed_special": "all", "disallowed_special": {"<|endoftext|>"}},
    ]:
        assert outcome(b.encode, text, **kwargs) == outcome(a.encode, text, **kwargs)
        assert outcome(b.encode_batch, [text, "x"], **kwargs) == outcome(
            a.encode_batch, [text, "x"], **kwargs
        )


@pytest.mark.parametrize("name", ["r50k_base", "cl100k_base"])
@given(data=st.binary(max_size=24))
def test_encode_bytes_equals_tiktoken_on_random_bytes(name, data):
    a, b = pair(name)
    assert b._encode_bytes(data) == a._encode_bytes(data)
    if data:  # tiktoken's Rust panics on an empty piece; tokforge returns []
        assert b._encode_single_piece(data) == a._encode_single_piece(data)


@pytest.mark.parametrize("name", ["r50k_base", "cl100k_base"])
@pytest.mark.parametrize(
    "text",
    [
        "hello fanta",
        "hello ",
        "hello\n",
        "x = 1\n\n",
        " 실",
        "def f(",
        "naïve",
        "",
        "a<|endoftext|>",
    ],
)
def test_encode_with_unstable_equals_tiktoken(name, text):
    a, b = pair(name)
    kwargs = {"allowed_special": "all"}
    stable_a, comps_a = a.encode_with_unstable(text, **kwargs)
    stable_b, comps_b = b.encode_with_unstable(text, **kwargs)
    assert stable_b == stable_a
    assert sorted(map(tuple, comps_b)) == sorted(map(tuple, comps_a))
    assert comps_b == sorted(comps_b)


@given(text=st.text(st.sampled_from("ab é\n\t!0"), max_size=12))
def test_encode_with_unstable_equals_tiktoken_on_random_text(text):
    a, b = pair("cl100k_base")
    stable_a, comps_a = a.encode_with_unstable(text)
    stable_b, comps_b = b.encode_with_unstable(text)
    assert stable_b == stable_a
    assert sorted(map(tuple, comps_b)) == sorted(map(tuple, comps_a))


# ---- errors -------------------------------------------------------------------------------
def test_special_token_errors_equal_tiktokens():
    a, b = pair("cl100k_base")
    text = "x <|fim_prefix|> y <|endoftext|>"
    for kwargs in [{}, {"allowed_special": {"<|endoftext|>"}}, {"disallowed_special": {"y"}}]:
        got, want = outcome(b.encode, text, **kwargs), outcome(a.encode, text, **kwargs)
        assert got == want and got[0] == "ValueError"
        assert outcome(b.encode_to_numpy, text, **kwargs)[0] == "ValueError"
        assert outcome(b.encode_with_unstable, text, **kwargs) == got
    # an allowed name that is no special token is ignored, as in tiktoken
    assert b.encode("a", allowed_special={"nope"}) == a.encode("a", allowed_special={"nope"})
    assert outcome(b.encode, "a", allowed_special=["<|endoftext|>"]) == outcome(
        a.encode, "a", allowed_special=["<|endoftext|>"]
    )
    assert outcome(b.encode_batch, ["a"], num_threads=0) == outcome(
        a.encode_batch, ["a"], num_threads=0
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.decode_bytes([1, 100256]),
        lambda e: e.decode_bytes([1, -1, 100256]),
        lambda e: e.decode([2**32]),
        lambda e: e.decode_single_token_bytes(100261),
        lambda e: e.decode_single_token_bytes(-5),
        lambda e: e.encode_single_token(b"no such token here"),
        lambda e: e.encode_single_token("<|endoftext|>"),
        lambda e: e.encode_single_token(b"<|fim_middle|>"),
        lambda e: e.encode_single_token("hello"),
        lambda e: e.decode_with_offsets([9468, 239]),
        lambda e: e.decode(np.array([15339, 1917], dtype=np.uint32)),
    ],
)
def test_decode_and_single_token_errors_equal_tiktokens(call):
    a, b = pair("cl100k_base")
    assert outcome(call, b) == outcome(call, a)


def test_surrogates_are_replaced_as_tiktoken_does():
    a, b = pair("cl100k_base")
    for text in ["\ud83d\udc4d", "\ud83d", "a\udc00b<|endoftext|>"]:
        assert b.encode(text, allowed_special="all") == a.encode(text, allowed_special="all")
        assert b.encode_ordinary_batch([text, "x"]) == a.encode_ordinary_batch([text, "x"])
        assert b.encode_to_numpy(text, disallowed_special=()).tolist() == a.encode(
            text, disallowed_special=()
        )


def test_encoding_without_special_tokens_encodes_any_text_as_tiktoken():
    a0, _ = pair("cl100k_base")
    kwargs = {"pat_str": a0._pat_str, "mergeable_ranks": a0._mergeable_ranks, "special_tokens": {}}
    a, b = tiktoken.Encoding("bare", **kwargs), tt.Encoding("bare", **kwargs)
    for text in ["a\ud83d", "<|endoftext|>", ""]:
        assert b.encode(text) == a.encode(text)
        assert b.encode_batch([text]) == a.encode_batch([text])
    assert outcome(lambda: b.eot_token) == outcome(lambda: a.eot_token)


def test_harmony_alias_special_token_encodes_as_tiktoken():
    a, b = pair("o200k_harmony")
    text = "<|reserved_200018|> hi <|endofprompt|><|start|>"
    for kwargs in [
        {"allowed_special": "all"},
        {"allowed_special": {"<|reserved_200018|>"}},
        {"allowed_special": {"<|reserved_200018|>"}, "disallowed_special": ()},
        {"disallowed_special": {"<|reserved_200018|>"}},
    ]:
        assert outcome(b.encode, text, **kwargs) == outcome(a.encode, text, **kwargs)
        assert outcome(b.encode_batch, [text], **kwargs) == outcome(
            a.encode_batch, [text], **kwargs
        )
    assert b.decode([200018]) == a.decode([200018])


# ---- custom encodings, pickling -----------------------------------------------------------
def test_custom_encoding_matches_tiktoken_and_checks_n_vocab():
    a0, _ = pair("r50k_base")
    kwargs = {
        "pat_str": a0._pat_str,
        "mergeable_ranks": a0._mergeable_ranks,
        "special_tokens": {"<|a|>": 50256, "<|b|>": 50300},
    }
    a = tiktoken.Encoding("custom", **kwargs)
    b = tt.Encoding("custom", **kwargs)
    text = "hi <|b|> there <|a|>"
    assert b.encode(text, allowed_special="all") == a.encode(text, allowed_special="all")
    assert b.n_vocab == a.n_vocab == 50301
    with pytest.raises(AssertionError):
        tt.Encoding("custom", explicit_n_vocab=50258, **kwargs)


def test_pickle_by_name_for_registered_and_by_value_for_custom():
    _, b = pair("cl100k_base")
    data = pickle.dumps(b)
    assert len(data) < 200  # by name
    assert pickle.loads(data).encode("hello world") == b.encode("hello world")
    custom = tt.Encoding(
        "custom",
        pat_str=b._pat_str,
        mergeable_ranks=b._mergeable_ranks,
        special_tokens={"<|pickle|>": 200_000},
    )
    again = pickle.loads(pickle.dumps(custom))
    assert again is not custom and again.name == "custom"
    assert again.encode("<|pickle|> x", allowed_special="all")[0] == 200_000
    assert again.encode("<|pickle|> x", allowed_special="all") == custom.encode(
        "<|pickle|> x", allowed_special="all"
    )
    # tiktoken reads tokforge's pickles' state as its own and the other way round
    assert custom.__getstate__().keys() == tiktoken.Encoding.__getstate__(custom).keys()


def test_tokenizer_property_is_the_tokforge_tokenizer_with_equal_ids():
    _, b = pair("cl100k_base")
    assert b.tokenizer.encode_ordinary("hello world") == b.encode_ordinary("hello world")


# ---- rank files offline -------------------------------------------------------------------
def test_gpt2_data_gym_files_rebuilt_from_r50k_have_tiktokens_hashes():
    r50k = (CACHE / hashlib.sha1(FILES["r50k_base"][0].encode()).hexdigest()).read_bytes()
    vocab_bpe, encoder_json = data_gym_files(r50k)
    assert hashlib.sha256(vocab_bpe).hexdigest() == openai_public.GPT2_VOCAB_BPE_SHA256
    assert hashlib.sha256(encoder_json).hexdigest() == openai_public.GPT2_ENCODER_JSON_SHA256
    assert (
        hashlib.sha256(load.p50k_from_r50k(r50k)).hexdigest()
        == (openai_public.SHA256["p50k_base.tiktoken"])
    )


@pytest.fixture
def only_r50k(tmp_path, monkeypatch):
    """A cache holding only r50k_base, and no package that ships rank files."""
    url, _ = FILES["r50k_base"]
    name = hashlib.sha1(url.encode()).hexdigest()
    (tmp_path / name).write_bytes((CACHE / name).read_bytes())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(load, "PACKAGED", {})
    return tmp_path


def test_p50k_and_gpt2_load_from_r50k_alone(only_r50k):
    p50k = openai_public.p50k_base()["mergeable_ranks"]
    assert len(p50k) == 50280 and p50k[b" " * 25] == 50280
    r50k = openai_public.r50k_base()["mergeable_ranks"]
    assert openai_public.gpt2()["mergeable_ranks"] == r50k


def test_missing_rank_file_error_names_file_and_cache_path(only_r50k):
    with pytest.raises(load.RankFileNotFoundError) as e:
        openai_public.cl100k_base()
    msg = str(e.value)
    assert "cl100k_base.tiktoken" in msg
    assert str(only_r50k / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4") in msg
    assert isinstance(e.value, FileNotFoundError)


def test_cache_entry_with_wrong_hash_is_skipped_and_reported(only_r50k):
    url, _ = FILES["cl100k_base"]
    bad = only_r50k / hashlib.sha1(url.encode()).hexdigest()
    bad.write_bytes(b"aGk= 0\n")
    with pytest.raises(load.RankFileNotFoundError, match="wrong SHA-256"):
        openai_public.cl100k_base()
    assert bad.read_bytes() == b"aGk= 0\n"  # left alone


def test_empty_cache_dir_turns_the_cache_off(only_r50k, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    assert load.cache_path(FILES["r50k_base"][0]) is None
    with pytest.raises(load.RankFileNotFoundError, match="Caching is off"):
        openai_public.r50k_base()


def test_packaged_copy_is_found_without_importing_the_package(tmp_path, monkeypatch):
    """A package laid out like openai-whisper (whisper/assets/gpt2.tiktoken) supplies r50k."""
    pkg = tmp_path / "site" / "whisper"
    (pkg / "assets").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    url, _ = FILES["r50k_base"]
    data = (CACHE / hashlib.sha1(url.encode()).hexdigest()).read_bytes()
    (pkg / "assets" / "gpt2.tiktoken").write_bytes(data)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "whisper", raising=False)
    importlib.invalidate_caches()
    assert openai_public.r50k_base()["mergeable_ranks"][b"hello"] == 31373
    assert "whisper" not in sys.modules


def test_tiktoken_ext_plugins_are_registered_after_openais(tmp_path, monkeypatch):
    from tokforge.tiktoken import registry

    plugin = tmp_path / "tiktoken_ext"
    plugin.mkdir()
    (plugin / "toy_plugin.py").write_text(
        "def toy():\n"
        "    ranks = {bytes([b]): b for b in range(256)}\n"
        "    ranks[b'ab'] = 256\n"
        "    return {'name': 'toy', 'pat_str': r'\\S+|\\s+', 'mergeable_ranks': ranks,\n"
        "            'special_tokens': {'<|end|>': 257}}\n"
        "ENCODING_CONSTRUCTORS = {'toy': toy}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(registry, "ENCODING_CONSTRUCTORS", None)
    monkeypatch.setattr(registry, "ENCODINGS", {})
    assert registry.list_encoding_names() == [*NAMES, "toy"]
    enc = tt.get_encoding("toy")
    assert enc.encode("abab <|end|>", allowed_special="all") == [256, 256, 32, 257]
    assert tt.get_encoding("toy") is enc
