"""The LLM processing steps end to end around their generation job, which these tests play
by writing what ``distillery.generate`` writes: the request row (without its messages) plus
the model's ``generation``."""

import json

import pytest

from distillery import process
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.processing.steps.classify import CLASS_LABELS
from distillery.prompts import MESSAGES_FIELD

from ..conftest import REPO, write_jsonl

SERVER = {"type": "hf", "model": "m"}
NGRAMS = {"retrieval": "ngram", "ngram": 3}


def block(**extra):
    return json.dumps({"server": SERVER, **extra})


def prompt(name):
    return str(REPO / "prompts" / name)


def run(tmp_path, step, inputs, answer, extra=None, outputs=None, **kw):
    """select, a stand-in model answering ``answer(request)``, apply; the outputs."""
    extra = extra or {}
    requests, prefilled = tmp_path / "requests.jsonl", tmp_path / "prefilled.jsonl"
    config = block(**extra)
    select_outputs = tuple(str(p) for p in (kw.pop("labelled", None) or ()))
    process.main(
        process.Config(action="select", step=step, inputs=tuple(map(str, inputs)),
                       config_json=config, requests=str(requests), prefilled=str(prefilled),
                       outputs=select_outputs, **kw)
    )  # fmt: skip
    sent = read_jsonl(requests, allow_empty=True)
    for row in sent:
        assert row[MESSAGES_FIELD][-1]["role"] == "user"
    generations = [
        {**{k: v for k, v in r.items() if k != MESSAGES_FIELD}, "generation": answer(r)}
        for r in sent
    ]
    write_jsonl(tmp_path / "generations.jsonl", generations)
    apply_inputs = select_outputs or tuple(map(str, inputs))
    outs = outputs or [tmp_path / "out.jsonl"]
    process.main(
        process.Config(action="apply", step=step, inputs=apply_inputs, config_json=config,
                       generations=str(tmp_path / "generations.jsonl"), prefilled=str(prefilled),
                       outputs=tuple(map(str, outs)), dropped=str(tmp_path / "dropped.jsonl"),
                       report=str(tmp_path / "report.json"),
                       verdicts=str(tmp_path / "verdicts.jsonl"))
    )  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    return sent, [read_jsonl(o, allow_empty=True) for o in outs], report


def problems():
    rows = [
        {"problem": "Prove that n^2 + n is even for every integer n."},
        {"problem": "Which is larger? (A) 2^10 (B) 10^3"},
        {"problem": "What is 6 times 7?", "forum_discussions": "Post 1:\nIt is 42."},
        {"problem": "Find x if the figure shows it.", "forum_discussions": "Post 1:\nNo idea."},
    ]
    return [{"forum_post": f"post {i}: {r['problem']}", **r} for i, r in enumerate(rows)]


def test_classify_routes_by_class_and_counts_chatter_it_cannot_read(tmp_path):
    path = write_jsonl(tmp_path / "problems.jsonl", problems())
    verdicts = {
        ("0", "proof"): "proof\n\nIt asks to prove a statement.",
        ("1", "multiple_choice"): "mcq",
        ("3", "invalid"): "invalid - the figure is missing",
        ("2", "binary"): "Hmm, hard to tell.",  # unreadable: no verdict, not a class
    }

    def answer(request):
        index, name = request["_ref"].split(":")
        return verdicts.get((index, name), f"not {CLASS_LABELS[name]}")

    extra = {"actions": {"proof": "convert", "multiple_choice": "drop", "binary": "drop",
                         "invalid": "drop"}}  # fmt: skip
    sent, (kept,), report = run(tmp_path, "classify", [path], answer, extra)
    assert len(sent) == 4 * 4  # every problem, every classifier
    assert [r["problem_class"] for r in kept] == ["proof", "regular"]
    assert kept[0]["convert_proof"] is True and "convert_proof" not in kept[1]
    dropped = read_jsonl(tmp_path / "dropped.jsonl")
    assert [r["problem_class"] for r in dropped] == ["multiple_choice", "invalid"]
    assert report["unparsed"] == 1 and report["kept"] == 2 and report["dropped"] == 2
    assert kept[1]["classify_binary_gen"] == "Hmm, hard to tell."


