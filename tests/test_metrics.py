"""tokforge.metrics against its peers: the ``qtok`` package's own functions (Qtok),
``tokenization-scorer`` (Rényi), a slow reference (corpus counts), the worked examples of the
papers, and real vocabularies (GPT-2, cl100k, Mistral's tekken and its SentencePiece vocabulary).
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import tokforge
from hypothesis import given
from hypothesis import strategies as st
from qtok.qtoklib.classification import get_classification
from qtok.qtoklib.tables import get_language_table, get_stats_table, get_unicode_tables
from qtok.qtoklib.tokenizer import load_vocab
from reference.corpus_metrics_ref import counts as ref_counts
from tokforge import InputError, Tokenizer, TokforgeError
from tokforge.metrics import CORPUS_METRICS, Report, Row, analyze, classify, qtok
from tokforge.metrics.corpus import measure, premium, premium_mean
from tokforge.metrics.purity import (
    TURKISH_AFFIXES,
    normalise,
    purity,
    purity_of_tokens,
    word_list,
)
from tokforge.metrics.qtok import (
    CATEGORIES,
    language_shares,
    normalise_tokenizer_json,
    qtok_reference,
    vocab_overlap,
)
from tokforge.metrics.renyi import counts_of, renyi_efficiency, renyi_entropy

# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gpt2(gpt2_file):
    return Tokenizer.from_file(gpt2_file)


@pytest.fixture(scope="session")
def cl100k(cl100k_file):
    return Tokenizer.from_file(cl100k_file)


@pytest.fixture(scope="session")
def tekken(tekken_file):
    return Tokenizer.from_file(tekken_file)


@pytest.fixture(scope="session")
def trained(corpora_dir):
    """A tokforge BPE trained on the shipped natural-language corpora."""
    files = sorted(p for p in corpora_dir.glob("*.txt") if not p.stem.startswith("code-"))
    return Tokenizer.train(files, vocab_size=4096, pattern="cl100k")


def _spm_pieces(data: bytes) -> list[tuple[str, int]]:
    """``(piece, type)`` of a SentencePiece ``ModelProto`` (field 1, repeated: piece = 1,
    type = 3): enough protobuf to read a vocabulary."""

    def varint(i):
        r = s = 0
        while True:
            b = data_[i]
            i += 1
            r |= (b & 0x7F) << s
            s += 7
            if b < 0x80:
                return r, i

    def fields(buf):
        nonlocal data_
        data_, i = buf, 0
        out = []
        while i < len(buf):
            key, i = varint(i)
            wt = key & 7
            if wt == 0:
                v, i = varint(i)
            elif wt == 2:
                n, i = varint(i)
                v = buf[i : i + n]
                i += n
            elif wt in (1, 5):
                n = 8 if wt == 1 else 4
                v = buf[i : i + n]
                i += n
            else:
                raise ValueError(f"wire type {wt}")
            out.append((key >> 3, v))
        return out

    data_ = data
    pieces = []
    for f, v in fields(data):
        if f == 1:
            sub = dict(fields(v))
            pieces.append((sub[1].decode("utf-8"), sub.get(3, 1)))
    return pieces


@pytest.fixture(scope="session")
def spm_json(tmp_path_factory, tekken_file) -> Path:
    """Mistral-7B's SentencePiece vocabulary (``tokenizer.model.v1`` in the same mistral-common
    wheel as tekken) as a ``tokenizer.json`` the way HF writes them (``model.vocab`` plus
    control tokens in ``added_tokens``). tokforge cannot encode with it yet; Qtok reads it."""
    wheel = next((tekken_file.parent / "downloads").glob("mistral_common-*.whl"))
    data = zipfile.ZipFile(wheel).read("mistral_common/data/tokenizer.model.v1")
    pieces = _spm_pieces(data)
    assert len(pieces) == 32000
    doc = {
        "added_tokens": [
            {"id": i, "content": p, "special": True}
            for i, (p, t) in enumerate(pieces)
            if t in (2, 3)
        ],
        "model": {"type": "BPE", "vocab": {p: i for i, (p, _) in enumerate(pieces)}},
    }
    path = tmp_path_factory.mktemp("spm") / "mistral_v1.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _qtok_package(path: Path) -> tuple[dict, dict]:
    """The qtok package's own pipeline on one file: ``(counts by category, token -> meta)``."""
    vocab = load_vocab(str(path))
    meta, _ = get_classification(vocab)
    table, _ = get_stats_table({"x": vocab}, vocab, meta)
    return dict(zip(table[0][1:], table[2][1:])), (vocab, meta)


