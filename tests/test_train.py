"""BPE training: exact parity with HF's BpeTrainer and with a pure-Python reference."""

from __future__ import annotations

import json

import pytest
import tokforge
from hypothesis import given
from hypothesis import strategies as st
from reference import bpe_train
from tokenizers import Regex, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer
from tokforge import Tokenizer

PRESETS = ["gpt2", "cl100k", "o200k"]


def hf_train(docs, pattern, vocab_size, specials=(), min_frequency=0):
    ht = HFTokenizer(models.BPE())
    ht.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(tokforge.hf_pattern(pattern)), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    ht.train_from_iterator(docs, trainer)
    return ht


def model_json(tok_json: str) -> dict:
    return json.loads(tok_json)["model"]


@pytest.mark.parametrize("preset", PRESETS)
def test_merges_equal_hf_trainer_on_full_corpora(corpus_docs, preset):
    docs = list(corpus_docs.values())
    specials = ["<|endoftext|>", "<|pad|>"]
    ht = hf_train(docs, preset, 8000, specials)
    tok = Tokenizer.train(texts=docs, vocab_size=8000, pattern=preset, special_tokens=specials)
    ours, theirs = model_json(tok.to_json()), model_json(ht.to_str())
    assert len(ours["merges"]) == len(theirs["merges"]) > 5000
    assert ours["merges"] == theirs["merges"]
    assert ours["vocab"] == theirs["vocab"]


def test_min_frequency_stops_like_hf(corpus_docs):
    docs = [corpus_docs["en"], corpus_docs["de"]]
    ht = hf_train(docs, "cl100k", 5000, min_frequency=5)
    tok = Tokenizer.train(texts=docs, vocab_size=5000, pattern="cl100k", min_frequency=5)
    assert model_json(tok.to_json())["merges"] == model_json(ht.to_str())["merges"]
    assert min(tok.merge_counts) >= 5
    assert tok.vocab_size < 5000


words = st.sampled_from(
    ["low", "lower", "newest", "widest", "aaa", "ab", "ba", "é", "世界", "12", "'s"]
)
seps = st.sampled_from([" ", "  ", "\n", " \n ", "\t", ", "])


@st.composite
def documents(draw):
    n = draw(st.integers(1, 4))
    docs = []
    for _ in range(n):
        parts = draw(st.lists(st.tuples(words, seps), min_size=1, max_size=30))
        docs.append("".join(w + s for w, s in parts))
    return docs


@given(
    docs=documents(),
    preset=st.sampled_from(PRESETS),
    extra=st.integers(1, 40),
    tie=st.sampled_from(["hf", "bytes"]),
)
def test_merges_equal_reference_on_random_documents(docs, preset, extra, tie):
    pat = tokforge.preset_pattern(preset)
    want = bpe_train.train(docs, pat, 256 + extra, tie=tie)
    tok = Tokenizer.train(texts=docs, vocab_size=256 + extra, pattern=preset, tie_order=tie)
    assert tok.merges == want


# Characters assigned in this Python's Unicode version: newer ones may be classified differently
# by the `regex` module (the reference) and by regex-syntax (the tables tiktoken uses too).
assigned = st.characters(exclude_categories=("Cs", "Cn"))


@given(text=st.text(assigned, min_size=1, max_size=200), preset=st.sampled_from(PRESETS))
def test_merges_equal_reference_on_any_unicode(text, preset):
    pat = tokforge.preset_pattern(preset)
    want = bpe_train.train([text], pat, 270)
    assert Tokenizer.train(texts=[text], vocab_size=270, pattern=preset).merges == want


def test_reference_reproduces_spec_tie_vectors():
    """TV1 of docs/bpe.md §6: the pure-Python trainer gives HF's order and rustbpe's first merge."""
    pat = tokforge.preset_pattern("gpt2")
    assert bpe_train.train(["ab ab cd cd"], pat, 260) == [
        (b"a", b"b"),
        (b"c", b"d"),
        (b" ", b"cd"),
        (b" ", b"ab"),
    ]
    assert bpe_train.train(["ab ab cd cd"], pat, 260, tie="bytes")[0] == (b" ", b"c")


