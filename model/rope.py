"""Rotary position embedding (RoPE), as data: inverse frequencies, then cos/sin tables, then a rotation.

Each pair of dimensions (i, i + dh/2) of a query or key at position m is rotated by the angle m * inv_freq[i], so the
dot product of a query at m and a key at n depends only on m - n. This is the split-halves layout that Hugging Face
checkpoints use; Meta's original code pairs interleaved dimensions (2i, 2i + 1) instead, and its checkpoints are
converted by permuting the rows of q_proj and k_proj.
"""

import math

import torch


def inv_freq_unscaled(head_dim: int, theta: float) -> torch.Tensor:
    """theta^(-2i/dh) for i in 0 .. dh/2 - 1: fast rotations first, slow last. Float32, on the CPU, also inside a
    `torch.device("meta")` block (where load_model builds: arithmetic on meta tensors imports torch._dynamo, ~1 s)."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device="cpu").float() / head_dim
    return 1.0 / (theta ** exponents)


def inv_freq_scaled(head_dim: int, theta: float, scaling: dict | None) -> torch.Tensor:
    """The inverse frequencies a model actually uses, after its long-context scaling (if any)."""
    inv_freq = inv_freq_unscaled(head_dim, theta)
    if scaling is None:
        return inv_freq
    if scaling["rope_type"] == "linear":
        # Positions divided by `factor` is the same as frequencies divided by it.
        return inv_freq / scaling["factor"]
    return _llama3_scaling(inv_freq, scaling)


def llama3_bands(inv_freq: torch.Tensor, scaling: dict) -> torch.Tensor:
    """For each frequency, which llama3 band it falls in: 0 kept, 1 interpolated, 2 divided by `factor`."""
    wavelen = 2 * math.pi / inv_freq
    context = scaling["original_max_position_embeddings"]
    low_freq_wavelen = context / scaling["low_freq_factor"]
    high_freq_wavelen = context / scaling["high_freq_factor"]
    return (wavelen >= high_freq_wavelen).long() + (wavelen > low_freq_wavelen).long()


def _llama3_scaling(inv_freq: torch.Tensor, scaling: dict) -> torch.Tensor:
    """Llama 3.1's bands: wavelengths shorter than context/high_freq_factor are kept, longer than
    context/low_freq_factor divided by `factor`, and those in between interpolated smoothly (as transformers'
    `_compute_llama3_parameters`)."""
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    context = scaling["original_max_position_embeddings"]
    band = llama3_bands(inv_freq, scaling)
    smooth = (context / (2 * math.pi / inv_freq) - low) / (high - low)
    interpolated = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    return torch.where(band == 0, inv_freq, torch.where(band == 2, inv_freq / factor, interpolated))


def cos_sin(inv_freq: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, (T, dh) in float32, each half repeated for the split-halves layout."""
    angles = positions.float()[:, None] * inv_freq.float()[None, :]  # (T, dh/2)
    angles = torch.cat((angles, angles), dim=-1)  # (T, dh)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last axis: a 90-degree turn of every pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, H, T, dh) by the angles in cos/sin (T, dh); computed in x's dtype, as transformers does."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin
