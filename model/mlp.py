"""SwiGLU feed-forward: down(silu(gate(x)) * up(x)). The gate decides, per neuron, how much of `up` passes."""

import torch
import torch.nn.functional as F
from torch import nn

from .capture import NO_CAPTURE, Capture
from .config import ModelConfig


class SwiGLU(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        D, Fh, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = nn.Linear(D, Fh, bias=bias)
        self.up_proj = nn.Linear(D, Fh, bias=bias)
        self.down_proj = nn.Linear(Fh, D, bias=bias)

    def forward(self, x: torch.Tensor, capture: Capture = NO_CAPTURE, name: str = "") -> torch.Tensor:
        gate = capture(f"{name}.gate", self.gate_proj(x))  # (B, T, F)
        act = capture(f"{name}.act", F.silu(gate))
        up = capture(f"{name}.up", self.up_proj(x))
        hidden = capture(f"{name}.hidden", act * up)
        return capture(f"{name}.out", self.down_proj(hidden))  # (B, T, D)
