"""The bad-input catalogue: every input tokforge refuses, with its exception class and message.

Each row of a ``CATALOGUE_*`` table is one hostile input (what a user, a corrupt file or a typo
gives), the exception it must raise and a regex its message must match. Inputs that once
aborted the process (allocations sized by a number from the caller or the file) or hung it
(threads, endless devices) run in a subprocess under a memory cap and a timeout, so a
regression fails this test instead of killing or stalling the run.

Rules the tables follow (the README's "Errors" section says the same):

- sizes, counts, ids, ranks and thread counts out of range: ``InputError`` (``VocabError`` for an
  id that a vocabulary does not have), naming the argument and the value; never an
  ``OverflowError``, never an allocation sized by the value;
- a single ``str`` where a list of str is expected (``special_tokens="<a>"``, ``texts="..."``)
  and non-str elements: ``InputError`` naming the index (a str is never split into characters);
- an argument of the wrong type altogether (``encode(5)``): ``TypeError`` naming the argument
  (Python's convention, raised by the bindings);
- a pattern that looks like a name (letters, digits, ``_-.``) and is not a preset:
  ``PatternError`` (``"gpt4"``, ``"cl100k_base"``): write ``"(?:gpt4)"`` for the literal regex;
- a tokenizer file that is malformed: ``FormatError`` naming the file and the field (or line,
  or byte offset); a pipe or device given as a tokenizer file: ``InputError``;
- ``save()`` over a path that is not a regular file: ``InputError`` (symlinks are written
  through); new files get ``0o666`` less the umask, replaced files keep their mode.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
import tokforge
from tokforge import (
    FormatError,
    InputError,
    PatternError,
    Tokenizer,
    TrainingError,
    VocabError,
    lib_model,
)
from tokforge.dynamic import merge_batch
from tokforge.lib_model import LibConfig


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(texts=["hello world, the cat sat"] * 20, vocab_size=270,
                           special_tokens=["<s>"], pattern="gpt2")


def _train(**kw):
    return Tokenizer.train(texts=kw.pop("texts", ["ab ab cd"] * 5), **{"vocab_size": 300, **kw})


def _lib(**kw):
    steps = kw.pop("steps", 3)
    return lib_model.train(texts=["ab cd ef"] * 5, vocab_size=kw.pop("vocab_size", None),
                           config=LibConfig(steps=steps, **kw))


def _byte_lm(tok, *, eos_id=None, **kw):
    import numpy as np
    from tokforge.byte_probs import ByteLM

    class Uniform:  # a token LM: uniform over the tokenizer's ids and EOS
        vocab_size = tok.vocab_size + 1
        eos_id = tok.vocab_size

        def next_logprobs(self, prefixes):
            return np.full((len(prefixes), self.vocab_size), -np.log(self.vocab_size))

    lm = Uniform()
    if eos_id is not None:
        lm.eos_id = eos_id
    return ByteLM(lm, tok, **kw)


BYTES = {bytes([b]): b for b in range(256)}

# ---- arguments of the Python API: (call, exception, message regex) -------------------------
CATALOGUE_ARGS = [
    # training sizes and counts
    (lambda t: _train(vocab_size=-1), InputError, r"vocab_size=-1 is out of range"),
    (lambda t: _train(vocab_size=2**70), InputError, r"vocab_size=1180591620717411303424 is out"),
    (lambda t: _train(vocab_size=2**33), TrainingError, r"vocab_size=8589934592 is too large"),
    (lambda t: _train(vocab_size=257, special_tokens=["<a>", "<b>"]), TrainingError, r"256"),
    (lambda t: _train(min_frequency=-1), InputError, r"min_frequency=-1 is out of range"),
    (lambda t: _train(min_frequency=2**64), InputError, r"min_frequency=18446744073709551616"),
    (lambda t: _train(num_threads=0), InputError, r"num_threads must be at least 1, got 0"),
    (lambda t: _train(num_threads=-1), InputError, r"num_threads must be at least 1, got -1"),
    (lambda t: _train(num_threads=2**70), InputError, r"num_threads=1180591620717411303424 is "
                                                      r"more than the \d+ threads"),
    (lambda t: _train(num_threads=1.5), TypeError, r"float"),
    (lambda t: _train(tie_order="random"), InputError, r"tie_order"),
    (lambda t: _train(errors="surrogateescape"), InputError, r"errors="),
    (lambda t: _train(algorithm="wordpiece"), InputError, r"algorithm='wordpiece'"),
    (lambda t: Tokenizer.train(vocab_size=300), InputError, r"files=\.\.\. or texts="),
    # lists of strings
    (lambda t: _train(special_tokens="<a>"), InputError,
     r"special_tokens must be a list of str, not one str \(write \['<a>'\]\)"),
    (lambda t: _train(special_tokens=["<a>", 5]), InputError, r"special_tokens\[1\] is int"),
    (lambda t: _train(special_tokens=["<s>", "<s>"]), TrainingError, r"twice"),
    (lambda t: _train(special_tokens=[""]), TrainingError, r"empty string"),
    (lambda t: _train(texts="just one string"), InputError, r"not a single str"),
    (lambda t: _train(texts=["a", 3]), InputError, r"texts\[1\] is int, not str"),
    (lambda t: _train(texts=["ok", "bad \ud800"]), InputError, r"texts\[1\].*surrogate"),
    # patterns
    (lambda t: _train(pattern="gpt4"), PatternError, r"unknown preset name; the presets are"),
    (lambda t: _train(pattern="cl100k_base"), PatternError, r'did you mean "cl100k"'),
    (lambda t: _train(pattern="o200k-base"), PatternError, r'did you mean "o200k"'),
    (lambda t: _train(pattern=""), PatternError, r"the pattern is empty"),
    (lambda t: _train(pattern="(?<bad"), PatternError, r"\(\?<bad"),
    (lambda t: _train(pattern=5), TypeError, r"str"),
    (lambda t: tokforge.hf_pattern("gpt4"), PatternError, r"unknown preset name"),
    # LiB
    (lambda t: _lib(steps=-1), InputError, r"steps=-1 is out of range"),
    (lambda t: _lib(steps=2**64), InputError, r"steps=18446744073709551616 is out of range"),
    (lambda t: _lib(article_len=0), InputError, r"article_len=0 is out of range"),
    (lambda t: _lib(life=2**40), InputError, r"life=1099511627776 is out of range"),
    (lambda t: _lib(max_chunk_len=-3), InputError, r"max_chunk_len=-3 is out of range"),
    (lambda t: _lib(seed=2**70), InputError, r"seed=1180591620717411303424 is out of range"),
    (lambda t: _lib(vocab_size=2**40), InputError, r"vocab_size=1099511627776 is out of range"),
    (lambda t: _lib(vocab_size=10**9), TrainingError, r"fewer than the 999999744"),
    (lambda t: _lib(steps=None, epochs=float("inf")), InputError, r"epochs=inf"),
    (lambda t: _lib(pretokenize="gpt4"), PatternError, r"unknown preset name"),
    (lambda t: _lib(segmenter="longest"), InputError, r"longest"),
    (lambda t: lib_model.train(texts=["a"], vocab_size=None, config=5), InputError,
     r"config must be a LibConfig, not int"),
    (lambda t: lib_model.train(sentences="abc", vocab_size=None), InputError,
     r"sentences must be a list of str, not one str"),
    (lambda t: lib_model.train(texts=["ab", 5], vocab_size=None), InputError,
     r"texts\[1\] is int"),
    (lambda t: lib_model.train(texts=["a"], vocab_size=None, special_tokens="<a>"), InputError,
     r"special_tokens must be a list of str"),
    (lambda t: lib_model.apply(["a"], "abc"), InputError, r"sentences must be a list of str"),
    (lambda t: lib_model.learn("abc", steps=2), InputError, r"sentences must be a list of str"),
    # encoding
    (lambda t: t.encode_batch(["a", 5]), InputError, r"texts\[1\] is int, not str"),
    (lambda t: t.encode_batch("hello"), InputError, r"texts must be a list of str, not one str"),
    (lambda t: t.encode_batch_numpy(["a", None]), InputError, r"texts\[1\] is NoneType"),
    (lambda t: t.encode_batch([b"a"]), InputError, r"texts\[0\] is bytes"),
    (lambda t: t.encode_batch(["a"], num_threads=100_000), InputError,
     r"num_threads=100000 is more than the \d+ threads tokforge starts"),
    (lambda t: t.encode_batch_numpy(["a"], num_threads=-1), InputError, r"at least 1, got -1"),
    (lambda t: t.encode("a", allowed_special="<s>"), InputError,
     r"allowed_special must be a list of str, not one str"),
    (lambda t: t.encode("a", disallowed_special="<s>"), InputError,
     r"disallowed_special must be a list of str, not one str"),
    # an empty str is refused like any str (the empty-collections shortcut does not take it)
    (lambda t: t.encode_numpy("a", disallowed_special=""), InputError,
     r"disallowed_special must be a list of str, not one str"),
    (lambda t: t.encode("a", allowed_special="", disallowed_special=()), InputError,
     r"allowed_special must be a list of str, not one str"),
    (lambda t: t.encode("a", allowed_special={"<nope>"}), InputError, r"unknown special"),
    (lambda t: t.encode("a <s>"), InputError, r"disallowed"),
    (lambda t: t.encode(5), TypeError, r"str"),
    (lambda t: t.encode_with_offsets("a", unit="words"), InputError, r"unit='words'"),
    (lambda t: t.model.encode("a", [2**40]), VocabError, r"allowed\[0\] = 1099511627776"),
    (lambda t: t.model.find_special("a", [-1]), VocabError, r"ids\[0\] = -1 is outside"),
    # decoding
    (lambda t: t.decode([1, 99999]), VocabError, r"outside"),
    (lambda t: t.decode([-1]), VocabError, r"ids\[0\] = -1 is outside the vocabulary of 270"),
    (lambda t: t.decode([1, 2**70]), VocabError, r"ids\[1\] = 1180591620717411303424 is outside"),
    (lambda t: t.decode([1.5]), TypeError, r"float"),
    (lambda t: t.decode([1], errors="x"), InputError, r"errors='x'"),
    (lambda t: t.id_to_token(2**64), VocabError, r"id 18446744073709551616 is outside"),
    (lambda t: t.id_to_token(-1), VocabError, r"id -1 is outside"),
    # tokenizers from tables
    (lambda t: Tokenizer.from_ranks(BYTES, pattern="gpt2", special_tokens={"<s>": 2**32}),
     InputError, r'special_tokens\["<s>"\] = 4294967296 is not a token id'),
    (lambda t: Tokenizer.from_ranks(BYTES, pattern="gpt2", special_tokens={"<s>": -1}),
     InputError, r'special_tokens\["<s>"\] = -1 is not a token id'),
    (lambda t: Tokenizer.from_ranks(BYTES, pattern="gpt2", special_tokens=["<s>"]), InputError,
     r"special_tokens must be a dict"),
    (lambda t: Tokenizer.from_ranks({**BYTES, b"ab": 2**32}, pattern="gpt2"), InputError,
     r"ranks\[256\] \(rank of \"ab\"\) = 4294967296 is not a token id"),
    (lambda t: Tokenizer.from_ranks({**BYTES, b"ab": 10**9}, pattern="gpt2"), VocabError,
     r"ids go up to 1000000000 for 257 tokens: more than 1048576 ids would be unused"),
    (lambda t: Tokenizer.from_ranks(BYTES, pattern="gpt2", special_tokens={"<s>": 3}),
     VocabError, r"already the rank of a regular token"),
    (lambda t: Tokenizer.from_ranks({b"a": 0}, pattern="gpt2"), VocabError, r"byte 0x00"),
    (lambda t: Tokenizer.from_ranks(BYTES, pattern="cl100k_base"), PatternError,
     r'did you mean "cl100k"'),
    # byte probabilities: the LM's sizes and the context ids
    (lambda t: _byte_lm(t, eos_id=-1), InputError, r"eos_id = -1 is not a token id"),
    (lambda t: _byte_lm(t, eos_id=2**40), InputError, r"eos_id = 1099511627776 is not a token id"),
    (lambda t: _byte_lm(t, row_cache=-1), InputError, r"row_cache=-1 is out of range"),
    (lambda t: _byte_lm(t).start(b"he", context=[-1]), VocabError, r"context\[0\] = -1"),
    # dynamic merging (its own arguments are checked by tokforge.dynamic; threads here)
    (lambda t: merge_batch([[1, 2, 3]], tokenizer=t, num_threads=10**6), InputError,
     r"num_threads=1000000 is more than"),
    (lambda t: Tokenizer.coerce(5), InputError, r"cannot use int as a tokenizer"),
]


@pytest.mark.parametrize("call, error, message", CATALOGUE_ARGS,
                         ids=[f"args{i}" for i in range(len(CATALOGUE_ARGS))])
def test_bad_argument_raises_its_error(tok, call, error, message):
    with pytest.raises(error, match=message):
        call(tok)


def test_out_of_range_values_are_never_bare_overflow_errors(tok):
    """Every integer argument of the API, given values around the edges of the native types:
    the answer is a value or a TokforgeError, never OverflowError (the class aborts used to
    sit next to)."""
    calls = {
        "vocab_size": lambda v: _train(vocab_size=v),
        "min_frequency": lambda v: _train(min_frequency=v, vocab_size=260),
        "num_threads": lambda v: tok.encode_batch(["a"], num_threads=v),
        "decode": lambda v: tok.decode([v]),
        "id_to_token": lambda v: tok.id_to_token(v),
        "is_special": lambda v: tok.model.is_special(v),
        "special id": lambda v: Tokenizer.from_ranks(BYTES, pattern="gpt2",
                                                     special_tokens={"<x>": v}),
        "rank": lambda v: Tokenizer.from_ranks({**BYTES, b"ab": v}, pattern="gpt2"),
        "lib article_len": lambda v: _lib(article_len=v),
        "lib life": lambda v: _lib(life=v),
    }
    edges = [-(2**64), -(2**63) - 1, -(2**63), -(2**32), -1, 2**31, 2**32 - 1, 2**32, 2**63 - 1,
             2**63, 2**64, 2**200]
    for name, call in calls.items():
        for v in edges:
            try:
                call(v)
            except tokforge.TokforgeError:
                pass
            except Exception as e:  # pragma: no cover - the failure being tested for
                pytest.fail(f"{name}={v}: {type(e).__name__}: {e}")


# ---- tokenizer files: (file name, content, exception, message regex) -----------------------
def _hf(tok_: Tokenizer | None, edit, text: str | None = None) -> str:
    """A tokenizer's JSON (or `text`), edited."""
    d = json.loads(text if tok_ is None else tok_.to_json())
    edit(d)
    return json.dumps(d)


