import json
import subprocess
import sys

import pytest

from distillery import cli, compare_runs, summarize
from distillery.errors import DistilleryError

from ..conftest import write_jsonl


def graded(correct, answer):
    return {"symbolic_correct": correct, "predicted_answer": answer, "num_generated_tokens": 20}


def make_run(root, bench, seeds):
    for seed, rows in enumerate(seeds):
        write_jsonl(root / "eval-results" / bench / f"output-rs{seed}.jsonl", rows)


def test_directory_in_nemo_skills_layout(tmp_path):
    make_run(
        tmp_path,
        "aime24",
        [[graded(True, "1"), graded(False, "2")], [graded(True, "1"), graded(True, "3")]],
    )
    make_run(tmp_path, "gsm8k", [[graded(False, None)]])
    # chunk leftovers are not seeds
    write_jsonl(
        tmp_path / "eval-results" / "aime24" / "output-rs0_chunk_0.jsonl", [graded(True, "9")]
    )
    summarize.main(summarize.Config(results_dir=str(tmp_path)))
    metrics = json.loads((tmp_path / "eval-results" / "metrics.json").read_text())
    assert set(metrics) == {"aime24", "gsm8k", "_provenance"}
    assert metrics["aime24"]["pass@1[avg-of-2]"]["symbolic_correct"] == 75.0
    assert metrics["gsm8k"]["pass@1"]["no_answer"] == 100.0
    table = (tmp_path / "eval-results" / "metrics.md").read_text()
    assert "| pass@1[avg-of-2] | 2 | 20 | 75.00% ± 35.36% | 0.00% |" in table
    assert "### gsm8k" in table
    csv = (tmp_path / "eval-results" / "metrics.csv").read_text().splitlines()
    assert csv[0].startswith("benchmark,evaluation_mode,num_entries")


def test_greedy_and_sampled_together_is_an_error(tmp_path):
    make_run(tmp_path, "b", [[graded(True, "1")]])
    write_jsonl(tmp_path / "eval-results" / "b" / "output.jsonl", [graded(True, "1")])
    with pytest.raises(DistilleryError, match="both output.jsonl and output-rs"):
        summarize.main(summarize.Config(results_dir=str(tmp_path)))


def test_seed_files_of_different_length(tmp_path):
    make_run(tmp_path, "b", [[graded(True, "1")], [graded(True, "1"), graded(True, "2")]])
    with pytest.raises(DistilleryError, match="different row counts.*output-rs0.jsonl: 1"):
        summarize.main(summarize.Config(results_dir=str(tmp_path)))


def test_bad_json_line_and_ungraded_file(tmp_path):
    path = tmp_path / "output-rs0.jsonl"
    path.write_text('{"predicted_answer": "1", "symbolic_correct": true}\n{oops\n')
    with pytest.raises(DistilleryError, match=r"output-rs0\.jsonl:2: line is not valid JSON"):
        summarize.read_seed_files([str(path)])
    path.write_text('{"generation": "1"}\n')
    with pytest.raises(DistilleryError, match="grade the file first"):
        summarize.read_seed_files([str(path)])


def test_explicit_files_and_comparison(tmp_path):
    for run, flags in (("baseline", [False, False]), ("trained", [True, False])):
        files = []
        for seed, flag in enumerate(flags):
            files.append(str(write_jsonl(tmp_path / run / f"s{seed}.jsonl", [graded(flag, "1")])))
        summarize.main(
            summarize.Config(
                benchmark="demo",
                files=tuple(files),
                save_metrics_path=str(tmp_path / run / "metrics.json"),
            )
        )
    compare_runs.main(
        compare_runs.Config(
            inputs=(
                f"baseline={tmp_path / 'baseline/metrics.json'}",
                f"trained={tmp_path / 'trained/metrics.json'}",
            ),
            output=str(tmp_path / "comparison.md"),
        )
    )
    table = (tmp_path / "comparison.md").read_text()
    # pass@1 with its spread across seeds (trained: 100% and 0% on the two seeds)
    assert (
        "| demo | pass@1[avg-of-2] | symbolic_correct | 0.00% ± 0.00 | 50.00% ± 70.71 | +50.00 |"
        in table
    )
    assert "| demo | pass@2 | symbolic_correct | 0.00% | 100.00% | +100.00 |" in table
    assert "± is the standard deviation of pass@1 across seeds" in table
    rows = (tmp_path / "comparison.csv").read_text().splitlines()
    assert rows[0] == (
        "benchmark,evaluation_mode,metric,baseline,trained,delta_trained,std_baseline,std_trained"
    )
    assert any(r.startswith("demo,pass@2,symbolic_correct,0.0,100.0,100.0") for r in rows)


