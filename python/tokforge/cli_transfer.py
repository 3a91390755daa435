"""``tokforge transfer fit | apply | eval``: the hypernetwork from the command line, a thin
layer over :mod:`tokforge.transfer` (docs/transfer.md §7)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._cliutil import Formatter, examples
from .errors import InputError


class RateBar:
    """Progress on stderr with rate and ETA: ``train [#####     ] 500/1700 8.1 it/s ETA 2m28s``
    (redrawn on a terminal; on a pipe one line per stage and every 10%)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.stage = ""
        self.t_stage = self.last = time.monotonic()
        self.shown = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage != self.stage:
            if self.tty and self.stage:
                sys.stderr.write("\n")
            self.stage, self.t_stage, self.shown = stage, now, -1
        decile = int(10 * done / total) if total else 0
        if self.tty and now - self.last < 0.1 and done != total:
            return
        if not self.tty and decile == self.shown:
            return
        self.last, self.shown = now, decile
        rate = done / max(now - self.t_stage, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        bar = "#" * int(20 * done / total) if total else ""
        msg = (f"{stage:>9} [{bar:<20}] {done}/{total} {rate:.1f} it/s "
               f"ETA {int(eta) // 60}m{int(eta) % 60:02d}s")
        sys.stderr.write(("\r" + msg) if self.tty else (msg + "\n"))
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self.stage:
            sys.stderr.write("\n")


def _matrix_and_tokenizer(a: argparse.Namespace) -> tuple[np.ndarray, Any]:
    from .tokenizer import Tokenizer
    from .transfer.data import load_embeddings, wordllama_files

    emb, tok = a.embeddings, a.tokenizer
    if emb == "wordllama":
        emb, wl_tok = wordllama_files()
        tok = tok or wl_tok
    if tok is None:
        raise InputError("--tokenizer is required (the tokenizer the embeddings belong to)")
    return load_embeddings(emb, tensor=a.tensor), Tokenizer.coerce(tok)


def cmd_fit(a: argparse.Namespace) -> int:
    from .transfer import HypernetConfig, Hypernetwork

    out = Path(a.out)
    if out.with_suffix(".npz").exists() and not a.force:
        raise FileExistsError(f"{out.with_suffix('.npz')} exists; pass --force to overwrite it")
    E, tok = _matrix_and_tokenizer(a)
    cfg = HypernetConfig(hidden=a.hidden, ffn=2 * a.hidden, n_layers=a.layers, steps=a.steps,
                         identity_steps=a.identity_steps, batch_size=a.batch_size, lr=a.lr,
                         residual_mean=a.residual_mean, max_train=a.max_train,
                         backend=a.backend)
    bar = RateBar(enabled=not a.quiet)
    try:
        hn = Hypernetwork(cfg)
        report = hn.fit(E, tok, held_out=a.held_out, seed=a.seed, progress=bar)
    finally:
        bar.close()
    path = hn.save(out)
    d = report.to_dict()
    d["saved"] = str(path)
    if a.json:
        print(json.dumps(d))
        return 0
    print(f"saved {path} (+ .json): {report.n_params:,} parameters, {report.steps} steps "
          f"+ {report.identity_steps} identity steps in {report.wall_s:.1f}s "
          f"({report.seconds_per_step * 1e3:.0f} ms/step)")
    _print_scores(report.held_out, report.n_held)
    return 0


def _print_scores(scores: dict[str, dict[str, dict[str, float]]], n: int) -> None:
    metrics = ["cosine", "rel_l2", "top1", "top10", "mrr"]
    print(f"held-out tokens: {n}; mean [95% bootstrap interval]")
    print(f"{'method':<16}" + "".join(f"{m:>22}" for m in metrics))
    for name, s in scores.items():
        if "share" in s:
            print(f"{name:<16}{s['share']['mean']:>22.3f}")
            continue
        cells = "".join(f"{s[m]['mean']:>8.3f} [{s[m]['lo']:.3f},{s[m]['hi']:.3f}]"
                        for m in metrics)
        print(f"{name:<16}{cells}")


def cmd_apply(a: argparse.Namespace) -> int:
    from .tokenizer import Tokenizer
    from .transfer import Hypernetwork

    out = Path(a.out)
    if out.exists() and not a.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    hn = Hypernetwork.load(a.hypernet)
    new = Tokenizer.coerce(a.tokenizer)
    t0 = time.perf_counter()
    rows = hn.predict(new, copy_overlap=a.copy_overlap)
    np.save(out, rows)
    d = {"out": str(out), "rows": rows.shape[0], "dim": rows.shape[1],
         "seconds": round(time.perf_counter() - t0, 3), "copy_overlap": a.copy_overlap}
    print(json.dumps(d) if a.json else f"wrote {out}: {rows.shape[0]} x {rows.shape[1]} "
          f"in {d['seconds']}s")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from .corpora import corpus_files
    from .transfer import Hypernetwork

    hn = Hypernetwork.load(a.hypernet)
    seqs = None
    if a.focus:
        if hn.tokenizer is None:
            raise InputError("the FOCUS-style baseline needs the hypernetwork's tokenizer")
        texts = [p.read_text(encoding="utf-8") for p in corpus_files().values()]
        seqs = [hn.tokenizer.encode_ordinary(line) for t in texts for line in t.splitlines()
                if line.strip()]
    scores = hn.held_out_scores(focus_sequences=seqs, resamples=a.resamples, seed=a.seed)
    if a.json:
        print(json.dumps({"n_held": len(hn.split.held_ids), "scores": scores}))
    else:
        _print_scores(scores, len(hn.split.held_ids))
    return 0


def add_parser(sub: Any) -> None:
    """Add ``tokforge transfer`` to the top-level subcommands."""
    tp = sub.add_parser(
        "transfer",
        help="hypernetwork tokenizer transfer: fit, apply, eval",
        description="Predict a model's embeddings for a new tokenizer: fit a ZeTT-style "
        "hypernetwork on an embedding matrix and its tokenizer, apply it to a new vocabulary, "
        "and evaluate it against the FVT / FOCUS-style baselines on held-out tokens.",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge transfer fit --embeddings wordllama --out hn.npz",
            "tokforge transfer apply --hypernet hn.npz -t new_tokenizer.json --out E_new.npy",
            "tokforge transfer eval --hypernet hn.npz --focus --json",
        ),
    )
    ts = tp.add_subparsers(dest="transfer_command", required=True, metavar="STEP",
                           help="fit | apply | eval")  # fmt: skip

    f = ts.add_parser("fit", help="fit a hypernetwork to an embedding matrix + its tokenizer")
    f.add_argument("--embeddings", required=True,
                   help=".npy / .npz / .safetensors matrix, or 'wordllama' (installed package)")
    f.add_argument("--tensor", default=None, help="tensor name inside .npz / .safetensors")
    f.add_argument("-t", "--tokenizer", default=None, help="the matrix's tokenizer file")
    f.add_argument("--out", default="hypernet.npz", help="output (.npz + .json)")
    f.add_argument("--held-out", type=float, default=0.15)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--steps", type=int, default=2000)
    f.add_argument("--identity-steps", type=int, default=200)
    f.add_argument("--batch-size", type=int, default=512)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--hidden", type=int, default=128)
    f.add_argument("--layers", type=int, default=2)
    f.add_argument("--max-train", type=int, default=None, help="subsample training tokens")
    f.add_argument("--residual-mean", action="store_true",
                   help="predict a correction to the mean of the pieces (tokforge's addition)")
    f.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    f.add_argument("--force", action="store_true", help="overwrite the output")
    f.add_argument("--json", action="store_true", help="print the fit report as JSON")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fit)

    ap = ts.add_parser("apply", help="predict embeddings for a new tokenizer's vocabulary")
    ap.add_argument("--hypernet", required=True, help="a saved hypernetwork (.npz)")
    ap.add_argument("-t", "--tokenizer", required=True, help="the new tokenizer")
    ap.add_argument("--out", required=True, help="output .npy (one row per new token id)")
    ap.add_argument("--copy-overlap", action="store_true",
                    help="copy original rows for tokens both vocabularies have")
    ap.add_argument("--force", action="store_true", help="overwrite the output")
    ap.add_argument("--json", action="store_true")
    ap.set_defaults(func=cmd_apply)

    ev = ts.add_parser("eval", help="held-out reconstruction: hypernetwork vs baselines")
    ev.add_argument("--hypernet", required=True, help="a saved hypernetwork (.npz)")
    ev.add_argument("--focus", action="store_true",
                    help="add the FOCUS-style baseline (PPMI + SVD on corpora/)")
    ev.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``tokforge transfer ...`` command."""
    return args.func(args)
