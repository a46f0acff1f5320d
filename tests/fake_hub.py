"""A fake Hugging Face Hub on 127.0.0.1 and a fake HF cache, for tests of the Hub path up to the network boundary.

huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE into huggingface_hub.constants when it is imported
and looks them up there at call time, so the fixtures patch those attributes (setting the environment variables now
would change nothing). Test modules import the fixtures they use.
"""

import hashlib
import json
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch
from huggingface_hub import constants

from model.sources import BUNDLED_DIR
from tests.conftest import build_hf_model, random_ids, save_hf_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "hf_TestSecretToken123"


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



class FakeHub(ThreadingHTTPServer):
    """The endpoints snapshot_download (huggingface_hub 2.4) calls, for repos held in memory.

    GET  /api/models/{repo}[/revision/{rev}]      repo info, whose "sha" pins the commit, with file sizes
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
        elif parts[:2] == ["api", "models"] and len(parts) == 4:
            repo_id, kind, rev = "/".join(parts[2:4]), "revision", "main"
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
                    "siblings": [{"rfilename": name, "size": len(data)} for name, data in files.items()]}
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


def closed_port() -> int:
    with socket.socket() as s:  # a port just freed: connecting to it is refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
