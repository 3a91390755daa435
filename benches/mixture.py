"""Data-mixture inference (tokforge.mixture): the controlled experiment of Hayase et al. (2024) on
the shipped corpora, the sample-size study, timing / memory of replay and solve, and real
tokenizers. Design note and results: docs/mixture_inference.md.

    .venv/bin/python benches/mixture.py controlled --trials 20        # log10 MSE, n = 5, 10, all
    .venv/bin/python benches/mixture.py size --trials 10              # MSE vs sample size
    .venv/bin/python benches/mixture.py timing --merges 3000,10000,30000 --categories 100
    .venv/bin/python benches/mixture.py real                          # GPT-2, cl100k, tekken

Each part prints a table on stderr and JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))
sys.path.insert(0, str(ROOT / "tests"))

from common import format_table as _format_table  # noqa: E402
from common import peak_rss_mb  # noqa: E402


def format_table(rows: list[dict]) -> str:
    return _format_table(list(rows[0]), [list(r.values()) for r in rows]) if rows else ""

#: the paper's table (mean ± std of log10 MSE over 100 trials, 1 GB samples, ~30k merges)
PAPER = {
    "languages (Oscar)": {5: (-7.30, 1.31), 10: (-7.66, 1.04), 30: (-7.73, 1.12), 112: (-7.69, 1.28)},
    "code (GitHub)": {5: (-6.46, 0.79), 10: (-6.30, 0.64), 30: (-5.98, 1.11)},
    "random guess": {5: (-1.39, 0.36), 10: (-1.84, 0.23), 30: (-2.70, 0.13), 112: (-3.82, 0.07)},
    "uniform guess": {5: (-1.67, 0.31), 10: (-2.14, 0.22), 30: (-3.01, 0.14), 112: (-4.12, 0.08)},
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def simplex(rng: np.random.Generator, n: int, m: int = 10_000) -> np.ndarray:
    """The authors' sampler: sorted distinct integers in 1..m-1, successive differences / m."""
    cuts = np.sort(rng.choice(np.arange(1, m), size=n - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [m]])) / m


