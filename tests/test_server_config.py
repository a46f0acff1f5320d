"""A class server's configuration: what it allows loads, nothing else is read, probed or downloaded, and no error
names a server path. The Hub is tests/fake_hub.py's, on 127.0.0.1."""

import shutil
from pathlib import Path

import pytest

from explorer import server_config
from explorer.server_config import ConfigError, ServerConfig, read
from explorer.serving import ModelCache, ModelChoice
from model import ModelError
from tests.fake_hub import TOKEN, closed_port, fill_cache, use_endpoint

ROOT = Path(__file__).resolve().parents[1]


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "classroom.toml"
    path.write_text(text)
    return path


@pytest.fixture
def models_dir(tmp_path, tiny_folder) -> Path:
    """A models directory with one model, "tiny", and a symlink out of it to a model folder elsewhere."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copytree(tiny_folder("qwen3-qknorm"), folder / "tiny")
    outside = tmp_path / "private" / "secret-model"
    shutil.copytree(tiny_folder("qwen3-qknorm"), outside)
    (folder / "escape").symlink_to(outside)
    return folder


def classroom(tmp_path, extra: str = "") -> ServerConfig:
    return read(config_file(tmp_path, f'[models]\nbundled = ["stories260K"]\nhub = ["owner/listed", "owner/*"]\n'
                                      f'folder = "models"\ntyped = true\n{extra}'))


def test_the_sample_configuration_is_valid():
    config = read(ROOT / "classroom.toml")
    assert config.choices()[:2] == ["stories260K", "pair-llama"] and "Qwen/Qwen3-0.6B" in config.choices()
    assert not config.typed and config.max_download_bytes == 4096 * 2**20 and config.per_trace_bytes == 2**30
    assert config.pages[0] == "model" and config.prompt.startswith("Once upon a time")


def test_without_a_configuration_everything_is_open(monkeypatch, tiny_folder):
    monkeypatch.delenv("MBE_CONFIG", raising=False)
    config = server_config.from_environment()
    assert config.is_open and config.typed and config.default_model == "stories260K"
    assert config.resolve(str(tiny_folder("qwen3-qknorm"))) == tiny_folder("qwen3-qknorm")


@pytest.mark.parametrize("text, message", [
    ('[models]\nbundled = ["stories260K"]\nmax_download_MB = 5', "unknown key 'models.max_download_MB'"),
    ('[models]\nbundled = "stories260K"', "models.bundled has the wrong type"),
    ('[models]\nbundled = ["nope"]', "no bundled model nope"),
    ('[models]\nhub = ["../etc"]', "is not a Hub repo id"),
    ('[models]\nfolder = "no/such"', "models.folder: .* is not a folder"),
    ('[models]\ntyped = true', r"\[models\] allows no model"),
    ('pages = ["attention", "nope"]\n[models]\nbundled = ["stories260K"]', "pages: nope; the pages are model"),
    ('[models]\nbundled = ["stories260K"]\n[memory]\ntrace_mb = 0', "memory.trace_mb must be a positive number"),
    ('[models]\nbundled = ["stories260K"]\n[memory]\ntraces_mb = 10\ntrace_mb = 20', "larger than memory.traces_mb"),
    ('[models]\nbundled = ["stories260K"]\n[links]\nsecret = "short"', "at least 16 characters"),
    ('[models]\nbundled = ["stories260K"]\n[links]\nrequired = true', "needs links.secret"),
    ('[models\n', "is not valid TOML"),
])
def test_a_mistake_stops_the_server_at_start_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        read(config_file(tmp_path, text))


def test_allowed_sources_load_and_nothing_else_is_touched(tmp_path, models_dir, monkeypatch):
    config = classroom(tmp_path)
    assert config.choices() == ["stories260K", "owner/listed", "tiny"]  # patterns match typed ids only
    cache = ModelCache(config)
    assert cache.get(ModelChoice("tiny", "cpu", "auto"))[0].config.model_type == "qwen3"
    assert cache.get(ModelChoice("stories260K", "cpu", "auto"))[0].config.vocab_size == 512

    def no_network(*args, **kwargs):
        raise AssertionError("a refused source never reaches the Hub")

    monkeypatch.setattr(server_config, "download_snapshot", no_network)
    refused = ["escape", "../private/secret-model", str(tmp_path / "private" / "secret-model"), "/etc", "~root",
               "..", ".", "models/tiny", "pair-llama", "other/repo-name", "x" * 300]
    for source in refused:
        with pytest.raises(ModelError, match="is not one of the models this server offers") as refusal:
            cache.get(ModelChoice(source, "cpu", "auto"))
        assert str(tmp_path) not in str(refusal.value) and "private" not in str(refusal.value).replace(source, "")


def test_an_error_loading_an_allowed_folder_names_no_server_path(tmp_path, models_dir):
    (models_dir / "tiny" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"^No weights in models/tiny: expected model.safetensors"):
        ModelCache(classroom(tmp_path)).get(ModelChoice("tiny", "cpu", "auto"))


def test_redact_names_what_the_configuration_exposes(tmp_path, models_dir):
    config = classroom(tmp_path)
    message = f"No config.json in {models_dir}/tiny, nor in /etc/hosts; see https://huggingface.co/owner/name."
    assert config.redact(message) == ("No config.json in models/tiny, nor in a server path; see "
                                      "https://huggingface.co/owner/name.")


def test_a_download_over_the_cap_is_refused_before_it_starts(tmp_path, models_dir, hub, checkpoint):
    files, _ = checkpoint
    hub.add("owner/big", files)
    size = sum(len(data) for data in files.values())
    capped = classroom(tmp_path, f"max_download_mb = {size * 0.9 / 2**20}")
    with pytest.raises(ModelError, match=r"owner/big is 0 MiB, more than this server downloads"):
        capped.resolve("owner/big")
    assert hub.fetched() == set()
    roomy = classroom(tmp_path, f"max_download_mb = {size * 1.1 / 2**20}")
    assert (roomy.resolve("owner/big") / "config.json").is_file()


def test_with_the_hub_out_of_reach_a_capped_download_uses_only_the_cache(tmp_path, models_dir, hf_home, monkeypatch,
                                                                        checkpoint):
    fill_cache(hf_home / "hub", "owner/cached", checkpoint[0])
    use_endpoint(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    config = classroom(tmp_path, "max_download_mb = 1")
    assert (config.resolve("owner/cached") / "config.json").is_file()
    with pytest.raises(ModelError, match="owner/other is not .* in the local Hugging Face cache"):
        config.resolve("owner/other")


def test_the_servers_hub_login_is_used_only_for_repos_the_teacher_listed(tmp_path, models_dir, hub, checkpoint,
                                                                         monkeypatch):
    hub.add("owner/listed", checkpoint[0], gated=True)
    hub.add("owner/typed", checkpoint[0], gated=True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the server's own login
    config = classroom(tmp_path)
    assert (config.resolve("owner/listed") / "config.json").is_file()
    with pytest.raises(ModelError, match="owner/typed is gated"):
        config.resolve("owner/typed")  # matched by owner/*: only a student's own token opens it
    assert not [auth for _, path, auth in hub.requests if path.startswith("/owner/typed/") and auth]
    assert (config.resolve("owner/typed", token=TOKEN) / "config.json").is_file()
