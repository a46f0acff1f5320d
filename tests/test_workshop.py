"""Workshop links: signed, expiring, and opening the app in their state; and a configured server's menus."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from explorer import app_state, serving, workshop
from explorer.server_config import ServerConfig, read
from explorer.workshop import LinkError, Workshop, check, make_token, open_token

from .apptest_helpers import APP

SECRET = "a-test-secret-of-enough-length"
LESSON = Workshop("pair-llama", "The cat sat on the mat.", ("attention", "model"),
                  datetime(2026, 12, 9, 12, 0, tzinfo=UTC))


@pytest.fixture
def configured(tmp_path, monkeypatch):
    """Serve the app with a configuration: three pages, two bundled models, a link secret, and `extra` top-level
    keys and `links` keys."""

    def serve(extra: str = "", links: str = "") -> ServerConfig:
        path = tmp_path / "classroom.toml"
        path.write_text(f'pages = ["model", "attention", "rope"]\n{extra}\n[models]\n'
                        f'bundled = ["stories260K", "pair-llama"]\n[links]\nsecret = "{SECRET}"\n{links}\n')
        config = read(path)
        for module in (serving, app_state, workshop):
            monkeypatch.setattr(module, "CONFIG", config)
        prompts = [config.prompt, *serving.STORY_PROMPTS] if config.prompt else serving.STORY_PROMPTS
        for module in (serving, workshop):
            monkeypatch.setattr(module, "EXAMPLE_PROMPTS", prompts)
        models = serving.ModelCache(config)
        for module in (serving, app_state):
            monkeypatch.setattr(module, "MODELS", models)
        return config

    return serve


def test_a_link_carries_its_workshop_and_refuses_changes():
    token = make_token(LESSON, SECRET)
    assert open_token(token, SECRET, now=LESSON.expires - timedelta(hours=1)) == LESSON
    body, signature = token.split(".")
    forged = make_token(Workshop(**{**LESSON.__dict__, "expires": None}), "another-secret-of-enough-length")
    for bad in (f"{body}x.{signature}", f"{body}.{signature[:-2]}", forged, token + "=", "", "."):
        with pytest.raises(LinkError, match="not valid: it was changed"):
            open_token(bad, SECRET)
    with pytest.raises(LinkError, match="expired on 2026-12-09 at 12:00 UTC. Ask your teacher for a new one"):
        open_token(token, SECRET, now=LESSON.expires)


def test_a_workshop_must_fit_the_server(configured):
    config = configured()
    check(LESSON, config)
    with pytest.raises(LinkError, match="'pair-qwen3' is not one of the models this server offers"):
        check(Workshop("pair-qwen3", "x", ("model",)), config)
    with pytest.raises(LinkError, match="Pages lab: choose among model"):
        check(Workshop("pair-llama", "x", ("lab",)), config)


def test_the_command_line_prints_a_link_that_opens(configured, capsys):
    configured()
    assert workshop.main(["--server", "http://10.0.0.5:8501/", "--model", "pair-llama", "--pages", "rope",
                          "--hours", "2"]) == 0
    url = capsys.readouterr().out.strip()
    token = re.fullmatch(r"http://10\.0\.0\.5:8501/\?workshop=(\S+)", url).group(1)
    opened = open_token(token, SECRET)
    assert opened.model == "pair-llama" and opened.pages == ("rope",)
    assert timedelta(hours=1.9) < opened.expires - datetime.now(UTC) <= timedelta(hours=2)
    assert workshop.main(["--server", "http://x", "--model", "Qwen/Qwen3-0.6B"]) == 2
    assert "not one of the models this server offers" in capsys.readouterr().err


def app_with(**query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(query)
    return at.run()


def test_a_configured_server_offers_only_its_models_and_pages(configured):
    configured('prompt = "A teacher\'s prompt."')
    at = app_with(model="/etc")
    assert at.selectbox(key="model_choice").options == ["stories260K", "pair-llama"]  # nothing typed
    assert at.text_area(key="prompt").value == "A teacher's prompt."
    assert "This server does not offer /etc" in at.toast[0].value and not at.exception and not at.error
    assert at.title[0].value == "Model: stories260K"


def test_a_workshop_link_opens_its_model_prompt_and_pages(configured):
    configured()
    at = app_with(workshop=make_token(Workshop("pair-llama", "The dog ran.", ("attention", "model")), SECRET))
    assert at.title[0].value == "Attention" and not at.exception and not at.error  # its first page
    assert at.selectbox(key="model_choice").options == ["pair-llama"]
    assert at.text_area(key="prompt").value == "The dog ran."
    assert at.query_params["workshop"]  # kept in the address, so a reload stays in the workshop
    at.switch_page("pages/model.py").run()
    assert at.title[0].value == r"Model: pair\-llama"  # escaped Markdown: shown as typed


def test_an_expired_or_changed_link_says_so(configured):
    configured()
    expired = make_token(Workshop("pair-llama", "x", ("model",), datetime(2026, 1, 1, tzinfo=UTC)), SECRET)
    assert "expired on 2026-01-01 at 00:00 UTC" in app_with(workshop=expired).error[0].value
    assert "not valid" in app_with(workshop=expired[:-3]).error[0].value


def test_links_required_the_teacher_makes_one_on_the_workshop_links_page(configured):
    configured(links="required = true")
    at = app_with()
    assert at.title[0].value == "Workshop links" and "Open the one your teacher gave you" in at.info[0].value
    at.text_input[-1].set_value("wrong key of some length")  # a form: values go with its button
    at.button[-1].click().run()
    assert "not this server's teacher key" in at.error[0].value
    at.text_input[-1].set_value(SECRET)
    at.button[-1].click().run()
    at.multiselect[0].set_value(list(at.multiselect[0].options[1:2]))
    at.button[-1].click().run()
    made = re.search(r"workshop=(\S+)", at.code[0].value).group(1)
    opened = open_token(made, SECRET)
    assert opened.model == "stories260K" and opened.pages == ("attention",) and opened.expires is not None