def halves(docs: dict[str, str]) -> dict[str, tuple[bytes, str]]:
    """Each corpus file cut at the line nearest its middle: (training half as bytes, sample)."""
    out = {}
    for k, d in docs.items():
        cut = d.find("\n", len(d) // 2) + 1 or len(d) // 2
        out[k] = (d[:cut].encode(), d[cut:])
    return out


def mixture_text(parts: dict[str, tuple[bytes, str]], w: dict[str, float], total: int) -> list[str]:
    """``w_i * total`` bytes of each category's training half, repeated as needed; one document per
    category (a cut mid-character is dropped)."""
    docs = []
    for k, wi in w.items():
        src, n = parts[k][0], round(wi * total)
        if n:
            docs.append((src * (n // len(src) + 1))[:n].decode("utf-8", "ignore"))
    return docs


def train(trainer: str, docs: list[str], merges: int):
    from tokforge import Tokenizer

    if trainer == "tokforge":
        return Tokenizer.train(texts=docs, vocab_size=256 + merges, pattern="cl100k")
    import tokforge
    from tokenizers import Regex, models, pre_tokenizers, trainers
    from tokenizers import Tokenizer as HFTokenizer

    ht = HFTokenizer(models.BPE())
    ht.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(tokforge.hf_pattern("cl100k")), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tr = trainers.BpeTrainer(
        vocab_size=256 + merges,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    ht.train_from_iterator(docs, tr)
    return ht


def one_trial(rng, parts, names, n, trainer, merges, total, frac=1.0):
    from tokforge.mixture import infer

    cats = list(rng.choice(names, size=n, replace=False))
    w = dict(zip(cats, simplex(rng, n)))
    tok = train(trainer, mixture_text(parts, w, total), merges)
    samples = {}
    for k in cats:
        s = parts[k][1]
        samples[k] = s[: max(1, int(len(s) * frac))]
    r = infer(tok, samples, merges, min_sample_bytes=0)
    est = np.array([r[k] for k in cats])
    true = np.array([w[k] for k in cats])
    return {
        "mse": float(np.mean((est - true) ** 2)),
        "objective": r.objective,
        "rounds": r.rounds,
        "rows": r.constraints,
        "sample_bytes": int(sum(len(samples[k].encode()) for k in cats)),
        "solve_s": r.timing["solve"] + r.timing["separate"],
    }


def baselines(n: int, trials: int = 2000, seed: int = 0) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    rnd, uni = [], []
    for _ in range(trials):
        w = simplex(rng, n)
        rnd.append(math.log10(np.mean((simplex(rng, n) - w) ** 2)))
        uni.append(math.log10(np.mean((1 / n - w) ** 2)))
    return {"random": (np.mean(rnd), np.std(rnd)), "uniform": (np.mean(uni), np.std(uni))}


def load_parts(kind: str) -> tuple[dict, list[str]]:
    from tokforge import corpus_dir

    docs = {p.stem: p.read_text(encoding="utf-8") for p in sorted(Path(corpus_dir()).glob("*.txt"))}
    if kind == "languages":
        docs = {k: v for k, v in docs.items() if not k.startswith("code-")}
    elif kind == "code":
        docs = {k: v for k, v in docs.items() if k.startswith("code-")}
    parts = halves(docs)
    return parts, sorted(parts)


def cmd_controlled(a) -> None:
    parts, names = load_parts(a.kind)
    sizes = [int(x) if x != "all" else len(names) for x in a.n.split(",")]
    rows = []
    for trainer in a.trainers.split(","):
        for n in sizes:
            rng = np.random.default_rng(a.seed + n)
            res = []
            t0 = time.perf_counter()
            for _ in range(a.trials):
                res.append(one_trial(rng, parts, names, n, trainer, a.merges, a.total))
            lm = np.log10([r["mse"] for r in res])
            base = baselines(n)
            row = {
                "part": "controlled",
                "kind": a.kind,
                "trainer": trainer,
                "n": n,
                "trials": a.trials,
                "merges": a.merges,
                "train_bytes": a.total,
                "sample_bytes_mean": float(np.mean([r["sample_bytes"] for r in res]) / n),
                "log10_mse_mean": float(lm.mean()),
                "log10_mse_std": float(lm.std()),
                "random_guess": base["random"],
                "uniform_guess": base["uniform"],
                "objective_mean": float(np.mean([r["objective"] for r in res])),
                "rows_mean": float(np.mean([r["rows"] for r in res])),
                "seconds": time.perf_counter() - t0,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
            log(f"{trainer} n={n}: {row['log10_mse_mean']:.2f} ± {row['log10_mse_std']:.2f}")
    table = [
        {
            "trainer": r["trainer"],
            "n": r["n"],
            "log10 MSE": f"{r['log10_mse_mean']:.2f} ± {r['log10_mse_std']:.2f}",
            "random guess": "{:.2f} ± {:.2f}".format(*r["random_guess"]),
            "uniform guess": "{:.2f} ± {:.2f}".format(*r["uniform_guess"]),
            "sample KB/cat": f"{r['sample_bytes_mean'] / 1e3:.1f}",
            "objective": f"{r['objective_mean']:.3f}",
            "s": f"{r['seconds']:.0f}",
        }
        for r in rows
    ]
    log(format_table(table))


def cmd_size(a) -> None:
    parts, names = load_parts(a.kind)
    rows = []
    for frac in [float(x) for x in a.fractions.split(",")]:
        rng = np.random.default_rng(a.seed)
        res = [one_trial(rng, parts, names, a.n, "tokforge", a.merges, a.total, frac) for _ in range(a.trials)]
        lm = np.log10([r["mse"] for r in res])
        row = {
            "part": "size",
            "kind": a.kind,
            "n": a.n,
            "fraction": frac,
            "sample_bytes_mean": float(np.mean([r["sample_bytes"] for r in res]) / a.n),
            "log10_mse_mean": float(lm.mean()),
            "log10_mse_std": float(lm.std()),
            "merges": a.merges,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    log(
        format_table(
            [
                {
                    "sample KB/cat": f"{r['sample_bytes_mean'] / 1e3:.1f}",
                    "log10 MSE": f"{r['log10_mse_mean']:.2f} ± {r['log10_mse_std']:.2f}",
                }
                for r in rows
            ]
        )
    )


# ---- timing on synthetic categories ----------------------------------------------------------
def synthetic(rng: np.random.Generator, mb: float, seed_cat: int) -> str:
    """A synthetic "language": its own syllables over one of a few scripts, 4000 words with Zipf
    frequencies, sentences with punctuation."""
    scripts = [
        "abcdefghijklmnopqrstuvwxyz",
        "абвгдежзийклмнопрстуфхцчшщыэюя",
        "αβγδεζηθικλμνξοπρστυφχψω",
        "あいうえおかきくけこさしすせそたちつてとなにぬねの",
    ]
    crng = np.random.default_rng(1000 + seed_cat)
    alpha = scripts[seed_cat % len(scripts)]
    syl = ["".join(crng.choice(list(alpha), size=int(crng.integers(1, 4)))) for _ in range(60)]
    words = np.array(["".join(crng.choice(syl, size=int(crng.integers(1, 4)))) for _ in range(4000)])
    p = 1 / np.arange(1, len(words) + 1) ** 1.1
    p /= p.sum()
    n_words = int(mb * 1e6 / 7)
    w = words[rng.choice(len(words), size=n_words, p=p)]
    text = " ".join(w.tolist())
    return text.replace(" " + w[0] + " ", ". " + w[0].capitalize() + " ")


def cmd_timing_child(a) -> None:
    """One configuration in its own process (peak RSS of replay and of solve)."""
    from tokforge import Tokenizer
    from tokforge.mixture import replay, solve

    rng = np.random.default_rng(a.seed)
    n = a.categories
    w = simplex(rng, n)
    train_docs = [synthetic(rng, a.train_mb * wi, i) for i, wi in enumerate(w)]
    t0 = time.perf_counter()
    tok = Tokenizer.train(texts=train_docs, vocab_size=256 + a.merges_one, pattern="cl100k")
    t_train = time.perf_counter() - t0
    del train_docs
    samples = {f"s{i}": synthetic(rng, a.sample_mb, i) for i in range(n)}
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    c = replay(tok, samples, num_merges=min(a.merges_one, len(tok.merges)), num_threads=a.threads)
    t_replay = time.perf_counter() - t0
    rss1 = peak_rss_mb()
    if a.solve:
        t0 = time.perf_counter()
        r = solve(c, max_add=a.max_add)
        t_solve = time.perf_counter() - t0
        est = np.array([r[f"s{i}"] for i in range(n)])
        rounds, rows, obj = r.rounds, r.constraints, r.objective
        mse = float(np.log10(np.mean((est - w) ** 2)))
    else:
        t_solve, rounds, rows, obj, mse = float("nan"), 0, 0, float("nan"), float("nan")
    rss2 = peak_rss_mb()
    print(
        json.dumps(
            {
                "part": "timing",
                "merges": c.num_steps,
                "categories": n,
                "sample_mb": a.sample_mb,
                "threads": a.threads,
                "train_s": t_train,
                "replay_s": t_replay,
                "solve_s": t_solve,
                "rounds": rounds,
                "rows": rows,
                "changes": c.num_changes,
                "transcript_mb": c.memory_bytes / 2**20,
                "rss_before_mb": rss0,
                "rss_after_replay_mb": rss1,
                "rss_after_solve_mb": rss2,
                "log10_mse": mse,
                "objective": obj,
            }
        ),
        flush=True,
    )


def cmd_timing(a) -> None:
    rows = []
    for m in [int(x) for x in a.merges.split(",")]:
        cmd = [
            sys.executable, __file__, "timing-child", "--merges-one", str(m),
            "--categories", str(a.categories), "--sample-mb", str(a.sample_mb),
            "--train-mb", str(a.train_mb), "--threads", str(a.threads), "--max-add", str(a.max_add),
        ] + (["--solve"] if m <= a.solve_up_to else [])
        log(" ".join(cmd[1:]))
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
        if out.returncode != 0:
            log(out.stderr[-2000:])
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
        log(json.dumps(row))
    log(
        format_table(
            [
                {
                    "merges": r["merges"],
                    "cats x MB": f"{r['categories']} x {r['sample_mb']}",
                    "replay s": f"{r['replay_s']:.1f}",
                    "solve s": f"{r['solve_s']:.1f}",
                    "train s": f"{r['train_s']:.1f}",
                    "rounds": r["rounds"],
                    "rows": r["rows"],
                    "transcript MB": f"{r['transcript_mb']:.0f}",
                    "peak RSS replay MB": f"{r['rss_after_replay_mb']:.0f}",
                    "peak RSS solve MB": f"{r['rss_after_solve_mb']:.0f}",
                    "log10 MSE": f"{r['log10_mse']:.2f}",
                }
                for r in rows
            ]
        )
    )


# ---- real tokenizers -------------------------------------------------------------------------
def cmd_real(a) -> None:
    from tokforge import Tokenizer, corpus_files
    from tokforge.mixture import infer
    from vocabularies import fetch

    samples = {k: Path(v) for k, v in corpus_files().items()}
    for name in a.tokenizers.split(","):
        tok = Tokenizer.from_file(fetch(name))
        t0 = time.perf_counter()
        r = infer(tok, samples, a.merges, max_add=a.max_add)
        top = sorted(r.items(), key=lambda kv: -kv[1])
        code = sum(v for k, v in r.items() if k.startswith("code-"))
        row = {
            "part": "real",
            "tokenizer": name,
            "merges": r.merges_used,
            "dropped": r.merges_dropped,
            "missing": len(r.missing_merges),
            "objective": r.objective,
            "seconds": time.perf_counter() - t0,
            "code_share": code,
            "en_share": r.get("en", 0.0),
            "shares": dict(top),
        }
        print(json.dumps(row), flush=True)
        log(
            f"{name}: merges {r.merges_used} (split list reduced by {r.merges_dropped}), "
            f"missing {len(r.missing_merges)}, objective {r.objective:.3f}, "
            f"{row['seconds']:.0f}s; code {code:.1%}, en {row['en_share']:.1%}; top: "
            + ", ".join(f"{k} {v:.1%}" for k, v in top[:8])
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="part", required=True)
    c = sub.add_parser("controlled")
    c.add_argument("--kind", choices=["all", "languages", "code"], default="all")
    c.add_argument("--n", default="5,10,all")
    c.add_argument("--trials", type=int, default=20)
    c.add_argument("--merges", type=int, default=300)
    c.add_argument("--total", type=int, default=2_000_000, help="training bytes per tokenizer")
    c.add_argument("--trainers", default="tokforge,hf")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_controlled)
    s = sub.add_parser("size")
    s.add_argument("--kind", choices=["all", "languages", "code"], default="all")
    s.add_argument("--n", type=int, default=5)
    s.add_argument("--fractions", default="0.125,0.25,0.5,1")
    s.add_argument("--trials", type=int, default=10)
    s.add_argument("--merges", type=int, default=300)
    s.add_argument("--total", type=int, default=2_000_000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_size)
    t = sub.add_parser("timing")
    t.add_argument("--merges", default="3000,10000,30000")
    t.add_argument("--categories", type=int, default=100)
    t.add_argument("--sample-mb", type=float, default=1.0)
    t.add_argument("--train-mb", type=float, default=40.0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--max-add", type=int, default=10_000)
    t.add_argument("--timeout", type=float, default=900)
    t.add_argument(
        "--solve-up-to", type=int, default=3000, help="solve the LP only up to this many merges"
    )
    t.set_defaults(func=cmd_timing)
    tc = sub.add_parser("timing-child")
    tc.add_argument("--merges-one", type=int, required=True)
    tc.add_argument("--categories", type=int, required=True)
    tc.add_argument("--sample-mb", type=float, required=True)
    tc.add_argument("--train-mb", type=float, required=True)
    tc.add_argument("--threads", type=int, required=True)
    tc.add_argument("--max-add", type=int, required=True)
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument("--solve", action="store_true")
    tc.set_defaults(func=cmd_timing_child)
    r = sub.add_parser("real")
    r.add_argument("--tokenizers", default="gpt2.tiktoken,cl100k_base.tiktoken,tekken_240911.json")
    r.add_argument("--merges", type=int, default=3000)
    r.add_argument("--max-add", type=int, default=10_000)
    r.set_defaults(func=cmd_real)
    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
