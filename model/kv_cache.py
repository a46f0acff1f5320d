"""Keys and values of the tokens seen so far, so that generation feeds only each new token through the model."""

import torch

from .config import ModelConfig
from .errors import ModelError


class KVCache:
    """A preallocated (B, Hkv, max_len, dh) buffer for keys and one for values per layer, made when that layer first
    writes: a forward that runs a single layer (Decoder.run_layers) allocates that layer's alone.

    It belongs to a single generate call, never to the model, so concurrent generations do not share it.
    """

    def __init__(self, config: ModelConfig, batch: int, max_len: int, device, dtype):
        self.shape = (batch, config.num_key_value_heads, max_len, config.head_dim)
        self.device, self.dtype = device, dtype
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, Hkv, T, dh) at positions start .. start+T-1; return all keys and values up to there."""
        end = start + k.shape[2]
        if end > self.shape[2]:
            raise ModelError(f"The KV cache holds {self.shape[2]} positions; writing up to {end} would "
                             "overflow it: make the cache as long as the prompt plus the new tokens.")
        if layer not in self.keys:
            self.keys[layer] = torch.zeros(self.shape, device=self.device, dtype=self.dtype)
            self.values[layer] = torch.zeros(self.shape, device=self.device, dtype=self.dtype)
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]
