"""The project as a package: pyproject.toml agrees with the requirements files, and an install into a fresh virtual
environment works from another directory: imports, the bundled model, the app's files and the console command."""

import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip() and not line.startswith("-r")]


def test_pyproject_pins_what_the_requirements_files_pin():
    assert PYPROJECT["dependencies"] == requirements("requirements.txt")
    assert PYPROJECT["optional-dependencies"]["dev"] == requirements("requirements-dev.txt")
    assert PYPROJECT["requires-python"] == ">=3.11"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the project installed from a copy of the working tree, offline, as `pip install .` would.

    The venv sees this environment's packages through a .pth file (no download: the dependencies are already here,
    whether this is a venv or not), and uses this environment's pip and setuptools to build."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "artifacts", "build", "*.egg-info",
                                                                  "__pycache__", ".pytest_cache", ".venv"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    (venv_site,) = run_in(tmp, python, "-c", "import site; print(*site.getsitepackages())").split()
    (Path(venv_site) / "this-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run_in(tmp, python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", source)
    return venv


def run_in(cwd: Path, *args) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def test_installed_package_imports_from_anywhere_and_loads_the_bundled_model(installed, tmp_path):
    out = run_in(tmp_path, installed / "bin" / "python", "-c",
                 "import explorer, model, training\n"
                 "from model import load_model, load_tokenizer\n"
                 "d, tok = load_model('stories260K'), load_tokenizer('stories260K')\n"
                 "print(model.__file__)\n"
                 "print(d.config.num_hidden_layers, tok.encode('Once upon a time')[:2])")
    location, numbers = out.splitlines()
    assert Path(location).is_relative_to(installed) and not Path(location).is_relative_to(ROOT)
    assert numbers == "5 [1, 403]"


def test_console_command_prints_help_and_finds_the_installed_app(installed, tmp_path):
    out = run_in(tmp_path, installed / "bin" / "modern-blocks-explorer", "--help")
    app = Path(re.search(r"streamlit run (\S+app\.py)", out).group(1))
    assert app.is_relative_to(installed) and app.is_file()
    assert (app.parent / "pages" / "attention.py").is_file() and (app.parent / ".streamlit" / "config.toml").is_file()