def test_classify_lenient_reads_chattier_answers(tmp_path):
    path = write_jsonl(tmp_path / "problems.jsonl", problems()[3:])
    extra = {
        "prompts": {"invalid": prompt("classify-invalid.yaml")},
        "actions": {"invalid": "drop"},
    }
    answer = lambda r: "**Invalid** - the figure is missing"  # noqa: E731
    _, (kept,), report = run(tmp_path, "classify", [path], answer, extra)
    assert len(kept) == 1 and report["unparsed"] == 1  # NeMo-Skills: not in the class
    _, (kept,), report = run(tmp_path, "classify", [path], answer, {**extra, "parse": "lenient"})
    assert kept == [] and report["invalid"] == 1


def test_classify_sends_only_the_classes_it_has_prompts_for(tmp_path):
    path = write_jsonl(tmp_path / "problems.jsonl", problems()[:1])
    extra = {
        "prompts": {"invalid": prompt("classify-invalid.yaml")},
        "actions": {"invalid": "drop"},
    }
    sent, (kept,), _ = run(tmp_path, "classify", [path], lambda r: "not invalid", extra)
    assert [r["_ref"] for r in sent] == ["0:invalid"] and kept[0]["problem_class"] == "regular"


def test_answer_extraction_asks_only_where_no_answer_is_known(tmp_path):
    rows = problems()
    rows[2]["expected_answer"] = "42"
    path = write_jsonl(tmp_path / "problems.jsonl", rows)
    replies = {"3": "The thread never settles it.\nAnswer not found"}
    sent, (kept,), report = run(
        tmp_path, "extract_answer", [path], lambda r: replies.get(r["_ref"], "Answer: 7")
    )
    assert [r["_ref"] for r in sent] == ["3"]  # 0 and 1 have no discussion, 2 has its answer
    assert kept[2]["expected_answer"] == "42" and kept[2]["expected_answer_source"] == "raw_data"
    assert kept[3].get("expected_answer") is None and report["not_found"] == 1
    path = write_jsonl(tmp_path / "p2.jsonl", problems()[2:3])
    _, (kept,), report = run(
        tmp_path, "extract_answer", [path], lambda r: "So: \\boxed{42}\nAnswer: $\\boxed{42}$"
    )
    assert kept[0]["expected_answer"] == "42" and kept[0]["expected_answer_source"] == "forum"
    assert report["found"] == 1


def test_proofs_become_answerable_problems_or_are_dropped(tmp_path):
    rows = [{**problems()[0], "convert_proof": True}, {**problems()[0], "convert_proof": True},
            problems()[2]]  # fmt: skip
    path = write_jsonl(tmp_path / "problems.jsonl", rows)
    replies = {
        "0": "Find the remainder of n^2 + n modulo 2.",
        "1": "",  # nothing came back (a refused request)
    }
    sent, (kept,), report = run(tmp_path, "convert_proofs", [path], lambda r: replies[r["_ref"]])
    assert len(sent) == 2
    assert kept[0]["problem"] == "Find the remainder of n^2 + n modulo 2."
    assert kept[0]["original_problem"].startswith("Prove") and kept[0]["expected_answer"] is None
    assert kept[1]["problem"] == "What is 6 times 7?"  # not a proof: untouched
    assert report["converted"] == 1 and report["unparsed"] == 1 and report["dropped"] == 1


