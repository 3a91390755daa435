"""Hypernetwork tokenizer transfer on real embeddings (docs/transfer.md §5).

WordLlama 0.4.0.post1's 32,000 x 256 token embeddings with their Llama-2 SentencePiece-BPE
tokenizer (fetched and sha256-checked by ``tests/vocabularies.py``):

- **A. held-out reconstruction**: 15% of the eligible tokens are held out; each is decomposed
  with every held-out token banned (``D(t, H)``); the hypernetwork (two variants) and every
  baseline predict its row; cosine, relative L2, top-1 / top-10 / MRR of the true row among
  all 32,000, with 95% bootstrap intervals (1,000 resamples);
- **B. tokenizer swap**: a new 8k byte-level BPE trained here on ``corpora/`` (every line but
  each tenth), rows predicted for its whole vocabulary; on the held-out lines (each tenth),
  mean cosine between the sentence vector under the original tokenizer and under the new one
  (WordLlama's recipe: mean of token rows, L2-normalised) and retrieval@1 among them; and
  cross-lingual retrieval of the matching English UDHR article (30 articles x 23 languages)
  from each language's article embedded with the new tokenizer.

    .venv/bin/python benches/transfer.py            # ~6 min on 2 shared cores
    .venv/bin/python benches/transfer.py --quick    # ~1.5 min: 300 steps

- **C. tiny-LM bits per byte** (``--eval-c``, needs torch; runs C only): a 2-layer, d=64 causal
  LM with tied embeddings trained on ``corpora/`` English + Python + C (every line but each
  tenth) under a 2,048-token byte-level BPE; its body frozen, the tied matrix swapped for one
  of a new 3,000-token BPE (cl100k split, trained on half those lines plus German) filled by
  FVT, the hypernetwork fitted on the LM's own matrix, or random rows; held-out bits per UTF-8
  byte of the held-out tenth, zero-shot (docs/transfer.md §5, C).

    .venv/bin/python benches/transfer.py --eval-c   # ~3 min on 2 shared cores
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from common import format_table, machine_info  # noqa: E402
from tokforge import Tokenizer, corpus_files  # noqa: E402
from tokforge.transfer import HypernetConfig, Hypernetwork, baselines, load_embeddings  # noqa: E402
from tokforge.transfer.evaluate import bootstrap, sentence_vectors, separated, swap_scores  # noqa: E402
from vocabularies import fetch  # noqa: E402

METRICS = ["cosine", "rel_l2", "top1", "top10", "mrr"]


def cell(s: dict[str, float]) -> str:
    return f"{s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]"


def articles(text: str) -> list[str] | None:
    """The 30 UDHR articles of one language (heading lines are short and carry the number)."""
    out: list[list[str]] = []
    for line in text.splitlines():
        m = re.fullmatch(r"\D{0,25}?(\d{1,2})\D{0,12}", line.strip())
        if m and len(line) < 40 and int(m.group(1)) == len(out) + 1:
            out.append([])
        elif out:
            out[-1].append(line)
    return [" ".join(a) for a in out] if len(out) == 30 else None


def eval_c(a: argparse.Namespace) -> list[dict]:
    """Evaluation C; prints its table and returns JSON rows."""
    from tokforge.transfer import Decomposer
    from tokforge.transfer.lm_eval import LMConfig, bits_per_byte, train_lm

    t0 = time.perf_counter()
    files = corpus_files()
    lines = [ln for n in ("en", "code-python", "code-c")
             for ln in files[n].read_text(encoding="utf-8").splitlines()]
    train = [ln for i, ln in enumerate(lines) if i % 10]
    held = "\n".join(ln for i, ln in enumerate(lines) if i % 10 == 0)
    orig = Tokenizer.train(texts=train, vocab_size=2048, pattern="gpt2")
    new = Tokenizer.train(texts=train[::2] + files["de"].read_text(encoding="utf-8").splitlines(),
                          vocab_size=3000, pattern="cl100k")
    overlap = sum(orig.token_to_id(new.id_to_token(i)) is not None
                  for i in range(new.vocab_size))
    ids = orig.encode_ordinary("\n".join(train))
    cfg = LMConfig(d=64, n_layers=2, n_heads=2, ctx=64, steps=a.lm_steps, batch_size=32,
                   lr=3e-3, seed=a.seed, threads=1)
    lm, losses = train_lm(ids, vocab_size=orig.vocab_size, config=cfg)
    t_lm = time.perf_counter() - t0
    print(f"LM: {len(ids):,} training tokens, {cfg.steps} steps x {cfg.batch_size} x {cfg.ctx}, "
          f"loss {losses[0]:.2f} -> {np.mean(losses[-50:]):.2f} nats/token, {t_lm:.0f}s",
          flush=True)
    E = lm.embeddings()
    dec = Decomposer(orig)
    decomps = [dec.decompose(new.id_to_token(i)) for i in range(new.vocab_size)]
    tables: dict[str, np.ndarray] = {"FVT": baselines.fvt(E, decomps)}
    base = dict(steps=a.steps, identity_steps=a.identity_steps, batch_size=a.batch_size,
                hidden=64, ffn=128)
    for name, cfg_h in {"hypernetwork (ZeTT-style)": HypernetConfig(**base),
                        "hypernetwork + residual mean": HypernetConfig(**base,
                                                                       residual_mean=True)}.items():
        hn = Hypernetwork(cfg_h)
        hn.fit(E, orig, held_out=0.15, seed=a.seed)
        tables[name] = hn.predict(new)
        tables[name + ", copy overlap"] = hn.predict(new, copy_overlap=True)
    tables["random"] = baselines.random_rows(E, new.vocab_size, seed=a.seed)
    n_bytes = len(held.encode("utf-8"))
    out = [{"experiment": "C", "method": "original tokenizer", "bpb": bits_per_byte(lm, orig, held),
            "tokens": len(orig.encode_ordinary(held))}]
    for name, rows in tables.items():
        out.append({"experiment": "C", "method": name, "tokens": len(new.encode_ordinary(held)),
                    "bpb": bits_per_byte(lm.with_embeddings(rows), new, held)})
    print(f"\nC. tiny-LM bits per byte, zero-shot swap from a 2,048-token to a 3,000-token BPE "
          f"({overlap} tokens shared), body frozen; {n_bytes:,} held-out bytes of corpora/ "
          f"English + Python + C (measured here on 2 shared cores, "
          f"{time.perf_counter() - t0:.0f}s)")
    print(format_table(["embedding rows", "held-out tokens", "bits per byte"],
                       [[r["method"], f"{r['tokens']:,}", f"{r['bpb']:.3f}"] for r in out]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--identity-steps", type=int, default=120)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="300 steps")
    ap.add_argument("--eval-c", action="store_true",
                    help="run only evaluation C (tiny-LM bits per byte; needs torch)")
    ap.add_argument("--lm-steps", type=int, default=1000, help="C: LM training steps")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write JSON lines here")
    a = ap.parse_args()
    if a.quick:
        a.steps, a.identity_steps = 300, 30
    t_all = time.perf_counter()
    rows_out: list[dict] = [{"machine": machine_info(), "args": vars(a)}]
    if a.eval_c:
        rows_out += eval_c(a)
        print(f"\ntotal {time.perf_counter() - t_all:.0f}s")
        if a.json:
            Path(a.json).write_text("".join(json.dumps(r) + "\n" for r in rows_out),
                                    encoding="utf-8")
        return 0

    E = load_embeddings(fetch("wordllama_l2_256.safetensors"))
    tok = Tokenizer.from_file(fetch("llama2_tokenizer.json"))
    files = corpus_files()
    lines = {name: p.read_text(encoding="utf-8").splitlines() for name, p in files.items()}
    train_lines = [ln for ls in lines.values() for i, ln in enumerate(ls) if i % 10 and ln]
    held_lines = [ln for ls in lines.values() for i, ln in enumerate(ls)
                  if i % 10 == 0 and len(ln) >= 20]
    rng = np.random.default_rng(a.seed)
    if len(held_lines) > 1000:
        held_lines = [held_lines[i] for i in sorted(rng.choice(len(held_lines), 1000,
                                                               replace=False))]
    focus_seqs = [tok.encode_ordinary(ln) for ln in train_lines]

    # ---- A ----------------------------------------------------------------------------------
    base = dict(steps=a.steps, identity_steps=a.identity_steps, batch_size=a.batch_size)
    variants = {"hypernetwork (ZeTT-style)": HypernetConfig(**base),
                "hypernetwork + residual mean": HypernetConfig(**base, residual_mean=True)}
    fitted: dict[str, Hypernetwork] = {}
    scores: dict[str, dict] = {}
    for name, cfg in variants.items():
        hn = Hypernetwork(cfg)
        t0 = time.perf_counter()
        rep = hn.fit(E, tok, held_out=0.15, seed=a.seed)
        print(f"fit {name}: {rep.n_params:,} params, {rep.identity_steps}+{rep.steps} steps x "
              f"{cfg.batch_size}, {time.perf_counter() - t0:.0f}s "
              f"({rep.seconds_per_step * 1e3:.0f} ms/step); {rep.n_train} train, "
              f"{rep.n_held} held out, {rep.truncated} truncated", flush=True)
        t0 = time.perf_counter()
        s = hn.held_out_scores(focus_sequences=focus_seqs if not scores else None,
                               resamples=1000, seed=a.seed)
        print(f"  scored in {time.perf_counter() - t0:.0f}s", flush=True)
        fitted[name] = hn
        if not scores:
            coverage = s.pop("focus_style_coverage")["share"]["mean"]
            scores.update({k: v for k, v in s.items() if k != "hypernetwork"})
        scores[name] = s["hypernetwork"]
    order = [*variants, "fvt", "length_weighted", "focus_style", "last_piece", "random"]
    print(f"\nA. held-out reconstruction, WordLlama 32,000 x 256 (measured here on 2 shared "
          f"cores); n = {len(next(iter(fitted.values())).split.held_ids)} held-out tokens, "
          f"FOCUS-style corpus coverage {coverage:.1%}")
    print(format_table(["method", *METRICS], [[m, *(cell(scores[m][k]) for k in METRICS)]
                                              for m in order]))
    verdict = {}
    for name in variants:
        verdict[name] = {k: separated(scores[name][k], scores["fvt"][k])
                         for k in ("cosine", "top10", "mrr")}
        print(f"{name} above FVT with non-overlapping 95% intervals: {verdict[name]}")
    rows_out.append({"experiment": "A", "scores": scores, "verdict_vs_fvt": verdict,
                     "focus_coverage": coverage})

    # ---- B ----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    new = Tokenizer.train(texts=train_lines, vocab_size=8000, pattern="gpt2")
    main_hn = fitted["hypernetwork (ZeTT-style)"]
    decomps = [main_hn.decompose(new.id_to_token(i)) for i in range(new.vocab_size)]
    overlap = sum(tok.token_to_id(new.id_to_token(i)) is not None
                  for i in range(new.vocab_size))
    tables = {"original tokenizer (reference)": None}
    for name, hn in fitted.items():
        tables[name] = hn.predict(new)
        tables[name + ", copy overlap"] = hn.predict(new, copy_overlap=True)
    tables["fvt"] = baselines.fvt(E, decomps)
    tables["random"] = baselines.random_rows(E, new.vocab_size, seed=a.seed)
    orig = sentence_vectors(E, [tok.encode_ordinary(s) for s in held_lines])
    new_seqs = [new.encode_ordinary(s) for s in held_lines]
    arts = {k: articles("\n".join(v)) for k, v in lines.items() if len(k) == 2}
    langs = sorted(k for k, v in arts.items() if v and k != "en")
    en = sentence_vectors(E, [tok.encode_ordinary(x) for x in arts["en"]])
    b_rows = []
    for name, rows in tables.items():
        if rows is None:
            sw = {"cosine": bootstrap(np.ones(len(held_lines))),
                  "retrieval@1": bootstrap(np.ones(len(held_lines)))}
        else:
            sw = swap_scores(orig, sentence_vectors(rows, new_seqs))
        hits = []
        for lang in langs:
            xs = arts[lang]
            q = (sentence_vectors(E, [tok.encode_ordinary(x) for x in xs]) if rows is None
                 else sentence_vectors(rows, [new.encode_ordinary(x) for x in xs]))
            hits.extend((q @ en.T).argmax(1) == np.arange(30))
        xl = bootstrap(np.asarray(hits, dtype=float))
        b_rows.append([name, cell(sw["cosine"]), cell(sw["retrieval@1"]), cell(xl)])
        rows_out.append({"experiment": "B", "method": name, **sw, "cross_lingual@1": xl})
    print(f"\nB. tokenizer swap to a new 8,000-token byte-level BPE ({overlap} tokens also in "
          f"Llama-2's vocabulary), {len(held_lines)} held-out corpora/ lines; cross-lingual: "
          f"English UDHR article retrieved among 30 from {len(langs)} languages (measured "
          f"here on 2 shared cores, {time.perf_counter() - t0:.0f}s)")
    print(format_table(["rows for the new vocabulary", "sentence cosine", "retrieval@1",
                        "cross-lingual@1"], b_rows))
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.0f}s")
    rows_out.append({"total_s": round(total, 1)})
    if a.json:
        Path(a.json).write_text("".join(json.dumps(r) + "\n" for r in rows_out),
                                encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
