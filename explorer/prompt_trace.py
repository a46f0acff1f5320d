"""Every captured quantity of one (model, prompt, edits), computed when first read and shared by every page.

    pt = PromptTrace(decoder, ids, tokenizer=tok)
    pt["layers.3.self_attn.pattern"]      # the same tensor a full trace(decoder, ids) captures

A page asks for names; it never says up front which. The first read runs one forward, the *base*, which keeps what
stays small at any length: each block's input (`resid_pre`), the norms' rms, the final norm, RoPE's tables, the last
position's logits, and per-layer `summaries` of quantities too large to keep for every layer (a head's mean entropy,
say). Reading any other name of layer i re-runs block i alone from its saved input: exactly what the forward computed
there, for 1/L of its cost. That layer's names are then kept, as two groups: its *vectors*, O(T) each, and its
*matrices* (scores and pattern), O(T²), least recently used out first past the byte budget.

Where one layer's matrices would not fit, the forward takes the fused attention path and matrices come a window of
query rows at a time (`attention_window`), each window re-run against the cached keys of the tokens before it.
"""

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping

import torch

from model import Decoder, KVCache, ModelConfig, ModelError, Tokenizer

from .compute import COMPUTE
from .edits import Edits
from .trace import Trace, _Recorder, selector
from .vocabulary import capture_names, shape_of

MATRICES = ("self_attn.scores", "self_attn.pattern")  # per layer, the names whose size grows with T²
_LAYER_NAME = re.compile(r"layers\.(\d+)\.(.+)")
Summary = Callable[[torch.Tensor], torch.Tensor]  # a captured tensor -> a small tensor kept for every layer


class TooLarge(ModelError):
    """A capture that would not fit in the memory budget; the message offers what does."""


def base_names(config: ModelConfig) -> list[str]:
    """What the base forward keeps: everything O(T·D) that pages read across all layers."""
    last = config.num_hidden_layers - 1
    return ["embed", "rope.*", "layers.*.resid_pre", f"layers.{last}.resid_post", "layers.*.input_layernorm.rms",
            "layers.*.post_attention_layernorm.rms", "norm.rms", "norm.out"]


def group_bytes(config: ModelConfig, tokens: int, matrices: bool) -> int:
    """Float32 bytes of one layer's matrices (scores and pattern), or of all its other names."""
    names = [n for n in capture_names(config) if n.startswith("layers.0.")]
    return 4 * sum(torch.Size(shape_of(n, config, 1, tokens)).numel() for n in names
                   if n.endswith(MATRICES) == matrices)


class _Keeper(_Recorder):
    """The capture object of a PromptTrace forward: the trace's recorder, plus per-layer summaries, plus the explicit
    attention path whenever `explicit` (so that every forward of one PromptTrace computes attention the same way, and
    a re-run layer equals the base forward's to the bit)."""

    def __init__(self, keep: Callable[[str], bool], edits: Edits, config: ModelConfig, *, explicit: bool,
                 summaries: Mapping[str, Summary] | None = None):
        super().__init__(keep, edits, config, torch.float32)
        self.explicit, self.summaries = explicit, summaries or {}
        self.summarized: dict[tuple[int, str], torch.Tensor] = {}

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        x = super().__call__(name, x)
        layer, part = _layer_part(name)
        if part in self.summaries:
            self.summarized[layer, part] = self.summaries[part](x)
        return x

    def wants(self, name: str) -> bool:
        layer, part = _layer_part(name)
        if part in MATRICES:
            return self.explicit
        return part in self.summaries or super().wants(name)


def _layer_part(name: str) -> tuple[int | None, str | None]:
    m = _LAYER_NAME.fullmatch(name)
    return (int(m[1]), m[2]) if m else (None, None)


