"""NeMo-Skills' own prompt configs on request (``nemo-skills:<name>``): fetched from a real
local HTTP server standing in for the pinned repository, with the network blocked, and the
errors that say what to do."""

import functools
import http.server
import threading
from pathlib import Path

import pytest

from distillery import nemo_skills_prompts as nsp
from distillery.errors import DistilleryError
from distillery.prompts import load_prompt

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nemo-skills"


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server holding the fixture at the pinned commit's path, as the
    repository's raw files are laid out; its URL is the mirror setting."""
    root = tmp_path / "mirror"
    target = root / nsp.COMMIT / "nemo_skills" / "prompt" / "config" / "generic"
    target.mkdir(parents=True)
    (target / "math.yaml").write_text((FIXTURES / "generic" / "math.yaml").read_text())
    (target / "not-a-prompt.yaml").write_text("<html>rate limited</html>\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(nsp.URL_ENV, f"http://127.0.0.1:{server.server_port}")
    yield
    server.shutdown()


def fetch(tmp_path, name):
    out = tmp_path / "out" / f"{name}.yaml"
    nsp.main(nsp.Config(name=name, output=str(out)))
    return out


def test_fetches_the_pinned_file_and_fills_an_empty_examples_field(tmp_path, mirror):
    prompt = load_prompt(fetch(tmp_path, "generic/math"))
    assert prompt.fields() == {"problem"}  # {examples} is the prompt's own, empty
    message = prompt.messages({"problem": "What is 2+2?"})[-1]["content"]
    assert message.endswith("in \\boxed{}.\n\nWhat is 2+2?")


def test_an_unknown_name_is_an_http_error_naming_it(tmp_path, mirror):
    with pytest.raises(DistilleryError, match=r"'judge/nope'.*HTTP 404"):
        fetch(tmp_path, "judge/nope")
    assert not (tmp_path / "out" / "judge" / "nope.yaml").exists()


def test_a_file_that_is_not_a_prompt_config_leaves_nothing(tmp_path, mirror):
    with pytest.raises(DistilleryError, match="needs a 'user' template"):
        fetch(tmp_path, "generic/not-a-prompt")
    assert not (tmp_path / "out" / "generic" / "not-a-prompt.yaml").exists()


def test_without_network_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(nsp.URL_ENV, "http://127.0.0.1:9")  # nothing listens
    with pytest.raises(DistilleryError, match="Without network access, download that file"):
        fetch(tmp_path, "generic/math")


@pytest.mark.parametrize(
    "name", ["nemo-skills:../secrets", "nemo-skills:/etc/passwd", "nemo-skills:"]
)
def test_names_that_are_not_config_paths_are_refused(name):
    with pytest.raises(DistilleryError, match="not a NeMo-Skills prompt name"):
        nsp.prompt_name(name)


def test_the_url_is_pinned_to_a_commit():
    assert len(nsp.COMMIT) == 40 and nsp.COMMIT in nsp.prompt_url("judge/math")
    assert nsp.cache_path("nemo-skills:judge/math.yaml").endswith("@0b012df/judge/math.yaml")
