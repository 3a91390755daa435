"""Dynamic batch-level merging: the Rust fast path equals the naive reference (merge log and output)
on random batches; the worked examples of docs/dynamic_merging.md §9; the inverse; tokenizer-derived
word boundaries; model-input helpers; bad input raises TokforgeError subclasses, never panics."""

from __future__ import annotations

import ast
import inspect
import math
import os

import numpy as np
import pytest
import tokforge
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import bpe_train, dynamic_ref
from tokforge import InputError, Tokenizer, VocabError, _core
from tokforge.dynamic import (
    MergeResult,
    UnitEmbedder,
    from_hf_encodings,
    merge_batch,
    merge_batch_texts,
    token_table,
)

MAX = settings(max_examples=int(os.environ.get("TOKFORGE_MAX_EXAMPLES", 200)), deadline=None)

# the worked example of docs/dynamic_merging.md §9
UN, BELIEV, ABLE, THE, RE, DO, DO2 = range(7)
EX_IDS = [[UN, BELIEV, ABLE, THE, RE, DO], [RE, DO, UN, BELIEV, ABLE], [DO2, ABLE, THE]]
EX_WORDS = [[0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 1], [0, 0, 1]]


def ex(**kw) -> MergeResult:
    return merge_batch(EX_IDS, word_ids=EX_WORDS, **{"min_count": 1, **kw})


def log(r: MergeResult) -> list[tuple]:
    return [(m.left, m.right, m.count) for m in r.merges]


def seq_units(r: MergeResult) -> list[list[tuple[int, ...]]]:
    units = r.units
    return [[units[u] for u in s.tolist()] for s in r.sequences()]


# ---- the worked examples (docs/dynamic_merging.md §9) ----------------------------------------
def test_worked_example_merges_to_word_level_in_four_merges():
    r = ex()
    assert log(r) == [((UN,), (BELIEV,), 2), ((UN, BELIEV), (ABLE,), 2), ((RE,), (DO,), 2),
                      ((DO2,), (ABLE,), 1)]
    assert [m.applied for m in r.merges] == [2, 2, 2, 1]
    assert (r.len_initial, r.len_word_level, r.len_final) == (14, 7, 7)
    assert r.units == [(UN, BELIEV, ABLE), (THE,), (RE, DO), (DO2, ABLE)]
    assert r.unit_ids.tolist() == [0, 1, 2, 2, 0, 3, 1]
    assert r.seq_offsets.tolist() == [0, 3, 5, 7]
    assert r.spans.tolist() == [[0, 3], [3, 4], [4, 6], [0, 2], [2, 5], [0, 2], [2, 3]]
    assert r.unit_base_id.tolist() == [-1, THE, -1, -1]
    assert r.reduction == pytest.approx(0.5) and r.reduction_word_level == 1.0


@pytest.mark.parametrize("opts, merges, length", [
    ({"min_count": 2}, 3, 8),
    ({"target_reduction": 0.4, "relative_to": "word_level"}, 2, 10),
    ({"target_reduction": 0.25}, 2, 10),
    ({"target_length": 12}, 1, 12),
    ({"max_merges": 0}, 0, 14),
    ({"max_merges": 3}, 3, 8),
])
def test_worked_example_stop_rules(opts, merges, length):
    r = ex(**opts)
    assert (len(r.merges), r.len_final) == (merges, length)
    assert [x.tolist() for x in r.expand()] == EX_IDS


def test_max_merges_zero_is_the_identity_with_a_unit_table():
    r = ex(max_merges=0)
    assert r.units == [(0,), (1,), (2,), (3,), (4,), (5,), (6,)]
    assert r.unit_base_id.tolist() == list(range(7))


@pytest.mark.parametrize("n, counts, applied", [(3, [2, 1], [1, 1]), (4, [3, 1], [2, 1])])
def test_runs_of_one_token_merge_left_to_right_without_reuse(n, counts, applied):
    r = merge_batch([[9] * n], word_boundaries="none", min_count=1)
    assert [m.count for m in r.merges] == counts
    assert [m.applied for m in r.merges] == applied
    assert r.units == [(9,) * n]
    first = merge_batch([[9] * n], word_boundaries="none", min_count=1, max_merges=1)
    assert seq_units(first) == [[(9, 9), (9,)]] if n == 3 else [[(9, 9), (9, 9)]]


def test_ties_go_to_the_pair_that_occurs_first():
    r = merge_batch([[3, 4], [1, 2]], word_boundaries="none", min_count=1, max_merges=1)
    assert r.merges[0].new == (3, 4)


def test_a_never_merge_position_blocks_both_neighbours():
    r = merge_batch([[1, 7, 1, 1, 7, 1]], word_ids=[[0, -1, 0, 0, -1, 0]], min_count=1)
    assert seq_units(r) == [[(1,), (7,), (1, 1), (7,), (1,)]]


