"""What every ``tokforge`` subcommand shares: the help formatter, argument types that reject bad
values at parse time (exit status 2), tokenizer lookup (``-t FILE`` or ``-t RUN``) and the
progress display (a tqdm bar on a terminal, plain periodic lines in logs).

>>> positive_int("8000")
8000
>>> pattern_arg("cl100k"), pattern_arg(r"\\w+")
('cl100k', '\\\\w+')
>>> pattern_arg("gpt4")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: unknown preset "gpt4"; expected gpt2, cl100k or o200k (to use a plain word as a regex, write (?:gpt4))
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import IO, Any, Optional

from . import _core
from .tokenizer import Tokenizer

__all__ = [
    "RUNS_DIR",
    "Formatter",
    "Once",
    "Progress",
    "UsageError",
    "load_tokenizer",
    "pattern_arg",
    "positive_int",
]

#: ``-t NAME`` looks for ``runs/NAME/tokenizer.json``; ``tokforge train`` writes ``runs/demo/``
RUNS_DIR = Path("runs")


class UsageError(Exception):
    """A bad combination of arguments found after parsing: reported like argparse's own
    errors, with exit status 2."""


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help with each option's default (when it has a meaningful one) and epilogs (the
    examples) printed as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return super()._fill_text(text, width, indent)  # as written
        return argparse.HelpFormatter._fill_text(self, text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        default = action.default
        if default is None or default is False or default == [] or action.help is None:
            return action.help
        return super()._get_help_string(action)


class Once(argparse.Action):
    """``store`` that refuses a second occurrence: for options that take one value, where
    argparse would silently keep the last of ``-t a -t b``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: Optional[str] = None,
    ) -> None:
        seen = f"_seen_{self.dest}"
        if getattr(namespace, seen, False):
            raise argparse.ArgumentError(self, "given more than once (this command takes one)")
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, values)


def positive_int(text: str) -> int:
    """``type=`` for counts that must be at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """``type=`` for counts that may be 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def pattern_arg(text: str) -> str:
    """``type=`` for ``--pattern``: a preset name or a regex. A plain word is taken as a preset
    name and must be one (``gpt4`` is a typo, not a regex matching "gpt4"); the list of presets
    comes from the native core, the one place that knows them."""
    if _WORD.fullmatch(text):
        try:
            _core.preset_pattern(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(
                f"{e} (to use a plain word as a regex, write (?:{text}))"
            ) from None
    return text


def load_tokenizer(spec: str, pattern: Optional[str] = None) -> Tokenizer:
    """``-t``: a tokenizer file (``tokenizer.json``, ``.tiktoken``, tekken, SentencePiece
    ``.model``, LiB JSON) or the name of a trained run (``demo`` -> ``runs/demo/tokenizer.json``).
    A missing run says how to make it."""
    p = Path(spec)
    run = RUNS_DIR / spec / "tokenizer.json"
    if not p.exists() and run.is_file():
        p = run
    if not p.exists():
        how = (
            f"train it first: tokforge train -o {run}"
            if os.sep not in spec and "." not in spec
            else "check the path"
        )
        raise FileNotFoundError(
            f"{spec}: no such tokenizer file, and no run {run} in {Path.cwd()} ({how}; "
            "-t takes a tokenizer.json, .tiktoken, tekken or .model file, or a run name)"
        )
    return Tokenizer.from_file(p, pattern=pattern) if pattern else Tokenizer.from_file(p)


#: how to count each stage the API reports: (unit, scale as bytes)
_UNITS = {"count": ("B", True), "merge": (" merges", False), "lib": (" steps", False)}
#: stages reported without a counter, shown as one line
_NOTES = {"pairs": "indexing pairs"}


class Progress:
    """A ``progress(stage, done, total)`` callback for the API's long calls.

    On a terminal: one tqdm bar per stage (rate and ETA; integer counts, bytes scaled). When
    stderr is not a terminal (logs, CI): one plain line when a stage starts, every
    ``interval`` seconds, and when it ends, in tqdm's wording. ``note(text)`` announces a
    stage that has no counter. Disabled, it does nothing (``-q``).
    """

    def __init__(
        self, enabled: bool = True, *, stream: Optional[IO[str]] = None, interval: float = 10.0
    ) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval
        self.stage = ""
        self.bar: Any = None
        self.start = self.last = 0.0
        self.done = self.total = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage in _NOTES:
            self.note(_NOTES[stage])
            return
        if stage != self.stage:
            self._finish()
            self._begin(stage, total)
        self.done, self.total = int(done), int(total)
        if self.bar is not None:
            if total and self.bar.total != total:
                self.bar.total = total
            self.bar.update(self.done - self.bar.n)
        elif time.monotonic() - self.last >= self.interval:
            self._line()

    def note(self, text: str) -> None:
        """A stage without a counter (``building pair counts``, ``fitting the n-gram LM``)."""
        if self.enabled:
            self._finish()
            self.stream.write(f"{text}...\n")
            self.stream.flush()

    def close(self) -> None:
        self._finish()

    def _begin(self, stage: str, total: int) -> None:
        from tqdm import tqdm

        self.stage, self.start, self.done, self.total = stage, time.monotonic(), 0, total
        unit, scale = _UNITS.get(stage, (" steps", False))
        if self.tty:
            self.bar = tqdm(
                total=total or None,
                desc=stage,
                unit=unit.strip() if scale else unit,
                unit_scale=scale,
                unit_divisor=1024 if scale else 1000,
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )
        else:
            self._line()

    def _line(self) -> None:
        from tqdm import tqdm

        self.last = time.monotonic()
        unit, scale = _UNITS.get(self.stage, (" steps", False))
        shown = "{unit}" if scale else unit
        fmt = (
            "{desc}: {n_fmt}/{total_fmt}" + shown + " ({percentage:.0f}%)"
            " [{elapsed}<{remaining}, {rate_fmt}]"
            if self.total
            else "{desc}: {n_fmt}" + shown + " [{elapsed}, {rate_fmt}]"
        )
        line = tqdm.format_meter(
            self.done,
            self.total or None,
            self.last - self.start,
            prefix=self.stage,
            unit=unit.strip() if scale else unit,
            unit_scale=scale,
            unit_divisor=1024 if scale else 1000,
            bar_format=fmt,
        )
        self.stream.write(line + "\n")
        self.stream.flush()

    def _finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.stage and self.enabled:
            self._line()
        self.stage = ""


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display on stderr")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads", type=positive_int, default=None, help="worker threads (default: all cores)"
    )


def examples(*lines: str) -> str:
    """An epilog of example command lines."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)

