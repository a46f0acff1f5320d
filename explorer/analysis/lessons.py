"""The experiments of the lesson pages (pages/lesson_*.py): each measures, on this machine or this model, what a textbook claims.

Every function returns plain numbers, so a test can run it at a reduced size and the page can show the result
next to the claim whether the two agree or not.
"""

import statistics
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from model import Decoder, ModelError
from model.norm import RMSNorm

from ..edits import Edits
from ..trace import Trace, trace
from . import model_facts
from . import rope as rope_analysis

# ---------------------------------------------------------------- RMSNorm vs LayerNorm


@dataclass(frozen=True)
class NormTiming:
    """Median milliseconds per forward of each normalisation on the same (B, T, D) input."""

    rmsnorm_ms: float  # the project's model.norm.RMSNorm: plain PyTorch operations, as the model runs it
    layernorm_ms: float  # torch.nn.LayerNorm: one dedicated kernel on every device
    builtin_rmsnorm_ms: float  # torch.nn.RMSNorm: PyTorch's own, fused into one kernel on some devices only

    @property
    def fused_saving(self) -> float:
        """The fair comparison, PyTorch's implementation against PyTorch's: the fraction of LayerNorm's time the
        built-in RMSNorm saves (negative: it is slower)."""
        return 1 - self.builtin_rmsnorm_ms / self.layernorm_ms


def speed_against(ms: float, reference_ms: float) -> str:
    """'1.09× faster', '4.5× slower' or 'as fast': `ms` against `reference_ms`, within 1% counting as equal."""
    ratio = reference_ms / ms
    if abs(ratio - 1) < 0.01:
        return "as fast"
    return f"{ratio:.3g}× faster" if ratio > 1 else f"{1 / ratio:.3g}× slower"


def norm_timing_verdict(timing: NormTiming) -> str:
    """The claimed 7–10% saving against the fused comparison, worded from the numbers."""
    saving = timing.fused_saving
    if 0.07 <= saving <= 0.10:
        agrees = "within the claimed 7–10%"
    elif saving > 0.10:
        agrees = "more than the claimed 7–10%"
    elif saving > 0:
        agrees = "less than the claimed 7–10%"
    else:
        agrees = "no saving at all, against the claimed 7–10%"
    share = f"saves {saving:.1%} of its time" if saving >= 0 else f"takes {-saving:.0%} more time"
    return (f"**Measured:** PyTorch's built-in RMSNorm (the fair comparison: one fused kernel where PyTorch has one "
            f"for the device, like LayerNorm) is "
            f"**{speed_against(timing.builtin_rmsnorm_ms, timing.layernorm_ms)}** than LayerNorm here "
            f"({share}: {agrees}). The project's readable RMSNorm, five separate "
            f"operations, is {speed_against(timing.rmsnorm_ms, timing.layernorm_ms)} than LayerNorm.")


def time_norms(batch: int, tokens: int, dim: int, iterations: int, *, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32, repeats: int = 3, warmup: int = 10) -> NormTiming:
    """Forward time of RMSNorm against LayerNorm on a random (batch, tokens, dim) input.

    Each repeat times `iterations` forwards of every norm in turn, after `warmup` untimed ones (first calls allocate
    memory and pick kernels). Taking turns within a repeat, and the median over repeats, keeps a neighbour process
    that slows the machine for a moment from favouring one norm.
    """
    device = torch.device(device)
    x = torch.randn(batch, tokens, dim, device=device, dtype=dtype)
    norms = {
        "rmsnorm": RMSNorm(dim, eps=1e-6),
        "layernorm": torch.nn.LayerNorm(dim, eps=1e-6),
        "builtin_rmsnorm": torch.nn.RMSNorm(dim, eps=1e-6),
    }
    times = {name: [] for name in norms}
    with torch.inference_mode():
        for norm in norms.values():
            norm.to(device, dtype)
            for _ in range(warmup):
                norm(x)
        for _ in range(repeats):
            for name, norm in norms.items():
                times[name].append(_milliseconds_per_forward(norm, x, iterations))
    return NormTiming(**{f"{name}_ms": statistics.median(ms) for name, ms in times.items()})


def _milliseconds_per_forward(module: torch.nn.Module, x: torch.Tensor, iterations: int) -> float:
    def sync() -> None:  # GPU kernels run asynchronously: wait for them before reading the clock
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        elif x.device.type == "mps":
            torch.mps.synchronize()

    sync()
    start = time.perf_counter()
    for _ in range(iterations):
        module(x)
    sync()
    return (time.perf_counter() - start) / iterations * 1e3


def mean_over_rms(stream: np.ndarray) -> np.ndarray:
    """(depth, T, D) -> (depth, T): each vector's mean divided by its root-mean-square.

    This is what LayerNorm would subtract before scaling and RMSNorm skips; near 0 the two norms agree.
    """
    stream = np.asarray(stream, dtype=np.float64)
    rms = np.sqrt((stream**2).mean(-1))
    return stream.mean(-1) / np.maximum(rms, 1e-12)