def test_keep_last_leaves_the_final_tokens_unmerged():
    r = merge_batch([[1, 2, 1, 2, 1, 2]], word_boundaries="none", min_count=1, keep_last=2)
    assert seq_units(r) == [[(1, 2, 1, 2), (1,), (2,)]]
    r = merge_batch([[1, 2], [1, 2]], word_boundaries="none", min_count=1, keep_last=[0, 1])
    assert seq_units(r) == [[(1, 2)], [(1,), (2,)]]


def test_max_unit_constituents_bounds_every_unit():
    r = merge_batch([[5] * 9], word_boundaries="none", min_count=1, max_unit_constituents=3)
    assert max(len(u) for u in r.units) <= 3
    assert r.spans.tolist() == [[0, 2], [2, 4], [4, 6], [6, 9]]  # (xx, xx) would be 4


def test_empty_batch_and_empty_sequences():
    r = merge_batch([], word_boundaries="none")
    assert (r.len_initial, r.num_sequences, r.seq_offsets.tolist()) == (0, 0, [0])
    assert r.expand() == [] and r.to_padded()[0].shape == (0, 0)
    r = merge_batch([[], [4, 4, 4, 4], []], word_boundaries="none")
    assert r.seq_offsets.tolist() == [0, 0, 2, 2]
    assert [x.tolist() for x in r.expand()] == [[], [4, 4, 4, 4], []]


def test_flat_input_with_offsets_equals_nested_input():
    a = ex()
    b = merge_batch(np.concatenate(EX_IDS), offsets=[0, 6, 11, 14], word_ids=EX_WORDS,
                    min_count=1)
    assert log(a) == log(b) and a.unit_ids.tolist() == b.unit_ids.tolist()


# ---- differential: Rust == reference --------------------------------------------------------
@st.composite
def batches(draw, max_vocab: int = 5):
    vocab = draw(st.integers(2, max_vocab))
    b = draw(st.integers(0, 5))
    seqs, words = [], []
    for _ in range(b):
        n = draw(st.integers(0, 25))
        ids = draw(st.lists(st.integers(0, vocab - 1), min_size=n, max_size=n))
        starts = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        never = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
        w, ws = -1, []
        for i in range(n):
            w += 1 if (starts[i] or i == 0) else 0
            ws.append(-1 if never[i] == 0 else w)
        seqs.append(ids)
        words.append(ws)
    return seqs, words


options = st.fixed_dictionaries({
    "max_merges": st.one_of(st.none(), st.integers(0, 8)),
    "min_count": st.integers(1, 3),
    "per_sample": st.booleans(),
    "max_unit_constituents": st.one_of(st.none(), st.integers(1, 5)),
    "target": st.one_of(
        st.none(),
        st.tuples(st.sampled_from(["absolute", "word_level"]),
                  st.sampled_from([0.0, 0.1, 0.25, 0.4, 0.5, 0.9, 1.0])),
        st.tuples(st.just("length"), st.integers(0, 40))),
})


def api_options(opts: dict) -> dict:
    out = {k: v for k, v in opts.items() if k != "target"}
    t = opts["target"]
    if t is not None:
        if t[0] == "length":
            out["target_length"] = t[1]
        else:
            out["target_reduction"] = t[1]
            out["relative_to"] = "input" if t[0] == "absolute" else "word_level"
    return out


def assert_same(r: MergeResult, ref: dict) -> None:
    assert [tuple(m) for m in r.merges] == ref["merges"]
    assert [s.tolist() for s in r.sequences()] == ref["units"]
    assert r.units == ref["constituents"]
    assert [tuple(s) for s in r.spans.tolist()] == ref["spans"]
    assert r.word_ids.tolist() == ref["word_ids"]
    assert (r.len_initial, r.len_final, r.len_word_level) == (
        ref["len_initial"], ref["len_final"], ref["len_word_level"])


@MAX
@given(batches(), options)
def test_merge_log_and_output_equal_the_reference(batch, opts):
    seqs, words = batch
    r = merge_batch(seqs, word_ids=words, **api_options(opts))
    assert_same(r, dynamic_ref.merge_batch(seqs, words, **opts))


# bytes identity: 0='a' 1='b' 2='ab' 3='a' (same bytes as 0) 4='<s>' (special, same bytes as 5..7)
TABLE = [b"a", b"b", b"ab", b"a", b"<s>", b"<", b"s", b">"]
SPECIAL = frozenset({4})


@MAX
@given(batches(max_vocab=8), options)
def test_bytes_identity_equals_the_reference(batch, opts):
    seqs, words = batch
    r = merge_batch(seqs, word_ids=words, identity="bytes",
                    tokenizer=token_table(TABLE, special_ids=sorted(SPECIAL)), **api_options(opts))
    ref = dynamic_ref.merge_batch(seqs, words, identity="bytes", token_bytes=TABLE,
                                  special_ids=SPECIAL, **opts)
    assert_same(r, ref)
    # the inverse gives back the bytes (ids may differ where equal bytes were joined)
    for s, x in zip(seqs, r.expand()):
        assert b"".join(TABLE[i] for i in x.tolist()) == b"".join(TABLE[i] for i in s)