class PromptTrace:
    """One (model, prompt, edits): read names like a Trace; the model runs only for what has not been read yet.

    Thread-safe: sessions on one server share it. All model work goes through the server's compute queue.
    """

    def __init__(self, decoder: Decoder, ids: list[int], *, edits: Edits | None = None,
                 tokenizer: Tokenizer | None = None, summaries: Mapping[str, Summary] | None = None,
                 budget_bytes: int = 2 * 2**30):
        self.decoder, self.config = decoder, decoder.config
        self.input_ids = torch.tensor([ids], dtype=torch.long)
        self.tokens = tokenizer.tokens(ids) if tokenizer else [str(i) for i in ids]
        self.edits = edits or Edits()
        self.summaries = dict(summaries or {})
        self.budget = budget_bytes
        T = len(ids)
        # Past a quarter of the budget for one layer's scores and pattern, the forward takes the fused path and
        # matrices come per window of queries; below, one layer's matrices are captured whole.
        self.explicit = group_bytes(self.config, T, matrices=True) <= budget_bytes // 4
        self._lock = threading.RLock()
        self._base: Trace | None = None
        self._last_logits: torch.Tensor | None = None
        self._summarized: dict[tuple[int, str], torch.Tensor] = {}
        self._groups: OrderedDict[Hashable, dict[str, torch.Tensor]] = OrderedDict()  # least recently used first
        self._memo: dict[Hashable, object] = {}
        self.forwards = 0  # model runs made, whole or one layer: tests count them

    # -- reading names ---------------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        """A captured name, on the CPU in float32, computed if needed (see the module docstring)."""
        layer, part = _layer_part(name)
        last = self.config.num_hidden_layers - 1
        if part == "resid_post" and layer is not None and layer < last:
            name = f"layers.{layer + 1}.resid_pre"  # the same tensor: block i's output is block i + 1's input
        base = self.base()
        if name in base:
            return base[name]
        if name == "logits":
            return self.logits_at(range(len(self.tokens)))
        if layer is None or not 0 <= layer <= last:
            raise KeyError(f"{name!r} is not a name this model produces (see docs/capture-vocabulary.md)")
        if part in MATRICES and not self.explicit:
            raise TooLarge(f"The attention matrices of a layer at {len(self.tokens):,} tokens would take "
                           f"{group_bytes(self.config, len(self.tokens), True) / 2**20:,.0f} MiB: read them a "
                           "window of queries at a time (attention_window).")
        tensors = self._group(("matrices" if part in MATRICES else "vectors", layer))
        if name not in tensors:
            raise KeyError(f"{name!r} is not a name this model produces (see docs/capture-vocabulary.md)")
        return tensors[name]

    def __contains__(self, name: str) -> bool:
        """Whether this forward produces `name` (q_normed, say, only where QK-norm runs); computes it to know."""
        try:
            self[name]
        except KeyError:
            return False
        return True

    pattern_by_group = Trace.pattern_by_group  # reads the pattern through __getitem__, so it runs the layer if need be

    def summary(self, layer: int, part: str) -> torch.Tensor | None:
        """A summary the base forward computed for `layers.{layer}.{part}`; None where it could not (matrices that
        the fused attention path never forms)."""
        self.base()
        return self._summarized.get((layer, part))

    @property
    def last_logits(self) -> torch.Tensor:
        """(V,) float32 logits of the last position: what the model predicts next."""
        self.base()
        return self._last_logits

    def first_nonfinite(self) -> str | None:
        """The first name, in forward order, where the base forward produced NaN or ±inf (None when it did not):
        broken weights or a dtype that overflows show as gaps in every chart, and this says where they began."""
        tensors, logits = self.base().tensors, self.last_logits  # outside memo(), which holds this trace's lock

        def find() -> str | None:
            last = self.config.num_hidden_layers - 1
            order = ["embed", *(f"layers.{i}.resid_pre" for i in range(last + 1)), f"layers.{last}.resid_post",
                     "norm.out"]
            first = next((name for name in order if not torch.isfinite(tensors[name]).all()), None)
            return first or (None if torch.isfinite(logits).all() else "logits")

        return self.memo("first_nonfinite", find)

    def logits_at(self, positions) -> torch.Tensor:
        """(1, P, V) float32 logits at the given positions only: the LM head on the final norm's output there."""
        positions = list(positions)
        need = 4 * len(positions) * self.config.vocab_size
        if need > self.budget // 2:
            raise TooLarge(f"Logits at {len(positions):,} positions would take {need / 2**20:,.0f} MiB: ask for "
                           "fewer positions.")
        x = self["norm.out"][:, positions]
        with COMPUTE.slot(), torch.inference_mode():
            return self.decoder.lm_head(x.to(self.decoder.device, self.decoder.dtype)).float().cpu()

    def attention_window(self, layer: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        """Scores and pattern of queries start .. stop-1 against every key they see: {"scores", "pattern"}, each
        (1, Hq, stop - start, stop). Equal to rows start .. stop-1 of the whole matrices (up to the last bits)."""
        if self.explicit:
            rows = slice(start, stop)
            return {part.rsplit(".", 1)[1]: self[f"layers.{layer}.{part}"][:, :, rows, :stop] for part in MATRICES}
        return self._group(("window", layer, start, stop))

    def max_query_window(self) -> int:
        """The most query rows whose matrices (against every key) fit where one layer's whole matrices would."""
        per_row = group_bytes(self.config, 1, True) * len(self.tokens)
        return max(1, min(len(self.tokens), (self.budget // 4) // per_row))

    def memo(self, key: Hashable, compute: Callable[[], object]) -> object:
        """compute() once per key for this trace: derived results (a logit-lens column, a summary table) that every
        session on this prompt can share. Keep them small: they are not counted against the budget."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        with COMPUTE.slot(), self._lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]

    # -- what is held ----------------------------------------------------------------------------------------------
    def nbytes(self) -> int:
        with self._lock:
            return self._held_by_groups() + (self._base.nbytes() if self._base else 0)

    def _held_by_groups(self) -> int:
        return sum(_bytes(group) for group in self._groups.values())

    def to_trace(self) -> Trace:
        """The names computed so far as one Trace (e.g. to save as a file)."""
        with self._lock:
            tensors = dict(self.base().tensors)
            for key, group in self._groups.items():
                if key[0] != "window":
                    tensors.update(group)
        return Trace(tensors, self.input_ids, self.tokens, self.config, self.edits)

    # -- running the model -----------------------------------------------------------------------------------------
    def base(self) -> Trace:
        """The base forward's Trace, run on first use."""
        with self._lock:
            if self._base is not None:
                return self._base
        with COMPUTE.slot(), self._lock:
            if self._base is None:
                keeper = _Keeper(selector(base_names(self.config)), self.edits, self.config,
                                 explicit=self.explicit, summaries=self.summaries)
                with torch.inference_mode():
                    logits = self.decoder(self.input_ids.to(self.decoder.device), capture=keeper, logits_to_keep=1)
                self.forwards += 1
                self._last_logits = logits[0, -1].float().cpu()
                self._summarized = keeper.summarized
                self._base = Trace(keeper.tensors, self.input_ids, self.tokens, self.config, self.edits)
            return self._base

    def _group(self, key: tuple) -> dict[str, torch.Tensor]:
        with self._lock:
            if key in self._groups:
                self._groups.move_to_end(key)
                return self._groups[key]
        need = self._group_need(key)
        if need > self.budget // 2:
            raise TooLarge(f"Layer {key[1]}'s {key[0]} at {len(self.tokens):,} tokens would take "
                           f"{need / 2**20:,.0f} MiB, more than this server keeps for one prompt "
                           f"({self.budget // 2 / 2**20:,.0f} MiB): use a shorter prompt.")
        with COMPUTE.slot(), self._lock:
            if key not in self._groups:
                self._evict(room_for=need)
                self._groups[key] = self._run_window(*key[1:]) if key[0] == "window" else self._run_layer(*key)
                self.forwards += 1
            return self._groups[key]

    def _group_need(self, key: tuple) -> int:
        T = len(self.tokens)
        if key[0] == "window":
            _, _, start, stop = key
            return group_bytes(self.config, 1, True) * (stop - start) * stop
        return group_bytes(self.config, T, key[0] == "matrices")

    def _evict(self, room_for: int) -> None:
        held = self._held_by_groups()
        while self._groups and held + room_for > self.budget // 2:
            _, dropped = self._groups.popitem(last=False)
            held -= _bytes(dropped)

    def _resid_pre(self, layer: int) -> torch.Tensor:
        x = self.base().tensors[f"layers.{layer}.resid_pre"]  # float32 on the CPU, or as captured on a GPU
        return x.to(self.decoder.device, self.decoder.dtype)  # exact: it was captured in the model's dtype

    def _run_layer(self, what: str, layer: int) -> dict[str, torch.Tensor]:
        prefix = f"layers.{layer}."
        if what == "matrices":
            keep = selector([prefix + part for part in MATRICES])
        else:
            keep = selector(lambda n: n.startswith(prefix) and not n.endswith(MATRICES))
        keeper = _Keeper(keep, self.edits, self.config, explicit=self.explicit)
        with torch.inference_mode():
            self.decoder.run_layers(self._resid_pre(layer), range(layer, layer + 1), capture=keeper)
        return {name: _on_cpu(t) for name, t in keeper.tensors.items()}

    def _run_window(self, layer: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        if self.edits.replace or (self.edits.ablate_heads and self.edits.ablation == "mean"):
            # These edits may read along the sequence, which a window only partly holds.
            raise TooLarge("A window of queries cannot apply edits that read the whole sequence: use a shorter "
                           "prompt.")
        x = self._resid_pre(layer)
        cache = KVCache(self.config, 1, stop, self.decoder.device, self.decoder.dtype)
        prefix = f"layers.{layer}.self_attn."
        quiet = _Keeper(selector([]), self.edits, self.config, explicit=False)
        keeper = _Keeper(selector([prefix + "scores", prefix + "pattern"]), self.edits, self.config, explicit=True)
        with torch.inference_mode():
            if start:  # the keys and values of the tokens before the window, into the cache
                self.decoder.run_layers(x[:, :start], range(layer, layer + 1), capture=quiet, kv_cache=cache)
            self.decoder.run_layers(x[:, start:stop], range(layer, layer + 1), capture=keeper, kv_cache=cache,
                                    start=start)
        return {name.rsplit(".", 1)[1]: _on_cpu(t) for name, t in keeper.tensors.items()}


def _bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _on_cpu(t: torch.Tensor) -> torch.Tensor:
    return t if t.is_cpu else t.to("cpu", torch.float32)


class TraceCache:
    """The server's PromptTraces by key, least recently used dropped first once their bytes pass the budget.

    A PromptTrace runs nothing when made, so making one under the lock is cheap."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self._traces: OrderedDict[Hashable, PromptTrace] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], PromptTrace]) -> PromptTrace:
        with self._lock:
            if key not in self._traces:
                self._traces[key] = make()
            self._traces.move_to_end(key)
            held = sum(t.nbytes() for t in self._traces.values())
            while len(self._traces) > 1 and held > self.budget:
                _, dropped = self._traces.popitem(last=False)
                held -= dropped.nbytes()
            return self._traces[key]

    def __len__(self) -> int:
        return len(self._traces)