# ---------------------------------------------------------------- KV cache

# The textbook's example: a 7B Llama-style model, 4K tokens, fp16, one sequence; claimed sizes in GB.
BOOK_MODEL = dict(layers=32, heads=32, head_dim=128, tokens=4096, dtype="float16")
BOOK_CLAIMS = (("MHA", 32, 4.0), ("GQA-8", 8, 1.0), ("MQA", 1, 0.125))  # (variant, KV heads, claimed GB)


def book_kv_table() -> pd.DataFrame:
    """The book's three variants: claimed GB next to the formula's bytes for one sequence, and their ratio."""
    per_value = model_facts.BYTES_PER_VALUE[BOOK_MODEL["dtype"]]
    rows = []
    for variant, kv_heads, claimed_gb in BOOK_CLAIMS:
        formula = model_facts.kv_cache_bytes(BOOK_MODEL["layers"], kv_heads, BOOK_MODEL["head_dim"],
                                             BOOK_MODEL["tokens"], per_value)
        rows.append({"variant": variant, "KV heads": kv_heads, "claimed (GB)": claimed_gb,
                     "formula (bytes)": formula, "formula": model_facts.format_bytes(formula),
                     "claim ÷ formula": claimed_gb * 2**30 / formula})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- SwiGLU


@dataclass(frozen=True)
class MlpCounts:
    """Weights of one MLP block of width D (no biases)."""

    dim: int
    intermediate: int  # the model's actual SwiGLU hidden size F

    @property
    def gelu_4d(self) -> int:
        """A classic MLP: up D -> 4D and down 4D -> D, two matrices."""
        return 2 * self.dim * 4 * self.dim

    @property
    def swiglu_8_3(self) -> Fraction:
        """SwiGLU's three matrices (gate, up, down) with hidden size exactly 8/3 · D (a fraction when 3 ∤ D)."""
        return 3 * self.dim * (Fraction(8, 3) * self.dim)

    @property
    def swiglu_actual(self) -> int:
        """The same with the model's own hidden size, which is 8/3 · D rounded (often to a multiple of 64 or 256)."""
        return 3 * self.dim * self.intermediate

    @property
    def ratio(self) -> float:
        """The model's SwiGLU weights over the 4 · D MLP's."""
        return self.swiglu_actual / self.gelu_4d


def mlp_counts(model: Decoder) -> MlpCounts:
    return MlpCounts(model.config.hidden_size, model.config.intermediate_size)


def mlp_weights_per_layer(model: Decoder) -> int:
    """The MLP parameters actually stored per layer (biases included where the model has them)."""
    return model_facts.parameter_counts(model)["MLP (gate, up, down)"] // model.config.num_hidden_layers


# ---------------------------------------------------------------- RoPE

PAIR = ("pair-llama", "pair-qwen3")  # trained on 128-token windows, context 256: room to test extrapolation
PAIR_TRAINING_LENGTH = 128
EXTRAPOLATION_THETAS = (10_000.0, 40_000.0)  # the pair's own RoPE base, and one four times larger
EXTRAPOLATION_WINDOWS = 32


def shift_check(t: Trace, layer: int, head: int, m: int, n: int) -> pd.DataFrame:
    """One head's un-rotated q at m and k at n, rotated as if placed at (m + s, n + s) and at (m + s, n), for shifts
    s that stay inside the model's context. See explorer.analysis.rope.shifted_scores."""
    vectors_m = rope_analysis.head_vectors(t, layer, head, m)
    vectors_n = rope_analysis.head_vectors(t, layer, head, n)
    shifts = rope_analysis.shifts_within(t.config.max_position_embeddings - 1 - max(m, n))
    return rope_analysis.shifted_scores(vectors_m["q"], vectors_n["k"], t["rope.inv_freq"].numpy(), m, n, shifts)


def shift_verdict(both: np.ndarray, query_only: np.ndarray) -> str:
    """Whether shifting q and k together left their score alone (up to rounding: a thousandth of the score's size)
    while shifting the query alone moved it, worded from the numbers of shift_check."""
    spread = float(np.abs(both - both[0]).max())
    moved = float(np.abs(query_only - both[0]).max())
    tolerance = 1e-3 * max(1.0, abs(float(both[0])))
    if spread > tolerance:
        return (f"Shifting both moved the score by up to {spread:.3g}, more than rounding would ({tolerance:.2g}): "
                "**the claim does not hold in these numbers.** A rotation's angle m·ω is rounded at the precision "
                "the model computes in; at large positions in a narrow dtype (bfloat16 keeps 8 bits) that rounding "
                "dominates. In exact arithmetic the relation holds: try float32 in the sidebar.")
    if moved <= 10 * spread or moved <= tolerance:
        return (f"Shifting the query alone moved the score by only {moved:.3g}: this head's q and k are too short or "
                "too slowly rotated to show an effect of position. **No verdict**: pick another head or key token.")
    return (f"Moving the query alone changes the score by up to {moved:.3g}, while shifting both changed it by at "
            f"most {spread:.2g} (rounding): position enters only as the offset m − n. **The claim holds.**")