def test_config_needs_one_input_kind():
    with pytest.raises(DistilleryError):
        summarize.Config()
    with pytest.raises(DistilleryError):
        summarize.Config(files=("a",), benchmark="b")


def with_id(row: dict, problem_id: str) -> dict:
    return {"id": problem_id, **row}


def test_seed_files_are_joined_by_id_not_by_line(tmp_path):
    # seed 1 lists the problems in reverse order: joined by line, the wrong answers of one
    # problem would be paired with the right answers of another
    seed0 = [with_id(graded(True, "1"), "a"), with_id(graded(False, "5"), "b"),
             with_id(graded(False, "7"), "c")]  # fmt: skip
    seed1 = [with_id(graded(False, "9"), "c"), with_id(graded(False, "6"), "b"),
             with_id(graded(True, "1"), "a")]  # fmt: skip
    make_run(tmp_path, "b", [seed0, seed1])
    summarize.main(summarize.Config(results_dir=str(tmp_path), plots=False))
    metrics = json.loads((tmp_path / "eval-results" / "metrics.json").read_text())["b"]
    assert metrics["pass@2"]["symbolic_correct"] == pytest.approx(100 / 3)
    assert metrics["majority@2"]["symbolic_correct"] == pytest.approx(100 / 3)
    problems = summarize.read_seed_files(
        [str(tmp_path / "eval-results" / "b" / f"output-rs{s}.jsonl") for s in (0, 1)]
    )
    assert [[p["id"] for p in predictions] for predictions in problems] == [
        ["a", "a"], ["b", "b"], ["c", "c"]
    ]  # fmt: skip


def test_seed_file_with_other_ids_names_the_file_and_the_id(tmp_path):
    seed0 = [with_id(graded(True, "1"), "a"), with_id(graded(True, "2"), "b")]
    seed1 = [with_id(graded(True, "1"), "a"), with_id(graded(True, "2"), "x")]
    make_run(tmp_path, "b", [seed0, seed1])
    with pytest.raises(DistilleryError, match=r"output-rs1\.jsonl: .*first differing id: 'b'"):
        summarize.main(summarize.Config(results_dir=str(tmp_path), plots=False))


def test_repeated_id_in_a_seed_file_names_its_line(tmp_path):
    seed0 = [with_id(graded(True, "1"), "a"), with_id(graded(True, "2"), "a")]
    make_run(tmp_path, "b", [seed0])
    with pytest.raises(DistilleryError, match=r"output-rs0\.jsonl:2: id 'a' repeats line 1"):
        summarize.main(summarize.Config(results_dir=str(tmp_path), plots=False))


def test_timed_out_grading_is_counted_in_metrics_json_and_the_table(tmp_path):
    rows = [graded(False, "9^{9999}"), graded(True, "1")]
    rows[0]["grading_timed_out"] = True
    make_run(tmp_path, "b", [rows])
    summarize.main(summarize.Config(results_dir=str(tmp_path), plots=False))
    out = tmp_path / "eval-results"
    assert json.loads((out / "metrics.json").read_text())["_provenance"]["grading_timed_out"] == {
        "b": 1
    }
    assert "1 sample(s) of b could not be graded" in (out / "metrics.md").read_text()


