"""GGUF tokenizers (docs/bpe.md §12) against llama.cpp's own tokenizer test vectors.

llama.cpp ships vocab-only GGUF files with ``.gguf.inp`` (cases separated by a
``__ggml_vocab_test__`` line) and ``.gguf.out`` (one line of ids per case) and checks them in
``tests/test-tokenizer-0.cpp`` with ``common_tokenize(ctx, text, add_special=false,
parse_special=false)``: no BOS, control tokens are text, user-defined tokens are matched. tokforge
gives the same ids with the user-defined tokens allowed as special tokens and nothing refused.
The files come from the pinned llama-cpp-python sdist (tests/vocabularies.py), never skipped.
"""

from __future__ import annotations

import base64
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import tiktoken
import tokenizers
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import gguf_ref
from tokforge import FormatError, Tokenizer
from vocabularies import fetch, fetch_llama_cpp_vocab

SEP = "\n__ggml_vocab_test__\n"

#: every vocabulary with test vectors whose model tokforge implements (byte-level BPE: gpt2;
#: SentencePiece-style BPE: llama, gemma4)
WITH_VECTORS = [
    "command-r", "deepseek-coder", "deepseek-llm", "falcon", "gemma-4", "gpt-2", "llama-bpe",
    "llama-spm", "mpt", "phi-3", "qwen2", "qwen35", "refact", "starcoder",
]
SENTENCEPIECE = ("gemma-4", "llama-spm", "phi-3")
#: vocabularies without vectors that load all the same (no ``tokenizer.ggml.pre``: "default")
WITHOUT_VECTORS = ["aquila", "baichuan", "gpt-neox"]
#: (vocabulary, message): the models tokforge does not implement, each refused by name
REFUSED = [
    ("bert-bge", r'"bert" is a WordPiece vocabulary'),
    ("nomic-bert-moe", r'"t5" is a Unigram vocabulary'),
]


def cases(path: Path) -> list[tuple[str, list[int]]]:
    """The (text, ids) pairs of a vocabulary's test vectors, as test-tokenizer-0.cpp reads them."""
    raw = Path(str(path) + ".inp").read_text(encoding="utf-8")
    texts = raw.split(SEP)
    if texts and texts[-1] == "":
        texts.pop()
    lines = Path(str(path) + ".out").read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert len(texts) == len(lines) > 0
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]


def user_defined(path: Path) -> set[str]:
    """Texts of the user-defined tokens (llama.cpp matches them even without parse_special)."""
    md = gguf_ref.read_metadata(path.read_bytes())
    types = md.get("tokenizer.ggml.token_type", [])
    return {md["tokenizer.ggml.tokens"][i] for i, t in enumerate(types) if t == gguf_ref.USER_DEFINED}


def llama_cpp_ids(tok: Tokenizer, allowed: set[str], text: str) -> list[int]:
    return tok.encode(text, allowed_special=allowed, disallowed_special=())


@pytest.mark.parametrize("name", WITH_VECTORS)
def test_llama_cpp_test_vectors_give_llama_cpps_ids(name):
    path = fetch_llama_cpp_vocab(name)
    tok = Tokenizer.from_gguf(path)
    allowed = user_defined(path)
    vectors = cases(path)
    wrong = [(text, want, got) for text, want in vectors
             if (got := llama_cpp_ids(tok, allowed, text)) != want]
    assert not wrong, f"{len(wrong)}/{len(vectors)} cases differ, first: {wrong[0]}"
    assert tok.kind == ("sentencepiece" if name in SENTENCEPIECE else "bpe")


@pytest.mark.parametrize("name", ["deepseek-llm", "deepseek-coder", "falcon", "llama-bpe",
                                  "llama-spm", "starcoder"])
def test_saved_tokenizer_json_gives_llama_cpps_ids_in_hf_and_tokforge(name):
    """A GGUF tokenizer saved as tokenizer.json (a Split per regex of its sequence) loads in HF
    ``tokenizers`` and back in tokforge with llama.cpp's ids."""
    path = fetch_llama_cpp_vocab(name)
    tok = Tokenizer.from_gguf(path)
    text = tok.to_json()
    hf = tokenizers.Tokenizer.from_str(text)
    back = Tokenizer.from_json_str(text)
    allowed = user_defined(path)
    for case, want in cases(path):
        assert llama_cpp_ids(back, allowed, case) == want, case
        # HF matches every added token in text, control ones too; the vectors hold none
        assert hf.encode(case, add_special_tokens=False).ids == want, case


@pytest.mark.parametrize("name", WITH_VECTORS + WITHOUT_VECTORS)
def test_gguf_vocabularies_load_by_detection_and_round_trip(name, corpora_dir):
    path = fetch_llama_cpp_vocab(name)
    tok = Tokenizer.from_file(path)
    md = gguf_ref.read_metadata(path.read_bytes())
    n = len(md["tokenizer.ggml.tokens"])
    # ids beyond the file's are the single bytes it lacks (UTF-8's unused ones and falcon's)
    assert n <= tok.vocab_size <= n + 256
    text = "".join((corpora_dir / f).read_text(encoding="utf-8")[:2000]
                   for f in ("en.txt", "code-python.txt", "ja.txt", "ar.txt"))
    ids = tok.encode(text, disallowed_special=())
    assert max(ids) < n
    # byte-level BPE is lossless; the SentencePiece ones drop the prefix space they add
    assert tok.decode(ids) == text


