"""SentencePiece-style BPE: ids identical to HF ``tokenizers`` (Llama-2's tokenizer.json and
variants of it with every Metaspace / normalizer setting) and to the ``sentencepiece`` package
(mistral-common's BPE ``.model`` files), on every corpus file and on hypothesis text."""

from __future__ import annotations

import copy
import json

import pytest
import sentencepiece as spm
import tokenizers
from hypothesis import given, settings
from hypothesis import strategies as st
from tokforge import FormatError, Tokenizer

TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" \n\t  abcé▁<>s/0x")),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=40,
)


@pytest.fixture(scope="session")
def llama2_file():
    from vocabularies import fetch

    return fetch("llama2_tokenizer.json")


@pytest.fixture(scope="session")
def llama2(llama2_file):
    return Tokenizer.from_file(llama2_file), tokenizers.Tokenizer.from_file(str(llama2_file))



def test_llama2_ids_equal_hf_on_every_corpus_file(llama2, corpus_docs):
    tok, hf = llama2
    assert tok.kind == "sentencepiece" and tok.vocab_size == 32000
    for name, text in corpus_docs.items():
        want = hf.encode(text, add_special_tokens=False).ids
        assert tok.encode(text, allowed_special="all") == want, name
        ids = tok.encode_ordinary(text)
        assert tok.decode(ids) == text, name  # no special tokens split out: lossless


@given(text=TEXT)
def test_llama2_ids_equal_hf_on_any_text(llama2, text):
    tok, hf = llama2
    assert tok.encode(text, allowed_special="all") == hf.encode(text, add_special_tokens=False).ids
    assert tok.decode(tok.encode_ordinary(text)) == text


def test_coerce_and_tokenizer_json_round_trip(llama2, corpus_docs, tmp_path):
    tok, hf = llama2
    again = Tokenizer.coerce(hf)
    assert again.kind == "sentencepiece"
    text = corpus_docs["en"][:5000] + "<s> x</s>"
    assert again.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")
    path = tok.save(tmp_path / "tokenizer.json")
    hf_back = tokenizers.Tokenizer.from_file(str(path))
    assert hf_back.encode(text, add_special_tokens=False).ids == tok.encode(
        text, allowed_special="all"
    )
    ids, spans = tok.encode_with_offsets("Hello  wörld", unit="chars")
    assert ids == tok.encode("Hello  wörld")
    assert spans[0][0] == 0 and spans[-1][1] == len("Hello  wörld")


def _variant(doc: dict, *, normalizer, pre_tokenizer, decoder) -> dict:
    d = copy.deepcopy(doc)
    d["normalizer"], d["pre_tokenizer"], d["decoder"] = normalizer, pre_tokenizer, decoder
    return d


def _variants(llama2_file) -> dict[str, dict]:
    doc = json.loads(llama2_file.read_text(encoding="utf-8"))
    out = {}
    for scheme in ("first", "always", "never"):
        for split in (True, False):
            out[f"metaspace-{scheme}-split{split}"] = _variant(
                doc,
                normalizer=None,
                pre_tokenizer={
                    "type": "Metaspace",
                    "replacement": "▁",
                    "prepend_scheme": scheme,
                    "split": split,
                },
                decoder={"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme,
                         "split": split},
            )
    out["nfkc-lowercase-strip"] = _variant(
        doc,
        normalizer={
            "type": "Sequence",
            "normalizers": [
                {"type": "NFKC"},
                {"type": "Lowercase"},
                {"type": "Strip", "strip_left": True, "strip_right": False},
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        },
        pre_tokenizer=None,
        decoder=doc["decoder"],
    )
    out["nfc-metaspace-legacy"] = _variant(
        doc,
        normalizer={"type": "NFC"},
        pre_tokenizer={"type": "Metaspace", "replacement": "▁", "add_prefix_space": True},
        decoder={"type": "Metaspace", "replacement": "▁", "add_prefix_space": True},
    )
    return out


@pytest.fixture(scope="session")
def variants(llama2_file):
    out = {}
    for name, doc in _variants(llama2_file).items():
        text = json.dumps(doc)
        out[name] = (Tokenizer.from_json_str(text), tokenizers.Tokenizer.from_str(text))
    return out


def test_variants_equal_hf_on_corpus_samples(variants, corpus_docs):
    sample = "".join(t[:3000] for t in corpus_docs.values()) + "  <s>x </s> y<unk>"
    for name, (tok, hf) in variants.items():
        want = hf.encode(sample, add_special_tokens=False).ids
        assert tok.encode(sample, allowed_special="all") == want, name
        assert tok.decode(want) == hf.decode(want, skip_special_tokens=False), name


@settings(max_examples=40)
@given(text=TEXT)
def test_variants_equal_hf_on_any_text(variants, text):
    for name, (tok, hf) in variants.items():
        want = hf.encode(text, add_special_tokens=False).ids
        assert tok.encode(text, allowed_special="all") == want, name


@pytest.fixture(scope="session", params=["mistral_v1.model", "mistral_v3.model", "mistral_v7.model"])
def sp_model(request):
    from vocabularies import fetch

    path = fetch(request.param)
    return Tokenizer.from_sentencepiece(path), spm.SentencePieceProcessor(model_file=str(path))


def test_sentencepiece_models_equal_the_sentencepiece_package(sp_model, corpus_docs):
    tok, sp = sp_model
    assert tok.vocab_size == sp.get_piece_size()
    for name, text in corpus_docs.items():
        ids = tok.encode_ordinary(text)
        assert ids == sp.encode(text), name
        assert tok.decode(ids) == sp.decode(ids), name


@given(text=TEXT)
def test_sentencepiece_models_on_any_text(sp_model, text):
    tok, sp = sp_model
    ids = tok.encode_ordinary(text)
    assert ids == sp.encode(text)
    assert tok.decode(ids) == sp.decode(ids)


def test_model_file_exports_to_tokenizer_json_hf_agrees_with(sp_model, corpus_docs):
    tok, sp = sp_model
    hf = tokenizers.Tokenizer.from_str(tok.to_json())
    text = corpus_docs["en"][:4000] + corpus_docs["zh"][:500]
    assert hf.encode(text, add_special_tokens=False).ids == sp.encode(text)
    assert Tokenizer.from_json_str(tok.to_json()).encode_ordinary(text) == sp.encode(text)


def test_bad_model_files_are_format_errors(tmp_path):
    from vocabularies import fetch

    data = fetch("mistral_v1.model").read_bytes()
    for cut in (3, 1000, len(data) - 5):
        p = tmp_path / f"cut{cut}.model"
        p.write_bytes(data[:cut])
        with pytest.raises(FormatError, match="SentencePiece model"):
            Tokenizer.from_sentencepiece(p)
    p = tmp_path / "not.model"
    p.write_bytes(b"\x00\x01garbage")
    with pytest.raises(FormatError):
        Tokenizer.from_sentencepiece(p)
    with pytest.raises(FormatError, match="Unigram"):
        Tokenizer.from_json_str(json.dumps({"model": {"type": "Unigram", "vocab": []}}))
