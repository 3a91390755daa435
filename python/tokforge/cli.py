"""The ``tokforge`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import __version__, cli_dataset, cli_transfer
from .corpora import corpus_files
from .errors import TokforgeError
from .inputs import expand_shards
from .lib_model import LibConfig, LibStep
from .lib_model import train as train_lib
from .tokenizer import Tokenizer


class ProgressBar:
    """A one-line progress bar on stderr (redrawn on a terminal, one line per stage otherwise)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.stage = ""
        self.last = 0.0
        self.start = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        new_stage = stage != self.stage
        if new_stage and self.stage and self.tty:
            sys.stderr.write("\n")
        if not new_stage and now - self.last < 0.1 and done != total:
            return
        self.stage, self.last = stage, now
        unit = "MB" if stage == "count" else ""
        scale = 1e6 if stage == "count" else 1
        if total:
            frac = min(done / total, 1.0)
            bar = "#" * int(frac * 30)
            msg = f"{stage:>6} [{bar:<30}] {done / scale:,.1f}/{total / scale:,.1f}{unit}"
        else:
            msg = f"{stage:>6} {done / scale:,.1f}{unit}"
        msg += f"  {now - self.start:.1f}s"
        if self.tty:
            sys.stderr.write("\r" + msg)
            sys.stderr.flush()
        elif new_stage:
            sys.stderr.write(msg + "\n")

    def close(self) -> None:
        if self.enabled and self.tty and self.stage:
            sys.stderr.write("\n")


def _inputs(files: list[str]) -> list[Path]:
    return expand_shards(files) if files else list(corpus_files().values())


def cmd_train(a: argparse.Namespace) -> int:
    out = Path(a.output)
    if out.exists() and not a.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    ray_train = cli_dataset.ray_trainer(a)  # --ray: tokforge.distributed.train
    paths = _inputs(a.files)
    if a.algorithm == "lib":
        return _train_lib(a, out, paths)
    if a.vocab_size is None:
        raise TokforgeError("--vocab-size is required for --algorithm bpe")
    bar = ProgressBar(enabled=not a.quiet)
    t0 = time.perf_counter()
    try:
        tok = (ray_train or Tokenizer.train)(
            paths,
            vocab_size=a.vocab_size,
            pattern=a.pattern,
            documents=a.documents,
            column=a.column,
            special_tokens=a.special,
            min_frequency=a.min_frequency,
            tie_order=a.tie_order,
            errors=a.errors,
            progress=bar,
            num_threads=a.threads,
        )
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    tok.save(out, overwrite=True)
    info = {
        "output": str(out),
        "vocab_size": tok.vocab_size,
        "merges": len(tok.merges),
        "files": len(paths),
        "bytes": sum(p.stat().st_size for p in paths),
        "seconds": round(seconds, 3),
    }
    if a.json:
        print(json.dumps(info))
    else:
        print(
            f"trained {info['merges']} merges (vocab {info['vocab_size']}) on {info['files']} "
            f"files, {info['bytes']:,} bytes, in {seconds:.2f}s -> {out}"
        )
    return 0


def _train_lib(a: argparse.Namespace, out: Path, paths: list[Path]) -> int:
    """``train --algorithm lib``: LiB with a bar showing steps, lexicon size and tokens/byte."""
    cfg = LibConfig(
        steps=a.lib_steps,
        epochs=a.lib_epochs,
        in_rate=a.lib_in_rate,
        out_rate=a.lib_out_rate,
        life=a.lib_life,
        article_len=a.lib_article_len,
        max_chunk_len=a.lib_max_chunk_len or None,
        seed=a.lib_seed,
        pretokenize=a.lib_pretokenize,
    )
    start = time.monotonic()
    tty = sys.stderr.isatty()

    def on_step(st: LibStep) -> None:
        if a.quiet:
            return
        frac = st.step / st.steps if st.steps else 1.0
        msg = (
            f"   lib [{'#' * int(frac * 30):<30}] step {st.step}/{st.steps}  |L|={st.lexicon_size:,}"
            f"  tok/B={st.tokens_per_byte:.3f}  {time.monotonic() - start:.1f}s"
        )
        if tty:
            sys.stderr.write("\r" + msg)
            sys.stderr.flush()
        elif st.step == st.steps:
            sys.stderr.write(msg + "\n")

    t0 = time.perf_counter()
    try:
        model, summary = train_lib(
            paths, vocab_size=a.vocab_size, special_tokens=a.special, config=cfg, on_step=on_step
        )
    finally:
        if tty and not a.quiet:
            sys.stderr.write("\n")
    seconds = time.perf_counter() - t0
    tok = Tokenizer(model)
    tok.save(out, overwrite=True)
    info = {
        k: getattr(summary, k)
        for k in ("steps", "sentences", "lexicon_size", "probation_size", "clean_size", "units",
                  "unused_on_train", "multiword_share")
    }  # fmt: skip
    info.update(
        output=str(out),
        algorithm="lib",
        vocab_size=tok.vocab_size,
        files=len(paths),
        bytes=sum(p.stat().st_size for p in paths),
        seconds=round(seconds, 3),
    )
    if a.json:
        print(json.dumps(info))
    else:
        print(
            f"trained LiB: {info['units']} units (vocab {tok.vocab_size}; {info['clean_size']} "
            f"survived, {100 * info['multiword_share']:.1f}% multiword) on {info['files']} files, "
            f"{info['bytes']:,} bytes, in {seconds:.2f}s -> {out}"
        )
    return 0


