"""Benchmark of ``tokforge.metrics``: what the analysis costs on top of encoding, and how fast
Qtok classifies a large vocabulary.

1. ``analyze`` (all corpus metrics) of the benchmark corpus (benches/corpus.py, >= 50 MB of real
   multilingual text and code) with three tokenizers (GPT-2, cl100k, tekken), against encoding the
   same text with the same tokenizers and nothing else (``encode_batch_numpy`` over the same
   documents). Target: analyze <= 1.5 x encode.
2. Qtok: tekken's 131k vocabulary end to end (tokforge mode: token bytes from the model, then
   classification), and the classification of 200,000 real tokens (the first 200k, sorted, of
   the 437,906 normalised tokens of qtok's 13 bundled vocabularies): target well under a second.

    .venv/bin/python benches/metrics.py                 # builds the corpus on the first run
    .venv/bin/python benches/metrics.py --mb 10 --json  # JSON lines on stdout, table on stderr

Each measurement is the best of ``--repeat`` runs (default 3) in this process, encode and analyze
interleaved, after one warm-up encode per tokenizer (so both sides see warm caches). Wall and
CPU time are both shown: on a shared machine the CPU time is the steadier.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from common import format_table  # noqa: E402
from corpus import build_corpus  # noqa: E402
from tokforge import Tokenizer  # noqa: E402
from tokforge.metrics import CORPUS_METRICS, analyze, classify  # noqa: E402
from tokforge.metrics.qtok import qtok, reference_vocabularies  # noqa: E402
from vocabularies import fetch  # noqa: E402


def _docs(path: Path, mb: float) -> list[str]:
    """The corpus split into its documents (blank-line separated), up to ``mb`` MB."""
    out, total = [], 0
    for d in path.read_text(encoding="utf-8").split("\n\n"):
        if total >= mb * 1e6:
            break
        if d:
            out.append(d)
            total += len(d.encode("utf-8"))
    return out


def _best(fn, repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time (this process, all threads) of ``repeat`` runs: on a
    shared machine the CPU time is the steadier of the two."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--mb", type=float, default=50.0, help="text to analyze, MB (default 50, max 62)"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="JSON lines on stdout")
    a = ap.parse_args(argv)
    # the same 60 MiB corpus as benches/train.py (built once, reused), cut to --mb
    corpus = build_corpus(HERE / "data", 60, log=lambda *x: print(*x, file=sys.stderr))
    docs = _docs(corpus, a.mb)
    mbytes = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    toks = {
        "gpt2": Tokenizer.from_file(fetch("gpt2.tiktoken")),
        "cl100k": Tokenizer.from_file(fetch("cl100k_base.tiktoken")),
        "tekken": Tokenizer.from_file(fetch("tekken_240911.json")),
    }
    for tok in toks.values():  # warm-up: both sides then run on warm encoder caches
        tok.encode_batch_numpy(docs[:2000], disallowed_special=())
    rows = []
    enc = ana = (float("inf"), float("inf"))
    for _ in range(a.repeat):  # interleaved, so both sides see the same background load
        e = _best(
            lambda: [t.encode_batch_numpy(docs, disallowed_special=()) for t in toks.values()], 1
        )
        n = _best(lambda: analyze(toks, {"bench": docs}, metrics=CORPUS_METRICS), 1)
        enc = (min(enc[0], e[0]), min(enc[1], e[1]))
        ana = (min(ana[0], n[0]), min(ana[1], n[1]))
    rows.append(
        {
            "bench": "analyze vs encode",
            "mb": round(mbytes, 1),
            "tokenizers": len(toks),
            "encode_s": round(enc[0], 3),
            "analyze_s": round(ana[0], 3),
            "ratio": round(ana[0] / enc[0], 3),
            "encode_cpu_s": round(enc[1], 3),
            "analyze_cpu_s": round(ana[1], 3),
            "cpu_ratio": round(ana[1] / enc[1], 3),
            "target": "<= 1.5",
        }
    )
    tekken = toks["tekken"]
    t_131k = _best(lambda: qtok(tekken, languages=False), a.repeat)
    res = qtok(tekken, languages=False)
    union = sorted(set().union(*reference_vocabularies().values()))[:200_000]
    t_200k = _best(lambda: [classify(s) for s in union], a.repeat)
    rows.append(
        {
            "bench": "qtok tekken (131k, tokforge mode)",
            "tokens": res.size,
            "seconds": round(t_131k[0], 3),
            "cpu_s": round(t_131k[1], 3),
        }
    )
    rows.append(
        {
            "bench": "classify 200k qtok-union tokens",
            "tokens": len(union),
            "seconds": round(t_200k[0], 3),
            "cpu_s": round(t_200k[1], 3),
        }
    )
    for r in rows:
        if a.json:
            print(json.dumps(r))
    headers = ["bench", "size", "wall s", "CPU s", "wall ratio", "CPU ratio"]
    r0 = rows[0]
    size = f"{r0['mb']} MB x 3"
    table = [
        ["analyze (all corpus metrics)", size, r0["analyze_s"], r0["analyze_cpu_s"],
         r0["ratio"], r0["cpu_ratio"]],
        ["encode only", size, r0["encode_s"], r0["encode_cpu_s"], 1.0, 1.0],
        *[[r["bench"], f"{r['tokens']:,} tokens", r["seconds"], r["cpu_s"], "", ""]
          for r in rows[1:]],
    ]  # fmt: skip
    print(format_table(headers, table), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
