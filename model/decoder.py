"""The decoder: embeddings, a stack of pre-norm blocks, a final RMSNorm and the language-model head.

Parameter names equal the checkpoint's (minus its leading "model."), so loading is a strict state-dict load.
"""

import torch
from torch import nn

from .attention import Attention
from .capture import NO_CAPTURE, Capture
from .config import ModelConfig
from .errors import ModelError
from .kv_cache import KVCache
from .mask import AttentionMask
from .mlp import SwiGLU
from .norm import RMSNorm
from .rope import cos_sin, inv_freq_scaled, inv_freq_unscaled


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.name = f"layers.{layer}"
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config, layer)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = SwiGLU(config)

    def forward(
        self, x, cos, sin, mask: AttentionMask, capture: Capture, kv_cache: KVCache | None, start: int
    ) -> torch.Tensor:
        n = self.name
        x = capture(f"{n}.resid_pre", x)
        attn_in = self.input_layernorm(x, capture, f"{n}.input_layernorm")
        h = capture(f"{n}.resid_mid", x + self.self_attn(attn_in, cos, sin, mask, capture, kv_cache, start))
        mlp_in = self.post_attention_layernorm(h, capture, f"{n}.post_attention_layernorm")
        return capture(f"{n}.resid_post", h + self.mlp(mlp_in, capture, f"{n}.mlp"))


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # Whoever builds a Decoder sets its weights (load_model assigns the checkpoint's, training draws its own), so
        # the embedding skips PyTorch's normal_ init: on the meta device, where load_model builds, that init imports
        # torch._dynamo, 1-2 s of a fresh server's first model load.
        weight = torch.empty(config.vocab_size, config.hidden_size)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, _weight=weight)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_weights()
        self.reset_rope()

    def tie_weights(self) -> None:
        """Small models reuse the embedding matrix as the output head."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def reset_rope(self, device=None) -> None:
        """(Re)build the inverse frequencies in float32 on `device`; they are derived from the config, not loaded,
        and must stay float32 even when the weights are bfloat16."""
        c = self.config
        inv_freq = inv_freq_scaled(c.head_dim, c.rope_theta, c.rope_scaling).to(device)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens.weight.dtype

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        capture: Capture | None = None,
        kv_cache: KVCache | None = None,
        start: int = 0,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        """Logits (B, T, V) for token ids (B, T) at positions start .. start+T-1.

        `capture` sees, and may edit, every named quantity (see model/capture.py); `kv_cache` holds the keys and
        values of positions before `start` during generation. `logits_to_keep` = n > 0 runs the LM head on the last
        n positions only and returns (B, n, V), as transformers' argument of that name: with a 150k-token
        vocabulary the (T, V) logits of a long prompt take gigabytes, and generation reads only the last row.
        """
        self.check_input(input_ids, start)
        capture = capture or NO_CAPTURE
        x = capture("embed", self.embed_tokens(input_ids))  # (B, T, D)
        x = self.run_layers(x, range(len(self.layers)), capture=capture, kv_cache=kv_cache, start=start)
        x = self.norm(x, capture, "norm")
        if logits_to_keep:
            return self.lm_head(x[:, -logits_to_keep:])  # (B, n, V); not "logits", whose shape is (B, T, V)
        return capture("logits", self.lm_head(x))  # (B, T, V)

    def run_layers(
        self,
        x: torch.Tensor,
        layers: range,
        *,
        capture: Capture | None = None,
        kv_cache: KVCache | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """The blocks `layers` on the residual stream x (B, T, D) of positions start .. start+T-1: the middle of the
        forward, RoPE tables and mask included.

        Started at layer i from what the forward captured as `layers.{i}.resid_pre`, it computes exactly what the
        whole forward computed there, so one layer's internals can be captured without re-running those before it.
        """
        capture = capture or NO_CAPTURE
        c = self.config
        T = x.shape[1]
        inv_freq = capture("rope.inv_freq", capture.rope_inv_freq(self.inv_freq))
        if capture.wants("rope.inv_freq_unscaled"):
            capture("rope.inv_freq_unscaled", inv_freq_unscaled(c.head_dim, c.rope_theta))
        positions = torch.arange(start, start + T, device=x.device)
        cos, sin = cos_sin(inv_freq, positions)  # (T, dh) each, float32
        cos, sin = capture("rope.cos", cos), capture("rope.sin", sin)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # once here, not twice in every layer (rotation is in x's dtype)

        mask = AttentionMask(T, start, c.sliding_window, x.device)
        for i in layers:
            x = self.layers[i](x, cos, sin, mask, capture, kv_cache, start)
        return x

    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, **sampling) -> torch.Tensor:
        """Prompt + up to max_new_tokens new tokens (B, T + n), stopping at EOS. See model/generation.py."""
        from .generation import generate

        return generate(self, input_ids, max_new_tokens, **sampling)

    def check_input(self, input_ids: torch.Tensor, start: int = 0) -> None:
        """Raise ModelError unless input_ids is a non-empty (B, T) LongTensor of in-vocabulary ids that fits
        the context after `start` earlier positions."""
        c = self.config
        if input_ids.numel() == 0:
            raise ModelError("The prompt is empty: give at least one token.")
        if input_ids.dim() != 2 or input_ids.dtype != torch.long:
            raise ModelError(f"input_ids must be a LongTensor of shape (batch, tokens); got {input_ids.dtype} "
                             f"{tuple(input_ids.shape)}.")
        if start + input_ids.shape[1] > c.max_position_embeddings:
            raise ModelError(f"{start + input_ids.shape[1]} tokens exceed this model's context of "
                             f"{c.max_position_embeddings}: shorten the prompt.")
        low, high = torch.stack(torch.aminmax(input_ids)).tolist()  # one device sync, not two
        if low < 0 or high >= c.vocab_size:
            bad = low if low < 0 else high
            raise ModelError(f"Token id {bad} is outside the vocabulary (0 .. {c.vocab_size - 1}).")
