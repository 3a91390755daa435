"""The shipped corpora: small, freely licensed real text that every command uses by default.

``<lang>.txt`` holds natural language (the UDHR in 30 languages) and ``code-<lang>.txt`` source
code; ``MANIFEST.json`` gives sources, licences, sizes and sha256 of each. They ship inside the
wheel (``tokforge/_corpora``, about 1.4 MB of text), so the defaults work after ``pip install``;
``tokforge corpora --copy DIR`` writes them out where a user can read or edit them.

>>> sorted(corpus_files("code"))[:2]
['code-c', 'code-cpp']
>>> (corpus_dir() / "MANIFEST.json").is_file()
True
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["copy_corpora", "corpus_dir", "corpus_files", "manifest"]

#: the copy inside the installed package (``make dist`` refreshes it from ``corpora/``)
PACKAGED = Path(__file__).resolve().parent / "_corpora"
#: ``corpora/`` of a source checkout (an editable install runs from it)
SOURCE_TREE = Path(__file__).resolve().parents[2] / "corpora"


def _candidates() -> list[Path]:
    """Where the corpora are looked for, in order: ``$TOKFORGE_CORPORA``, a source checkout's
    ``corpora/`` (so edits there are seen at once), the copy in the package, ``./corpora``."""
    env = os.environ.get("TOKFORGE_CORPORA")
    if env:
        return [Path(env)]  # explicit: no silent fallback to other text
    return [SOURCE_TREE, PACKAGED, Path.cwd() / "corpora"]


def corpus_dir() -> Path:
    """The folder of the shipped corpora (see :func:`_candidates` for the search order);
    :class:`FileNotFoundError` says where it looked and how to fix it."""
    candidates = _candidates()
    for c in candidates:
        if (c / "MANIFEST.json").is_file():
            return c
    raise FileNotFoundError(
        "cannot find the shipped corpora (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "); this tokforge was installed without them: reinstall from a wheel "
        "(pip install --force-reinstall tokforge), set TOKFORGE_CORPORA=DIR, "
        "or pass text files explicitly"
    )


def manifest() -> dict[str, Any]:
    """The parsed ``MANIFEST.json``."""
    data: dict[str, Any] = json.loads((corpus_dir() / "MANIFEST.json").read_text("utf-8"))
    return data


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


def copy_corpora(dest: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
    """Copy the corpora (text files, ``MANIFEST.json``, ``LICENSES/``) into ``dest``; returns
    the text files written. Existing files are kept unless ``overwrite``.

    >>> import tempfile
    >>> out = copy_corpora(tempfile.mkdtemp())
    >>> sorted(p.name for p in out) == sorted(p.name for p in corpus_files().values())
    True
    """
    src, dst = corpus_dir(), Path(dest)
    names = [p.name for p in corpus_files().values()] + ["MANIFEST.json"]
    clash = [n for n in names if (dst / n).exists()]
    if clash and not overwrite:
        raise FileExistsError(
            f"{dst / clash[0]} exists ({len(clash)} corpus files already there); "
            "pass overwrite=True (CLI: --force) to replace them"
        )
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copyfile(src / n, dst / n)
    if (src / "LICENSES").is_dir():
        shutil.copytree(src / "LICENSES", dst / "LICENSES", dirs_exist_ok=True)
    return [dst / n for n in names if n.endswith(".txt")]
