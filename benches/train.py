"""BPE-training benchmark: tokforge against HF ``tokenizers``, ``rustbpe`` and ``gigabpe``.

Builds (or reuses) the Debian corpus of benches/corpus.py, then trains a byte-level BPE
vocabulary of 32768 tokens with every trainer in the same run, each in its own child process
(so each peak RSS is that trainer's alone), and prints one table: wall seconds, peak RSS, the
ratio of tokforge's time to each peer's, and whether the merge lists are identical.

Two workloads, each fed to all its trainers as the same documents:

* ``cl100k``: the GPT-4 pre-tokenizer regex; documents are the corpus's paragraphs (split after
  a blank line that is followed by a non-space character: a point where the regex always ends a
  piece, so tokforge reading the whole file as one document sees exactly the same pieces).
  Trainers: tokforge (files, and texts= iterator), HF tokenizers, rustbpe; tokforge again with
  ``tie_order="bytes"``, whose merges must equal rustbpe's.
* ``gpt2``: HF's ``ByteLevel`` pre-tokenizer (GPT-2 regex), documents are lines: what gigabpe
  does (it reads files line by line as HF ``Tokenizer.train(files)`` does, and has no other
  regex). Trainers: gigabpe, tokforge (``pattern="gpt2"`` over the lines), HF.

    .venv/bin/python benches/train.py                 # 60 MiB corpus, vocab 32768, 2 threads
    .venv/bin/python benches/train.py --threads 1,2 --json > results.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    StageTimer,
    ensure_packages,
    format_table,
    installed_version,
    json_line,
    machine_info,
    peak_rss_mb,
    run_child,
    thread_env,
    wait_idle,
)

# Peers, pinned: installed into this interpreter at the start when missing.
PEER_PINS = {"rustbpe": "0.1.0", "gigabpe": "0.1.0", "tokenizers": "0.23.3"}

# name: (workload, input mode, description)
TRAINERS: dict[str, tuple[str, str, str]] = {
    "tokforge": ("cl100k", "files", "Tokenizer.train([path]), tie_order='hf'"),
    "tokforge-iter": ("cl100k", "iter", "Tokenizer.train(texts=paragraphs)"),
    "tokforge-bytes": ("cl100k", "files", "Tokenizer.train([path], tie_order='bytes')"),
    "rustbpe": ("cl100k", "iter", "rustbpe.Tokenizer().train_from_iterator(paragraphs)"),
    "hf": ("cl100k", "iter", "tokenizers BpeTrainer, train_from_iterator(paragraphs)"),
    "tokforge-gpt2": ("gpt2", "iter", "Tokenizer.train(texts=lines, pattern='gpt2')"),
    "tokforge-gpt2-files": ("gpt2", "files", "Tokenizer.train([path], pattern='gpt2')"),
    "gigabpe": ("gpt2", "files", "gigabpe.train_bpe([path], pretokenizer='bytelevel')"),
    "hf-gpt2": ("gpt2", "files", "tokenizers ByteLevel BpeTrainer, train([path])"),
}
# the tokforge row that each row's time is divided into (by input mode), and the row whose
# merges each row must equal
TOKFORGE_FOR = {
    "cl100k": {"files": "tokforge", "iter": "tokforge-iter"},
    "gpt2": {"files": "tokforge-gpt2-files", "iter": "tokforge-gpt2"},
}
PARITY = {
    "tokforge": ["hf"],
    "tokforge-iter": ["hf", "tokforge"],
    "tokforge-bytes": ["rustbpe"],
    "rustbpe": ["tokforge-bytes"],
    "hf": ["tokforge"],
    "tokforge-gpt2": ["hf-gpt2", "gigabpe"],
    # the whole file is one document here, the others read lines: the GPT-2 regex's
    # \s+(?!\S) joins a line's leading spaces to the newline before it, so merges differ a bit
    "tokforge-gpt2-files": [],
    "gigabpe": ["hf-gpt2", "tokforge-gpt2"],
    "hf-gpt2": ["tokforge-gpt2"],
}
NO_PARITY = {"tokforge-gpt2-files": "not compared (file = 1 document)"}

# ---- documents -----------------------------------------------------------------------------
_PARA_END = re.compile(r"(?<=\n\n)(?=\S)")


def paragraphs(path: str | Path, block: int = 1 << 20) -> Iterator[str]:
    """The file as documents that concatenate back to it, cut after ``\\n\\n`` where a
    non-space character follows. No cl100k piece spans such a point (no alternative of the
    regex goes on past a newline into a non-space character), so training on these documents
    equals training on the whole file as one document."""
    buf = ""
    with open(path, encoding="utf-8", newline="") as fh:
        while chunk := fh.read(block):
            buf += chunk
            parts = _PARA_END.split(buf)
            buf = parts.pop()
            yield from parts
    if buf:
        yield buf


def lines(path: str | Path) -> Iterator[str]:
    """The file's lines, each with its ``\\n``: what HF ``Tokenizer.train(files)`` reads."""
    with open(path, encoding="utf-8", newline="") as fh:
        yield from fh


