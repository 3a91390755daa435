"""Bad input gives a clear Python exception (never a panic, a hang or a silent wrong answer)."""

from __future__ import annotations

import pytest
import tokforge
from tokforge import Tokenizer


def test_invalid_utf8_file_names_file_and_offset(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("caf\u00e9 ok\n".encode("utf-8") + b"na\xefve\n")
    with pytest.raises(tokforge.InputError, match=r"latin1\.txt.*byte offset 11"):
        Tokenizer.train([p], vocab_size=300)


def test_invalid_utf8_can_be_replaced_or_ignored(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"abc\xffabc abc\xfe abc")
    rep = Tokenizer.train([p], vocab_size=300, errors="replace")
    ign = Tokenizer.train([p], vocab_size=300, errors="ignore")
    assert rep.merges != ign.merges  # U+FFFD takes part in the replaced text only
    with pytest.raises(tokforge.InputError, match="errors="):
        Tokenizer.train([p], vocab_size=300, errors="surrogateescape")


def test_lone_surrogate_in_texts_is_an_input_error():
    with pytest.raises(tokforge.InputError, match="surrogate"):
        Tokenizer.train(texts=["ok", "bad \ud800"], vocab_size=300)


def test_empty_corpus_is_a_training_error(tmp_path):
    with pytest.raises(tokforge.TrainingError, match="empty"):
        Tokenizer.train(texts=[], vocab_size=300)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(tokforge.TrainingError, match="empty"):
        Tokenizer.train([tmp_path / "empty.txt"], vocab_size=300)


def test_vocab_size_below_bytes_plus_specials():
    with pytest.raises(tokforge.TrainingError, match="256"):
        Tokenizer.train(texts=["a"], vocab_size=257, special_tokens=["<a>", "<b>"])
    with pytest.raises(tokforge.InputError):
        Tokenizer.train(texts=["a"], vocab_size=-1)


def test_invalid_regex_names_the_pattern():
    with pytest.raises(tokforge.PatternError, match=r"\(\?<bad"):
        Tokenizer.train(texts=["a"], vocab_size=300, pattern="(?<bad")


def test_duplicate_special_tokens():
    with pytest.raises(tokforge.TrainingError, match="twice"):
        Tokenizer.train(texts=["a"], vocab_size=300, special_tokens=["<s>", "<s>"])


def test_wrong_text_types():
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        Tokenizer.train(texts=["a", 3], vocab_size=300)
    with pytest.raises(TypeError, match="single str"):
        Tokenizer.train(texts="just one string", vocab_size=300)


def test_missing_file_and_bad_options(tmp_path):
    with pytest.raises(FileNotFoundError):
        Tokenizer.train([tmp_path / "nope.txt"], vocab_size=300)
    with pytest.raises(tokforge.InputError, match="tie_order"):
        Tokenizer.train(texts=["a"], vocab_size=300, tie_order="random")
    with pytest.raises(tokforge.InputError):
        Tokenizer.train(vocab_size=300)
    with pytest.raises(tokforge.InputError, match="num_threads"):
        Tokenizer.train(texts=["a"], vocab_size=300, num_threads=0)


def test_save_never_overwrites_without_asking(tmp_path):
    tok = Tokenizer.train(texts=["hello world"] * 3, vocab_size=260)
    p = tmp_path / "t.json"
    p.write_text("user data")
    with pytest.raises(FileExistsError):
        tok.save(p)
    assert p.read_text() == "user data"
    tok.save(p, overwrite=True)
    assert Tokenizer.from_file(p).merges == tok.merges


@pytest.mark.parametrize(
    "doc, part",
    [
        ('{"normalizer": {"type": "BertNormalizer"}, "model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": {"type": "Fuse"}}', "BertNormalizer"),
        ('{"normalizer": null, "model": {"type": "WordPiece"}}', "WordPiece"),
        (
            '{"normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}',
            "Whitespace",
        ),
        ("{not json", "JSON"),
    ],
)
def test_unsupported_tokenizer_json_names_the_part(tmp_path, doc, part):
    p = tmp_path / "tokenizer.json"
    p.write_text(doc)
    with pytest.raises(tokforge.FormatError, match=part):
        Tokenizer.from_file(p)


def test_bad_ids_are_vocab_errors():
    tok = Tokenizer.train(texts=["hello"], vocab_size=260)
    with pytest.raises(tokforge.VocabError, match="outside"):
        tok.decode([1, 99999])
    with pytest.raises(tokforge.VocabError):
        tok.id_to_token(-1)
