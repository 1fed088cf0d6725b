"""The newer benchmark definitions against local files shaped like their real sources
(tests/fixtures/benchmarks: the first rows of the real files where they are public on GitHub,
rows of the hub's shape otherwise), URL downloads from a real HTTP server, and groups."""

import functools
import http.server
import threading
from pathlib import Path

import pytest

from distillery import prepare_benchmark
from distillery.benchmarks import expand, groups, known_benchmarks, load_definition
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.settings.data import Benchmark

from ..conftest import write_jsonl

FIXTURES = Path(__file__).parents[1] / "fixtures" / "benchmarks"

# first output row of each fixture: (id, expected_answer, start of the problem, subset)
FIRST_ROWS = {
    "hmmt_feb25": ("1", "103", "Compute the sum of the positive divisors", None),
    "brumo25": ("1", "23", "Define the operation", None),
    "amc23": ("0", "27", "Cities $A$ and $B$ are $45$ miles apart", None),
    "olympiadbench": ("1606", "2", "Xenia and Sergey play", "Combinatorics"),
    "minerva_math": ("0", "1.6", "Each of the two Magellan telescopes", None),
    "omni-math": ("omni-math-0", "n+1", "Let $n \\ge 2$ be an integer", None),
    "math": ("test/prealgebra/126.json", "420", "What is $10.0000198", "Prealgebra"),
    "college_math": (
        "college_math-0",
        "$10-4 n$",
        "Simplify: $-10-4(n-5)$",
        "college_math.algebra",
    ),
    "gaokao2023en": ("gaokao2023en-0", "$\\{x|-2\\leq x < 1\\}$", "Given sets $M=", None),
    "mmlu-pro": ("mmlu-pro-70", "I", "Typical advertising regulatory bodies", "business"),
    "mmlu-redux": ("mmlu-redux-0", "B", "Find the degree for the given field", None),
    "supergpqa": ("4f1c0b5e9d2a4c8f", "C", "In a lossless transmission line", "Engineering"),
}


def prepare(tmp_path, benchmark, path=None, **kw):
    out = tmp_path / f"{benchmark}.jsonl"
    block = {"source": benchmark, **({"path": str(path)} if path else {}), **kw}
    prepare_benchmark.main(prepare_benchmark.Config(output=str(out), benchmark=Benchmark(**block)))
    return read_jsonl(out)


def test_every_downloadable_definition_has_a_fixture_or_a_test():
    covered_elsewhere = {"aime24", "aime25", "math-500", "gsm8k", "gpqa-diamond", "gpqa-main"}
    for name in known_benchmarks():
        if load_definition(name).source is None or name in covered_elsewhere | {"mmlu"}:
            continue
        assert (FIXTURES / f"{name}.jsonl").is_file(), name
        assert name in FIRST_ROWS, name


@pytest.mark.parametrize("name", sorted(FIRST_ROWS))
def test_fixture_converts(tmp_path, name):
    rows = prepare(tmp_path, name, FIXTURES / f"{name}.jsonl")
    row_id, answer, problem, subset = FIRST_ROWS[name]
    first = rows[0]
    assert (first["id"], first["expected_answer"]) == (row_id, answer)
    assert first["problem"].startswith(problem)
    assert first.get("subset_for_metrics") == subset
    assert set(first) <= load_definition(name).row_fields() | {"options", "reference_solution"}
    assert load_definition(name).row_fields() >= {"id", "problem", "expected_answer"}
    assert len({r["id"] for r in rows}) == len(rows)


def test_olympiadbench_strips_the_dollars_of_its_final_answer(tmp_path):
    rows = prepare(tmp_path, "olympiadbench", FIXTURES / "olympiadbench.jsonl")
    assert [r["expected_answer"] for r in rows] == ["2", "\\frac{1}{2 n+2}", "2^{1009}"]


def test_minerva_answer_is_the_solutions_last_box(tmp_path):
    rows = prepare(tmp_path, "minerva_math", FIXTURES / "minerva_math.jsonl")
    assert [r["expected_answer"] for r in rows] == ["1.6", "4.5e33", "41.8"]
    assert "\\boxed{1.6}" in rows[0]["reference_solution"]


def test_multiple_choice_with_ten_options(tmp_path):
    rows = prepare(tmp_path, "mmlu-pro", FIXTURES / "mmlu-pro.jsonl")
    assert rows[1]["problem"].endswith("J) O(sqrt n)")
    assert rows[1]["subset_for_metrics"] == "computer_science"
    assert rows[1]["J"] == "O(sqrt n)" and len(rows[2]["options"]) == 4


