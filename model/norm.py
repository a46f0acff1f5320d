"""RMSNorm: rescale each vector to unit root-mean-square, then multiply by a learned gain.

Unlike LayerNorm it subtracts no mean and adds no bias, which saves a reduction and keeps the same quality.
"""

import torch
from torch import nn

from .capture import NO_CAPTURE, Capture


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, capture: Capture = NO_CAPTURE, name: str = "") -> torch.Tensor:
        # Statistics in float32 whatever the model dtype; bf16 sums of squares lose too many bits.
        x32 = x.float()
        inv_rms = torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., 1)
        if capture.wants(f"{name}.rms"):
            capture(f"{name}.rms", 1.0 / inv_rms.squeeze(-1))
        # Cast back before the gain, as transformers does, so that bf16 results match bit for bit.
        return capture(f"{name}.out", self.weight * (x32 * inv_rms).to(x.dtype))
