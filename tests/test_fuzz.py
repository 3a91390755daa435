"""Mutation fuzzing of every tokenizer loader and of what a loaded model promises.

Seeds are real files cut small: OpenAI's ``gpt2.tiktoken`` (first 1500 ranks), llama.cpp's
deepseek-coder and llama-spm GGUF vocabularies (first 1500 / 1000 tokens), Mistral's tekken
file (its 1000 special ids, first 1200 ranks; and a variant listing its special tokens), HF
``tokenizer.json`` exports of those and of trained tokenizers (a preset and a custom pattern,
with special tokens), and a trained LiB JSON. Hypothesis mutates them three ways: bytes
(flips, inserts, deletes, duplicated or swapped ranges, splices of hostile tokens), JSON
structure (a value anywhere replaced by a hostile one: huge, negative or fractional numbers,
wrong types, deep nesting; keys dropped; list items duplicated) and rank lines (hostile ranks,
duplicated and reordered lines).

The property: loading either gives a tokenizer or raises a ``TokforgeError`` (never another
exception, a panic, an abort or a hang), and a tokenizer that loads keeps its promises on
hostile text: ids below ``vocab_size``, ``decode(encode(t)) == t``, batch == single calls,
streamed == whole, and its saved form loads back with the same ids.

Inputs that once failed are kept in ``tests/fuzz_regressions/`` and replayed on every run.
``TOKFORGE_FUZZ_EXAMPLES`` scales the number of examples (``make fuzz`` runs thousands; the
default keeps this file near 20 s).
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tokforge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import gguf_ref
from tokforge import Tokenizer
from tokforge.lib_model import LibConfig
from vocabularies import fetch, fetch_llama_cpp_vocab

EXAMPLES = int(os.environ.get("TOKFORGE_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"

#: texts a loaded model must handle: scripts, long runs, digits, CRLF, special-token look-alikes
PROBES = [
    "",
    "hello world, the cat sat on the mat.\r\n\r\n  x",
    "ünïcödé 🙂 日本語テキスト 한국어 مرحبا\t\t",
    "1234567890 3.14159 $$$ ''' \"\"\" <|endoftext|><pad>[INST]",
    "a" * 3000 + " " + "ab" * 700,
    "\x00\x01\x7f\u2028\u2029\ufeff",
]


# ---- seeds ------------------------------------------------------------------------------------
@functools.cache
def seed_files() -> dict[str, tuple[str, bytes]]:
    """name -> (file name, content) of each seed file. (Not a fixture: hypothesis misreports a
    failure as a flaky strategy when a test takes megabytes of fixture value as an argument.)"""
    gpt2_file, tekken_file = fetch("gpt2.tiktoken"), fetch("tekken_240911.json")
    out: dict[str, tuple[str, bytes]] = {}
    lines = gpt2_file.read_bytes().splitlines(keepends=True)[:1500]
    out["tiktoken"] = ("gpt2.tiktoken", b"".join(lines))
    ranks = {base64.b64decode(line.split()[0]): int(line.split()[1]) for line in lines}
    gpt2_small = Tokenizer.from_ranks(ranks, pattern="gpt2", special_tokens={"<|endoftext|>": 1500})
    out["hf_ranks"] = ("tokenizer.json", gpt2_small.to_json().encode())

    doc = json.loads(tekken_file.read_bytes())
    cfg = dict(doc["config"], default_vocab_size=1000 + 1200)
    tekken = {"config": cfg, "vocab": doc["vocab"][:1200]}
    out["tekken"] = ("tekken.json", json.dumps(tekken).encode())
    listed = [{"rank": i, "token_str": t, "is_control": True}
              for i, t in enumerate(["<unk>", "<s>", "</s>", "[INST]", "[/INST]"])]
    cfg = dict(cfg, default_num_special_tokens=5, default_vocab_size=5 + 600)
    out["tekken_listed"] = ("tekken.json", json.dumps(
        {"config": cfg, "vocab": doc["vocab"][:600], "special_tokens": listed}).encode())

    texts = [(Path(__file__).resolve().parents[1] / "corpora" / f).read_text(encoding="utf-8")
             for f in ("en.txt", "ru.txt", "zh.txt")]
    bpe = Tokenizer.train(texts=texts, vocab_size=420, special_tokens=["<|eot|>", "<pad>"])
    out["hf_trained"] = ("tokenizer.json", bpe.to_json().encode())
    custom = Tokenizer.train(texts=texts, vocab_size=330, pattern=r"\w+|\s+|[^\w\s]+")
    out["hf_custom"] = ("tokenizer.json", custom.to_json().encode())
    lib = Tokenizer.train(texts=texts, vocab_size=None, algorithm="lib",
                          special_tokens=["<|eot|>"], lib=LibConfig(steps=30, article_len=20))
    out["lib"] = ("lib.json", lib.to_json().encode())
    out["gguf_bpe"] = ("vocab.gguf", gguf_cut("deepseek-coder", 1500))
    out["gguf_spm"] = ("vocab.gguf", gguf_cut("llama-spm", 1000))
    return out


def gguf_cut(name: str, n: int) -> bytes:
    """A vocab-only GGUF of the first ``n`` tokens of one of llama.cpp's vocabularies (its
    tokenizer keys; merges kept when both sides and their join are kept)."""
    kv = gguf_ref.read_typed(fetch_llama_cpp_vocab(name).read_bytes())
    kv = {k: v for k, v in kv.items() if k.startswith("tokenizer.ggml.")}
    for key in ("tokens", "token_type", "scores"):
        if "tokenizer.ggml." + key in kv:
            v = kv["tokenizer.ggml." + key]
            kv["tokenizer.ggml." + key] = gguf_ref.Typed(v.type, v.value[:n], v.elem)
    kept = set(kv["tokenizer.ggml.tokens"].value)
    if "tokenizer.ggml.merges" in kv:
        v = kv["tokenizer.ggml.merges"]
        merges = [m for m in v.value
                  if (p := m.split(" ", 1))[0] in kept and p[1] in kept and p[0] + p[1] in kept]
        kv["tokenizer.ggml.merges"] = gguf_ref.Typed(v.type, merges, v.elem)
    for key in ("bos_token_id", "eos_token_id", "padding_token_id", "unknown_token_id"):
        kv.pop("tokenizer.ggml." + key, None)
    return gguf_ref.write(kv)


# ---- mutations --------------------------------------------------------------------------------
HOSTILE_TOKENS = [b"-1", b"4294967296", b"18446744073709551616", b"1e999", b"1.5", b"null",
                  b'"', b"{", b"}", b"[", b"]", b",", b"\\u0000", b"\\ud800", b"\xff", b"\x00",
                  b" ", b"\n", b"0", b"999999999", b"\"config\"", b"\"tokforge-lib\"", b"(", b"*"]

HOSTILE_VALUES = [None, True, -1, 0, 1, 255, 256, 2**31, 2**32 - 1, 2**32, 2**63, 2**64,
                  10**30, 1.5, -0.0, "", "x" * 1000, "(", "gpt4", [], {}, [[[[[[[[[[1]]]]]]]]]],
                  {"type": "BPE"}, {"Regex": "("}, "\ud800" * 0 + "\x00", "AA==", "!!!!"]


@st.composite
def byte_mutation(draw, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(out)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "token", "truncate"]))
        if op == "flip" and pos < len(out):
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del out[pos:pos + draw(st.integers(1, 64))]
        elif op == "dup":
            n = draw(st.integers(1, 200))
            out[pos:pos] = out[pos:pos + n]
        elif op == "token":
            out[pos:pos + draw(st.integers(0, 8))] = draw(st.sampled_from(HOSTILE_TOKENS))
        elif op == "truncate":
            del out[pos:]
    return bytes(out)


@st.composite
def json_mutation(draw, data: bytes) -> bytes:
    doc = json.loads(data)
    for _ in range(draw(st.integers(1, 3))):
        # walk down a random path, preferring the parts that decide sizes and ids
        parent, key, node = None, None, doc
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)) > 0:
            k = (draw(st.sampled_from(sorted(node))) if isinstance(node, dict)
                 else draw(st.integers(0, len(node) - 1)))
            parent, key, node = node, k, node[k]
        if parent is None:
            continue
        op = draw(st.sampled_from(["replace", "replace", "replace", "drop", "dup"]))
        if op == "replace":
            parent[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE_VALUES)))
        elif op == "drop":
            parent.pop(key)
        elif isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[key] = [parent[key], copy.deepcopy(parent[key])]
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def line_mutation(draw, data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["rank", "dup", "swap", "drop", "token"]))
        tok, _, _ = lines[i].partition(b" ")
        if op == "rank":
            rank = draw(st.sampled_from([b"-1", b"4294967295", b"4294967296", b"1048999",
                                         b"1e3", b"", b" 7", b"0", b"99999999999999999999"]))
            lines[i] = tok + b" " + rank + b"\n"
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "drop":
            lines.pop(i)
        else:
            lines[i] = draw(st.sampled_from([b"", b"=", b"AA==", b"!!"])) + lines[i][len(tok):]
        if not lines:
            break
    return b"".join(lines)


# ---- the property -----------------------------------------------------------------------------
def load(tmp_path: Path, name: str, content: bytes) -> Tokenizer | None:
    """The tokenizer the file gives, or None if it raises a TokforgeError; anything else (a
    panic, another exception) fails the test."""
    p = tmp_path / name
    p.write_bytes(content)
    try:
        if name.endswith(".tiktoken"):
            return Tokenizer.from_file(p, pattern="gpt2")
        return Tokenizer.from_file(p)
    except tokforge.TokforgeError as e:
        assert str(p) in str(e), f"{type(e).__name__} does not name the file: {e}"
        return None


def check_model(tok: Tokenizer, tmp_path: Path, texts: list[str]) -> None:
    """What every tokenizer promises, on hostile texts."""
    n = tok.vocab_size
    batch = tok.encode_batch(texts, disallowed_special=())
    flat, offsets = tok.encode_batch_numpy(texts, disallowed_special=())
    for t, ids, k in zip(texts, batch, range(len(texts))):
        assert ids == tok.encode_ordinary(t)
        assert all(0 <= i < n for i in ids)
        if tok.kind == "bpe":  # SentencePiece-style models may map text to unk or ▁
            assert tok.decode_bytes(ids) == t.encode()
        assert flat[offsets[k]:offsets[k + 1]].tolist() == ids
        chunks = [t[i:i + 7] for i in range(0, len(t), 7)]
        streamed = [i for part in tok.encode_stream(chunks, min_chunk=16) for i in part]
        assert streamed == ids
    specials = sorted(tok.special_tokens.items(), key=lambda kv: kv[1])
    for special, i in specials[:8] + specials[-4:]:
        assert tok.encode(special, allowed_special={special}) == [i]
    # the saved form loads back with the same ids
    try:
        back = Tokenizer.from_json_str(tok.to_json())
    except tokforge.TokforgeError as e:  # pragma: no cover - the failure being tested for
        pytest.fail(f"a loaded tokenizer does not load back from its own JSON: {e}")
    assert [back.encode_ordinary(t) for t in texts] == batch


hostile_text = st.lists(
    st.text(st.characters(codec="utf-8"), max_size=10) | st.sampled_from(
        ["<|eot|>", "<pad>", "<|endoftext|>", "[INST]", " ", "\n", "\r\n", "'s", "ab" * 40]),
    max_size=12,
).map("".join)


def _fuzz_loader(tmp_path_factory, seed: str, how: str, data) -> None:
    name, content = seed_files()[seed]
    mutate = {"bytes": byte_mutation, "json": json_mutation, "lines": line_mutation}[how]
    content = data.draw(mutate(content), label="mutated file")
    tmp = tmp_path_factory.mktemp("fuzz")
    tok = load(tmp, name, content)
    if tok is not None:
        texts = PROBES + [data.draw(hostile_text, label="text")]
        check_model(tok, tmp, texts)


JSON_SEEDS = ["hf_ranks", "hf_trained", "hf_custom", "tekken", "tekken_listed", "lib"]


@pytest.mark.parametrize("seed", JSON_SEEDS)
@FUZZ
@given(data=st.data())
def test_mutated_json_files_load_or_raise_a_tokforge_error(tmp_path_factory, seed, data):
    _fuzz_loader(tmp_path_factory, seed, "json", data)


@pytest.mark.parametrize("seed", [*JSON_SEEDS, "tiktoken", "gguf_bpe", "gguf_spm"])
@FUZZ
@given(data=st.data())
def test_byte_mutated_files_load_or_raise_a_tokforge_error(tmp_path_factory, seed, data):
    _fuzz_loader(tmp_path_factory, seed, "bytes", data)


@FUZZ
@given(data=st.data())
def test_mutated_rank_files_load_or_raise_a_tokforge_error(tmp_path_factory, data):
    _fuzz_loader(tmp_path_factory, "tiktoken", "lines", data)


def test_unmutated_seeds_load_and_keep_their_promises(tmp_path):
    for seed, (name, content) in seed_files().items():
        tok = load(tmp_path, name, content)
        assert tok is not None, seed
        check_model(tok, tmp_path, PROBES)


def test_kept_fuzz_regressions_still_pass(tmp_path):
    """Each file in tests/fuzz_regressions/ once failed the properties above."""
    files = sorted(REGRESSIONS.iterdir())
    assert files, "the regression inputs are missing"
    for f in files:
        if f.suffix == ".md":
            continue
        tok = load(tmp_path, f.name.split("--", 1)[-1], f.read_bytes())
        if tok is not None:
            check_model(tok, tmp_path, PROBES)


# ---- dynamic merging and byte probabilities on hostile batches --------------------------------
@FUZZ
@given(
    seqs=st.lists(st.lists(st.integers(-3, 600), max_size=30), max_size=8),
    min_count=st.integers(-2, 3),
    max_merges=st.none() | st.integers(-1, 50),
    word=st.sampled_from(["word", "none", "whitespace", "bogus"]),
    per_sample=st.booleans(),
)
def test_merge_batch_merges_or_raises_a_tokforge_error(seqs, min_count, max_merges, word,
                                                       per_sample):
    from tokforge.dynamic import merge_batch

    tok = Tokenizer.from_json_str(seed_files()["hf_trained"][1].decode())
    try:
        r = merge_batch(seqs, tokenizer=tok, min_count=min_count, max_merges=max_merges,
                        word_boundaries=word, per_sample=per_sample)
    except tokforge.TokforgeError:
        return
    back = r.expand()
    assert [b.tolist() for b in back] == seqs
    assert r.num_units == len(r.units)


@pytest.fixture(scope="module")
def byte_lm():
    from tokforge.byte_probs import ByteLM
    from tokforge.lm import NGramLM

    tok = Tokenizer.from_json_str(seed_files()["hf_trained"][1].decode())
    text = (Path(__file__).resolve().parents[1] / "corpora" / "en.txt").read_text()
    ids = [tok.encode_ordinary(line) for line in text.splitlines()]
    lm = NGramLM(vocab_size=tok.vocab_size + 1, eos_id=tok.vocab_size, order=2).fit(ids)
    return ByteLM(lm, tok)


@FUZZ
@given(data=st.binary(max_size=48), cut=st.integers(0, 48))
def test_byte_probabilities_of_any_bytes_are_a_distribution(byte_lm, data, cut):
    try:
        state = byte_lm.start(data[:cut])
        for b in data[cut:cut + 3]:
            p = byte_lm.next_byte_probs(state)
            assert p.shape == (257,) and np.isfinite(p).all() and abs(p.sum() - 1) < 1e-9
            state = byte_lm.advance(state, b)
    except tokforge.TokforgeError:
        pass  # a prefix the model gives no probability (e.g. a byte it never saw)
