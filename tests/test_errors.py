"""Every bad input raises model.ModelError, whose message says what is wrong and what to do.

Broken checkpoints are copies of a tiny good one (tests/conftest.py), edited in tmp_path.
"""

import json
import pickle
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from model import SUPPORTED_MODEL_TYPES, ModelError, load_model, load_tokenizer
from model.sources import BUNDLED_DIR

from .apptest_helpers import open_page

VARIANT = "llama-gqa-llama3"  # vocab 128, context 128
WEIGHTS = "model.safetensors"


def raises(fn, *words: str) -> str:
    """Call fn, expect exactly ModelError (not a KeyError, IndexError, RuntimeError...) whose message holds every
    one of `words` (case-insensitive); return the message for further checks."""
    with pytest.raises(Exception) as info:
        fn()
    assert type(info.value) is ModelError, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    return message


@pytest.fixture
def folder(tiny_checkpoint, tmp_path):
    """A private copy of a good tiny checkpoint, for a test to break."""
    source, _ = tiny_checkpoint(VARIANT)
    return shutil.copytree(source, tmp_path / "ckpt")


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_model(tiny_checkpoint(VARIANT)[0], device="cpu")


def load(folder):
    return load_model(folder, device="cpu")


def edit_config(folder, **changes):
    """Set keys of config.json; a value of None removes the key."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))


def edit_weights(folder, edit):
    """Rewrite model.safetensors after `edit(tensors)` changed the dict of tensors in place."""
    tensors = load_file(folder / WEIGHTS)
    edit(tensors)
    save_file(tensors, folder / WEIGHTS, metadata={"format": "pt"})


# --- config.json ---


def test_a_good_copy_loads(folder):
    """The baseline every other test breaks: the copy itself is fine."""
    assert load(folder).config.vocab_size == 128


def test_unsupported_model_type_lists_the_supported_ones(folder):
    edit_config(folder, model_type="gpt2")
    raises(lambda: load(folder), "unsupported", "'gpt2'", *SUPPORTED_MODEL_TYPES)


def test_config_without_model_type(folder):
    edit_config(folder, model_type=None)
    raises(lambda: load(folder), "no model_type", *SUPPORTED_MODEL_TYPES)


def test_missing_config_json(folder):
    (folder / "config.json").unlink()
    raises(lambda: load(folder), "no config.json", str(folder))


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b""], ids=["syntax", "binary", "empty"])
def test_config_json_that_is_not_json(folder, content):
    (folder / "config.json").write_bytes(content)
    raises(lambda: load(folder), "config.json", "not valid JSON")


def test_config_json_nested_too_deeply(folder):
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    raises(lambda: load(folder), "config.json", "nests too deeply")


def test_config_json_that_cannot_be_read(folder, monkeypatch):
    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(folder), "read_text", denied)
    raises(lambda: load(folder), "config.json", "cannot be read", "permission denied")


def test_weights_that_cannot_be_read(folder, monkeypatch):
    import model.loading

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(model.loading, "safe_open", denied)
    raises(lambda: load(folder), WEIGHTS, "no permission")


def test_config_json_that_is_not_an_object(folder):
    (folder / "config.json").write_text("[1, 2, 3]")
    raises(lambda: load(folder), "config.json", "JSON object", "list")


@pytest.mark.parametrize("key", ["vocab_size", "hidden_size", "num_hidden_layers", "rms_norm_eps"])
def test_config_missing_a_required_key(folder, key):
    edit_config(folder, **{key: None})
    raises(lambda: load(folder), "config.json lacks", key)


@pytest.mark.parametrize("key, value", [("hidden_size", "64"), ("num_attention_heads", 0), ("vocab_size", 12.5)])
def test_config_size_that_is_not_a_positive_integer(folder, key, value):
    edit_config(folder, **{key: value})
    raises(lambda: load(folder), key, "positive integer", repr(value))


def test_heads_not_a_multiple_of_kv_heads(folder):
    edit_config(folder, num_key_value_heads=3)
    raises(lambda: load(folder), "num_attention_heads (4)", "multiple of num_key_value_heads (3)")


# --- weights ---


@pytest.mark.parametrize("changes, field", [
    (dict(rope_scaling={"rope_type": "linear", "factor": "2"}), "rope_scaling.factor"),
    (dict(rope_scaling={"rope_type": "linear"}), "rope_scaling.factor"),
    (dict(rope_scaling={"rope_type": "llama3", "factor": 8.0}), "rope_scaling.low_freq_factor"),
    (dict(rope_scaling={"rope_type": "linear", "factor": 0}), "rope_scaling.factor"),
    (dict(rope_scaling=None, rope_parameters=[1, 2]), "rope_parameters"),
    (dict(rope_scaling="linear"), "rope_scaling"),
    (dict(rope_scaling=None, rope_theta="abc"), "rope_theta"),
    (dict(rope_scaling=None, rope_theta=0), "rope_theta"),
    (dict(rope_scaling=None, rope_theta=-10000.0), "rope_theta"),
    (dict(head_dim=7), "head_dim"),
    (dict(head_dim=None, hidden_size=4, num_attention_heads=8, num_key_value_heads=4), "head_dim"),
    (dict(tie_word_embeddings="false"), "tie_word_embeddings"),
    (dict(eos_token_id="</s>"), "eos_token_id"),
], ids=["factor-string", "no-factor", "llama3-keys-missing", "factor-zero", "parameters-list", "scaling-string",
        "theta-string", "theta-zero", "theta-negative", "odd-head-dim", "more-heads-than-hidden",
        "tie-as-string", "eos-string"])
def test_config_fields_the_decoder_reads_are_checked_and_named(folder, changes, field):
    # transformers 5 writes rope_parameters; without it the older layout's keys are the ones read
    edit_config(folder, **{"rope_parameters": None, **changes})
    raises(lambda: load(folder), "config.json", field)


@pytest.mark.parametrize("window", ["4096", 0, -1])
def test_mistral_sliding_window_must_be_a_positive_integer(folder, window):
    edit_config(folder, model_type="mistral", sliding_window=window)
    raises(lambda: load(folder), "sliding_window", "positive integer")


@pytest.mark.parametrize("layers", [1, 1_000_000])
def test_a_layer_count_the_weights_do_not_have_is_refused_before_building(folder, layers):
    edit_config(folder, num_hidden_layers=layers)
    raises(lambda: load(folder), f"num_hidden_layers = {layers:,}", "weights hold 2 layers")


def test_weights_larger_than_free_memory_are_refused_before_reading(folder, monkeypatch):
    import model.loading

    monkeypatch.setattr(model.loading, "available_memory", lambda: 1000)  # bytes
    raises(lambda: load(folder), "need", "MiB in float32", "free", "smaller model")
    monkeypatch.setattr(model.loading, "available_memory", lambda: None)  # not known (not Linux): no check
    assert load(folder).config.num_hidden_layers == 2


def test_no_weights(folder):
    (folder / WEIGHTS).unlink()
    raises(lambda: load(folder), "no weights", "model.safetensors")


@pytest.fixture
def torch_load_forbidden(monkeypatch):
    """Fails the test if anything unpickles: torch.load and pickle's loaders record the call and refuse."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    return calls