def cmd_analyze(a: argparse.Namespace) -> int:
    """Compare tokenizers over corpora (``tokforge.metrics.analyze``): a terminal table, and
    CSV / JSON / HTML in ``--out``."""
    from .metrics import CORPUS_METRICS, analyze, tokenizer_names

    toks = {n: load_tokenizer(s) for n, s in zip(tokenizer_names(a.tokenizer), a.tokenizer)}
    if a.corpus and a.files:
        raise TokforgeError("give FILES or --corpus DIR, not both")
    corpora = a.corpus or (a.files or None)
    metrics = list(CORPUS_METRICS) + ["qtok"] * a.qtok + ["purity"] * bool(a.tr_lang)
    bar = ProgressBar(enabled=not a.quiet)
    try:
        rep = analyze(
            toks,
            corpora,
            metrics=metrics,
            langs=a.langs.split(",") if a.langs else None,
            reference_language=a.reference_language,
            alpha=a.alpha,
            purity_langs=a.tr_lang or (),
            num_threads=a.threads,
            progress=bar,
        )
    finally:
        bar.close()
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.csv").write_text(rep.to_csv(), encoding="utf-8")
        (out / "report.json").write_text(rep.to_json(), encoding="utf-8")
        rep.html(out / "report.html")
    if a.json:
        print(rep.to_json())
        return 0
    print(rep.table())
    if any(r.metric.startswith("qtok.") for r in rep.rows):
        cats = ["control_tokens", "pure_unicode", "char_alpha", "spaced_alpha", "inner_alpha"]
        cats += ["spaced_other", "inner_other", "unicode_flanks"]
        short = ["ctrl", "pure", "char_α", "spaced_α", "inner_α", "spaced_o", "inner_o", "flanks"]
        print(f"\nQtok, % of vocabulary\n{'':<16}" + "".join(f"{c:>9}" for c in short))
        for name in toks:
            vals = [rep.value(name, "*", f"qtok.{c}") or 0.0 for c in cats]
            print(f"{name:<16}" + "".join(f"{v:>9.2f}" for v in vals))
    purity_rows = [r for r in rep.rows if r.metric == "tr_pct"]
    if purity_rows:
        print(f"\n%TR / %Pure (type-weighted)\n{'':<16}{'lang':>6}{'%TR':>9}{'%Pure':>9}")
        for r in purity_rows:
            pure = rep.value(r.tokenizer, r.language, "pure_pct")
            cells = ["-" if v is None else f"{v:.2f}" for v in (r.value, pure)]
            print(f"{r.tokenizer:<16}{r.language:>6}{cells[0]:>9}{cells[1]:>9}")
    if a.out:
        print(f"\nwrote {a.out}/report.csv, report.json, report.html")
    return 0


DEMO_DIR = Path("runs")


