"""tiktoken's API on tokforge: ``import tokforge.tiktoken as tiktoken`` is the whole migration.

Same functions, same :class:`Encoding` methods, same ids, same special-token rules and
exceptions as tiktoken 0.14; the encoding runs on tokforge's native BPE. Rank files are found
offline only (tiktoken's cache, then packages that ship them: see :mod:`.load`).

>>> import tokforge.tiktoken as tiktoken
>>> tiktoken.encoding_name_for_model("gpt-4o")
'o200k_base'
>>> "cl100k_base" in tiktoken.list_encoding_names()
True
"""

from . import core as core
from . import load as load
from . import model as model
from . import registry as registry
from .core import Encoding as Encoding
from .load import RankFileNotFoundError as RankFileNotFoundError
from .model import encoding_for_model as encoding_for_model
from .model import encoding_name_for_model as encoding_name_for_model
from .registry import get_encoding as get_encoding
from .registry import list_encoding_names as list_encoding_names

#: The tiktoken release whose API (and tests) this module follows.
__version__ = "0.14.0"

__all__ = [
    "Encoding",
    "RankFileNotFoundError",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
    "list_encoding_names",
]
