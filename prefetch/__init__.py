"""prefetch: batch LSP medication prefetch for Dutch hospitals."""

__version__ = "0.1.0"
