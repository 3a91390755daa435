"""For every test and doctest (tests/ and python/tokforge/): `tempfile`'s directories in this
process go under pytest's own temporary directory, which pytest cleans up (doctests show
`tempfile.mkdtemp()` as a user would write it)."""

import tempfile

import pytest


@pytest.fixture(autouse=True, scope="session")
def _temporary_files_under_pytest(tmp_path_factory):
    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("tempfile"))
    yield
    tempfile.tempdir = before