def load_tokenizer(spec: str, pattern: str | None = None) -> Tokenizer:
    """``-t``: a tokenizer.json, a .tiktoken file, or the name of a trained run (``demo`` ->
    ``runs/demo/tokenizer.json``)."""
    p = Path(spec)
    if not p.exists() and (DEMO_DIR / spec / "tokenizer.json").is_file():
        p = DEMO_DIR / spec / "tokenizer.json"
    if not p.exists():
        raise FileNotFoundError(
            f"{spec}: no such tokenizer file or run (runs are looked up as {DEMO_DIR}/NAME/)"
        )
    return Tokenizer.from_file(p, pattern=pattern) if pattern else Tokenizer.from_file(p)


def _read_chunks(fh, size: int = 1 << 16):
    while True:
        block = fh.read(size)
        if not block:
            return
        yield block


def cmd_tokenize(a: argparse.Namespace) -> int:
    tok = load_tokenizer(a.tokenizer, a.pattern)
    allowed = "all" if a.allow_special else frozenset()
    out = sys.stdout
    for name in a.files or ["-"]:
        if name == "-":
            fh = sys.stdin
        else:
            fh = open(name, encoding="utf-8", errors=a.errors)
        try:
            first = True
            for ids in tok.encode_stream(_read_chunks(fh), allowed_special=allowed):
                if a.json:
                    rec = {"file": name, "ids": ids}
                    if a.pieces:
                        rec["pieces"] = [tok.decode([i]) for i in ids]
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    continue
                items = [repr(tok.decode([i]))[1:-1] for i in ids] if a.pieces else map(str, ids)
                sep = " | " if a.pieces else " "
                if ids:
                    out.write(("" if first else sep) + sep.join(items))
                    first = False
            if not a.json:
                out.write("\n")
        finally:
            if fh is not sys.stdin:
                fh.close()
    return 0


def cmd_fim(a: argparse.Namespace) -> int:
    """Complete a prefix that may stop inside a token: naive token-level greedy, token healing
    and byte-level greedy (``tokforge.byte_probs``), with n-gram LMs trained on the fly; with
    ``--vocab-size-b`` (or ``-t2``) also the byte-level ensemble of two vocabularies."""
    from .byte_probs import (
        ByteEnsemble,
        ByteLM,
        NGramLM,
        complete_bytes,
        complete_naive,
        complete_token_healing,
    )

    files = [Path(f) for f in a.train] if a.train else list(corpus_files("code").values())
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    prefix = Path(a.prefix_file).read_bytes() if a.prefix_file else a.prefix.encode("utf-8")

    def model(spec: str | None, vocab: int) -> tuple[str, ByteLM]:
        tok = (
            load_tokenizer(spec)
            if spec
            else Tokenizer.train(texts=texts, vocab_size=vocab, pattern=a.pattern)
        )
        lm = NGramLM.from_texts(tok, texts, order=a.order)
        return f"{spec or 'trained'} ({tok.vocab_size} ids)", ByteLM(lm, tok, mode=a.mode)

    models = [model(a.tokenizer, a.vocab_size)]
    if a.tokenizer_b or a.vocab_size_b:
        models.append(model(a.tokenizer_b, a.vocab_size_b or a.vocab_size))
    rows = []
    for name, blm in models:
        ids = blm.index.encode(prefix)
        last = blm.tokenizer.id_to_token(ids[-1]) if ids else b""
        rows.append(
            {
                "model": name,
                "last_prompt_token": last.decode("utf-8", "replace"),
                "naive": complete_naive(blm, prefix, a.max_bytes),
                "token_healing": complete_token_healing(blm, prefix, a.max_bytes),
                "byte_level": complete_bytes(blm, prefix, a.max_bytes),
            }
        )
    if len(models) == 2:
        ens = ByteEnsemble([m for _, m in models])
        out = complete_bytes(ens, prefix, a.max_bytes)
        rows.append({"model": "ensemble (byte level)", "byte_level": out})
    for r in rows:
        r = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in r.items()}
        if a.json:
            print(json.dumps(r, ensure_ascii=False))
            continue
        print(f"{r.pop('model')}:")
        for k, v in r.items():
            print(f"  {k:18} {v!r}")
    return 0


# ---- infer-mixture ---------------------------------------------------------------------------
def cmd_infer_mixture(a: argparse.Namespace) -> int:
    """Infer the training mixture of a BPE tokenizer from category samples (tokforge.mixture)."""
    from .mixture import infer, load_samples

    tok = load_tokenizer(a.tokenizer, a.pattern)
    samples = load_samples(a.category) if a.category else dict(corpus_files())
    bar = ProgressBar(enabled=not a.quiet and not a.json)
    try:
        r = infer(
            tok,
            samples,
            a.merges,
            solver=a.solver,
            max_add=a.max_add,
            min_sample_bytes=a.min_sample_bytes,
            errors=a.errors,
            progress=bar,
            num_threads=a.threads,
        )
    finally:
        bar.close()
    if a.json:
        print(json.dumps(r.to_dict(), ensure_ascii=False))
        return 0
    width = max(len(k) for k in r)
    for name, share in sorted(r.items(), key=lambda kv: -kv[1]):
        print(f"{name:<{width}}  {share:7.2%}  {'#' * round(share * 40)}")
    d = r.to_dict()
    t = d["timing"]
    print(
        f"merges {d['merges_used']} (dropped {d['merges_dropped']}, missing {d['missing_merges']})"
        f"  objective {d['objective']:.4g}  rounds {d['rounds']}  rows {d['constraints']}"
        f"  replay {t['replay']:.1f}s  solve {t['solve'] + t['separate']:.1f}s"
    )
    return 0


