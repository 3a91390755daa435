"""Peak memory of streamed encoding and of training on large inputs: each run in a child that
reports its own ``ru_maxrss`` before and after the work, so the difference is what the work
held, whatever the input size.

    python benches/memory.py                  # 512 MB streamed (BPE and LiB), 512 MB training
    python benches/memory.py --mb 1024        # other sizes

The text is generated lazily (64 distinct 64 KB chunks of random words, yielded in a scrambled
order): nothing but the encoder holds it. Training reads a generated file of that size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, random, resource, sys, time
from tokforge import Tokenizer
from tokforge.lib_model import LibConfig

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

rng = random.Random(0)
letters = "abcdefghijklmnopqrstuvwxyz"
vocab = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(50_000)]
chunks = [" ".join(rng.choices(vocab, k=11_000)) + "\\n" for _ in range(64)]  # ~64 KB each

def stream(mb):
    n = i = 0
    while n < mb << 20:
        c = chunks[(i * 7919) % 64]
        i += 1
        n += len(c)
        yield c

kind, mb, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "write":
    with open(path, "w") as fh:
        for c in stream(mb):
            fh.write(c)
    sys.exit(0)
if kind == "bpe":
    tok = Tokenizer.train(texts=chunks[:16], vocab_size=2000)
elif kind == "lib":
    tok = Tokenizer.train(texts=chunks[:2], vocab_size=None, algorithm="lib",
                          lib=LibConfig(steps=20, article_len=50))
before = rss_mb()
t0 = time.perf_counter()
if kind == "train":
    tok = Tokenizer.train([path], vocab_size=5000)
    n = tok.vocab_size
else:
    n = sum(len(ids) for ids in tok.encode_stream(stream(mb)))
seconds = time.perf_counter() - t0
print(json.dumps({"kind": kind, "mb": mb, "out": n, "seconds": round(seconds, 2),
                  "rss_before_mb": round(before, 1), "peak_rss_mb": round(rss_mb(), 1)}))
"""


def run(kind: str, mb: int, path: str = "-", python: str = sys.executable) -> dict:
    """One child: ``kind`` is ``bpe`` / ``lib`` (streamed encoding of ``mb`` MB), ``train``
    (BPE training on the file ``path``) or ``write`` (write ``mb`` MB of the text to ``path``)."""
    r = subprocess.run([python, "-c", CHILD, kind, str(mb), path], capture_output=True,
                       text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout) if kind != "write" else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--only", nargs="*", default=["bpe", "lib", "train"])
    a = ap.parse_args()
    rows = []
    for kind in a.only:
        if kind == "train":
            with tempfile.TemporaryDirectory() as d:
                path = str(Path(d) / "big.txt")
                run("write", a.mb, path)
                rows.append(run("train", a.mb, path))
        else:
            rows.append(run(kind, a.mb))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'run':<26} {'seconds':>8} {'RSS before':>11} {'peak RSS':>9}", file=sys.stderr)
    for r in rows:
        what = {"bpe": "encode_stream BPE", "lib": "encode_stream LiB", "train": "train BPE"}
        print(f"{what[r['kind']] + ' ' + str(r['mb']) + ' MB':<26} {r['seconds']:>8} "
              f"{r['rss_before_mb']:>9} MB {r['peak_rss_mb']:>6} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
