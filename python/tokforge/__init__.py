"""tokforge: byte-level BPE training and encoding, exactly compatible with ``tokenizers`` and
``tiktoken``, and LiB (Less-is-Better) tokenizers, behind one :class:`Tokenizer`.

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.train(texts=["hello world " * 20], vocab_size=260, pattern="gpt2")
>>> tok.decode(tok.encode_ordinary("hello world"))
'hello world'
"""

from . import byte_probs as byte_probs
from . import dynamic as dynamic
from . import lib_model as lib_model
from . import mixture as mixture
from ._core import batch_output_info as batch_output_info
from ._core import hf_pattern as hf_pattern
from ._core import preset_pattern as preset_pattern
from ._core import release_batch_output as release_batch_output
from .byte_probs import ByteEnsemble as ByteEnsemble
from .byte_probs import ByteLM as ByteLM
from .corpora import corpus_dir as corpus_dir
from .corpora import corpus_files as corpus_files
from .errors import FormatError as FormatError
from .errors import InputError as InputError
from .errors import PatternError as PatternError
from .errors import StoppedError as StoppedError
from .errors import TokforgeError as TokforgeError
from .errors import TrainingError as TrainingError
from .errors import VocabError as VocabError
from .tokenizer import Tokenizer as Tokenizer


def _version() -> str:
    """The installed distribution's version (maturin copies Cargo.toml's into the metadata);
    the native module's ``CARGO_PKG_VERSION`` when run from a tree that was never installed."""
    from importlib import metadata

    try:
        return metadata.version("tokforge")
    except metadata.PackageNotFoundError:  # pragma: no cover - uninstalled source tree
        from ._core import __version__ as native

        return native


__version__: str = _version()

__all__ = [
    "__version__",
    "Tokenizer",
    "preset_pattern",
    "hf_pattern",
    "batch_output_info",
    "release_batch_output",
    "corpus_dir",
    "corpus_files",
    "TokforgeError",
    "FormatError",
    "InputError",
    "StoppedError",
    "PatternError",
    "TrainingError",
    "VocabError",
    "dynamic",
    "lib_model",
    "mixture",
    "byte_probs",
    "ByteLM",
    "ByteEnsemble",
]
