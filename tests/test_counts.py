"""Counting as its own step (tokforge.counts, docs/distributed.md §1-§3): the binary table
round-trips and is canonical, merging is associative and commutative (hypothesis), corrupt
tables are FormatErrors, training from counts equals training, documents="line" reproduces
HF tokenizers' train([file]) exactly, Parquet / JSONL / dict rows count like the same strings,
and the memory bound errors unless pruning is allowed."""

from __future__ import annotations

import json
import pickle

import pytest
import tokforge
from hypothesis import given
from hypothesis import strategies as st
from tokenizers import Regex, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokforge import FormatError, InputError, Tokenizer, TrainingError
from tokforge.counts import PieceCounts, count_pieces

docs_st = st.lists(st.text(alphabet=st.sampled_from("ab c\n1é日'"), max_size=30), max_size=6)


@given(docs_st, docs_st, docs_st)
def test_merging_tables_is_associative_and_commutative(a, b, c):
    ta, tb, tc = (count_pieces(texts=d, pattern="gpt2") for d in (a, b, c))
    left = (ta + tb) + tc
    right = ta + (tb + tc)
    assert left.to_bytes() == right.to_bytes() == (tc + ta + tb).to_bytes()
    assert left == count_pieces(texts=a + b + c, pattern="gpt2")
    assert left.docs == len(a + b + c)


@given(docs_st)
def test_table_bytes_round_trip(docs):
    t = count_pieces(texts=docs, pattern="cl100k")
    back = PieceCounts.from_bytes(t.to_bytes())
    assert back == t and back.to_bytes() == t.to_bytes()
    assert (back.docs, back.bytes, back.pattern) == (t.docs, t.bytes, t.pattern)
    assert pickle.loads(pickle.dumps(t)) == t
    assert sum(c for _, c in t.most_common(len(t))) == t.total


def test_saved_table_loads_and_trains_like_the_corpus(corpus_docs, tmp_path):
    docs = list(corpus_docs.values())
    t = count_pieces(texts=docs, pattern="o200k")
    path = t.save(tmp_path / "c.tfpc")
    with pytest.raises(FileExistsError):
        t.save(path)
    back = PieceCounts.load(path)
    assert back == t and len(back) > 10_000
    a = Tokenizer.train_from_counts(back, vocab_size=2000, special_tokens=["<s>"])
    b = Tokenizer.train(texts=docs, vocab_size=2000, pattern="o200k", special_tokens=["<s>"])
    assert a.merges == b.merges and a.to_json() == b.to_json()


def test_corrupt_tables_are_format_errors_naming_the_file(tmp_path):
    data = count_pieces(texts=["low lower lowest"], pattern="gpt2").to_bytes()
    bad = tmp_path / "bad.tfpc"
    cases = {
        "truncated": data[:-3],
        "flipped": data[:50] + bytes([data[50] ^ 1]) + data[51:],
        "not a table": b'{"model": {}}' * 10,
        "empty": b"",
    }
    for what, blob in cases.items():
        bad.write_bytes(blob)
        with pytest.raises(FormatError, match=r"bad\.tfpc") as e:
            PieceCounts.load(bad)
        assert "piece-count table" in str(e.value), what


def test_tables_of_different_patterns_do_not_merge():
    a = count_pieces(texts=["a b"], pattern="gpt2")
    b = count_pieces(texts=["a b"], pattern="cl100k")
    with pytest.raises(InputError, match="pattern"):
        a.merge(b)


def test_the_memory_bound_errors_unless_pruning_is_allowed(corpus_docs):
    docs = list(corpus_docs.values())
    exact = count_pieces(texts=docs, pattern="gpt2")
    with pytest.raises(TrainingError, match="max_pieces=5000"):
        count_pieces(texts=docs, pattern="gpt2", max_pieces=5000)
    with pytest.raises(InputError, match="needs max_pieces"):
        count_pieces(texts=docs, pattern="gpt2", prune=True)
    pruned = count_pieces(texts=docs, pattern="gpt2", max_pieces=5000, prune=True)
    assert len(pruned) <= 5000 and pruned.pruned_below >= 2
    # what survives keeps a count no larger than the exact one, and frequent pieces survive
    for piece, c in pruned.most_common(200):
        assert c <= exact.get(piece)
    assert {p for p, _ in exact.most_common(50)} <= {p for p, _ in pruned.most_common(len(pruned))}
    assert "pruned_below" in repr(pruned)


def _hf_file_trainer(pattern: str):
    from tokenizers import models

    ht = HFTokenizer(models.BPE())
    ht.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(tokforge.hf_pattern(pattern)), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])  # fmt: skip
    return ht


@pytest.mark.parametrize("pattern", ["gpt2", "cl100k"])
def test_line_documents_give_hf_train_files_merges_on_indented_code(corpus_docs, tmp_path, pattern):
    from tokenizers import trainers

    # indented code with blank lines and whitespace-only lines: where file and line mode differ
    text = corpus_docs["code-python"] + "\n\n   \n" + corpus_docs["code-go"] + "\n\t\n\n"
    path = tmp_path / "code.txt"
    path.write_text(text, encoding="utf-8")
    ht = _hf_file_trainer(pattern)
    trainer = trainers.BpeTrainer(vocab_size=1500, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    ht.train([str(path)], trainer)
    hf_merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)
                 for m in json.loads(ht.to_str())["model"]["merges"]]  # fmt: skip
    line = Tokenizer.train(path, vocab_size=1500, pattern=pattern, documents="line")
    ours = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)
            for m in json.loads(line.to_json())["model"]["merges"]]  # fmt: skip
    assert ours == hf_merges
    whole = Tokenizer.train(path, vocab_size=1500, pattern=pattern)  # a file is one document
    assert whole.merges != line.merges
    # texts split into lines the same way
    assert Tokenizer.train(texts=[text], vocab_size=1500, pattern=pattern,
                           documents="line").merges == line.merges  # fmt: skip


def test_parquet_jsonl_and_dict_rows_count_like_their_strings(corpus_docs, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [p for t in corpus_docs.values() for p in t.split("\n\n") if p][:500]
    pq.write_table(pa.table({"body": rows[:300], "id": list(range(300))}), tmp_path / "a.parquet",
                   row_group_size=64)  # fmt: skip
    with open(tmp_path / "b.jsonl", "w", encoding="utf-8") as fh:
        for i, r in enumerate(rows[300:]):
            fh.write(json.dumps({"body": r, "id": i}) + "\n")
        fh.write(json.dumps({"body": None, "id": -1}) + "\n")
    want = count_pieces(texts=rows, pattern="cl100k")
    got = count_pieces(tmp_path, column="body", pattern="cl100k")  # a directory of shards
    assert got == want and got.docs == 500
    assert count_pieces(texts=({"body": r} for r in rows), column="body", pattern="cl100k") == want
    with pytest.raises(InputError, match="no column 'text'"):
        count_pieces(tmp_path / "a.parquet")
    with pytest.raises(InputError, match="int64, not strings"):
        count_pieces(tmp_path / "a.parquet", column="id")
    with pytest.raises(InputError, match=r"texts\[1\] is int"):
        count_pieces(texts=["a", 3])