# NeMo-Skills' letters for these rows (its gpqa and supergpqa prepare.py: Python's random,
# seeded 42 once per file, one shuffle per row), from running its code on them
SUPERGPQA_LETTERS = "IEAEGCCDAJEHAGCBDDFAGAEBHHBGCEBICBBCHEBA"
GPQA_LETTERS = "CABDCBDBDBCAABCABBADCBBBDBABADCBDBDCDDCA"


def supergpqa_rows(count):
    return [
        {
            "uuid": f"u{i}",
            "question": f"Question {i}?",
            "options": [f"option {i}.{j}" for j in range(10 - i % 3)],
            "answer": f"option {i}.{i % 4}",
            "answer_letter": "ABCD"[i % 4],
            "discipline": "Science",
        }
        for i in range(count)
    ]


def test_supergpqa_options_are_shuffled_as_nemo_skills_shuffles_them(tmp_path):
    path = write_jsonl(tmp_path / "supergpqa.jsonl", supergpqa_rows(40))
    rows = prepare(tmp_path, "supergpqa", path)
    assert "".join(r["expected_answer"] for r in rows) == SUPERGPQA_LETTERS
    for source, row in zip(supergpqa_rows(40), rows, strict=True):
        assert row[row["expected_answer"]] == source["answer"]
        assert sorted(row["options"]) == sorted(source["options"])
    # the first rows of a file shuffle the same whatever follows them
    assert [r["expected_answer"] for r in prepare(tmp_path, "supergpqa", path, max_samples=3)] == (
        list(SUPERGPQA_LETTERS[:3])
    )


def test_gpqa_options_are_shuffled_as_nemo_skills_shuffles_them(tmp_path):
    rows = [
        {
            "Question": f"Q{i}",
            "Correct Answer": f"right {i}",
            "Incorrect Answer 1": f"wrong {i}a",
            "Incorrect Answer 2": f"wrong {i}b",
            "Incorrect Answer 3": f"wrong {i}c",
            "Explanation": "e",
            "Subdomain": "s",
        }
        for i in range(40)
    ]
    out = prepare(tmp_path, "gpqa-diamond", write_jsonl(tmp_path / "gpqa.jsonl", rows))
    assert "".join(r["expected_answer"] for r in out) == GPQA_LETTERS
    assert out[0]["problem"] == "Q0\n\nA) wrong 0c\nB) wrong 0b\nC) right 0\nD) wrong 0a"


def test_keep_option_order_keeps_the_dataset_order(tmp_path):
    rows = prepare(tmp_path, "supergpqa", FIXTURES / "supergpqa.jsonl", keep_option_order=True)
    assert rows[1]["B"] == "Kinetic energy"  # double spaces collapsed, order kept
    letters = [
        r["expected_answer"] for r in prepare(tmp_path, "supergpqa", FIXTURES / "supergpqa.jsonl")
    ]
    assert letters == ["C", "A", "C"]


def test_supergpqa_checks_the_letter(tmp_path):
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {
                "uuid": "x",
                "question": "q",
                "options": ["1", "2"],
                "answer": "2",
                "answer_letter": "A",
            }
        ],
    )
    with pytest.raises(DistilleryError, match=r"bad\.jsonl:1: supergpqa cannot read the row"):
        prepare(tmp_path, "supergpqa", bad)


def test_mmlu_redux_drops_broken_questions_and_takes_corrected_answers(tmp_path):
    rows = prepare(tmp_path, "mmlu-redux", FIXTURES / "mmlu-redux.jsonl")
    # ok: its own answer; wrong_groundtruth: the annotated letter; bad_question_clarity: dropped
    assert [(r["id"], r["expected_answer"]) for r in rows] == [
        ("mmlu-redux-0", "B"),
        ("mmlu-redux-1", "C"),
        ("mmlu-redux-3", "B"),
    ]


def test_mmlu_redux_subjects_come_from_the_hub_configs(tmp_path, monkeypatch):
    import datasets

    asked = []
    rows = read_jsonl(FIXTURES / "mmlu-redux.jsonl")

    def load_dataset(repo, name=None, **kwargs):
        asked.append(name)
        return iter(rows[:1]) if name in ("abstract_algebra", "virology") else iter(())

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    out = prepare(tmp_path, "mmlu-redux")
    assert len(asked) == 57
    # reported under the subject's subcategory, as NeMo-Skills does
    assert [r["subset_for_metrics"] for r in out] == ["math", "health"]
    assert [r["subtopic"] for r in out] == ["abstract_algebra", "virology"]
    assert "_config" not in out[0]


