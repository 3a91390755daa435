"""Training and encoding past one machine, on Ray (docs/distributed.md): the same results as
local training and encoding, for datasets of any size.

- :func:`count`: one Ray task per shard runs the native counter (GIL released) and sends back
  its table in the compact binary form (docs/distributed.md §2); tables are merged in a tree
  as they arrive (fan-in ``fanin``), and the driver receives one table.
- :func:`train`: :func:`count`, then :meth:`Tokenizer.train_from_counts` on the driver. Counts
  are sums, so the merges equal :meth:`Tokenizer.train`'s on the same documents, whatever the
  shard split, the order tasks finish in, or retries (docs/distributed.md §4).
- :func:`encode`: one task per shard writes its token ids (a Parquet ``list<uint32>`` column,
  or ``.npy`` ids and offsets), each file atomically; a ``manifest.json`` ties the output to
  the tokenizer and the inputs, and a second run skips the shards already written
  (docs/distributed.md §5).

A dataset is a path or a list of paths and directories of shards (text files, Parquet, JSONL:
:func:`tokforge.inputs.expand_shards`), a list of *shard readers* (zero-argument callables that
return an iterable of str or dict rows, for storage tokforge does not read itself), or, for
:func:`count` and :func:`train`, any iterable of str or dict rows (HF ``datasets`` included,
streaming too), which the driver cuts into batches of ``batch_docs`` (a *list* of str is read
as paths: pass texts as an iterator or as dict rows), or a ``ray.data.Dataset`` (its blocks are
counted by ``map_batches``). Ray is the optional extra
``tokforge[ray]``; without an initialised Ray, these functions start a local one (or connect to
``address``). Ray retries a task whose worker died (``max_retries``); an error raised by
tokforge itself (bad UTF-8, a missing column) stops the run.

>>> import tokforge.distributed as td   # works without Ray installed: Ray is imported on use
>>> td.DEFAULT_FANIN
8
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from . import _core
from .counts import PieceCounts, count_pieces
from .errors import InputError, StoppedError, TokforgeError
from .inputs import (
    PathLike,
    expand_shards,
    read_column,
    shard_format,
    texts_of,
    write_atomic,
)
from .tokenizer import Tokenizer

__all__ = ["CountStats", "EncodeResult", "count", "encode", "train"]

ProgressCallback = Callable[[str, int, int], Optional[bool]]
ShardReader = Callable[[], Iterable[Any]]
Dataset = Union[PathLike, Sequence[Union[PathLike, ShardReader]], Iterable[Any]]

#: tables merged by one reduce task: a tree of depth log8(shards); 8 tables of the corpora/
#: size merge in well under a second (benches/distributed.py)
DEFAULT_FANIN = 8
#: documents per counting task when the dataset is an iterable (not shards)
DEFAULT_BATCH_DOCS = 50_000
#: output format version of :func:`encode` (manifest.json "version")
ENCODE_VERSION = 1


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("tokforge.distributed needs Ray: pip install 'tokforge[ray]'") from None
    return ray


def _connect(address: str | None) -> Any:
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return ray


@dataclass(frozen=True)
class _Shard:
    """One unit of work: a file (by path) or a reader callable, with its index."""

    index: int
    path: Optional[str] = None
    reader: Optional[ShardReader] = None
    texts: Optional[list[str]] = None

    @property
    def name(self) -> str:
        if self.path is not None:
            return self.path
        if self.reader is not None:
            return f"reader[{self.index}]: {getattr(self.reader, '__name__', type(self.reader).__name__)}"
        return f"batch[{self.index}]"

    def rows(self) -> Iterable[Any]:
        """The rows of a batch or reader shard (a path shard is read by its file format)."""
        if self.texts is not None:
            return self.texts
        assert self.reader is not None, "a shard is a path, a reader or a batch of texts"
        return self.reader()


def _shards(dataset: Any) -> list[_Shard] | None:
    """The shards of a dataset given as paths or readers; None for a plain iterable."""
    if isinstance(dataset, (str, os.PathLike)):
        dataset = [dataset]
    if isinstance(dataset, (list, tuple)) and dataset and all(
        isinstance(d, (str, os.PathLike)) or callable(d) for d in dataset
    ):
        if all(callable(d) for d in dataset):
            return [_Shard(i, reader=r) for i, r in enumerate(dataset)]
        if any(callable(d) for d in dataset):
            raise InputError("a dataset is a list of paths or a list of shard readers, not both")
        return [_Shard(i, path=str(p)) for i, p in enumerate(expand_shards(dataset))]
    return None


def _batches(items: Iterable[Any], column: str, size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for t in texts_of(items, column=column):
        batch.append(t)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- counting ---------------------------------------------------------------------------------
@dataclass
class CountStats:
    """What a distributed count moved: tables sent to reducers and to the driver."""

    tasks: int = 0
    merges: int = 0
    #: bytes of binary tables sent from counting tasks to reducers (the reduce traffic)
    table_bytes: int = 0
    #: bytes of binary tables sent between reducers and to the driver
    reduce_bytes: int = 0
    #: size of the final table in binary form
    final_bytes: int = 0
    #: CPU seconds spent in counting tasks and in reduce tasks (the work, without Ray's
    #: scheduling and the waiting a busy machine adds to wall time)
    count_cpu_s: float = 0.0
    reduce_cpu_s: float = 0.0
    shards: list[str] = field(default_factory=list)


def _count_shard(shard: _Shard, opts: dict[str, Any]) -> tuple[bytes, tuple[int, float]]:
    """Ray task body: the table of one shard, as bytes (and a small second return: its size
    and the CPU seconds the task took)."""
    cpu = time.process_time()
    if shard.path is not None:
        table = count_pieces(shard.path, **opts)
    else:
        table = count_pieces(texts=shard.rows(), **opts)
    data = table.to_bytes()
    return data, (len(data), time.process_time() - cpu)


def _count_batch(batch: Any, opts: dict[str, Any]) -> Any:
    """Ray Data ``map_batches`` body: a pyarrow batch of rows -> one row holding its table."""
    import pyarrow as pa

    column = opts["column"]
    if column not in batch.column_names:
        raise InputError(f"the dataset has no column {column!r} (columns: "
                         f"{', '.join(batch.column_names)})")  # fmt: skip
    texts = [t for t in batch.column(column).to_pylist() if t is not None]
    table = count_pieces(texts=texts, **opts)
    return pa.table({"tokforge_counts": [table.to_bytes()]})


def _merge_tables(limit: dict[str, Any], *blobs: Any) -> tuple[bytes, tuple[int, float]]:
    """Ray task body: one table from many (same bound as counting). An input is a table's
    bytes, or a Ray Data block of them."""
    cpu = time.process_time()
    inputs: list[bytes] = []
    for b in blobs:
        inputs.extend([b] if isinstance(b, bytes) else b.column("tokforge_counts").to_pylist())
    tables = [PieceCounts.from_bytes(b, name="<reduce input>") for b in inputs]
    data = tables[0].merge(*tables[1:], **limit).to_bytes()
    return data, (len(data), time.process_time() - cpu)


def count(
    dataset: Dataset,
    *,
    pattern: str = "cl100k",
    column: str = "text",
    documents: str = "file",
    errors: str = "strict",
    max_pieces: int | None = None,
    prune: bool = False,
    fanin: int = DEFAULT_FANIN,
    batch_docs: int = DEFAULT_BATCH_DOCS,
    cpus_per_task: int = 1,
    max_retries: int = 3,
    address: str | None = None,
    progress: ProgressCallback | None = None,
    stats: CountStats | None = None,
) -> PieceCounts:
    """The piece-count table of ``dataset``, counted by Ray tasks and merged in a tree: equal
    to :func:`tokforge.counts.count_pieces` on the same documents. ``max_pieces`` / ``prune``
    bound every table, the workers' and the reducers' (docs/distributed.md §3);
    ``progress("shards", done, total)`` reports finished tasks (``total`` 0 while an iterable
    is still being read); ``stats`` (a :class:`CountStats`) is filled in when given."""
    if fanin < 2:
        raise InputError(f"fanin={fanin} must be at least 2")
    if batch_docs < 1:
        raise InputError(f"batch_docs={batch_docs} must be at least 1")
    ray = _connect(address)
    opts = dict(pattern=pattern, column=column, documents=documents, errors=errors,
                max_pieces=max_pieces, prune=prune, num_threads=cpus_per_task)  # fmt: skip
    limit = dict(max_pieces=max_pieces, prune=prune)
    count_task = ray.remote(_count_shard).options(
        num_cpus=cpus_per_task, num_returns=2, max_retries=max_retries
    )
    merge_task = ray.remote(_merge_tables).options(
        num_cpus=1, num_returns=2, max_retries=max_retries
    )
    st = stats if stats is not None else CountStats()
    shards = None if _is_ray_dataset(dataset) else _shards(dataset)
    if _is_ray_dataset(dataset):
        # Ray Data reads and batches; map_batches runs the counter on each block
        ray_dataset: Any = dataset  # a ray.data.Dataset (Ray is untyped here)
        counted = ray_dataset.map_batches(
            _count_batch, batch_format="pyarrow", batch_size=None, fn_kwargs={"opts": opts}
        )
        source: Iterable[_Shard] = ()
        total = 0
        blocks = counted.to_arrow_refs()
        st.tasks = len(blocks)
    elif shards is None:
        if isinstance(dataset, (str, bytes, os.PathLike)):
            raise InputError("a dataset is paths, shard readers or an iterable of texts")
        source = (_Shard(i, texts=b) for i, b in enumerate(_batches(dataset, column, batch_docs)))
        total = 0
    else:
        if not shards:
            raise InputError("the dataset has no shards")
        source, total = shards, len(shards)
    opts_ref = ray.put(opts)

    running: dict[Any, tuple[str, Any]] = {}  # table ref -> (kind, ref of its size) while its task runs
    finished: list[Any] = []  # tables not merged yet
    done = 0
    max_running = 4 * max(1, int(ray.available_resources().get("CPU", 1)))

    def collect(block: bool) -> None:
        nonlocal done
        if not running:
            return
        ready, _ = ray.wait(
            list(running), num_returns=1, timeout=None if block else 0, fetch_local=False
        )
        for r in ready:
            kind, size_ref = running.pop(r)
            n, cpu = _get(ray, size_ref)  # the task's error, after Ray's retries
            finished.append(r)
            if kind == "reduce":
                st.reduce_bytes += n
                st.reduce_cpu_s += cpu
                continue
            st.table_bytes += n
            st.count_cpu_s += cpu
            done += 1
            if progress is not None and progress("shards", done, total) is False:
                raise StoppedError("stopped by the progress callback")

    def merge_groups(final: bool) -> None:
        # whole groups as tables arrive; at the end, what is left once nothing runs
        while len(finished) >= fanin or (final and not running and len(finished) > 1):
            group = finished[:fanin]
            del finished[:fanin]
            data, size = merge_task.remote(limit, *group)
            running[data] = ("reduce", size)
            st.merges += 1

    for shard in source:
        st.shards.append(shard.name)
        data, size = count_task.remote(shard, opts_ref)
        running[data] = ("table", size)
        st.tasks += 1
        while len(running) >= max_running:
            collect(block=True)
            merge_groups(final=False)
        collect(block=False)
        merge_groups(final=False)
    if _is_ray_dataset(dataset):
        if len(blocks) == 1:  # a block holds the table's bytes: a reduce of one unpacks it
            data, size = merge_task.remote(limit, blocks[0])
            running[data] = ("reduce", size)
        else:
            finished.extend(blocks)
    if st.tasks == 0:
        raise InputError("the dataset is empty: no documents to count")
    if total == 0:
        total = st.tasks
    while running or len(finished) > 1:
        collect(block=True)
        merge_groups(final=True)
    data = _get(ray, finished[0])
    st.final_bytes = len(data)
    return PieceCounts.from_bytes(data, name="<distributed count>")


def _is_ray_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("ray.data") and hasattr(obj, "map_batches")


def _get(ray: Any, ref: Any) -> Any:
    """``ray.get``, raising a tokforge error from a task as itself (not wrapped)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, TokforgeError):
            raise e.cause from None
        raise


