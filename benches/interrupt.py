"""Ctrl-C latency of each long operation: SIGINT to a child process in the middle of the work,
time until its ``KeyboardInterrupt`` arrives (measured on the shared monotonic clock), and proof
that nothing came back (no ids, no tokenizer, no output file).

    python benches/interrupt.py                 # every operation, a table and JSON lines
    python benches/interrupt.py encode train    # some of them

Each child builds its input (generated text: random words from a fixed vocabulary, so the
encoder's piece cache does not make it trivial), prints ``READY`` (or waits for the stage named
by ``wait_for``, e.g. the first ``merge`` progress report), and starts the operation; the parent
sends SIGINT ``delay`` seconds later. An operation that ends before the signal is reported as
such: the sizes below keep each one several seconds long on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

#: random words, generated fast in the child: ~6 bytes each, 200k distinct
WORDS = textwrap.dedent("""
    import random
    def words(n_bytes, seed=0):
        rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        vocab = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(200_000)]
        return " ".join(rng.choices(vocab, k=n_bytes // 6))
""")


@dataclass(frozen=True)
class Case:
    setup: str
    op: str
    #: a line the child prints when the interesting stage starts (else READY before `op`)
    wait_for: str = "READY"
    delay: float = 0.5


CASES: dict[str, Case] = {
    "encode": Case(
        "tok = Tokenizer.train(texts=[words(2 << 20)], vocab_size=2000)\ntext = words(96 << 20, 1)",
        "tok.encode(text)",
    ),
    "encode_ordinary": Case(
        "tok = Tokenizer.train(texts=[words(2 << 20)], vocab_size=2000)\ntext = words(96 << 20, 1)",
        "tok.encode_ordinary(text)",
    ),
    "encode_batch": Case(
        "tok = Tokenizer.train(texts=[words(2 << 20)], vocab_size=2000)\n"
        "t = words(96 << 20, 1)\ntexts = [t[i:i + 8192] for i in range(0, len(t), 8192)] * 30",
        "tok.encode_batch(texts)",
    ),
    "encode_batch_numpy": Case(
        "tok = Tokenizer.train(texts=[words(2 << 20)], vocab_size=2000)\n"
        "t = words(96 << 20, 1)\ntexts = [t[i:i + 8192] for i in range(0, len(t), 8192)] * 30",
        "tok.encode_batch_numpy(texts)",
    ),
    "train_count": Case(
        "texts = [words(8 << 20, s) for s in range(24)]",
        "Tokenizer.train(texts=texts, vocab_size=300)",
    ),
    "train_file": Case(
        "import tempfile, pathlib\np = pathlib.Path(tempfile.mkdtemp()) / 'big.txt'\n"
        "p.write_text(words(192 << 20))",
        "Tokenizer.train([p], vocab_size=300)",
    ),
    "train_merge": Case(
        "text = words(24 << 20)\n"
        "def progress(stage, done, total):\n"
        "    if stage == 'merge' and done == 0: print('MERGE', flush=True)",
        "Tokenizer.train(texts=[text], vocab_size=200_000, progress=progress)",
        wait_for="MERGE",
        delay=0.3,
    ),
    "train_lib": Case(
        "lines = words(4 << 20).split(' ')\nsents = [' '.join(lines[i:i + 12]) "
        "for i in range(0, len(lines), 12)]",
        "lib_model.train(sentences=sents, vocab_size=None, config=lib_model.LibConfig(steps=10**6))",
    ),
    "merge_batch": Case(
        "tok = Tokenizer.train(texts=[words(2 << 20)], vocab_size=300)\n"
        "t = words(24 << 20, 1)\nbatch = tok.encode_batch([t[i:i + 4096] "
        "for i in range(0, len(t), 4096)])",
        "dynamic.merge_batch(batch, tokenizer=tok, min_count=1)",
    ),
}

CHILD = """
import os, sys, time
from tokforge import Tokenizer, lib_model, dynamic
{words}
{setup}
print({wait!r} if {wait!r} == "READY" else "SETUP", flush=True)
try:
    result = {op}
    print("DONE", time.monotonic(), flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", time.monotonic(), "result" in globals(), flush=True)
"""


@dataclass
class Measured:
    op: str
    latency_s: float | None  # None: the operation ended before the signal
    returned_nothing: bool
    note: str = ""


def measure(name: str, case: Case | None = None, python: str = sys.executable,
            timeout: float = 600) -> Measured:
    """SIGINT to a child running ``case`` (``CASES[name]``); the latency from the signal to the
    child's ``KeyboardInterrupt``."""
    case = case or CASES[name]
    src = CHILD.format(words=WORDS, setup=case.setup, op=case.op, wait=case.wait_for)
    p = subprocess.Popen([python, "-c", src], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"{name}: child ended early: {p.stderr.read()[-2000:]}")
            if line.strip() == case.wait_for:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(name)
        time.sleep(case.delay)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    last = out.split()
    if "DONE" in last:
        return Measured(name, None, False, "ended before the signal")
    if "INTERRUPTED" not in last:
        raise RuntimeError(f"{name}: no KeyboardInterrupt seen: {out!r} {err[-2000:]}")
    k = last.index("INTERRUPTED")
    return Measured(name, float(last[k + 1]) - sent, last[k + 2] == "False")


def measure_cli(python: str = sys.executable, delay: float = 1.0) -> Measured:
    """``tokforge train`` on a generated 192 MB file, SIGINT after ``delay`` s: exit code 130,
    no output file; latency from the signal to the process's exit (interpreter exit included)."""
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp())
    src = WORDS + f"\nopen({str(d / 'big.txt')!r}, 'w').write(words(192 << 20))"
    subprocess.run([python, "-c", src], check=True)
    out = d / "tok.json"
    p = subprocess.Popen([python, "-m", "tokforge", "train", "--vocab-size", "50000", "-q",
                          "-o", str(out), str(d / "big.txt")], stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=600)
    latency = time.monotonic() - sent
    ok = p.returncode == 130 and not out.exists() and err.strip() == "tokforge: interrupted"
    note = f"exit {p.returncode}, stderr {err.strip()[-80:]!r}"
    return Measured("cli train", latency, ok, note)


def main(argv: list[str]) -> int:
    names = argv or [*CASES, "cli"]
    rows = []
    for name in names:
        m = measure_cli() if name == "cli" else measure(name)
        rows.append(m)
        print(json.dumps(m.__dict__), flush=True)
    print(f"\n{'operation':<20} {'Ctrl-C latency':>15}  nothing returned", file=sys.stderr)
    for m in rows:
        lat = "ended first" if m.latency_s is None else f"{1000 * m.latency_s:,.0f} ms"
        print(f"{m.op:<20} {lat:>15}  {m.returned_nothing}  {m.note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
