"""Capture, analysis and figures for the Modern Blocks Explorer. No Streamlit here: pages call into it."""

__version__ = "0.2.0"  # the package's version (pyproject.toml reads it here); CSV exports name it

from .edits import Edits
from .trace import Trace, estimate_bytes, selector, trace, trace_generation
from .vocabulary import capture_names, shape_of

__all__ = [
    "Edits",
    "Trace",
    "capture_names",
    "estimate_bytes",
    "selector",
    "shape_of",
    "trace",
    "trace_generation",
]