def hf_safe_pattern(pattern: str) -> str:
    """``pattern`` for HF's Oniguruma engine. tokforge's cl100k preset (like tiktoken's) says
    ``\\p{N}{1,3}+``: possessive in fancy-regex, but in Oniguruma's Ruby syntax ``{n,m}+`` is
    a repeated interval, ``(?:\\p{N}{1,3})+``, so HF would keep whole digit runs as one piece.
    As the last item of its alternative, greedy ``\\p{N}{1,3}`` means the same as the
    possessive form for fancy-regex."""
    return re.sub(r"(\{\d+(?:,\d*)?\})\+", r"\1", pattern)


# ---- byte-level strings --------------------------------------------------------------------
def _norm_merges(merges) -> list[list[str]]:
    return [m.split(" ", 1) if isinstance(m, str) else list(m) for m in merges]


def merged_tokens(pairs: list[list[str]]) -> list[str]:
    """Hex of the bytes of each merge's new token (what rustbpe's ranks give)."""
    from tokforge import _core

    return [_core.byte_level_decode(a + b).hex() for a, b in pairs]


# ---- the child: one trainer ----------------------------------------------------------------
def child(name: str, corpus: str, vocab: int, threads: int, out: str, extra: dict) -> None:
    result: dict = {"name": name}
    stages = None
    if name.startswith("tokforge"):
        import tokforge

        kw: dict = {"vocab_size": vocab, "num_threads": threads}
        if name == "tokforge-gpt2":
            kw.update(texts=lines(corpus), pattern="gpt2")
        elif name == "tokforge-gpt2-files":
            kw.update(files=[corpus], pattern="gpt2")
        elif name == "tokforge-iter":
            kw.update(texts=paragraphs(corpus), pattern="cl100k")
        else:
            kw.update(files=[corpus], pattern="cl100k")
        if name == "tokforge-bytes":
            kw.update(tie_order="bytes")
        stages = StageTimer()
        result["rss_base_mb"] = peak_rss_mb()
        stages.start()
        t0 = time.perf_counter()
        tok = tokforge.Tokenizer.train(progress=stages, **kw)
        train_s = time.perf_counter() - t0
        result["rss_train_peak_mb"] = peak_rss_mb()  # before the merges are exported
        pairs = _norm_merges(json.loads(tok.to_json())["model"]["merges"])
        result["stages"] = stages.spans(end=train_s)
        result["version"] = tokforge.__version__
    elif name in ("hf", "hf-gpt2"):
        import tokenizers
        from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab,
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        result["rss_base_mb"] = peak_rss_mb()
        if name == "hf":
            tok.pre_tokenizer = pre_tokenizers.Sequence(
                [
                    pre_tokenizers.Split(Regex(extra["hf_pattern"]), behavior="isolated"),
                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
                ]
            )
            t0 = time.perf_counter()
            tok.train_from_iterator(paragraphs(corpus), trainer=trainer)
        else:
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            t0 = time.perf_counter()
            tok.train([corpus], trainer=trainer)
        train_s = time.perf_counter() - t0
        result["rss_train_peak_mb"] = peak_rss_mb()  # before the merges are exported
        pairs = _norm_merges(json.loads(tok.to_str())["model"]["merges"])
        result["version"] = tokenizers.__version__
    elif name == "rustbpe":
        import rustbpe

        tok = rustbpe.Tokenizer()
        result["rss_base_mb"] = peak_rss_mb()
        t0 = time.perf_counter()
        tok.train_from_iterator(paragraphs(corpus), vocab, pattern=extra["pattern"])
        train_s = time.perf_counter() - t0
        result["rss_train_peak_mb"] = peak_rss_mb()  # before the merges are exported
        ranks = sorted(tok.get_mergeable_ranks(), key=lambda kv: kv[1])
        result["merged"] = [bytes(k).hex() for k, v in ranks if v >= 256]
        pairs = None
        result["version"] = installed_version("rustbpe")
    elif name == "gigabpe":
        import gigabpe

        # gigabpe's alphabet is the bytes that occur (no initial_alphabet): give it as many
        # merges as the others make (vocab - 256)
        gvocab = vocab - 256 + extra["distinct_bytes"]
        result["rss_base_mb"] = peak_rss_mb()
        t0 = time.perf_counter()
        _, merges = gigabpe.train_bpe([corpus], gvocab, pretokenizer="bytelevel", threads=threads)
        train_s = time.perf_counter() - t0
        result["rss_train_peak_mb"] = peak_rss_mb()  # before the merges are exported
        pairs = _norm_merges(merges)
        result["version"] = gigabpe.__version__
    else:
        raise SystemExit(f"unknown trainer {name}")
    result["train_s"] = train_s
    if pairs is not None:
        result["merges"] = pairs
        result["merged"] = merged_tokens(pairs)
    result["n_merges"] = len(result["merged"])
    result["rss_peak_self_mb"] = peak_rss_mb()
    Path(out).write_text(json.dumps(result))


