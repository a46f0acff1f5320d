"""The capture vocabulary (docs/capture-vocabulary.md) as code: every name a model produces, and its shape."""

from model import ModelConfig

_NORM = ("rms", "out")
_ATTENTION = ("q", "k", "v", "q_normed", "k_normed", "q_rot", "k_rot", "scores", "pattern", "z", "out")
_MLP = ("gate", "act", "up", "hidden", "out")


def capture_names(config: ModelConfig) -> list[str]:
    """All names this model's forward produces, in the order it produces them."""
    names = ["embed", "rope.inv_freq", "rope.inv_freq_unscaled", "rope.cos", "rope.sin"]
    attention = [q for q in _ATTENTION if config.qk_norm or q not in ("q_normed", "k_normed")]
    for i in range(config.num_hidden_layers):
        n = f"layers.{i}"
        names.append(f"{n}.resid_pre")
        names += [f"{n}.input_layernorm.{q}" for q in _NORM]
        names += [f"{n}.self_attn.{q}" for q in attention]
        names.append(f"{n}.resid_mid")
        names += [f"{n}.post_attention_layernorm.{q}" for q in _NORM]
        names += [f"{n}.mlp.{q}" for q in _MLP]
        names.append(f"{n}.resid_post")
    return [*names, "norm.rms", "norm.out", "logits"]


def shape_of(name: str, config: ModelConfig, batch: int, tokens: int) -> tuple[int, ...]:
    """The documented shape of `name` for a forward of (batch, tokens) ids."""
    B, T, D = batch, tokens, config.hidden_size
    Hq, Hkv, dh = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    last = name.rsplit(".", 1)[-1]
    if name.startswith("rope."):
        return (dh // 2,) if last.startswith("inv_freq") else (T, dh)
    if name == "logits":
        return (B, T, config.vocab_size)
    if ".mlp." in name and last != "out":
        return (B, T, config.intermediate_size)
    if ".self_attn." in name:
        if last in ("scores", "pattern"):
            return (B, Hq, T, T)
        if last in ("k", "v", "k_normed", "k_rot"):
            return (B, Hkv, T, dh)
        if last != "out":
            return (B, Hq, T, dh)
    if last == "rms":
        return (B, T)
    return (B, T, D)
