"""What one server keeps for all its browser sessions: loaded models and the traces of their prompts.

No Streamlit here, so that the server can warm up before its first visitor (app.py's lifespan) and tests can drive
it directly. A model is loaded once and shared read-only; a prompt's PromptTrace is shared by every page and every
session that shows the same (model, prompt, edits), so opening another page never re-runs the model.
"""

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass

import torch

from model import Decoder, ModelError, Tokenizer, load_model, load_tokenizer

from .analysis.attention import summarize_pattern
from .analysis.swiglu import summarize_act
from .compute import COMPUTE
from .edits import Edits
from .figures.common import prime as prime_figures
from .prompt_trace import PromptTrace, TraceCache
from .server_config import ConfigError, ServerConfig, from_environment

try:
    CONFIG = from_environment()  # MBE_CONFIG's file, or the open configuration of a single user's machine
except ConfigError as e:  # a server that cannot honour its configuration does not start
    raise SystemExit(f"Modern Blocks Explorer cannot start: {e}") from None
# What one trace may keep, in bytes; all traces together stay within CONFIG.trace_budget_bytes.
TRACE_BUDGET_BYTES = CONFIG.per_trace_bytes
# Per-layer numbers the base forward keeps for views that cover every layer (see PromptTrace).
SUMMARIES = {"self_attn.pattern": summarize_pattern, "mlp.act": summarize_act}
STORY_PROMPTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "Tom and Sam went to the park. Tom had a red ball. Sam said, \"Can I play with your ball?\"",
    "The cat sat on the mat. The dog sat on the log. The cat",
    "One day, a big dog saw a small bird in the tree. The dog wanted to",
]
# The sidebar's examples, the first of them each session's starting prompt: the configuration's prompt, if any.
EXAMPLE_PROMPTS = [CONFIG.prompt, *STORY_PROMPTS] if CONFIG.prompt else STORY_PROMPTS


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


DEFAULT_CHOICE = ModelChoice(CONFIG.default_model, devices()[0], "auto")


class ModelCache:
    """Loaded models by (choice, token), each loaded once even when several sessions ask for it at the same time,
    all of them within the configuration's budget of parameter bytes: the least recently used are dropped first, and
    a model larger than the whole budget is refused, with a message, before its weights are read. Only sources the
    configuration allows are loaded."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.budget = config.model_budget_bytes
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
        """Raises ModelError for a source that cannot be loaded, is not allowed, or is larger than the budget; its
        message names no server path that the configuration does not expose."""
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
                try:
                    loaded = self._load(choice, token, progress)
                except ModelError as e:
                    raise ModelError(self.config.redact(str(e))) from None
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

    def _load(self, choice: ModelChoice, token: str | None, progress) -> tuple[Decoder, Tokenizer]:
        # A Hub download outside the queue: it may take minutes, in which other sessions' forwards go on.
        folder = self.config.resolve(choice.source, token, progress)
        dtype = None if choice.dtype == "auto" else choice.dtype
        # The tokenizer is read while the weights convert (Qwen3's: 0.7 s of a 3 s load, mostly in Rust).
        with ThreadPoolExecutor(1, thread_name_prefix="tokenizer") as reader, COMPUTE.slot():
            tokenizer = reader.submit(load_tokenizer, folder)
            # A model larger than the whole budget is refused before it is read.
            model = load_model(folder, device=choice.device, dtype=dtype, max_bytes=self.budget)
            return model, tokenizer.result()


def model_bytes(model: Decoder) -> int:
    """The bytes of a model's parameters (a tied LM head counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


MODELS = ModelCache(CONFIG)
TRACES = TraceCache(CONFIG.trace_budget_bytes)


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
