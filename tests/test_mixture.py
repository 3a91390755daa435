"""Data-mixture inference: replay against a recounting reference and the trainers, the LP on the
worked example of docs/mixture_inference.md, constraint generation against the full LP."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tokforge
from hypothesis import given
from hypothesis import strategies as st
from reference import mixture_ref
from tokforge import InputError, StoppedError, Tokenizer
from tokforge.mixture import infer, replay, solve

WS = r"\S+"  # whitespace split: spaces become one-byte pieces, which hold no pair
A = "aab aab ab ab ef"
B = "bba bba ba ba cd"
ORDER_1 = [("a", "b"), ("a", "ab"), ("b", "a"), ("e", "f"), ("b", "ba"), ("c", "d")]
ORDER_2 = [("a", "b"), ("b", "a"), ("a", "ab"), ("b", "ba"), ("c", "d"), ("e", "f")]


def as_bytes(merges):
    return [(a.encode(), b.encode()) for a, b in merges]


def worked(merges, **kw):
    return replay(merges, {"A": A, "B": B}, pattern=WS, min_sample_bytes=0, **kw)


def counts_by_step(c, i):
    """Category ``i``'s pair counts before every step, rebuilt from snapshot + changes."""
    pairs, n = c.snapshot(i)
    cur = {c.pair_tokens(int(p)): int(x) for p, x in zip(pairs, n)}
    out = [dict(cur)]
    for t in range(c.num_steps):
        ps, ds = c.changes(i, t)
        for p, d in zip(ps, ds):
            key = c.pair_tokens(int(p))
            cur[key] = cur.get(key, 0) + int(d)
        out.append(dict(cur))
    return [{k: v for k, v in s.items() if v} for s in out]


def check_against_reference(c, merges, texts, pattern):
    ids = mixture_ref.symbol_ids(merges)
    for i, text in enumerate(texts):
        ref = mixture_ref.replay(merges, text, pattern)
        got = counts_by_step(c, i)
        assert got == [dict(+s) for s in ref]
        assert c.chosen[i].tolist() == [ref[t][m] for t, m in enumerate(merges)]
        assert int(c.pairs_total[i]) == sum(ref[0].values())
        for t, m in enumerate(merges):
            want = mixture_ref.top_k(ref[t], m, c.top_k, ids)
            pairs, cnt = c.top_pairs[i, t], c.top_counts[i, t]
            have = [(c.pair_tokens(int(p)), int(n)) for p, n in zip(pairs, cnt) if n]
            assert have == want, (i, t)


def test_replay_counts_equal_reference_on_worked_example():
    c = worked(ORDER_1, top_k=3)
    assert c.chosen.tolist() == [[4, 2, 0, 1, 0, 0], [0, 0, 4, 0, 2, 1]]
    assert c.pairs_total.tolist() == [7, 7] and c.sample_bytes.tolist() == [16, 16]
    check_against_reference(c, as_bytes(ORDER_1), [A, B], WS)
    # lazy access equals the rebuilt counts for every pair at every step
    for i in range(2):
        by_step = counts_by_step(c, i)
        for t in range(c.num_steps + 1):
            ps = np.arange(c.num_pairs)
            got = c.counts_at(np.full(len(ps), t), ps)[:, i]
            want = [by_step[t].get(c.pair_tokens(int(p)), 0) for p in ps]
            assert got.tolist() == want


texts = st.text(alphabet="aab c\n", min_size=1, max_size=60)


@given(train=texts, cats=st.lists(texts, min_size=1, max_size=3), vocab=st.integers(257, 275))
def test_replay_matches_reference_on_random_texts(train, cats, vocab):
    tok = Tokenizer.train(texts=[train], vocab_size=vocab, pattern="gpt2")
    merges = tok.merges
    if not merges:
        return
    c = replay(tok, {f"c{i}": t for i, t in enumerate(cats)}, min_sample_bytes=0, top_k=4)
    check_against_reference(c, merges, cats, tok.pattern)