def test_bytes_identity_joins_different_id_paths_with_equal_bytes():
    tt = token_table(TABLE, special_ids=[4])
    # [a][b] and [ab]; a special "<s>" never joins the merged "<s>" from "<" "s" ">"
    r = merge_batch([[0, 1, 2, 3, 1], [4, 5, 6, 7, 4]], word_ids=[[0, 0, 1, 2, 2], [-1, 0, 0, 0, -1]],
                    identity="bytes", tokenizer=tt, min_count=1)
    assert r.strings() == [["ab", "ab", "ab"], ["<s>", "<s>", "<s>"]]
    assert r.unit_ids.tolist() == [0, 0, 0, 1, 2, 1]


@MAX
@given(batches(), options)
def test_expand_inverts_the_merge_and_spans_partition_each_sequence(batch, opts):
    seqs, words = batch
    r = merge_batch(seqs, word_ids=words, **api_options(opts))
    assert [x.tolist() for x in r.expand()] == seqs
    for s in range(r.num_sequences):
        sp = r.spans[r.seq_offsets[s]:r.seq_offsets[s + 1]].tolist()
        assert [a for a, _ in sp] == ([0] + [b for _, b in sp[:-1]] if sp else [])
        assert (sp[-1][1] if sp else 0) == len(seqs[s])
        for (a, b), w in zip(sp, r.word_ids[r.seq_offsets[s]:r.seq_offsets[s + 1]].tolist()):
            assert len(set(words[s][a:b])) == 1 and words[s][a] == w  # never across words
            assert w != -1 or b - a == 1                              # specials stay alone
    assert int(r.lengths.sum()) == r.len_final


@MAX
@given(batches())
def test_length_drops_by_applied_merges_and_reaches_word_level(batch):
    seqs, words = batch
    full = merge_batch(seqs, word_ids=words, min_count=1)
    assert full.len_final == full.len_word_level
    assert full.len_initial - sum(m.applied for m in full.merges) == full.len_final
    lens = [merge_batch(seqs, word_ids=words, min_count=1, max_merges=m).len_final
            for m in range(len(full.merges) + 1)]
    assert lens == sorted(lens, reverse=True)


@MAX
@given(batches(), options)
def test_per_sample_equals_merging_each_sequence_alone(batch, opts):
    seqs, words = batch
    opts = {**api_options(opts), "per_sample": True}
    r = merge_batch(seqs, word_ids=words, **opts)
    for s in range(len(seqs)):
        alone = merge_batch([seqs[s]], word_ids=[words[s]], **opts)
        assert seq_units(alone)[0] == seq_units(r)[s]
        assert [m[:5] for m in alone.merges] == [m[:5] for m in r.merges if m.sample == s]


def test_per_sample_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 6, size=300).tolist() for _ in range(40)]
    flags = [(rng.random(300) < 0.3).tolist() for _ in range(40)]
    a = merge_batch(seqs, word_boundaries=flags, per_sample=True, num_threads=1)
    b = merge_batch(seqs, word_boundaries=flags, per_sample=True, num_threads=2)
    assert a.merges == b.merges and a.unit_ids.tolist() == b.unit_ids.tolist()


# ---- word boundaries from tokenizers --------------------------------------------------------
@pytest.fixture(scope="module")
def tok(corpora_dir) -> Tokenizer:
    files = [corpora_dir / f"{lang}.txt" for lang in ("en", "de", "fr", "ru", "zh")]
    return Tokenizer.train(files, vocab_size=1200)


def test_word_start_flags_and_callables_give_the_same_result():
    flags = [[True, False, False, True, True, False], [True, False, True, False, False],
             [True, False, True]]
    a = merge_batch(EX_IDS, word_boundaries=flags, min_count=1)
    b = merge_batch(EX_IDS, word_boundaries=lambda ids: flags[[len(s) for s in EX_IDS].index(
        len(ids))], min_count=1)
    assert log(a) == log(ex()) == log(b)


texts = st.lists(st.text(alphabet="ab c,.-\n'é日本", max_size=30), min_size=1, max_size=4)


@MAX
@given(texts)
def test_word_ids_are_the_pretokenization_pieces(tok, batch):
    ids = [tok.encode_ordinary(t) for t in batch]
    r = merge_batch(ids, tokenizer=tok, min_count=1)
    assert r.len_final == r.len_word_level
    for t, units in zip(batch, r.strings()):
        want = bpe_train.pieces(tok.pattern, t)
        assert units == want  # word level = one unit per piece (all pieces are valid UTF-8)
    for s, x in enumerate(ids):
        want = dynamic_ref.word_ids([tok.id_to_token(i) for i in x],
                                    lambda text: bpe_train.pieces(tok.pattern, text))
        got = r.word_ids[r.seq_offsets[s]:r.seq_offsets[s + 1]]
        assert r.expand()[s].tolist() == x
        assert got.tolist() == sorted(set(want))  # one unit per word, words numbered from 0


def test_merge_batch_texts_on_a_real_corpus_keeps_text_and_words(tok, corpora_dir):
    lines = [ln for ln in (corpora_dir / "en.txt").read_text(encoding="utf-8").splitlines()
             if ln.strip()][:64]
    r = merge_batch_texts(lines, tok)
    assert ["".join(s) for s in r.strings()] == lines
    assert r.len_word_level <= r.len_final < r.len_initial
    for u in r.unit_strings:
        assert len(bpe_train.pieces(tok.pattern, u)) == 1 or "\ufffd" in u


def test_boundary_modes_are_ordered_by_how_much_they_allow(tok):
    text = ["state-of-the-art models, state-of-the-art results (really)."] * 3
    lw = {m: merge_batch_texts(text, tok, word_boundaries=m, min_count=1).len_final
          for m in ("word", "whitespace", "whitespace_hyphen", "none")}
    assert lw["none"] == 3 and lw["whitespace"] == 15
    assert lw["whitespace"] <= lw["whitespace_hyphen"] <= lw["word"]
    r = merge_batch_texts(text, tok, word_boundaries="whitespace_hyphen", min_count=1)
    assert r.strings()[0][:2] == ["state-of-the-art", " models"]


def test_special_tokens_never_merge(corpora_dir):
    t = Tokenizer.train([corpora_dir / "en.txt"], vocab_size=400, special_tokens=["<s>"])
    s = t.token_to_id("<s>")
    ids = [t.encode_ordinary("the the") + [s] + t.encode_ordinary("the")]
    r = merge_batch(ids, tokenizer=t, word_boundaries="none", min_count=1)
    assert r.strings() == [["the the", "<s>", "the"]]
    assert r.word_ids.tolist() == [0, -1, 0]


def test_bytes_identity_with_a_tokforge_tokenizer_expands_to_the_same_text(tok):
    lines = ["unbelievable believable", "believable unbelievable"] * 4
    r = merge_batch_texts(lines, tok, identity="bytes", min_count=1)
    assert [tok.decode(x.tolist()) for x in r.expand()] == lines
    assert len(set(r.unit_bytes)) == r.num_units


def test_tiktoken_encoding_gives_the_same_result_as_tokforge(tok):
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {tok.id_to_token(i): i for i in range(tok.vocab_size)}
    enc = tiktoken.Encoding("tf", pat_str=tok.pattern, mergeable_ranks=ranks, special_tokens={})
    lines = ["the cat sat on the mat", "the mat sat on the cat", "Привет мир, мир"]
    a = merge_batch_texts(lines, tok, min_count=1)
    b = merge_batch_texts(lines, enc, min_count=1)
    assert a.merges == b.merges and a.strings() == b.strings()
    assert a.surface_matrix(8, -1, surface="retokenize")[0].tolist() == \
        b.surface_matrix(8, -1, surface="retokenize")[0].tolist()


def test_cl100k_with_tiktoken_and_tokforge_gives_identical_merges(cl100k_file, corpora_dir):
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    ours = Tokenizer.from_tiktoken(cl100k_file)
    enc = tiktoken.Encoding("cl100k_base", pat_str=ours.pattern,
                            mergeable_ranks=load_tiktoken_bpe(str(cl100k_file)),
                            special_tokens={"<|endoftext|>": 100257})
    lines = [ln for ln in (corpora_dir / "de.txt").read_text(encoding="utf-8").splitlines()
             if ln.strip()][:32]
    a = merge_batch_texts(lines, ours)
    b = merge_batch_texts(lines, enc)
    assert a.merges == b.merges and a.strings() == b.strings()
    assert ["".join(s) for s in a.strings()] == lines
    assert a.len_word_level < a.len_final < a.len_initial


def test_hf_encodings_give_word_ids(tok):
    tokenizers = pytest.importorskip("tokenizers")
    hf = tokenizers.Tokenizer.from_str(tok.to_json())
    lines = ["the cat sat on the mat", "the mat sat on the cat"]
    ids, wids = from_hf_encodings(hf.encode_batch(lines))
    assert ids == [tok.encode_ordinary(t) for t in lines]
    ours = merge_batch(ids, tokenizer=tok, max_merges=0)  # word ids from tokforge's pieces
    assert wids == [x.tolist() for x in np.split(ours.word_ids, ours.seq_offsets[1:-1])]
    a = merge_batch_texts(lines, hf, min_count=1)
    b = merge_batch_texts(lines, tok, min_count=1)
    assert a.merges == b.merges and a.strings() == b.strings()


# ---- model inputs ---------------------------------------------------------------------------
def test_padding_for_encoders_and_decoder_prefill():
    r = ex()
    enc = r.encoder_inputs(pad_unit=-1)
    assert enc["unit_ids"].tolist() == [[0, 1, 2], [2, 0, -1], [3, 1, -1]]
    assert enc["position_ids"].tolist() == [[0, 1, 2], [0, 1, 0], [0, 1, 0]]
    pre = r.prefill_inputs(pad_unit=-1)
    assert pre["unit_ids"].tolist() == [[0, 1, 2], [-1, 2, 0], [-1, 3, 1]]
    assert pre["attention_mask"].tolist() == [[1, 1, 1], [0, 1, 1], [0, 1, 1]]
    assert pre["position_ids"].tolist() == [[0, 1, 2], [0, 0, 1], [0, 0, 1]]
    assert pre["last_index"].tolist() == [2, 2, 2]


def test_word_labels_go_to_the_first_unit_of_each_word():
    r = ex(max_merges=1)  # A: [un believ] able the re do
    labels = r.align_word_labels([[7, 8, 9], [5, 6], [3, 4]])
    assert labels[0].tolist() == [7, -100, 8, 9, -100]
    assert labels[2].tolist() == [3, -100, 4]


def test_surface_matrix_pads_and_counts_truncations():
    m, cut = ex().surface_matrix(2, pad_id=-1)
    assert m.tolist() == [[UN, BELIEV], [THE, -1], [RE, DO], [DO2, ABLE]]
    assert cut == 1


def test_unit_embedder_caches_units_across_batches():
    calls = []

    def hn(surface: np.ndarray) -> np.ndarray:
        calls.append(len(surface))
        return surface.sum(axis=1, keepdims=True).astype(float)

    base = np.arange(10, dtype=float)[:, None] * 100
    emb = UnitEmbedder(hn, maxlen=4, pad_id=0, base_embeddings=base, special_ids=[THE])
    x, mask = emb.embed(ex())
    assert x[0, :, 0].tolist() == [UN + BELIEV + ABLE, 300.0, RE + DO]
    assert mask.sum() == 7 and calls == [3]
    emb.embed(ex())
    assert calls == [3] and (emb.hits, emb.misses) == (3, 3)


def test_result_repr_and_package_export():
    assert "length 14 -> 7" in repr(ex())
    assert tokforge.dynamic.merge_batch is merge_batch


# ---- the native result and the one adapter -------------------------------------------------
def test_the_native_result_is_frozen_typed_and_matches_the_wrapper():
    flat = np.concatenate(EX_IDS).astype(np.int64)
    lengths = np.array([len(s) for s in EX_IDS], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    words = np.concatenate(EX_WORDS).astype(np.int64)
    native = _core.merge_batch(flat, offsets, word_ids=(words, lengths), min_count=1)
    assert isinstance(native, _core.MergeResult)
    r = ex()
    for name in ("unit_ids", "seq_offsets", "spans", "word_ids", "unit_key", "unit_offsets",
                 "unit_constituents", "unit_base_id"):
        assert getattr(native, name).tolist() == getattr(r, name).tolist(), name
    with pytest.raises(AttributeError):
        native.len_final = 0
    with pytest.raises(TypeError):
        _core.MergeResult()
    dtypes = {"unit_ids": np.int32, "seq_offsets": np.int64, "spans": np.int32,
              "word_ids": np.int32, "unit_key": np.int32, "unit_offsets": np.int64,
              "unit_constituents": np.int32, "unit_base_id": np.int32, "key_offsets": np.int64,
              "key_constituents": np.int32, "merge_log": np.int64}
    for name, dtype in dtypes.items():
        arr = getattr(native, name)
        assert arr.dtype == dtype, name
        assert getattr(native, name) is not arr  # a new array each time: the result stays intact
    assert native.spans.shape == (7, 2) and native.merge_log.shape == (4, 6)
    assert native.merge_log[:, 3:].tolist() == [[2, 2, -1], [2, 2, -1], [2, 2, -1], [1, 1, -1]]
    assert native.key_bytes is None and native.num_merges == 4
    assert (native.len_initial, native.len_final, native.len_word_level) == (14, 7, 7)
    assert repr(native) == "MergeResult(sequences=3, merges=4, length 14 -> 7)"


def test_tokenizer_file_paths_and_models_are_coerced_like_the_tokenizer(tok, tmp_path):
    lines = ["the cat sat on the mat", "the mat sat on the cat"]
    ids = [tok.encode_ordinary(t) for t in lines]
    path = tok.save(tmp_path / "tokenizer.json")
    a = merge_batch(ids, tokenizer=tok, min_count=1)
    for other in (path, str(path), tok.model):
        b = merge_batch(ids, tokenizer=other, min_count=1)
        assert a.merges == b.merges and a.strings() == b.strings()
        assert a.surface_matrix(4, -1, surface="retokenize")[0].tolist() == \
            b.surface_matrix(4, -1, surface="retokenize")[0].tolist()


def test_a_token_table_gives_strings_but_no_pre_tokenizer_and_no_merges(tok):
    ids = [tok.encode_ordinary("the cat, the cat")]
    tt = token_table([tok.id_to_token(i) for i in range(tok.vocab_size)])
    a = merge_batch(ids, tokenizer=tok, word_boundaries="whitespace", min_count=1)
    b = merge_batch(ids, tokenizer=tt, word_boundaries="whitespace", min_count=1)
    assert a.merges == b.merges and a.strings() == b.strings() == [["the", " cat,", " the",
                                                                    " cat"]]
    with pytest.raises(InputError, match="needs the base tokenizer's merges"):
        b.surface_matrix(4, -1, surface="retokenize")


def sentencepiece_style_hf():
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Metaspace()
    hf.decoder = decoders.Metaspace()
    hf.train_from_iterator(["the cat sat on the mat"] * 5, trainers.BpeTrainer(vocab_size=40))
    return hf


def test_a_sentencepiece_style_hf_tokenizer_loads_but_is_not_merged_dynamically():
    hf = sentencepiece_style_hf()
    ids = [e.ids for e in hf.encode_batch(["the cat", "the mat"])]
    tok = Tokenizer.coerce(hf)
    assert tok.kind == "sentencepiece" and tok.encode("the cat") == ids[0]
    for call in (lambda: merge_batch(ids, tokenizer=hf, min_count=1),
                 lambda: merge_batch_texts(["the cat", "the mat"], hf)):
        with pytest.raises(InputError) as e:
            call()
        assert "exists only for byte-level BPE tokenizers" in str(e.value)


def test_a_lib_tokenizer_is_refused_with_a_clear_message():
    from tokforge.lib_model import LibConfig

    lib = Tokenizer.train(texts=["of the cat, of the dog"] * 30, vocab_size=None,
                          algorithm="lib", lib=LibConfig(steps=20))
    with pytest.raises(InputError) as e:
        merge_batch_texts(["of the cat"], lib)
    assert str(e.value).startswith("dynamic merging exists only for BPE tokenizers, and this "
                                   "is a LiB tokenizer")


def test_dynamic_reads_no_private_attribute_of_another_object():
    tree = ast.parse(inspect.getsource(tokforge.dynamic))
    private = [n.attr for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr.startswith("_")
               and not (n.attr.startswith("__") and n.attr.endswith("__"))
               and not (isinstance(n.value, ast.Name) and n.value.id == "self")]
    assert private == []


# ---- conversions moved into the core: properties ----------------------------------------------
def flags_to_word_ids(flags: list[list[bool]]) -> list[list[int]]:
    """Word ids numbered from 0 per sequence; the first token always starts a word."""
    out = []
    for f in flags:
        w, row = -1, []
        for i, x in enumerate(f):
            w += 1 if (x or i == 0) else 0
            row.append(w)
        out.append(row)
    return out


@st.composite
def batches_with_flags(draw):
    seqs, _ = draw(batches())
    flags = [draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s))) for s in seqs]
    return seqs, flags


@MAX
@given(batches_with_flags(), options)
def test_word_start_flags_equal_their_word_ids(batch, opts):
    seqs, flags = batch
    a = merge_batch(seqs, word_boundaries=flags, **api_options(opts))
    b = merge_batch(seqs, word_ids=flags_to_word_ids(flags), **api_options(opts))
    assert a.merges == b.merges and a.word_ids.tolist() == b.word_ids.tolist()
    assert a.unit_ids.tolist() == b.unit_ids.tolist()
    c = merge_batch(seqs, word_boundaries=[np.array(f, dtype=np.int8) for f in flags],
                    **api_options(opts))
    assert c.merges == a.merges


@MAX
@given(batches(), st.integers(0, 30), st.data())
def test_keep_last_equals_never_merge_word_ids(batch, k, data):
    seqs, words = batch
    per_seq = data.draw(st.lists(st.integers(0, 30), min_size=len(seqs), max_size=len(seqs)))
    for keep in (k, per_seq):
        ks = [keep] * len(seqs) if isinstance(keep, int) else keep
        frozen = [w[:max(0, len(w) - n)] + [-1] * min(n, len(w)) for w, n in zip(words, ks)]
        a = merge_batch(seqs, word_ids=words, keep_last=keep, min_count=1)
        b = merge_batch(seqs, word_ids=frozen, min_count=1)
        assert a.merges == b.merges and a.word_ids.tolist() == b.word_ids.tolist()
        assert [x.tolist() for x in a.sequences()] == [x.tolist() for x in b.sequences()]


@MAX
@given(batches(), options)
def test_flat_input_with_offsets_equals_nested_input_on_random_batches(batch, opts):
    seqs, words = batch
    flat = np.array([x for s in seqs for x in s], dtype=np.int64)
    offs = np.cumsum([0] + [len(s) for s in seqs])
    a = merge_batch(seqs, word_ids=words, **api_options(opts))
    b = merge_batch(flat, offsets=offs, word_ids=words, **api_options(opts))
    assert a.merges == b.merges and a.unit_ids.tolist() == b.unit_ids.tolist()
    assert a.spans.tolist() == b.spans.tolist()


