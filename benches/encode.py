"""Encoding benchmark: tokforge against tiktoken, HF ``tokenizers``, gigatoken and fastokens.

Encodes the same sample of real multilingual text and source code (>= 20 MB: the Debian corpus
of benches/corpus.py plus the repo's ``corpora/*.txt``) with every peer, for each vocabulary
(OpenAI's ``gpt2``, ``cl100k_base`` and ``o200k_base`` rank files), single-threaded (one call
per document, as a user's loop does) and as a batch on ``--threads`` threads (default 2). Each peer and mode runs
in its own child process, so each peak RSS is that peer's alone. Every pass's ids are hashed per
document, and every row is checked against tokforge's: a speed comparison of different outputs
would mean nothing.

    .venv/bin/python benches/encode.py                      # three vocabularies, 2 threads
    .venv/bin/python benches/encode.py --json > enc.jsonl   # JSON lines on stdout, table on stderr
    .venv/bin/python benches/encode.py --vocabs cl100k --only tokforge,tiktoken --repeat 5
    .venv/bin/python benches/encode.py --vocabs cl100k --batch-docs 100   # a batch at a time

Throughput is MB/s with MB = 10^6 bytes of UTF-8 input. ``cold`` is the first pass in a fresh
process (right after the tokenizer is loaded: empty caches), ``warm`` the median of the
``--repeat`` passes after it.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import re
import statistics
import sys
import time
from array import array
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    ChildResult,
    ensure_packages,
    format_table,
    installed_version,
    json_line,
    machine_info,
    peak_rss_mb,
    run_child,
    thread_env,
)

# Peers, pinned: installed into this interpreter at the start when missing (--no-install skips).
PEER_PINS = {
    "tiktoken": "0.14.0",
    "tokenizers": "0.23.3",
    "gigatoken": "0.10.0",
    "fastokens": "0.3.5",
}

# vocab name -> (rank file fetched by tests/vocabularies.py, tokforge preset, gigatoken scheme)
VOCABS = {
    "gpt2": ("gpt2.tiktoken", "gpt2", "gpt2"),
    "cl100k": ("cl100k_base.tiktoken", "cl100k", "gpt4"),
    "o200k": ("o200k_base.tiktoken", "o200k", "o200k"),
}

# (mode, row name) -> (python package that must import, the call that is timed)
RUNS: dict[tuple[str, str], tuple[str, str]] = {
    ("single", "tokforge"): ("tokforge", "[tok.encode_ordinary(d) for d in docs]"),
    ("single", "tokforge-np"): (
        "tokforge",
        "[tok.encode_numpy(d, disallowed_special=()) for d in docs]  (uint32 arrays)",
    ),
    ("single", "tiktoken"): ("tiktoken", "[enc.encode_ordinary(d) for d in docs]"),
    ("single", "hf"): ("tokenizers", "[tok.encode(d, add_special_tokens=False).ids for d in docs]"),
    ("single", "gigatoken"): (
        "gigatoken",
        "[enc.encode_ordinary(d) for d in docs]  (enc = Tokenizer.from_tiktoken(..).as_tiktoken())",
    ),
    ("single", "gigatoken-np"): ("gigatoken", "[tok.encode(d) for d in docs]  (uint32 arrays)"),
    ("single", "gigatoken-list"): ("gigatoken", "[tok.encode(d).tolist() for d in docs]"),
    ("single", "fastokens"): (
        "fastokens",
        "[tok.encode_ordinary(d).ids for d in docs]  (fastokens._native.Tokenizer.from_tiktoken, "
        "its cl100k_base / o200k_base preset; gpt2: the pattern, on its regex engine)",
    ),
    ("batch", "tokforge"): (
        "tokforge",
        "tok.encode_batch(docs, disallowed_special=(), num_threads=T)",
    ),
    ("batch", "tokforge-np"): (
        "tokforge",
        "tok.encode_batch_numpy(docs, disallowed_special=(), num_threads=T)",
    ),
    ("batch", "tiktoken"): ("tiktoken", "enc.encode_ordinary_batch(docs, num_threads=T)"),
    ("batch", "hf"): (
        "tokenizers",
        "[e.ids for e in tok.encode_batch(docs, add_special_tokens=False)]",
    ),
    ("batch", "hf-fast"): (
        "tokenizers",
        "[e.ids for e in tok.encode_batch_fast(docs, add_special_tokens=False)]",
    ),
    ("batch", "gigatoken"): ("gigatoken", "enc.encode_ordinary_batch(docs, num_threads=T)"),
    ("batch", "gigatoken-np"): ("gigatoken", "tok.encode_batch(docs)  (awkward array)"),
}
PEERS = sorted({name for _, name in RUNS})

DATA = HERE / "data"
WORK = DATA / "encode"
MB = 1_000_000
# a row during which other processes kept more cores than this busy is run again (--retries)
DISTURBED = 0.2
MIB = 1 << 20


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---- contention --------------------------------------------------------------------------
_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_busy_s() -> float | None:
    """Seconds of CPU that the whole machine has been busy (all cores, steal included)."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TCK