# ---- Qtok -----------------------------------------------------------------------------------

SPEC_VECTORS = [
    (" the", ("spaced_alpha", "LATIN")),
    ("ing", ("inner_alpha", "LATIN")),
    (" при", ("spaced_alpha", "CYRILLIC")),
    ("a", ("pure_unicode", None)),
    ("é", ("pure_unicode", None)),
    ("Ā", ("pure_unicode", None)),
    ("ı", ("pure_unicode", None)),
    ("й", ("char_alpha", "CYRILLIC")),
    ("の", ("char_alpha", "HIRAGANA")),
    ("٣", ("char_alpha", "ARABIC-INDIC")),
    (" ", ("char_other", None)),
    ("✂", ("char_other", None)),
    ("Ġhello", ("inner_alpha", "LATIN")),
    ("<br>", ("inner_other", None)),
    ("[CLS]", ("control_tokens", None)),
    ("123", ("inner_other", None)),
    (" 123", ("spaced_other", None)),
    (" don't", ("spaced_other", None)),
    ("  ", ("spaced_other", None)),
    ("中国", ("inner_alpha", "CJK")),
    ("日本の", ("inner_other", None)),
    ("\t", ("char_errors", None)),
    ("\n\n", ("inner_errors", None)),
    (" \n", ("spaced_errors", None)),
    ("<|endoftext|>", ("control_tokens", None)),
    ("<0yÃ>", ("unicode_flanks", None)),
]


def test_classification_matches_the_spec_vectors_and_the_qtok_package():
    tokens = [t for t, _ in SPEC_VECTORS]
    meta, _ = get_classification(dict.fromkeys(tokens, 0))
    for token, expected in SPEC_VECTORS:
        assert classify(token) == expected, token
        cat, script = meta[token]
        assert cat == expected[0], token
        if expected[1] is not None:
            assert script == expected[1]


def test_normalisation_vectors_equal_qtok_on_tiny_tokenizer_files(tmp_path):
    byte_level = ["!", "a", "Ġ", "Ġthe", "ing", "Ã©", "Ã", "ĠÐ¿ÑĢÐ¸", "ĊĊ", "ĠĠ"]
    spm = ["<unk>", "<0x41>", "<0x20>", "▁the", "ing", "▁при", "ма", "a", "▁", "é"]
    expected = {
        "bl": {
            "!": "pure_unicode", "a": "pure_unicode", " ": "char_other",
            " the": "spaced_alpha", "é": "pure_unicode", "<0yÃ>": "unicode_flanks",
            " при": "spaced_alpha", "\n\n": "inner_errors", "  ": "spaced_other",
            "ing": "inner_alpha",
        },
        "spm": {
            "<unk>": "control_tokens", "A": "pure_unicode", "Ġ": "pure_unicode",
            " the": "spaced_alpha", " при": "spaced_alpha", "ма": "inner_alpha",
            "0X61": "inner_other", "0XE9": "inner_other", "▁": "char_other",
            "ing": "inner_alpha",
        },
    }  # fmt: skip
    for name, vocab in (("bl", byte_level), ("spm", spm)):
        path = tmp_path / f"{name}.json"
        path.write_text(
            json.dumps(
                {"model": {"vocab": {t: i for i, t in enumerate(vocab)}}}, ensure_ascii=False
            ),
            encoding="utf-8",
        )
        ours, collisions = normalise_tokenizer_json(path.read_text(encoding="utf-8"))
        theirs = load_vocab(str(path))
        assert ours == list(theirs.items()) and not collisions
        assert {t: classify(t)[0] for t, _ in ours} == expected[name]


