"""LiB (Less-is-Better): the Rust learner equals the v2023 reference (golden vectors TV5/TV6 of
docs/lib.md §11, and the Python reference on random corpora); the tokenizer round-trips
every string, is deterministic, saves/loads, and refuses BPE-only operations clearly."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tokforge
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.lib_ref import LibRef, read_sentences
from tokforge import (
    FormatError,
    InputError,
    StoppedError,
    Tokenizer,
    TokforgeError,
    TrainingError,
    lib_model,
)
from tokforge.lib_model import LibConfig

MAX = settings(max_examples=int(os.environ.get("TOKFORGE_MAX_EXAMPLES", 100)), deadline=None)

TV5_SENTS = ["the cat sat on the mat", "the dog sat on the log", "the cat and the dog sat"]
TV5_L = [
    "the cat ", "the ", "og", " the ", "at", "t", " ", " sat", "a", "o", "n", "d",
    "the cat sat o", "at on the mat", "the cat and the dog", " the dog sat",
    "the cat sat on the mat", "the d", "dog", " sat ", " on the ", "l", "log",
    "the cat and the dog sat",
]  # fmt: skip
TV5_CFG = LibConfig.reference(in_rate=0.25, out_rate=0.01, life=3, update_rate=0.1, article_len=3)
UDHR_S = "Everyone has the right to life, liberty and security of person."


def ref_learner(cfg: LibConfig, sentences, steps) -> LibRef:
    m = LibRef(
        in_rate=cfg.in_rate,
        out_rate=cfg.out_rate,
        life=cfg.life,
        update_rate=cfg.update_rate,
        max_chunk_len=cfg.max_chunk_len,
        inspect_context=cfg.inspect_context,
        seed=cfg.seed,
    )
    m.train(list(sentences), steps=steps, article_len=cfg.article_len)
    return m


# ---- golden vectors (docs/lib.md §11) -------------------------------------------------------
def test_tv5_tiny_golden_lexicon_equals_reference_code():
    """TV5 of docs/lib.md §11: the final lexicon, probation and cleaned lexicon, in order."""
    L, P, clean = lib_model.learn(TV5_SENTS, steps=30, config=TV5_CFG)
    assert L == TV5_L
    assert len(P) == 12
    assert clean == TV5_L[:12]
    ref = ref_learner(TV5_CFG, TV5_SENTS, 30)
    assert ref.L == TV5_L and len(ref.P) == 12


def test_tv5_apply_equals_reference_segmentation():
    """TV5 of docs/lib.md §11: the reference segmenter's output."""
    assert lib_model.apply(TV5_L, ["the cat sat on the log"]) == [
        ["the cat sat o", "n", " the ", "log"]
    ]


@pytest.mark.parametrize(
    "out_rate, life, size, on_probation, digest, pieces, clean",
    [
        (
            0.01, 3, 1059, 286,
            "d3d070ca0d358e905547ea36ce465624239ab3f68b19c57831c901de22883df7",
            ["Everyone has the right to ", "lif", "e, ", "li", "ber", "ty and ", "security ",
             "of ", "perso", "n", "."],
            773,
        ),
        (
            0.0001, 10, 1507, 672,
            "b8289381b51d1490274486dc05ce188eb0167db07b9704c038bf4f91fbabda9c",
            ["Everyone has the right to life, ", "liber", "ty and ", "securi", "ty ", "of ",
             "person", "."],
            836,
        ),
    ],
)  # fmt: skip
def test_tv6_udhr_golden_hash_and_segmentation(
    corpora_dir, out_rate, life, size, on_probation, digest, pieces, clean
):
    """TV6 A and B of docs/lib.md §11: sizes, sha256 and segmentation on UDHR English."""
    raw = (corpora_dir / "en.txt").read_bytes()
    assert hashlib.sha256(raw).hexdigest().startswith("36bd2dc2"), "corpora/en.txt is the UDHR"
    sents = read_sentences(raw.decode("utf-8"))
    cfg = LibConfig.reference(out_rate=out_rate, life=life, article_len=20)
    L, P, cl = lib_model.learn(sents, steps=300, config=cfg)
    assert len(L) == size
    assert len(P) == on_probation
    assert hashlib.sha256("\n".join(L).encode()).hexdigest() == digest
    assert lib_model.apply(L, [UDHR_S]) == [pieces]
    assert len(cl) == clean


def _lexicon_golden_cases() -> list[tuple[str, str]]:
    from golden.make_lib_lexicons import OUT

    stored = json.loads(OUT.read_text(encoding="utf-8"))
    return [(name, run) for name in sorted(stored) for run in sorted(stored[name])]


