"""``tokforge encode-dataset`` (:func:`tokforge.distributed.encode` on Ray) and the dataset
options of ``tokforge train`` (``--documents``, ``--column``, ``--ray [ADDRESS]``)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._cliutil import Formatter, examples

if TYPE_CHECKING:
    from .tokenizer import Tokenizer


def add_train_options(t: argparse.ArgumentParser) -> None:
    """``--documents``, ``--column`` and ``--ray`` of ``tokforge train``."""
    t.add_argument(
        "--documents", choices=["file", "line"], default="file",
        help="a document is a whole file (default) or each line, as HF tokenizers' train([file])",
    )  # fmt: skip
    t.add_argument("--column", default="text", help="text column of Parquet / JSONL shards")
    t.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="count on a Ray cluster (tokforge[ray]): ADDRESS, or a local Ray / $RAY_ADDRESS "
        "without one (write --ray=ADDRESS before file arguments)",
    )  # fmt: skip


def ray_trainer(a: argparse.Namespace) -> Optional[Callable[..., Tokenizer]]:
    """``tokforge.distributed.train`` bound to the ``--ray`` address, or None without
    ``--ray``. An existing path given right after ``--ray`` is an input file, not an address."""
    if a.ray is None:
        return None
    address = a.ray or None
    if address is not None and os.path.exists(address):
        a.files = [address, *a.files]
        address = None
    from .distributed import train

    return functools.partial(train, address=address)


def add_parser(sub: Any) -> None:
    """Register ``tokforge encode-dataset``."""
    p = sub.add_parser(
        "encode-dataset",
        help="encode shards (text, Parquet, JSONL) to token-id shards on Ray, resumably",
        description="Encode text, Parquet or JSONL shards to token-id shards (Parquet "
        "list<uint32>, or .npy ids + offsets) on Ray; a manifest records finished shards, so a "
        "second run after a crash skips them.",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge encode-dataset -t tok.json -o ids/ shards/",
            "tokforge encode-dataset -t tok.json -o ids/ --format npy --column text data/*.parquet",
            "tokforge encode-dataset -t tok.json -o ids/ --ray ray://head:10001 shards/",
        ),
    )
    p.add_argument("files", nargs="+", help="shards or directories of shards")
    p.add_argument("-t", "--tokenizer", required=True, help="tokenizer.json, .tiktoken, tekken")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--column", default="text", help="text column of Parquet / JSONL shards")
    p.add_argument("--documents", choices=["file", "line"], default="file",
                   help="one document per text file, or per line")  # fmt: skip
    p.add_argument("--format", choices=["parquet", "npy"], default="parquet",
                   help="output shards: Parquet list<uint32>, or .npy ids + offsets")  # fmt: skip
    p.add_argument("--allowed-special", nargs="*", default=[], metavar="TOKEN",
                   help="special tokens to encode as such ('all' for every one)")  # fmt: skip
    p.add_argument("--errors", choices=["strict", "replace", "ignore"], default="strict",
                   help="invalid UTF-8 in text shards: error, U+FFFD, or drop")  # fmt: skip
    p.add_argument("--pattern", default=None, help="pattern for a .tiktoken file")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="Ray cluster address (default: a local Ray or $RAY_ADDRESS)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    """``tokforge encode-dataset``: resumable; a second run into the same folder skips the
    shards written."""
    from .cli import ProgressBar, load_tokenizer
    from .distributed import encode

    tok = load_tokenizer(a.tokenizer, a.pattern)
    allowed = "all" if a.allowed_special == ["all"] else a.allowed_special
    bar = ProgressBar(enabled=not a.quiet)
    t0 = time.perf_counter()
    try:
        res = encode(
            a.files,
            tok,
            out=a.out,
            column=a.column,
            documents=a.documents,
            format=a.format,
            allowed_special=allowed,
            errors=a.errors,
            address=a.ray,
            progress=bar,
        )
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    info = {
        "out": str(res.out),
        "shards_written": len(res.written),
        "shards_skipped": len(res.skipped),
        "docs": res.docs,
        "tokens": res.tokens,
        "seconds": round(seconds, 3),
    }
    if a.json:
        print(json.dumps(info))
    else:
        print(
            f"encoded {info['docs']:,} documents into {info['tokens']:,} tokens "
            f"({info['shards_written']} shards written, {info['shards_skipped']} already done) "
            f"in {seconds:.2f}s -> {res.out}"
        )
    return 0