def others_busy(seconds: float = 1.0) -> float | None:
    """Cores kept busy by other processes over ``seconds`` while this one sleeps."""
    a = cpu_busy_s()
    c0 = time.process_time()
    time.sleep(seconds)
    b = cpu_busy_s()
    if a is None or b is None:
        return None
    return max(0.0, (b - a - (time.process_time() - c0)) / seconds)


def wait_idle(budget: float, limit: float = 0.2) -> float | None:
    """Wait (up to ``budget`` seconds) until other processes keep fewer than ``limit`` cores
    busy; returns the last reading."""
    t_end = time.monotonic() + budget
    busy = others_busy(0.5)
    while busy is not None and busy > limit and time.monotonic() < t_end:
        busy = others_busy(2.0)
    return busy


# ---- the sample ----------------------------------------------------------------------------
# A paragraph ends after a blank line that a non-space character follows (as in train.py).
_PARA_END = re.compile(r"(?<=\n\n)(?=\S)")


def split_documents(text: str, doc_bytes: int) -> list[str]:
    """``text`` cut at paragraph ends into documents of at least ``doc_bytes`` UTF-8 bytes
    (the last may be shorter; a paragraph is never cut, so one longer than that is a document of
    its own size). ``doc_bytes <= 0``: every paragraph is a document. The documents concatenate
    back to ``text``."""
    paras = _PARA_END.split(text)
    if doc_bytes <= 0:
        return [p for p in paras if p]
    docs: list[str] = []
    cur: list[str] = []
    size = 0
    for p in paras:
        cur.append(p)
        size += len(p.encode("utf-8"))
        if size >= doc_bytes:
            docs.append("".join(cur))
            cur, size = [], 0
    if cur:
        docs.append("".join(cur))
    return docs


def build_sample(mb: float, doc_bytes: int, specials: set[str], *, use_corpora: bool = True):
    """Write the sample (documents joined, and their lengths) into benches/data/encode and
    return its description. The Debian part comes from corpus.build_corpus (its own pinned,
    reproducible recipe, built into benches/data/encode and reusing the packages cached in
    benches/data); ``corpora/*.txt`` (sorted) are appended. Documents that hold the text of a
    special token are dropped (see the note printed with the table)."""
    from corpus import build_corpus

    WORK.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(WORK, mb, cache_dir=DATA, log=log)
    cmeta = json.loads((WORK / "bench-corpus.json").read_text())
    parts = [corpus.read_text(encoding="utf-8").strip("\n")]
    corpora = sorted((ROOT / "corpora").glob("*.txt")) if use_corpora else []
    for p in corpora:
        parts.append(p.read_text(encoding="utf-8").replace("\r\n", "\n").strip("\n"))
    text = "\n\n".join(parts) + "\n"
    docs = split_documents(text, doc_bytes)
    kept, dropped, dropped_bytes = [], [], 0
    for d in docs:
        if any(s in d for s in specials):
            dropped.append(d)
            dropped_bytes += len(d.encode("utf-8"))
        else:
            kept.append(d)
    sizes = [len(d.encode("utf-8")) for d in kept]
    joined = "".join(kept)
    docs_path = WORK / "sample.txt"
    docs_path.write_text(joined, encoding="utf-8", newline="")
    lens_path = WORK / "sample-lengths.json"
    lens_path.write_text(json.dumps([len(d) for d in kept]))
    special_doc = WORK / "special-doc.txt"
    if dropped:
        special_doc.write_text(dropped[0], encoding="utf-8", newline="")
    return {
        "text": str(docs_path),
        "lengths": str(lens_path),
        "special_doc": str(special_doc) if dropped else None,
        "bytes": sum(sizes),
        "documents": len(kept),
        "doc_bytes_median": int(statistics.median(sizes)),
        "doc_bytes_max": max(sizes),
        "doc_bytes_min": min(sizes),
        "dropped_documents": len(dropped),
        "dropped_bytes": dropped_bytes,
        "sha256": hashlib.sha256(joined.encode("utf-8")).hexdigest(),
        "debian_corpus": {"path": str(corpus), "bytes": cmeta["bytes"], "sha256": cmeta["sha256"]},
        "corpora_files": len(corpora),
        "corpora_bytes": sum(p.stat().st_size for p in corpora),
    }


def load_docs(spec: dict) -> list[str]:
    with open(spec["text"], encoding="utf-8", newline="") as fh:
        text = fh.read()
    docs, pos = [], 0
    for n in json.loads(Path(spec["lengths"]).read_text()):
        docs.append(text[pos : pos + n])
        pos += n
    assert pos == len(text), "sample lengths do not match the sample text"
    return docs


