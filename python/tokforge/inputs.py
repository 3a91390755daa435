"""Where training and analysis text comes from: paths of files and directories.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "b.txt").write_text("b"); _ = (d / "a.txt").write_text("a")
>>> [p.name for p in expand_files(d)]
['a.txt', 'b.txt']
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Union

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["PathLike", "expand_files"]


def expand_files(files: PathLike | Iterable[PathLike]) -> list[Path]:
    """Paths from a path or an iterable of paths; a directory stands for its ``*.txt`` files
    (recursively, sorted). Missing paths raise :class:`FileNotFoundError` before any work."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    out: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.txt") if q.is_file())
            if not found:
                raise InputError(f"{p}: the directory has no *.txt files")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out
