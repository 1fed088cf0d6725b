import json

import pytest

from distillery import prepare_sft_data
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.settings.base import parse
from distillery.settings.data import Downsampling, SftSelection
from distillery.sft_data.contamination import NGramIndex
from distillery.sft_data.filters import (
    answer_part,
    has_multiple_boxed,
    has_think_tags,
    trim_solution,
)
from distillery.sft_data.formatting import ChatFormatter
from distillery.sft_data.labels import NO_VALID_ANSWER, fill_majority_answer, label
from distillery.sft_data.pipeline import downsampling_quotas

from ..conftest import REPO, write_jsonl


def row(problem, answer, expected=None):
    return {"problem": problem, "expected_answer": expected, "predicted_answer": answer}


def test_fill_majority_only_where_no_answer_is_known():
    known = [row("p1", "3", expected="4"), row("p1", "3", expected="4")]
    assert not fill_majority_answer(known)
    assert known[0]["expected_answer"] == "4" and "majority_votes" not in known[0]
    unknown = [row("p2", "7"), row("p2", "7"), row("p2", "8"), row("p2", None)]
    assert fill_majority_answer(unknown)
    assert {r["expected_answer"] for r in unknown} == {"7"}
    assert unknown[0]["majority_votes"] == 2 and unknown[0]["total_votes"] == 4
    nothing = [row("p3", None), row("p3", None)]
    fill_majority_answer(nothing)
    assert nothing[0]["expected_answer"] == NO_VALID_ANSWER


def test_label_uses_equivalence():
    r = row("p", "016", expected="16")
    label(r)
    assert r["symbolic_correct"]
    r = row("p", "1", expected=NO_VALID_ANSWER)
    label(r)
    assert not r["symbolic_correct"]


def test_filters():
    assert has_multiple_boxed("\\boxed{1} and \\boxed{2}")
    assert not has_multiple_boxed("\\boxed{\\frac{1}{2}}")
    assert has_think_tags("a</think>b", ("</think>",))
    assert not has_think_tags("a</think>b", ("<think>", "</think>"))
    assert trim_solution("x\n\\boxed{3}. Done.\nMore words") == "x\n\\boxed{3}. Done."
    assert trim_solution("no box\nhere") == "no box\nhere"
    assert answer_part("reasoning</think>\n\nThe answer is 4.") == "The answer is 4."
    assert answer_part("never finished") is None


def test_ngram_contamination():
    index = NGramIndex(n=5)
    index.add("Find the number of ordered pairs of integers that satisfy it.", "aime24", "aime24-3")
    index.add("What is 2+2?", "tiny", "t-0")
    assert index.match("Please find the NUMBER of ordered pairs of reals").benchmark == "aime24"
    assert index.match("Find the number of unordered pairs") is None
    assert index.match("what is 2 + 2").benchmark_id == "t-0"  # shorter than n: whole text
    assert index.match("what is 2 + 3") is None


def test_embedding_contamination_flags_near_duplicates(tmp_path):
    import torch
    from transformers import BertConfig, BertModel

    from distillery.sft_data.contamination import embedding_matches

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64))  # fmt: skip
    model.save_pretrained(tmp_path / "encoder")
    _word_tokenizer(tmp_path / "encoder")
    found = embedding_matches(
        ["what is two plus two", "a completely different question about geometry"],
        [("what is two plus two", "b", "b-1")],
        str(tmp_path / "encoder"),
        threshold=0.999,
    )
    assert list(found) == [0]
    assert found[0][1] == pytest.approx(1.0, abs=1e-5)


def _word_tokenizer(directory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = "what is two plus two a completely different question about geometry".split()
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(dict.fromkeys(words))}}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]"
    ).save_pretrained(directory)