def context_refusal(model: Decoder) -> str:
    """What the decoder answers when asked to read one token more than its context (max_position_embeddings)."""
    too_long = torch.zeros(1, model.config.max_position_embeddings + 1, dtype=torch.long)
    try:
        model.check_input(too_long)
    except ModelError as e:
        return str(e)
    raise AssertionError("the decoder accepted input longer than its context")


def held_out_windows(tokens: torch.Tensor, length: int, count: int) -> torch.Tensor:
    """(≤ count, length + 1) consecutive, non-overlapping windows: `length` inputs and the next-token targets."""
    n = min(count, (len(tokens) - 1) // length)
    if n < 1:
        raise ValueError(f"{len(tokens)} tokens hold no window of {length + 1}")
    return torch.stack([tokens[i * length : i * length + length + 1] for i in range(n)])


def loss_by_position(model: Decoder, windows: torch.Tensor, rope_theta: float | None = None) -> np.ndarray:
    """(length,) mean next-token loss in nats at each position over the windows, optionally with another RoPE base."""
    inputs, targets = windows[:, :-1], windows[:, 1:]
    logits = trace(model, inputs, capture="logits", edits=Edits(rope_theta=rope_theta))["logits"]
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return losses.view(targets.shape).mean(0).numpy()


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over a centred window of positions (shorter at the ends), same length: per-position losses over a few
    dozen texts are noisy, and a trend across the training length is easier to see smoothed."""
    return pd.Series(values).rolling(window, center=True, min_periods=1).mean().to_numpy()


def extrapolation_table(curves: dict[tuple[str, float], np.ndarray], training_length: int) -> pd.DataFrame:
    """Per (model, RoPE base) curve: mean loss just inside the training length (its last quarter, where the context
    is already long) and beyond it, and the change. Early positions are left out of the comparison: with little
    context their loss is high whatever the position encoding does."""
    inside = slice(training_length * 3 // 4, training_length)
    rows = []
    for (name, theta), losses in curves.items():
        seen, beyond = float(losses[inside].mean()), float(losses[training_length:].mean())
        rows.append({"model": name, "RoPE θ": theta, "inside": seen, "beyond": beyond, "change": beyond - seen})
    return pd.DataFrame(rows)


def extrapolation_verdict(table: pd.DataFrame) -> str:
    """What the measurement says about the claim, from the table of extrapolation_table, worded from its numbers."""
    own_theta, larger_theta = EXTRAPOLATION_THETAS
    own, larger = table[table["RoPE θ"] == own_theta], table[table["RoPE θ"] == larger_theta]

    def changes(rows: pd.DataFrame) -> str:
        return ", ".join(f"{r.change:+.3f} nats ({r.model})" for r in rows.itertuples())

    verdict = (
        "the loss does not rise beyond the training length: at twice that length, RoPE extrapolates here"
        if own["change"].max() <= 0
        else "the loss rises on positions never seen in training: with the θ it was trained with, RoPE does not "
        "extrapolate here"
    )
    inside_cost = (larger["inside"].to_numpy() - own["inside"].to_numpy()).max()
    return (
        f"**Measured:** with their own θ ({own_theta:,.0f}), from the last quarter of the trained positions to the "
        f"positions beyond, the loss changes by {changes(own)}: {verdict}. With θ = {larger_theta:,.0f} the change "
        f"is {changes(larger)}: slower rotations keep the angles at positions up to {2 * PAIR_TRAINING_LENGTH} closer "
        f"to those seen in training, at a cost of up to {inside_cost:+.3f} nats on the trained positions, whose "
        "rotations the weights were fitted to. Textbooks compare RoPE with learned absolute position embeddings, "
        "which have no vector at all for an unseen position; this project trains no such twin, so the measurement "
        "tests whether RoPE extrapolates, not whether it does so better than they would."
    )


# ---------------------------------------------------------------- GQA


def kv_saving_against_mha(model: Decoder, tokens: int, bytes_per_value: int) -> tuple[dict, dict]:
    """(this model's KV-cache row, its MHA twin's row) from model_facts.kv_cache_variants."""
    rows = model_facts.kv_cache_variants(model.config, tokens, bytes_per_value)
    mine = next(r for r in rows if r["this_model"])
    mha = next(r for r in rows if r["kv_heads"] == model.config.num_attention_heads)
    return mine, mha