def train(
    dataset: Dataset,
    *,
    vocab_size: int,
    pattern: str = "cl100k",
    column: str = "text",
    documents: str = "file",
    special_tokens: Sequence[str] = (),
    min_frequency: int = 0,
    tie_order: str = "hf",
    errors: str = "strict",
    max_pieces: int | None = None,
    prune: bool = False,
    fanin: int = DEFAULT_FANIN,
    batch_docs: int = DEFAULT_BATCH_DOCS,
    cpus_per_task: int = 1,
    max_retries: int = 3,
    address: str | None = None,
    progress: ProgressCallback | None = None,
    num_threads: int | None = None,
) -> Tokenizer:
    """Train a byte-level BPE tokenizer on a Ray cluster: :func:`count` on the workers, then
    the merges on the driver (``num_threads`` there). The merges and vocabulary equal
    :meth:`Tokenizer.train` on the same documents with the same options (exact unless
    ``prune=True`` dropped pieces)."""
    # settings first: a bad vocab_size fails before any task runs
    _core.check_train_settings(vocab_size=vocab_size, min_frequency=min_frequency,
                               special_tokens=list(special_tokens), tie_order=tie_order)  # fmt: skip
    table = count(
        dataset,
        pattern=pattern,
        column=column,
        documents=documents,
        errors=errors,
        max_pieces=max_pieces,
        prune=prune,
        fanin=fanin,
        batch_docs=batch_docs,
        cpus_per_task=cpus_per_task,
        max_retries=max_retries,
        address=address,
        progress=progress,
    )
    return Tokenizer.train_from_counts(
        table,
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        min_frequency=min_frequency,
        tie_order=tie_order,
        progress=progress,
        num_threads=num_threads,
    )


