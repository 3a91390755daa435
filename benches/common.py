"""Helpers shared by the benchmark scripts: child processes with their own wall time and peak
RSS, thread settings for the Rust thread pools, peer installation, and table / JSON output.

Only the standard library is used, so any bench script can import this without new deps:

    from common import run_child, thread_env, format_table
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

MIB = 1 << 20


# ---- processes, time, memory ---------------------------------------------------------------
@dataclasses.dataclass
class ChildResult:
    """How one child process went.

    ``peak_rss_mb`` is the child's ``ru_maxrss`` from ``wait4`` (its own, not the maximum over all
    children as ``RUSAGE_CHILDREN`` would give), but Linux starts a child's ``ru_maxrss`` at the
    parent's resident size when it forked, so a large parent inflates it: for the child's own
    peak, let the child report :func:`peak_rss_mb` itself."""

    returncode: int
    wall_s: float
    peak_rss_mb: float
    user_s: float
    sys_s: float
    stdout: str
    stderr: str
    timed_out: bool = False
    #: cores that other processes kept busy while the child ran (from /proc/stat), or None
    others_busy: float | None = None


def run_child(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    cwd: str | Path | None = None,
) -> ChildResult:
    """Run ``cmd`` to the end; its output is captured through temporary files (no pipe can
    fill up). On timeout the child's process group is killed and ``timed_out`` is set."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        busy0, own0 = cpu_busy_s(), time.process_time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=err,
            env=dict(env) if env else None,
            cwd=cwd,
            start_new_session=True,
        )
        deadline = None if timeout is None else t0 + timeout
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                os.killpg(proc.pid, 9)
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        busy1, own1 = cpu_busy_s(), time.process_time()
        others = None
        if busy0 is not None and busy1 is not None and wall > 0:
            child_cpu = ru.ru_utime + ru.ru_stime
            others = max(0.0, (busy1 - busy0 - child_cpu - (own1 - own0)) / wall)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildResult(
            returncode=proc.returncode,
            wall_s=wall,
            peak_rss_mb=maxrss_to_mb(ru.ru_maxrss),
            user_s=ru.ru_utime,
            sys_s=ru.ru_stime,
            stdout=out.read(),
            stderr=err.read(),
            timed_out=timed_out,
            others_busy=others,
        )


def maxrss_to_mb(maxrss: int) -> float:
    """``ru_maxrss`` in MiB (Linux reports KiB, macOS bytes)."""
    return maxrss / MIB if sys.platform == "darwin" else maxrss / 1024


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set (``VmHWM``) of a live process's memory since its last ``exec``, in
    MiB; None where ``/proc`` does not tell."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MiB: ``VmHWM`` where Linux gives it, else
    ``ru_maxrss``. The difference matters in a child process: Linux carries the forking
    parent's resident size into the child's ``ru_maxrss`` (across ``exec`` too), while ``VmHWM``
    counts the child's own memory only. Child scripts should measure themselves with this."""
    hwm = vm_hwm_mb()
    if hwm is not None:
        return hwm
    return maxrss_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class StageTimer:
    """A ``progress(stage, done, total)`` callback that notes when each stage was first and last
    reported, relative to ``start()``; ``spans()`` gives ``{stage: seconds}``, where a stage runs
    from the previous stage's end (or the start) to its own last report."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.order: list[str] = []
        self.calls = 0

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> bool:
        t = time.perf_counter() - self.t0
        self.calls += 1
        if stage not in self.first:
            self.first[stage] = t
            self.order.append(stage)
        self.last[stage] = t
        return True

    def spans(self, end: float | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        prev = 0.0
        for stage in self.order:
            out[stage] = self.last[stage] - prev
            prev = self.last[stage]
        if end is not None:
            out["finish"] = end - prev
        return out


def cpu_busy_s() -> float | None:
    """Seconds of CPU time all cores have spent busy since boot (``/proc/stat``), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in fields]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def others_busy(seconds: float = 1.0) -> float | None:
    """How many cores other processes keep busy, measured over ``seconds``."""
    a, c0 = cpu_busy_s(), time.process_time()
    time.sleep(seconds)
    b = cpu_busy_s()
    if a is None or b is None:
        return None
    return max(0.0, (b - a - (time.process_time() - c0)) / seconds)


def wait_idle(budget: float, limit: float = 0.2) -> float | None:
    """Wait up to ``budget`` seconds until other processes keep fewer than ``limit`` cores
    busy; returns the last reading (None where ``/proc/stat`` is missing)."""
    t_end = time.monotonic() + budget
    busy = others_busy(0.5)
    while busy is not None and busy > limit and time.monotonic() < t_end:
        busy = others_busy(2.0)
    return busy


# ---- threads -------------------------------------------------------------------------------
def thread_env(threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment that holds every Rust / native thread pool the peers use to ``threads``:
    rayon (``RAYON_NUM_THREADS``), HF tokenizers (``RAYON_RS_NUM_THREADS`` and
    ``TOKENIZERS_PARALLELISM``), OpenMP / BLAS."""
    env = dict(os.environ if base is None else base)
    n = str(threads)
    env.update(
        RAYON_NUM_THREADS=n,
        RAYON_RS_NUM_THREADS=n,
        TOKENIZERS_PARALLELISM="true" if threads > 1 else "false",
        OMP_NUM_THREADS=n,
        OPENBLAS_NUM_THREADS=n,
        MKL_NUM_THREADS=n,
    )
    return env


# ---- packages ------------------------------------------------------------------------------
def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def ensure_packages(pins: Mapping[str, str], *, log: Callable[[str], None] = print) -> dict:
    """``pip install dist==version`` into this interpreter for each pin that is missing or at
    another version. A pin that cannot be installed is reported, not raised: returns
    ``{dist: installed version or None}``."""
    out = {}
    for dist, version in pins.items():
        if installed_version(dist) != version:
            log(f"installing {dist}=={version}")
            r = subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", f"{dist}=={version}"],
                check=False,
                capture_output=True,
                text=True,
            )
            if r.returncode != 0:
                log(
                    f"  could not install {dist}=={version}: "
                    f"{(r.stderr.strip().splitlines() or ['?'])[-1]}"
                )
        out[dist] = installed_version(dist)
    return out


# ---- machine -------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / MIB, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# ---- output --------------------------------------------------------------------------------
def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None
) -> str:
    """A plain-text table; ``align`` has one ``l`` or ``r`` per column (default: numbers right,
    text left)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    if align is None:
        align = "".join(
            "r"
            if rows and all(isinstance(r[i], (int, float)) or r[i] in ("-", None) for r in rows)
            else "l"
            for i in range(len(headers))
        )

    def line(vals):
        return "  ".join(
            v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(vals, widths, align)
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def json_line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, sort_keys=False, ensure_ascii=False)