@pytest.mark.parametrize("name", ["gpt2", "cl100k", "tekken", "mistral_spm"])
def test_category_counts_equal_the_qtok_package_on_real_vocabularies(
    name, request, tmp_path, spm_json
):
    if name == "mistral_spm":
        path = spm_json
    else:
        path = tmp_path / f"{name}.json"
        path.write_text(request.getfixturevalue(name).to_json(), encoding="utf-8")
    theirs, (vocab, meta) = _qtok_package(path)
    ours = qtok(path, mode="compat")
    assert ours.counts == theirs
    assert set(ours.tokens) == set(vocab)
    if name == "cl100k":  # the paper notebook's dbrx row (dbrx uses cl100k's vocabulary)
        dbrx = {"pure_unicode": 0.18, "char_alpha": 1.04, "spaced_alpha": 42.48}
        dbrx.update({"inner_alpha": 28.55, "inner_other": 22.14})
        for cat, share in dbrx.items():
            assert ours.shares[cat] == pytest.approx(share, abs=0.015), cat
    # unicode_stats.tsv and latin/cyrillic_stats.tsv: compare by label, never by position
    unicode = dict(zip(*get_unicode_tables({"x": vocab}, vocab, meta)[:2]))
    for (cat, script), share in ours.scripts.items():
        label = f"{script} ({cat.replace('_alpha', '')})"
        if label in unicode:
            assert round(share, 2) == unicode[label], label
    if name in ("gpt2", "mistral_spm"):  # the language tables are slow in qtok: two are enough
        data = resources.files("qtok") / "data"
        for group, file in (("latin", "tokens2natural_lat"), ("cyrillic", "tokens2natural_cyr")):
            table = json.loads((data / f"{file}.json").read_text(encoding="utf-8"))
            rows, unseen = get_language_table({"x": vocab}, vocab, meta, table)
            theirs_lang = dict(zip(rows[0][1:], rows[2][1:]))
            assert ours.unseen[group] == len(unseen)
            for lang, share in theirs_lang.items():
                if lang != "Other":
                    assert round(ours.languages[group][lang], 2) == share, (group, lang)


def test_tokforge_mode_reads_real_bytes_and_special_tokens(cl100k):
    r = qtok(cl100k, languages=False)
    assert r.counts["pure_unicode"] == 256  # exactly the byte tokens
    assert r.counts["control_tokens"] == len(cl100k.special_tokens)
    flanks = sum(1 for i in range(100256) if not _valid_utf8(cl100k.id_to_token(i)))
    assert r.counts["unicode_flanks"] == flanks - sum(
        1 for i in range(256) if not _valid_utf8(bytes([i]))
    )
    assert r.size == 100256 + len(cl100k.special_tokens)  # id 100256 does not exist
    # "é" as a two-byte token is a character, not a byte
    assert r.tokens["é"] == ("char_alpha", "LATIN")


def _valid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_spaced_word_extension_splits_spaced_alpha(gpt2):
    words = word_list("en", n=20000).words
    r = qtok(gpt2, languages=False, words=words)
    assert r.extension["spaced_word"] + r.extension["spaced_fragment"] == r.counts["spaced_alpha"]
    assert r.tokens[" the"][0] == "spaced_alpha" and " the"[1:] in words


#: The paper notebook's category shares (% of vocabulary): control, pure, char α, spaced α,
#: inner α, inner other.
PAPER_QTOK = {
    "Qtok": (0.68, 0.06, 4.38, 44.96, 38.55, 7.06),
    "llama-2": (0.05, 0.80, 5.09, 50.15, 38.66, 3.25),
    "pythia": (0.01, 0.37, 1.37, 54.30, 33.83, 5.58),
    "yi-34b": (0.30, 0.40, 6.57, 37.35, 52.43, 2.21),
    "falcon": (0.01, 0.26, 1.84, 61.26, 31.65, 3.14),
    "dbrx": (0.03, 0.18, 1.04, 42.48, 28.55, 22.14),
    "llama-3": (0.21, 0.16, 2.80, 43.23, 30.47, 18.04),
    "qwen": (0.01, 0.17, 9.63, 33.62, 36.21, 14.37),
    "command-r": (0.02, 0.08, 2.31, 57.24, 36.14, 1.78),
    "gemma": (0.06, 0.10, 6.14, 48.23, 40.18, 2.63),
}