def test_fast_formatting_equals_rendering(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    def render(messages, add_generation_prompt):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    formatter = ChatFormatter(render, verify=0)
    for i in range(5):
        messages = [
            {"role": "system", "content": f"system {i}"},
            {"role": "user", "content": f"What is {i}+1? {{braces}} \\boxed{{}}"},
            {"role": "assistant", "content": f"<think>hmm</think> {i + 1}"},
        ]
        text_input, text_output = formatter.split(messages)
        assert text_input == render(messages[:-1], True)
        assert text_input + text_output == render(messages, False)
    assert formatter._skeletons[("system", "user", "assistant")] is not None


def test_formatting_falls_back_when_the_template_changes_contents():
    def render(messages, add_generation_prompt):  # strips what it is given
        text = "".join(f"<{m['role']}>{m['content'].strip()}</{m['role']}>" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    formatter = ChatFormatter(render)
    messages = [{"role": "user", "content": " hi "}, {"role": "assistant", "content": " yes "}]
    assert formatter.split(messages) == ("<user>hi</user><assistant>", "yes</assistant>")
    assert formatter._skeletons[("user", "assistant")] is None  # caught by the verification


def test_fair_downsampling_is_round_robin():
    counts = {0: 1, 1: 5, 2: 2, 3: 10}
    quotas = downsampling_quotas(counts, Downsampling(method="fair", num_output_samples=8), 42)
    assert sum(quotas.values()) == 8
    assert quotas[0] == 1 and quotas[2] == 2  # small problems keep everything
    assert sorted([quotas[1], quotas[3]]) == [2, 3]  # the rest share what is left evenly
    assert downsampling_quotas(counts, Downsampling(max_per_problem=3), 42) == {
        0: 1, 1: 3, 2: 2, 3: 3
    }  # fmt: skip
    random_quotas = downsampling_quotas(
        counts, Downsampling(method="random", num_output_samples=6), 42
    )
    assert sum(random_quotas.values()) == 6
    assert all(random_quotas[g] <= counts[g] for g in counts)


def solutions(tmp_path, seeds):
    paths = []
    for seed, answers in enumerate(seeds):
        rows = []
        for i, (a, expected) in enumerate(answers):
            generation = a if a.startswith("<") or " " in a else f"so \\boxed{{{a}}}"
            rows.append({"problem": f"What is problem number {i}?", "expected_answer": expected,
                         "generation": generation})  # fmt: skip
        paths.append(str(write_jsonl(tmp_path / f"output-rs{seed}.jsonl", rows)))
    return tuple(paths)


STAGE_KEYS = {"validation_output", "contamination_benchmarks", "contamination_output", "threads"}


def stage_config(tmp_path, inputs, tokenizer_dir, **kw):
    """The stage's config; each setting goes where it sits in the sft_data block."""
    block: dict = {}
    stage = {k: v for k, v in kw.items() if k in STAGE_KEYS}
    for key, value in kw.items():
        if key in STAGE_KEYS:
            continue
        where = next(
            (name for name in ("filters", "dual_mode", "downsampling", "contamination")
             if key in SftSelection.model_fields[name].annotation.model_fields),
            None,
        )  # fmt: skip
        (block.setdefault(where, {}) if where else block)[key] = value
    return prepare_sft_data.Config(
        inputs=inputs,
        output=str(tmp_path / "sft.jsonl"),
        report=str(tmp_path / "report.json"),
        prompt=str(REPO / "prompts" / "math.yaml"),
        tokenizer=str(tokenizer_dir),
        sft=parse(SftSelection, block),
        **stage,
    )


def steps(tmp_path):
    report = json.loads((tmp_path / "report.json").read_text())
    return {s["step"]: s["removed"] for s in report["steps"]}, report


def test_stage_end_to_end(tmp_path, tokenizer_dir):
    # p0 known answer 4; p1 unknown, majority 7 (2 of 3); p2 unknown, no agreement
    inputs = solutions(
        tmp_path,
        [
            [("4", "4"), ("7", None), ("1", None)],
            [("5", "4"), ("7", None), ("2", None)],
            [("4", "4"), ("8", None), ("3", None)],
        ],
    )
    prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir, min_majority_votes=2))
    rows = read_jsonl(tmp_path / "sft.jsonl")
    assert sorted((r["problem"][-2], r["expected_answer"]) for r in rows) == [
        ("0", "4"),
        ("1", "7"),
    ]
    for record in rows:
        assert record["input"].endswith("<|im_start|>assistant\n")
        assert record["output"].endswith("<|im_end|>\n")
        assert record["messages"][-1]["role"] == "assistant"
    removed, report = steps(tmp_path)
    assert list(removed)[:5] == [
        "rows missing generation or problem",
        "no valid summary",
        "correctness selection",
        "deduplicate (problem, generation)",
        "drop_multi_boxed",
    ]
    # p0's "5", p1's "8", and p2's "2" and "3" (its majority answer is "1", with one vote)
    assert removed["correctness selection"] == 4
    assert removed["deduplicate (problem, generation)"] == 2  # p0's two "4", p1's two "7"
    assert removed["majority filter"] == 1  # p2's "1": one vote is not a majority
    assert report["rows_read"] == 9 and report["written_train"] == 2
    assert report["problems_labelled_by_majority"] == 2
    assert (tmp_path / "report.md").read_text().startswith("# SFT data report")


