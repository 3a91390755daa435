"""LiB vs BPE at a realistic size: the claims of Yang (2024) tested on >= 1 MB per language.

The text is Debian's translated documentation, pinned in ``benches/corpus.py`` and fetched with
``apt-get download``: the Debian Administrator's Handbook (HTML to text), the Debian Reference
(plain text) and the translated man pages (roff source), per language. Documents of a language's
sources are interleaved byte-balanced (as ``benches/corpus.py`` does); every tenth document is
held out, the rest is training text, until the training part reaches ``--train-mb`` MiB and the
held-out part ``--test-kb`` KiB. Technical documentation carries untranslated commands, paths
and code, so every language's text is partly English; that is what this text is.

Per language, three tokenizers at each vocabulary size V (4k and 16k ids, all counting the 256
byte tokens):

- **LiB**: tokforge defaults (``LibConfig``: ``max_chunk_len`` 16, protected characters, the
  ``lib`` segmenter), ``--lib-steps`` articles of 200 lines (default 1000, ~10 passes over
  1 MiB), trained once; the first V - 256 units of the cleaned lexicon by priority are kept, as
  ``lib_model.train(vocab_size=V)`` does (docs/lib.md §8.4). If the cleaned lexicon is smaller
  the row says "saturated". Multiword units allowed.
- **BPE**: byte-level BPE with the cl100k pre-tokenizer, trained to V.
- **BPE, no pre-tokenizer**: the same trainer with one piece per line (``[^\\n]+|\\n``), so its
  merges may cross spaces (multiword tokens), as LiB's units may.

Counted on the held-out lines, each encoded alone: tokens, token types used, and the share of
multiword tokens among the vocabulary (whitespace strictly inside; docs/lib.md §7).

    python benches/lib_paper.py run [--langs en,de,...] [--json]   # docs/lib.md §10, ~8 min
    python benches/lib_paper.py slice --kb 160 --out FILE          # the mixed-docs test text

``slice`` writes the mixed documentation text used by the LiB goldens and speed benchmark
(``tests/golden/lib_docs_mixed.txt``): handbook paragraphs of eight languages interleaved, cut
to ``--kb`` KiB at a line end.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

HANDBOOK = "usr/share/doc/debian-handbook/html"

# language -> sources (package, folder inside it, suffixes, kind, handbook language folder)
_SRC = tuple[str, str, tuple[str, ...], str]


def _handbook(code: str) -> _SRC:
    return ("debian-handbook", f"{HANDBOOK}/{code}", (".html",), "html")


def _reference(lang: str) -> _SRC:
    return (f"debian-reference-{lang}", "usr/share/debian-reference", (".txt",), "text")


def _man(pkg: str) -> _SRC:
    return (pkg, "usr/share/man", corpus._MAN, "man")


LANGS: dict[str, list[_SRC]] = {
    "en": [_handbook("en-US"), _reference("en"), _man("manpages")],
    "de": [_handbook("de-DE"), _reference("de"), _man("manpages-de")],
    "fr": [_handbook("fr-FR"), _reference("fr"), _man("manpages-fr")],
    "es": [_handbook("es-ES"), _reference("es"), _man("manpages-es")],
    "it": [_handbook("it-IT"), _reference("it"), _man("manpages-it")],
    "pt": [_handbook("pt-BR"), _reference("pt"), _man("manpages-pt-br")],
    "ru": [_handbook("ru-RU"), _man("manpages-ru")],
    "ja": [_handbook("ja-JP"), _reference("ja")],
    "zh": [_handbook("zh-CN"), _reference("zh-cn")],
    "pl": [_handbook("pl-PL"), _man("manpages-pl")],
    "nl": [_handbook("nl-NL"), _man("manpages-nl")],
    "uk": [_man("manpages-uk")],
}
MIXED_LANGS = ("en-US", "de-DE", "fr-FR", "es-ES", "ru-RU", "ja-JP", "zh-CN", "ar-MA")


def _packages(srcs: list[_SRC]) -> list[str]:
    return sorted({s[0] for s in srcs})


def roots(names: list[str], cache: Path, *, log=print) -> dict[str, Path]:
    debs = corpus.fetch_packages(cache, log=log, names=names)
    return corpus.extract_packages(cache, debs, log=log)


def interleave(streams: list[Iterator[bytes]]) -> Iterator[bytes]:
    """Documents of several sources, always from the one that gave the fewest bytes so far."""
    heap = [(0, i) for i in range(len(streams))]
    sizes = [0] * len(streams)
    while heap:
        _, i = heapq.heappop(heap)
        doc = next(streams[i], None)
        if doc is None:
            continue
        sizes[i] += len(doc)
        heapq.heappush(heap, (sizes[i], i))
        yield doc


def _streams(srcs: list[_SRC], r: dict[str, Path]) -> list[Iterator[bytes]]:
    out = []
    for pkg, sub, suffixes, kind in srcs:
        files = corpus._source_files(r[pkg] / sub, suffixes)
        if not files:
            raise corpus.CorpusError(f"{pkg}: no files under {sub}")
        out.append(corpus._docs(files, kind))
    return out


def _lines(doc: bytes) -> list[str]:
    return [s for s in (line.strip() for line in doc.decode("utf-8").split("\n")) if s]


def language_split(
    lang: str, cache: Path, *, train_mb: float, test_kb: float, log=print
) -> tuple[list[str], list[str]]:
    """Training and held-out lines of one language (every tenth document held out; the
    held-out part may stay below ``test_kb`` when the sources run out, but not below 32 KiB)."""
    srcs = LANGS[lang]
    r = roots(_packages(srcs), cache, log=log)
    train: list[str] = []
    test: list[str] = []
    nt = nh = 0
    for k, doc in enumerate(interleave(_streams(srcs, r))):
        if nt >= train_mb * corpus.MIB and nh >= test_kb * 1024:
            break
        lines = _lines(doc)
        size = sum(len(s.encode()) + 1 for s in lines)
        if k % 10 == 9:
            if nh < test_kb * 1024:
                test.extend(lines)
                nh += size
        elif nt < train_mb * corpus.MIB:
            train.extend(lines)
            nt += size
    if nt < train_mb * corpus.MIB or nh < min(test_kb, 32) * 1024:
        raise corpus.CorpusError(
            f"{lang}: only {nt / corpus.MIB:.2f} MiB training / {nh / 1024:.0f} KiB held-out text"
        )
    return train, test


def mixed_slice(kb: float, cache: Path, *, log=print) -> str:
    """Handbook paragraphs of ``MIXED_LANGS`` interleaved, cut at a line end after ``kb`` KiB."""
    srcs = [_handbook(c) for c in MIXED_LANGS]
    r = roots(["debian-handbook"], cache, log=log)
    out: list[str] = []
    n = 0
    paragraphs = [(p for d in st for p in d.split(b"\n\n")) for st in _streams(srcs, r)]
    for doc in interleave(paragraphs):
        for line in _lines(doc):
            b = len(line.encode()) + 1
            if n + b > kb * 1024:
                return "\n".join(out) + "\n"
            out.append(line)
            n += b
    return "\n".join(out) + "\n"


# ---- the experiment --------------------------------------------------------------------------
SIZES = (4096, 16384)
NO_PRETOKENIZER = r"[\s\S]+"  # one piece per line: BPE merges may cross spaces


def multiword(tok, ids) -> float:
    from tokforge import lib_model

    ids = list(ids)
    if not ids:
        return 0.0
    n = sum(lib_model.is_multiword(tok.id_to_token(i).decode("utf-8", "replace")) for i in ids)
    return n / len(ids)


def measure(tok, name: str, test: list[str]) -> dict:
    import numpy as np

    rows = tok.encode_batch(test, disallowed_special=())
    flat = np.fromiter((i for r in rows for i in r), dtype=np.int64)
    ids, counts = np.unique(flat, return_counts=True)
    multi = {int(i) for i in ids if multiword(tok, [int(i)]) > 0}
    test_bytes = sum(len(s.encode("utf-8")) for s in test)
    return {
        "tokenizer": name,
        "vocab": tok.vocab_size,
        "tokens": int(flat.size),
        "types": int(ids.size),
        "tokens_per_byte": round(flat.size / test_bytes, 4),
        "mw_vocab": round(multiword(tok, range(tok.vocab_size)), 3),
        "mw_tokens": round(
            sum(int(c) for i, c in zip(ids, counts) if int(i) in multi) / max(1, flat.size), 3
        ),
    }


def run_language(lang: str, args, log) -> list[dict]:
    from tokforge import Tokenizer, lib_model
    from tokforge.lib_model import LibConfig

    train, test = language_split(
        lang, args.cache, train_mb=args.train_mb, test_kb=args.test_kb, log=log
    )
    base = {
        "lang": lang,
        "train_bytes": sum(len(s.encode("utf-8")) + 1 for s in train),
        "test_bytes": sum(len(s.encode("utf-8")) for s in test),
    }
    cfg = LibConfig(steps=args.lib_steps)
    t0 = time.process_time()
    model, info = lib_model.train(sentences=train, vocab_size=None, config=cfg)
    t_lib = time.process_time() - t0
    full = json.loads(Tokenizer(model).to_json())
    rows = []
    for v in SIZES:
        row0 = {**base, "size": v}
        if info.units + 256 < v:
            rows.append({**row0, "tokenizer": "LiB", "note": f"saturated at {info.units} units"})
        else:
            # the first v - 256 units by priority: what lib_model.train(vocab_size=v) keeps
            # (docs/lib.md §8.4), without training again
            cut = {**full, "units": full["units"][: v - 256]}
            lib = Tokenizer.from_json_str(json.dumps(cut))
            rows.append({**row0, **measure(lib, "LiB", test), "train_cpu_s": round(t_lib, 1)})
        for name, pattern in (("BPE cl100k", "cl100k"), ("BPE no pre-tok", NO_PRETOKENIZER)):
            t0 = time.process_time()
            bpe = Tokenizer.train(texts=train, vocab_size=v, pattern=pattern)
            t = time.process_time() - t0
            rows.append({**row0, **measure(bpe, name, test), "train_cpu_s": round(t, 1)})
        log(json.dumps(rows[-3:], ensure_ascii=False))
    rows.append(
        {
            **base,
            "size": "emergent",
            "tokenizer": "LiB",
            "vocab": info.units + 256,
            "note": f"{info.steps} steps, {info.lexicon_size} in L, {info.units} after clean",
        }
    )
    return rows


def summary(rows: list[dict]) -> list[str]:
    out = []
    for v in SIZES:
        for other in ("BPE cl100k", "BPE no pre-tok"):
            tok = typ = n = 0
            for lang in sorted({r["lang"] for r in rows}):
                lib = [
                    r
                    for r in rows
                    if r["lang"] == lang
                    and r["size"] == v
                    and r["tokenizer"] == "LiB"
                    and "tokens" in r
                ]
                bpe = [
                    r
                    for r in rows
                    if r["lang"] == lang and r["size"] == v and r["tokenizer"] == other
                ]
                if lib and bpe and bpe[0]["vocab"] == lib[0]["vocab"]:
                    n += 1
                    tok += lib[0]["tokens"] < bpe[0]["tokens"]
                    typ += lib[0]["types"] < bpe[0]["types"]
            out.append(
                f"{v}: LiB vs {other}: fewer tokens in {tok}/{n} languages, fewer types in {typ}/{n}"
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cache", type=Path, default=corpus.DEFAULT_DATA_DIR, help="package cache")
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("slice")
    s.add_argument("--kb", type=float, default=160)
    s.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--langs", default=",".join(LANGS))
    r.add_argument("--train-mb", type=float, default=1.0)
    r.add_argument("--test-kb", type=float, default=64)
    r.add_argument("--lib-steps", type=int, default=1000, help="LiB articles of 200 lines")
    r.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.what == "slice":
        args.out.write_text(mixed_slice(args.kb, args.cache), encoding="utf-8")
        return 0
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.time()
    rows = [row for lang in args.langs.split(",") for row in run_language(lang, args, log)]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        cols = ["lang", "size", "tokenizer", "vocab", "tokens", "types", "tokens_per_byte",
                "mw_vocab", "mw_tokens", "train_cpu_s", "note"]  # fmt: skip
        print(table(rows, cols))
    for line in summary(rows):
        print(line)
    print(f"wall time {time.time() - t0:.0f} s")
    return 0


def table(rows: list[dict], cols: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = lambda xs: "| " + " | ".join(x.rjust(w) for x, w in zip(xs, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cols), sep, *(line(x) for x in cells)])


if __name__ == "__main__":
    raise SystemExit(main())
