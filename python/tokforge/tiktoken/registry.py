"""Encodings by name: OpenAI's (:mod:`.openai_public`) and those of ``tiktoken_ext`` plugins.

Each encoding is built once and shared (``ENCODINGS``). Plugins are the modules of the
``tiktoken_ext`` namespace package that define ``ENCODING_CONSTRUCTORS``, as in tiktoken;
``tiktoken_ext.openai_public`` (tiktoken's own copy of OpenAI's encodings) is skipped, since
:mod:`.openai_public` provides them offline. A plugin written for tiktoken that imports
``tiktoken`` while tiktoken is not installed is skipped too; any other plugin error propagates.

>>> list_encoding_names()[:3]
['gpt2', 'r50k_base', 'p50k_base']
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import threading
from typing import Any, Callable, Optional

from . import openai_public
from .core import Encoding

__all__ = ["ENCODINGS", "ENCODING_CONSTRUCTORS", "get_encoding", "list_encoding_names"]

_lock = threading.RLock()
ENCODINGS: dict[str, Encoding] = {}
ENCODING_CONSTRUCTORS: Optional[dict[str, Callable[[], dict[str, Any]]]] = None


def _plugin_modules() -> list[str]:
    """Names of the ``tiktoken_ext.*`` plugin modules installed (without importing them)."""
    try:
        spec = importlib.util.find_spec("tiktoken_ext")
    except (ImportError, ValueError):
        return []
    paths = list((spec and spec.submodule_search_locations) or [])
    names = sorted({m.name for m in pkgutil.iter_modules(paths)})
    return [f"tiktoken_ext.{n}" for n in names if n != "openai_public"]


def _find_constructors() -> dict[str, Callable[[], dict[str, Any]]]:
    global ENCODING_CONSTRUCTORS
    with _lock:
        if ENCODING_CONSTRUCTORS is not None:
            return ENCODING_CONSTRUCTORS
        found = dict(openai_public.ENCODING_CONSTRUCTORS)
        for mod_name in _plugin_modules():
            try:
                mod = importlib.import_module(mod_name)
            except ModuleNotFoundError as e:
                if e.name == "tiktoken" or (e.name or "").startswith("tiktoken."):
                    continue
                raise
            constructors = getattr(mod, "ENCODING_CONSTRUCTORS", None)
            if constructors is None:
                raise ValueError(
                    f"tiktoken plugin {mod_name} does not define ENCODING_CONSTRUCTORS"
                )
            for enc_name, constructor in constructors.items():
                if enc_name in found:
                    raise ValueError(
                        f"Duplicate encoding name {enc_name} in tiktoken plugin {mod_name}"
                    )
                found[enc_name] = constructor
        ENCODING_CONSTRUCTORS = found
        return found


def get_encoding(encoding_name: str) -> Encoding:
    """The encoding called ``encoding_name`` (built on first use, then shared).

    Raises :class:`ValueError` for an unknown name and
    :class:`~tokforge.tiktoken.load.RankFileNotFoundError` when its rank file is not available
    offline."""
    if not isinstance(encoding_name, str):
        raise ValueError(f"Expected a string in get_encoding, got {type(encoding_name)}")
    enc = ENCODINGS.get(encoding_name)
    if enc is not None:
        return enc
    with _lock:
        enc = ENCODINGS.get(encoding_name)
        if enc is not None:
            return enc
        constructor = openai_public.ENCODING_CONSTRUCTORS.get(encoding_name)
        if constructor is None:
            constructor = _find_constructors().get(encoding_name)
        if constructor is None:
            raise ValueError(
                f"Unknown encoding {encoding_name}.\n"
                f"Known encodings: {list_encoding_names()}\n"
                f"Plugins found: {_plugin_modules()}"
            )
        enc = Encoding(**constructor())
        ENCODINGS[encoding_name] = enc
        return enc


def list_encoding_names() -> list[str]:
    """Names :func:`get_encoding` accepts: OpenAI's, then plugins'."""
    return list(_find_constructors())