def test_filters_in_the_stage(tmp_path, tokenizer_dir):
    think = "<think>long reasoning</think>\n\nThe answer is \\boxed{4}."
    inputs = solutions(
        tmp_path,
        [
            [(think, "4"), ("\\boxed{5} or \\boxed{4}", "4"), ("3", "3")],
        ],
    )
    prepare_sft_data.main(
        stage_config(
            tmp_path, inputs, tokenizer_dir, drop_multi_boxed=True, remove_no_think_tags=True
        )
    )
    removed, _ = steps(tmp_path)
    assert removed["drop_multi_boxed"] == 1
    assert removed["remove_no_think_tags"] == 1  # "so \boxed{3}" has no </think>
    assert [r["messages"][-1]["content"] for r in read_jsonl(tmp_path / "sft.jsonl")] == [think]


def test_contamination_removes_and_reports_pairs(tmp_path, tokenizer_dir):
    inputs = solutions(tmp_path, [[("1", "1"), ("2", "2")]])
    bench = write_jsonl(
        tmp_path / "bench.jsonl", [{"id": "b-0", "problem": "what is problem number 1?"}]
    )
    prepare_sft_data.main(
        stage_config(
            tmp_path,
            inputs,
            tokenizer_dir,
            remove_contaminated=True,
            contamination_benchmarks=(f"bench={bench}",),
            contamination_output=str(tmp_path / "flagged.jsonl"),
        )
    )
    flagged = read_jsonl(tmp_path / "flagged.jsonl")
    assert [(f["problem"], f["benchmark"], f["benchmark_id"]) for f in flagged] == [
        ("What is problem number 1?", "bench", "b-0")
    ]
    assert [r["problem"] for r in read_jsonl(tmp_path / "sft.jsonl")] == [
        "What is problem number 0?"
    ]


def test_length_limits_dual_mode_and_split(tmp_path, tokenizer_dir):
    think = "<think>" + "step " * 40 + "</think>\n\nThe answer is \\boxed{{{a}}}."
    seeds = [[(think.format(a=i), str(i)) for i in range(40)] for _ in range(2)]
    inputs = solutions(tmp_path, seeds)
    prepare_sft_data.main(
        stage_config(
            tmp_path,
            inputs,
            tokenizer_dir,
            validation_output=str(tmp_path / "val.jsonl"),
            validation_share=0.25,
            thinking_off_share=0.5,
            system_on="detailed thinking on",
            system_off="detailed thinking off",
            max_seq_length=200,
        )
    )
    train, val = read_jsonl(tmp_path / "sft.jsonl"), read_jsonl(tmp_path / "val.jsonl")
    assert 20 <= len(train) <= 38 and len(val) >= 2 and len(train) + len(val) == 40
    assert not {r["problem"] for r in train} & {r["problem"] for r in val}
    off = [r for r in train + val if r["thinking"] == "off"]
    on = [r for r in train + val if r["thinking"] == "on"]
    assert off and on
    assert all(r["messages"][0]["content"] == "detailed thinking off" for r in off)
    assert all("<think>" not in r["output"] and "\\boxed" in r["output"] for r in off)
    assert all(r["messages"][0]["content"] == "detailed thinking on" for r in on)
    _, report = steps(tmp_path)
    assert report["thinking_off_records"] == len(off)
    # the same limit that keeps everything at 200 drops everything at 20
    with pytest.raises(DistilleryError, match="nothing to train on after downsampling"):
        prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir, max_seq_length=20))


