"""The same tiktoken calls through ``tokforge.tiktoken`` and through ``tiktoken`` 0.14.

What a user gets by changing ``import tiktoken`` to ``import tokforge.tiktoken as tiktoken``:
each row times one call pattern on the repo's corpora (``corpora/*.txt``: 1.4 MB of
multilingual text and code): per document (a user's loop, one thread), per line (short texts:
the per-call overhead), and as a batch on ``--threads`` threads. Each library runs in a
child process of its own per row: ``cold`` is the first pass (empty caches: tokforge keeps a
bounded per-thread cache of encoded pieces), ``warm`` the best of ``--repeat`` more passes (the
machine is shared: the fastest pass is the least disturbed). Single-thread rows are timed in
process CPU time, which other jobs on a shared machine barely change; batch rows in wall time. Every pass's output is hashed and
both libraries' hashes must agree, so the rows time equal results.

    .venv/bin/python benches/tiktoken_compat.py                    # cl100k_base and o200k_base
    .venv/bin/python benches/tiktoken_compat.py --encodings r50k_base --repeat 3 --json

Rank files come from tiktoken's cache, filled offline from PyPI packages (tests/tiktoken_env.py).
Throughput is MB/s of UTF-8 text (decode rows: of the text produced).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from common import format_table, installed_version, json_line, machine_info  # noqa: E402

MB = 1_000_000

#: row name -> (what it times, function of (enc, data, threads))
CALLS = {
    "encode, per document": (
        "[enc.encode(d) for d in docs]",
        lambda enc, d, t: [enc.encode(x) for x in d["docs"]],
    ),
    "encode_ordinary, per document": (
        "[enc.encode_ordinary(d) for d in docs]",
        lambda enc, d, t: [enc.encode_ordinary(x) for x in d["docs"]],
    ),
    "encode, per line": (
        "[enc.encode(s) for s in lines]",
        lambda enc, d, t: [enc.encode(x) for x in d["lines"]],
    ),
    "encode_to_numpy, per document": (
        "[enc.encode_to_numpy(d) for d in docs]",
        lambda enc, d, t: [enc.encode_to_numpy(x).tolist() for x in d["docs"]],
    ),
    "encode_batch": (
        "enc.encode_batch(docs, num_threads=T)",
        lambda enc, d, t: enc.encode_batch(d["docs"], num_threads=t),
    ),
    "encode_ordinary_batch": (
        "enc.encode_ordinary_batch(docs, num_threads=T)",
        lambda enc, d, t: enc.encode_ordinary_batch(d["docs"], num_threads=t),
    ),
    "decode, per document": (
        "[enc.decode(ids) for ids in doc_ids]",
        lambda enc, d, t: [enc.decode(x) for x in d["ids"]],
    ),
}


def load_docs() -> tuple[list[str], list[str]]:
    # "<|" -> "< |": special-token text (one code file quotes <|endoftext|>) would make the
    # default encode() raise; the rows time the default call
    docs = [
        p.read_text(encoding="utf-8").replace("<|", "< |")
        for p in sorted((ROOT / "corpora").glob("*.txt"))
    ]
    lines = [line for doc in docs for line in doc.splitlines() if line.strip()]
    return docs, lines


def child(lib: str, name: str, row: str, threads: int, repeat: int) -> dict:
    """One row for one library in this fresh process: the first pass (cold: empty caches) and
    the best of ``repeat`` more (warm), with a digest of the output."""
    if lib == "tiktoken":
        import tiktoken
    else:
        import tokforge.tiktoken as tiktoken
    enc = tiktoken.get_encoding(name)
    docs, lines = load_docs()
    data = {"docs": docs, "lines": lines}
    if "decode" in row:
        import tiktoken as reference

        data["ids"] = reference.get_encoding(name).encode_ordinary_batch(docs)
    call = CALLS[row][1]
    # one thread: CPU time of the process (other jobs on the machine barely change it);
    # batch rows: wall time (their point is using several cores)
    clock = time.perf_counter if "batch" in row else time.process_time
    times, digests = [], set()
    for _ in range(1 + repeat):
        t0 = clock()
        result = call(enc, data, threads)
        times.append(clock() - t0)
        digests.add(hashlib.sha256(repr(result).encode()).hexdigest())
    return {"cold_s": times[0], "warm_s": min(times[1:]), "digests": sorted(digests)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encodings", default="cl100k_base,o200k_base")
    ap.add_argument("--threads", type=int, default=2, help="threads for the batch rows")
    ap.add_argument("--repeat", type=int, default=2, help="warm passes after the cold one")
    ap.add_argument("--json", action="store_true", help="JSON lines on stdout, table on stderr")
    ap.add_argument("--child", nargs=3, metavar=("LIB", "ENCODING", "ROW"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    from tiktoken_env import tiktoken_cache

    cache = tiktoken_cache(ROOT / ".cache" / "tiktoken-suite" / "cache")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    if args.child:
        print(json.dumps(child(*args.child, args.threads, args.repeat)))
        return 0

    docs, lines = load_docs()
    size = {
        "docs": sum(len(d.encode()) for d in docs),
        "lines": sum(len(s.encode()) for s in lines),
    }
    out = sys.stderr if args.json else sys.stdout
    info = {
        "bench": "tiktoken_compat",
        "tiktoken": installed_version("tiktoken"),
        "docs": len(docs),
        "lines": len(lines),
        "mb": round(size["docs"] / MB, 3),
        "threads": args.threads,
        "repeat": args.repeat,
        **machine_info(),
    }
    if args.json:
        print(json_line(info))
    rows = []
    for name in args.encodings.split(","):
        for row, (code, _) in CALLS.items():
            nbytes = size["lines"] if "line" in row else size["docs"]
            res = {}
            for lib in ("tiktoken", "tokforge"):
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    lib,
                    name,
                    row,
                    "--threads",
                    str(args.threads),
                    "--repeat",
                    str(args.repeat),
                ]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    raise SystemExit(f"{lib} {name} {row} failed:\n{r.stderr}")
                res[lib] = json.loads(r.stdout.strip().splitlines()[-1])
            if (
                len(res["tiktoken"]["digests"]) != 1
                or res["tiktoken"]["digests"] != res["tokforge"]["digests"]
            ):
                raise SystemExit(f"{name} {row}: tokforge and tiktoken give different results")
            mbps = {
                (lib, kind): nbytes / MB / res[lib][f"{kind}_s"]
                for lib in res
                for kind in ("cold", "warm")
            }
            cold = mbps["tokforge", "cold"] / mbps["tiktoken", "cold"]
            warm = mbps["tokforge", "warm"] / mbps["tiktoken", "warm"]
            rows.append(
                [
                    name,
                    row,
                    round(mbps["tiktoken", "cold"], 2),
                    round(mbps["tokforge", "cold"], 2),
                    f"{cold:.2f}x",
                    round(mbps["tiktoken", "warm"], 2),
                    round(mbps["tokforge", "warm"], 2),
                    f"{warm:.2f}x",
                ]
            )
            if args.json:
                print(
                    json_line(
                        {
                            "encoding": name,
                            "call": row,
                            "code": code,
                            **{f"{lib}_{kind}_mb_s": v for (lib, kind), v in mbps.items()},
                            "speedup_cold": cold,
                            "speedup_warm": warm,
                        }
                    ),
                    flush=True,
                )
    print(
        f"{info['docs']} documents / {info['lines']} lines, {info['mb']} MB; batch rows on "
        f"{args.threads} threads; cold = first pass in a fresh process, warm = best of "
        f"{args.repeat} more; single-thread rows in CPU time, batch rows in wall time; "
        f"tiktoken {info['tiktoken']}; {info.get('cpu', '')}",
        file=out,
    )
    headers = [
        "encoding",
        "call",
        "tiktoken cold",
        "tokforge cold",
        "speed-up",
        "tiktoken warm",
        "tokforge warm",
        "speed-up",
    ]
    print("MB/s", file=out)
    print(format_table(headers, rows), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
