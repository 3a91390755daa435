"""Run tiktoken 0.14.0's own test suite twice — on tiktoken, and with ``tiktoken`` resolved to
``tokforge.tiktoken`` — in the same offline environment, print a pass/fail table, and fail if a
test that passes on tiktoken does not pass on tokforge.

    python tests/tiktoken_suite.py [--max-examples N] [--minimal]

The sdist comes from PyPI through pip (cached in ``.cache/tiktoken-suite``); only its
``tests/`` folder is used. Offline means: the rank files sit in a tiktoken cache folder
(:mod:`tiktoken_env`) and every HTTP(S) request goes to a closed local port, so a download
attempt fails at once instead of hanging. Hypothesis runs with a fixed seed and a fresh
database, so the run is deterministic.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = ROOT / ".cache" / "tiktoken-suite"
VERSION = "0.14.0"

SHIM = '''"""`tiktoken` resolved to `tokforge.tiktoken` (written by tests/tiktoken_suite.py)."""
import sys

import tokforge.tiktoken as _impl

for _name in ("core", "load", "model", "registry"):
    sys.modules["tiktoken." + _name] = getattr(_impl, _name)
sys.modules["tiktoken"] = _impl
'''


PLUGIN = '''"""pytest plugin for both runs (written by tests/tiktoken_suite.py).

Hypothesis feeds tests string constants it finds in "local" modules, i.e. code outside
site-packages. tiktoken is installed in site-packages; tokforge is an editable install, so
without this its own literals (like "<|endoftext|>") would be fed to tiktoken's tests in the
tokforge run only. Treating tokforge as installed code makes both runs draw the same inputs.
"""
import importlib.util

try:
    from hypothesis.internal.conjecture import providers as _providers
except ImportError:  # an older hypothesis mines no constants
    _providers = None

_spec = importlib.util.find_spec("tokforge")
_dirs = tuple(_spec.submodule_search_locations or []) if _spec else ()

if _providers is not None and hasattr(_providers, "is_local_module_file") and _dirs:
    _local = _providers.is_local_module_file

    def is_local_module_file(path):
        return not path.startswith(_dirs) and _local(path)

    _providers.is_local_module_file = is_local_module_file
'''


def sdist_tests() -> Path:
    """tiktoken's ``tests/`` folder, extracted from the sdist (downloaded once with pip)."""
    dest = WORK / f"tiktoken-{VERSION}"
    if (dest / "tests" / "test_encoding.py").is_file():
        return dest
    dl = WORK / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    archive = dl / f"tiktoken-{VERSION}.tar.gz"
    if not archive.is_file():
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            "tiktoken",
            "-q",
            "-d",
            str(dl),
            f"tiktoken=={VERSION}",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not archive.is_file():
            raise SystemExit(f"cannot fetch the tiktoken sdist with {' '.join(cmd)}:\n{r.stderr}")
    prefix = f"tiktoken-{VERSION}/tests/"
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.name.startswith(prefix) and m.isfile()]
        for m in members:
            out = dest / "tests" / m.name[len(prefix) :]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tf.extractfile(m).read())
    # an empty config, so pytest does not pick up tokforge's pyproject options
    (dest / "pytest.ini").write_text("[pytest]\n")
    return dest


def run(impl: str, suite: Path, cache: Path, max_examples: int) -> tuple[dict[str, str], float]:
    """Outcome of each test ("passed", "failed", "error", "skipped") under ``impl``."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        env.pop(var, None)
    env.update(
        TIKTOKEN_CACHE_DIR=str(cache),
        TIKTOKEN_MAX_EXAMPLES=str(max_examples),
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        NO_PROXY="",
        no_proxy="",
    )
    plugins = WORK / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "tiktoken_suite_plugin.py").write_text(PLUGIN)
    env["PYTHONPATH"] = str(plugins)
    if impl == "tokforge":
        shim = WORK / "shim"
        (shim / "tiktoken").mkdir(parents=True, exist_ok=True)
        (shim / "tiktoken" / "__init__.py").write_text(SHIM)
        env["PYTHONPATH"] = os.pathsep.join([str(shim), str(plugins)])
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            str(suite / "tests"),
            "-c",
            str(suite / "pytest.ini"),
            "--rootdir",
            str(suite),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tiktoken_suite_plugin",
            "--hypothesis-seed=0",
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit2",
        ]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if not report.is_file():
            raise SystemExit(f"pytest on {impl} wrote no report:\n{r.stdout}\n{r.stderr}")
        outcomes = {}
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            kinds = [child.tag for child in case]
            if "failure" in kinds:
                outcomes[name] = "failed"
            elif "error" in kinds:
                outcomes[name] = "error"
            elif "skipped" in kinds:
                outcomes[name] = "skipped"
            else:
                outcomes[name] = "passed"
    # the run used the implementation it names
    probe = "import tiktoken; print(tiktoken.Encoding.__module__)"
    module = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True
    ).stdout.strip()
    expected = "tokforge.tiktoken.core" if impl == "tokforge" else "tiktoken.core"
    if module != expected:
        raise SystemExit(f"the {impl} run imported {module!r} as tiktoken.Encoding's module")
    return outcomes, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-examples", type=int, default=100, help="hypothesis examples per test")
    ap.add_argument(
        "--minimal",
        action="store_true",
        help="cache only r50k, cl100k and o200k (no p50k, no GPT-2 data-gym files)",
    )
    args = ap.parse_args(argv)

    sys.path.insert(0, str(HERE))
    from tiktoken_env import tiktoken_cache

    suite = sdist_tests()
    if args.minimal:
        cache = tiktoken_cache(WORK / "cache-minimal", ("r50k_base", "cl100k_base", "o200k_base"))
    else:
        cache = tiktoken_cache(WORK / "cache")
    results, times = {}, {}
    for impl in ("tiktoken", "tokforge"):
        results[impl], times[impl] = run(impl, suite, cache, args.max_examples)

    names = sorted(set(results["tiktoken"]) | set(results["tokforge"]))
    width = max(len(n) for n in names)
    files = "r50k, cl100k, o200k" if args.minimal else "r50k, p50k, cl100k, o200k, GPT-2 data-gym"
    print(
        f"tiktoken {VERSION} test suite, offline (cache: {files}; "
        f"TIKTOKEN_MAX_EXAMPLES={args.max_examples})"
    )
    print(f"{'test':<{width}}  {'tiktoken':<8}  tokforge")
    regressions = []
    for n in names:
        a = results["tiktoken"].get(n, "absent")
        b = results["tokforge"].get(n, "absent")
        print(f"{n:<{width}}  {a:<8}  {b}")
        if a == "passed" and b != "passed":
            regressions.append(n)
    print(f"run time: tiktoken {times['tiktoken']:.1f} s, tokforge {times['tokforge']:.1f} s")
    for impl in ("tiktoken", "tokforge"):
        passed = sum(v == "passed" for v in results[impl].values())
        print(f"{impl}: {passed} of {len(results[impl])} tests pass")
    if not any(v == "passed" for v in results["tiktoken"].values()):
        print("tiktoken passed no test: the environment is broken")
        return 1
    if regressions:
        print("passed on tiktoken but not on tokforge: " + ", ".join(regressions))
        return 1
    print("every test that passes on tiktoken passes on tokforge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