def test_contamination_check_drops_what_the_model_or_an_identical_text_says(tmp_path):
    bench = write_jsonl(
        tmp_path / "test.jsonl",
        [{"id": "b0", "problem": "What is 6 times 7?"},
         {"id": "b1", "problem": "How many primes are there below twenty in total?"}],
    )  # fmt: skip
    rows = [
        {"problem": " WHAT is 6 times 7?\n"},  # identical but for case and the ends: no model call
        {"problem": "How many primes are there below 20 in total?"},  # a reworded copy
        {"problem": "How many squares are there below twenty in total?"},
        {"problem": "Unrelated words entirely."},
    ]
    path = write_jsonl(tmp_path / "problems.jsonl", rows)
    replies = {"1:0": "True", "2:0": "False"}
    sent, (kept,), report = run(
        tmp_path, "check_contamination", [path], lambda r: replies[r["_ref"]], NGRAMS,
        benchmarks=(f"demo={bench}",),
    )  # fmt: skip
    assert sorted(r["_ref"] for r in sent) == ["1:0", "2:0"]
    assert [r["problem"] for r in kept] == [rows[2]["problem"], rows[3]["problem"]]
    dropped = read_jsonl(tmp_path / "dropped.jsonl")
    assert [r["contaminated_by"] for r in dropped] == ["demo/b0", "demo/b1"]
    verdicts = read_jsonl(tmp_path / "verdicts.jsonl")
    assert [v["contaminated"] for v in verdicts] == [True, True, False]
    assert [v["benchmark_problem"] for v in verdicts] == [
        "What is 6 times 7?",
        "How many primes are there below twenty in total?",
        "How many primes are there below twenty in total?",
    ]
    assert report["contaminated"] == 2 and report["pairs"] == 3


def test_unreadable_contamination_verdict_is_not_contamination(tmp_path):
    bench = write_jsonl(
        tmp_path / "test.jsonl", [{"id": "b0", "problem": "What is 6 times 7 exactly?"}]
    )
    path = write_jsonl(tmp_path / "problems.jsonl", [{"problem": "What is 6 times 7 here?"}])
    _, (kept,), report = run(
        tmp_path, "check_contamination", [path], lambda r: "True.", NGRAMS,
        benchmarks=(f"demo={bench}",),
    )  # fmt: skip
    assert len(kept) == 1 and report["unparsed"] == 1  # NeMo-Skills wants exactly "True"
    _, (kept,), report = run(
        tmp_path, "check_contamination", [path], lambda r: "True.", {**NGRAMS, "parse": "lenient"},
        benchmarks=(f"demo={bench}",),
    )  # fmt: skip
    assert kept == [] and report["contaminated"] == 1


def test_contamination_retrieves_the_nearest_by_embedding_and_always_asks(tmp_path, tiny_model_dir):
    bench = write_jsonl(
        tmp_path / "test.jsonl",
        [{"id": f"b{i}", "problem": text} for i, text in enumerate(
            ["What is 6 times 7?", "Count the primes below 20.", "Solve x^2 = 9 for x > 0."]
        )],
    )  # fmt: skip
    rows = [
        {"problem": "what is 6 times 7?"},  # the same text: found, decided without the model
        {"problem": "How many prime numbers are smaller than twenty?"},  # no shared words
        {"problem": "Describe the weather."},
    ]
    path = write_jsonl(tmp_path / "problems.jsonl", rows)
    extra = {"embedding_model": str(tiny_model_dir), "top_k": 2}
    sent, (kept,), report = run(
        tmp_path, "check_contamination", [path], lambda r: "False", extra,
        benchmarks=(f"demo={bench}",),
    )  # fmt: skip
    verdicts = read_jsonl(tmp_path / "verdicts.jsonl")
    # every problem is checked against its top_k nearest, whatever words they share
    assert [v["problem"] for v in verdicts] == [r["problem"] for r in rows for _ in range(2)]
    first = [v for v in verdicts if v["problem"] == rows[0]["problem"]]
    assert first[0]["benchmark_id"] == "b0" and first[0]["contaminated"] is True
    assert len(sent) == 5 and all(
        "{problem1}" not in r[MESSAGES_FIELD][-1]["content"] for r in sent
    )
    assert [r["problem"] for r in kept] == [rows[1]["problem"], rows[2]["problem"]]
    assert report["pairs"] == 6 and report["contaminated"] == 1


def test_contamination_by_embedding_needs_an_encoder():
    with pytest.raises(DistilleryError, match="retrieval: embedding needs an encoder"):
        process.Config(action="select", step="check_contamination", inputs=("p",),
                       config_json=block(), requests="r", prefilled="f").block()  # fmt: skip


