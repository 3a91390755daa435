"""Distributed counting benchmark (docs/distributed.md §6): piece counting on a local Ray with 1
and 2 workers against local multi-threaded counting, on the Debian corpus of benches/corpus.py
cut into shards, plus the sizes that decide how far it scales: count-table bytes and reduce
traffic per GB of input, unique pieces as the input grows (Heaps' law fit), and the driver's
merge phase.

    .venv/bin/python benches/distributed.py              # 98 MiB corpus, 16 text shards
    .venv/bin/python benches/distributed.py --mb 24 --json

Every configuration counts the same shards and must give the same table (checked). Ray's start
(`ray.init`) is timed apart from the counting it serves.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import format_table, json_line, machine_info  # noqa: E402
from corpus import build_corpus  # noqa: E402

GB = 1e9


def shard_corpus(corpus: Path, mb: float, n: int, dest: Path) -> tuple[list[Path], int]:
    """The first ``mb`` MiB of the corpus (cut at a blank line) in ``n`` text shards of whole
    paragraphs; returns the shards and their bytes."""
    data = corpus.read_bytes()
    limit = int(mb * 2**20)
    if limit < len(data):
        cut = data.rfind(b"\n\n", 0, limit)
        data = data[: cut + 2 if cut > 0 else limit]
    step = len(data) // n
    shards, start = [], 0
    for i in range(n):
        end = len(data) if i == n - 1 else data.find(b"\n\n", start + step) + 2
        if end < 2:
            end = len(data)
        p = dest / f"shard-{i:03d}.txt"
        p.write_bytes(data[start:end])
        shards.append(p)
        start = end
    return shards, len(data)


def _warm() -> int:
    from tokforge.counts import count_pieces

    return len(count_pieces(texts=["warm up"]))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=98, help="corpus slice in MiB (default 98)")
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--pattern", default="cl100k")
    ap.add_argument("--vocab-size", type=int, default=32768, help="for the driver's merge phase")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import ray
    from tokforge import Tokenizer
    from tokforge import distributed as td
    from tokforge.counts import count_pieces

    warm = ray.remote(_warm)
    corpus = build_corpus(HERE / "data", args.mb)
    rows, out = [], []
    with tempfile.TemporaryDirectory() as tmp:
        shards, nbytes = shard_corpus(corpus, args.mb, args.shards, Path(tmp))
        gb = nbytes / GB

        # Heaps' law: unique pieces of growing prefixes (whole shards)
        growth = []
        for k in sorted({min(k, args.shards) for k in (1, 2, 4, 8, args.shards)}):
            sub = shards[:k]
            t = count_pieces(sub, pattern=args.pattern)
            growth.append((t.bytes, len(t), len(t.to_bytes())))

        # local: one process, rayon threads
        local = {}
        for threads in (1, 2):
            t0, c0 = time.perf_counter(), time.process_time()
            table = count_pieces(shards, pattern=args.pattern, num_threads=threads)
            s, cpu = time.perf_counter() - t0, time.process_time() - c0
            local[threads] = table
            rows.append([f"local, {threads} thread(s)", s, nbytes / 2**20 / s, cpu, "-", "-",
                         "-"])  # fmt: skip
            out.append({"config": f"local-{threads}", "seconds": s, "cpu_s": cpu,
                        "bytes": nbytes})  # fmt: skip
        want = local[2]

        for workers in (1, 2):
            t0 = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     object_store_memory=200 << 20, configure_logging=False)  # fmt: skip
            init_s = time.perf_counter() - t0
            # start the worker processes and import tokforge in them: not counting work
            ray.get([warm.remote() for _ in range(workers)])
            st = td.CountStats()
            t0 = time.perf_counter()
            table = td.count(shards, pattern=args.pattern, stats=st)
            s = time.perf_counter() - t0
            ray.shutdown()
            assert table == want, "distributed table differs from the local one"
            traffic = st.table_bytes + st.reduce_bytes
            cpu = f"{st.count_cpu_s:.2f} + {st.reduce_cpu_s:.2f}"
            rows.append([f"Ray, {workers} worker(s)", s, nbytes / 2**20 / s, cpu, init_s,
                         st.table_bytes / gb / 2**20, traffic / gb / 2**20])  # fmt: skip
            out.append({"config": f"ray-{workers}", "seconds": s, "ray_init_s": init_s,
                        "count_cpu_s": st.count_cpu_s, "reduce_cpu_s": st.reduce_cpu_s,
                        "tasks": st.tasks, "merges": st.merges, "table_bytes": st.table_bytes,
                        "reduce_bytes": st.reduce_bytes, "final_bytes": st.final_bytes})  # fmt: skip

        # the driver's merge phase on the final table
        before = rss_mb()
        t0 = time.perf_counter()
        tok = Tokenizer.train_from_counts(want, vocab_size=args.vocab_size)
        merge_s = time.perf_counter() - t0
        after = rss_mb()

    final = len(want.to_bytes())
    ranked = want.most_common(len(want))
    once = sum(1 for _, c in ranked if c == 1)
    piece_bytes = sum(len(p) for p, _ in ranked)
    summary = {
        "input_mib": nbytes / 2**20,
        "shards": args.shards,
        "pattern": args.pattern,
        "unique_pieces": len(want),
        "piece_bytes": piece_bytes,
        "final_table_bytes": final,
        "table_bytes_per_piece": final / len(want),
        "pieces_seen_once": once,
        "heaps": [{"bytes": b, "unique": u, "table_bytes": tb} for b, u, tb in growth],
        "merge_seconds": merge_s,
        "merges": len(tok.merges),
        "driver_peak_rss_mb_before_merges": before,
        "driver_peak_rss_mb_after_merges": after,
    }
    # Heaps' law U = K * N^beta from the smallest and the largest prefix
    import math

    (b0, u0, _), (b1, u1, _) = growth[0], growth[-1]
    beta = math.log(u1 / u0) / math.log(b1 / b0)
    summary["heaps_beta"] = beta
    summary["unique_pieces_at_1tb_extrapolated"] = u1 * (1e12 / b1) ** beta
    if args.json:
        print(json_line({"machine": machine_info()}))
        for o in out:
            print(json_line(o))
        print(json_line(summary))
        return 0
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"{nbytes / 2**20:.1f} MiB in {args.shards} shards, pattern {args.pattern}; "
          f"{machine_info()['cores']} cores, load average {load} at the end")  # fmt: skip
    print(format_table(
        ["counting", "wall s", "MiB/s", "CPU s (count + reduce)", "ray.init s", "tables MiB/GB",
         "reduce traffic MiB/GB"],
        rows,
    ))  # fmt: skip
    print(f"\nfinal table: {len(want):,} unique pieces, {final / 2**20:.2f} MiB binary "
          f"({final / len(want):.1f} B/piece); piece bytes {piece_bytes / 2**20:.2f} MiB; "
          f"{once / len(want):.0%} of pieces seen once")  # fmt: skip
    print("unique pieces as the input grows (Heaps' law):")
    for b, u, tb in growth:
        print(f"  {b / 2**20:8.1f} MiB -> {u:10,} pieces, table {tb / 2**20:7.2f} MiB")
    print(f"  beta = {beta:.3f}; extrapolated to 1 TB: "
          f"{summary['unique_pieces_at_1tb_extrapolated'] / 1e6:,.0f} M unique pieces")  # fmt: skip
    print(f"driver merge phase: {len(tok.merges)} merges in {merge_s:.1f}s; peak RSS "
          f"{before:.0f} MiB before, {after:.0f} MiB after")  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "heaps"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