def test_qtoks_bundled_vocabularies_reproduce_the_papers_tables():
    ref = qtok_reference(languages=False)
    ov = vocab_overlap({name: r for name, r in ref.items() if name != "Qtok"})
    assert len(ref) == 14 and ov["union"] == ref["Qtok"].size == 437906
    assert (ov["in_all"], ov["in_one"]) == (16311, 204903)
    cats = ("control_tokens", "pure_unicode", "char_alpha", "spaced_alpha", "inner_alpha")
    for name, paper in PAPER_QTOK.items():
        ours = tuple(round(ref[name].shares[c], 2) for c in (*cats, "inner_other"))
        assert ours == paper, name
    shares, _ = language_shares(ref["Qtok"])
    lat, cyr = shares["latin"], shares["cyrillic"]
    assert [round(lat[k], 2) for k in ("en", "de", "es")] == [25.26, 9.78, 6.64]
    assert [round(cyr[k], 2) for k in ("ru", "bg", "uk")] == [19.09, 7.99, 7.88]


# ---- Rényi ----------------------------------------------------------------------------------

T1 = "pick @@ed pick @@l @@ed pick @@les".split()
T2 = "pick @@e @@d pick @@l @@e @@d pick @@l @@e @@s".split()


def test_renyi_test_vectors_of_tokenization_scorer():
    c1, c2 = counts_of(T1), counts_of(T2)
    assert renyi_efficiency(c1, alpha=2.5) == pytest.approx(0.8265064834225245, abs=1e-12)
    assert renyi_efficiency(c2, alpha=2.5) == pytest.approx(0.9204840242168808, abs=1e-12)
    assert renyi_entropy(c1, alpha=2.5) == pytest.approx(1.653012966845049, abs=1e-12)
    assert renyi_entropy(c2, alpha=2.5) == pytest.approx(2.1372977167241545, abs=1e-12)
    assert renyi_efficiency(c1, alpha=1.0) == pytest.approx(0.9211854965885544, abs=1e-12)
    assert renyi_efficiency(c2, alpha=1.0) == pytest.approx(0.9609557933859342, abs=1e-12)
    assert renyi_entropy(c1, alpha=1.0) == pytest.approx(1.8423709931771088, abs=1e-12)
    assert renyi_entropy(c2, alpha=1.0) == pytest.approx(2.2312702546075758, abs=1e-12)
    # the README's "power 2.5" example is the default power 3.0
    assert renyi_efficiency(c1, alpha=3.0) == pytest.approx(0.8031528501359657, abs=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 2.5, 3.0])
def test_renyi_equals_tokenization_scorer_on_real_streams(alpha, cl100k, corpus_docs):
    import tokenization_scorer

    docs = [corpus_docs[k] for k in ("tr", "de", "ja")]
    ids = [cl100k.encode_ordinary(d) for d in docs]
    text = "\n".join(" ".join(map(str, x)) for x in ids)
    metric = "shannon_efficiency" if alpha == 1.0 else "renyi"
    kwargs = {} if alpha == 1.0 else {"power": alpha}
    theirs = tokenization_scorer.score(text, metric=metric, **kwargs)
    ours = renyi_efficiency(counts_of(np.concatenate([np.array(x) for x in ids])), alpha=alpha)
    assert ours == pytest.approx(theirs, abs=1e-9)
    theirs_v = tokenization_scorer.score(text, metric=metric, vocab=100256, **kwargs)
    ours_v = renyi_efficiency(
        counts_of(np.concatenate([np.array(x) for x in ids])), alpha=alpha, vocab=100256
    )
    assert ours_v == pytest.approx(theirs_v, abs=1e-9)
    st_ = measure(cl100k, docs)
    assert st_.renyi(alpha=alpha) == pytest.approx(theirs, abs=1e-9)


# ---- corpus metrics -------------------------------------------------------------------------


def _toy() -> Tokenizer:
    """Bytes plus the merges that encode "the cats sat" as [the][ cat][s][ sat]."""
    ranks = {bytes([b]): b for b in range(256)}
    for t in (b"th", b"the", b" c", b" ca", b" cat", b" s", b" sa", b" sat"):
        ranks[t] = len(ranks)
    return Tokenizer.from_ranks(ranks, pattern="gpt2")


def test_worked_example_the_cats_sat():
    tok = _toy()
    assert [tok.id_to_token(i) for i in tok.encode_ordinary("the cats sat")] == [
        b"the", b" cat", b"s", b" sat"
    ]  # fmt: skip
    s = measure(tok, ["the cats sat"])
    assert (s.tokens, s.words, s.bytes, s.chars) == (4, 3, 12, 12)
    assert s.fertility == pytest.approx(4 / 3) and s.pcw == pytest.approx(1 / 3)
    assert s.bytes_per_token == s.chars_per_token == 3.0


