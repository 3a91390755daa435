"""Regenerate ``tests/golden/byte_probs_steps.json``: next-byte distributions of :class:`tokforge.ByteLM`
on held-out code, saved so that refactors can show the byte probabilities did not move
(``tests/test_byte_probs.py::test_byte_probs_equal_saved_goldens``). Regenerated when the
``pieces`` rule became exact (docs/byte_probs.md §15): the ``pair`` runs did not move at all; the
GPT-2-pattern runs moved by at most 1.4e-6 (exact), 2e-6 (mask) and 0.02 (fast, which now keeps
``encode(x)`` alone).

Two tokenizers trained on ``corpora/code-python.txt`` (90 %): one with the GPT-2 regex (the
``pieces`` validity rule) and one whose pre-tokenizer keeps each text whole (the exact ``pair``
rule); an order-3 n-gram LM each. For every mode, the distribution before each of 48 held-out
bytes is summarised by its 6 most likely bytes, the end-of-string probability and ``log Q``.

    python tests/golden/make_byte_probs.py      # rewrites the JSON next to this file
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "byte_probs_steps.json"
N_BYTES = 48
TOP = 6


def setups(corpora: Path):
    """``{name: (tokenizer, lm)}`` and the held-out text, as the golden test builds them."""
    from tokforge import Tokenizer
    from tokforge.lm import NGramLM

    text = (corpora / "code-python.txt").read_text(encoding="utf-8")
    train, held = text[: len(text) * 9 // 10], text[len(text) * 9 // 10 :]
    docs = [d for d in train.split("\n\n") if d.strip()]
    toks = {
        "gpt2-600": Tokenizer.train(texts=[train], vocab_size=600, pattern="gpt2"),
        "whole-400": Tokenizer.train(texts=docs, vocab_size=400, pattern=r"[\s\S]+"),
    }
    out = {}
    for name, tok in toks.items():
        ids = [tok.encode_ordinary(d) for d in docs]
        lm = NGramLM(vocab_size=tok.vocab_size + 1, eos_id=tok.vocab_size, order=3).fit(ids)
        out[name] = (tok, lm)
    return out, held[100 : 100 + N_BYTES].encode()


def summary(p: np.ndarray) -> dict:
    order = np.argsort(-p[:256], kind="stable")[:TOP]
    return {"top": [[int(b), float(p[b])] for b in order], "end": float(p[256])}


def record(corpora: Path) -> dict:
    from tokforge import ByteLM

    models, text = setups(corpora)
    out: dict = {"text": text.decode("utf-8"), "runs": {}}
    for name, (tok, lm) in models.items():
        for mode in ("exact", "mask", "fast"):
            blm = ByteLM(lm, tok, mode=mode)
            st = blm.start(b"")
            steps = []
            for ch in text:
                steps.append({**summary(blm.next_byte_probs(st)), "log_q": st.log_q})
                st = blm.advance(st, ch)
            mid = blm.start(text[:37])
            covers = sorted(blm.covers(mid), key=lambda c: (-c[2], c[0]))[:TOP]
            out["runs"][f"{name}/{mode}"] = {
                "validity": blm.validity,
                "steps": steps,
                "start_mid": summary(blm.next_byte_probs(mid)),
                "covers_mid": [[ids, o.hex(), p] for ids, o, p in covers],
            }
    return out


def dump(doc: dict) -> str:
    """JSON with one line per step (readable diffs, a tenth of the indented size)."""
    lines = ["{", f' "text": {json.dumps(doc["text"])},', ' "runs": {']
    runs = list(doc["runs"].items())
    for i, (key, run) in enumerate(runs):
        lines.append(f"  {json.dumps(key)}: {{")
        lines.append(f'   "validity": {json.dumps(run["validity"])},')
        lines.append('   "steps": [')
        steps = [json.dumps(s, separators=(",", ":")) for s in run["steps"]]
        lines += [f"    {s}," for s in steps[:-1]] + [f"    {steps[-1]}", "   ],"]
        lines.append(f'   "start_mid": {json.dumps(run["start_mid"], separators=(",", ":"))},')
        lines.append(f'   "covers_mid": {json.dumps(run["covers_mid"], separators=(",", ":"))}')
        lines.append("  }" + ("," if i + 1 < len(runs) else ""))
    lines += [" }", "}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    corpora = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[1] / "corpora"
    OUT.write_text(dump(record(corpora)), encoding="utf-8")
    print(f"wrote {OUT}")