def _set(path: list, value):
    def edit(d):
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


def _rank_file(extra: str = "") -> str:
    return "".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(256)) + extra


def _tekken(**config) -> str:
    vocab = [{"rank": b, "token_bytes": base64.b64encode(bytes([b])).decode()} for b in range(256)]
    cfg = {"pattern": r"\s+|\S+", "default_vocab_size": 259, "default_num_special_tokens": 3}
    cfg.update(config)
    return json.dumps({"config": cfg, "vocab": vocab})


def _gguf(**override) -> bytes:
    """A tiny vocab-only GGUF file (256 byte-level tokens, `ab`, a control token), with keys
    replaced (a ``Typed``) or dropped (``None``)."""
    from reference import gguf_ref as g
    from reference.bpe_train import bytes_to_unicode

    chars = bytes_to_unicode()
    kv = {
        "tokenizer.ggml.model": g.Typed(g.STRING, "gpt2"),
        "tokenizer.ggml.pre": g.Typed(g.STRING, "gpt-2"),
        "tokenizer.ggml.tokens": g.Typed(g.ARRAY, [chars[b] for b in range(256)] + ["ab", "<s>"],
                                         g.STRING),
        "tokenizer.ggml.token_type": g.Typed(g.ARRAY, [1] * 257 + [3], g.INT32),
        "tokenizer.ggml.merges": g.Typed(g.ARRAY, ["a b"], g.STRING),
        "tokenizer.ggml.bos_token_id": g.Typed(g.UINT32, 257),
    }
    for k, v in override.items():
        key = "tokenizer.ggml." + k
        if v is None:
            kv.pop(key)
        else:
            kv[key] = v
    return g.write(kv)


