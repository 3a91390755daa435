"""`tokforge tokenize` against the API call that does the same encoding: how much the CLI adds
(reading, UTF-8 checks, line splitting, id formatting, writing). Builds a text of --mb MB from the
shipped corpora, then times, best of --repeat runs, wall and CPU seconds (CPU counts every
thread, so it is the fairer number on a shared machine):

- api: ``Tokenizer.from_file`` + read + ``encode_batch_numpy(lines)`` in this process;
- cli: ``tokforge tokenize -t FILE big.txt > /dev/null`` as a subprocess (interpreter start and
  tokenizer load included, as a user pays them).

    python benches/cli.py --mb 50 --tokenizer .cache/vocab/cl100k_base.tiktoken

Prints one JSON line per measurement and the cli/api ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tokforge import Tokenizer, corpus_files


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--tokenizer", default=".cache/vocab/cl100k_base.tiktoken")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    base = "".join(p.read_text(encoding="utf-8") for p in corpus_files().values())
    text = base * (int(a.mb * 1e6) // len(base.encode()) + 1)
    with tempfile.TemporaryDirectory() as d:
        big = Path(d) / "big.txt"
        big.write_text(text, encoding="utf-8")
        rows = []
        for _ in range(a.repeat):
            w0, c0 = time.perf_counter(), _cpu_self()
            tok = Tokenizer.from_file(a.tokenizer)
            lines = big.read_text(encoding="utf-8").split("\n")
            ids, _ = tok.encode_batch_numpy(lines, disallowed_special=())
            rows.append(("api", time.perf_counter() - w0, _cpu_self() - c0, len(ids)))
            w0, c0 = time.perf_counter(), _cpu_children()
            with open(os.devnull, "wb") as null:
                subprocess.run([sys.executable, "-m", "tokforge", "tokenize", "-t", a.tokenizer,
                                str(big)], stdout=null, check=True)  # fmt: skip
            rows.append(("cli", time.perf_counter() - w0, _cpu_children() - c0, len(ids)))
    best = {}
    for name, wall, cpu, n in rows:
        print(json.dumps({"what": name, "mb": round(big_mb := len(text.encode()) / 1e6, 1),
                          "ids": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}))  # fmt: skip
        b = best.setdefault(name, [wall, cpu])
        b[0], b[1] = min(b[0], wall), min(b[1], cpu)
    print(f"{big_mb:.1f} MB: cli/api wall {best['cli'][0] / best['api'][0]:.2f}x, "
          f"cpu {best['cli'][1] / best['api'][1]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