# ---- encoding ---------------------------------------------------------------------------------
@dataclass
class EncodeResult:
    """What :func:`encode` wrote: the output folder, shards written now and skipped (already
    written by an earlier run), and documents and tokens over all shards."""

    out: Path
    written: list[str]
    skipped: list[str]
    docs: int
    tokens: int


def _split_lines(text: str) -> list[str]:
    """Lines ending after their ``\\n`` (only ``\\n`` ends a line, as in counting)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _read_docs(shard: _Shard, column: str, documents: str, errors: str) -> list[str]:
    if shard.path is None:
        docs = list(texts_of(shard.rows(), column=column))
    elif shard_format(shard.path) == "text":
        data = Path(shard.path).read_bytes()
        try:
            docs = [data.decode("utf-8", errors)]
        except UnicodeDecodeError as e:
            raise InputError(
                f"{shard.path}: invalid UTF-8 at byte offset {e.start} (pass errors=\"replace\" "
                "or errors=\"ignore\" to accept it)"
            ) from None
    else:
        docs = [t for batch in read_column(shard.path, column=column) for t in batch]
    if documents == "line":
        docs = [line for d in docs for line in _split_lines(d)]
    return docs


def _outputs(out: Path, index: int, fmt: str) -> list[Path]:
    stem = f"part-{index:05d}"
    if fmt == "parquet":
        return [out / f"{stem}.parquet"]
    return [out / f"{stem}.ids.npy", out / f"{stem}.offsets.npy"]


def _encode_shard(shard: _Shard, tok_json: str, opts: dict[str, Any], out: str) -> tuple[int, int]:
    """Ray task body: encode one shard and write its files atomically; (documents, tokens)."""
    import io

    import numpy as np

    tok = Tokenizer.from_json_str(tok_json)
    docs = _read_docs(shard, opts["column"], opts["documents"], opts["errors"])
    ids, offsets = tok.encode_batch_numpy(
        docs, allowed_special=opts["allowed_special"], disallowed_special=(),
        num_threads=opts["num_threads"],
    )  # fmt: skip
    files = _outputs(Path(out), shard.index, opts["format"])
    if opts["format"] == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if len(ids) < 2**31:
            col = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(ids))
        else:
            col = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(ids))
        meta = {b"tokforge.source": shard.name.encode(), b"tokforge.tokens": str(len(ids)).encode()}
        table = pa.table({"ids": col}).replace_schema_metadata(meta)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        write_atomic(files[0], buf.getvalue(), overwrite=True)
    else:
        for arr, path in ((ids, files[0]), (offsets, files[1])):  # offsets last: marks done
            buf = io.BytesIO()
            np.save(buf, arr)
            write_atomic(path, buf.getvalue(), overwrite=True)
    return len(docs), len(ids)


def _shard_totals(files: list[Path], fmt: str) -> tuple[int, int]:
    """(documents, tokens) of a shard written earlier, from its files' headers."""
    import numpy as np

    if fmt == "parquet":
        import pyarrow.parquet as pq

        md = pq.read_metadata(files[0])
        tokens = int(md.metadata.get(b"tokforge.tokens", b"0"))
        return md.num_rows, tokens
    offsets = np.load(files[1], mmap_mode="r")
    return len(offsets) - 1, int(offsets[-1])


