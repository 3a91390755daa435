"""LiB (Less-is-Better) benchmarks, one script, two questions.

``speed``: training time of tokforge's Rust learner vs the pure-Python reference loop
(``tests/reference/lib_ref.py``, a line-by-line reading of the v2023 code) on the two golden runs
TV6 A and B of docs/lib.md §11 (``corpora/en.txt`` = UDHR English, 300 articles of 20 lines,
reference settings). The two lexicons must be identical (checked, with their sha256) before a
time counts.

``compare``: LiB vs byte-level BPE at EQUAL vocabulary sizes on every natural-language corpus in
``corpora/``: train on the first 80% of the lines of a file, count tokens and token types used
on the last 20% (each held-out line encoded on its own), plus LiB's share of multiword units.
The corpora are small (UDHR, 8-16 KB per language), so LiB's lexicon saturates at a few hundred
to ~1,500 units: the sizes compared are 256 bytes + 256 units, 256 + 512 units, and LiB's own
emergent size (all units that survived) with BPE trained to the same total. 4k/16k would need
more text than a UDHR translation has (LiB never pads a vocabulary).

    python benches/lib_model.py speed [--repeat 3] [--json]
    python benches/lib_model.py compare [--steps 300] [--json]
    python benches/lib_model.py compare --pretokenize gpt2    # LiB "no-supra" vs BPE, same pieces

Tables go to stdout (or JSON lines with ``--json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import tokforge  # noqa: E402
from reference.lib_ref import LibRef, read_sentences  # noqa: E402
from tokforge import Tokenizer, lib_model  # noqa: E402
from tokforge.lib_model import LibConfig  # noqa: E402
from tokforge.report import compression_report  # noqa: E402

# The runs TV6 A and B of docs/lib.md §11 (with LibConfig.reference(article_len=20), 300 steps).
GOLDEN = {
    "TV6-A": dict(out_rate=0.01, life=3),
    "TV6-B": dict(out_rate=0.0001, life=10),
}


def table(rows: list[dict], cols: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = lambda xs: "| " + " | ".join(x.rjust(w) for x, w in zip(xs, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cols), sep, *(line(x) for x in cells)])


def speed(args) -> list[dict]:
    sents = read_sentences((ROOT / "corpora" / "en.txt").read_text(encoding="utf-8"))
    rows = []
    for name, hp in GOLDEN.items():
        cfg = LibConfig.reference(article_len=20, **hp)
        t_rust, t_py = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            L, P, _ = lib_model.learn(sents, steps=300, config=cfg)
            t_rust.append(time.perf_counter() - t0)
        for _ in range(args.py_repeat):
            t0 = time.perf_counter()
            ref = LibRef(in_rate=0.25, update_rate=0.1, seed=0, **hp)
            ref.train(sents, steps=300, article_len=20)
            t_py.append(time.perf_counter() - t0)
        identical = L == ref.L and P == list(ref.P)
        if not identical:
            raise SystemExit(f"{name}: Rust and reference lexicons differ; no timing reported")
        r, p = min(t_rust), min(t_py)
        rows.append(
            {
                "run": name,
                "|L|": len(L),
                "sha256[:12]": hashlib.sha256("\n".join(L).encode()).hexdigest()[:12],
                "identical": identical,
                "python_s": round(p, 3),
                "rust_s": round(r, 4),
                "speedup": f"{p / r:.0f}x",
            }
        )
    return rows


def split(path: Path) -> tuple[list[str], list[str]]:
    lines = [s.strip() for s in path.read_text(encoding="utf-8").split("\n")]
    lines = [s for s in lines if s]
    cut = int(len(lines) * 0.8)
    return lines[:cut], lines[cut:]


def use(tok: Tokenizer, lines: list[str]) -> tuple[int, int]:
    """Tokens and token types of ``tok`` on ``lines`` (each encoded alone)."""
    [stats] = compression_report(tok, {"test": lines})
    return stats.tokens, stats.types


def compare(args) -> list[dict]:
    rows = []
    for lang, path in tokforge.corpus_files("natural").items():
        train_lines, test_lines = split(path)
        test_bytes = sum(len(s.encode()) for s in test_lines)
        cfg = LibConfig(
            steps=args.steps, article_len=args.article_len, pretokenize=args.pretokenize
        )
        _, info = lib_model.train(sentences=train_lines, vocab_size=None, config=cfg)
        k_emergent = info.units
        for label, k in (("256+256", 256), ("256+512", 512), ("emergent", k_emergent)):
            v = 256 + k
            row = {"lang": lang, "size": label, "vocab": v, "test_bytes": test_bytes}
            if k > k_emergent:
                row.update(lib_tokens="saturated", lib_types="", bpe_tokens="", bpe_types="")
                rows.append(row)
                continue
            lib = Tokenizer(lib_model.train(sentences=train_lines, vocab_size=v, config=cfg)[0])
            pattern = args.pretokenize or "cl100k"
            bpe = Tokenizer.train(texts=["\n".join(train_lines)], vocab_size=v, pattern=pattern)
            lt, ly = use(lib, test_lines)
            bt, by = use(bpe, test_lines)
            row.update(
                lib_tokens=lt,
                bpe_tokens=bt,
                tokens_ratio=round(lt / bt, 3),
                lib_types=ly,
                bpe_types=by,
                bpe_vocab=bpe.vocab_size,
                lib_mwe=f"{100 * lib_model.multiword_share(lib.model):.1f}%",
                fewer_tokens="LiB" if lt < bt else "BPE" if bt < lt else "tie",
                fewer_types="LiB" if ly < by else "BPE" if by < ly else "tie",
            )
            rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--repeat", type=int, default=3, help="Rust runs (best is kept)")
    s.add_argument("--py-repeat", type=int, default=1, help="Python runs (best is kept)")
    s.add_argument("--json", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("--steps", type=int, default=300, help="LiB articles")
    c.add_argument("--article-len", type=int, default=20, help="LiB lines per article")
    c.add_argument(
        "--pretokenize",
        default=None,
        metavar="PATTERN",
        help="LiB without multiword units (units inside these pieces); BPE uses the same pattern",
    )
    c.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = speed(args) if args.what == "speed" else compare(args)
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return 0
    if args.what == "speed":
        print(table(rows, list(rows[0])))
    else:
        cols = ["lang", "size", "vocab", "bpe_vocab", "lib_tokens", "bpe_tokens", "tokens_ratio",
                "lib_types", "bpe_types", "lib_mwe", "fewer_tokens", "fewer_types"]  # fmt: skip
        print(table(rows, cols))
        done = [r for r in rows if isinstance(r.get("lib_tokens"), int)]
        for size in ("256+256", "256+512", "emergent"):
            sel = [r for r in done if r["size"] == size]
            equal = [r for r in sel if r["bpe_vocab"] == r["vocab"]]
            short = sorted(r["lang"] for r in sel if r["bpe_vocab"] < r["vocab"])
            if equal:
                nt = sum(r["fewer_tokens"] == "LiB" for r in equal)
                ny = sum(r["fewer_types"] == "LiB" for r in equal)
                print(
                    f"{size}: where BPE reached the size ({len(equal)} languages), LiB uses fewer "
                    f"tokens in {nt}/{len(equal)}, fewer types in {ny}/{len(equal)}"
                    + (
                        f"; BPE ran out of merges below the size in {', '.join(short)}"
                        if short
                        else ""
                    )
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
