"""What a server offers its visitors: every model source, the pages, the prompt and the memory budgets.

Without a configuration (a person on their own machine) every source is open: bundled models, any local folder, any
Hub repo id. A teacher serving a class passes a TOML file, `MBE_CONFIG=classroom.toml streamlit run app.py` (see
classroom.toml in the repository), and then a visitor can load only what it lists, never names or probes a path
outside it, and never sees a server path in an error.

No Streamlit here: serving.py builds its caches from this, and tests drive it directly.
"""

import fnmatch
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import constants

from model import DEFAULT_MODEL, ModelError, bundled_models, resolve_source
from model.hub import download_snapshot
from model.sources import BUNDLED_DIR

from .site_map import PAGE_NAMES, described

ENVIRONMENT_VARIABLE = "MBE_CONFIG"
MiB = 2**20
_FOLDER_NAME = re.compile(r"^[\w][\w.-]*$")  # one path component: no "/", no leading "." (so never "..")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/[^\s'\"`,;:()]+")  # not the "/" of owner/name or of https://


class ConfigError(ValueError):
    """A server configuration that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ServerConfig:
    """Who may load what. `path` is None for the open configuration of a single user's own machine."""

    path: Path | None = None
    bundled: tuple[str, ...] = ()
    hub: tuple[str, ...] = ()  # Hub repo ids; entries with * or ? are patterns that only match typed ids
    models_dir: Path | None = None  # each subfolder holding a config.json is offered by its name
    typed: bool = True  # may a visitor type a source, rather than only pick one from the list?
    max_download_bytes: int | None = None
    model_budget_bytes: int = 8192 * MiB
    trace_budget_bytes: int = 2048 * MiB  # all traces together
    per_trace_bytes: int = 2048 * MiB  # what one trace may keep
    pages: tuple[str, ...] | None = None  # url paths of the pages shown; None: all
    prompt: str | None = None
    link_secret: str | None = field(default=None, repr=False)  # signs workshop links (explorer/workshop.py) and unlocks the Class page
    links_required: bool = False  # a visitor without a valid workshop link sees only a note saying so

    @property
    def is_open(self) -> bool:
        return self.path is None

    def choices(self) -> list[str]:
        """The sources a visitor can pick from a list, the default first."""
        if self.is_open:
            return [DEFAULT_MODEL, *(name for name in bundled_models() if name != DEFAULT_MODEL)]
        exact_hub = [repo for repo in self.hub if not _is_pattern(repo)]
        return [*self.bundled, *exact_hub, *self.folder_names()]

    @property
    def default_model(self) -> str:
        return self.choices()[0]

    def folder_names(self) -> list[str]:
        """The models directory's subfolders that hold a config.json."""
        if self.models_dir is None or not self.models_dir.is_dir():
            return []
        return sorted(p.name for p in self.models_dir.iterdir() if _FOLDER_NAME.match(p.name) and self._inside(p))

    def resolve(self, source: str, token: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> Path:
        """The local folder of `source`, downloading an allowed Hub repo when needed. Raises ModelError; in a
        configured server, before touching the file system or the network for a source the configuration does not
        allow, and with server paths left out of the message."""
        if self.is_open:
            return resolve_source(source, token=token or None, progress=progress)
        text = source.strip()
        if text in self.bundled:
            return BUNDLED_DIR / text
        if self.models_dir is not None and _FOLDER_NAME.match(text):
            folder = self.models_dir / text
            if self._inside(folder):
                return folder
        if any(fnmatch.fnmatchcase(text, pattern) for pattern in self.hub) and "/" in text:
            # The server's own Hub login (HF_TOKEN or a stored one) is used only for repos the teacher listed by
            # name; for one matched by a pattern only the visitor's own token is sent (False: none at all).
            server_login = None if text in self.hub else False
            return download_snapshot(text, token=(token or "").strip() or server_login, progress=progress,
                                     max_bytes=self.max_download_bytes)
        offered = ", ".join(self.choices()) or "none"
        raise ModelError(f"{text!r} is not one of the models this server offers ({offered}).")

    def _inside(self, folder: Path) -> bool:
        """Whether `folder` is a model folder that really lies in the models directory: a symlink out of it, or a
        name that resolves elsewhere, does not."""
        try:
            real = folder.resolve()
            return real.parent == self.models_dir.resolve() and (real / "config.json").is_file()
        except (OSError, RuntimeError):
            return False

    def redact(self, message: str) -> str:
        """`message` with the server's paths named by what the configuration exposes: a models-directory folder by
        its name, the Hub cache and the bundled models by a word, any other absolute path not at all."""
        if self.is_open:
            return message
        roots = {str(BUNDLED_DIR): "bundled", str(Path(constants.HF_HUB_CACHE)): "the Hub cache"}
        if self.models_dir is not None:
            roots[str(self.models_dir)] = "models"
            roots[str(self.models_dir.resolve())] = "models"
        for root, name in sorted(roots.items(), key=lambda item: -len(item[0])):
            message = message.replace(root, name)
        return _ABSOLUTE_PATH.sub("a server path", message)


def _is_pattern(repo: str) -> bool:
    return any(c in repo for c in "*?[")


# ---------------------------------------------------------------------------------------------- reading the file

_KEYS = {
    "": {"prompt": str, "pages": list, "models": dict, "memory": dict, "links": dict},
    "models": {"bundled": list, "hub": list, "folder": str, "typed": bool, "max_download_mb": (int, float)},
    "memory": {"models_mb": (int, float), "traces_mb": (int, float), "trace_mb": (int, float)},
    "links": {"secret": str, "required": bool},
}


def from_environment() -> ServerConfig:
    """The configuration named by MBE_CONFIG, or the open one; memory budgets default to MBE_MODEL_BUDGET_MB and
    MBE_TRACE_BUDGET_MB (a per-trace budget equal to the total) when the file does not set them."""
    models_mb = _number_from_env("MBE_MODEL_BUDGET_MB", 8192)
    traces_mb = _number_from_env("MBE_TRACE_BUDGET_MB", 2048)
    defaults = ServerConfig(model_budget_bytes=int(models_mb * MiB), trace_budget_bytes=int(traces_mb * MiB),
                            per_trace_bytes=int(traces_mb * MiB))
    path = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    return read(Path(path), defaults) if path else defaults


def _number_from_env(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value > 0:
        raise ConfigError(f"{name}={text!r}: give a positive number of MiB.")
    return value


def read(path: Path, defaults: ServerConfig = ServerConfig()) -> ServerConfig:
    """Parse and check a configuration file: every key known, every value of its type and range, every named model
    present, so that a mistake stops the server at start with a message rather than surprising a class."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read the server configuration {path} ({e.__class__.__name__}: {e}).") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}.") from None
    _check_keys(path, data)
    models, memory, links = data.get("models", {}), data.get("memory", {}), data.get("links", {})

    def where(section: str, key: str) -> str:
        return f"{path}: {section + '.' if section else ''}{key}"

    def strings(section: str, key: str, values: list) -> tuple[str, ...]:
        if not all(isinstance(v, str) and v.strip() for v in values):
            raise ConfigError(f"{where(section, key)} must be a list of non-empty strings.")
        return tuple(v.strip() for v in values)

    def mib(section: str, key: str, default: int | None) -> int | None:
        value = (models if section == "models" else memory).get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not value > 0:
            raise ConfigError(f"{where(section, key)} must be a positive number of MiB, not {value!r}.")
        return int(value * MiB)

    bundled = strings("models", "bundled", models.get("bundled", []))
    unknown = [name for name in bundled if name not in bundled_models()]
    if unknown:
        raise ConfigError(f"{where('models', 'bundled')}: no bundled model {', '.join(unknown)} "
                          f"(there are {', '.join(bundled_models())}).")
    hub = strings("models", "hub", models.get("hub", []))
    bad_ids = [repo for repo in hub if repo.count("/") != 1 or repo.startswith((".", "/", "~"))]
    if bad_ids:
        raise ConfigError(f"{where('models', 'hub')}: {', '.join(bad_ids)} is not a Hub repo id (owner/name) or a "
                          "pattern of them such as owner/*.")
    models_dir = None
    if "folder" in models:
        models_dir = (path.parent / Path(models["folder"]).expanduser()).resolve()
        if not models_dir.is_dir():
            raise ConfigError(f"{where('models', 'folder')}: {models_dir} is not a folder.")
    if not (bundled or hub or models_dir):
        raise ConfigError(f"{path}: [models] allows no model: list bundled names, Hub repo ids or a folder.")

    pages = data.get("pages")
    if pages is not None:
        pages = strings("", "pages", pages)
        unknown = [name for name in pages if name not in PAGE_NAMES]
        if unknown or not pages:
            raise ConfigError(f"{where('', 'pages')}: {', '.join(unknown) or 'empty'}; the pages are "
                              f"{described(PAGE_NAMES)}.")
    prompt = data.get("prompt")
    if prompt is not None and not prompt.strip():
        raise ConfigError(f"{where('', 'prompt')} is empty.")
    secret = links.get("secret")
    if secret is not None and len(secret) < 16:
        raise ConfigError(f"{where('links', 'secret')} must be at least 16 characters: it signs workshop links.")
    if links.get("required") and secret is None:
        raise ConfigError(f"{where('links', 'required')} needs links.secret, which signs the links.")
    config = ServerConfig(
        path=path.resolve(), bundled=bundled, hub=hub, models_dir=models_dir, typed=models.get("typed", False),
        max_download_bytes=mib("models", "max_download_mb", None),
        model_budget_bytes=mib("memory", "models_mb", defaults.model_budget_bytes),
        trace_budget_bytes=mib("memory", "traces_mb", defaults.trace_budget_bytes),
        per_trace_bytes=mib("memory", "trace_mb", None) or mib("memory", "traces_mb", defaults.per_trace_bytes),
        pages=pages, prompt=prompt, link_secret=secret,
        links_required=links.get("required", False))
    if config.per_trace_bytes > config.trace_budget_bytes:
        raise ConfigError(f"{where('memory', 'trace_mb')} is larger than memory.traces_mb, the budget of all traces.")
    if not config.choices() and not config.typed:
        raise ConfigError(f"{path}: [models] offers nothing to pick (a folder without model folders, Hub patterns "
                          "only) and typed = false.")
    return config


def _check_keys(path: Path, data: dict) -> None:
    for section, allowed in _KEYS.items():
        table = data.get(section, {}) if section else data
        for key, value in table.items():
            name = f"{section}.{key}" if section else key
            if key not in allowed:
                raise ConfigError(f"{path}: unknown key {name!r}; the known ones are "
                                  f"{', '.join(sorted(allowed))}{' in [' + section + ']' if section else ''}.")
            kind = allowed[key]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind != bool):
                raise ConfigError(f"{path}: {name} has the wrong type ({type(value).__name__}).")