def test_directory_as_positional_argument_as_the_readme_shows_it(tmp_path):
    make_run(tmp_path, "demo", [[graded(True, "1")]])
    done = subprocess.run(
        [sys.executable, "-m", "distillery.summarize", str(tmp_path), "--no-plots"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "eval-results" / "metrics.json").is_file()
    config = cli.parse_config(summarize.Config, [str(tmp_path)])
    assert config.results_dir == str(tmp_path)
    with pytest.raises(SystemExit):
        cli.parse_config(summarize.Config, [str(tmp_path), "--results-dir", "elsewhere"])


def summarize_seeds(tmp_path, seeds, test_rows, max_samples=-1):
    files = [
        str(write_jsonl(tmp_path / f"output-rs{i}.jsonl", rows)) for i, rows in enumerate(seeds)
    ]
    test = write_jsonl(tmp_path / "test.jsonl", [{"id": i} for i in range(test_rows)])
    summarize.main(
        summarize.Config(
            benchmark="demo",
            files=tuple(files),
            save_metrics_path=str(tmp_path / "out" / "metrics.json"),
            test_file=str(test),
            max_samples=max_samples,
            plots=False,
        )
    )


def test_every_seed_file_must_have_the_benchmarks_rows(tmp_path):
    rows = [with_id(graded(True, "1"), "a"), with_id(graded(False, "2"), "b")]
    summarize_seeds(tmp_path, [rows, rows], test_rows=2)
    assert (tmp_path / "out" / "metrics.json").is_file()
    summarize_seeds(tmp_path / "cut", [rows, rows], test_rows=5, max_samples=2)
    with pytest.raises(
        DistilleryError, match=r"output-rs0\.jsonl: 2 rows, but the benchmark has 3"
    ):
        summarize_seeds(tmp_path / "short", [rows, rows], test_rows=3)
    assert not (tmp_path / "short" / "out").exists()  # nothing written


@pytest.mark.parametrize(
    "modes,message",
    [
        ({"pass@1": {"symbolic_correct": 101.0}}, "demo pass@1 symbolic_correct = 101.0, outside"),
        ({"pass@1": {"no_answer": -1.0}}, "no_answer = -1.0, outside 0-100"),
        (
            {"pass@2": {"symbolic_correct": 40.0}, "pass@1[avg-of-2]": {"symbolic_correct": 50.0}},
            r"pass@1\[avg-of-2\] = 50.0000 exceeds pass@2 = 40.0000",
        ),
        (
            {"pass@2": {"judge_correct": 40.0}, "majority@2": {"judge_correct": 45.0}},
            r"judge_correct: majority@2 = 45.0000 exceeds pass@2",
        ),
    ],
)
def test_invariants_name_what_broke(modes, message):
    with pytest.raises(DistilleryError, match=message):
        summarize.check_invariants({"demo": modes}, {"demo": ["rs0.jsonl"]}, None)


def test_first_seeds_may_beat_the_estimator_below_all_seeds(tmp_path):
    # two correct first seeds of four: majority@2 = pass@1[avg-of-2] = 100, pass@2 = 5/6
    answers = [(True, "1"), (True, "1"), (False, "2"), (False, "3")]
    seeds = [[with_id(graded(ok, answer), "a")] for ok, answer in answers]
    summarize_seeds(tmp_path, seeds, test_rows=1)
    modes = json.loads((tmp_path / "out" / "metrics.json").read_text())["demo"]
    assert modes["majority@2"]["symbolic_correct"] == 100.0
    assert modes["pass@2"]["symbolic_correct"] == pytest.approx(100 * 5 / 6)
    assert modes["majority@4"]["symbolic_correct"] <= modes["pass@4"]["symbolic_correct"]


def test_invariants_hold_for_real_metrics(tmp_path):
    rows = [
        [graded(i % 3 == 0, str(i)), graded(i % 2 == 0, "1"), graded(False, None)] for i in range(9)
    ]
    seeds = [[with_id(r[s], str(i)) for i, r in enumerate(rows)] for s in range(3)]
    summarize_seeds(tmp_path, seeds, test_rows=9)
