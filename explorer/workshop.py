"""Workshop links: an address that opens the app with a model, a starting prompt and a set of pages pinned, until
an optional expiry. The teacher makes one on the Workshop links page or with

    MBE_CONFIG=classroom.toml python -m explorer.workshop --server http://10.0.0.5:8501 --model stories260K \\
        --prompt "Once upon a time" --pages attention rope --hours 3

The link's state travels in the link itself, signed with the configuration's `links.secret` (HMAC-SHA256), so a
student cannot change the model, the pages or the expiry, and a server restart does not break the links it made.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from .server_config import ConfigError, ServerConfig
from .serving import CONFIG, EXAMPLE_PROMPTS
from .site_map import PAGE_NAMES, described

QUERY_PARAMETER = "workshop"


class LinkError(ValueError):
    """A workshop link that cannot be used; the message says why, for the student who opened it."""


@dataclass(frozen=True)
class Workshop:
    model: str
    prompt: str
    pages: tuple[str, ...]  # page names (explorer.site_map), the first one the landing page
    expires: datetime | None = None  # timezone-aware

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires


def check(workshop: Workshop, config: ServerConfig) -> None:
    """Refuse a workshop this server could not open: a model it does not offer, a page it does not show."""
    if workshop.model not in config.choices():
        raise LinkError(f"{workshop.model!r} is not one of the models this server offers "
                        f"({', '.join(config.choices())}).")
    shown = config.pages or PAGE_NAMES
    unknown = [name for name in workshop.pages if name not in shown]
    if unknown or not workshop.pages:
        raise LinkError(f"Pages {', '.join(unknown) or '(none)'}: choose among {described(shown)}.")
    if not workshop.prompt.strip():
        raise LinkError("The starting prompt is empty.")


def make_token(workshop: Workshop, secret: str) -> str:
    payload = {"model": workshop.model, "prompt": workshop.prompt, "pages": list(workshop.pages),
               "expires": int(workshop.expires.timestamp()) if workshop.expires else None}
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_signature(body, secret)}"


def open_token(token: str, secret: str, now: datetime | None = None) -> Workshop:
    """The workshop a link carries. Raises LinkError for a link changed since it was made, made by a server with
    another secret, or expired."""
    body, _, signature = token.partition(".")
    if not hmac.compare_digest(signature, _signature(body, secret)):
        raise LinkError("This workshop link is not valid: it was changed, cut short, or made for another server. "
                        "Ask your teacher for the link again.")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))  # signed by us: well-formed
    expires = datetime.fromtimestamp(data["expires"], UTC) if data["expires"] is not None else None
    workshop = Workshop(data["model"], data["prompt"], tuple(data["pages"]), expires)
    if workshop.expired(now):
        raise LinkError(f"This workshop link expired on {expires:%Y-%m-%d at %H:%M} UTC. Ask your teacher for a "
                        "new one.")
    return workshop


def link(server: str, token: str) -> str:
    """The address students open: the landing page is the workshop's first page."""
    return f"{server.rstrip('/')}/?{urlencode({QUERY_PARAMETER: token})}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _signature(body: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.workshop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="the address students open, e.g. http://10.0.0.5:8501")
    parser.add_argument("--model", help="a model the configuration offers (default: its first)")
    parser.add_argument("--prompt", help="the starting prompt (default: the configuration's)")
    parser.add_argument("--pages", nargs="+", default=["model"], help=f"page names among: {', '.join(PAGE_NAMES)}")
    parser.add_argument("--hours", type=float, help="the link stops working after this many hours (default: never)")
    args = parser.parse_args(argv)
    try:
        config = CONFIG
        if not config.link_secret:
            raise ConfigError("Workshop links need a server configuration with links.secret: set MBE_CONFIG to it.")
        expires = datetime.now(UTC) + timedelta(hours=args.hours) if args.hours else None
        workshop = Workshop(args.model or config.default_model, args.prompt or EXAMPLE_PROMPTS[0],
                            tuple(args.pages), expires)
        check(workshop, config)
    except (ConfigError, LinkError) as e:
        print(e, file=sys.stderr)
        return 2
    print(link(args.server, make_token(workshop, config.link_secret)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
