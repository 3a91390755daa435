"""The shipped corpora: small, freely licensed real text that every command uses by default.

``corpora/<lang>.txt`` holds natural language (the UDHR in 30 languages) and
``corpora/code-<lang>.txt`` source code; ``corpora/MANIFEST.json`` gives sources and licences.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["corpus_dir", "corpus_files", "manifest"]


def corpus_dir() -> Path:
    """The ``corpora/`` folder: ``$TOKFORGE_CORPORA``, else ``./corpora``, else the source tree's."""
    candidates = []
    if os.environ.get("TOKFORGE_CORPORA"):
        candidates.append(Path(os.environ["TOKFORGE_CORPORA"]))
    candidates.append(Path.cwd() / "corpora")
    candidates.append(Path(__file__).resolve().parents[2] / "corpora")
    for c in candidates:
        if (c / "MANIFEST.json").is_file():
            return c
    raise FileNotFoundError(
        "cannot find the corpora/ folder (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "); set TOKFORGE_CORPORA or pass files explicitly"
    )


def manifest() -> dict:
    """The parsed ``MANIFEST.json``."""
    return json.loads((corpus_dir() / "MANIFEST.json").read_text(encoding="utf-8"))


def corpus_files(kind: str = "all") -> dict[str, Path]:
    """``{name: path}`` of the shipped text files, sorted by name.

    ``kind`` is ``"all"``, ``"natural"`` (``<lang>.txt``) or ``"code"`` (``code-<lang>.txt``).
    """
    if kind not in ("all", "natural", "code"):
        raise ValueError(f"kind={kind!r} is not one of 'all', 'natural', 'code'")
    out = {}
    for p in sorted(corpus_dir().glob("*.txt")):
        is_code = p.stem.startswith("code-")
        if kind == "all" or (kind == "code") == is_code:
            out[p.stem] = p
    return out
