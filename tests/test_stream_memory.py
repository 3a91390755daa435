"""Streamed encoding holds a bounded amount of text, whatever the stream's length: 1 GB
generated lazily (BPE, a preset pattern) and 48 MB (LiB) go through ``encode_stream`` in a
child whose peak RSS (``ru_maxrss``) may not grow by more than 48 MB over its size before the
stream (benches/memory.py runs the same child at 512 MB and more)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches"))
from memory import run


@pytest.mark.parametrize("kind, mb", [("bpe", 1024), ("lib", 48)])
def test_streamed_encoding_memory_is_bounded(kind, mb):
    r = run(kind, mb)
    assert r["out"] > mb * 100_000  # the ids of the whole stream were produced
    grew = r["peak_rss_mb"] - r["rss_before_mb"]
    assert grew < 48, f"{kind}: {mb} MB streamed raised peak RSS by {grew:.0f} MB"