# ---- the parent ----------------------------------------------------------------------------
def _distinct_bytes(path: Path) -> int:
    data = path.read_bytes()
    return sum(1 for b in range(256) if data.find(bytes((b,))) >= 0)


def compare(a: dict, b: dict) -> tuple[bool, str]:
    """Whether two trainers' merges are identical: the (left, right) pairs where both have
    them, else the merged tokens' bytes. Gives (identical, text for the table)."""
    if "merges" in a and "merges" in b:
        x, y = a["merges"], b["merges"]
    else:
        x, y = a["merged"], b["merged"]
    if x == y:
        return True, f"= {b['name']}"
    i = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
    return False, f"!= {b['name']} from #{i}" + (
        f" ({len(x)} vs {len(y)} merges)" if len(x) != len(y) else ""
    )


def first_difference(a: dict, b: dict, context: int = 2) -> str:
    x, y = a.get("merges") or a["merged"], b.get("merges") or b["merged"]
    i = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
    lo = max(0, i - context)
    return (
        f"first difference {a['name']} vs {b['name']} at merge #{i}:\n"
        f"  {a['name']}: {x[lo : i + context + 1]}\n  {b['name']}: {y[lo : i + context + 1]}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=60, help="corpus size in MiB (default 60)")
    ap.add_argument("--corpus", type=Path, help="train on this file instead of building one")
    ap.add_argument(
        "--data",
        type=Path,
        default=HERE / "data",
        help="corpus and package cache folder (default benches/data)",
    )
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--threads", default="2", help="thread counts, e.g. 2 or 1,2 (default 2)")
    ap.add_argument(
        "--only", help="comma-separated trainers to run (default all): " + ",".join(TRAINERS)
    )
    ap.add_argument("--skip", default="", help="comma-separated trainers to leave out")
    ap.add_argument(
        "--json",
        action="store_true",
        help="JSON lines on stdout (one per run, then a summary); table to stderr",
    )
    ap.add_argument("--no-install", action="store_true", help="do not pip-install peers")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each trainer; the table shows the median wall time and the "
        "largest peak RSS (default 3)",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per trainer run")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=60,
        help="before each run, wait up to this many seconds for other processes to leave the "
        "cores idle (< 0.2 busy); 0: do not wait (default 60)",
    )
    ap.add_argument("--keep", type=Path, help="keep each trainer's merges JSON in this folder")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--extra", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    threads_list = [int(t) for t in str(args.threads).split(",") if t.strip()]

    if args.child:
        child(
            args.child,
            str(args.corpus),
            args.vocab,
            threads_list[0],
            args.out,
            json.loads(args.extra),
        )
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    names = list(TRAINERS)
    if args.only:
        want = [n.strip() for n in args.only.split(",") if n.strip()]
        bad = [n for n in want if n not in TRAINERS]
        if bad:
            ap.error(f"unknown trainers {bad}; known: {list(TRAINERS)}")
        names = [n for n in names if n in want]
    names = [n for n in names if n not in {s.strip() for s in args.skip.split(",")}]

    versions = {"tokforge": installed_version("tokforge")}
    if not args.no_install:
        versions.update(ensure_packages(PEER_PINS, log=log))
    else:
        versions.update({d: installed_version(d) for d in PEER_PINS})
    for n in list(names):
        dist = "tokenizers" if n.startswith("hf") else n.split("-")[0]
        if versions.get(dist) is None:
            log(f"{n}: {dist} is not installed, left out")
            names.remove(n)

    if args.corpus:
        corpus = args.corpus.resolve()
    else:
        from corpus import build_corpus

        corpus = build_corpus(args.data, args.mb, log=log)
    size = corpus.stat().st_size
    meta_path = corpus.parent / "bench-corpus.json"
    sha = None
    if meta_path.exists() and not args.corpus:
        sha = json.loads(meta_path.read_text()).get("sha256")

    import tokforge

    pattern = tokforge.preset_pattern("cl100k")
    extra = {
        "pattern": pattern,
        "hf_pattern": hf_safe_pattern(pattern),
        "distinct_bytes": _distinct_bytes(corpus),
    }
    notes = []
    if extra["hf_pattern"] != pattern:
        try:
            from tokenizers import Regex, pre_tokenizers

            probe = "in 1234567 ways"
            verbatim = [
                p
                for p, _ in pre_tokenizers.Split(Regex(pattern), "isolated").pre_tokenize_str(probe)
            ]
            if verbatim != tokforge._core.pretokenize(pattern, probe):
                notes.append(
                    "HF runs use the cl100k preset with \\p{N}{1,3} for \\p{N}{1,3}+: given the "
                    f"preset verbatim, HF's Oniguruma splits {probe!r} as {verbatim} "
                    f"(tokforge: {tokforge._core.pretokenize(pattern, probe)})"
                )
        except Exception as e:
            notes.append(f"could not probe HF's reading of the pattern: {e}")

    info = machine_info()
    load0 = _loadavg()
    if load0 and float(load0.split()[0]) > 0.5:
        log(f"warning: load average {load0}: other work on this machine skews the times")
    log(f"corpus {corpus} ({size / (1 << 20):.1f} MiB){' sha256 ' + sha if sha else ''}")
    log(
        f"machine: {info['cpu']}, {info['cores']} cores; vocab {args.vocab}; threads {threads_list}"
    )

    runs: dict[tuple[str, int], dict] = {}
    tmpdir = Path(tempfile.mkdtemp(prefix="tokforge-bench-"))
    try:
        for threads in threads_list:
            for name in names:
                out = tmpdir / f"{name}-{threads}.json"
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--child",
                    name,
                    "--corpus",
                    str(corpus),
                    "--vocab",
                    str(args.vocab),
                    "--threads",
                    str(threads),
                    "--out",
                    str(out),
                    "--extra",
                    json.dumps(extra),
                ]
                log(f"[{threads} thr] {name}: {TRAINERS[name][2]}")
                tries = []
                for k in range(max(1, args.repeat)):
                    out.unlink(missing_ok=True)
                    if args.wait_idle > 0:
                        busy = wait_idle(args.wait_idle)
                        if busy is not None and busy > 0.2:
                            log(f"  (still {busy:.1f} cores busy after {args.wait_idle:.0f} s)")
                    r = run_child(cmd, env=thread_env(threads), timeout=args.timeout)
                    if r.returncode != 0 or not out.exists():
                        why = "timed out" if r.timed_out else f"exit {r.returncode}"
                        log(f"  {name} failed ({why}):\n{r.stderr[-3000:]}")
                        tries = []
                        runs[(name, threads)] = {"name": name, "error": why}
                        break
                    res = json.loads(out.read_text())
                    res.update(
                        others_busy=r.others_busy,
                        threads=threads,
                        process_wall_s=r.wall_s,
                        # the child's own peak (VmHWM) when training ended; wait4's ru_maxrss
                        # would also count this parent's RSS, which the child inherits at fork
                        peak_rss_mb=res.get("rss_train_peak_mb", r.peak_rss_mb),
                        wait4_maxrss_mb=r.peak_rss_mb,
                        cpu_s=r.user_s + r.sys_s,
                    )
                    st = res.get("stages")
                    log(
                        f"  run {k + 1}: {res['train_s']:.2f} s, "
                        f"peak RSS {res['peak_rss_mb']:.0f} MiB, "
                        f"{res['n_merges']} merges"
                        + (
                            f", others kept {r.others_busy:.2f} cores busy"
                            if r.others_busy is not None
                            else ""
                        )
                        + (" | " + ", ".join(f"{a} {b:.2f} s" for a, b in st.items()) if st else "")
                    )
                    if tries and (res["merged"] != tries[0]["merged"]):
                        log(f"  {name}: run {k + 1} learned other merges than run 1")
                        res["unstable"] = True
                    if tries:  # keep the merge lists of the first run only
                        res.pop("merges", None)
                        res.pop("merged", None)
                    tries.append(res)
                    if args.keep and k == 0:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        (args.keep / out.name).write_text(out.read_text())
                if tries:
                    runs[(name, threads)] = _combine(tries)
    finally:
        for f in tmpdir.iterdir():
            f.unlink()
        tmpdir.rmdir()

    # ---- table ---------------------------------------------------------------------------
    headers = [
        "trainer",
        "workload",
        "input",
        "thr",
        "wall s",
        "peak RSS MiB",
        "tf(files)/peer",
        "tf(iter)/peer",
        "merges",
    ]
    rows = []
    records = []
    details = []
    for (name, threads), res in runs.items():
        workload, mode, desc = TRAINERS[name]
        rec = {
            "trainer": name,
            "workload": workload,
            "input": mode,
            "threads": threads,
            "vocab": args.vocab,
            "corpus_bytes": size,
            "corpus_sha256": sha,
            "call": desc,
        }
        if "error" in res:
            rec["error"] = res["error"]
            records.append(rec)
            rows.append([name, workload, mode, threads, None, None, None, None, res["error"]])
            continue
        ratios = {}
        for col, tf_name in TOKFORGE_FOR[workload].items():
            tf = runs.get((tf_name, threads)) if tf_name else None
            if tf and "error" not in tf and not name.startswith("tokforge"):
                ratios[col] = tf["train_s"] / res["train_s"]
        parity = []
        for other in PARITY[name]:
            o = runs.get((other, threads))
            if o and "error" not in o:
                same, text = compare(res, o)
                parity.append(text)
                rec[f"identical_to_{other}"] = same
                if not same and name < other:
                    details.append(first_difference(res, o))
        rec.update(
            wall_s=round(res["train_s"], 3),
            runs_wall_s=res["all_train_s"],
            process_wall_s=round(res["process_wall_s"], 3),
            peak_rss_mb=round(res["peak_rss_mb"], 1),
            rss_before_training_mb=round(res.get("rss_base_mb", 0), 1),
            cpu_s=round(res["cpu_s"], 2),
            n_merges=res["n_merges"],
            version=res.get("version"),
            merges_same_every_run=not res["unstable"],
            others_busy_cores_max=res.get("others_busy"),
            tokforge_files_over_peer=_r(ratios.get("files")),
            tokforge_iter_over_peer=_r(ratios.get("iter")),
        )
        if res.get("stages"):
            rec["stages_s"] = {k: round(v, 3) for k, v in res["stages"].items()}
        records.append(rec)
        rows.append(
            [
                name,
                workload,
                mode,
                threads,
                res["train_s"],
                round(res["peak_rss_mb"]),
                _fmt_ratio(ratios.get("files")),
                _fmt_ratio(ratios.get("iter")),
                "; ".join(parity) or NO_PARITY.get(name, "-"),
            ]
        )

    table = format_table(headers, rows, align="llllrrrrl")
    out_lines = [
        f"BPE training, vocab {args.vocab}, corpus {corpus.name} {size / (1 << 20):.1f} MiB"
        + (f" (sha256 {sha[:16]})" if sha else "")
        + f", {info['cpu']}, {info['cores']} cores",
        "",
        table,
        "",
        (
            "wall s: the training call alone (reading the input included), median of "
            f"{max(1, args.repeat)} run(s); peak RSS: the trainer's own process, largest of "
            "the runs; tf/peer: tokforge's wall s over the peer's, same workload and threads "
            f"(< 1: tokforge faster). Load average before/after: {load0} / {_loadavg()}; "
            f"other processes kept at most {_max_busy(runs)} cores busy during a run."
        ),
    ]
    for rec in records:
        if rec.get("stages_s"):
            out_lines.append(
                f"  {rec['trainer']} [{rec['threads']} thr] stages: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in rec["stages_s"].items())
            )
    out_lines += [f"note: {n}" for n in notes] + details
    text = "\n".join(out_lines)
    summary = {
        "summary": True,
        "machine": info,
        "versions": versions,
        "corpus": str(corpus),
        "corpus_bytes": size,
        "corpus_sha256": sha,
        "vocab": args.vocab,
        "threads": threads_list,
        "repeat": args.repeat,
        "loadavg_before": load0,
        "loadavg_after": _loadavg(),
        "notes": notes,
    }
    if args.json:
        print(text, file=sys.stderr)
        for rec in records:
            print(json_line(rec))
        print(json_line(summary))
    else:
        print(text)
    return 0 if all("error" not in r for r in runs.values()) else 1


def _combine(tries: list[dict]) -> dict:
    """One record from repeated runs: the median run's times (its stages too), the largest
    peak RSS, every run's wall time, the first run's merges."""
    order = sorted(range(len(tries)), key=lambda i: tries[i]["train_s"])
    med = tries[order[(len(order) - 1) // 2]]
    res = dict(tries[0])
    for key in ("train_s", "process_wall_s", "cpu_s", "stages"):
        if key in med:
            res[key] = med[key]
    res["peak_rss_mb"] = max(t["peak_rss_mb"] for t in tries)
    res["rss_base_mb"] = max(t.get("rss_base_mb", 0) for t in tries)
    res["all_train_s"] = [round(t["train_s"], 3) for t in tries]
    res["unstable"] = any(t.get("unstable") for t in tries)
    busy = [t["others_busy"] for t in tries if t.get("others_busy") is not None]
    res["others_busy"] = round(max(busy), 2) if busy else None
    return res


def _max_busy(runs: dict) -> str:
    busy = [r["others_busy"] for r in runs.values() if r.get("others_busy") is not None]
    return f"{max(busy):.2f}" if busy else "?"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def _r(x):
    return None if x is None else round(x, 3)


def _fmt_ratio(x):
    return None if x is None else f"{x:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
