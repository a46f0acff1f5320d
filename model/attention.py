"""Grouped-query self-attention with RoPE, and Qwen3's QK-norm.

Query head h reads key/value head h // G, where G = Hq / Hkv. With Hq = 4 and Hkv = 2 the heads read KV heads
[0, 0, 1, 1]: the order of transformers' `repeat_kv`, so `pattern.view(B, Hkv, G, T, T)` groups heads by the KV head
they share. MHA is G = 1; MQA is Hkv = 1.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .capture import Capture
from .config import ModelConfig
from .kv_cache import KVCache
from .mask import AttentionMask
from .norm import RMSNorm
from .rope import apply_rope


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.name = f"layers.{layer}.self_attn"
        self.n_heads, self.n_kv_heads, self.head_dim = (
            config.num_attention_heads,
            config.num_key_value_heads,
            config.head_dim,
        )
        D, dh, qkv_bias = config.hidden_size, config.head_dim, config.attention_bias
        self.q_proj = nn.Linear(D, self.n_heads * dh, bias=qkv_bias)
        self.k_proj = nn.Linear(D, self.n_kv_heads * dh, bias=qkv_bias)
        self.v_proj = nn.Linear(D, self.n_kv_heads * dh, bias=qkv_bias)
        self.o_proj = nn.Linear(self.n_heads * dh, D, bias=config.attention_output_bias)
        if config.qk_norm:
            # One gain vector of size dh shared by all heads: keeps q.k bounded whatever the weights grow to.
            self.q_norm = RMSNorm(dh, config.rms_norm_eps)
            self.k_norm = RMSNorm(dh, config.rms_norm_eps)
        self.has_qk_norm = config.qk_norm

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: AttentionMask,
        capture: Capture,
        kv_cache: KVCache | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        n = self.name
        # Project, then split the last axis into heads and move heads before time.
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, Hq, T, dh)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, dh)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, dh)
        q, k, v = capture(f"{n}.q", q), capture(f"{n}.k", k), capture(f"{n}.v", v)

        # Qwen3 normalises each head's q and k *before* RoPE, as its reference implementation does.
        if self.has_qk_norm and not capture.skip_qk_norm(self.layer):
            q = capture(f"{n}.q_normed", self.q_norm(q))
            k = capture(f"{n}.k_normed", self.k_norm(k))

        q = capture(f"{n}.q_rot", apply_rope(q, cos, sin))
        k = capture(f"{n}.k_rot", apply_rope(k, cos, sin))
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer, k, v, start)  # (B, Hkv, start + T, dh)

        if capture.wants(f"{n}.scores") or capture.wants(f"{n}.pattern"):
            z = self._explicit_attention(q, k, v, mask, capture)
        else:
            # Fused kernel; enable_gqa lets each KV head serve its G query heads without copying K and V.
            z = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask.allowed, is_causal=mask.is_causal, enable_gqa=self.n_heads != self.n_kv_heads
            )  # (B, Hq, T, dh)
        z = capture(f"{n}.z", z)
        z = z.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return capture(f"{n}.out", self.o_proj(z))  # (B, T, D)

    def _explicit_attention(self, q, k, v, mask: AttentionMask, capture: Capture) -> torch.Tensor:
        """Scores and softmax written out, for when someone asks to see them. Same result as the fused path."""
        n = self.name
        B, Hq, T, dh = q.shape
        Hkv, S, G = k.shape[1], k.shape[2], self.n_heads // self.n_kv_heads
        # One matmul per KV head: its G query heads stacked along the rows read its single K, uncopied. baddbmm adds
        # the 0 / -inf mask in the same call (adding 0 is exact). The scale comes after the product, in the model's
        # dtype, as in transformers: scaling inside the matmul rounds once instead of twice, which in bfloat16 moves
        # the scores off transformers' by an ulp whenever 1/sqrt(dh) is not a power of two.
        scores = torch.baddbmm(
            mask.bias(G, q.dtype), q.reshape(B * Hkv, G * T, dh), k.reshape(B * Hkv, S, dh).transpose(1, 2)
        )
        scores = capture(f"{n}.scores", scores.mul_(1.0 / math.sqrt(dh)).view(B, Hq, T, S))  # -inf stays -inf
        pattern = capture(f"{n}.pattern", torch.softmax(scores, dim=-1, dtype=torch.float32))  # rows sum to 1
        z = torch.bmm(pattern.to(v.dtype).reshape(B * Hkv, G * T, S), v.reshape(B * Hkv, S, dh))
        return z.view(B, Hq, T, dh)
