"""The ``tokforge`` command line: a thin layer over the Python API.

Subcommands defined here: ``train``, ``analyze``, ``infer-mixture``, ``fim``, ``corpora`` and
``completion``; others live in their own ``cli_<name>.py`` modules (``add_parser(subparsers)``
and ``run(args) -> int``), listed once in :data:`PLUGINS`.

Exit status: 0 done; 1 the work failed (bad input file, tokenizer error, I/O error); 2 usage
error (unknown option, bad value, bad combination); 130 interrupted (Ctrl-C); 141 the reader
of stdout went away (``tokforge tokenize big.txt | head``), as for tools killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

from . import __version__, cli_dataset
from ._cliutil import RUNS_DIR as RUNS_DIR
from ._cliutil import (
    Formatter,
    Once,
    Progress,
    UsageError,
    add_quiet,
    add_threads,
    examples,
    non_negative_int,
    pattern_arg,
    positive_int,
)
from ._cliutil import load_tokenizer as load_tokenizer
from .corpora import copy_corpora, corpus_dir, corpus_files, manifest
from .errors import TokforgeError
from .inputs import expand_shards
from .lib_model import LibConfig, LibStep
from .lib_model import train as train_lib
from .tokenizer import Tokenizer

#: subcommand modules ``tokforge.cli_<name>``, each with ``add_parser(subparsers)`` and
#: ``run(args) -> int``: one line each
PLUGINS: list[str] = [
    "cli_tokenize",
    "cli_dataset",
    "cli_transfer",
]

#: ``tokforge train`` without ``--vocab-size`` (BPE): the size ``make demo`` trains
DEFAULT_VOCAB = 8000
DEFAULT_OUTPUT = RUNS_DIR / "demo" / "tokenizer.json"

ProgressBar = Progress  # the name other subcommand modules may import


def _inputs(files: list[str]) -> list[Path]:
    return expand_shards(files) if files else list(corpus_files().values())


def _warn(msg: str) -> None:
    print(f"tokforge: warning: {msg}", file=sys.stderr)


def _check_vocab(tok: Tokenizer, requested: Optional[int], min_frequency: int = 0) -> bool:
    """Warn when training stopped short of the requested size; returns whether it was reached."""
    if requested is None or tok.vocab_size >= requested:
        return True
    why = "no pair is left to merge" if min_frequency <= 1 else (
        f"no pair occurs --min-frequency {min_frequency} times any more"
    )
    _warn(
        f"the vocabulary stopped at {tok.vocab_size:,} of the {requested:,} requested: {why} "
        "in this text; give more text or a smaller --vocab-size"
    )
    return False


# ---- train ------------------------------------------------------------------------------------
def cmd_train(a: argparse.Namespace) -> int:
    out = Path(a.output)
    if out.exists() and not a.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    ray_train = cli_dataset.ray_trainer(a)  # --ray: tokforge.distributed.train
    paths = _inputs(a.files)
    if a.algorithm == "lib":
        return _train_lib(a, out, paths)
    vocab = a.vocab_size or DEFAULT_VOCAB
    bar = Progress(enabled=not a.quiet)
    t0 = time.perf_counter()
    try:
        tok = (ray_train or Tokenizer.train)(
            paths,
            vocab_size=vocab,
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
    reached = _check_vocab(tok, vocab, a.min_frequency)
    tok.save(out, overwrite=True)
    info = {
        "output": str(out),
        "vocab_size": tok.vocab_size,
        "requested_vocab_size": vocab,
        "reached": reached,
        "merges": len(tok.merges),
        "files": len(paths),
        "bytes": sum(p.stat().st_size for p in paths),
        "seconds": round(seconds, 3),
    }
    if a.json:
        print(json.dumps(info))
    else:
        print(
            f"trained {info['merges']:,} merges (vocab {info['vocab_size']:,}) on "
            f"{info['files']} files, {info['bytes']:,} bytes, in {seconds:.2f}s -> {out}"
        )
    return 0


def _train_lib(a: argparse.Namespace, out: Path, paths: list[Path]) -> int:
    """``train --algorithm lib``: LiB, with steps on the progress display and the lexicon
    size and tokens/byte in its postfix."""
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
    bar = Progress(enabled=not a.quiet)

    def on_step(st: LibStep) -> None:
        bar("lib", st.step, st.steps)
        if bar.bar is not None:
            bar.bar.set_postfix_str(f"|L|={st.lexicon_size:,} tok/B={st.tokens_per_byte:.3f}")

    t0 = time.perf_counter()
    try:
        model, summary = train_lib(
            paths, vocab_size=a.vocab_size, special_tokens=a.special, config=cfg, on_step=on_step
        )
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    tok = Tokenizer(model)
    _check_vocab(tok, a.vocab_size)
    tok.save(out, overwrite=True)
    info: dict[str, Any] = {
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


def _add_train(sub: Any) -> None:
    t = sub.add_parser(
        "train",
        help="train a byte-level BPE (or LiB) tokenizer",
        description="Train a tokenizer on text files (default: the shipped corpora) and write "
        "it as tokenizer.json (LiB: tokforge's LiB JSON).",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge train                                  # 8,000 tokens on the corpora -> "
            "runs/demo/tokenizer.json",
            "tokforge train --vocab-size 32000 --special '<|endoftext|>' -o tok.json data/",
            "tokforge train --pattern gpt2 --special '<s>' --special '</s>' en.txt de.txt",
            "tokforge train --algorithm lib --lib-steps 2000 -o lib.json en.txt",
        ),
    )
    t.add_argument(
        "files", nargs="*", metavar="FILE", help="text files or directories of *.txt "
        "(default: the shipped corpora, see `tokforge corpora`)"
    )  # fmt: skip
    t.add_argument(
        "--vocab-size",
        type=positive_int,
        default=None,
        help=f"final vocabulary size, bytes and special tokens included (default: "
        f"{DEFAULT_VOCAB} for bpe; lib: the emergent lexicon)",
    )
    t.add_argument(
        "--algorithm",
        choices=["bpe", "lib"],
        default="bpe",
        help="bpe, or lib (Less-is-Better: subwords, words and multiword units in one lexicon)",
    )
    t.add_argument(
        "--pattern",
        type=pattern_arg,
        default="cl100k",
        help="pre-tokenizer: a preset (gpt2, cl100k, o200k) or a regex",
    )
    t.add_argument(
        "--special",
        action="append",
        default=[],
        metavar="TOKEN",
        help="a special token (ids 0, 1, ... in order); repeat for more",
    )
    t.add_argument(
        "--min-frequency",
        type=non_negative_int,
        default=0,
        help="stop when the best pair occurs fewer times",
    )
    t.add_argument(
        "--tie-order",
        choices=["hf", "bytes"],
        default="hf",
        help="tie-break between equally frequent pairs: HF BpeTrainer's or byte order",
    )
    t.add_argument(
        "--errors",
        choices=["strict", "replace", "ignore"],
        default="strict",
        help="invalid UTF-8 in the files: stop with an error, read as U+FFFD, or drop it",
    )
    add_threads(t)
    cli_dataset.add_train_options(t)  # --documents, --column, --ray [ADDRESS]
    t.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), help="the tokenizer file")
    t.add_argument("--force", action="store_true", help="overwrite the output file")
    t.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    add_quiet(t)
    lg = t.add_argument_group("LiB options (--algorithm lib)")
    lg.add_argument("--lib-steps", type=positive_int, default=None, help="articles to read")
    lg.add_argument("--lib-epochs", type=float, default=20.0, help="passes if no --lib-steps")
    lg.add_argument("--lib-article-len", type=positive_int, default=200, help="lines per article")
    lg.add_argument("--lib-in-rate", type=float, default=0.25, help="alpha: memorising chance")
    lg.add_argument("--lib-out-rate", type=float, default=0.0001, help="omega: tail on probation")
    lg.add_argument("--lib-life", type=positive_int, default=10, help="articles a probation lasts")
    lg.add_argument(
        "--lib-max-chunk-len", type=non_negative_int, default=16, help="0 = unbounded"
    )
    lg.add_argument("--lib-seed", type=int, default=0, help="random seed")
    lg.add_argument(
        "--lib-pretokenize",
        type=pattern_arg,
        default=None,
        metavar="PATTERN",
        help="no multiword units: keep units inside these pieces (gpt2 | cl100k | o200k | REGEX)",
    )
    t.set_defaults(func=cmd_train)


# ---- analyze ----------------------------------------------------------------------------------
def cmd_analyze(a: argparse.Namespace) -> int:
    """Compare tokenizers over corpora (``tokforge.metrics.analyze``): a terminal table, and
    CSV / JSON / HTML in ``--out``."""
    from .metrics import CORPUS_METRICS, analyze, tokenizer_names

    if a.corpus and a.files:
        raise UsageError("give FILES or --corpus DIR, not both")
    specs = a.tokenizer or ["demo"]
    toks = {n: load_tokenizer(s) for n, s in zip(tokenizer_names(specs), specs)}
    corpora = a.corpus or (a.files or None)
    metrics = list(CORPUS_METRICS) + ["qtok"] * a.qtok + ["purity"] * bool(a.tr_lang)
    bar = Progress(enabled=not a.quiet)
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


def _add_analyze(sub: Any) -> None:
    an = sub.add_parser(
        "analyze",
        help="compare tokenizers over corpora: fertility, parity, Rényi, Qtok, %%TR",
        description="Measure one or more tokenizers on text files (default: the shipped "
        "corpora, one per language) and print a table; --out also writes CSV, JSON and an "
        "HTML report with plots.",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge analyze                                  # runs/demo on the corpora",
            "tokforge analyze -t gpt2.tiktoken -t cl100k_base.tiktoken --qtok --out report/",
            "tokforge analyze -t tok.json --tr-lang tr --langs en,tr",
        ),
    )
    an.add_argument(
        "files", nargs="*", metavar="FILE", help="text files named <lang>.txt (default: corpora)"
    )
    an.add_argument(
        "-t",
        "--tokenizer",
        action="append",
        default=None,
        help="tokenizer file or run name; repeat -t to compare several (default: demo)",
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
    an.add_argument("--reference-language", default="en", help="the premium's reference")
    an.add_argument("--alpha", type=float, default=2.5, help="Rényi entropy order")
    add_threads(an)
    an.add_argument("--out", default=None, metavar="DIR", help="write CSV, JSON and HTML here")
    an.add_argument("--json", action="store_true", help="print the report as JSON")
    add_quiet(an)
    an.set_defaults(func=cmd_analyze)


# ---- fim --------------------------------------------------------------------------------------
def cmd_fim(a: argparse.Namespace) -> int:
    """Complete a prefix that may stop inside a token: naive token-level greedy, token healing
    and byte-level greedy (``tokforge.byte_probs``), with n-gram LMs trained on the fly; with
    two tokenizers (``-t A -t B`` or ``--vocab-size-b``) also their byte-level ensemble."""
    from .byte_probs import (
        ByteEnsemble,
        ByteLM,
        NGramLM,
        complete_bytes,
        complete_naive,
        complete_token_healing,
    )

    specs = a.tokenizer or []
    if len(specs) > 2:
        raise UsageError("fim takes at most two tokenizers (-t A -t B)")
    files = [Path(f) for f in a.train] if a.train else list(corpus_files("code").values())
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    prefix = Path(a.prefix_file).read_bytes() if a.prefix_file else a.prefix.encode("utf-8")
    bar = Progress(enabled=not a.quiet)

    def model(spec: Optional[str], vocab: int) -> tuple[str, ByteLM]:
        if spec:
            tok = load_tokenizer(spec)
        else:
            bar.note(f"training a {vocab:,}-token tokenizer on {len(files)} files")
            tok = Tokenizer.train(texts=texts, vocab_size=vocab, pattern=a.pattern, progress=bar)
        bar.note(f"fitting the {a.order}-gram LM ({tok.vocab_size:,} ids)")
        lm = NGramLM.from_texts(tok, texts, order=a.order)
        return f"{spec or 'trained'} ({tok.vocab_size} ids)", ByteLM(lm, tok, mode=a.mode)

    try:
        models = [model(specs[0] if specs else None, a.vocab_size)]
        if len(specs) == 2 or a.vocab_size_b:
            models.append(model(specs[1] if len(specs) == 2 else None, a.vocab_size_b or 0))
        rows = []
        for i, (name, blm) in enumerate(models):
            bar("complete", i, len(models))
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
            bar.note("completing with the ensemble")
            ens = ByteEnsemble([m for _, m in models])
            out = complete_bytes(ens, prefix, a.max_bytes)
            rows.append({"model": "ensemble (byte level)", "byte_level": out})
    finally:
        bar.close()
    for r in rows:
        r = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in r.items()}
        if a.json:
            print(json.dumps(r, ensure_ascii=False))
            continue
        print(f"{r.pop('model')}:")
        for k, v in r.items():
            print(f"  {k:18} {v!r}")
    return 0


def _add_fim(sub: Any) -> None:
    fm = sub.add_parser(
        "fim",
        help="complete a prefix that stops mid-token: naive vs token healing vs byte-level",
        description="Fill-in-the-middle demo: complete a prefix that ends inside a token three "
        "ways, with n-gram LMs trained on the fly (default: on the shipped code corpora).",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge fim --prefix 'def parse_he'",
            "tokforge fim --prefix 'import num' --vocab-size 1024 --vocab-size-b 4096",
            "tokforge fim -t a.json -t b.json --prefix-file prompt.txt --train src/*.py",
        ),
    )
    src = fm.add_mutually_exclusive_group(required=True)
    src.add_argument("--prefix", help="the text before the hole (the LM sees only this)")
    src.add_argument("--prefix-file", help="read the prefix from a file (bytes as they are)")
    fm.add_argument(
        "-t",
        "--tokenizer",
        action="append",
        default=None,
        help="tokenizer file or run; a second -t adds the byte-level ensemble of both "
        "(default: train one on --train)",
    )
    fm.add_argument("--vocab-size", type=positive_int, default=2048, help="when training")
    fm.add_argument(
        "--vocab-size-b",
        type=positive_int,
        default=None,
        help="train a second tokenizer of this size for the ensemble",
    )
    fm.add_argument("--pattern", type=pattern_arg, default="cl100k", help="when training")
    fm.add_argument(
        "--train",
        nargs="+",
        default=None,
        metavar="FILE",
        help="text for the tokenizers and n-gram LMs (default: the code corpora)",
    )
    fm.add_argument("--order", type=positive_int, default=3, help="n-gram order")
    fm.add_argument(
        "--mode",
        choices=["exact", "mask", "fast"],
        default="exact",
        help="byte-level marginalisation (docs/byte_probs.md)",
    )
    fm.add_argument("--max-bytes", type=positive_int, default=24, help="bytes to complete")
    fm.add_argument("--json", action="store_true", help="one JSON line per model")
    add_quiet(fm)
    fm.set_defaults(func=cmd_fim)


# ---- infer-mixture ----------------------------------------------------------------------------
def cmd_infer_mixture(a: argparse.Namespace) -> int:
    """Infer the training mixture of a BPE tokenizer from category samples (tokforge.mixture)."""
    from .mixture import infer, load_samples

    tok = load_tokenizer(a.tokenizer, a.pattern)
    samples = load_samples(a.category) if a.category else dict(corpus_files())
    bar = Progress(enabled=not a.quiet and not a.json)
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


def _add_infer_mixture(sub: Any) -> None:
    im = sub.add_parser(
        "infer-mixture",
        help="estimate the mix of categories a BPE tokenizer was trained on (Hayase et al.)",
        description="Estimate the share of each category (language, code...) in the training "
        "data of a BPE tokenizer from its merge list and a text sample per category.",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge infer-mixture -t tok.json                # categories: the corpora",
            "tokforge infer-mixture -t tok.json --category en=en.txt --category code=src/",
        ),
    )
    im.add_argument(
        "-t", "--tokenizer", action=Once, required=True, help="tokenizer.json, .tiktoken, tekken"
    )
    im.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a category's sample: a text file or a directory of *.txt (repeatable; "
        "default: each shipped corpus is a category)",
    )
    im.add_argument(
        "--merges", type=positive_int, default=None, help="merges to use (default: 30000)"
    )
    im.add_argument(
        "--pattern", type=pattern_arg, default=None, help="pre-tokenizer of a .tiktoken file"
    )
    im.add_argument("--solver", choices=["highs", "cbc"], default="highs", help="LP solver")
    im.add_argument("--max-add", type=positive_int, default=10_000, help="rows added per LP round")
    im.add_argument(
        "--min-sample-bytes", type=non_negative_int, default=1000, help="smaller samples refused"
    )
    im.add_argument(
        "--errors",
        choices=["strict", "replace", "ignore"],
        default="strict",
        help="invalid UTF-8 in the samples",
    )
    add_threads(im)
    im.add_argument("--json", action="store_true", help="one JSON object with shares")
    add_quiet(im)
    im.set_defaults(func=cmd_infer_mixture)


# ---- corpora ----------------------------------------------------------------------------------
def cmd_corpora(a: argparse.Namespace) -> int:
    if a.copy:
        written = copy_corpora(a.copy, overwrite=a.force)
        print(f"wrote {len(written)} corpus files, MANIFEST.json and LICENSES/ to {a.copy}")
        return 0
    files = manifest()["files"]
    rows = [
        {"name": p.stem, "path": str(p), **{k: files.get(p.name, {}).get(k) for k in
                                           ("kind", "language", "licence", "bytes")}}
        for p in corpus_files(a.kind).values()
    ]  # fmt: skip
    if a.json:
        print(json.dumps({"dir": str(corpus_dir()), "files": rows}))
        return 0
    print(f"{corpus_dir()}  ({len(rows)} files, {sum(r['bytes'] or 0 for r in rows):,} bytes)")
    for r in rows:
        print(f"  {r['name']:<18}{r['bytes'] or 0:>9,}  {r['licence']}")
    return 0


def _add_corpora(sub: Any) -> None:
    c = sub.add_parser(
        "corpora",
        help="list the shipped corpora (the default input), or copy them out",
        description="The shipped corpora (UDHR in 30 languages, source code in 9 languages) "
        "are installed with tokforge and are every command's default input. This lists them, "
        "or copies them (with MANIFEST.json and licences) into a folder.",
        formatter_class=Formatter,
        epilog=examples("tokforge corpora", "tokforge corpora --copy corpora/"),
    )
    c.add_argument(
        "--kind", choices=["all", "natural", "code"], default="all", help="which files to list"
    )
    c.add_argument("--copy", default=None, metavar="DIR", help="copy them into DIR")
    c.add_argument("--force", action="store_true", help="with --copy: overwrite files in DIR")
    c.add_argument("--json", action="store_true", help="print the list as JSON")
    c.set_defaults(func=cmd_corpora)


# ---- completion -------------------------------------------------------------------------------
def cmd_completion(a: argparse.Namespace) -> int:
    import shtab

    sys.stdout.write(shtab.complete(build_parser(), shell=a.shell))
    return 0


def _add_completion(sub: Any) -> None:
    c = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for the shell (generated by shtab).",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge completion bash > ~/.local/share/bash-completion/completions/tokforge",
            "tokforge completion zsh > ~/.zfunc/_tokforge   # with fpath+=~/.zfunc",
        ),
    )
    c.add_argument("shell", choices=["bash", "zsh", "tcsh"], help="the shell")
    c.set_defaults(func=cmd_completion)


# ---- the parser and main ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tokforge",
        description="tokforge: train, load, run and compare tokenizers (byte-level BPE "
        "compatible with HF tokenizers and tiktoken, and LiB). Every command works out of the "
        "box on the shipped corpora; `tokforge COMMAND -h` has the details and examples.",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge train                     # runs/demo/tokenizer.json, 8,000 tokens",
            "tokforge tokenize notes.txt        # ids, one line per input line",
            "tokforge tokenize notes.txt | tokforge decode",
            "tokforge analyze -t demo -t cl100k_base.tiktoken",
        ),
    )
    p.add_argument("--version", action="version", version=f"tokforge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    for name in PLUGINS:
        mod = importlib.import_module(f".{name}", __package__)
        before = set(sub.choices)
        mod.add_parser(sub)
        for cmd in set(sub.choices) - before:
            if sub.choices[cmd].get_default("func") is None:
                sub.choices[cmd].set_defaults(func=mod.run)
    _add_analyze(sub)
    _add_infer_mixture(sub)
    _add_fim(sub)
    _add_corpora(sub)
    _add_completion(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)  # usage errors exit here with status 2
        try:
            status: int = args.func(args)
            sys.stdout.flush()
            return status
        except UsageError as e:
            print(f"tokforge {args.command}: error: {e}", file=sys.stderr)
            return 2
    except BrokenPipeError:
        # the reader went away (`tokforge tokenize big.txt | head`): stop quietly, as Unix
        # tools do, and keep Python from complaining when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        # the work stopped where it was; outputs are written atomically, so none is partial
        print("tokforge: interrupted", file=sys.stderr)
        return 130
    except (TokforgeError, OSError, UnicodeDecodeError, ImportError) as e:
        print(f"tokforge: error: {e}", file=sys.stderr)
        return 1