def test_numpy_integer_options_equal_python_ints():
    a = ex(min_count=np.int64(2), max_merges=np.int32(2), keep_last=np.int8(1))
    b = ex(min_count=2, max_merges=2, keep_last=1)
    assert a.merges == b.merges and a.word_ids.tolist() == b.word_ids.tolist()


def test_hf_word_ids_with_none_and_a_2d_array_batch():
    r = merge_batch(np.array([[1, 2, 1, 2], [1, 2, 3, 3]]),
                    word_ids=[[None, 0, 0, None], np.array([0, 0, 1, 1])], min_count=1)
    assert r.word_ids.tolist() == [-1, 0, -1, 0, 1]  # per output unit
    assert seq_units(r) == [[(1,), (2, 1), (2,)], [(1, 2), (3, 3)]]


# ---- bad input: one message per problem, from one place ------------------------------------------
BATCH_ARGS = {"batch": EX_IDS, "word_ids": EX_WORDS}
BAD = [
    # converted in Python (types)
    ({"batch": [[1.5, 2.0]]}, InputError,
     "batch[0] must be a 1-D sequence of integers, got dtype float64 and shape (2,)"),
    ({"batch": [[2**70]]}, InputError,
     "batch[0] must be a 1-D sequence of integers, got dtype object and shape (1,)"),
    ({"batch": [np.array([2**64 - 1], dtype=np.uint64)]}, InputError,
     "batch[0] holds 18446744073709551615, which does not fit int64"),
    ({"batch": "abc"}, InputError, "batch must be a sequence with one entry per sequence (of "
     "token ids, or a flat array with offsets=)"),
    ({"word_boundaries": [[0.5] * 6, [0] * 5, [0] * 3]}, InputError,
     "word_boundaries[0] must be word-start flags: a 1-D sequence of bools (or 0/1)"),
    ({"word_boundaries": 7}, InputError, "word_boundaries must be a sequence with one entry per "
     "sequence (a mode name, a callable or word-start flags)"),
    ({"min_count": 1.5}, InputError, "min_count must be an integer, got 1.5"),
    ({"min_count": None}, InputError, "min_count must be an integer, got None"),
    ({"max_merges": True}, InputError, "max_merges must be an integer or None, got True"),
    ({"max_merges": 2**70}, InputError,
     "max_merges = 1180591620717411303424 does not fit a 64-bit integer"),
    ({"target_reduction": "half"}, InputError,
     "target_reduction must be a number or None, got 'half'"),
    ({"identity": 5}, InputError, "identity must be a string, got 5"),
    ({"keep_last": 1.5}, InputError,
     "keep_last must be a 1-D sequence of integers, got dtype float64 and shape ()"),
    ({"tokenizer": object()}, InputError, "cannot use object as a tokenizer: pass a tokforge "
     "Tokenizer, a path to a tokenizer file, a tiktoken Encoding or a HF tokenizers.Tokenizer"),
    # checked in Rust (values)
    ({"batch": [[1, 2], [1, -2]]}, InputError, "batch[1][1] = -2: ids must be in [0, 2**31)"),
    ({"batch": [[2**31]]}, InputError, "batch[0][0] = 2147483648: ids must be in [0, 2**31)"),
    ({"offsets": [0, 3, 2]}, InputError,
     "offsets must start at 0 and end at the number of ids (14); got 3 offsets from 0 to 2"),
    ({"offsets": [0, 6, 5, 14]}, InputError, "offsets decrease at sequence 1: 6 > 5"),
    ({"offsets": [0, -1, 14]}, InputError, "offsets[1] = -1 is negative"),
    ({"offsets": []}, InputError, "offsets must start at 0 and end at the number of ids (14); "
     "got no offsets (a batch of B sequences has B + 1)"),
    ({"word_boundaries": [[True, False]]}, InputError,
     "word_boundaries must have one entry per sequence: 3 sequences, 1 entries"),
    ({"word_boundaries": [[True], [True], [True]]}, InputError,
     "word_boundaries[0] has 1 entries but sequence 0 has 6 tokens"),
    ({"word_boundaries": [[1] * 6, [0, 0, 2, 0, 0], [0] * 3]}, InputError,
     "word_boundaries[1][2] = 2: word-start flags must be booleans (or 0/1)"),
    ({"word_ids": [[0] * 6, [0] * 5, [0] * 2]}, InputError,
     "word_ids[2] has 2 entries but sequence 2 has 3 tokens"),
    ({"word_ids": [[0] * 6]}, InputError,
     "word_ids must have one entry per sequence: 3 sequences, 1 entries"),
    ({"word_ids": [[0] * 6, [0, -2, 0, 0, 0], [0] * 3]}, InputError,
     "word_ids[1][1] = -2: word ids must be in [-1, 2**31) (-1 = never merge)"),
    ({"word_ids": [[2**31] * 6, [0] * 5, [0] * 3]}, InputError,
     "word_ids[0][0] = 2147483648: word ids must be in [-1, 2**31) (-1 = never merge)"),
    ({"word_ids": EX_WORDS, "word_boundaries": "none"}, InputError,
     "give word_ids or word_boundaries, not both"),
    ({"word_boundaries": "sentences"}, InputError, "word_boundaries=\"sentences\" is not one of "
     "'word', 'whitespace', 'whitespace_hyphen', 'none', word-start flags or a callable"),
    ({"word_boundaries": "word"}, InputError, "word_boundaries=\"word\" needs tokenizer=...; or "
     "pass word-start flags, word_ids=..., or word_boundaries='none' to merge across words"),
    ({"word_boundaries": "word", "tokenizer": token_table([b"a"] * 7)}, InputError,
     "word_boundaries='word' needs the tokenizer's pre-tokenizer and a token table has none: "
     "pass word_ids=... or word-start flags, or use 'whitespace' or 'whitespace_hyphen'"),
    ({"min_count": 0}, InputError, "min_count must be an integer >= 1, got 0"),
    ({"max_merges": -1}, InputError, "max_merges must be an integer >= 0, got -1"),
    ({"max_unit_constituents": 0}, InputError,
     "max_unit_constituents must be an integer >= 1, got 0"),
    ({"target_length": -3}, InputError, "target_length must be an integer >= 0, got -3"),
    ({"target_reduction": 1.5}, InputError,
     "target_reduction must be a number in [0, 1], got 1.5"),
    ({"target_reduction": math.nan}, InputError,
     "target_reduction must be a number in [0, 1], got NaN"),
    ({"target_reduction": 0.5, "target_length": 3}, InputError,
     "give at most one of target_reduction and target_length"),
    ({"relative_to": "words"}, InputError, "relative_to=\"words\" is not 'input' or 'word_level'"),
    ({"identity": "strings"}, InputError, "identity=\"strings\" is not 'ids' or 'bytes'"),
    ({"identity": "bytes"}, InputError, "identity=\"bytes\" needs token bytes: pass "
     "tokenizer=... (a tokenizer or a token_table)"),
    ({"keep_last": -1}, InputError, "keep_last must be non-negative, got -1"),
    ({"keep_last": [0, -1, 0]}, InputError, "keep_last must be non-negative, got -1 for "
     "sequence 1"),
    ({"keep_last": [1, 2]}, InputError,
     "keep_last must be an int or one int per sequence (3), got 2"),
    ({"tokenizer": token_table([b"a"] * 3)}, VocabError,
     "batch[0][3] = 3 is not in the vocabulary"),
    ({"num_threads": 0}, InputError, "num_threads must be at least 1, got 0"),
]


