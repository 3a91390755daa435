"""``tokforge tokenize`` and ``tokforge decode``: line-oriented, streaming, like ``spm_encode`` /
``spm_decode``.

By default each input line (without its newline) is one document: ``tokenize`` prints one line
of ids per input line and ``decode`` one line of text per line of ids, so
``tokenize | decode`` gives back the text. ``--by file`` makes each whole file one document
(pieces may span lines; ids of a file on one line). Input is read in blocks and output written
and flushed per block, so both work on endless streams with bounded memory.

Ids are formatted natively (:func:`format_ids`), not as a Python ``str`` per id, so printing
them costs little next to encoding them (README, section Command line, has the measurement).

>>> import numpy as np
>>> format_ids(np.array([7, 12345, 0], np.uint32), np.array([0, 2, 2, 3]))
b'7 12345\\n\\n0\\n'
>>> piece_text(b" caf\\xc3\\xa9\\n"), piece_text(b"\\xe6\\x97")
('\u2581café<0x0A>', '<0xE6><0x97>')
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any, Callable

import numpy as np

from . import _core
from ._cliutil import Formatter, Once, add_threads, examples, load_tokenizer
from .errors import InputError, TokforgeError
from .tokenizer import Tokenizer

__all__ = ["add_parser", "format_ids", "piece_text", "run"]

#: bytes read per block: large enough that per-block overhead vanishes (a 50 MB file is 50
#: blocks), small enough to keep memory flat; a pipe returns what it has (``read1``)
BLOCK = 1 << 20


def format_ids(ids: np.ndarray, offsets: np.ndarray, *, line_end: bytes = b"\n") -> bytes:
    """Ids as decimal text: the ids of document ``i`` (``ids[offsets[i]:offsets[i+1]]``)
    separated by spaces and followed by ``line_end`` (one byte), an empty document by
    ``line_end`` alone. Native (``_core.format_ids``): printing ids costs a fraction of
    encoding them."""
    return _core.format_ids(
        np.ascontiguousarray(ids, dtype=np.uint32),
        np.ascontiguousarray(offsets, dtype=np.int64),
        line_end[0],
    )


def piece_text(token: bytes) -> str:
    """A token shown as one space-free word, in SentencePiece's spelling: a space is ``▁``,
    bytes that are not printable text (newlines, tabs, part of a character) are ``<0xNN>``."""
    out = []
    for ch in token.decode("utf-8", "surrogateescape"):
        if ch == " ":
            out.append("\u2581")
        elif "\udc80" <= ch <= "\udcff":
            out.append(f"<0x{ord(ch) - 0xDC00:02X}>")
        elif not ch.isprintable():
            out.extend(f"<0x{b:02X}>" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


class _Pieces:
    """id -> piece text, computed once per id (special tokens keep their text)."""

    def __init__(self, tok: Tokenizer) -> None:
        self.tok = tok
        self.special = {i: t for t, i in tok.special_tokens.items()}
        self.cache: dict[int, str] = {}

    def __call__(self, i: int) -> str:
        s = self.cache.get(i)
        if s is None:
            s = self.special.get(i) or piece_text(self.tok.id_to_token(i))
            self.cache[i] = s
        return s


def _open(name: str) -> AbstractContextManager[IO[bytes]]:
    """The input ``name`` (``-``: stdin, left open for whoever reads it next)."""
    return nullcontext(sys.stdin.buffer) if name == "-" else open(name, "rb")


def _blocks(fh: IO[bytes]) -> Iterator[bytes]:
    read: Callable[[int], bytes] = getattr(fh, "read1", fh.read)
    while True:
        block = read(BLOCK)
        if not block:
            return
        yield block


def text_blocks(fh: IO[bytes], name: str, errors: str) -> Iterator[str]:
    """Decoded text in blocks that end after a newline (the last one may not): a character is
    never cut, and invalid UTF-8 under ``errors="strict"`` is an :class:`InputError` naming the
    input, line and byte offset."""
    pending = b""
    offset = line = 0
    for block in _blocks(fh):
        data = pending + block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            pending = data
            continue
        pending = data[cut:]
        yield _decode(data[:cut], name, errors, offset, line)
        offset += cut
        line += data.count(b"\n", 0, cut)
    if pending:
        yield _decode(pending, name, errors, offset, line)


def _decode(data: bytes, name: str, errors: str, offset: int, line: int) -> str:
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as e:
        where = "stdin" if name == "-" else name
        at_line = line + data.count(b"\n", 0, e.start) + 1
        raise InputError(
            f"{where}: invalid UTF-8 at byte offset {offset + e.start} (line {at_line}): "
            f"{e.reason}; pass --errors replace to read it as U+FFFD, or --errors ignore to "
            "drop it"
        ) from None


class _Writer:
    """stdout as bytes, flushed after each block so readers see output as it is made."""

    def __init__(self) -> None:
        self.out = sys.stdout.buffer

    def write(self, data: bytes) -> None:
        # a write interrupted by a signal (SIGPIPE when the reader left) can be partial: go on,
        # so that the next write fails with BrokenPipeError instead of losing the rest
        view = memoryview(data)
        while view:
            n = self.out.write(view)
            view = view[n if n is not None else len(view) :]

    def flush(self) -> None:
        self.out.flush()


def _encode_lines(
    tok: Tokenizer, lines: list[str], special: bool, threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    allowed: Any = "all" if special else frozenset()
    ids, offsets = tok.encode_batch_numpy(
        lines, allowed_special=allowed, disallowed_special=(), num_threads=threads
    )
    return np.asarray(ids), np.asarray(offsets)


def run_tokenize(a: argparse.Namespace) -> int:
    tok = load_tokenizer(a.tokenizer, a.pattern)
    out = _Writer()
    pieces = _Pieces(tok)
    for name in a.files or ["-"]:
        with _open(name) as fh:
            blocks = text_blocks(fh, name, a.errors)
            if a.by == "line":
                _tokenize_lines(tok, blocks, name, a, out, pieces)
            else:
                _tokenize_file(tok, blocks, name, a, out, pieces)
    return 0


def _tokenize_lines(
    tok: Tokenizer, blocks: Iterator[str], name: str, a: argparse.Namespace, out: _Writer,
    pieces: _Pieces,
) -> None:  # fmt: skip
    line_no = 0
    for text in blocks:
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # the block ends with a newline: no line after it
        ids, offsets = _encode_lines(tok, lines, a.allow_special, a.threads)
        if a.format == "ids":
            out.write(format_ids(ids, offsets))
        else:
            rows = []
            for k in range(len(lines)):
                doc = ids[offsets[k] : offsets[k + 1]].tolist()
                ps = [pieces(i) for i in doc]
                if a.format == "pieces":
                    rows.append(" ".join(ps))
                else:
                    rec = {"file": name, "line": line_no + k + 1, "ids": doc, "pieces": ps}
                    rows.append(json.dumps(rec, ensure_ascii=False))
            out.write(("\n".join(rows) + "\n").encode("utf-8") if rows else b"")
        line_no += len(lines)
        out.flush()


def _tokenize_file(
    tok: Tokenizer, blocks: Iterator[str], name: str, a: argparse.Namespace, out: _Writer,
    pieces: _Pieces,
) -> None:  # fmt: skip
    allowed: Any = "all" if a.allow_special else frozenset()
    collected: list[int] = []
    first = True
    for chunk in tok.encode_stream(blocks, allowed_special=allowed):
        if a.format == "json":
            collected.extend(chunk)
            continue
        if not chunk:
            continue
        if a.format == "ids":
            body = format_ids(np.asarray(chunk, np.uint32), np.array([0, len(chunk)]))[:-1]
        else:
            body = " ".join(pieces(i) for i in chunk).encode("utf-8")
        out.write(body if first else b" " + body)
        out.flush()
        first = False
    if a.format == "json":
        rec = {"file": name, "ids": collected, "pieces": [pieces(i) for i in collected]}
        out.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
    else:
        out.write(b"\n")
    out.flush()


def _parse_ids(line: str, where: str) -> list[int]:
    try:
        return [int(x) for x in line.split()]
    except ValueError:
        bad = next((x for x in line.split() if not x.lstrip("-").isdigit()), line.strip())
        raise InputError(f"{where}: {bad!r} is not a token id") from None


def run_decode(a: argparse.Namespace) -> int:
    tok = load_tokenizer(a.tokenizer, a.pattern)
    out = _Writer()
    end = b"\n" if a.by == "line" else b""
    for name in a.files or ["-"]:
        line_no = 0
        with _open(name) as fh:
            for text in text_blocks(fh, name, "strict"):
                chunks = []
                lines = text.split("\n")
                if lines[-1] == "":
                    lines.pop()
                for line in lines:
                    line_no += 1
                    where = f"{'stdin' if name == '-' else name}, line {line_no}"
                    if a.format == "json":
                        try:
                            rec = json.loads(line)
                        except json.JSONDecodeError as e:
                            raise InputError(f"{where}: not a JSON record ({e})") from None
                        ids = rec.get("ids") if isinstance(rec, dict) else rec
                        if not isinstance(ids, list):
                            raise InputError(f"{where}: no \"ids\" list in the record")
                    else:
                        ids = _parse_ids(line, where)
                    try:
                        chunks.append(tok.decode_bytes(ids) + end)
                    except (TokforgeError, TypeError, OverflowError) as e:
                        raise InputError(f"{where}: {e}") from None
                out.write(b"".join(chunks))
                out.flush()
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="input files; - or none: stdin")
    p.add_argument(
        "-t",
        "--tokenizer",
        action=Once,
        default="demo",
        help="tokenizer file (tokenizer.json, .tiktoken, tekken, .model, LiB JSON) or run name "
        "(NAME = runs/NAME/tokenizer.json, which `tokforge train` writes for demo)",
    )
    p.add_argument(
        "--pattern", default=None, help="pre-tokenizer of a .tiktoken file without a known name"
    )
    p.add_argument(
        "--by",
        choices=["line", "file"],
        default="line",
        help="the unit encoded as one document: each input line, or each whole file",
    )


def add_parser(sub: Any) -> None:
    tk = sub.add_parser(
        "tokenize",
        help="encode text into token ids or pieces, line by line",
        description="Encode text with a tokenizer, streaming: by default one output line per "
        "input line (ids separated by spaces), written as the input arrives.",
        formatter_class=Formatter,
        epilog=examples(
            "tokforge train && tokforge tokenize corpora.txt       # runs/demo, one line per line",
            "echo 'hello world' | tokforge tokenize -t tokenizer.json",
            "tokforge tokenize -t cl100k_base.tiktoken --format pieces notes.txt",
            "tokforge tokenize --by file --format json a.txt b.txt  # one JSON record per file",
            "tokforge tokenize big.txt | tokforge decode          # gives back big.txt",
        ),
    )
    _common(tk)
    tk.add_argument(
        "--format",
        choices=["ids", "pieces", "json"],
        default="ids",
        help="ids; pieces (tokens as text, a space as U+2581, other bytes as <0xNN>); or JSON "
        "records {file, line, ids, pieces} (no line with --by file)",
    )
    tk.add_argument(
        "--allow-special",
        action="store_true",
        help="encode special-token text (<|endoftext|>) as the special token, not as plain text",
    )
    tk.add_argument(
        "--errors",
        choices=["strict", "replace", "ignore"],
        default="strict",
        help="invalid UTF-8 in the input: stop with an error, read as U+FFFD, or drop it",
    )
    add_threads(tk)

    dc = sub.add_parser(
        "decode",
        help="turn lines of token ids back into text",
        description="Decode token ids, one document per input line (ids separated by "
        "whitespace, or JSON records with an \"ids\" list); output is the bytes the tokens "
        "stand for.",
        formatter_class=Formatter,
        epilog=examples(
            "echo '15339 1917' | tokforge decode -t cl100k_base.tiktoken",
            "tokforge tokenize notes.txt | tokforge decode",
            "tokforge tokenize --by file a.txt | tokforge decode --by file > a.copy.txt",
            "tokforge tokenize --format json a.txt | tokforge decode --format json",
        ),
    )
    _common(dc)
    dc.add_argument(
        "--format", choices=["ids", "json"], default="ids", help="what each input line holds"
    )


def run(a: argparse.Namespace) -> int:
    return run_tokenize(a) if a.command == "tokenize" else run_decode(a)