def test_gpt2_gguf_gives_tiktokens_gpt2_ids(corpora_dir):
    tok = Tokenizer.from_gguf(fetch_llama_cpp_vocab("gpt-2"))
    ref = gpt2_tiktoken()
    assert tok.pattern_name == "gpt2"  # llama.cpp's GPT-2 regex runs on the preset scanner
    for p in sorted(corpora_dir.rglob("*.txt"))[:40]:
        text = p.read_text(encoding="utf-8")
        assert tok.encode(text, disallowed_special=()) == ref.encode(
            text, disallowed_special=()), p.name


def gpt2_tiktoken() -> tiktoken.Encoding:
    """tiktoken's gpt2 encoding from openai-whisper's copy of its rank file."""
    ranks = {}
    for line in fetch("gpt2.tiktoken").read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    pat = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
    return tiktoken.Encoding("gpt2", pat_str=pat, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def test_llama_spm_gguf_gives_hfs_llama2_ids(corpora_dir):
    """The Llama-2 vocabulary in GGUF and in HF's tokenizer.json: the same ids everywhere."""
    tok = Tokenizer.from_gguf(fetch_llama_cpp_vocab("llama-spm"))
    hf = tokenizers.Tokenizer.from_file(str(fetch("llama2_tokenizer.json")))
    for p in sorted(corpora_dir.rglob("*.txt"))[:40]:
        text = p.read_text(encoding="utf-8")
        # HF matches its added tokens (<unk>, <s>, </s>) in text: allow them here too
        assert tok.encode(text, allowed_special="all") == hf.encode(
            text, add_special_tokens=False).ids, p.name


@settings(deadline=None)
@given(st.lists(st.sampled_from(list("ab AZ09'\n\t.,é中\u00a0😀") + ["  ", "ing", "▁"]),
               max_size=30).map("".join))
def test_llama_spm_gguf_matches_hf_on_random_text(text):
    tok = _llama_spm()
    hf = _llama2_hf()
    assert tok.encode(text) == hf.encode(text, add_special_tokens=False).ids


_CACHE: dict[str, object] = {}


def _llama_spm() -> Tokenizer:
    if "spm" not in _CACHE:
        _CACHE["spm"] = Tokenizer.from_gguf(fetch_llama_cpp_vocab("llama-spm"))
    return _CACHE["spm"]


def _llama2_hf():
    if "hf" not in _CACHE:
        _CACHE["hf"] = tokenizers.Tokenizer.from_file(str(fetch("llama2_tokenizer.json")))
    return _CACHE["hf"]


@pytest.mark.parametrize(("name", "message"), REFUSED)
def test_wordpiece_and_unigram_models_are_refused_by_name(name, message):
    path = fetch_llama_cpp_vocab(name)
    with pytest.raises(FormatError, match=message) as e:
        Tokenizer.from_gguf(path)
    assert str(path) in str(e.value)
    with pytest.raises(FormatError, match=message):
        Tokenizer.from_file(path)


def _cut(name: str, **override: gguf_ref.Typed) -> dict[str, gguf_ref.Typed]:
    """The tokenizer keys of a real vocabulary (a vocab-only GGUF of our own)."""
    kv = gguf_ref.read_typed(fetch_llama_cpp_vocab(name).read_bytes())
    keep = {k: v for k, v in kv.items() if k.startswith("tokenizer.ggml.")}
    return {**keep, **override}


@pytest.mark.parametrize("version", [2, 3])
def test_a_gguf_written_by_the_reference_writer_gives_the_same_ids(tmp_path, version):
    src = fetch_llama_cpp_vocab("deepseek-coder")
    p = tmp_path / "cut.gguf"
    p.write_bytes(gguf_ref.write(_cut("deepseek-coder"), version=version))
    a, b = Tokenizer.from_gguf(src), Tokenizer.from_gguf(p)
    allowed = user_defined(p)
    for text, want in cases(src):
        assert llama_cpp_ids(b, allowed, text) == want
        assert a.encode(text, disallowed_special=()) == b.encode(text, disallowed_special=())


def test_unknown_pre_tokenizer_names_are_refused_by_name(tmp_path):
    p = tmp_path / "kimi.gguf"
    p.write_bytes(gguf_ref.write(_cut("gpt-2", **{
        "tokenizer.ggml.pre": gguf_ref.Typed(gguf_ref.STRING, "kimi-k2")})))
    with pytest.raises(FormatError, match=r'tokenizer\.ggml\.pre.*"kimi-k2" is not one tokforge'):
        Tokenizer.from_gguf(p)


def test_tensors_are_never_read(tmp_path):
    """A 64 GB (sparse) model file loads in a process capped at 3 GB: only the metadata is read."""
    p = tmp_path / "model.gguf"
    data = gguf_ref.write(_cut("gpt-2"))
    # claim one tensor, then a sparse hole where its data would be
    data = data[:8] + struct.pack("<Q", 1) + data[16:]
    p.write_bytes(data)
    os.truncate(p, 64 << 30)
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from tokforge import Tokenizer\n"
        "print(Tokenizer.from_file(sys.argv[1]).encode('hello world'))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[31373, 995]"