def solutions(answers, expected=None):
    return [{"problem": "2+2?", "generation": f"so \\boxed{{{a}}}" if a else "no idea",
             **({"expected_answer": expected} if expected else {})} for a in answers]  # fmt: skip


def test_solution_judge_labels_then_judges(tmp_path):
    # problem 0: known answer 4; problem 1: unlabelled, majority 5 of the seeds
    seed0 = solutions(["4"], "4") + [{"problem": "3+2?", "generation": "\\boxed{5}"}]
    seed1 = solutions(["2*2"], "4") + [{"problem": "3+2?", "generation": "\\boxed{5}"}]
    seed2 = solutions([None], "4") + [{"problem": "3+2?", "generation": "\\boxed{6}"}]
    inputs = [
        write_jsonl(tmp_path / f"rs{i}.jsonl", s) for i, s in enumerate((seed0, seed1, seed2))
    ]
    labelled = [tmp_path / f"labelled-rs{i}.jsonl" for i in range(3)]
    judged = [tmp_path / f"judged-rs{i}.jsonl" for i in range(3)]
    sent, outs, report = run(
        tmp_path, "judge_solutions", inputs, lambda r: "Reasoning: 2*2 is 4.\nJudgement: Yes",
        {}, judged, labelled=labelled,
    )  # fmt: skip
    # only 2*2 vs 4 and 6 vs 5 need the model: identical answers and no answer are decided
    assert sorted(r["_ref"] for r in sent) == ["1:0", "2:1"]
    assert outs[2][1]["expected_answer"] == "5" and outs[2][1]["fill_mode"] == "majority"
    assert outs[0][0]["judgement"].endswith("Judgement: Yes")  # identical: prefilled
    assert outs[2][0]["judgement"].endswith("Judgement: No")  # no answer: prefilled
    assert report["judged_correct"] == 5 and report["judged_wrong"] == 1


def test_malformed_judge_verdicts_are_counted_not_correct(tmp_path):
    inputs = [write_jsonl(tmp_path / "rs0.jsonl", solutions(["3", "5"], "4"))]
    _, (rows,), report = run(
        tmp_path, "judge_solutions", inputs, lambda r: "The answers look similar.", {},
        [tmp_path / "judged.jsonl"], labelled=[tmp_path / "labelled.jsonl"],
    )  # fmt: skip
    assert report["unparsed"] == 2 and "judged_correct" not in report
    assert all(r["judgement"] == "The answers look similar." for r in rows)


def test_eval_judge_reports_its_agreement_with_symbolic_grading(tmp_path):
    graded = [
        {"problem": "p", "expected_answer": "4", "predicted_answer": "4", "symbolic_correct": True},
        {
            "problem": "p",
            "expected_answer": "4",
            "predicted_answer": "2+2",
            "symbolic_correct": True,
        },
        {
            "problem": "p",
            "expected_answer": "4",
            "predicted_answer": "5",
            "symbolic_correct": False,
        },
        {
            "problem": "p",
            "expected_answer": "4",
            "predicted_answer": None,
            "symbolic_correct": False,
        },
    ]
    path = write_jsonl(tmp_path / "output-rs0.jsonl", graded)
    replies = {"0:1": "Judgement: Yes", "0:2": "Judgement: Yes"}  # the judge errs on 5
    _, (rows,), report = run(
        tmp_path, "judge_eval", [path], lambda r: replies[r["_ref"]], {}, [tmp_path / "j.jsonl"]
    )  # fmt: skip
    assert [r["judgement"].endswith("Yes") for r in rows] == [True, True, True, False]
    assert report["judge_yes_symbolic_yes"] == 2 and report["judge_yes_symbolic_no"] == 1
    assert report["judge_no_symbolic_no"] == 1
    table = (tmp_path / "report.md").read_text()
    assert "| judge: correct | 2 | 1 |" in table and "| judge: wrong | 0 | 1 |" in table
    assert "Agreement where the judge gave a verdict: 75.0% (3 of 4)" in table