# ---- memory --------------------------------------------------------------------------------
def _status_mb(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process in MiB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def rss_now_mb() -> float:
    v = _status_mb("VmRSS")
    return peak_rss_mb() if v is None else v


def rss_peak_mb() -> float:
    """This process's own peak RSS. ``VmHWM`` belongs to the address space made at exec, so it
    is the child's alone; ``ru_maxrss`` (and so ``wait4``'s) also counts the parent's RSS at
    the fork that started the child (Linux keeps the larger across exec)."""
    v = _status_mb("VmHWM")
    return peak_rss_mb() if v is None else v


def reset_peak() -> bool:
    """Set ``VmHWM`` back to the current RSS (Linux >= 4.0), so that the next reading is the
    peak of what ran in between (and not of the hashing before it)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ---- ids -----------------------------------------------------------------------------------
def _h(b: bytes) -> str:
    return hashlib.blake2b(b, digest_size=8).hexdigest()


def digests(out, kind: str) -> tuple[list[str], int]:
    """Per-document hash of the ids as little-endian uint32, and the number of tokens."""
    import numpy as np

    if kind == "lists":
        ds = [_h(array("I", ids).tobytes()) for ids in out]
        return ds, sum(len(ids) for ids in out)
    if kind == "arrays":
        ds = [_h(np.ascontiguousarray(a, dtype=np.uint32).tobytes()) for a in out]
        return ds, sum(len(a) for a in out)
    if kind == "flat":  # (ids, offsets)
        ids, offs = out
        ids = np.ascontiguousarray(ids, dtype=np.uint32)
        ds = [_h(ids[offs[i] : offs[i + 1]].tobytes()) for i in range(len(offs) - 1)]
        return ds, len(ids)
    if kind == "awkward":
        import awkward as ak

        counts = ak.to_numpy(ak.num(out, axis=1)).astype(np.int64)
        flat = np.ascontiguousarray(ak.to_numpy(ak.flatten(out)), dtype=np.uint32)
        offs = np.concatenate([[0], np.cumsum(counts)])
        ds = [_h(flat[offs[i] : offs[i + 1]].tobytes()) for i in range(len(counts))]
        return ds, len(flat)
    raise ValueError(kind)


# ---- the child: one peer, one mode ---------------------------------------------------------
def _setup(peer: str, mode: str, spec: dict):
    """(the timed function of docs, the kind of its output, version, a gigatoken-style encoder
    for the special-token probe or None)."""
    vocab = spec["vocab"]
    path = spec["vocab_path"]
    threads = spec["threads"]
    giga_scheme = VOCABS[vocab][2]
    if peer.startswith("tokforge"):
        import tokforge

        tok = tokforge.Tokenizer.from_file(path)
        if mode == "single" and peer == "tokforge-np":
            return (
                (lambda docs: [tok.encode_numpy(d, disallowed_special=()) for d in docs]),
                "arrays",
                tokforge.__version__,
            )
        if mode == "single":
            return (
                (lambda docs: [tok.encode_ordinary(d) for d in docs]),
                "lists",
                tokforge.__version__,
            )
        if peer == "tokforge-np":
            return (
                lambda docs: tok.encode_batch_numpy(
                    docs, disallowed_special=(), num_threads=threads
                ),
                "flat",
                tokforge.__version__,
            )
        return (
            lambda docs: tok.encode_batch(docs, disallowed_special=(), num_threads=threads),
            "lists",
            tokforge.__version__,
        )
    if peer == "tiktoken":
        import tiktoken
        import tiktoken.load

        enc = tiktoken.Encoding(
            name=f"{vocab}-bench",
            pat_str=spec["pattern"],
            mergeable_ranks=tiktoken.load.load_tiktoken_bpe(path),
            special_tokens=spec["specials"],
        )
        if mode == "single":
            return (
                (lambda docs: [enc.encode_ordinary(d) for d in docs]),
                "lists",
                tiktoken.__version__,
            )
        return (
            lambda docs: enc.encode_ordinary_batch(docs, num_threads=threads),
            "lists",
            tiktoken.__version__,
        )
    if peer.startswith("hf"):
        import tokenizers

        tok = tokenizers.Tokenizer.from_file(spec["hf_json"])
        if mode == "single":
            return (
                lambda docs: [tok.encode(d, add_special_tokens=False).ids for d in docs],
                "lists",
                tokenizers.__version__,
            )
        if peer == "hf-fast":
            return (
                lambda docs: [e.ids for e in tok.encode_batch_fast(docs, add_special_tokens=False)],
                "lists",
                tokenizers.__version__,
            )
        return (
            lambda docs: [e.ids for e in tok.encode_batch(docs, add_special_tokens=False)],
            "lists",
            tokenizers.__version__,
        )
    if peer.startswith("gigatoken"):
        import gigatoken

        tok = gigatoken.Tokenizer.from_tiktoken(
            path, pretokenizer=giga_scheme, special_tokens=spec["specials"]
        )
        ver = installed_version("gigatoken")
        if peer == "gigatoken-np":
            if mode == "single":
                return (lambda docs: [tok.encode(d) for d in docs]), "arrays", ver
            return (lambda docs: tok.encode_batch(docs)), "awkward", ver
        if peer == "gigatoken-list":
            return (lambda docs: [tok.encode(d).tolist() for d in docs]), "lists", ver
        enc = tok.as_tiktoken()
        if mode == "single":
            return (lambda docs: [enc.encode_ordinary(d) for d in docs]), "lists", ver
        return (lambda docs: enc.encode_ordinary_batch(docs, num_threads=threads)), "lists", ver
    if peer == "fastokens":
        from fastokens._native import Tokenizer as FastTokenizer

        # fastokens runs its own pre-tokenizer only for the pattern strings it knows (its
        # presets); tiktoken's cl100k `pat_str` (possessive quantifiers) is not one of them and
        # went to its regex engine at a third of the speed, so the presets it has are used
        # (ids still checked against tokforge's); gpt2 has none and keeps the pattern
        preset = {"cl100k": "cl100k_base", "o200k": "o200k_base"}.get(spec["vocab"])
        kw = {"encoding": preset} if preset else {"pattern": spec["pattern"]}
        tok = FastTokenizer.from_tiktoken(path, special_tokens=spec["specials"], **kw)
        ver = installed_version("fastokens")
        return (lambda docs: [tok.encode_ordinary(d).ids for d in docs]), "lists", ver
    raise ValueError(peer)


def child(spec: dict) -> None:
    peer, mode = spec["peer"], spec["mode"]
    docs = load_docs(spec)
    gc.collect()
    rss_docs = rss_now_mb()
    t0 = time.perf_counter()
    fn, kind, version = _setup(peer, mode, spec)
    load_s = time.perf_counter() - t0
    per = spec.get("batch_docs") or 0
    if mode == "batch" and per:
        # a dataset encoded a batch at a time: a fresh model meets new text in every call
        whole = fn

        def fn(docs):
            return [whole(docs[i : i + per]) for i in range(0, len(docs), per)]

    gc.collect()
    rss_base = rss_now_mb()
    peak = rss_peak_mb()  # loading
    walls, cpus, busys, pass_digests, tokens = [], [], [], [], 0
    for k in range(1 + spec["repeat"]):
        if k and spec.get("new_strs"):
            # equal documents as new strs (the first pass's are new already)
            docs = [d.encode("utf-8").decode("utf-8") for d in docs]
        gc.collect()
        can_reset = reset_peak()
        b0 = cpu_busy_s()
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = fn(docs)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        b1 = cpu_busy_s()
        busys.append(None if b0 is None or b1 is None else b1 - b0)
        peak = max(peak, rss_peak_mb())
        if mode == "batch" and per:
            parts = [digests(o, kind) for o in out]
            ds, tokens = [d for p in parts for d in p[0]], sum(p[1] for p in parts)
        else:
            ds, tokens = digests(out, kind)
        del out
        pass_digests.append(ds)
    probe = None
    if spec.get("special_doc") and peer == "gigatoken":
        # what this peer does with text that holds a special token, encoded as ordinary text
        # (such documents are kept out of the sample)
        sdoc = Path(spec["special_doc"]).read_text(encoding="utf-8")
        try:
            fn([sdoc])
            probe = "ok"
        except Exception as e:
            first = (str(e).splitlines() or [""])[0]
            probe = f"{type(e).__name__}: {first.split(';')[0][:200]}"
    result = {
        "peer": peer,
        "mode": mode,
        "version": version,
        "load_s": load_s,
        "walls": walls,
        "cpus": cpus,
        "busys": busys,
        "tokens": tokens,
        "rss_docs_mb": rss_docs,
        "rss_base_mb": rss_base,
        "peak_rss_mb": peak if can_reset else rss_peak_mb(),
        "passes_agree": all(d == pass_digests[0] for d in pass_digests),
        "digests": pass_digests[0],
        "special_probe": probe,
    }
    print("@@RESULT " + json.dumps(result))


def child_result(stdout: str) -> dict | None:
    """The result a child printed (``@@RESULT`` line), if any."""
    res = None
    for line in stdout.splitlines():
        if line.startswith("@@RESULT "):
            res = json.loads(line[len("@@RESULT ") :])
    return res


def run_row(
    spec: dict, threads: int, args: argparse.Namespace
) -> tuple[ChildResult, float | None, int]:
    """One child for ``spec``, run again (up to ``--retries`` times) while other processes
    disturb it; the least disturbed run, the cores others kept busy in it, and the attempts."""
    r: ChildResult | None = None
    others: float | None = None
    attempts = 0
    while True:
        attempts += 1
        if args.wait_idle > 0:
            before = wait_idle(args.wait_idle)
            if before is not None and before > DISTURBED:
                log(f"  other processes keep {before:.2f} cores busy; running anyway")
        busy0 = cpu_busy_s()
        r1 = run_child(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
            env=thread_env(threads),
            timeout=args.timeout,
        )
        busy1 = cpu_busy_s()
        o1 = _others_in_passes(r1.stdout)
        if o1 is None and busy0 is not None and busy1 is not None:
            o1 = max(0.0, (busy1 - busy0 - r1.user_s - r1.sys_s) / r1.wall_s)
        if r is None or (o1 is not None and others is not None and o1 < others):
            r, others = r1, o1
        if r1.returncode != 0 or others is None or others <= DISTURBED:
            break
        if attempts > args.retries:
            break
        log(f"  disturbed (others kept {o1:.2f} cores busy): running it again")
    assert r is not None
    return r, others, attempts


def _others_in_passes(stdout: str) -> float | None:
    """Cores that other processes kept busy in a child's timed passes: the larger of the cold
    pass's figure and the warm passes' together (machine-wide busy CPU minus the child's)."""
    for line in stdout.splitlines():
        if line.startswith("@@RESULT "):
            res = json.loads(line[len("@@RESULT ") :])
            break
    else:
        return None
    busys, cpus, walls = res.get("busys") or [], res["cpus"], res["walls"]
    if not busys or any(b is None for b in busys):
        return None
    cold = (busys[0] - cpus[0]) / walls[0]
    if len(walls) == 1:
        return max(0.0, cold)
    warm = (sum(busys[1:]) - sum(cpus[1:])) / sum(walls[1:])
    return max(0.0, cold, warm)


# ---- the parent ----------------------------------------------------------------------------
def add_shared_options(ap: argparse.ArgumentParser) -> None:
    """The options this bench and ``benches/batch_scaling.py`` share: the vocabularies, the
    batch's threads and calls, the sample, the children's timeout."""
    ap.add_argument(
        "--vocabs", default="gpt2,cl100k,o200k", help="comma list of: " + ", ".join(VOCABS)
    )
    ap.add_argument("--threads", type=int, default=2, help="threads of the batch (default 2)")
    ap.add_argument(
        "--batch-docs",
        type=int,
        default=0,
        help="batch mode: documents per call, as when a dataset is encoded a batch at a time "
        "(a fresh model then meets new text in every call of the cold pass); 0: all in one "
        "call (default)",
    )
    ap.add_argument(
        "--new-strs",
        action="store_true",
        help="every warm pass encodes new str objects of the same documents (made before it is "
        "timed), as when a dataset is read a batch at a time: no str has its UTF-8 form made "
        "yet (CPython makes it on first use, with the GIL), while the model has met the text",
    )
    ap.add_argument(
        "--mb", type=float, default=24, help="MiB of the Debian corpus in the sample (default 24)"
    )
    ap.add_argument("--timeout", type=float, default=1200, help="seconds per child (default 1200)")


def vocab_list(ap: argparse.ArgumentParser, vocabs: str) -> list[str]:
    """``--vocabs`` as a list, each one checked."""
    out = [v for v in vocabs.split(",") if v]
    for v in out:
        if v not in VOCABS:
            ap.error(f"unknown vocab {v!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shared_options(ap)
    ap.add_argument("--modes", default="single,batch", help="single, batch or both")
    ap.add_argument(
        "--no-corpora", action="store_true", help="leave corpora/*.txt out of the sample"
    )
    ap.add_argument(
        "--doc-bytes",
        type=int,
        default=10_000,
        help="documents are runs of paragraphs of at least this many bytes (default 10000; "
        "0: every paragraph is a document)",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="warm passes after the cold one (default 3)"
    )
    ap.add_argument(
        "--cold-runs",
        type=int,
        default=3,
        help="fresh processes whose cold pass is timed, per row; the median is shown (default 3)",
    )
    ap.add_argument("--only", default="", help="comma list of rows: " + ", ".join(PEERS))
    ap.add_argument("--skip", default="", help="comma list of rows to leave out")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=30,
        help="before each row, wait up to this many seconds for other processes to leave the "
        "machine idle (< 0.2 cores busy); 0: do not wait (default 30)",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=2,
        help="run a row again, up to this many times, when other processes kept more than "
        f"{DISTURBED} cores busy while it ran; the least disturbed run is kept (default 2)",
    )
    ap.add_argument("--no-install", action="store_true", help="do not pip-install missing peers")
    ap.add_argument(
        "--json",
        action="store_true",
        help="JSON lines on stdout (one per row, then a summary); the table goes to stderr",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        child(json.loads(args.child))
        return 0

    vocabs = vocab_list(ap, args.vocabs)
    modes = [m for m in args.modes.split(",") if m]
    only = {p for p in args.only.split(",") if p}
    skip = {p for p in args.skip.split(",") if p}
    for m in modes:
        if m not in ("single", "batch"):
            ap.error(f"unknown mode {m!r}")
    for p in only | skip:
        if p not in PEERS:
            ap.error(f"unknown row {p!r}; rows: {', '.join(PEERS)}")

    load0 = _loadavg()
    try:
        if float(load0.split()[0]) > 0.5:
            log(f"warning: load average is {load0}: other work on this machine skews the numbers")
    except ValueError:
        pass

    versions = {}
    if not args.no_install:
        versions = ensure_packages(PEER_PINS, log=log)
    import tokforge

    versions["tokforge"] = tokforge.__version__
    core = Path(tokforge._core.__file__)
    build = (
        f"{core.name} sha256 {hashlib.sha256(core.read_bytes()).hexdigest()[:12]}, built "
        + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(core.stat().st_mtime))
    )
    for dist in PEER_PINS:
        versions.setdefault(dist, installed_version(dist))

    sys.path.insert(0, str(ROOT / "tests"))
    from vocabularies import fetch

    vspec = {}
    specials_all: set[str] = set()
    WORK.mkdir(parents=True, exist_ok=True)
    for v in vocabs:
        fname, preset, _ = VOCABS[v]
        path = fetch(fname)
        tok = tokforge.Tokenizer.from_file(path)  # OpenAI's pattern and specials, by file name
        specials = tok.special_tokens
        specials_all |= set(specials)
        hf_json = WORK / f"{v}.tokenizer.json"
        hf_json.write_text(tok.to_json(), encoding="utf-8")
        vspec[v] = {
            "vocab": v,
            "vocab_path": str(path),
            "pattern": tokforge.preset_pattern(preset),
            "specials": specials,
            "hf_json": str(hf_json),
        }

    sample = build_sample(args.mb, args.doc_bytes, specials_all, use_corpora=not args.no_corpora)
    log(
        f"sample: {sample['bytes'] / MB:.2f} MB in {sample['documents']} documents "
        f"(median {sample['doc_bytes_median']} B, max {sample['doc_bytes_max']} B), "
        f"sha256 {sample['sha256'][:16]}…"
    )
    if sample["bytes"] < 20 * MB:
        log("warning: the sample is under 20 MB")

    rows: list[dict] = []
    notes: list[str] = []
    for v in vocabs:
        for mode in modes:
            threads = 1 if mode == "single" else args.threads
            for (m, peer), (pkg, call) in RUNS.items():
                if m != mode or (only and peer not in only) or peer in skip:
                    continue
                if pkg != "tokforge" and versions.get(pkg) is None:
                    notes.append(f"{peer}: {pkg} is not installed, skipped")
                    continue
                spec = {
                    **vspec[v],
                    "peer": peer,
                    "mode": mode,
                    "threads": threads,
                    "repeat": args.repeat,
                    "text": sample["text"],
                    "lengths": sample["lengths"],
                    "special_doc": sample["special_doc"],
                    "batch_docs": args.batch_docs,
                    "new_strs": args.new_strs,
                }
                log(f"{v} {mode} {peer} ({threads} thread{'s' if threads > 1 else ''}) ...")
                r, others, attempts = run_row(spec, threads, args)
                # more fresh processes for the cold pass alone (its time moves most between
                # runs: page faults of fresh memory), for every peer alike; the median is kept
                colds = []
                for _ in range(args.cold_runs - 1):
                    rc, _, _ = run_row({**spec, "repeat": 0}, threads, args)
                    rres = child_result(rc.stdout)
                    if rc.returncode == 0 and rres is not None:
                        colds.append((rres["walls"][0], rres["cpus"][0], rres["digests"]))
                row = {"vocab": v, "mode": mode, "threads": threads, "peer": peer, "call": call}
                row["others_cores"] = others
                row["attempts"] = attempts
                res = child_result(r.stdout)
                if r.returncode != 0 or res is None:
                    why = "timed out" if r.timed_out else f"exit {r.returncode}"
                    tail = (r.stderr.strip().splitlines() or ["?"])[-1][:200]
                    row["error"] = f"{why}: {tail}"
                    notes.append(f"{v} {mode} {peer} failed ({why}): {tail}")
                    log(f"  failed ({why}):\n{r.stderr[-3000:]}")
                else:
                    warm = res["walls"][1:] or res["walls"][:1]
                    warm_s = statistics.median(warm)
                    warm_cpu = statistics.median(res["cpus"][1:] or res["cpus"][:1])
                    cold_walls = [res["walls"][0]] + [c[0] for c in colds]
                    cold_cpus = [res["cpus"][0]] + [c[1] for c in colds]
                    cold_agree = all(c[2] == res["digests"] for c in colds)
                    row.update(
                        version=res["version"],
                        cold_cpu_mbs=sample["bytes"] / MB / statistics.median(cold_cpus),
                        warm_cpu_mbs=sample["bytes"] / MB / warm_cpu,
                        cold_mbs=sample["bytes"] / MB / statistics.median(cold_walls),
                        warm_mbs=sample["bytes"] / MB / warm_s,
                        cold_s=statistics.median(cold_walls),
                        cold_walls=cold_walls,
                        cold_cpus=cold_cpus,
                        warm_s=warm_s,
                        walls=res["walls"],
                        cpus=res["cpus"],
                        cpu_per_wall=warm_cpu / warm_s,
                        load_s=res["load_s"],
                        tokens=res["tokens"],
                        peak_rss_mb=res["peak_rss_mb"],
                        wait4_maxrss_mb=r.peak_rss_mb,
                        rss_base_mb=res["rss_base_mb"],
                        rss_docs_mb=res["rss_docs_mb"],
                        enc_rss_mb=res["peak_rss_mb"] - res["rss_base_mb"],
                        passes_agree=res["passes_agree"] and cold_agree,
                        special_probe=res["special_probe"],
                        _digests=res["digests"],
                    )
                    spread = sorted(sample["bytes"] / MB / c for c in cold_cpus)
                    log(
                        f"  cold CPU MB/s of {len(spread)} processes: "
                        + ", ".join(f"{x:.1f}" for x in spread)
                    )
                    log(
                        f"  cold {row['cold_mbs']:.2f} MB/s, warm {row['warm_mbs']:.2f} MB/s, "
                        f"peak RSS {res['peak_rss_mb']:.0f} MiB, others busy "
                        f"{row['others_cores'] if row['others_cores'] is not None else float('nan'):.2f} cores"
                    )
                rows.append(row)

    # ids: every row against tokforge single (else the first tokforge row) of its vocab
    for v in vocabs:
        vrows = [r for r in rows if r["vocab"] == v and "_digests" in r]
        ref = next(
            (r for r in vrows if r["peer"] == "tokforge" and r["mode"] == "single"),
            next((r for r in vrows if r["peer"].startswith("tokforge")), None),
        )
        for r in vrows:
            if ref is None:
                r["ids"] = "no tokforge row"
                continue
            diff = [i for i, (a, b) in enumerate(zip(r["_digests"], ref["_digests"])) if a != b]
            if len(r["_digests"]) != len(ref["_digests"]):
                r["ids"] = f"!= ({len(r['_digests'])} docs)"
            elif diff:
                r["ids"] = f"!= {len(diff)} docs, 1st #{diff[0]}"
            else:
                r["ids"] = "=" if r is not ref else "ref"
            if not r["passes_agree"]:
                r["ids"] += " (passes differ!)"
        # ratios: tokforge MB/s / peer MB/s, same vocab and mode; numpy rows against
        # tokforge-np where it exists. Single thread: CPU time (the machine is shared, and
        # CPU time is what other processes disturb least); batch: wall time (it measures
        # the use of several cores).
        for r in vrows:
            base_name = "tokforge"
            if r["peer"].endswith("-np") and any(
                q["peer"] == "tokforge-np" and q["mode"] == r["mode"] for q in vrows
            ):
                base_name = "tokforge-np"
            base = next(
                (q for q in vrows if q["peer"] == base_name and q["mode"] == r["mode"]), None
            )
            if base is not None:
                key = "_cpu_mbs" if r["mode"] == "single" else "_mbs"
                r["vs"] = base_name
                r["tf_ratio_warm"] = base["warm" + key] / r["warm" + key]
                r["tf_ratio_cold"] = base["cold" + key] / r["cold" + key]

    headers = [
        "vocab",
        "mode",
        "thr",
        "peer",
        "cold MB/s",
        "warm MB/s",
        "cold cpu",
        "warm cpu",
        "tf/peer warm",
        "tf/peer cold",
        "peak RSS MiB",
        "+enc MiB",
        "cpu/wall",
        "others",
        "ids",
    ]
    table_rows = []
    for r in rows:
        if "error" in r:
            table_rows.append(
                [
                    r["vocab"],
                    r["mode"],
                    r["threads"],
                    r["peer"],
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    "error",
                ]
            )
            continue
        table_rows.append(
            [
                r["vocab"],
                r["mode"],
                r["threads"],
                r["peer"],
                f"{r['cold_mbs']:.1f}",
                f"{r['warm_mbs']:.1f}",
                f"{r['cold_cpu_mbs']:.1f}",
                f"{r['warm_cpu_mbs']:.1f}",
                _ratio(r.get("tf_ratio_warm"), r),
                _ratio(r.get("tf_ratio_cold"), r),
                round(r["peak_rss_mb"]),
                round(r["enc_rss_mb"]),
                round(r["cpu_per_wall"], 2),
                None if r["others_cores"] is None else round(r["others_cores"], 2),
                r.get("ids", "-"),
            ]
        )
    align = "lllrrrrrrrrrrrl"
    out = [format_table(headers, table_rows, align=align), ""]

    all_same = all(r.get("ids") in ("=", "ref") for r in rows if "error" not in r)
    out.append(
        "ids identical across all peers, modes and passes: "
        + ("YES" if all_same else "NO (see the ids column)")
    )
    disturbed = [
        f"{r['vocab']} {r['mode']} {r['peer']} ({r['others_cores']:.2f})"
        for r in rows
        if r.get("others_cores") is not None and r["others_cores"] > DISTURBED
    ]
    if disturbed:
        out.append(
            f"disturbed rows (other processes kept > {DISTURBED} cores busy in every attempt; "
            "their MB/s are low): " + ", ".join(disturbed)
        )
    # targets of the issue
    for v in vocabs:

        def get(peer, mode, v=v):
            return next(
                (
                    r
                    for r in rows
                    if r["vocab"] == v
                    and r["peer"] == peer
                    and r["mode"] == mode
                    and "error" not in r
                ),
                None,
            )

        # issue 15: one thread, CPU time, >= 1.2 x gigatoken (numpy and .tolist()) and fastokens
        for ours, peer in (
            ("tokforge-np", "gigatoken-np"),
            ("tokforge", "gigatoken-list"),
            ("tokforge", "fastokens"),
            ("tokforge-np", "tokforge"),
        ):
            a, b = get(ours, "single"), get(peer, "single")
            if a and b:
                xw = a["warm_cpu_mbs"] / b["warm_cpu_mbs"]
                xc = a["cold_cpu_mbs"] / b["cold_cpu_mbs"]
                goal = 1.0 if peer == "tokforge" else 1.2
                ok = xw >= goal and xc >= goal
                out.append(
                    f"target {v}: single {ours} / {peer} (CPU time) = {xw:.2f}x warm, "
                    f"{xc:.2f}x cold (>= {goal}): {'PASS' if ok else 'FAIL'}"
                )
        tf1, tt1 = get("tokforge", "single"), get("tiktoken", "single")
        if tf1 and tt1:
            x = tf1["warm_mbs"] / tt1["warm_mbs"]
            xc = tf1["cold_mbs"] / tt1["cold_mbs"]
            out.append(
                f"target {v}: single-thread tokforge / tiktoken = {x:.2f}x warm, {xc:.2f}x cold "
                f"(>= 2): {'PASS' if x >= 2 else 'FAIL'}"
            )
        # issue 15: a batch on 2 threads >= 1.8 x the same output (lists or numpy) on one
        for bp in ("tokforge", "tokforge-np"):
            one, tfb = get(bp, "single"), get(bp, "batch")
            if one and tfb:
                x = tfb["warm_mbs"] / one["warm_mbs"]
                xc = tfb["cold_mbs"] / one["cold_mbs"]
                out.append(
                    f"target {v}: batch {bp} on {args.threads} threads / {bp} single = "
                    f"{x:.2f}x warm, {xc:.2f}x cold (>= 1.8): {'PASS' if x >= 1.8 else 'FAIL'}"
                )
    out.append("")
    out.append(
        f"sample: {sample['bytes'] / MB:.2f} MB ({sample['bytes'] / MIB:.2f} MiB) of UTF-8, "
        f"{sample['documents']} documents = runs of whole paragraphs of >= {args.doc_bytes} B "
        f"(median {sample['doc_bytes_median']} B, max {sample['doc_bytes_max']} B); Debian corpus "
        f"{sample['debian_corpus']['bytes'] / MIB:.1f} MiB (benches/corpus.py, sha256 "
        f"{sample['debian_corpus']['sha256'][:16]}…) + corpora/*.txt ({sample['corpora_files']} "
        f"files, {sample['corpora_bytes'] / MB:.2f} MB); sample sha256 {sample['sha256'][:16]}…"
    )
    if sample["dropped_documents"]:
        probes = sorted(
            {r["special_probe"] for r in rows if r.get("special_probe") and r["mode"] == "single"}
        )
        out.append(
            f"dropped {sample['dropped_documents']} document(s), {sample['dropped_bytes']} B, that "
            "hold special-token text (e.g. '<|endoftext|>'): gigatoken always matches special "
            "tokens and cannot encode them as ordinary text"
            + (f" (its encode_ordinary on such a document: {'; '.join(probes)})" if probes else "")
        )
    out.append(
        "MB = 10^6 bytes of input; MB/s of wall time, and of CPU time ('cpu' columns: the "
        "child's user + system time, which other processes sharing the machine disturb least). "
        f"cold: 1st pass in a fresh process after loading, median of {args.cold_runs} "
        "processes; warm: median "
        f"of {args.repeat} more passes over the same documents"
        + (" (new str objects each pass, made before it is timed)" if args.new_strs else "")
        + ". tf/peer: tokforge's MB/s / the "
        "peer's, same vocab, mode and phase (> 1: tokforge faster; -np rows against tokforge-np "
        "where it exists; CPU time in single mode, wall time in batch mode). peak RSS: the child process's own peak "
        "(VmHWM over loading and the passes, not the hashing of ids: interpreter, the sample as "
        "str documents, the tokenizer, one pass's output); +enc: that peak minus the RSS after "
        "loading the tokenizer. cpu/wall: the child's CPU time / wall time in the warm passes. "
        "others: cores that other processes (and the hypervisor's steal) kept busy on average "
        "in the row's timed passes (/proc/stat minus the child's CPU; the larger of the cold "
        f"pass's and the warm passes'): above {DISTURBED} the row was "
        f"disturbed and was run again (up to {args.retries} times; the least disturbed run is "
        "shown). "
        "ids: '=' every pass gives the same ids as tokforge single ('ref') on every document."
    )
    out.append(
        "single: one call per document, RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false; "
        "batch: "
        + (
            f"one call per {args.batch_docs} documents"
            if args.batch_docs
            else "one call for all documents"
        )
        + f", {args.threads} threads (num_threads= and RAYON_NUM_THREADS / RAYON_RS_NUM_THREADS)."
    )
    for (m, peer), (_, call) in RUNS.items():
        if any(r["peer"] == peer and r["mode"] == m for r in rows):
            out.append(f"  {m:6s} {peer:13s} {call}")
    vs = ", ".join(f"{k} {versions.get(k)}" for k in ("tokforge", *PEER_PINS))
    mi = machine_info()
    load1 = _loadavg()
    out.append(
        f"versions: {vs} ({build}). machine: {mi['cpu']}, {mi['cores']} cores, Python {mi['python']}. "
        f"load average before/after: {load0} / {load1}."
    )
    out.extend(notes)
    text = "\n".join(out)
    if args.json:
        print(text, file=sys.stderr)
        for r in rows:
            print(json_line({k: val for k, val in r.items() if not k.startswith("_")}))
        print(
            json_line(
                {
                    "summary": True,
                    "ids_identical": all_same,
                    "sample": sample,
                    "threads": args.threads,
                    "batch_docs": args.batch_docs,
                    "new_strs": args.new_strs,
                    "repeat": args.repeat,
                    "versions": versions,
                    "tokforge_build": build,
                    "machine": mi,
                    "loadavg_before": load0,
                    "loadavg_after": load1,
                }
            )
        )
    else:
        print(text)
    return 0 if all_same else 1


def _ratio(x, r):
    return None if x is None else f"{x:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
