"""What one server keeps for all its browser sessions: loaded models and the traces of their prompts.

No Streamlit here, so that the server can warm up before its first visitor (app.py's lifespan) and tests can drive
it directly. A model is loaded once and shared read-only; a prompt's PromptTrace is shared by every page and every
session that shows the same (model, prompt, edits), so opening another page never re-runs the model.
"""

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch

from model import DEFAULT_MODEL, Decoder, Tokenizer, load_model, load_tokenizer, resolve_source

from .analysis.attention import summarize_pattern
from .analysis.swiglu import summarize_act
from .compute import COMPUTE
from .edits import Edits
from .figures.common import prime as prime_figures
from .prompt_trace import PromptTrace, TraceCache

# What all traces together may hold, in bytes (MBE_TRACE_BUDGET_MB): past it the least recently used go first.
TRACE_BUDGET_BYTES = int(os.environ.get("MBE_TRACE_BUDGET_MB", "2048")) * 2**20
# What all loaded models together may hold, in bytes (MBE_MODEL_BUDGET_MB): past it the least recently used go first.
MODEL_BUDGET_BYTES = int(os.environ.get("MBE_MODEL_BUDGET_MB", "8192")) * 2**20
# Per-layer numbers the base forward keeps for views that cover every layer (see PromptTrace).
SUMMARIES = {"self_attn.pattern": summarize_pattern, "mlp.act": summarize_act}
EXAMPLE_PROMPTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "Tom and Sam went to the park. Tom had a red ball. Sam said, \"Can I play with your ball?\"",
    "The cat sat on the mat. The dog sat on the log. The cat",
    "One day, a big dog saw a small bird in the tree. The dog wanted to",
]


@dataclass(frozen=True)
class ModelChoice:
    source: str  # bundled name, local folder or Hub repo id
    device: str
    dtype: str  # "auto" or a torch dtype name


def devices() -> list[str]:
    """The devices this machine offers, the fastest first (the sidebar's default)."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    if torch.backends.mps.is_available():
        found.insert(0, "mps")
    return found


DEFAULT_CHOICE = ModelChoice(DEFAULT_MODEL, devices()[0], "auto")


class ModelCache:
    """Loaded models by (choice, token), each loaded once even when several sessions ask for it at the same time,
    all of them within `budget_bytes` of parameters: the least recently used are dropped first, and a model larger
    than the whole budget is refused, with a message, before its weights are read."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self._models: OrderedDict[tuple, tuple[Decoder, Tokenizer]] = OrderedDict()
        self._loading: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def nbytes(self) -> int:
        with self._lock:
            return self._held_bytes()

    def _held_bytes(self) -> int:  # with self._lock held
        return sum(model_bytes(model) for model, _ in self._models.values())

    def get(self, choice: ModelChoice, token: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> tuple[Decoder, Tokenizer]:
        """Raises ModelError for a source that cannot be loaded, or that is larger than the budget."""
        # The fingerprint keeps a gated model loaded with one person's token from being served to a session without
        # it; the token itself is never kept.
        key = (choice, hashlib.sha256(token.encode()).hexdigest() if token else "")
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        try:
            with loading:  # a second session asking for the same model waits for the first load, not repeating it
                with self._lock:
                    if key in self._models:
                        return self._models[key]
                # A Hub download outside the queue: it may take minutes, in which other sessions' forwards go on.
                folder = resolve_source(choice.source, token=token or None, progress=progress)
                dtype = None if choice.dtype == "auto" else choice.dtype
                with COMPUTE.slot():  # a model larger than the whole budget is refused before it is read
                    loaded = (load_model(folder, device=choice.device, dtype=dtype, max_bytes=self.budget),
                              load_tokenizer(folder))
                with self._lock:
                    self._models[key] = loaded
                    held = self._held_bytes()
                    while held > self.budget:  # the new one alone fits: older ones go until all fit
                        dropped, _ = self._models.popitem(last=False)[1]
                        held -= model_bytes(dropped)
                return loaded
        finally:
            with self._lock:
                self._loading.pop(key, None)


def model_bytes(model: Decoder) -> int:
    """The bytes of a model's parameters (a tied LM head counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


MODELS = ModelCache(MODEL_BUDGET_BYTES)
TRACES = TraceCache(TRACE_BUDGET_BYTES)


def prompt_trace(model: Decoder, tokenizer: Tokenizer, ids: list[int], edits: Edits | None = None) -> PromptTrace:
    """The shared PromptTrace of (model, ids, edits); nothing runs until a name is read."""
    edits = edits or Edits()
    # id(model) is safe as a key: the cached trace holds the model, so the id is not reused while the entry lives.
    key = (id(model), tuple(ids), repr(edits))
    return TRACES.get(key, lambda: PromptTrace(model, ids, edits=edits, tokenizer=tokenizer, summaries=SUMMARIES,
                                               budget_bytes=TRACE_BUDGET_BYTES))


def warm_up() -> None:
    """Load the default model, run the default prompt's forward and make plotly import what charts need, so the
    first visitor waits for none of it."""
    model, tokenizer = MODELS.get(DEFAULT_CHOICE)
    prompt_trace(model, tokenizer, tokenizer.encode(EXAMPLE_PROMPTS[0])).base()
    prime_figures()
