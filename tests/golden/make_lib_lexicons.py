"""Regenerate ``tests/golden/lib_lexicons.json``: the LiB learner's lexicons on every file of
``corpora/`` and on mixed documentation text, recorded before the learner was sped up (issue
21), so that ``tests/test_lib_model.py::test_learner_lexicons_equal_goldens_on_every_corpus``
shows every later version gives the same units in the same order.

Runs (the ones ``benches/lib_model.py speed`` times; 300 articles of 20 lines):

- ``A``: ``LibConfig.reference(out_rate=0.01, life=3, article_len=20)`` (TV6 A of docs/lib.md §11);
- ``B``: ``LibConfig.reference(out_rate=0.0001, life=10, article_len=20)`` (TV6 B);
- ``default``: ``LibConfig(article_len=20)`` (tokforge defaults: protected characters,
  units of at most 16 characters).

The mixed documentation text ``tests/golden/lib_docs_mixed.txt`` is 128 KiB of the Debian
Administrator's Handbook in eight languages (``python benches/lib_paper.py slice --kb 128 --out
tests/golden/lib_docs_mixed.txt``; Debian package debian-handbook 11.20220922, GPL-2+ or
CC-BY-SA-3.0, see ``lib_docs_mixed.copyright`` next to it). Stored per run: sizes of ``L``, ``P`` and the cleaned lexicon, and the sha256
of each (units joined by ``"\\n"``, UTF-8).

    python tests/golden/make_lib_lexicons.py      # rewrites the JSON next to this file
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "lib_lexicons.json"
DOCS = HERE / "lib_docs_mixed.txt"
STEPS = 300


def configs():
    from tokforge.lib_model import LibConfig

    return {
        "A": LibConfig.reference(out_rate=0.01, life=3, article_len=20),
        "B": LibConfig.reference(out_rate=0.0001, life=10, article_len=20),
        "default": LibConfig(article_len=20),
    }


def texts(corpora: Path) -> dict[str, Path]:
    """Every corpus file by name, and the mixed documentation text as ``docs-mixed``."""
    out = {p.stem: p for p in sorted(corpora.glob("*.txt"))}
    out["docs-mixed"] = DOCS
    return out


def digest(units: list[str]) -> str:
    return hashlib.sha256("\n".join(units).encode("utf-8")).hexdigest()


def record(path: Path, run: str) -> dict[str, object]:
    """What the learner gives on one text with one run's settings."""
    from tokforge import lib_model

    sents = lib_model.read_sentences(path)
    L, P, clean = lib_model.learn(sents, steps=STEPS, config=configs()[run])
    return {
        "L": len(L),
        "P": len(P),
        "clean": len(clean),
        "sha256_L": digest(L),
        "sha256_P": digest(P),
        "sha256_clean": digest(clean),
    }


def main() -> None:
    out = {
        name: {run: record(path, run) for run in configs()}
        for name, path in texts(ROOT / "corpora").items()
    }
    OUT.write_text(json.dumps(out, indent=0, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