def test_replay_of_own_corpus_reproduces_tokforge_trainer_counts(corpus_docs):
    text = corpus_docs["en"] + corpus_docs["code-python"]
    tok = Tokenizer.train(texts=[text], vocab_size=1256, pattern="cl100k")
    c = replay(tok, {"all": text}, top_k=1)
    assert c.chosen[0].tolist() == tok.merge_counts
    assert (c.chosen[0] >= c.top_counts[0, :, 0]).all()


def test_replay_matches_hf_trainer_counts(corpus_docs):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    docs = [corpus_docs["de"], corpus_docs["code-go"]]
    ht = HFTokenizer(models.BPE())
    ht.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=1256,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    ht.train_from_iterator(docs, trainer)
    # each document is a category; the trainer saw their union
    c = replay(ht, {"de": docs[0], "go": docs[1]}, top_k=1)
    assert c.num_steps == 1000
    total, rival = c.chosen.sum(axis=0), c.top_counts[:, :, 0]
    assert (total > 0).all()
    # every merge was the arg-max of the summed counts (ties allowed): its best rival in either
    # category, summed with the other category's count of that pair, never beats it
    for t in range(c.num_steps):
        for i in range(2):
            p = int(c.top_pairs[i, t, 0])
            if rival[i, t]:
                both = c.counts_at(np.array([t]), np.array([p]))[0].sum()
                assert both <= total[t], t


def test_thread_count_invariance(corpus_docs):
    tok = Tokenizer.train(texts=list(corpus_docs.values()), vocab_size=2256, pattern="cl100k")
    samples = {k: corpus_docs[k] for k in ["en", "ru", "zh", "code-rust", "code-c"]}
    one = replay(tok, samples, num_threads=1)
    two = replay(tok, samples, num_threads=2)
    for attr in ["chosen", "top_pairs", "top_counts", "merge_pair", "pairs_total"]:
        assert np.array_equal(getattr(one, attr), getattr(two, attr)), attr
    for i in range(len(samples)):
        assert np.array_equal(one.snapshot(i)[0], two.snapshot(i)[0])
        for t in range(0, one.num_steps, 97):
            for a, b in zip(one.changes(i, t), two.changes(i, t)):
                assert np.array_equal(a, b)
    few = {"num_merges": 200, "num_threads": 1}
    r1, r2 = infer(tok, samples, **few), infer(tok, samples, **{**few, "num_threads": 2})
    assert np.array_equal(r1.alpha, r2.alpha)


# ---- the LP ------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_lp_worked_example_interval(solver):
    r = solve(worked(ORDER_1), solver=solver)
    assert r.objective == pytest.approx(0.0, abs=1e-9)
    assert 2 / 3 - 1e-9 <= r["A"] <= 4 / 5 + 1e-9
    assert r["A"] + r["B"] == pytest.approx(1.0)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_lp_pins_half(solver):
    r = solve(worked(ORDER_2), solver=solver)
    assert r.objective == pytest.approx(0.0, abs=1e-9)
    assert r["A"] == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_lp_infeasible_slack_one_seventh(solver):
    r = solve(worked([("a", "a")]), solver=solver)
    assert r.objective == pytest.approx(1 / 7, abs=1e-9)
    assert r["A"] == pytest.approx(0.5, abs=1e-7)
    assert list(r.v_step) == [0]


def test_shares_convert_pairs_to_bytes():
    # padding A with single-byte pieces adds bytes, not pairs: B_A / N_A grows 3x
    pad = " x" * 16
    c = replay(ORDER_2, {"A": A + pad, "B": B}, pattern=WS, min_sample_bytes=0)
    r = solve(c)
    assert r.alpha[0] == pytest.approx(0.5, abs=1e-9)
    ratio = c.sample_bytes / c.pairs_total
    assert ratio[0] == pytest.approx(3 * ratio[1])
    assert r["A"] == pytest.approx(0.75, abs=1e-9)