@pytest.mark.parametrize("name, run", _lexicon_golden_cases())
def test_learner_lexicons_equal_goldens_on_every_corpus(corpora_dir, name, run):
    """L, P and the cleaned lexicon equal those recorded before the learner was sped up, on
    every corpora/ file and on mixed documentation text (tests/golden/make_lib_lexicons.py)."""
    from golden.make_lib_lexicons import OUT, record, texts

    stored = json.loads(OUT.read_text(encoding="utf-8"))
    assert set(stored) == set(texts(corpora_dir)), "a corpus has no golden (regenerate them)"
    assert record(texts(corpora_dir)[name], run) == stored[name][run]


@pytest.mark.parametrize("name, run", [("en", "A"), ("zh", "B"), ("code-python", "B")])
def test_fair_reference_gives_the_golden_lexicons(corpora_dir, name, run):
    """The position-dict reference (tests/reference/lib_ref.py) gives the lexicons recorded from
    the Rust learner, in an alphabetic, a CJK and a code corpus."""
    from golden.make_lib_lexicons import OUT, STEPS, configs, digest, texts

    cfg = configs()[run]
    sents = lib_model.read_sentences(texts(corpora_dir)[name])
    ref = ref_learner(cfg, sents, STEPS)
    gold = json.loads(OUT.read_text(encoding="utf-8"))[name][run]
    assert (len(ref.L), len(ref.P)) == (gold["L"], gold["P"])
    assert digest(ref.L) == gold["sha256_L"]
    assert digest(list(ref.P)) == gold["sha256_P"]
    assert digest(ref.clean_lexicon()) == gold["sha256_clean"]


# ---- Rust learner == Python reference on random input (TV7, docs/lib.md §11) ---------------
words = st.sampled_from(["the", "cat", "sat", "on", "a", "mat", "dog", "log", "é", "日本", "of"])
sentence = st.lists(words, min_size=1, max_size=8).map(" ".join)


@MAX
@given(
    sents=st.lists(sentence, min_size=1, max_size=8),
    steps=st.integers(1, 25),
    article_len=st.integers(1, 4),
    life=st.integers(1, 5),
    out_rate=st.sampled_from([0.0001, 0.01, 0.1, 0.3]),
    update_rate=st.sampled_from([0.1, 0.2, 0.5]),
    in_rate=st.sampled_from([0.25, 0.5, 0.9]),
    max_len=st.sampled_from([None, 3, 6]),
    context=st.booleans(),
    seed=st.integers(0, 2**40),
)
def test_rust_learner_equals_python_reference_on_random_corpora(
    sents, steps, article_len, life, out_rate, update_rate, in_rate, max_len, context, seed
):
    cfg = LibConfig.reference(
        article_len=article_len, life=life, out_rate=out_rate, update_rate=update_rate,
        in_rate=in_rate, max_chunk_len=max_len, inspect_context=context, seed=seed,
    )  # fmt: skip
    L, P, clean = lib_model.learn(sents, steps=steps, config=cfg)
    ref = ref_learner(cfg, sents, steps)
    assert L == ref.L
    assert P == list(ref.P)
    assert clean == ref.clean_lexicon()
    probe = sents[0] + " xyz"
    assert lib_model.apply(L, [probe]) == [ref.apply(probe)]


