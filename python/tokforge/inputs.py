"""Where training and analysis text comes from, and the one check of every argument that is a
list of strings (texts, special tokens, units).

Sources: text files (UTF-8; a file is a document), Parquet and JSONL shards (a ``column`` of
strings; a row is a document), read with ``pyarrow`` in record batches, and any iterable of str,
or of dicts such as the rows of a HF ``datasets.Dataset`` or a streaming ``IterableDataset``
(``datasets`` is not a dependency: anything that iterates rows works).

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
import secrets
import stat
from collections.abc import Iterable, Iterator
from itertools import repeat
from pathlib import Path
from typing import Any, Union

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "PathLike",
    "expand_files",
    "expand_shards",
    "shard_format",
    "read_column",
    "texts_of",
    "str_list",
    "write_atomic",
]

#: file suffix -> shard format; any other file is UTF-8 text
SHARD_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: rows per record batch read from a Parquet / JSONL shard (as many strings as the native
#: counter takes per call)
BATCH_ROWS = 8192


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
    return _expand(files, (".txt",), "*.txt files")


def expand_shards(files: PathLike | Iterable[PathLike]) -> list[Path]:
    """Like :func:`expand_files`, but a directory stands for its ``*.txt``, ``*.parquet``,
    ``*.jsonl`` and ``*.ndjson`` files (recursively, sorted): the inputs of counting and
    :mod:`tokforge.distributed`."""
    return _expand(files, (".txt", *SHARD_FORMATS), "*.txt files (nor *.parquet, *.jsonl shards)")


def _expand(files: PathLike | Iterable[PathLike], suffixes: tuple[str, ...], what: str) -> list[Path]:
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    out: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix in suffixes and q.is_file())
            if not found:
                raise InputError(f"{p}: the directory has no {what}")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out


def shard_format(path: PathLike) -> str:
    """``"parquet"``, ``"jsonl"`` or ``"text"``, by file suffix."""
    return SHARD_FORMATS.get(Path(path).suffix.lower(), "text")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.json
        import pyarrow.parquet
    except ImportError:
        raise InputError(
            "reading Parquet / JSONL needs pyarrow: pip install 'tokforge[data]'"
        ) from None
    return pyarrow


def read_column(path: PathLike, *, column: str, batch_rows: int = BATCH_ROWS) -> Iterator[list[str]]:
    """The strings of ``column`` of a Parquet or JSONL shard, in row order, as lists of at most
    ``batch_rows``; null rows are skipped. A missing or non-string column is an
    :class:`InputError` naming the file and the columns it has.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = f.write_text('{"text": "a b"}\\n{"text": null}\\n{"text": "c"}\\n')
    >>> list(read_column(f, column="text"))
    [['a b', 'c']]
    """
    pa = _pyarrow()
    fmt = shard_format(path)
    if fmt == "parquet":
        pf = pa.parquet.ParquetFile(os.fspath(path))
        names = pf.schema_arrow.names
        if column not in names:
            raise InputError(f"{path}: no column {column!r} (columns: {', '.join(names)})")
        batches = (b.column(0) for b in pf.iter_batches(batch_size=batch_rows, columns=[column]))
    elif fmt == "jsonl":
        table = pa.json.read_json(os.fspath(path))
        if column not in table.column_names:
            raise InputError(
                f"{path}: no field {column!r} (fields: {', '.join(table.column_names)})"
            )
        col = table.column(column)
        batches = (col.slice(i, batch_rows) for i in range(0, len(col), batch_rows))
    else:
        raise InputError(f"{path}: not a Parquet or JSONL shard")
    for arr in batches:
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                or pa.types.is_null(arr.type)):  # fmt: skip
            raise InputError(f"{path}: column {column!r} holds {arr.type}, not strings")
        rows = [s for s in arr.to_pylist() if s is not None]
        if rows:
            yield rows


def texts_of(items: Iterable[Any], *, column: str) -> Iterator[str]:
    """Strings from an iterable of str, or of dicts (``row[column]``; rows without it or with
    ``None`` are skipped), such as the rows of a HF ``datasets`` dataset. Anything else is an
    :class:`InputError` naming the row.

    >>> list(texts_of([{"text": "a"}, "b", {"text": None}], column="text"))
    ['a', 'b']
    """
    if isinstance(items, (str, bytes)):
        raise InputError(
            "texts must be an iterable of str (or dicts), not a single str (wrap it in a list)"
        )
    for i, item in enumerate(items):
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            v = item.get(column)
            if v is None:
                continue
            if not isinstance(v, str):
                raise InputError(f"texts[{i}][{column!r}] is {type(v).__name__}, not str")
            yield v
        else:
            raise InputError(f"texts[{i}] is {type(item).__name__}, not str or dict")


def write_atomic(p: PathLike, data: str | bytes, overwrite: bool) -> Path:
    """Write ``data`` to ``p`` atomically: a temporary file in the same directory, flushed to
    disk, then renamed over ``p``, so a reader (or a crash) sees the old file or the new one,
    never a part. ``p`` is never clobbered unless ``overwrite``.

    The file gets the mode a new file gets (``0o666`` less the umask), or keeps the mode of the
    file it replaces. A symlink is written through (its target is replaced); a path that exists
    and is not a regular file (a directory, a FIFO, a device) is an :class:`InputError`: renaming
    over it would replace it by a regular file."""
    p = Path(p)
    if os.path.lexists(p) and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    target = Path(os.path.realpath(p))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{p} is not a regular file; tokforge writes tokenizers to regular files only "
            "(use to_json() to send one elsewhere)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    # O_EXCL: never follow or reuse a name someone else made; 0o666 lets the umask decide
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            if st is not None:
                os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