def bad_call(kw: dict) -> None:
    args = dict(BATCH_ARGS)
    if "batch" in kw:
        args.update(word_ids=None, word_boundaries="none")
    if "word_boundaries" in kw:
        args["word_ids"] = None
    if "offsets" in kw:
        args["batch"] = np.concatenate(EX_IDS)
    args.update(kw)
    merge_batch(args.pop("batch"), **args)


@pytest.mark.parametrize("kw, error, message", BAD, ids=[str(sorted(kw)) for kw, _, _ in BAD])
def test_each_bad_argument_raises_its_one_message(kw, error, message):
    with pytest.raises(error) as e:
        bad_call(kw)
    assert str(e.value) == message


def test_each_problem_has_its_own_message():
    messages = [m for _, _, m in BAD]
    assert len(set(messages)) == len(messages)


def test_a_bad_id_gets_the_same_message_from_nested_and_flat_input():
    seqs = [[1, 2], [3, -4, 5]]
    for call in (lambda: merge_batch(seqs, word_boundaries="none"),
                 lambda: merge_batch([1, 2, 3, -4, 5], offsets=[0, 2, 5],
                                     word_boundaries="none")):
        with pytest.raises(InputError) as e:
            call()
        assert str(e.value) == "batch[1][1] = -4: ids must be in [0, 2**31)"


def test_a_bad_special_id_of_a_token_table_names_the_table_size():
    with pytest.raises(InputError) as e:
        token_table([b"a", b"b", b"c"], special_ids=[5])
    assert str(e.value) == "special id 5 is outside the table of 3 tokens"


def test_bad_input_to_result_helpers_raises_input_error():
    r = ex()
    with pytest.raises(InputError):
        r.expand([[99]])
    with pytest.raises(InputError):
        r.to_padded(side="top")
    with pytest.raises(InputError):
        r.surface_matrix(0, -1)
    with pytest.raises(InputError):
        r.surface_matrix(4, -1, surface="retokenize")
    with pytest.raises(InputError):
        r.strings()
    with pytest.raises(InputError):
        r.align_word_labels([[1], [1], [1]])
    with pytest.raises(InputError):
        merge_batch_texts("one string", None)