def mixed_instance(seed: int, n_cats: int):
    rng = np.random.default_rng(seed)
    words = ["ab", "ba", "aab", "bab", "abc", "cab", "cc", "ca", "bca", "acb"]
    cats = {}
    for i in range(n_cats):
        p = rng.dirichlet(np.ones(len(words)) * 0.5)
        cats[f"c{i}"] = " ".join(rng.choice(words, size=int(rng.integers(20, 80)), p=p))
    w = rng.dirichlet(np.ones(n_cats))
    train = " ".join(t * int(1 + 20 * wi) for t, wi in zip(cats.values(), w))
    tok = Tokenizer.train(texts=[train], vocab_size=256 + int(rng.integers(5, 40)), pattern=WS)
    return replay(tok, cats, min_sample_bytes=0)


def full_lp_satisfied(c, r, tol=1e-9):
    """Whether (alpha, v) of ``r`` satisfies every row of the full LP."""
    rows = c.all_rows()
    if len(rows) == 0:
        return True
    cnt = c.counts_at(rows[:, 0], rows[:, 1]).astype(float)
    chosen = c.chosen.astype(float)[:, rows[:, 0]].T
    lhs = ((chosen - cnt) / c.pairs_total.astype(float)) @ r.alpha
    vs = np.array([r.v_step.get(int(t), 0.0) for t in rows[:, 0]])
    vp = np.array([r.v_pair.get(c.pair_tokens(int(p)), 0.0) for p in rows[:, 1]])
    return bool((lhs + vs + vp >= -tol).all())


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 5))
def test_constraint_generation_equals_full_lp(seed, n):
    c = mixed_instance(seed, n)
    lazy = solve(c, strategy="generate", k=2, max_add=5)
    full = solve(c, strategy="full")
    assert lazy.objective == pytest.approx(full.objective, abs=1e-9)
    assert lazy.constraints <= full.constraints
    # the lazy solution is feasible for every row, so with equal objective it is optimal
    assert full_lp_satisfied(c, lazy)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_solvers_reach_the_same_optimum(seed):
    c = mixed_instance(seed, 4)
    h, b = solve(c, solver="highs"), solve(c, solver="cbc")
    assert h.objective == pytest.approx(b.objective, abs=1e-7)
    assert full_lp_satisfied(c, b, tol=1e-7)


