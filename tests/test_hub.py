"""The Hub path up to the network boundary: a fake HF cache, and a fake Hub on 127.0.0.1 that huggingface_hub talks to.

Nothing here reaches the internet: tests/fake_hub.py has the fake Hub and cache.
"""

import logging
import threading

import pytest
from huggingface_hub import constants

from model import ModelError, load_model, load_tokenizer
from tests.fake_hub import COMMIT, TOKEN, assert_same_logits, closed_port, fill_cache, use_endpoint

NEEDED = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}
NOT_NEEDED = {
    "pytorch_model.bin": b"pickled weights that must never be requested",
    "README.md": b"# tiny",
    "onnx/model.safetensors": b"a subfolder's weights, not the checkpoint's",
}


# ---------------------------------------------------------------- a cache filled beforehand, used offline


def test_offline_loads_model_and_tokenizer_from_the_cache(hf_home, monkeypatch, checkpoint):
    files, hf = checkpoint
    snapshot = fill_cache(hf_home / "hub", "owner/tiny", files)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    use_endpoint(monkeypatch, "http://127.0.0.1:9")  # never contacted, whatever happens

    assert_same_logits(load_model("owner/tiny", device="cpu"), hf)
    assert load_tokenizer("owner/tiny").encode("Once upon a time")[0] == 1  # BOS from tokenizer_config.json
    assert load_model("owner/tiny", revision=COMMIT, device="cpu").config.num_hidden_layers == 2
    assert snapshot.is_dir()


def test_offline_and_not_cached(hf_home, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match=r"owner/missing is not \(fully\) in the local .*HF_HUB_OFFLINE=1"):
        load_model("owner/missing")


# ---------------------------------------------------------------- a fake Hub


def test_download_fetches_only_needed_files_reports_progress_and_loads(hub, checkpoint, monkeypatch):
    files, hf = checkpoint
    hub.add("owner/tiny", {**files, **NOT_NEEDED})
    hub.hold["config.json"] = threading.Event()  # its bytes wait until progress has shown a partial download
    calls = []

    def progress(done, total):
        calls.append((done, total, threading.get_ident()))
        if done < total:
            hub.hold["config.json"].set()

    assert_same_logits(load_model("owner/tiny", device="cpu", progress=progress), hf)

    assert hub.fetched() == set(files)  # config, tokenizer files, index and shards
    resolved = [path for _, path, _ in hub.requests if "/resolve/" in path]
    assert not [path for path in resolved if any(path.endswith(name) for name in NOT_NEEDED)]  # not even a HEAD

    # Reported on the caller's thread (Streamlit draws only from there), while bytes arrive, ending at the total.
    assert {thread for *_, thread in calls} == {threading.get_ident()}
    assert any(done < total for done, total, _ in calls)
    dones = [done for done, *_ in calls]
    assert dones == sorted(dones) and all(done <= total for done, total, _ in calls)
    assert calls[-1][:2] == (sum(map(len, files.values())),) * 2

    # The cache is used: loading again downloads nothing, and works with the Hub out of reach.
    hub.requests.clear()
    load_tokenizer("owner/tiny", progress=lambda *_: pytest.fail("nothing to download"))
    assert hub.fetched() == set()
    use_endpoint(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    assert_same_logits(load_model("owner/tiny", device="cpu"), hf)


def test_unknown_repo(hub):
    with pytest.raises(ModelError, match="No Hub repository 'owner/nope'.*spelling"):
        load_model("owner/nope")


def test_unknown_revision(hub, checkpoint):
    hub.add("owner/tiny", checkpoint[0])
    with pytest.raises(ModelError, match="owner/tiny has no revision 'v9'"):
        load_model("owner/tiny", revision="v9")


def test_gated_repo_needs_a_token_which_is_never_logged_or_written(hub, checkpoint, hf_home, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    files, hf = checkpoint
    hub.add("owner/gated", files, gated=True)
    with pytest.raises(ModelError, match="owner/gated is gated.*token"):
        load_model("owner/gated")
    with pytest.raises(ModelError, match="owner/gated is gated") as wrong:
        load_model("owner/gated", token="hf_wrong")
    assert "hf_wrong" not in str(wrong.value)

    assert_same_logits(load_model("owner/gated", token=TOKEN, device="cpu"), hf)
    assert ("GET", "/owner/gated/resolve/" + COMMIT + "/config.json", f"Bearer {TOKEN}") in hub.requests
    assert TOKEN not in caplog.text
    assert not [p for p in hf_home.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


def test_token_from_hf_token_variable(hub, checkpoint, monkeypatch):
    hub.add("owner/gated", checkpoint[0], gated=True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert load_tokenizer("owner/gated").vocab_size == 512


def test_hub_unreachable_and_not_cached(hf_home, monkeypatch):
    use_endpoint(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ModelError, match=r"owner/tiny is not \(fully\) in the local .* Hub cannot be reached"):
        load_model("owner/tiny")


def test_pickle_only_repo_is_refused_without_downloading_the_pickle(hub, checkpoint):
    hub.add("owner/pickled", {"config.json": checkpoint[0]["config.json"], **NOT_NEEDED})
    with pytest.raises(ModelError, match=r"only pickled weights \(pytorch_model.bin\).*arbitrary code"):
        load_model("owner/pickled")
    assert hub.fetched() == {"config.json"}