def test_missing_column_names_file_line_and_column(tmp_path):
    path = write_jsonl(
        tmp_path / "olympiad.jsonl",
        [{"id": 1, "question": "q", "final_answer": ["1"]}, {"id": 2, "question": "q"}],
    )
    with pytest.raises(DistilleryError, match=r"olympiad\.jsonl:2: missing column 'final_answer'"):
        prepare(tmp_path, "olympiadbench", path)
    path = write_jsonl(tmp_path / "college.jsonl", [{"problem": "p", "answer": "1"}])
    with pytest.raises(
        DistilleryError, match=r"college\.jsonl:1: missing column\(s\) \['question'\]"
    ):
        prepare(tmp_path, "college_math", path)


@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on localhost serving tests/fixtures/benchmarks."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def use_url(monkeypatch, name: str, url: str):
    from dataclasses import replace

    definition = load_definition(name)
    moved = replace(definition, source=replace(definition.source, url=url))
    monkeypatch.setattr(prepare_benchmark, "load_definition", lambda _: moved)


def test_download_from_a_url(tmp_path, monkeypatch, file_server):
    use_url(monkeypatch, "amc23", f"{file_server}/amc23.jsonl")
    rows = prepare(tmp_path, "amc23")
    assert [r["expected_answer"] for r in rows] == ["27", "36", "45"]


def test_download_of_a_nemo_skills_test_txt(tmp_path, monkeypatch, file_server):
    # AIME 24/25 are NeMo-Skills' own files: JSONL named test.txt, already id/problem/answer
    use_url(monkeypatch, "aime24", f"{file_server}/aime24/test.txt")
    rows = prepare(tmp_path, "aime24")
    assert [(r["id"], r["expected_answer"]) for r in rows] == [
        ("aime24-0", "73"),
        ("aime24-1", "236"),
    ]
    assert load_definition("aime24").source.url.endswith(
        "/0b012df8a09cd4730d31b16e90a0d8f13d145fb8/nemo_skills/dataset/aime24/test.txt"
    )


def test_download_blocked_says_to_use_a_local_file(tmp_path, monkeypatch, file_server):
    use_url(monkeypatch, "amc23", f"{file_server}/missing.jsonl")
    with pytest.raises(DistilleryError, match=r"cannot download .*missing\.jsonl: HTTP 404"):
        prepare(tmp_path, "amc23")
    use_url(monkeypatch, "gaokao2023en", "http://127.0.0.1:9/test.jsonl")  # nothing listens
    with pytest.raises(DistilleryError, match="Without network access, download the file"):
        prepare(tmp_path, "gaokao2023en")
    assert not (tmp_path / "gaokao2023en.jsonl").exists()


def test_url_sources_are_pinned_to_a_commit():
    for name in known_benchmarks():
        source = load_definition(name).source
        if source is not None and source.url is not None:
            assert "/refs/heads/" not in source.url and "/main/" not in source.url, name


def test_judge_benchmark_is_marked():
    assert load_definition("omni-math").judge
    assert not load_definition("math").judge


def test_groups_name_known_benchmarks_only():
    for name, members in groups().items():
        assert name not in known_benchmarks()
        for member, seeds in members.items():
            assert member in known_benchmarks(), (name, member)
            assert seeds is None or seeds >= 1


def test_group_expansion():
    assert list(expand({"mcq-suite": None})) == [
        "gpqa-diamond",
        "mmlu-pro",
        "mmlu-redux",
        "supergpqa",
    ]
    assert expand({"demo": 2, "mcq-suite": 3})["mmlu-pro"] == 3
    # named alone as well: its own entry wins
    assert expand({"mcq-suite": None, "gpqa-diamond": 1})["gpqa-diamond"] == 1


def test_gaokao_keeps_its_empty_answers_with_a_warning_naming_them(tmp_path, caplog):
    rows = read_jsonl(FIXTURES / "gaokao2023en.jsonl")[:3]
    rows[1] = {**rows[1], "answer": ""}  # as lines 168 and 193 of the pinned file
    path = write_jsonl(tmp_path / "test.jsonl", rows)
    out = prepare(tmp_path, "gaokao2023en", path)
    assert [r["expected_answer"] == "" for r in out] == [False, True, False]
    assert f"{path}:2" in caplog.text and "kept as NeMo-Skills keeps them" in caplog.text
    assert len(prepare(tmp_path, "gaokao2023en", path, drop_empty_answers=True)) == 2
    # a definition that does not allow them still refuses them
    with pytest.raises(DistilleryError, match=r"test\.jsonl:2: 'expected_answer' is ''"):
        prepare(tmp_path, "college_math", path)


def test_keep_option_order_is_refused_where_there_is_no_order_to_keep(tmp_path):
    with pytest.raises(DistilleryError, match="gpqa-diamond's source has no option order"):
        prepare(tmp_path, "gpqa-diamond", FIXTURES / "supergpqa.jsonl", keep_option_order=True)