def _add_infer_mixture(sub) -> None:
    im = sub.add_parser(
        "infer-mixture",
        help="estimate the mix of categories a BPE tokenizer was trained on (Hayase et al.)",
    )
    im.add_argument("-t", "--tokenizer", required=True, help="tokenizer.json, .tiktoken, tekken")
    im.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a category's sample: a text file or a directory of *.txt (default: corpora/)",
    )
    im.add_argument("--merges", type=int, default=None, help="merges to use (default 30000)")
    im.add_argument("--pattern", default=None, help="pattern for a .tiktoken file")
    im.add_argument("--solver", choices=["highs", "cbc"], default="highs")
    im.add_argument("--max-add", type=int, default=10_000, help="rows added per LP round")
    im.add_argument("--min-sample-bytes", type=int, default=1000)
    im.add_argument("--errors", choices=["strict", "replace", "ignore"], default="strict")
    im.add_argument("--threads", type=int, default=None)
    im.add_argument("--json", action="store_true", help="one JSON object with shares")
    im.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    im.set_defaults(func=cmd_infer_mixture)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tokforge", description=__doc__)
    p.add_argument("--version", action="version", version=f"tokforge {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a byte-level BPE tokenizer (default input: corpora/)")
    t.add_argument("files", nargs="*", help="text files or directories (default: corpora/)")
    t.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        help="final vocabulary size (required for bpe; lib: omit to keep the emergent lexicon)",
    )
    t.add_argument(
        "--algorithm",
        choices=["bpe", "lib"],
        default="bpe",
        help="bpe, or lib (Less-is-Better: subwords, words and multiword units in one lexicon)",
    )
    lg = t.add_argument_group("LiB options (--algorithm lib)")
    lg.add_argument("--lib-steps", type=int, default=None, help="articles to read")
    lg.add_argument("--lib-epochs", type=float, default=20.0, help="passes if no --lib-steps")
    lg.add_argument("--lib-article-len", type=int, default=200, help="lines per article")
    lg.add_argument("--lib-in-rate", type=float, default=0.25, help="alpha: memorising chance")
    lg.add_argument("--lib-out-rate", type=float, default=0.0001, help="omega: tail on probation")
    lg.add_argument("--lib-life", type=int, default=10, help="articles a probation lasts")
    lg.add_argument("--lib-max-chunk-len", type=int, default=16, help="0 = unbounded")
    lg.add_argument("--lib-seed", type=int, default=0)
    lg.add_argument(
        "--lib-pretokenize",
        default=None,
        metavar="PATTERN",
        help="no multiword units: keep units inside these pieces (gpt2 | cl100k | o200k | REGEX)",
    )
    t.add_argument("--pattern", default="cl100k", help="gpt2 | cl100k | o200k | REGEX")
    t.add_argument("--special", nargs="*", default=[], metavar="TOKEN", help="special tokens")
    t.add_argument("--min-frequency", type=int, default=0)
    t.add_argument("--tie-order", choices=["hf", "bytes"], default="hf")
    t.add_argument("--errors", choices=["strict", "replace", "ignore"], default="strict")
    t.add_argument("--threads", type=int, default=None)
    cli_dataset.add_train_options(t)  # --documents, --column, --ray [ADDRESS]
    t.add_argument("-o", "--output", default="tokenizer.json")
    t.add_argument("--force", action="store_true", help="overwrite the output file")
    t.add_argument("--json", action="store_true", help="print a JSON summary")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    an = sub.add_parser(
        "analyze", help="compare tokenizers over corpora: fertility, parity, Rényi, Qtok, %%TR"
    )
    an.add_argument("files", nargs="*", help="text files, <lang>.txt (default: corpora/)")
    an.add_argument(
        "-t",
        "--tokenizer",
        action="append",
        required=True,
        help="tokenizer file (tokenizer.json, .tiktoken, tekken, LiB) or run name; repeat -t",
    )
    an.add_argument("--corpus", default=None, metavar="DIR", help="a folder of <lang>.txt files")
    an.add_argument("--langs", default=None, help="comma-separated corpus names to keep")
    an.add_argument("--qtok", action="store_true", help="also classify the vocabularies (Qtok)")
    an.add_argument(
        "--tr-lang",
        action="append",
        default=None,
        metavar="LANG",
        help="also compute %%TR / %%Pure for this language (repeatable; e.g. tr)",
    )
    an.add_argument("--reference-language", default="en", help="premium reference (default en)")
    an.add_argument("--alpha", type=float, default=2.5, help="Rényi alpha (default 2.5)")
    an.add_argument("--threads", type=int, default=None)
    an.add_argument("--out", default=None, metavar="DIR", help="write CSV, JSON and HTML here")
    an.add_argument("--json", action="store_true", help="print the report as JSON")
    an.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    an.set_defaults(func=cmd_analyze)
    tk = sub.add_parser("tokenize", help="print token ids (or pieces) of files or stdin")
    tk.add_argument("files", nargs="*", help="text files; - or nothing for stdin")
    tk.add_argument(
        "-t",
        "--tokenizer",
        default="demo",
        help="tokenizer.json, .tiktoken file, or a run name (default: demo)",
    )
    tk.add_argument("--pattern", default=None, help="pattern for a .tiktoken file")
    tk.add_argument("--pieces", action="store_true", help="print token strings, not ids")
    tk.add_argument("--json", action="store_true", help="JSON lines: {file, ids[, pieces]}")
    tk.add_argument(
        "--allow-special",
        action="store_true",
        help="encode special-token text as special tokens (default: plain text)",
    )
    tk.add_argument("--errors", choices=["strict", "replace", "ignore"], default="strict")
    tk.set_defaults(func=cmd_tokenize)
    _add_infer_mixture(sub)
    cli_dataset.add_parser(sub)

    fm = sub.add_parser(
        "fim",
        help="complete a prefix that stops mid-token: naive vs token healing vs byte-level",
    )
    src = fm.add_mutually_exclusive_group(required=True)
    src.add_argument("--prefix", help="the text before the hole (the LM sees only this)")
    src.add_argument("--prefix-file", help="read the prefix from a file (bytes as they are)")
    fm.add_argument(
        "-t",
        "--tokenizer",
        default=None,
        help="tokenizer file or run (default: train one on --train)",
    )
    fm.add_argument(
        "-t2",
        "--tokenizer-b",
        default=None,
        help="second tokenizer: also show the byte-level ensemble",
    )
    fm.add_argument("--vocab-size", type=int, default=2048, help="when training (default 2048)")
    fm.add_argument(
        "--vocab-size-b",
        type=int,
        default=None,
        help="train a second tokenizer of this size for the ensemble",
    )
    fm.add_argument("--pattern", default="cl100k", help="pre-tokenizer when training")
    fm.add_argument(
        "--train",
        nargs="*",
        default=None,
        help="text files for the tokenizers and n-gram LMs (default: corpora code)",
    )
    fm.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    fm.add_argument("--mode", choices=["exact", "mask", "fast"], default="exact")
    fm.add_argument("--max-bytes", type=int, default=24)
    fm.add_argument("--json", action="store_true", help="one JSON line per model")
    fm.set_defaults(func=cmd_fim)
    cli_transfer.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (`tokforge tokenize big.txt | head`): stop quietly, as Unix
        # tools do, and keep Python from complaining when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (TokforgeError, OSError, UnicodeDecodeError) as e:
        print(f"tokforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # the work stopped where it was; outputs are written atomically, so none is partial
        print("tokforge: interrupted", file=sys.stderr)
        return 130