def _gguf_rows() -> list[tuple[str, bytes | str, type, str]]:
    import struct

    from reference import gguf_ref as g

    good = _gguf()
    head = good[:16]  # magic, version, tensor count
    k = struct.pack("<Q", 1) + struct.pack("<Q", 1) + b"k"  # one pair, key "k"
    return [
        ("m.gguf", good[:200], FormatError, r"GGUF metadata: key \"tokenizer\.ggml\.tokens\": "
         r"array length of 258 cannot fit in the 44 bytes left \(byte offset 156\)"),
        ("m.gguf", good[:2300], FormatError,
         r"key \"tokenizer\.ggml\.tokens\": (truncated|string length of \d+ cannot fit)"),
        ("m.gguf", good[:-2], FormatError, r"key \"tokenizer\.ggml\.bos_token_id\": truncated"),
        ("m.gguf", head + struct.pack("<Q", 2**62), FormatError,
         r"key/value count of 4611686018427387904 cannot fit in the 0 bytes left"),
        ("m.gguf", head + k + struct.pack("<IIQ", 9, 8, 2**60), FormatError,
         r"key \"k\": array length of 1152921504606846976 cannot fit"),
        ("m.gguf", head + k + struct.pack("<IQ", 8, 2**40), FormatError,
         r"key \"k\": string length of 1099511627776 cannot fit"),
        ("m.gguf", head + k + struct.pack("<I", 13), FormatError, r"unknown value type 13"),
        ("m.gguf", head + k + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 12, FormatError,
         r"arrays nested deeper than 8"),
        ("m.gguf", head + k + struct.pack("<IQ", 8, 1) + b"\xff", FormatError,
         r"a string is not UTF-8"),
        ("m.gguf", b"GGUF" + struct.pack("<IQQ", 1, 0, 0), FormatError,
         r"GGUF version 1 is not supported"),
        ("m.gguf", b"GGUF" + struct.pack(">IQQ", 3, 0, 0), FormatError, r"big-endian"),
        ("m.gguf", _gguf(model=None), FormatError,
         r"\"tokenizer\.ggml\.model\": missing: the file has no tokenizer"),
        ("m.gguf", _gguf(model=g.Typed(g.STRING, "bert")), FormatError,
         r"\"bert\" is a WordPiece vocabulary"),
        ("m.gguf", _gguf(model=g.Typed(g.STRING, "t5")), FormatError,
         r"\"t5\" is a Unigram vocabulary"),
        ("m.gguf", _gguf(model=g.Typed(g.STRING, "rwkv")), FormatError,
         r"tokenizer model \"rwkv\" is not supported"),
        ("m.gguf", _gguf(model=g.Typed(g.UINT8, 1)), FormatError,
         r"tokenizer\.ggml\.model\": is an unsigned integer, not a string"),
        ("m.gguf", _gguf(pre=g.Typed(g.STRING, "kimi-k2")), FormatError,
         r"tokenizer\.ggml\.pre\": pre-tokenizer \"kimi-k2\" is not one tokforge knows"),
        ("m.gguf", _gguf(tokens=g.Typed(g.STRING, "abc")), FormatError,
         r"tokenizer\.ggml\.tokens\": is a string, not an array"),
        ("m.gguf", _gguf(tokens=None), FormatError,
         r"tokenizer\.ggml\.tokens\": missing"),
        ("m.gguf", _gguf(token_type=g.Typed(g.ARRAY, [1] * 3, g.INT32)), FormatError,
         r"token_type\": 3 entries for 258 tokens"),
        ("m.gguf", _gguf(token_type=g.Typed(g.ARRAY, [1] * 257 + [9], g.INT32)), FormatError,
         r"token_type\": \[257\] = .* is not a token type"),
        ("m.gguf", _gguf(merges=g.Typed(g.ARRAY, ["a zz"], g.STRING)), FormatError,
         r"merges\": \[0\] \"a zz\" names \"zz\", which is not a token"),
        ("m.gguf", _gguf(merges=g.Typed(g.ARRAY, ["ab"], g.STRING)), FormatError,
         r"merges\": \[0\] \"ab\" is not \"left right\""),
        ("m.gguf", _gguf(merges=g.Typed(g.ARRAY, ["b c"], g.STRING)), FormatError,
         r"GGUF tokenizer: merge #0 gives \"bc\", which is not in the vocabulary"),
        ("m.gguf", _gguf(bos_token_id=g.Typed(g.UINT32, 10**6)), FormatError,
         r"bos_token_id\": id 1000000 is outside the vocabulary of 258"),
        ("m.gguf", _gguf(model=g.Typed(g.STRING, "llama")), FormatError,
         r"tokenizer\.ggml\.scores\": missing"),
    ]


