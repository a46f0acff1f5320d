"""RoPE's numbers from a trace: the frequency spectrum, the rotation angles, q/k pairs before and after rotation,
and the scores that show a rotated q·k depends only on the distance between positions."""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from model import ModelConfig, Tokenizer
from model.rope import apply_rope, cos_sin, llama3_bands

from ..trace import Trace

BAND_NAMES = ("kept", "interpolated", "divided by factor")


def rope_input(config: ModelConfig) -> tuple[str, str]:
    """The captured names of what RoPE rotates: q, k, or their QK-normed versions where the model has QK-norm."""
    return ("q_normed", "k_normed") if config.qk_norm else ("q", "k")


@dataclass
class Spectrum:
    inv_freq: np.ndarray  # (dh/2,) radians per token, as used (after scaling)
    inv_freq_unscaled: np.ndarray  # (dh/2,) theta^(-2i/dh)
    scaling: dict | None  # config.rope_scaling
    bands: np.ndarray | None  # (dh/2,) llama3 band per pair (0 kept, 1 interpolated, 2 divided), else None

    @property
    def wavelength(self) -> np.ndarray:
        """Tokens per full turn of each pair: 2π / inv_freq."""
        return 2 * np.pi / self.inv_freq

    def llama3_wavelength_limits(self) -> tuple[float, float] | None:
        """(shortest wavelength that gets scaled at all, shortest that is fully divided), llama3 only."""
        if self.bands is None:
            return None
        context = self.scaling["original_max_position_embeddings"]
        return context / self.scaling["high_freq_factor"], context / self.scaling["low_freq_factor"]


def spectrum(t: Trace) -> Spectrum:
    unscaled = t["rope.inv_freq_unscaled"]
    scaling = t.config.rope_scaling
    bands = llama3_bands(unscaled, scaling).numpy() if scaling and scaling["rope_type"] == "llama3" else None
    return Spectrum(t["rope.inv_freq"].numpy(), unscaled.numpy(), scaling, bands)


def rotation_angles(t: Trace) -> np.ndarray:
    """(T, dh/2) the angle each pair is turned by at each position, in [0, 2π), read back from the model's tables."""
    half = t.config.head_dim // 2
    angles = torch.atan2(t["rope.sin"][:, :half], t["rope.cos"][:, :half])
    return np.mod(angles.numpy(), 2 * np.pi)


def head_vectors(t: Trace, layer: int, head: int, position: int) -> dict[str, np.ndarray]:
    """The (dh,) q of query head `head` and the k of its KV head (head // G) at `position`, before and after RoPE."""
    q_in, k_in = rope_input(t.config)
    kv_head = head // t.config.group_size
    a = f"layers.{layer}.self_attn"
    return {
        "q": t[f"{a}.{q_in}"][0, head, position].numpy(),
        "q_rot": t[f"{a}.q_rot"][0, head, position].numpy(),
        "k": t[f"{a}.{k_in}"][0, kv_head, position].numpy(),
        "k_rot": t[f"{a}.k_rot"][0, kv_head, position].numpy(),
    }


def pair_coordinates(x: np.ndarray, pairs: list[int]) -> np.ndarray:
    """(len(pairs), 2): the 2-D points (x_i, x_{i + dh/2}) that RoPE rotates together (split-halves layout)."""
    half = x.shape[-1] // 2
    return np.stack([x[..., pairs], x[..., [i + half for i in pairs]]], axis=-1)


