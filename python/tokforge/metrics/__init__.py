"""Tokenizer-quality metrics (docs/metrics.md)."""
from .qtok import qtok as qtok