def _catalogue_files(tok_: Tokenizer, lib_: Tokenizer) -> list[tuple[str, bytes | str, type, str]]:
    good_lib = json.loads(lib_.to_json())
    return _gguf_rows() + [
        # tokenizer.json
        ("tokenizer.json", _hf(tok_, lambda d: d["model"]["vocab"].update({"Ġzz": 2**32})),
         FormatError, r"ids go up to 4294967296 .* more than 1048576 ids would be unused"),
        ("tokenizer.json", _hf(tok_, lambda d: d["model"]["vocab"].update({"Ġzz": 2**64 - 1})),
         FormatError, r"ids go up to 18446744073709551615"),
        ("tokenizer.json", _hf(tok_, lambda d: d["model"]["vocab"].update({"Ġzz": 10**8})),
         FormatError, r"ids go up to 100000000"),
        ("tokenizer.json", _hf(tok_, _set(["added_tokens", 0, "id"], 2**32)), FormatError,
         r"added_tokens\[0\]\.id = 4294967296 is not a token id"),
        ("tokenizer.json", _hf(tok_, _set(["added_tokens", 0, "id"], 10**9)), FormatError,
         r"ids go up to 1000000000"),
        ("tokenizer.json", _hf(tok_, _set(["added_tokens", 0, "id"], -1)), FormatError,
         r"added_tokens\[0\] lacks content or id"),
        ("tokenizer.json", _hf(tok_, lambda d: d["model"]["vocab"].update({"Ġzz": -4})),
         FormatError, r"model\.vocab\[\"Ġzz\"\] is not an integer id"),
        ("tokenizer.json", _hf(tok_, lambda d: d["model"]["vocab"].update({"Ġzz": 1.5})),
         FormatError, r"model\.vocab\[\"Ġzz\"\] is not an integer id"),
        ("tokenizer.json", _hf(tok_, lambda d: d["model"]["merges"].append(["Ġ", "qq"])),
         FormatError, r"model\.merges\[\d+\] names \"qq\", which is not in model\.vocab"),
        ("tokenizer.json", _hf(tok_, _set(["model", "merges"], {})), FormatError,
         r"model\.merges is not a list"),
        ("tokenizer.json", _hf(tok_, _set(["model"], 5)), FormatError, r"model"),
        ("tokenizer.json", _hf(tok_, _set(["pre_tokenizer", "pretokenizers", 0, "pattern"],
                                          {"Regex": "("})), FormatError,
         r"pre_tokenizer Split pattern: invalid pre-tokenization regex \"\(\""),
        ("tokenizer.json", '{"model": "\xff"}'.encode("latin-1"), FormatError,
         r"not UTF-8 text \(byte offset 11\)"),
        ("tokenizer.json", "{not json", FormatError, r"not valid JSON"),
        ("tokenizer.json", "", FormatError, r"neither a tokenizer\.json, a \.tiktoken rank file, a SentencePiece \.model file nor a GGUF"),
        ("tokenizer.json", '{"normalizer": {"type": "BertNormalizer"}, "model": {"type": "BPE", '
         '"vocab": {}, "merges": []}, "decoder": {"type": "Fuse"}}', FormatError, r"BertNormalizer"),
        ("tokenizer.json", '{"normalizer": null, "model": {"type": "WordPiece"}}', FormatError,
         r"WordPiece"),
        # .tiktoken
        ("x.tiktoken", _rank_file("YWI= 4294967295\n"), FormatError,
         r"rank 4294967295 for 257 tokens: more than 1048576 ids would be unused"),
        ("x.tiktoken", _rank_file("YWI= 4294967296\n"), FormatError,
         r"line 257: rank is not an integer"),
        ("x.tiktoken", _rank_file("YWI= -1\n"), FormatError, r"line 257: rank is not an integer"),
        ("x.tiktoken", _rank_file("YWI= 3\n"), FormatError, r"rank 3 appears twice"),
        ("x.tiktoken", _rank_file("!!!! 300\n"), FormatError, r"line 257: bad base64"),
        ("x.tiktoken", _rank_file("YWI=\n"), FormatError, r"line 257: expected `base64 rank`"),
        ("x.tiktoken", _rank_file().encode() + b"\xff\xfe 1\n", FormatError,
         rf"not UTF-8 text \(byte offset {len(_rank_file())}\)"),
        # tekken
        ("t.json", _tekken(default_num_special_tokens=10**9, default_vocab_size=10**9 + 256),
         FormatError, r"config\.default_num_special_tokens 1000000000 for 256 vocab entries"),
        ("t.json", _tekken(default_num_special_tokens=-1), FormatError,
         r"config\.default_num_special_tokens is a negative integer, not an integer >= 0"),
        ("t.json", _tekken(default_num_special_tokens=2**70), FormatError,
         r"config\.default_num_special_tokens is a non-integer number"),
        ("t.json", _tekken(default_vocab_size="259"), FormatError,
         r"config\.default_vocab_size is a string"),
        ("t.json", _tekken(default_vocab_size=2), FormatError,
         r"default_num_special_tokens 3 > config\.default_vocab_size 2"),
        ("t.json", json.dumps({"config": {"pattern": "x"}}), FormatError,
         r"config\.default_vocab_size is missing"),
        ("t.json", json.dumps({"config": {"pattern": "x", "default_vocab_size": 1,
                                          "default_num_special_tokens": 1}, "vocab": None}),
         FormatError, r"vocab is null, not a list"),
        ("t.json", _tekken(pattern="("), FormatError, r"config\.pattern: invalid .* regex"),
        ("t.json", _hf(None, lambda d: d["vocab"].pop(0), _tekken()), FormatError,
         r"t\.json: not a tekken tokenizer file \(.*byte 0x00 is not a token|t\.json: byte 0x00"),
        ("x.tiktoken", _rank_file().replace("AA== 0\n", ""), FormatError,
         r"x\.tiktoken: byte 0x00 is not a token"),
        # LiB JSON
        ("lib.json", json.dumps({**good_lib, "units": [1]}), FormatError,
         r"units\[0\] is not a string"),
        ("lib.json", json.dumps({**good_lib, "version": 99}), FormatError,
         r"unsupported version 99"),
        ("lib.json", json.dumps({**good_lib, "special_tokens": [{"id": 2**64, "content": "x"}]}),
         FormatError, r"special_tokens\[0\] needs \"id\" and \"content\""),
        ("lib.json", json.dumps({**good_lib, "pretokenize": "gpt4"}), FormatError,
         r"unknown preset name"),
        ("lib.json", json.dumps({**good_lib, "units": ["a", "a"]}), FormatError, r"lib\.json"),
    ]


