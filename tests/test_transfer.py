"""tokforge.transfer: the hypernetwork's gradients, determinism, the synthetic composition task,
held-out reconstruction on WordLlama's real embeddings, files, CLI and bad input
(docs/transfer.md). The numpy/torch parity test runs with ``pytest --torch -m torch`` where
torch is installed (docs/transfer.md §8); without ``--torch`` it is deselected, never skipped."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from tokforge import InputError, Tokenizer
from tokforge.cli import main
from tokforge.dynamic import merge_batch
from tokforge.transfer import (
    Decomposer,
    HypernetConfig,
    Hypernetwork,
    baselines,
    evaluate,
    load_embeddings,
    model,
)
from tokforge.transfer.data import Split, eligible_ids, make_split
from vocabularies import fetch

TINY = model.ModelShape(d_in=5, d_out=4, hidden=8, ffn=12, n_layers=1, n_heads=2, max_len=4)


# ---- gradients: every backward piece against central finite differences (float64) ---------
def numeric_grad(f, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        hi = f()
        x[i] = old - eps
        lo = f()
        x[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    # gradients that are exactly 0 (the key bias under softmax) compare absolutely at 1e-8
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-2))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_linear_layer_norm_and_gelu_backward_match_finite_differences(rng):
    x = rng.normal(size=(3, 2, 5))
    W, b = rng.normal(size=(5, 4)), rng.normal(size=4)
    R = rng.normal(size=(3, 2, 4))
    _, c = model.linear(x, W, b)
    dx, dW, db = model.linear_back(R, c, W)
    for arr, ana in ((x, dx), (W, dW), (b, db)):
        assert rel_err(numeric_grad(lambda: (model.linear(x, W, b)[0] * R).sum(), arr),
                       ana) < 1e-6
    g, beta = rng.normal(size=5), rng.normal(size=5)
    R = rng.normal(size=x.shape)
    _, c = model.layer_norm(x, g, beta)
    dx, dg, dbeta = model.layer_norm_back(R, c)
    for arr, ana in ((x, dx), (g, dg), (beta, dbeta)):
        assert rel_err(numeric_grad(lambda: (model.layer_norm(x, g, beta)[0] * R).sum(), arr),
                       ana) < 1e-6
    _, c = model.gelu(x)
    assert rel_err(numeric_grad(lambda: (model.gelu(x)[0] * R).sum(), x),
                   model.gelu_back(R, c)) < 1e-6


@pytest.mark.parametrize("piece", ["projector", "attention", "block"])
def test_projector_attention_and_block_backward_match_finite_differences(piece, rng):
    p = model.init_params(TINY, rng, dtype=np.float64)
    for k in p:  # away from the init's symmetric point, so every path carries gradient
        p[k] += rng.normal(scale=0.3, size=p[k].shape)
    x = rng.normal(size=(3, 3, 8))
    R = rng.normal(size=(3, 3, 8))
    fwd = {"projector": lambda: model.projector(p, "pin", x),
           "attention": lambda: model.attention(p, "b0", x, 2),
           "block": lambda: model.block(p, "b0", x, 2)}[piece]
    _, cache = fwd()
    g: dict[str, np.ndarray] = {}
    if piece == "projector":
        dx = model.projector_back(R, cache, p, "pin", g)
    elif piece == "attention":
        dx = model.attention_back(R, cache, p, "b0", 2, g)
    else:
        dx = model.block_back(R, cache, p, "b0", 2, g)
    assert rel_err(numeric_grad(lambda: (fwd()[0] * R).sum(), x), dx) < 1e-6
    assert g
    for name, ana in g.items():
        assert rel_err(numeric_grad(lambda: (fwd()[0] * R).sum(), p[name]), ana) < 1e-6, name


@pytest.mark.parametrize("pool", ["first", "mean"])
def test_whole_network_backward_matches_finite_differences_for_every_parameter(pool, rng):
    shape = model.ModelShape(**{**TINY.__dict__, "pool": pool})
    p = model.init_params(shape, rng, dtype=np.float64)
    for k in p:
        p[k] += rng.normal(scale=0.3, size=p[k].shape)
    x = rng.normal(size=(3, 3, 5))
    target = rng.normal(size=(3, 4))

    def loss() -> float:
        return model.loss_and_grad(model.forward(p, x, shape)[0], target, norm=2.0,
                                   cos_weight=0.1)[0]

    y, cache = model.forward(p, x, shape)
    _, dy = model.loss_and_grad(y, target, norm=2.0, cos_weight=0.1)
    assert rel_err(numeric_grad(lambda: model.loss_and_grad(y, target, norm=2.0,
                                                            cos_weight=0.1)[0], y), dy) < 1e-6
    grads = model.backward(p, dy, cache, shape)
    assert sorted(grads) == sorted(p)
    for name in p:
        assert rel_err(numeric_grad(loss, p[name]), grads[name]) < 1e-6, name


def test_adamw_schedule_warms_up_then_decays_to_a_tenth():
    opt = model.AdamW(lr=1e-3, warmup=10, total=110)
    assert opt.rate(0) == pytest.approx(1e-4) and opt.rate(9) == pytest.approx(1e-3)
    assert opt.rate(60) == pytest.approx(0.55e-3) and opt.rate(110) == pytest.approx(1e-4)
    p = {"w": np.ones((2, 2)), "b": np.ones(2)}
    norm = opt.step(p, {"w": np.full((2, 2), 10.0), "b": np.zeros(2)})
    assert norm == pytest.approx(20.0)
    # first step of Adam moves by lr (bias-corrected m/sqrt(v) = 1) plus weight decay
    assert p["w"][0, 0] == pytest.approx(1 - 1e-4 * 0.01 - 1e-4, rel=1e-6)
    assert p["b"].tolist() == [1.0, 1.0]


# ---- decompositions with exclusions ---------------------------------------------------------
@pytest.fixture(scope="module")
def abc_tok():
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({b"ab": 256, b"abc": 257, b"bc": 258})
    return Tokenizer.from_ranks(ranks, pattern="gpt2")


def test_decomposition_with_exclusions_follows_the_design_note_vector(abc_tok):
    d = Decomposer(abc_tok)
    ab, abc, bc = 256, 257, 258
    a, b, c = (abc_tok.token_to_id(x) for x in (b"a", b"b", b"c"))
    assert d.decompose(b"abc") == [abc]
    assert d.decompose(b"abc", banned={abc}) == [ab, c]
    assert d.decompose(b"abc", banned={abc, ab}) == [a, bc]
    assert d.decompose(b"bc", banned={bc}) == [b, c]
    E = np.zeros((abc_tok.vocab_size, 2))
    E[[a, b, c, ab, bc]] = [[1, 0], [0, 1], [1, 1], [2, 2], [0.5, 1]]
    assert baselines.fvt(E, [[ab, c], [a, bc]]).tolist() == [[1.5, 1.5], [0.75, 0.5]]


@pytest.fixture(scope="module")
def llama():
    return Tokenizer.from_file(fetch("llama2_tokenizer.json"))


@pytest.fixture(scope="module")
def wordllama():
    return load_embeddings(fetch("wordllama_l2_256.safetensors"))


def test_decomposition_without_exclusions_is_the_native_encoding(llama, corpus_docs):
    d = Decomposer(llama)
    # every vocabulary token spells itself, except byte-fallback pieces of printable bytes
    # (<0x41> and "A" have the same bytes: the character piece wins, as in SentencePiece)
    not_self = [i for i in range(3, llama.vocab_size) if d.decompose(d.token_bytes[i]) != [i]]
    assert len(not_self) == 96 and all(len(d.token_bytes[i]) == 1 for i in not_self)
    # whole lines: Llama-2 prepends the word marker, D works on the marked bytes
    lines = [ln for name in ("en", "de", "ru", "zh", "code-python") for ln in
             corpus_docs[name].splitlines()[:20] if ln and not ln.startswith(" ")]
    for ln in lines:
        assert d.decompose(b" " + ln.encode()) == llama.encode_ordinary(ln), ln


def test_decomposition_matches_native_byte_level_bpe_on_words(corpus_docs):
    tok = Tokenizer.train(texts=[corpus_docs["en"], corpus_docs["de"]], vocab_size=600,
                          pattern="gpt2")
    d = Decomposer(tok)
    words = {w for ln in corpus_docs["fr"].splitlines() for w in tok.pretokenize(ln)}
    assert len(words) > 300
    for w in sorted(words):
        assert d.decompose(w.encode()) == tok.encode_ordinary(w), w


def test_held_out_ids_never_appear_as_inputs(llama):
    d = Decomposer(llama)
    s = make_split(d, held_out=0.15, seed=3, max_train=2000, max_held=500)
    H = set(s.held_all.tolist())
    elig = eligible_ids(d)
    assert len(s.held_all) == round(0.15 * len(elig)) and set(s.held_ids) <= H
    assert all(len(d.token_bytes[i].decode("utf-8", "replace")) >= 2 for i in elig)
    assert not H & set(s.train_ids.tolist())
    for piece in [*s.held_inputs, *(v for vs in s.train_inputs for v in vs)]:
        assert not H & set(piece)
    assert all(len(x) >= 2 for x in s.held_inputs)
    # training tokens never see themselves; coarser/finer variants come from random bans
    assert all(t not in v for t, vs in zip(s.train_ids, s.train_inputs) for v in vs)
    assert np.mean([len(v) for v in s.train_inputs]) > 1.5


# ---- fitting -------------------------------------------------------------------------------
SMALL = HypernetConfig(hidden=16, ffn=32, n_layers=1, n_heads=2, steps=20, identity_steps=5,
                       batch_size=32, warmup=5)


@pytest.fixture(scope="module")
def small_tok(corpus_docs):
    return Tokenizer.train(texts=[corpus_docs["en"]], vocab_size=400, pattern="gpt2",
                           special_tokens=["<|endoftext|>"])


@pytest.fixture(scope="module")
def small_E(small_tok):
    return np.random.default_rng(1).normal(size=(small_tok.vocab_size, 6)).astype(np.float32)


def test_fit_is_deterministic_under_a_seed(small_tok, small_E):
    a, b, c = (Hypernetwork(SMALL) for _ in range(3))
    ra = a.fit(small_E, small_tok, seed=5)
    rb = b.fit(small_E, small_tok, seed=5)
    c.fit(small_E, small_tok, seed=6)
    assert ra.losses == rb.losses
    words = [b" the", b" rights", "everyone"]
    assert np.array_equal(a.predict(words), b.predict(words))
    assert not np.array_equal(a.predict(words), c.predict(words))


def composition_task(seed: int = 0, n_base: int = 300, n_pairs: int = 1500, d: int = 16):
    """300 base vectors; 3,000 composites e_lr = tanh(A e_l + B e_r), both orders of 1,500
    pairs, so a model that ignores order cannot fit them; 20% held out."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_base, d))
    A, B = rng.normal(size=(2, d, d)) / math.sqrt(d)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_pairs:
        lo, hi = sorted(int(v) for v in rng.choice(n_base, 2, replace=False))
        pairs.add((lo, hi))
    ordered = sorted(pairs) + sorted((r, lo) for lo, r in pairs)
    comp = np.array([np.tanh(A @ base[lo] + B @ base[r]) for lo, r in ordered])
    T = np.vstack([base, comp]).astype(np.float32)
    ids = n_base + np.arange(len(ordered))
    perm = rng.permutation(len(ordered))
    held, train = np.sort(perm[:len(ordered) // 5]), np.sort(perm[len(ordered) // 5:])
    split = Split(ids[held], [list(ordered[i]) for i in held],
                  np.concatenate([np.arange(n_base), ids[train]]),
                  [[[b]] for b in range(n_base)] + [[list(ordered[i])] for i in train])
    return T, split


def test_synthetic_composition_is_learned_in_order_not_as_the_mean():
    T, split = composition_task()
    hn = Hypernetwork(HypernetConfig(hidden=32, ffn=64, n_layers=2, n_heads=4, steps=400,
                                     identity_steps=50, batch_size=128, warmup=50))
    r = hn.fit_split(T, split, seed=0)
    ours, fvt = r.held_out["hypernetwork"], r.held_out["fvt"]
    # first green run (2 shared cores): hypernetwork 0.92 (top-1 0.99), FVT 0.08; reversed 0.04
    assert ours["cosine"]["mean"] > 0.85 and fvt["cosine"]["mean"] < 0.2
    assert ours["top1"]["mean"] > 0.9
    # order matters: the same pieces reversed give a different (and wrong) row
    swapped = hn.predict_decompositions([d[::-1] for d in split.held_inputs])
    cos_swapped = evaluate.reconstruction(swapped, T, split.held_ids, resamples=10)
    assert cos_swapped["cosine"]["mean"] < ours["cosine"]["mean"] - 0.3


def test_held_out_reconstruction_on_wordllama_beats_the_random_floor(llama, wordllama):
    """Evaluation A at small scale (the full run is benches/transfer.py)."""
    assert wordllama.shape == (32_000, 256)
    hn = Hypernetwork(HypernetConfig(hidden=64, ffn=128, n_layers=1, n_heads=4, steps=150,
                                     identity_steps=20, batch_size=128, warmup=20,
                                     max_train=4000, max_held=400, variants=2,
                                     residual_mean=True))
    r = hn.fit(wordllama, llama, held_out=0.15, seed=0)
    assert r.n_held == 400 and r.n_train == 4000
    scores = hn.held_out_scores(resamples=200)
    assert set(scores) == {"hypernetwork", "fvt", "last_piece", "random", "length_weighted"}
    for name, s in scores.items():
        for m in ("cosine", "rel_l2", "top1", "top10", "mrr"):
            assert s[m]["lo"] <= s[m]["mean"] <= s[m]["hi"], (name, m)
    assert evaluate.separated(scores["hypernetwork"]["cosine"], scores["random"]["cosine"])
    assert evaluate.separated(scores["fvt"]["top10"], scores["random"]["top10"])
    # retrieval is among all 32,000 rows: the real row itself is rank 1
    assert evaluate.ranks(wordllama[:50], wordllama, np.arange(50)).max() == 1


# ---- predicting, units, files ----------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(small_tok, small_E):
    hn = Hypernetwork(SMALL)
    hn.fit(small_E, small_tok, seed=0)
    return hn


def test_predict_for_a_new_tokenizer_copies_specials_and_optionally_the_overlap(
        fitted, small_tok, small_E, corpus_docs):
    new = Tokenizer.train(texts=[corpus_docs["de"]], vocab_size=300, pattern="gpt2",
                          special_tokens=["<|endoftext|>"])
    rows = fitted.predict(new)
    assert rows.shape == (new.vocab_size, 6) and np.isfinite(rows).all()
    eot_new, eot_old = new.special_tokens["<|endoftext|>"], small_tok.special_tokens[
        "<|endoftext|>"]
    assert np.array_equal(rows[eot_new], small_E[eot_old])
    copied = fitted.predict(new, copy_overlap=True)
    same = [i for i in range(new.vocab_size) if i != eot_new
            and small_tok.token_to_id(new.id_to_token(i)) is not None]
    assert len(same) > 256
    for i in same:
        assert np.array_equal(copied[i], small_E[small_tok.token_to_id(new.id_to_token(i))])
    # a token and its decomposition give the same row
    word = b" Declaration"
    assert np.array_equal(fitted.predict([word])[0],
                          fitted.predict_decompositions([small_tok.encode_ordinary(
                              word.decode())])[0])


def test_predict_units_of_a_merged_batch(fitted, small_tok, small_E):
    r = merge_batch([small_tok.encode_ordinary("all human beings are born free " * 3)],
                    tokenizer=small_tok, min_count=2)
    rows = fitted.predict_units(r)
    assert rows.shape == (r.num_units, 6)
    for u, unit in enumerate(r.units):
        if len(unit) == 1:
            assert np.array_equal(rows[u], small_E[unit[0]])
        else:
            assert np.allclose(rows[u], fitted.predict_decompositions([list(unit)])[0])
    assert any(len(u) > 1 for u in r.units)


def test_save_and_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "hn")
    assert path.name == "hn.npz" and (tmp_path / "hn.json").is_file()
    assert sorted(os.listdir(tmp_path)) == ["hn.json", "hn.npz"]  # no temporary leftovers
    back = Hypernetwork.load(path)
    words = [b" the", b" freedom", "Article"]
    assert np.array_equal(back.predict(words), fitted.predict(words))
    assert back.held_out_scores(resamples=20)["hypernetwork"] == \
        fitted.held_out_scores(resamples=20)["hypernetwork"]


# ---- CLI ---------------------------------------------------------------------------------------
def test_cli_fit_apply_eval(small_tok, small_E, tmp_path, capsys):
    tok_path = small_tok.save(tmp_path / "tok.json")
    np.save(tmp_path / "E.npy", small_E)
    hn = tmp_path / "hn.npz"
    assert main(["transfer", "fit", "--embeddings", str(tmp_path / "E.npy"), "-t",
                 str(tok_path), "--out", str(hn), "--steps", "10", "--identity-steps", "2",
                 "--batch-size", "16", "--hidden", "16", "--layers", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["steps"] == 10 and "hypernetwork" in report["held_out"]
    assert "it/s" in err and "ETA" in err
    assert main(["transfer", "apply", "--hypernet", str(hn), "-t", str(tok_path), "--out",
                 str(tmp_path / "rows.npy"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == small_tok.vocab_size
    assert np.load(tmp_path / "rows.npy").shape == (small_tok.vocab_size, 6)
    assert main(["transfer", "eval", "--hypernet", str(hn), "--resamples", "20", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert {"hypernetwork", "fvt", "random"} <= set(scores)
    assert main(["transfer", "fit", "--embeddings", str(tmp_path / "E.npy"), "-t",
                 str(tok_path), "--out", str(hn)]) == 1  # exists, no --force: a runtime error
    assert "--force" in capsys.readouterr().err


# ---- bad input ---------------------------------------------------------------------------------
def test_bad_input_is_a_typed_error(small_tok, small_E, abc_tok):
    hn = Hypernetwork(SMALL)
    with pytest.raises(InputError, match="400 tokens"):
        hn.fit(small_E[:-1], small_tok)
    bad = small_E.copy()
    bad[7, 2] = np.nan
    with pytest.raises(InputError, match=r"NaN.*row 7, column 2"):
        hn.fit(bad, small_tok)
    with pytest.raises(InputError, match="held-out set is empty"):
        hn.fit(np.ones((abc_tok.vocab_size, 2)), abc_tok, held_out=0.1)
    with pytest.raises(InputError, match="fraction"):
        hn.fit(small_E, small_tok, held_out=0.0)
    with pytest.raises(InputError, match="not fitted"):
        hn.predict([b"x"])
    with pytest.raises(InputError, match="positive int"):
        HypernetConfig(hidden=0)
    with pytest.raises(InputError, match="U has shape"):
        hn.fit(small_E, small_tok, U=small_E[:, :3])


def test_tokens_the_original_cannot_decompose_are_typed_errors(fitted):
    no_fallback = Tokenizer.from_json_str(json.dumps({
        "version": "1.0", "added_tokens": [], "pre_tokenizer": None, "post_processor": None,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {"a": 0, "b": 1, "ab": 2, "\u2581": 3},
                  "merges": [["a", "b"]]}}))
    d = Decomposer(no_fallback)
    assert d.decompose(b"ab") == [2]
    with pytest.raises(InputError, match=r"cannot decompose b'ax'.*0x78"):
        d.decompose(b"ax")
    with pytest.raises(InputError, match="empty token"):
        fitted.predict([b""])


# ---- numpy vs PyTorch (opt-in: `pytest --torch -m torch`, needs torch installed) ---------------
@pytest.mark.torch
def test_torch_backend_matches_numpy_forward_gradients_and_one_adam_step(rng):
    # a missing torch fails this opt-in test; it is never skipped
    import torch
    from tokforge.transfer import torch_backend

    p = model.init_params(TINY, rng, dtype=np.float64)
    for k in p:
        p[k] += rng.normal(scale=0.3, size=p[k].shape)
    x = rng.normal(size=(3, 3, 5))
    dy = rng.normal(size=(3, 4))
    y_np, cache = model.forward(p, x, TINY)
    tp = {k: torch.tensor(v) for k, v in p.items()}
    y_t = torch_backend.forward(tp, torch.tensor(x), TINY).numpy()
    assert np.abs(y_np - y_t).max() < 1e-10
    g_np = model.backward(p, dy, cache, TINY)
    g_t = torch_backend.gradients(p, x, dy, TINY)
    for k in p:
        assert np.abs(g_np[k] - g_t[k]).max() < 1e-10, k
    a, b = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
    model.AdamW(warmup=1).step(a, g_np)
    model.AdamW(warmup=1).step(b, g_t)
    assert max(np.abs(a[k] - b[k]).max() for k in p) < 1e-8


def test_cli_fit_reads_the_installed_wordllama_files(tmp_path, monkeypatch, capsys):
    # the package layout `pip install --no-deps wordllama==0.4.0.post1` gives (files only)
    pkg = tmp_path / "site" / "wordllama"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "tokenizers").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "weights" / "l2_supercat_256.safetensors").symlink_to(
        fetch("wordllama_l2_256.safetensors"))
    (pkg / "tokenizers" / "l2_supercat_tokenizer_config.json").symlink_to(
        fetch("llama2_tokenizer.json"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert main(["transfer", "fit", "--embeddings", "wordllama", "--out",
                 str(tmp_path / "hn.npz"), "--steps", "3", "--identity-steps", "1",
                 "--batch-size", "8", "--hidden", "16", "--layers", "1", "--max-train", "50",
                 "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_train"] == 50 and report["n_held"] == 4442


# ---- evaluation C: tiny-LM bits per byte (opt-in: `pytest --torch`, needs torch) -----------
@pytest.mark.torch
@pytest.mark.parametrize("seed", [0, 1])
def test_tiny_lm_bits_per_byte_match_prefix_recomputation_and_fvt_beats_random(seed):
    # a missing torch fails this opt-in test; it is never skipped
    import torch
    from tokforge import corpus_files
    from tokforge.transfer import Decomposer, baselines
    from tokforge.transfer.lm_eval import LMConfig, bits_per_byte, train_lm

    files = corpus_files()
    lines = [ln for n in ("en", "code-python") for ln in
             files[n].read_text(encoding="utf-8").splitlines()]
    train = [ln for i, ln in enumerate(lines) if i % 10]
    held = "\n".join(ln for i, ln in enumerate(lines) if i % 10 == 0)
    orig = Tokenizer.train(texts=train, vocab_size=512, pattern="gpt2")
    new = Tokenizer.train(texts=train[::2], vocab_size=700, pattern="cl100k")
    ids = orig.encode_ordinary("\n".join(train))
    cfg = LMConfig(d=32, n_layers=1, ctx=32, steps=250, batch_size=16, lr=1e-2, seed=seed)
    lm, losses = train_lm(ids, vocab_size=orig.vocab_size, config=cfg)
    assert losses[-1] < losses[0] - 1.0  # it learned something
    bpb = bits_per_byte(lm, orig, held)
    assert math.isfinite(bpb) and 0 < bpb < 8
    # independent recomputation: each token scored from its own prefix alone, one forward pass
    # per token (so a leaky causal mask or a wrong window/byte count would show)
    text = held[:300]
    toks = orig.encode_ordinary(text)
    bits = 0.0
    with torch.no_grad():
        for s in range(0, len(toks), cfg.ctx):
            w = toks[s:s + cfg.ctx]
            for i in range(len(w)):
                lp = torch.log_softmax(lm.logits(torch.tensor([w[:i + 1]]))[0, -1].double(), -1)
                bits -= float(lp[w[i]]) / math.log(2)
    assert len(toks) > cfg.ctx
    assert bits_per_byte(lm, orig, text) == pytest.approx(bits / len(text.encode()), rel=1e-6)
    # the same seed gives the same model
    lm2, _ = train_lm(ids, vocab_size=orig.vocab_size, config=cfg)
    assert bits_per_byte(lm2, orig, held) == bpb
    # zero-shot swap: FVT rows (exact rows for shared tokens) beat random rows by a wide margin
    E = lm.embeddings()
    dec = Decomposer(orig)
    fvt = baselines.fvt(E, [dec.decompose(new.id_to_token(i)) for i in range(new.vocab_size)])
    bpb_fvt = bits_per_byte(lm.with_embeddings(fvt), new, held)
    bpb_rand = bits_per_byte(lm.with_embeddings(baselines.random_rows(E, new.vocab_size)),
                             new, held)
    assert bpb < bpb_fvt + 0.5 and bpb_fvt < bpb_rand - 0.5
    with pytest.raises(InputError, match="tokenizer has 700 tokens"):
        bits_per_byte(lm, new, held)