def test_thread_count_does_not_change_merges(corpus_docs):
    docs = list(corpus_docs.values())
    one = Tokenizer.train(texts=docs, vocab_size=3000, num_threads=1)
    two = Tokenizer.train(texts=docs, vocab_size=3000, num_threads=2)
    assert one.merges == two.merges and len(one.merges) == 3000 - 256


def test_files_equal_texts_when_each_file_is_a_document(corpora_dir, corpus_docs):
    paths = sorted(corpora_dir.glob("*.txt"))
    a = Tokenizer.train(paths, vocab_size=2000, pattern="o200k")
    b = Tokenizer.train(texts=iter(corpus_docs.values()), vocab_size=2000, pattern="o200k")
    assert a.merges == b.merges
    c = Tokenizer.train(corpora_dir, vocab_size=2000, pattern="o200k")  # a directory = its *.txt
    assert c.merges == a.merges


def test_texts_are_streamed_from_a_generator():
    pulled = []

    def gen():
        for i in range(20000):
            pulled.append(i)
            yield f"document {i} says hello world number {i % 97}\n"

    tok = Tokenizer.train(texts=gen(), vocab_size=400, pattern="gpt2")
    assert len(pulled) == 20000 and tok.vocab_size == 400


def test_special_tokens_take_the_first_ids_and_are_never_merged():
    tok = Tokenizer.train(
        texts=["<|x|> <|x|> <|x|> hello"] * 10, vocab_size=300, special_tokens=["<|x|>", "<|y|>"]
    )
    assert tok.special_tokens == {"<|x|>": 0, "<|y|>": 1}
    assert tok.id_to_token(2) == b"!"
    assert all(b"<|x|>" != a + b for a, b in tok.merges)


def test_progress_reports_count_pairs_and_merge_stages_in_order(corpus_docs):
    seen = []
    Tokenizer.train(
        texts=list(corpus_docs.values()),
        vocab_size=1000,
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    stages = list(dict.fromkeys(s for s, _, _ in seen))
    assert stages == ["count", "pairs", "merge"]
    assert all(isinstance(x, int) for _, d, t in seen for x in (d, t))
    last_merge = [x for x in seen if x[0] == "merge"][-1]
    assert last_merge[1] == last_merge[2] == 1000 - 256


def test_progress_callback_can_stop_training(corpus_docs):
    with pytest.raises(tokforge.StoppedError):
        Tokenizer.train(
            texts=list(corpus_docs.values()),
            vocab_size=5000,
            progress=lambda stage, done, total: stage != "merge" or done < 100,
        )

    class Boom(Exception):
        pass

    def raiser(stage, done, total):
        raise Boom("from callback")

    with pytest.raises(Boom):
        Tokenizer.train(texts=["a b c"], vocab_size=300, progress=raiser)


@pytest.mark.parametrize("preset", PRESETS)
def test_saved_tokenizer_loads_in_hf_with_identical_ids(corpus_docs, preset, tmp_path):
    docs = list(corpus_docs.values())
    tok = Tokenizer.train(
        texts=docs, vocab_size=4000, pattern=preset, special_tokens=["<|endoftext|>"]
    )
    path = tok.save(tmp_path / "tokenizer.json")
    ht = HFTokenizer.from_file(str(path))
    for name, text in corpus_docs.items():
        # HF always splits out added tokens: tiktoken's allowed_special="all"
        assert ht.encode(text, add_special_tokens=False).ids == tok.encode(
            text, allowed_special="all"
        ), name
    back = Tokenizer.from_file(path)
    assert back.merges == tok.merges and back.special_tokens == tok.special_tokens