def test_bad_tokenizer_files_name_file_and_field(tmp_path, tok):
    lib_ = Tokenizer.train(texts=["ab cd"] * 5, vocab_size=None, algorithm="lib",
                           lib=LibConfig(steps=3))
    rows = _catalogue_files(tok, lib_)
    for i, (name, content, error, message) in enumerate(rows):
        p = tmp_path / str(i) / name
        p.parent.mkdir()
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        with pytest.raises(error, match=message) as e:
            Tokenizer.from_file(p, pattern="gpt2") if name.endswith(".tiktoken") else (
                Tokenizer.from_file(p))
        if error is FormatError:
            assert str(p) in str(e.value), f"row {i}: {e.value}"


def test_paths_that_are_not_files(tmp_path, tok):
    with pytest.raises(FileNotFoundError):
        Tokenizer.from_file(tmp_path / "missing.json")
    with pytest.raises(IsADirectoryError):
        Tokenizer.from_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would block forever: refused before opening
    with pytest.raises(InputError, match="not a regular file"):
        Tokenizer.from_file(fifo)
    with pytest.raises(FileNotFoundError):
        Tokenizer.train([tmp_path / "nope.txt"], vocab_size=300)
    with pytest.raises(InputError, match=r"options|pattern/special_tokens apply to \.tiktoken"):
        p = tmp_path / "t.json"
        tok.save(p)
        Tokenizer.from_file(p, special_tokens={"a": 1})


