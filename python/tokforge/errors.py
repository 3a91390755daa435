"""tokforge's exceptions. All subclass :class:`TokforgeError`, itself a :class:`ValueError`.

They are defined once, in the native module, so errors raised in Rust and in Python are the
same classes.
"""

from ._core import FormatError as FormatError
from ._core import InputError as InputError
from ._core import PatternError as PatternError
from ._core import StoppedError as StoppedError
from ._core import TokforgeError as TokforgeError
from ._core import TrainingError as TrainingError
from ._core import VocabError as VocabError

__all__ = [
    "TokforgeError",
    "FormatError",
    "InputError",
    "StoppedError",
    "PatternError",
    "TrainingError",
    "VocabError",
]