def test_pickled_weights_are_refused_without_being_opened(folder, torch_load_forbidden):
    state = load_file(folder / WEIGHTS)
    (folder / WEIGHTS).unlink()
    torch.save(state, folder / "pytorch_model.bin")
    message = raises(lambda: load(folder), "pytorch_model.bin", "pickle", "arbitrary code", "save_pretrained",
                     "safetensors")
    assert "torch.load" not in message
    assert torch_load_forbidden == []


def test_safetensors_are_used_when_a_pickle_sits_beside_them(folder, torch_load_forbidden):
    torch.save({"not": torch.zeros(1)}, folder / "pytorch_model.bin")
    assert load(folder).config.vocab_size == 128
    assert torch_load_forbidden == []


def test_missing_tensor_is_named(folder):
    edit_weights(folder, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    raises(lambda: load(folder), "lacks 1 tensor", "layers.1.mlp.up_proj.weight")


def test_unexpected_tensor_is_named(folder):
    edit_weights(folder, lambda t: t.update({"model.layers.0.self_attn.extra.weight": torch.zeros(4)}))
    raises(lambda: load(folder), "does not use", "layers.0.self_attn.extra.weight", "do not belong together")


def test_misshaped_tensor_is_named(folder):
    edit_weights(folder, lambda t: t.update({"model.layers.1.self_attn.k_proj.weight": torch.zeros(3, 64)}))
    raises(lambda: load(folder), "layers.1.self_attn.k_proj.weight", "(3, 64)", "(32, 64)")


TRUNCATIONS = {
    "half": lambda data: data[: len(data) // 2],
    "last-bytes": lambda data: data[:-3],
    "inside-length-prefix": lambda data: data[:4],  # not even the 8-byte header length survives
}


@pytest.mark.parametrize("cut", TRUNCATIONS)
def test_truncated_safetensors(folder, cut):
    path = folder / WEIGHTS
    path.write_bytes(TRUNCATIONS[cut](path.read_bytes()))
    raises(lambda: load(folder), WEIGHTS, "truncated or corrupt", "download it again")


@pytest.mark.parametrize("content", [bytes(range(256)) * 64, b"", b"\x10\x00\x00\x00\x00\x00\x00\x00not a header!!!!"],
                         ids=["garbage", "empty", "bad-header"])
def test_corrupt_safetensors(folder, content):
    (folder / WEIGHTS).write_bytes(content)
    raises(lambda: load(folder), WEIGHTS, "not a readable safetensors file", "download it again")


@pytest.mark.parametrize("index", ["not json", "{}", '{"weight_map": []}'])
def test_broken_shard_index(folder, index):
    (folder / "model.safetensors.index.json").write_text(index)
    raises(lambda: load(folder), "model.safetensors.index.json", "not a valid shard index")


def test_shard_index_naming_a_missing_file(folder):
    index = {"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    raises(lambda: load(folder), "model-00002-of-00002.safetensors", "not in")


@pytest.mark.parametrize("shard", ["../../etc/passwd", "/etc/passwd", "sub/../../outside.safetensors"])
def test_shard_index_cannot_name_a_file_outside_the_folder(folder, shard):
    index = {"weight_map": {"model.norm.weight": shard}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    raises(lambda: load(folder), "outside the checkpoint folder", shard)


# --- tokenizer ---


def test_missing_tokenizer_json(tmp_path):
    folder = shutil.copytree(BUNDLED_DIR / "stories260K", tmp_path / "stories")
    (folder / "tokenizer.json").unlink()
    raises(lambda: load_tokenizer(folder), "no tokenizer.json", str(folder))
    assert load(folder).config.vocab_size == 512  # the model itself does not need it


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json"])
def test_corrupt_tokenizer_files(tmp_path, name):
    folder = shutil.copytree(BUNDLED_DIR / "stories260K", tmp_path / "stories")
    (folder / name).write_text("{ this is not json")
    raises(lambda: load_tokenizer(folder), name, "download it again")


# --- sources and options ---


def test_local_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "no-such-model"
    for loader in (load_model, load_tokenizer):
        raises(lambda loader=loader: loader(missing), str(missing), "neither a bundled model", "existing folder")


@pytest.mark.parametrize("source", ["~nosuchuser-mbe/x", "x" * 300], ids=["unknown-home", "name-too-long"])
def test_a_path_that_cannot_be_looked_at(source):
    raises(lambda: load_model(source), "cannot be read as a folder")


def test_a_file_instead_of_a_folder(folder):
    raises(lambda: load(folder / "config.json"), "is a file", "folder")


@pytest.mark.parametrize("dtype", ["float33", "int64", "torch.bool", "fp16"])
def test_bad_dtype(folder, dtype):
    raises(lambda: load_model(folder, device="cpu", dtype=dtype), "dtype", repr(dtype), "float32", "bfloat16")


def test_dtype_names_that_work(folder):
    assert load_model(folder, device="cpu", dtype="torch.bfloat16").dtype == torch.bfloat16
    assert load_model(folder, device="cpu", dtype=torch.float64).dtype == torch.float64


def test_bad_device(folder):
    raises(lambda: load_model(folder, device="gpu7"), "unknown device", "'gpu7'", "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device(folder):
    raises(lambda: load_model(folder, device="cuda"), "'cuda'", "not available", "cpu")


# --- prompts ---


def test_empty_prompt(model):
    empty = torch.zeros(1, 0, dtype=torch.long)
    raises(lambda: model(empty), "prompt is empty", "at least one token")
    raises(lambda: model.generate(empty, 5), "prompt is empty")
    raises(lambda: model.generate(empty, 0), "prompt is empty")
    # What a caller gets from torch.tensor([tokenizer.encode("")]) when no BOS is added: a float (1, 0) tensor.
    raises(lambda: model.generate(torch.tensor([[]]), 5), "prompt is empty")


def test_empty_text_still_gives_a_prompt_when_the_tokenizer_adds_bos():
    ids = load_tokenizer("stories260K").encode("")
    assert ids == [1]
    out = load_model("stories260K", device="cpu").generate(torch.tensor([ids]), 3)
    assert out.shape == (1, 4)


def test_prompt_longer_than_the_context(model):
    too_long = torch.full((1, 129), 5)
    raises(lambda: model(too_long), "129 tokens", "context of 128", "shorten")
    raises(lambda: model.generate(too_long, 1), "129 tokens", "context of 128")
    raises(lambda: model(torch.full((1, 10), 5), start=120), "130 tokens", "context of 128")


@pytest.mark.parametrize("bad", [-1, 128, 10**6])
def test_token_id_outside_the_vocabulary(model, bad):
    ids = torch.tensor([[5, bad, 7]])
    raises(lambda: model(ids), f"token id {bad}", "outside the vocabulary", "0 .. 127")
    raises(lambda: model.generate(ids, 2), f"token id {bad}", "outside the vocabulary")


@pytest.mark.parametrize("ids", [torch.tensor([1, 2, 3]), torch.ones(1, 3), torch.ones(1, 3, dtype=torch.int32)],
                         ids=["1-d", "float", "int32"])
def test_input_ids_of_the_wrong_shape_or_dtype(model, ids):
    raises(lambda: model(ids), "LongTensor", "(batch, tokens)")
    raises(lambda: model.generate(ids, 2), "LongTensor", "(batch, tokens)")


def test_input_ids_that_are_not_a_tensor(model):
    raises(lambda: model.generate([[1, 2, 3]], 2), "LongTensor", "list")


@pytest.mark.parametrize(
    "settings, words",
    [
        (dict(max_new_tokens=-1), ["max_new_tokens", "-1"]),
        (dict(max_new_tokens=2.5), ["max_new_tokens", "whole number"]),
        (dict(temperature=-0.5), ["temperature", "greedy"]),
        (dict(temperature=1.0, top_k=0), ["top_k", "1 or more"]),
        (dict(temperature=1.0, top_p=0.0), ["top_p", "(0, 1]"]),
        (dict(temperature=1.0, top_p=1.5), ["top_p", "(0, 1]"]),
    ],
    ids=["negative-length", "fractional-length", "negative-temperature", "top_k-0", "top_p-0", "top_p-above-1"],
)
def test_bad_generation_settings(model, settings, words):
    settings = {"max_new_tokens": 3, **settings}
    raises(lambda: model.generate(torch.tensor([[1, 2, 3]]), **settings), *words)


@pytest.mark.parametrize("page", ["model", "attention", "rope", "norms", "swiglu", "logit_lens"])
def test_a_page_says_where_a_forward_stopped_being_finite(tiny_folder, tmp_path, page):
    folder = shutil.copytree(tiny_folder(VARIANT), tmp_path / "inf")
    edit_weights(folder, lambda t: t["model.layers.1.mlp.down_proj.weight"].fill_(float("inf")))
    at = open_page(f"pages/{page}.py", folder)
    assert not at.exception
    (warning,) = [w.value for w in at.warning if "not finite" in w.value]
    assert "`layers.1.resid_post`" in warning  # the last layer's output: layer 1 is this model's last