# ---- aborts and hangs, in a subprocess with a memory cap and a timeout ---------------------
ISOLATED = textwrap.dedent("""
    import json, resource, sys, base64
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # an abort-sized allocation fails
    import tokforge
    from tokforge import Tokenizer
    tok = Tokenizer.train(texts=["hello world"] * 10, vocab_size=260)
    cases = {
        # 10^9 merges asked of a tiny corpus: once a 24 GB merge log up front (abort)
        "vocab_size=10**9": lambda: Tokenizer.train(texts=["ab ab"] * 5, vocab_size=10**9)
            .vocab_size,
        # once 100000 OS threads started (minutes)
        "encode_batch threads": lambda: tok.encode_batch(["a"], num_threads=100000),
        "train threads": lambda: Tokenizer.train(texts=["ab"], vocab_size=300, num_threads=10**5),
        # a tekken file claiming 10^9 special tokens (once a hang filling names)
        "tekken specials": lambda: Tokenizer.from_json_str(json.dumps({"config": {
            "pattern": "x", "default_vocab_size": 10**9 + 256,
            "default_num_special_tokens": 10**9}, "vocab": [
            {"rank": b, "token_bytes": base64.b64encode(bytes([b])).decode()}
            for b in range(256)]})),
        # an id of 10^8 in a small file (once 2.5 GB)
        "hf id 1e8": lambda: Tokenizer.from_ranks(
            {**{bytes([b]): b for b in range(256)}, b"ab": 10**8}, pattern="gpt2"),
        # /dev/zero never ends: refused, not read
        "from_file /dev/zero": lambda: Tokenizer.from_file("/dev/zero"),
    }
    out = {}
    for name, call in cases.items():
        try:
            out[name] = ["ok", repr(call())[:60]]
        except Exception as e:
            out[name] = [type(e).__name__, str(e)[:200]]
    print(json.dumps(out))
""")


