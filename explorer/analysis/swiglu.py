"""SwiGLU page numbers: value distributions, gate sparsity, and what single neurons write to the residual stream."""

import numpy as np
import pandas as pd
import torch

from model import Decoder

from ..trace import Trace

THRESHOLDS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)  # the choices for "nearly shut": |silu(gate)| below this


def mlp_values(t: Trace, layer: int, name: str) -> np.ndarray:
    """(T, F) of one captured SwiGLU quantity ("gate", "act", "up", "hidden"), batch row 0."""
    return t[f"layers.{layer}.mlp.{name}"][0].float().numpy()


SILU_MINIMUM = -0.2785  # silu(x) = x·sigmoid(x) is smallest at x ≈ -1.278


def gate_story(act: np.ndarray) -> str:
    """What silu(gate)'s distribution at one layer says, in one sentence with its own numbers: how much of it sits
    near silu's floor (negative gates: up passes, small and sign-flipped) and how much is really shut (near 0)."""
    near_floor = float(np.mean(act < -0.2))
    shut = float(np.mean(np.abs(act) < 0.01))
    opened = float(np.mean(act > 1))
    floor = f"{SILU_MINIMUM:.2f}".replace("-", "−")
    return (f"silu never goes below {floor}: every negative gate gives a small negative factor, so "
            f"{near_floor:.0%} of the values lie between {floor} and −0.2, where up passes small and "
            f"sign-flipped. Only {shut:.1%} are within 0.01 of 0, really shut; {opened:.1%} are above 1, letting up "
            "through amplified.")


def histogram(values: np.ndarray, bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, counts) of all values: counted here so the browser gets `bins` bars, not T × F points."""
    counts, edges = np.histogram(np.asarray(values, dtype=float).ravel(), bins=bins)
    return (edges[:-1] + edges[1:]) / 2, counts


def summarize_act(act: torch.Tensor) -> torch.Tensor:
    """(len(THRESHOLDS),) the fraction of |silu(gate)| (B, T, F) below each threshold, batch row 0: what a PromptTrace's
    base forward keeps for every layer, so that the sparsity chart needs no layer's activations."""
    magnitude = act[0].abs()
    return torch.stack([(magnitude < threshold).float().mean() for threshold in THRESHOLDS]).float().cpu()


def gate_sparsity(t, threshold: float) -> np.ndarray:
    """(L,) the fraction of |silu(gate)| below `threshold` (one of THRESHOLDS) over all tokens and neurons of each
    layer, from a PromptTrace's per-layer summaries."""
    column = THRESHOLDS.index(threshold)
    return np.array([float(t.summary(i, "mlp.act")[column]) for i in range(t.config.num_hidden_layers)])


def top_neurons(model: Decoder, t: Trace, layer: int, token: int, k: int) -> pd.DataFrame:
    """The `k` neurons of `layer` that add the longest vectors to the residual stream at `token`, and what each
    writes through down_proj.

    Neuron n adds hidden[n] * down_proj.weight[:, n] to the residual stream, of length |hidden[n]| times that
    column's norm: the ranking, and the bar the chart draws. "toward final" is that vector's component along the
    direction of the last block's output at this token (how much it pushes where the stream ends up).
    """
    hidden = t[f"layers.{layer}.mlp.hidden"][0, token].float()
    down = model.layers[layer].mlp.down_proj.weight.detach().float().cpu()  # (D, F)
    k = min(k, hidden.numel())
    neurons = (hidden.abs() * down.norm(dim=0)).topk(k).indices
    columns = down[:, neurons]  # (D, k)
    contributions = columns * hidden[neurons]  # (D, k)
    final = t[f"layers.{t.config.num_hidden_layers - 1}.resid_post"][0, token].float()
    direction = final / final.norm().clamp_min(1e-12)
    return pd.DataFrame({
        "neuron": neurons.numpy(),
        "silu(gate)": t[f"layers.{layer}.mlp.act"][0, token, neurons].float().numpy(),
        "up": t[f"layers.{layer}.mlp.up"][0, token, neurons].float().numpy(),
        "hidden = act·up": hidden[neurons].numpy(),
        "contribution norm": contributions.norm(dim=0).numpy(),
        "toward final": (direction @ contributions).numpy(),
    })


def neuron_point_cloud(t: Trace, layer: int, token: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gate, up, hidden), each (F,), at one layer and token: one point per neuron."""
    return tuple(mlp_values(t, layer, name)[token] for name in ("gate", "up", "hidden"))
