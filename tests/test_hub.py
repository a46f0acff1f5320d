"""The Hub path up to the network boundary: a fake HF cache, and a fake Hub on 127.0.0.1 that huggingface_hub talks to.

Nothing here reaches the internet. huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE into
huggingface_hub.constants when it is imported and looks them up there at call time, so the tests patch those
attributes (setting the environment variables now would change nothing).
"""

import hashlib
import json
import logging
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch
from huggingface_hub import constants

from model import ModelError, load_model, load_tokenizer
from model.sources import BUNDLED_DIR
from tests.conftest import build_hf_model, random_ids, save_hf_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "hf_TestSecretToken123"
NEEDED = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}
NOT_NEEDED = {
    "pytorch_model.bin": b"pickled weights that must never be requested",
    "README.md": b"# tiny",
    "onnx/model.safetensors": b"a subfolder's weights, not the checkpoint's",
}


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """An empty HF cache and no token from the environment or a stored login; online unless a test says otherwise."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def use_endpoint(monkeypatch, url: str) -> None:
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A sharded tiny Qwen3 checkpoint with the bundled tokenizer: file name -> bytes, and the transformers model."""
    hf = build_hf_model("qwen3-qknorm")
    folder = save_hf_model(hf, tmp_path_factory.mktemp("qwen3"), max_shard_size="150KB")
    shutil.copy(BUNDLED_DIR / "stories260K" / "tokenizer.json", folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True, "bos_token": "<s>"}))
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert "model.safetensors.index.json" in files and sum(n.endswith(".safetensors") for n in files) > 1
    return files, hf


def assert_same_logits(model, hf):
    ids = random_ids(model.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf(ids).logits, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- a cache filled beforehand, used offline


def fill_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """The layout huggingface_hub writes: blobs named by hash, snapshot files linking to them, refs/main -> commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("../..") / "blobs" / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


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


class FakeHub(ThreadingHTTPServer):
    """The endpoints snapshot_download (huggingface_hub 2.4) calls, for repos held in memory.

    GET  /api/models/{repo}/revision/{rev}        repo info, whose "sha" pins the commit
    GET  /api/models/{repo}/tree/{commit}         the file list (recursive, one page)
    HEAD /{repo}/resolve/{commit}/{file}          ETag, X-Repo-Commit, Content-Length
    GET  /{repo}/resolve/{commit}/{file}          the bytes
    Errors carry X-Error-Code as the Hub's do: RepoNotFound (401 without a token, as for private repos),
    RevisionNotFound (404), GatedRepo (401 without a token, 403 with one that has no access).
    """

    daemon_threads = True
    request_queue_size = 64  # snapshot_download opens 8 connections at once; an overflowing backlog costs 1 s retries

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeHubHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.repos = {}  # repo id -> {"files": {path: bytes}, "gated": bool}
        self.requests = []  # (method, path, authorization header)
        self.hold = {}  # file name -> threading.Event that its body waits for, after the headers

    def add(self, repo_id, files, gated=False):
        self.repos[repo_id] = {"files": files, "gated": gated}

    def fetched(self):
        """Files whose bytes were requested (GET on /resolve/)."""
        return {path.split("/resolve/", 1)[1].split("/", 1)[1] for m, path, _ in self.requests
                if m == "GET" and "/resolve/" in path}


class FakeHubHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        self.answer(body=True)

    def answer(self, body):
        path = unquote(urlsplit(self.path).path)
        auth = self.headers.get("Authorization")
        self.server.requests.append((self.command, path, auth))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] in ("revision", "tree"):
            repo_id, kind, rev = "/".join(parts[2:4]), parts[4], parts[5]
        elif len(parts) >= 5 and parts[2] == "resolve":
            repo_id, kind, rev = "/".join(parts[:2]), "resolve", parts[3]
        else:  # e.g. /api/agent-harnesses, which huggingface_hub fetches once for its user agent
            return self.send(404, b"")
        repo = self.server.repos.get(repo_id)
        if repo is None:
            return self.send(401 if auth is None else 404, b"", {"X-Error-Code": "RepoNotFound"})
        if rev not in ("main", COMMIT):
            return self.send(404, b"", {"X-Error-Code": "RevisionNotFound"})
        files = repo["files"]
        if kind == "revision":
            info = {"id": repo_id, "sha": COMMIT, "gated": "auto" if repo["gated"] else False,
                    "siblings": [{"rfilename": name} for name in files]}
            return self.send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
        if kind == "tree":
            tree = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                    for name, data in files.items()]
            return self.send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"})
        if repo["gated"] and auth != f"Bearer {TOKEN}":
            return self.send(401 if auth is None else 403, b"", {"X-Error-Code": "GatedRepo"})
        name = "/".join(parts[4:])
        if name not in files:
            return self.send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
        data = files[name]
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        hold = self.server.hold.get(name) if body else None
        self.send(200, data if body else None, {"ETag": etag, "X-Repo-Commit": COMMIT}, length=len(data), hold=hold)

    def send(self, status, data, headers=None, length=None, hold=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data or b"") if length is None else length))
        self.end_headers()
        if hold is not None:
            hold.wait(timeout=10)  # bounded: a broken test fails instead of hanging
        if data:
            self.wfile.write(data)


@pytest.fixture
def hub(hf_home, monkeypatch):
    server = FakeHub()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    use_endpoint(monkeypatch, server.url)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


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


def closed_port() -> int:
    with socket.socket() as s:  # a port just freed: connecting to it is refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hub_unreachable_and_not_cached(hf_home, monkeypatch):
    use_endpoint(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ModelError, match=r"owner/tiny is not \(fully\) in the local .* Hub cannot be reached"):
        load_model("owner/tiny")


def test_pickle_only_repo_is_refused_without_downloading_the_pickle(hub, checkpoint):
    hub.add("owner/pickled", {"config.json": checkpoint[0]["config.json"], **NOT_NEEDED})
    with pytest.raises(ModelError, match=r"only pickled weights \(pytorch_model.bin\).*arbitrary code"):
        load_model("owner/pickled")
    assert hub.fetched() == {"config.json"}
