"""Where training and analysis text comes from (paths of files and directories), and the one
check of every argument that is a list of strings (texts, special tokens, units).

>>> str_list(["<s>", "</s>"], "special_tokens")
['<s>', '</s>']
>>> str_list("<s>", "special_tokens")
Traceback (most recent call last):
...
tokforge.InputError: special_tokens must be a list of str, not one str (write ['<s>'])
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "b.txt").write_text("b"); _ = (d / "a.txt").write_text("a")
>>> [p.name for p in expand_files(d)]
['a.txt', 'b.txt']
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import repeat
from pathlib import Path
from typing import Union

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["PathLike", "expand_files", "str_list"]


def str_list(value: Iterable[str], name: str) -> list[str]:
    """``value`` as a list of str, or :class:`InputError` naming ``name``: a single str (or
    bytes) is refused rather than split into characters, and a non-str element is named by its
    index."""
    if isinstance(value, (str, bytes, bytearray)):
        raise InputError(
            f"{name} must be a list of str, not one {type(value).__name__} (write [{value!r}])"
        )
    try:
        out = list(value)
    except TypeError:
        raise InputError(
            f"{name} must be a list of str, not {type(value).__name__}"
        ) from None
    if all(map(isinstance, out, repeat(str))):  # the common case, without a Python loop
        return out
    i, v = next((i, v) for i, v in enumerate(out) if not isinstance(v, str))
    raise InputError(f"{name}[{i}] is {type(v).__name__}, not str")


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