def test_controlled_mixture_is_recovered(corpus_docs):
    """A tokenizer trained on a known mix of two halves; inferred from the other halves."""
    cats = ["en", "ru", "code-python"]
    halves = {k: (d[: len(d) // 2], d[len(d) // 2 :]) for k, d in corpus_docs.items()}
    w = {"en": 0.5, "ru": 0.2, "code-python": 0.3}
    train = []
    for k in cats:
        src, n = halves[k][0].encode(), int(w[k] * 300_000)
        train.append((src * (n // len(src) + 1))[:n].decode(errors="ignore"))
    tok = Tokenizer.train(texts=train, vocab_size=556, pattern="cl100k")
    r = infer(tok, {k: halves[k][1] for k in cats})
    mse = np.mean([(r[k] - w[k]) ** 2 for k in cats])
    uniform = np.mean([(1 / 3 - w[k]) ** 2 for k in cats])
    assert mse < uniform / 10, (dict(r), mse, uniform)
    assert r.merges_used == 300 and r.rounds >= 1


# ---- rank files ------------------------------------------------------------------------------
def test_tiktoken_ranks_to_merges_roundtrip(gpt2_file):
    tok = Tokenizer.from_file(gpt2_file)
    c = replay(tok, {"x": "Hello world, the merges of GPT-2."}, min_sample_bytes=0, top_k=0,
               num_merges=50_000)
    merges = c.merges()
    assert len(merges) == 50_000 and c.merges_dropped > 0
    rank = {m: i for i, m in enumerate(merges)}
    for a, b in merges:
        assert mixture_ref.bpe_encode(a + b, rank) == [a + b]
    # the derived merges are those GPT-2's own tokenizer.json lists (as a set: the order of equal
    # ranks is the same by construction)
    assert merges[:5] == [(b" ", b"t"), (b" ", b"a"), (b"h", b"e"), (b"i", b"n"), (b"r", b"e")]


def test_merge_order_list_keeps_a_split_list_as_is():
    # a split list read as a trainer log fails: "abc" parts are not formed in order
    split = [(b"b", b"c"), (b"a", b"b"), (b"a", b"bc"), (b"ab", b"c")]
    c = replay(split, {"x": "abc abc"}, pattern="gpt2", min_sample_bytes=0)
    assert c.merges() == split[:3] and c.merges_dropped == 1
    c = replay(split, {"x": "abc abc"}, pattern="gpt2", min_sample_bytes=0, merge_order="list")
    assert c.merges() == split


# ---- bad input -------------------------------------------------------------------------------
def test_empty_and_tiny_samples_are_refused():
    with pytest.raises(InputError, match='category "A" has an empty sample'):
        replay(ORDER_1, {"A": "", "B": B}, pattern=WS, min_sample_bytes=0)
    with pytest.raises(InputError, match=r"A \(16 bytes\)"):
        replay(ORDER_1, {"A": A, "B": B * 100}, pattern=WS)
    with pytest.raises(InputError, match="no adjacent byte pair"):
        infer(ORDER_1, {"A": "a b c", "B": B}, pattern=WS, min_sample_bytes=0)


def test_empty_sample_file_is_refused(tmp_path):
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(InputError, match="empty"):
        replay(ORDER_1, {"A": tmp_path / "e.txt"}, pattern=WS, min_sample_bytes=0)


def test_merge_list_out_of_bpe_order_is_refused():
    with pytest.raises(InputError, match="not in BPE order"):
        worked([("ab", "c"), ("a", "b")], merge_order="list")
    with pytest.raises(InputError, match="not a BPE rank order"):
        worked([("a", "bc"), ("a", "b"), ("b", "c")], merge_order="ranks")


def test_num_merges_beyond_the_list_is_refused():
    with pytest.raises(InputError, match="beyond the 6 merges"):
        worked(ORDER_1, num_merges=7)
    with pytest.raises(InputError, match="outside the 6 merges"):
        replay(ORDER_1, {"A": A}, pattern=WS, min_sample_bytes=0, drop_merges=[9])


def test_missing_solver_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pulp", None)
    with pytest.raises(ImportError, match=r"tokforge\[mixture-cbc\]"):
        solve(worked(ORDER_1), solver="cbc")
    with pytest.raises(InputError, match="solver='gurobi'"):
        solve(worked(ORDER_1), solver="gurobi")


def test_other_bad_arguments():
    with pytest.raises(InputError, match="needs pattern="):
        replay(ORDER_1, {"A": A})
    with pytest.raises(InputError, match="not bytes"):
        replay(ORDER_1, {"A": A.encode()}, pattern=WS)
    lib = Tokenizer.train(texts=["of the cat"] * 20, vocab_size=None, algorithm="lib",
                          lib=tokforge.lib_model.LibConfig(steps=5))
    with pytest.raises(InputError, match="BPE tokenizer"):
        replay(lib, {"A": A}, min_sample_bytes=0)


def test_progress_can_stop_the_replay():
    with pytest.raises(StoppedError):
        worked(ORDER_1, progress=lambda *a: False)


def test_result_is_a_read_only_mapping():
    r = solve(worked(ORDER_2))
    assert dict(r) == dict(r.shares) and len(r) == 2 and list(r) == ["A", "B"]
    with pytest.raises(TypeError):
        r.shares["A"] = 1.0  # type: ignore[index]
    d = r.to_dict()
    assert d["merges_used"] == 6 and d["objective"] == pytest.approx(0.0, abs=1e-12)


def test_samples_from_files_equal_samples_from_text(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.txt").write_text(A)
    c1 = worked(ORDER_1)
    c2 = replay(ORDER_1, {"A": tmp_path / "a", "B": B}, pattern=WS, min_sample_bytes=0)
    assert np.array_equal(c1.chosen, c2.chosen)
    assert Path(tmp_path / "a").is_dir()
