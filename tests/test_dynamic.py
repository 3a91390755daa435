"""Dynamic batch-level merging: the Rust fast path equals the naive reference (merge log and
output) on random batches; the spec's worked examples; the inverse; tokenizer-derived word
boundaries; model-input helpers; bad input raises TokforgeError subclasses, never panics."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import tokforge
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import bpe_train, dynamic_ref
from tokforge import InputError, Tokenizer, TokforgeError
from tokforge.dynamic import (
    MergeResult,
    UnitEmbedder,
    from_hf_encodings,
    merge_batch,
    merge_batch_texts,
    token_table,
)

MAX = settings(max_examples=int(os.environ.get("TOKFORGE_MAX_EXAMPLES", 200)), deadline=None)

# spec section 9
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


# ---- the spec's worked examples -------------------------------------------------------------
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


# ---- bad input ------------------------------------------------------------------------------
BAD = [
    ({"batch": [[1, 2], [1, -2]]}, "batch\\[1\\]\\[1\\] = -2"),
    ({"batch": [[1.5, 2.0]]}, "integers"),
    ({"batch": [[2**31]]}, "2\\*\\*31"),
    ({"batch": [[2**70]]}, "integers"),
    ({"batch": "abc"}, "sequence"),
    ({"word_boundaries": [[True, False]]}, "one entry per sequence"),
    ({"word_boundaries": [[True], [True], [True]]}, "has 1 entries"),
    ({"word_boundaries": [[2] * 6, [0] * 5, [0] * 3]}, "flags"),
    ({"word_ids": [[0] * 6, [0] * 5, [0] * 2]}, "has 2 entries"),
    ({"word_ids": [[-2] * 6, [0] * 5, [0] * 3]}, "below -1|word ids must be"),
    ({"word_boundaries": "sentences"}, "not one of"),
    ({"word_boundaries": "word", "word_ids": None}, "needs tokenizer"),
    ({"min_count": 0}, "min_count"),
    ({"min_count": 1.5}, "min_count"),
    ({"max_merges": -1}, "max_merges"),
    ({"max_unit_constituents": 0}, "max_unit_constituents"),
    ({"target_reduction": 1.5}, "target_reduction"),
    ({"target_reduction": math.nan}, "target_reduction"),
    ({"target_reduction": 0.5, "target_length": 3}, "at most one"),
    ({"relative_to": "words"}, "relative_to"),
    ({"identity": "strings"}, "identity"),
    ({"identity": "bytes"}, "token bytes|tokenizer"),
    ({"keep_last": -1}, "non-negative"),
    ({"keep_last": [1, 2]}, "one int per sequence"),
    ({"offsets": [0, 3, 2]}, "offsets"),
    ({"tokenizer": object()}, "not supported"),
    ({"tokenizer": token_table([b"a"] * 3)}, "not in the vocabulary"),
]


@pytest.mark.parametrize("kw, message", BAD)
def test_bad_input_raises_a_tokforge_error(kw, message):
    args = {"batch": EX_IDS, "word_ids": EX_WORDS}
    args.update(kw)
    if "batch" in kw:
        args.update(word_ids=None, word_boundaries="none")
    if "word_boundaries" in kw and "word_ids" not in kw:
        del args["word_ids"]
    if kw.get("word_ids", 0) is None:
        del args["word_ids"]
    if "offsets" in kw:
        args["batch"] = np.concatenate(EX_IDS)
    batch = args.pop("batch")
    with pytest.raises(TokforgeError, match=message):
        merge_batch(batch, **args)


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
