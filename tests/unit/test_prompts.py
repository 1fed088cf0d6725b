import pytest

from distillery.errors import DistilleryError
from distillery.prompts import load_prompt, template_fields

from ..conftest import REPO


def write(tmp_path, text):
    path = tmp_path / "prompt.yaml"
    path.write_text(text)
    return path


def test_repo_prompts_load():
    for path in sorted((REPO / "prompts").glob("*.yaml")):
        prompt = load_prompt(path)
        assert prompt.fields(), path


def test_messages_with_system_and_few_shot(tmp_path):
    prompt = load_prompt(
        write(
            tmp_path,
            'system: "Be brief."\n'
            'user: "Q: {problem} in \\\\boxed{{}}"\n'
            "few_shot:\n  - input: {problem: '1+1'}\n    output: '2'\n",
        )
    )
    assert prompt.fields() == {"problem"}
    assert prompt.messages({"problem": "2+2"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: 1+1 in \\boxed{}"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "Q: 2+2 in \\boxed{}"},
    ]


def test_missing_field_names_prompt_file_and_line(tmp_path):
    prompt = load_prompt(write(tmp_path, 'user: "{problem} ({hint})"'))
    rows = [{"problem": "a", "hint": "b"}, {"problem": "c"}]
    with pytest.raises(DistilleryError) as err:
        prompt.check_rows(rows, "data.jsonl", [1, 3])
    message = str(err.value)
    assert "prompt.yaml uses {hint}" in message
    assert "data.jsonl:3" in message
    assert "fields present: problem" in message


@pytest.mark.parametrize(
    "text,match",
    [
        ("system: hi\n", "needs a 'user' template"),
        ("user: x\nextra: 1\n", r"unknown key\(s\) \['extra'\]"),
        ('user: "\\\\boxed{}"\n', "not a plain field name"),
        ("user: '{a'\n", "not a valid format string"),
        ("user: '{a}'\nfew_shot:\n  - input: {b: 1}\n    output: x\n", "lacks field"),
        ("user: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_prompt_configs(tmp_path, text, match):
    with pytest.raises(DistilleryError, match=match):
        load_prompt(write(tmp_path, text))


def test_missing_prompt_file(tmp_path):
    with pytest.raises(DistilleryError, match="prompt config does not exist"):
        load_prompt(tmp_path / "nope.yaml")


def test_template_fields_ignore_doubled_braces():
    assert template_fields("{a} \\boxed{{}} {b}") == {"a", "b"}