def test_eval_judge_needs_graded_files(tmp_path):
    path = write_jsonl(tmp_path / "output-rs0.jsonl", [{"problem": "p", "generation": "g"}])
    with pytest.raises(DistilleryError, match=r"output-rs0\.jsonl:1: no 'predicted_answer'"):
        run(tmp_path, "judge_eval", [path], lambda r: "", {}, [tmp_path / "j.jsonl"])


def test_a_row_without_a_prompt_field_is_named(tmp_path):
    path = write_jsonl(tmp_path / "problems.jsonl", [{"problem": "p", "forum_discussions": "d"}])
    with pytest.raises(
        DistilleryError, match=r"uses \{forum_post\}, but .*problems\.jsonl:1 has no value"
    ):
        run(tmp_path, "extract_answer", [path], lambda r: "")


def test_summaries_keep_the_longest_valid_rewrite_or_drop_the_solution(tmp_path):
    rows = [
        {"problem": "2+2?", "generation": "<think>2+2 is 4</think>It is \\boxed{4}."},
        {"problem": "3+3?", "generation": "<think>3+3 is 6</think>It is \\boxed{6}."},
        {"problem": "4+4?", "generation": "4+4 is 8, never closed: \\boxed{8}",
         "expected_answer": "8"},
        {"problem": "6+6?", "generation": "<think>6+6 is 12</think>Twelve."},
        {"problem": "7+7?", "generation": ""},
    ]  # fmt: skip
    inputs = [write_jsonl(tmp_path / "rs0.jsonl", rows)]
    replies = {
        # two valid rewrites of the first solution: the longer one wins
        "0:0:0": "So \\boxed{4}.",
        "0:0:1": "We add: 2 + 2 = 4, so the answer is \\boxed{4}.",
        "0:0:2": "So the answer is \\boxed{5}.",
        # no rewrite of the second agrees with its answer: the solution is not SFT data
        "0:1:0": "So \\boxed{7}.",
        "0:1:1": "I summarised it.",
        "0:1:2": "",
        # another string for the same correct answer: valid (NeMo-Skills asks its judge)
        "0:2:0": "It is \\boxed{8.0}.",
        "0:2:1": "It is \\boxed{9}.",
        "0:2:2": "",
        # the original gave no boxed answer: so must the rewrite
        "0:3:0": "So it is \\boxed{12}.",
        "0:3:1": "It is twelve.",
        "0:3:2": "Twelve, clearly.",
    }
    extra = {"samples": 3}
    sent, (out,), report = run(
        tmp_path, "rewrite_summaries", inputs, lambda r: replies[r["_ref"]], extra,
        [tmp_path / "rewritten.jsonl"],
    )  # fmt: skip
    assert [r["_ref"] for r in sent] == [f"0:{line}:{k}" for line in range(4) for k in range(3)]
    assert [r["_seed"] for r in sent[:3]] == [0, 1, 2]  # one seed per sample
    assert "2+2 is 4" in sent[0][MESSAGES_FIELD][-1]["content"]
    assert out[0]["generation"] == (
        "<think>2+2 is 4</think>\n\nWe add: 2 + 2 = 4, so the answer is \\boxed{4}."
    )
    assert out[0]["original_summary"] == "It is \\boxed{4}." and out[0]["summary_rewritten"]
    assert out[1]["generation"] == rows[1]["generation"] and out[1]["no_valid_summary"]
    assert out[2]["generation"] == (
        "<think>\n4+4 is 8, never closed: \\boxed{8}\n</think>\n\nIt is \\boxed{8.0}."
    )
    assert out[3]["generation"].endswith("</think>\n\nTwelve, clearly.")
    assert out[4] == rows[4]
    assert report["rewritten"] == 3 and report["no_valid_summary"] == 1
    assert report["rewrites"] == 12 and report["valid_rewrites"] == 5
    _, (out,), report = run(
        tmp_path, "rewrite_summaries", inputs, lambda r: replies[r["_ref"]],
        {**extra, "keep_unrewritten": True}, [tmp_path / "rewritten.jsonl"],
    )  # fmt: skip
    assert out[1] == {**rows[1], "summary_rewritten": False} and report["kept_unrewritten"] == 1