def test_rows_missing_fields_are_counted(tmp_path, tokenizer_dir):
    path = write_jsonl(
        tmp_path / "output-rs0.jsonl",
        [{"problem": "p", "expected_answer": "1", "generation": "\\boxed{1}"}, {"problem": "q"}],
    )
    prepare_sft_data.main(stage_config(tmp_path, (str(path),), tokenizer_dir))
    removed, _ = steps(tmp_path)
    assert removed["rows missing generation or problem"] == 1
    assert len(read_jsonl(tmp_path / "sft.jsonl")) == 1


def test_invalid_utf8_names_file_and_line(tmp_path, tokenizer_dir):
    path = tmp_path / "output-rs0.jsonl"
    path.write_bytes(
        b'{"problem": "p", "generation": "\\\\boxed{1}", "expected_answer": "1"}\n'
        b'{"problem": "caf\xe9"}\n'
    )
    with pytest.raises(DistilleryError, match=r"output-rs0\.jsonl:2: line is not valid UTF-8"):
        prepare_sft_data.main(stage_config(tmp_path, (str(path),), tokenizer_dir))


def test_nothing_to_train_on(tmp_path, tokenizer_dir):
    inputs = solutions(tmp_path, [[("1", "2")]])
    with pytest.raises(DistilleryError, match="nothing to train on") as err:
        prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir))
    assert "| correctness selection | 1 | 0 |" in str(err.value)
    assert not (tmp_path / "sft.jsonl").exists()


def test_seed_files_must_align(tmp_path, tokenizer_dir):
    inputs = solutions(tmp_path, [[("1", "1"), ("2", "2")], [("1", "1")]])
    with pytest.raises(DistilleryError, match="different line counts"):
        prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir))


def test_light_chat_template_renders_like_transformers(tokenizer_dir):
    from transformers import AutoTokenizer

    from distillery.sft_data.chat_template import ChatTemplate, TokenCounter

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    template = ChatTemplate.from_pretrained(tokenizer_dir)
    conversations = [
        [{"role": "user", "content": "What is 1+1?"}],
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Q {x} \\boxed{}"},
            {"role": "assistant", "content": "<think>a</think> 2"},
        ],
    ]
    for messages in conversations:
        for generation_prompt in (True, False):
            expected = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation_prompt
            )
            assert template.render(messages, generation_prompt) == expected
    texts = ["hello world", "What is \\frac{1}{2}?"]
    expected = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
    assert TokenCounter(tokenizer_dir)(texts) == expected


def test_model_without_a_chat_template(tmp_path):
    from distillery.sft_data.chat_template import ChatTemplate

    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(DistilleryError, match="has no chat template"):
        ChatTemplate.from_pretrained(tmp_path)


def test_grading_in_a_worker_gives_the_same_output(tmp_path, tokenizer_dir):
    seeds = [[(str(i % 7), str(i % 5)) for i in range(300)] for _ in range(3)]
    inputs = solutions(tmp_path, seeds)
    outputs = []
    for threads in (1, 2):
        out = tmp_path / f"sft-{threads}.jsonl"
        config = stage_config(tmp_path, inputs, tokenizer_dir, add_incorrect=True, threads=threads)
        prepare_sft_data.main(prepare_sft_data.Config(**{**config.__dict__, "output": str(out)}))
        outputs.append((out.read_bytes(), steps(tmp_path)[1]))
    assert outputs[0] == outputs[1]


