"""attn-doctor: get a fast attention backend working on a GPU machine, and prove it.

The command line is ``attn-doctor`` (or ``python -m attn_doctor``). This package imports
nothing heavy at start-up: torch, transformers and the attention packages are only ever
imported in child processes or on demand by the library API.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