def test_worked_example_premium_10_vs_17_tokens():
    bytes_only = Tokenizer.from_ranks({bytes([b]): b for b in range(256)}, pattern="gpt2")
    en = measure(bytes_only, ["abcde fghi"], language="en")  # 10 tokens
    tr = measure(bytes_only, ["abcde fghij klmno"], language="tr")  # 17 tokens
    assert (en.tokens, tr.tokens) == (10, 17)
    assert premium(tr, en) == pytest.approx(1.7) and premium_mean(tr, en) == pytest.approx(1.7)


@given(
    docs=st.lists(
        st.text(alphabet=st.sampled_from(list("ab c\n\tçé中 \u3000\u00a0\x1c😀.")), max_size=60),
        min_size=1,
        max_size=3,
    ).filter(lambda ds: any(ds))
)
def test_native_counts_equal_the_reference(docs, gpt2):
    tok = gpt2
    docs = [d for d in docs if d]
    s = measure(tok, docs)
    pieces = [[tok.id_to_token(i) for i in tok.encode_ordinary(d)] for d in docs]
    ref = ref_counts(docs, pieces)
    assert (s.words, s.continued_words, s.chars, s.split_chars) == (
        ref["words"], ref["continued_words"], ref["chars"], ref["split_chars"]
    )  # fmt: skip
    assert s.line_tokens.tolist() == ref["line_tokens"]
    assert s.words == sum(len(d.split()) for d in docs)
    assert s.tokens == sum(len(p) for p in pieces)


def test_measure_equals_whole_document_encoding_across_chunks(cl100k, corpus_docs, monkeypatch):
    import tokforge.metrics.corpus as corpus

    text = corpus_docs["code-python"] + corpus_docs["ja"]
    whole = measure(cl100k, [text])
    monkeypatch.setattr(corpus, "CHUNK_CHARS", 5000)  # many chunks, cut by stream_cut
    chunked = measure(cl100k, [text])
    assert chunked.tokens == whole.tokens == len(cl100k.encode_ordinary(text))
    assert np.array_equal(chunked.type_counts, whole.type_counts)
    assert chunked.continued_words == whole.continued_words


def test_rates_on_real_text(cl100k, tekken, corpus_docs):
    ja = measure(cl100k, [corpus_docs["ja"]], language="ja")
    assert 0 < ja.partial_char_rate < 1 and ja.split_chars > 0
    assert ja.fertility == ja.tokens / ja.chars  # per character for Japanese
    en = measure(cl100k, [corpus_docs["en"]], language="en")
    assert en.split_chars == en.partial_tokens == en.byte_fallback_tokens == 0
    assert en.unk_rate == 0 and en.unk_id is None
    t = measure(tekken, [corpus_docs["en"]])
    assert t.unk_id == 0 and t.unk_tokens == 0  # tekken has <unk>; byte-level never emits it
    assert 0 < en.vocab_utilisation < 0.05


def test_every_kind_of_tokenizer_gives_the_same_numbers(gpt2, gpt2_file, corpus_docs):
    import tiktoken
    import tokenizers
    from tiktoken.load import load_tiktoken_bpe

    enc = tiktoken.Encoding(
        "gpt2",
        pat_str=tokforge.preset_pattern("gpt2"),
        mergeable_ranks=load_tiktoken_bpe(str(gpt2_file)),
        special_tokens={"<|endoftext|>": 50256},
    )
    hf = tokenizers.Tokenizer.from_str(gpt2.to_json())
    texts = {"tr": corpus_docs["tr"], "ru": corpus_docs["ru"]}
    reps = [
        analyze({"t": t}, texts, metrics=["tokens", "fertility", "pcw", "renyi_efficiency"])
        for t in (gpt2, gpt2_file, enc, hf)
    ]
    for r in reps[1:]:
        assert r.rows == reps[0].rows


def test_lib_tokenizers_are_measured_too():
    from tokforge.lib_model import LibConfig

    tok = Tokenizer.train(
        texts=["of the cat, of the dog"] * 30, vocab_size=None, algorithm="lib",
        lib=LibConfig(steps=40),
    )  # fmt: skip
    s = measure(tok, ["of the bird, of the cat"])
    assert s.tokens == len(tok.encode_ordinary("of the bird, of the cat"))
    assert s.words == 6 and s.continued_words >= 1  # "bird," is spelled byte by byte
    assert qtok(tok, languages=False).counts["pure_unicode"] >= 256