def test_inputs_that_used_to_abort_or_hang_are_bounded():
    r = subprocess.run([sys.executable, "-c", ISOLATED], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert got["vocab_size=10**9"] == ["ok", "258"]
    for name in ("encode_batch threads", "train threads"):
        assert got[name][0] == "InputError" and "more than" in got[name][1], got[name]
    assert got["tekken specials"][0] == "FormatError", got
    assert "default_num_special_tokens" in got["tekken specials"][1]
    assert got["hf id 1e8"][0] == "VocabError" and "unused" in got["hf id 1e8"][1]
    assert got["from_file /dev/zero"] == ["InputError", got["from_file /dev/zero"][1]]
    assert "not a regular file" in got["from_file /dev/zero"][1]


# ---- saving ---------------------------------------------------------------------------------
def test_save_never_overwrites_without_asking(tmp_path, tok):
    p = tmp_path / "t.json"
    p.write_text("user data")
    with pytest.raises(FileExistsError):
        tok.save(p)
    assert p.read_text() == "user data"
    tok.save(p, overwrite=True)
    assert Tokenizer.from_file(p).merges == tok.merges


def test_save_mode_follows_the_umask_and_the_replaced_file(tmp_path, tok):
    old = os.umask(0o027)
    try:
        tok.save(tmp_path / "new.json")
        assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o640
        os.umask(0o022)
        tok.save(tmp_path / "new2.json")
        assert stat.S_IMODE(os.stat(tmp_path / "new2.json").st_mode) == 0o644
        kept = tmp_path / "kept.json"
        kept.write_text("x")
        os.chmod(kept, 0o604)
        tok.save(kept, overwrite=True)
        assert stat.S_IMODE(os.stat(kept).st_mode) == 0o604
        tok.save_tiktoken(tmp_path / "r.tiktoken")
        assert stat.S_IMODE(os.stat(tmp_path / "r.tiktoken").st_mode) == 0o644
    finally:
        os.umask(old)
    # no temporary file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kept.json", "new.json", "new2.json", "r.tiktoken"]


def test_save_refuses_non_regular_paths_and_writes_through_symlinks(tmp_path, tok):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        tok.save(fifo, overwrite=True)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(InputError, match="not a regular file"):
        tok.save(tmp_path, overwrite=True)
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    tok.save(link, overwrite=True)
    assert link.is_symlink() and Tokenizer.from_file(real).merges == tok.merges
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "sub" / "target.json")
    with pytest.raises(FileExistsError):
        tok.save(dangling)
    tok.save(dangling, overwrite=True)
    assert (tmp_path / "sub" / "target.json").is_file() and dangling.is_symlink()