@MAX
@given(sents=st.lists(sentence, min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_protected_characters_are_never_forgotten_and_units_respect_max_len(sents, seed):
    cfg = LibConfig(steps=20, article_len=2, life=1, out_rate=0.5, max_chunk_len=4, seed=seed)
    L, _, clean = lib_model.learn(sents, steps=20, config=cfg)
    chars = {c for s in sents for c in s}
    assert chars <= set(clean)
    assert all(len(u) <= 4 for u in L)


# ---- the tokenizer -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tok(corpus_docs) -> Tokenizer:
    texts = [corpus_docs["en"], corpus_docs["de"]]
    model, info = lib_model.train(
        texts=texts,
        vocab_size=None,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        config=LibConfig(steps=200, article_len=20),
    )
    t = Tokenizer(model)
    assert info.units == t.vocab_size - 258 == len(model.units)
    assert info.sentences == len(lib_model.read_sentences(texts=texts))
    assert t.kind == "lib" and model.merges is None
    return t


@MAX
@given(text=st.text())
def test_decode_encode_round_trips_any_string(tok, text):
    text = text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
    assert tok.decode(tok.encode_ordinary(text)) == text
    assert tok.decode(tok.encode(text, allowed_special="all")) == text
    # special-token text (hypothesis mines "<|endoftext|>" from this file) stays plain text
    ids, spans = tok.encode_with_offsets(text, disallowed_special=())
    data = text.encode()
    assert b"".join(data[s:e] for s, e in spans) == data
    assert len(ids) == len(spans)
    assert ids == tok.encode_ordinary(text)


def test_special_tokens_encode_as_ids_when_allowed(tok):
    eot = tok.special_tokens["<|endoftext|>"]
    ids = tok.encode("a<|endoftext|>b", allowed_special="all")
    assert eot in ids
    with pytest.raises(InputError):
        tok.encode("a<|endoftext|>b")
    assert eot not in tok.encode("a<|endoftext|>b", disallowed_special=())


def test_batch_numpy_and_stream_equal_single_encode(tok, corpus_docs):
    texts = corpus_docs["en"].split("\n")[:50] + ["", "ünï 🙂\nx"]
    single = [tok.encode(t) for t in texts]
    assert tok.encode_batch(texts, num_threads=1) == single
    assert tok.encode_batch(texts, num_threads=2) == single
    flat, off = tok.encode_batch_numpy(texts)
    assert [flat[off[i] : off[i + 1]].tolist() for i in range(len(texts))] == single
    assert flat.dtype == np.uint32
    doc = corpus_docs["fr"]
    streamed = [
        i for part in tok.encode_stream(iter(doc.splitlines(True)), min_chunk=100) for i in part
    ]
    assert streamed == tok.encode(doc)


def test_units_never_cross_newlines(tok):
    for i in tok.encode("the right to\nlife and\n\nliberty"):
        piece = tok.decode_bytes([i])
        assert b"\n" not in piece or piece == b"\n"


def test_training_is_deterministic_for_a_seed(corpus_docs):
    cfg = LibConfig(steps=60, article_len=10, seed=7)
    a, _ = lib_model.train(texts=[corpus_docs["es"]], vocab_size=None, config=cfg)
    b, _ = lib_model.train(texts=[corpus_docs["es"]], vocab_size=None, config=cfg)
    c, _ = lib_model.train(
        texts=[corpus_docs["es"]],
        vocab_size=None,
        config=LibConfig(steps=60, article_len=10, seed=8),
    )
    assert a.units == b.units
    assert a.units != c.units


def test_fixed_vocab_size_keeps_the_first_units_by_priority(corpus_docs):
    cfg = LibConfig(steps=100, article_len=20)
    full, _ = lib_model.train(texts=[corpus_docs["en"]], vocab_size=None, config=cfg)
    cut, _ = lib_model.train(texts=[corpus_docs["en"]], vocab_size=256 + 300, config=cfg)
    assert cut.vocab_size == 556
    assert cut.units == full.units[:300]
    with pytest.raises(TrainingError, match="fewer than"):
        lib_model.train(texts=[corpus_docs["en"]], vocab_size=256 + 10**6, config=cfg)


def test_save_and_from_file_round_trip(tok, tmp_path):
    p = tok.save(tmp_path / "lib.json")
    doc = json.loads(p.read_text(encoding="utf-8"))
    assert doc["format"] == "tokforge-lib" and doc["byte_fallback"] is True
    again = Tokenizer.from_file(p)
    text = "Everyone has the right to life, liberty and security of person. ✓"
    assert again.encode(text) == tok.encode(text)
    assert again.special_tokens == tok.special_tokens
    assert again.vocab_size == tok.vocab_size


def test_bpe_only_members_raise_a_clear_error(tok, tmp_path):
    with pytest.raises(TokforgeError, match="LiB"):
        _ = tok.merges
    with pytest.raises(TokforgeError, match="LiB"):
        tok.save_tiktoken(tmp_path / "x.tiktoken")


def test_tokenizer_train_dispatches_to_lib_with_progress(corpus_docs):
    seen = []
    t = Tokenizer.train(
        texts=[corpus_docs["it"]],
        vocab_size=None,
        algorithm="lib",
        lib=LibConfig(steps=30, article_len=10),
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    assert seen[-1] == ("lib", 30, 30)
    assert t.decode(t.encode("Tutti gli esseri umani")) == "Tutti gli esseri umani"
    with pytest.raises(StoppedError):
        Tokenizer.train(
            texts=[corpus_docs["it"]], vocab_size=None, algorithm="lib",
            lib=LibConfig(steps=30, article_len=10), progress=lambda *a: False,
        )  # fmt: skip
    with pytest.raises(InputError):
        Tokenizer.train(texts=["x"], vocab_size=300, algorithm="wordpiece")


def test_on_step_reports_lexicon_size_and_tokens_per_byte(corpus_docs):
    steps = []
    lib_model.train(
        texts=[corpus_docs["en"]], vocab_size=None, config=LibConfig(steps=20, article_len=20),
        on_step=steps.append,
    )  # fmt: skip
    assert steps[-1].step == 20 and steps[-1].lexicon_size > 100
    assert 0 < steps[-1].tokens_per_byte < 1


@MAX
@given(text=st.text(alphabet="the cat sat 12345 ,.!é\n", max_size=60))
def test_no_supra_mode_keeps_every_token_inside_one_piece(no_supra, text):
    pieces = tokforge._core.pretokenize("gpt2", text.replace("\n", " "))
    bounds, at = set(), 0
    for p in pieces:
        at += len(p.encode())
        bounds.add(at)
    _, spans = no_supra.encode_with_offsets(text.replace("\n", " "))
    for s, e in spans:
        assert not any(s < b < e for b in bounds)
    assert no_supra.decode(no_supra.encode(text)) == text


@pytest.fixture(scope="module")
def no_supra(corpus_docs) -> Tokenizer:
    cfg = LibConfig(steps=100, article_len=20, pretokenize="gpt2")
    model, info = lib_model.train(texts=[corpus_docs["en"]], vocab_size=None, config=cfg)
    assert info.multiword_share == 0.0 == lib_model.multiword_share(model)
    assert model.pretokenize == "gpt2"
    assert all(" " not in u.lstrip(" ") for u in model.units)
    return Tokenizer(model)


def test_no_supra_mode_survives_save_and_load(no_supra, tmp_path):
    again = Tokenizer.from_file(no_supra.save(tmp_path / "ns.json"))
    text = "Everyone has the right to life, liberty and security of person."
    assert again.encode(text) == no_supra.encode(text)
    L, _, _ = lib_model.learn(["of the cat of the dog"] * 3, steps=5, config=LibConfig(
        article_len=1, pretokenize="gpt2"))  # fmt: skip
    assert all(" " not in u.lstrip(" ") for u in L)


def test_segmenters_differ_only_by_the_quirk():
    ref = tokforge._core.TokenModel.from_units(["ab", "x"], segmenter="reference")
    fixed = ref.with_segmenter("lib")
    assert Tokenizer(fixed).encode("abx") == [256, 257]
    assert Tokenizer(ref).encode("abx") == [ord("a"), ord("b"), 257]


def test_bad_input_raises_tokforge_errors():
    with pytest.raises(InputError):
        lib_model.learn(["a b"], steps=1, config=LibConfig(life=0))
    with pytest.raises(TrainingError):
        lib_model.learn(["a b"], steps=1, config=LibConfig(in_rate=2.0))
    with pytest.raises(InputError):
        lib_model.learn(["a\nb"], steps=1)
    with pytest.raises(InputError, match="must not contain"):
        lib_model.learn(["x", "a\nb", "c"], steps=1)
    with pytest.raises(InputError, match=r"sentences\[1\] is int"):
        lib_model.learn(["a", 1], steps=1)  # type: ignore[list-item]
    with pytest.raises(InputError, match="not one str"):
        lib_model.learn("a b", steps=1)
    assert lib_model.learn(("ab", "ab"), steps=2)[0] == lib_model.learn(["ab", "ab"], steps=2)[0]
    with pytest.raises(InputError):
        lib_model.apply(["a"], ["a"], segmenter="nope")
    with pytest.raises(FormatError):
        tokforge._core.TokenModel.from_json_str('{"format": "tokforge-lib", "version": 99}')
    with pytest.raises(TokforgeError):
        tokforge._core.TokenModel.from_units(["a", "a"])
    with pytest.raises(InputError):
        lib_model.train(texts=["\n\n"], vocab_size=None)
    with pytest.raises(TrainingError):
        lib_model.train(texts=["abc"], vocab_size=200, config=LibConfig(steps=1))


def test_cli_trains_lib_and_tokenizes(tmp_path, corpora_dir):
    out = tmp_path / "lib.json"
    env = {**os.environ, "TOKFORGE_CORPORA": str(corpora_dir)}
    r = subprocess.run(
        [sys.executable, "-m", "tokforge", "train", "--algorithm", "lib", str(corpora_dir / "en.txt"),
         "--lib-steps", "50", "--lib-article-len", "20", "-o", str(out), "--json", "-q"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    info = json.loads(r.stdout)
    assert info["algorithm"] == "lib" and info["vocab_size"] == 256 + info["units"]
    r = subprocess.run(
        [sys.executable, "-m", "tokforge", "tokenize", "-t", str(out), "--format", "pieces"],
        input="Everyone has the right to life", capture_output=True, text=True, env=env,
        check=True,
    )  # fmt: skip
    assert "Everyone" in r.stdout


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(lib_model)
    assert result.attempted > 5 and result.failed == 0
