"""`modern-blocks-explorer`: start the app, i.e. `streamlit run` on the installed app.py, with every flag passed on.

    modern-blocks-explorer                                   # opens the app in your browser
    modern-blocks-explorer --server.headless true --server.port 8601   # a server for a class: no browser opened
"""

import importlib.util
import sys
from pathlib import Path

APP_PACKAGE = "modern_blocks_explorer_app"  # app.py and pages/, installed under this name (see pyproject.toml)


def app_script() -> Path:
    """app.py of the installed app, or of this checkout when run without installing."""
    spec = importlib.util.find_spec(APP_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "app.py"
    return Path(__file__).resolve().parents[1] / "app.py"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):
        print(f"usage: modern-blocks-explorer [STREAMLIT RUN OPTIONS]\n\nStarts Modern Blocks Explorer: `streamlit run "
              f"{app_script()}` with the options given.\nOptions: `streamlit run --help`; e.g. --server.port 8601, "
              "--server.headless true (do not open a browser).")
        return 0
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(app_script()), *args]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