# ---- text files -----------------------------------------------------------------------------
def test_invalid_utf8_file_names_file_and_offset(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("caf\u00e9 ok\n".encode("utf-8") + b"na\xefve\n")
    with pytest.raises(InputError, match=r"latin1\.txt.*byte offset 11"):
        Tokenizer.train([p], vocab_size=300)


def test_invalid_utf8_can_be_replaced_or_ignored(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"abc\xffabc abc\xfe abc")
    rep = Tokenizer.train([p], vocab_size=300, errors="replace")
    ign = Tokenizer.train([p], vocab_size=300, errors="ignore")
    assert rep.merges != ign.merges  # U+FFFD takes part in the replaced text only


def test_empty_corpus_is_a_training_error(tmp_path):
    with pytest.raises(TrainingError, match="empty"):
        Tokenizer.train(texts=[], vocab_size=300)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(TrainingError, match="empty"):
        Tokenizer.train([tmp_path / "empty.txt"], vocab_size=300)
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match=r"no \*\.txt files"):
        Tokenizer.train([tmp_path / "d"], vocab_size=300)


# ---- the CLI --------------------------------------------------------------------------------
def test_cli_stops_quietly_when_its_reader_goes_away(tmp_path, tok):
    """`tokforge tokenize big.txt | head`: exit status 141 (SIGPIPE's), nothing on stderr."""
    tok.save(tmp_path / "t.json")
    (tmp_path / "big.txt").write_text("hello world, the cat sat. " * 200_000)
    with subprocess.Popen([sys.executable, "-m", "tokforge", "tokenize", "-t",
                           str(tmp_path / "t.json"), str(tmp_path / "big.txt")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        assert len(p.stdout.read(100)) == 100
        p.stdout.close()
        err = p.stderr.read()
        assert p.wait(timeout=60) == 141 and err == b"", err


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["train", "--vocab-size", "300", "--threads", "100000"], 1, "num_threads=100000 is more"),
        (["train", "--vocab-size", "-5"], 2, "-5 is not a positive integer"),
        (["train", "--vocab-size", "300", "--pattern", "gpt4"], 2, 'unknown preset "gpt4"'),
        (["tokenize", "-t", "/dev/null"], 1, "not a regular file"),
        (["tokenize", "-t", "missing.json"], 1, "no such tokenizer file"),
    ],
)
def test_cli_reports_bad_input_in_one_line(tmp_path, corpora_dir, args, status, message):
    """Failures of the work exit 1 with one line; bad arguments are usage errors (exit 2)."""
    if args[0] == "train":
        args = [*args, "-q", "-o", str(tmp_path / "o.json"), str(corpora_dir / "en.txt")]
    r = subprocess.run([sys.executable, "-m", "tokforge", *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == status, r.stderr
    prefix = "tokforge: error: " if status == 1 else "usage: tokforge"
    assert r.stderr.startswith(prefix) and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o.json").exists()
