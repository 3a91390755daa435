import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "tokforge",
    max_examples=int(os.environ.get("TOKFORGE_MAX_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("tokforge")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    d = Path(os.environ.get("TOKFORGE_CORPORA") or ROOT / "corpora")
    assert (d / "MANIFEST.json").is_file(), "corpora/ is missing: the repo ships it"
    return d


@pytest.fixture(scope="session")
def corpus_docs(corpora_dir) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(corpora_dir.glob("*.txt"))}


@pytest.fixture(scope="session")
def gpt2_file() -> Path:
    from vocabularies import fetch

    return fetch("gpt2.tiktoken")


@pytest.fixture(scope="session")
def cl100k_file() -> Path:
    from vocabularies import fetch

    return fetch("cl100k_base.tiktoken")


@pytest.fixture(scope="session")
def tekken_file() -> Path:
    from vocabularies import fetch

    return fetch("tekken_240911.json")


# ---- opt-in groups: `pytest --torch` runs the tests marked `torch` (numpy vs PyTorch parity of
# tokforge.transfer, docs/transfer.md §8); without the flag they are deselected (reported as
# such), never skipped; with it, a missing torch fails them
def pytest_addoption(parser):
    parser.addoption("--torch", action="store_true",
                     help="run the tests marked torch (needs torch: pip install 'tokforge[torch]')")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--torch"):
        return
    drop = [it for it in items if "torch" in it.keywords]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in items if "torch" not in it.keywords]