# ---- %TR / %Pure ----------------------------------------------------------------------------


def test_worked_example_tr_and_pure():
    toks = [" evler", "de", "ler", "xq", " ev", "de"]
    r = purity_of_tokens(toks, lang="tr")
    assert (r.types, r.tr, r.pure) == (5, 80.0, 60.0)
    r = purity_of_tokens(toks, lang="tr", weighting="token")
    assert r.tr == pytest.approx(500 / 6) and r.pure == pytest.approx(400 / 6)
    assert r.params["failures"] == r.params["timeouts"] == 0
    assert "ler" in TURKISH_AFFIXES and normalise(" İNSAN", "tr") == "insan"


def test_turkish_tr_on_the_shipped_corpus(gpt2, cl100k, tekken, trained, corpus_docs):
    results = {}
    for name, tok in (
        ("gpt2", gpt2),
        ("cl100k", cl100k),
        ("tekken", tekken),
        ("tokforge", trained),
    ):
        r = purity(tok, [corpus_docs["tr"]], lang="tr")
        assert 0 < r.pure <= r.tr < 100 and r.params["timeouts"] == 0
        results[name] = r
    # a vocabulary trained on these languages keeps more whole Turkish words than GPT-2
    assert results["tokforge"].tr > results["gpt2"].tr
    tok = purity(trained, [corpus_docs["tr"]], lang="tr", weighting="token")
    assert tok.weighting == "token" and tok.total > results["tokforge"].total


def test_languages_without_analyser_or_word_list():
    r = purity_of_tokens(["Haus", "er"], lang="de")
    assert r.tr == 100.0 and r.pure is None and r.pure_reason == "no morphological analyser"
    sw = word_list("sw")
    assert sw.source.startswith("hunspell:") and "haki" in sw.words  # wordfreq has no Swahili
    with pytest.raises(InputError, match="no word list for 'xx'"):
        word_list("xx")
    with pytest.raises(InputError, match="not a language code"):
        word_list("Turkish")
    ja = purity_of_tokens(["日本"], lang="ja")
    assert ja.tr is None and "CJK" in ja.tr_reason


# ---- analyze / Report / CLI -----------------------------------------------------------------


def test_analyze_report_round_trips_and_names_its_parameters(gpt2, trained, corpus_docs):
    texts = {k: corpus_docs[k] for k in ("en", "tr", "zh")}
    rep = analyze({"gpt2": gpt2, "mine": trained}, texts, metrics=[*CORPUS_METRICS, "qtok"])
    assert rep.value("gpt2", "en", "premium") == 1.0
    assert rep.value("gpt2", "tr", "nsl") == 1.0
    assert rep.value("mine", "tr", "nsl") == pytest.approx(
        len(trained.encode_ordinary(texts["tr"])) / len(gpt2.encode_ordinary(texts["tr"]))
    )
    renyi = next(r for r in rep.rows if r.metric == "renyi_efficiency")
    assert renyi.params["alpha"] == 2.5 and renyi.params["V"] == "observed types"
    assert any("zh" in n and "per character" in n for n in rep.notes)
    assert Report.from_json(rep.to_json()).rows == rep.rows
    lines = rep.to_csv().splitlines()
    assert lines[0] == "tokenizer,language,metric,value,params" and len(lines) == len(rep.rows) + 1
    assert rep.value("*", "*", "overlap.in_all") > 0
    assert "fert" in rep.table()


def test_bad_input_gives_typed_errors(gpt2, corpus_docs):
    with pytest.raises(InputError, match="no corpus for"):
        analyze([gpt2], {"en": corpus_docs["en"]}, langs=["xx"])
    with pytest.raises(InputError, match="empty corpora"):
        analyze([gpt2], {"en": ""})
    with pytest.raises(InputError, match="unknown metrics"):
        analyze([gpt2], {"en": "a"}, metrics=["fertilty"])
    with pytest.raises(InputError, match="cannot use object"):
        analyze([object()], {"en": "a"})
    import tokenizers

    with pytest.raises(TokforgeError):  # a HF tokenizer with no vocabulary or pre-tokenizer
        analyze([tokenizers.Tokenizer(tokenizers.models.BPE())], {"en": "a"})
    with pytest.raises(InputError, match="empty corpus"):
        measure(gpt2, [""])


