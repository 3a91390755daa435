"""LiB (Less-is-Better) benchmarks, one script, two questions.

``speed``: CPU time of tokforge's Rust learner vs the pure-Python reference loop
(``tests/reference/lib_ref.py``: v2023 loop for loop, with a position dict for ranks) on every
file of ``corpora/`` and on mixed documentation text (``tests/golden/lib_docs_mixed.txt``, the
Debian Administrator's Handbook in eight languages), in the runs A and B of the lexicon goldens
(``tests/golden/make_lib_lexicons.py``; TV6 A and B of docs/lib.md §11 on UDHR English: 300
articles of 20 lines, reference settings). Both sides run in this process, one after the other,
timed with ``time.process_time`` (CPU time, so other load on a shared machine does not count);
the Rust side is the best of ``--repeat`` runs, the Python side the best of ``--py-repeat`` (one
by default), the Rust runs spread evenly between the Python runs so that both bests come from
the same stretch of time; ``paired_x`` is the median over those rounds of one Python run's time over
the best of the Rust runs just before it (both measured within a second or two, so a slow spell
of a shared machine weighs on both). A time counts only if both lexicons (``L`` and ``P``) equal each other and the stored goldens.

``compare``: LiB vs byte-level BPE at EQUAL vocabulary sizes on every natural-language corpus in
``corpora/``: train on the first 80% of the lines of a file, count tokens and token types used
on the last 20% (each held-out line encoded on its own), plus LiB's share of multiword units.
The corpora are small (UDHR, 8-16 KB per language), so LiB's lexicon saturates at a few hundred
to ~1,500 units: the sizes compared are 256 bytes + 256 units, 256 + 512 units, and LiB's own
emergent size (all units that survived) with BPE trained to the same total. For 4k/16k on
>= 1 MB per language see ``benches/lib_paper.py``.

    python benches/lib_model.py speed [--only en,zh] [--runs A,B] [--repeat 5] [--json]
    python benches/lib_model.py compare [--steps 300] [--json]
    python benches/lib_model.py compare --pretokenize gpt2    # LiB "no-supra" vs BPE, same pieces

Tables go to stdout (or JSON lines with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import tokforge  # noqa: E402
from golden.make_lib_lexicons import OUT as GOLDENS  # noqa: E402
from golden.make_lib_lexicons import STEPS, configs, digest, texts  # noqa: E402
from reference.lib_ref import LibRef  # noqa: E402
from tokforge import Tokenizer, lib_model  # noqa: E402
from tokforge.lib_model import LibConfig  # noqa: E402
from tokforge.report import compression_report  # noqa: E402


def table(rows: list[dict], cols: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = lambda xs: "| " + " | ".join(x.rjust(w) for x, w in zip(xs, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cols), sep, *(line(x) for x in cells)])


def speed(args) -> list[dict]:
    goldens = json.loads(GOLDENS.read_text(encoding="utf-8"))
    files = texts(ROOT / "corpora")
    names = args.only.split(",") if args.only else list(files)
    rows = []
    for name in names:
        sents = lib_model.read_sentences(files[name])
        for run in args.runs.split(","):
            cfg = configs()[run]
            # interleaved: each Python run follows its share of the Rust runs, so the best of
            # either side is taken over the same stretch of time (a shared machine's slow
            # spells, which last longer than a Rust run, then weigh on both sides alike)
            t_rust, t_py, paired = [], [], []
            rounds = max(1, args.py_repeat)
            per_round = -(-args.repeat // rounds)
            for _ in range(rounds):
                for _ in range(per_round):
                    t0 = time.process_time()
                    L, P, _ = lib_model.learn(sents, steps=STEPS, config=cfg)
                    t_rust.append(time.process_time() - t0)
                ref = LibRef(
                    in_rate=cfg.in_rate, out_rate=cfg.out_rate, life=cfg.life,
                    update_rate=cfg.update_rate, max_chunk_len=cfg.max_chunk_len,
                    inspect_context=cfg.inspect_context, seed=cfg.seed,
                )  # fmt: skip
                t0 = time.process_time()
                ref.train(sents, steps=STEPS, article_len=cfg.article_len)
                t_py.append(time.process_time() - t0)
                # this round's ratio: its Python run over the best of the Rust runs just before
                paired.append(t_py[-1] / min(t_rust[-per_round:]))
            gold = goldens[name][run]
            same = L == ref.L and P == list(ref.P)
            if not (same and digest(L) == gold["sha256_L"] and digest(P) == gold["sha256_P"]):
                raise SystemExit(f"{name} {run}: lexicons differ (Rust, reference, golden)")
            r, p = min(t_rust), min(t_py)
            rows.append(
                {
                    "corpus": name,
                    "run": run,
                    "lines": len(sents),
                    "|L|": len(L),
                    "sha256[:12]": digest(L)[:12],
                    "python_cpu_s": round(p, 3),
                    "rust_cpu_ms": round(1000 * r, 2),
                    "speedup": round(p / r, 1),
                    "paired_x": round(statistics.median(paired), 1),
                }
            )
            if not args.json:
                print(json.dumps(rows[-1], ensure_ascii=False), file=sys.stderr, flush=True)
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
    s.add_argument("--only", default="", help="comma-separated corpus names (default: all)")
    s.add_argument("--runs", default="A,B", help="golden runs to time (A, B, default)")
    s.add_argument("--repeat", type=int, default=5, help="Rust runs (best is kept)")
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
        ups = [r["speedup"] for r in rows]
        worst = min(rows, key=lambda r: r["speedup"])
        print(
            f"{len(rows)} runs: speedup min {min(ups):.0f}x ({worst['corpus']} {worst['run']}), "
            f"median {sorted(ups)[len(ups) // 2]:.0f}x, max {max(ups):.0f}x; lexicons identical "
            "to the reference and the goldens in every run"
        )
        pairs = [r["paired_x"] for r in rows]
        print(
            f"median of the rounds' paired ratios: min {min(pairs):.0f}x, median "
            f"{statistics.median(pairs):.0f}x"
        )
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