def default_pairs(head_dim: int) -> list[int]:
    """The fastest, a middle and the slowest frequency pair."""
    half = head_dim // 2
    return sorted({0, half // 2, half - 1})


@dataclass
class DistanceScores:
    query: np.ndarray  # (N,) query position m
    key: np.ndarray  # (N,) key position n <= m
    distance: np.ndarray  # (N,) m - n
    score: np.ndarray  # (N,) q_rot[m] · k_rot[n] / sqrt(dh)


@dataclass
class DistanceProfile:
    """A head's scores summarised per distance m − n (nearest-rank percentiles of the scores at that distance)."""
    distance: np.ndarray  # (D,) each distance that occurs, ascending
    count: np.ndarray  # (D,) how many scores lie at it
    low: np.ndarray  # (D,) smallest
    p10: np.ndarray
    median: np.ndarray
    p90: np.ndarray
    high: np.ndarray  # (D,) largest


def distance_profile(d: DistanceScores) -> DistanceProfile:
    """The spread of `d`'s scores at each distance: T²/2 points drawn one by one cost the browser most of a second,
    and their density is what a reader takes from them."""
    order = np.lexsort((d.score, d.distance))
    distance, score = d.distance[order], d.score[order]
    starts = np.flatnonzero(np.r_[True, distance[1:] != distance[:-1]])
    counts = np.diff(np.r_[starts, len(distance)])

    def percentile(p: float) -> np.ndarray:
        return score[starts + np.round(p * (counts - 1)).astype(int)]

    return DistanceProfile(distance[starts], counts, percentile(0), percentile(0.1), percentile(0.5),
                           percentile(0.9), percentile(1))


MAX_QUERY_ROWS = 1024  # past this many queries, evenly spaced ones stand for the rest (T² scores: 1 GiB at T = 16k)


def scores_by_distance(t: Trace, layer: int, head: int, *, include: int | None = None) -> DistanceScores:
    """Every causal (query, key) score of one head, computed from the captured rotated q and k; for a prompt of
    more than MAX_QUERY_ROWS tokens, those of evenly spaced queries and of query `include`."""
    a = f"layers.{layer}.self_attn"
    q = t[f"{a}.q_rot"][0, head]  # (T, dh)
    k = t[f"{a}.k_rot"][0, head // t.config.group_size]
    T = q.shape[0]
    rows = np.arange(T)
    if T > MAX_QUERY_ROWS:
        rows = np.unique(np.r_[np.linspace(0, T - 1, MAX_QUERY_ROWS).round().astype(int), [include or T - 1]])
    scores = (q[rows] @ k.T / math.sqrt(t.config.head_dim)).numpy()  # (rows, T)
    r, n = np.nonzero(np.arange(T)[None, :] <= rows[:, None])  # causal: key n <= query
    m = rows[r]
    return DistanceScores(m, n, m - n, scores[r, n])


def shifts_within(limit: int) -> np.ndarray:
    """0, 1, 2, 4, 8, ... up to `limit`: shifts that span short and long distances on one chart."""
    steps = [0] + [2**i for i in range(int(math.log2(limit)) + 1)] if limit >= 1 else [0]
    return np.array(steps)


def rotated_score(t: Trace, layer: int, head: int, m: int, n: int) -> float:
    """The model's own score q_rot[m] · k_rot[n] / sqrt(dh) for one query head."""
    q, k = head_vectors(t, layer, head, m)["q_rot"], head_vectors(t, layer, head, n)["k_rot"]
    return float(np.dot(q, k)) / math.sqrt(t.config.head_dim)


def shifted_scores(q: np.ndarray, k: np.ndarray, inv_freq: np.ndarray, m: int, n: int,
                   shifts: np.ndarray) -> pd.DataFrame:
    """Rotate un-rotated q (dh,) and k (dh,) as if they sat at (m + s, n + s), and for contrast at (m + s, n), with the
    model's own functions; the score q·k/sqrt(dh) of the first is the same for every shift s."""
    inv = torch.as_tensor(inv_freq, dtype=torch.float32)
    qt = torch.as_tensor(q, dtype=torch.float32)[None, None, None]  # (1, 1, 1, dh) for apply_rope
    kt = torch.as_tensor(k, dtype=torch.float32)[None, None, None]
    scale = math.sqrt(q.shape[-1])

    def score(q_pos: int, k_pos: int) -> float:
        cos, sin = cos_sin(inv, torch.tensor([q_pos, k_pos]))
        q_rot = apply_rope(qt, cos[:1], sin[:1])
        k_rot = apply_rope(kt, cos[1:], sin[1:])
        return float((q_rot * k_rot).sum()) / scale

    return pd.DataFrame({
        "s": shifts,
        "positions (m+s, n+s)": [f"({m + s}, {n + s})" for s in shifts],
        "both shifted": [score(m + s, n + s) for s in shifts],
        "query only shifted": [score(m + s, n) for s in shifts],
    })


def top_tokens(logits: torch.Tensor, k: int = 5) -> tuple[list[int], np.ndarray]:
    """The k most likely next tokens from the last position's logits (V,), and their probabilities."""
    top = logits.float().softmax(-1).topk(k)
    return top.indices.tolist(), top.values.numpy()


def compare_top_tokens(traces: dict[str, Trace], tokenizer: Tokenizer, k: int = 5) -> pd.DataFrame:
    """Side by side, for each labelled trace, its k most likely next tokens and their probabilities."""
    columns = {}
    for label, t in traces.items():
        ids, probs = top_tokens(t.last_logits, k)
        columns[f"{label}: next token"] = tokenizer.tokens(ids)
        columns[f"{label}: probability"] = probs
    return pd.DataFrame(columns, index=pd.RangeIndex(1, k + 1, name="rank"))


def causal_pattern(t: Trace, layer: int, head: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """(T, T) one head's attention pattern, NaN above the diagonal (keys a query never sees); with `rows` =
    (start, stop), queries start .. stop-1 against keys 0 .. stop-1 (a PromptTrace's attention_window)."""
    if rows is None:
        start, p = 0, t[f"layers.{layer}.self_attn.pattern"][0, head]
    else:
        start, p = rows[0], t.attention_window(layer, *rows)["pattern"][0, head]
    p = p.numpy().astype(float)
    p[np.triu_indices(p.shape[0], start + 1, p.shape[1])] = np.nan
    return p