def encode(
    dataset: Dataset,
    tokenizer: Any,
    *,
    out: PathLike,
    column: str = "text",
    documents: str = "file",
    format: str = "parquet",
    allowed_special: Sequence[str] | str = (),
    errors: str = "strict",
    cpus_per_task: int = 1,
    max_retries: int = 3,
    address: str | None = None,
    progress: ProgressCallback | None = None,
) -> EncodeResult:
    """Encode every shard of ``dataset`` (paths or shard readers) into ``out``: shard ``i``
    becomes ``part-<i>.parquet`` (column ``ids``, ``list<uint32>``, one row per document) or
    ``part-<i>.ids.npy`` (``uint32``) + ``part-<i>.offsets.npy`` (``int64``; document ``j`` is
    ``ids[offsets[j]:offsets[j + 1]]``), each written atomically. Ids equal
    ``tokenizer.encode_batch(docs, allowed_special=..., disallowed_special=())`` (special-token
    text is plain text unless allowed).

    Resumable: ``out/manifest.json`` records the tokenizer (sha256 of its JSON), the options
    and the inputs; a run into a folder with the same manifest skips the shards whose files
    exist, and a different manifest is an :class:`InputError` (use a new folder).
    ``progress("encode", shards_done, shards)`` reports each finished shard."""
    if format not in ("parquet", "npy"):
        raise InputError(f"format={format!r} is not 'parquet' or 'npy'")
    if documents not in ("file", "line"):
        raise InputError(f"documents={documents!r} is not one of \"file\", \"line\"")
    if errors not in ("strict", "replace", "ignore"):
        raise InputError(f"errors={errors!r} is not one of \"strict\", \"replace\", \"ignore\"")
    tok = Tokenizer.coerce(tokenizer)
    shards = _shards(dataset)
    if shards is None:
        raise InputError(
            "encode needs named shards (paths, or a list of shard readers) so that a second "
            "run can skip what the first wrote"
        )
    allowed = sorted(tok.special_tokens) if allowed_special == "all" else sorted(allowed_special)
    tok.encode_batch([], allowed_special=allowed)  # unknown special tokens fail here
    tok_json = tok.to_json()
    out = Path(out)
    manifest = {
        "format": "tokforge-encoded",
        "version": ENCODE_VERSION,
        "tokenizer_sha256": hashlib.sha256(tok_json.encode("utf-8")).hexdigest(),
        "vocab_size": tok.vocab_size,
        "column": column,
        "documents": documents,
        "files": format,
        "allowed_special": allowed,
        "shards": [
            {"input": s.name, "outputs": [p.name for p in _outputs(out, s.index, format)]}
            for s in shards
        ],
    }
    mpath = out / "manifest.json"
    if mpath.exists():
        try:
            old = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"{mpath}: not a tokforge manifest ({e})") from None
        if old != manifest:
            diff = sorted(k for k in manifest if old.get(k) != manifest[k])
            raise InputError(
                f"{out} holds the output of another run (different {', '.join(diff)}): encode "
                "into a new folder, or delete this one to start over"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(mpath, json.dumps(manifest, indent=1), overwrite=False)

    todo = [s for s in shards if not all(p.exists() for p in _outputs(out, s.index, format))]
    skipped = [s.name for s in shards if s not in todo]
    ray = _connect(address)
    task = ray.remote(_encode_shard).options(num_cpus=cpus_per_task, max_retries=max_retries)
    opts = dict(column=column, documents=documents, errors=errors, format=format,
                allowed_special=allowed, num_threads=cpus_per_task)  # fmt: skip
    tok_ref = ray.put(tok_json)
    running = [task.remote(s, tok_ref, opts, str(out)) for s in todo]
    done = len(shards) - len(todo)
    if progress is not None:
        progress("encode", done, len(shards))
    first_error: Exception | None = None
    while running:
        ready, running = ray.wait(running, num_returns=1)
        try:
            _get(ray, ready[0])
        except Exception as e:  # let the others finish (their files count), then raise
            first_error = first_error or e
            continue
        done += 1
        if progress is not None:
            progress("encode", done, len(shards))
    if first_error is not None:
        raise first_error
    docs = tokens = 0
    for s in shards:
        d, t = _shard_totals(_outputs(out, s.index, format), format)
        docs, tokens = docs + d, tokens + t
    return EncodeResult(
        out=out,
        written=[s.name for s in todo],
        skipped=skipped,
        docs=docs,
        tokens=tokens,
    )