def test_drop_if_regex_match_matches_literally_as_nemo_skills_does(tmp_path, tokenizer_dir):
    inputs = solutions(tmp_path, [[("4", "4"), ("so ```python print(4)``` \\boxed{4}", "4")]])
    prepare_sft_data.main(
        stage_config(tmp_path, inputs, tokenizer_dir, drop_if_regex_match=["```python", "a.c"])
    )
    removed, _ = steps(tmp_path)
    assert removed["drop_if_regex_match"] == 1
    assert len(read_jsonl(tmp_path / "sft.jsonl")) == 1


def test_the_filter_steps_drive_the_filters_block_and_the_report_rows():
    from distillery.sft_data import filters, pipeline

    keys = set(SftSelection.model_fields["filters"].annotation.model_fields)
    for step in filters.STEPS:
        if step.settings is not None:
            assert step.name in keys and set(step.settings.model_fields) <= keys
    counted = [s.name for s in filters.STEPS if s.counted]
    assert list(pipeline.STEPS[1 : 1 + len(counted)]) == counted
    assert "trim_solutions" not in pipeline.STEPS  # it edits, it removes nothing
    with pytest.raises(DistilleryError, match="'filters.drop_if_regex_match' must be of type"):
        parse(SftSelection, {"filters": {"drop_if_regex_match": "```python"}})


def test_use_judgement_keeps_what_the_judge_said_is_correct(tmp_path, tokenizer_dir):
    # symbolic grading says "4" is right and "2+2" wrong; the judge says both are right, and
    # its verdict on "5" cannot be read
    rows = [
        {"problem": "What is 2+2?", "expected_answer": "4", "generation": "\\boxed{4}",
         "judgement": "Judgement: Yes"},
        {"problem": "What is 2+2?", "expected_answer": "4", "generation": "\\boxed{two plus two}",
         "judgement": "Reasoning: same value.\nJudgement: Yes"},
        {"problem": "What is 2+2?", "expected_answer": "4", "generation": "\\boxed{5}",
         "judgement": "I am not sure."},
    ]  # fmt: skip
    inputs = (str(write_jsonl(tmp_path / "judged.jsonl", rows)),)
    prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir, use_judgement=True))
    kept = read_jsonl(tmp_path / "sft.jsonl")
    assert sorted(r["output"].split("}")[0] for r in kept) == ["\\boxed{4", "\\boxed{two plus two"]
    removed, _ = steps(tmp_path)
    assert removed["correctness selection"] == 1  # no readable verdict: not correct
    # only wrong ones wanted: no readable verdict counts as wrong, as in NeMo-Skills
    config = stage_config(tmp_path, inputs, tokenizer_dir, use_judgement=True, add_correct=False,
                          add_incorrect=True)  # fmt: skip
    prepare_sft_data.main(config)
    assert [r["output"].split("}")[0] for r in read_jsonl(tmp_path / "sft.jsonl")] == ["\\boxed{5"]
    # the judge step's own reading (its parse setting) wins over the text
    rows[2]["judge_correct"] = True
    inputs = (str(write_jsonl(tmp_path / "judged.jsonl", rows)),)
    prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir, use_judgement=True))
    assert len(read_jsonl(tmp_path / "sft.jsonl")) == 3


def test_solutions_without_a_valid_summary_are_left_out(tmp_path, tokenizer_dir):
    rows = [
        {"problem": "What is 2+2?", "expected_answer": "4", "generation": "\\boxed{4}"},
        {"problem": "What is 2+2?", "expected_answer": "4", "generation": "so \\boxed{4}",
         "no_valid_summary": True},
    ]  # fmt: skip
    inputs = (str(write_jsonl(tmp_path / "rs0.jsonl", rows)),)
    prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir))
    assert len(read_jsonl(tmp_path / "sft.jsonl")) == 1
    assert steps(tmp_path)[0]["no valid summary"] == 1