def test_missing_optional_packages_name_the_extra(monkeypatch, gpt2):
    q = importlib.import_module("tokforge.metrics.qtok")  # the module, not the function

    for mod in ("wordfreq", "qtok", "matplotlib"):
        monkeypatch.setitem(sys.modules, mod, None)
    q._qtok_table.cache_clear()
    with pytest.raises(InputError, match=r"tokforge\[metrics\]"):
        word_list("de")
    with pytest.raises(InputError, match=r"tokforge\[metrics\]"):
        qtok(gpt2)
    rep = Report([])
    with pytest.raises(InputError, match=r"tokforge\[plot\]"):
        rep.plot("unused")
    q._qtok_table.cache_clear()


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Chromium is needed to check the HTML report: `make browser` installs it"
    return exe


def test_html_report_renders_its_plots_in_headless_chromium(tmp_path, gpt2, trained, corpus_docs):
    texts = {k: corpus_docs[k] for k in ("en", "tr", "de")}
    rep = analyze({"gpt2": gpt2, "mine": trained}, texts, metrics=[*CORPUS_METRICS, "qtok"])
    page = rep.html(tmp_path / "report.html")
    text = page.read_text(encoding="utf-8")
    assert "src='http" not in text and "<script" not in text  # self-contained
    # ask the browser whether every image decoded: a probe script sets the title
    probe = tmp_path / "probe.html"
    probe.write_text(
        text.replace(
            "</body>",
            "<script>window.onload=()=>{const i=[...document.images];document.title="
            "'imgs:'+i.length+':'+i.filter(x=>x.complete&&x.naturalWidth>100).length}</script>"
            "</body>",
        ),
        encoding="utf-8",
    )
    r = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    title = r.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    n = len(rep._figures())
    assert title == f"imgs:{n}:{n}" and n >= 5, r.stderr[-2000:]


def test_cli_compares_several_tokenizers_and_writes_the_report(tmp_path, gpt2_file, corpora_dir):
    out = tmp_path / "out"
    files = [str(corpora_dir / f) for f in ("en.txt", "tr.txt")]
    cmd = [sys.executable, "-m", "tokforge", "analyze", "-t", str(gpt2_file), "-t", "cl100k_base"]
    r = subprocess.run(
        [*cmd[:-2], "-t", str(gpt2_file), "--qtok", "--out", str(out), "--json", *files],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    toks = {row["tokenizer"] for row in doc["rows"]} - {"*"}
    assert toks == {"gpt2", "gpt2'"}
    assert {row["language"] for row in doc["rows"]} == {"en", "tr", "*"}
    assert (out / "report.csv").is_file() and (out / "report.json").is_file()
    assert (out / "report.html").read_text(encoding="utf-8").count("data:image/png") >= 3
    r = subprocess.run([*cmd[:-2], "--tr-lang", "xx", *files], capture_output=True, text=True)
    assert r.returncode == 1 and "xx" in r.stderr and "Traceback" not in r.stderr


def test_categories_are_qtoks_twelve():
    assert len(CATEGORIES) == 12 and CATEGORIES[0] == "control_tokens"


def test_correlation_with_downstream_scores_reproduces_the_papers_r():
    tr = {"gemma-2": 48.63, "llama-3.1": 45.80, "qwen2.5": 40.33, "aya": 50.67}
    pure = {"gemma-2": 37.05, "llama-3.1": 30.91, "qwen2.5": 30.15, "aya": 32.96}
    mmlu = {"gemma-2": 72.10, "llama-3.1": 70.42, "qwen2.5": 61.68, "aya": 70.66}
    rows = [Row(t, "tr", "tr_pct", v, {}) for t, v in tr.items()]
    rows += [Row(t, "tr", "pure_pct", v, {}) for t, v in pure.items()]
    rep = Report(rows)
    assert rep.correlation("tr_pct", mmlu) == pytest.approx(
        np.corrcoef(list(tr.values()), list(mmlu.values()))[0, 1]
    )
    assert round(rep.correlation("tr_pct", mmlu), 2) == 0.90
    assert round(rep.correlation("pure_pct", mmlu, language="tr"), 2) == 0.68
    with pytest.raises(InputError, match="3 or more"):
        rep.correlation("tr_pct", {"aya": 1.0, "gemma-2": 2.0})
