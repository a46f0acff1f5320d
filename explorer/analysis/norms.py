"""Norms page numbers: residual-stream sizes, RMSNorm's 1/rms factors and gains, and massive activations."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from model import Decoder

from ..trace import Trace

NORMS_PER_BLOCK = ("input_layernorm", "post_attention_layernorm")
# Scales a median absolute deviation to a standard deviation for normally distributed values.
MAD_TO_STD = 1.4826


def residual_stream(t: Trace) -> tuple[np.ndarray, list[str]]:
    """The residual stream at every depth as (L+1, T, D), batch row 0, with one label per depth.

    Depth i < L is the input of block i (`resid_pre`); depth L is the output of the last block (`resid_post`).
    """
    L = t.config.num_hidden_layers
    rows = [t[f"layers.{i}.resid_pre"][0] for i in range(L)] + [t[f"layers.{L - 1}.resid_post"][0]]
    labels = [f"block {i} in" for i in range(L)] + [f"block {L - 1} out"]
    return torch.stack(rows).float().numpy(), labels


def l2_norms(stream: np.ndarray) -> np.ndarray:
    """(depth, T, D) -> (depth, T): the length of each residual vector."""
    return np.linalg.norm(stream, axis=-1)


@dataclass(frozen=True)
class NormSite:
    """One RMSNorm on the residual stream: its module path (also its capture prefix) and where it sits."""

    path: str  # "layers.3.input_layernorm", or "norm" for the final one
    layer: str  # "3", or "final"
    kind: str  # "input_layernorm" | "post_attention_layernorm" | "norm"

    @property
    def label(self) -> str:
        if self.kind == "norm":
            return "final norm"
        return f"L{self.layer} before {'attention' if self.kind == 'input_layernorm' else 'MLP'}"


def norm_sites(num_layers: int) -> list[NormSite]:
    """Every RMSNorm on the residual stream, in the order the forward meets them: 2L + 1 of them."""
    sites = [NormSite(f"layers.{i}.{kind}", str(i), kind) for i in range(num_layers) for kind in NORMS_PER_BLOCK]
    return sites + [NormSite("norm", "final", "norm")]


def inverse_rms(t: Trace) -> np.ndarray:
    """(2L+1, T) of 1/rms, the factor each RMSNorm (rows as `norm_sites`) multiplies its input by."""
    sites = norm_sites(t.config.num_hidden_layers)
    rms = torch.stack([t[f"{site.path}.rms"][0] for site in sites]).float().numpy()
    return 1.0 / rms


def gains(model: Decoder) -> np.ndarray:
    """(2L+1, D): the learned gain vector of every RMSNorm on the residual stream, rows as `norm_sites`."""
    sites = norm_sites(model.config.num_hidden_layers)
    weights = [model.get_submodule(site.path).weight for site in sites]
    return torch.stack(weights).detach().float().cpu().numpy()


def gain_outliers(gain_rows: np.ndarray, sites: list[NormSite], k: float) -> pd.DataFrame:
    """Gain entries more than `k` robust standard deviations (1.4826 × MAD) from their own norm's median, largest
    first; "row" is the entry's row in `gain_rows`.

    Median and MAD rather than mean and std: a handful of huge gains would inflate the std and hide themselves.
    """
    records = []
    for index, (site, row) in enumerate(zip(sites, gain_rows)):
        median = float(np.median(row))
        spread = MAD_TO_STD * float(np.median(np.abs(row - median)))
        z = (row - median) / max(spread, 1e-12)  # a constant gain (MAD 0) flags any dimension that differs at all
        for dim in np.flatnonzero(np.abs(z) > k):
            records.append({"row": index, "layer": site.layer, "norm": site.kind, "dim": int(dim),
                            "gain": float(row[dim]), "median gain": median, "robust z": float(z[dim])})
    columns = ["row", "layer", "norm", "dim", "gain", "median gain", "robust z"]
    table = pd.DataFrame(records, columns=columns)
    return table.sort_values("robust z", key=np.abs, ascending=False, ignore_index=True)


def massive_activations(stream: np.ndarray, labels: list[str], tokens: list[str]) -> pd.DataFrame:
    """Per depth the largest |activation| of the residual stream, where it sits, and its ratio to the median.

    Sun et al. (2024) found a few activations thousands of times the median, on fixed dimensions and tokens.
    """
    records = []
    for label, x in zip(labels, stream):
        magnitude = np.abs(x)
        token, dim = np.unravel_index(int(np.argmax(magnitude)), x.shape)
        median = float(np.median(magnitude))
        records.append({"depth": label, "token": f"{token}: {tokens[token]}", "dim": int(dim),
                        "value": float(x[token, dim]), "max |activation|": float(magnitude[token, dim]),
                        "median |activation|": median,
                        "ratio to median": float(magnitude[token, dim]) / max(median, 1e-12)})
    return pd.DataFrame(records)


MASSIVE_RATIO = 100  # Sun et al.'s massive activations are ~1,000-10,000 × the median; below 100 × there are none


def massive_verdict(massive: pd.DataFrame) -> str:
    """One sentence on whether this model has massive activations, read off massive_activations' table."""
    top = massive.loc[massive["ratio to median"].idxmax()]
    found = (massive["ratio to median"] >= MASSIVE_RATIO).sum()
    where = f"{top['ratio to median']:,.0f} × the median ({top['depth']}, token {top['token']}, dimension {top['dim']})"
    if found:
        return f"This model has them: at {found} of {len(massive)} depths the largest value is at least " \
               f"{MASSIVE_RATIO} × the median, up to {where}."
    return f"This model has none: its largest value is {where}, far from the thousands that define them."
