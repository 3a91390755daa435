"""The wheel users install: what `make dist` built (built here if missing), checked as a file
(tags, stripped native module, LICENSE, corpora, metadata) and installed into a fresh virtualenv
with only its declared dependencies (the copies `make dist` downloaded into .cache/wheels, so
the test needs no network), where the CLI runs with its defaults outside the source tree. Also: the extras every "pip install 'tokforge[...]'" message names exist."""

from __future__ import annotations

import email.parser
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)


def _dist_files() -> tuple[Path, Path]:
    if not (DIST / ".built").is_file():
        subprocess.run(["make", "dist"], cwd=ROOT, check=True, capture_output=True)
    wheels = sorted(DIST.glob(f"tokforge-{VERSION}-*.whl"))
    sdists = sorted(DIST.glob(f"tokforge-{VERSION}.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(DIST.iterdir())
    return wheels[0], sdists[0]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return _dist_files()[0]


@pytest.fixture(scope="module")
def sdist() -> Path:
    return _dist_files()[1]


def _elf_section_names(data: bytes) -> set[str]:
    """Section names of a 64-bit little-endian ELF file (enough to see a symbol table)."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = headers[shstrndx][4]
    names = set()
    for name_off, *_ in headers:
        end = data.index(b"\0", strtab_off + name_off)
        names.add(data[strtab_off + name_off : end].decode())
    return names


def test_wheel_is_abi3_manylinux2014_and_stripped(wheel):
    assert wheel.name.startswith(f"tokforge-{VERSION}-cp39-abi3-")
    assert "manylinux_2_17_x86_64" in wheel.name and "manylinux2014_x86_64" in wheel.name
    with zipfile.ZipFile(wheel) as z:
        so = z.read("tokforge/_core.abi3.so")
    sections = _elf_section_names(so)
    assert ".text" in sections and ".symtab" not in sections and ".debug_info" not in sections


def test_wheel_carries_license_corpora_typing_and_metadata(wheel, corpora_dir):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = email.parser.Parser().parsestr(
            z.read(f"tokforge-{VERSION}.dist-info/METADATA").decode("utf-8")
        )
        packaged = json.loads(z.read("tokforge/_corpora/MANIFEST.json"))
    assert f"tokforge-{VERSION}.dist-info/licenses/LICENSE" in names
    assert {"tokforge/py.typed", "tokforge/_core.pyi"} <= names
    expected = {f"tokforge/_corpora/{p.name}" for p in corpora_dir.glob("*.txt")}
    assert expected <= names and packaged == json.loads((corpora_dir / "MANIFEST.json").read_text())
    assert any(n.startswith("tokforge/_corpora/LICENSES/") for n in names)
    assert meta["Name"] == "tokforge" and meta["Version"] == VERSION
    assert meta["License-Expression"] == "MIT" and meta["Author"] == "tokforge developers"
    assert meta["Keywords"] and meta["Description-Content-Type"].startswith("text/markdown")
    assert len(meta.get_all("Project-URL")) >= 3 and len(meta.get_all("Classifier")) >= 10
    extras = set(meta.get_all("Provides-Extra"))
    assert extras == set(PYPROJECT["project"]["optional-dependencies"])
    runtime = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert sorted(re.match(r"[\w-]+", r).group() for r in runtime) == sorted(
        re.match(r"[\w-]+", r).group() for r in PYPROJECT["project"]["dependencies"]
    )


def test_sdist_has_what_a_build_needs(sdist):
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in ["LICENSE", "README.md", "CHANGELOG.md", "Cargo.toml", "Cargo.lock",
                 "pyproject.toml", "rust/src/lib.rs", "python/tokforge/__init__.py",
                 "python/tokforge/_corpora/MANIFEST.json", "corpora/MANIFEST.json"]:  # fmt: skip
        assert need in names, need
    # `make dist` built a wheel back from this sdist: it has the corpora too
    rebuilt = sorted((ROOT / "target" / "sdist-wheel").glob(f"tokforge-{VERSION}-*.whl"))
    assert rebuilt, "make dist did not build the sdist"
    with zipfile.ZipFile(rebuilt[-1]) as z:
        assert "tokforge/_corpora/MANIFEST.json" in z.namelist()


def test_every_extra_named_in_an_error_exists():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    named = set()
    for p in (ROOT / "python" / "tokforge").rglob("*.py"):
        named |= set(re.findall(r"tokforge\[([\w-]+)\]", p.read_text(encoding="utf-8")))
        named |= set(re.findall(r'_need\("[\w.]+", "([\w-]+)"\)', p.read_text(encoding="utf-8")))
    assert named and named <= extras, named - extras


def test_installed_wheel_runs_the_cli_with_its_defaults_outside_the_tree(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TOKFORGE_CORPORA")}  # fmt: skip
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # only the wheel's declared dependencies, from the copies `make dist` downloaded
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-index", "--find-links",
                    str(ROOT / ".cache" / "wheels"), str(wheel)], check=True, env=env)  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()

    def tokforge(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([str(venv / "bin" / "tokforge"), *args], cwd=work, env=env,
                           capture_output=True, text=True, input=input, timeout=300)  # fmt: skip
        assert r.returncode == 0, (args, r.stderr)
        return r

    assert tokforge("--version").stdout.strip() == f"tokforge {VERSION}"
    where = subprocess.run([str(py), "-c", "import tokforge; print(tokforge.corpus_dir())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the copy in the wheel
    info = json.loads(tokforge("train", "-q", "--json").stdout)
    assert info["vocab_size"] == 8000 and info["files"] == 39
    assert (work / "runs" / "demo" / "tokenizer.json").is_file()
    text = "Everyone has the right to life, liberty and security of person.\nSecond line\n"
    ids = tokforge("tokenize", input=text).stdout
    assert len(ids.splitlines()) == 2
    assert tokforge("decode", input=ids).stdout == text
    report = json.loads(tokforge("analyze", "-q", "--json").stdout)
    langs = {r["language"] for r in report["rows"] if r["metric"] == "bytes_per_token"}
    assert {"en", "ja", "code-python"} <= langs
