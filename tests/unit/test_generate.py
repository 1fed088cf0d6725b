import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from distillery import generate
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.settings.base import parse
from distillery.settings.generation import Generation, Inference, Server

from ..conftest import REPO, lines_in, write_jsonl

JOB_KEYS = {"input", "output", "prompt", "model", "seed", "num_chunks", "chunk_id", "threads"}


def config(tmp_path, model, **overrides):
    """A stage config; each override goes where it sits in the YAML block (``backend`` is
    ``server.type``)."""
    job = {
        "input": str(tmp_path / "in.jsonl"),
        "output": str(tmp_path / "out.jsonl"),
        "prompt": str(REPO / "prompts" / "math.yaml"),
        "model": str(model),
    }
    block = {"server": {"type": "hf", "batch_size": 4}, "inference": {"max_tokens": 8}}
    for key, value in overrides.items():
        if key in JOB_KEYS:
            job[key] = value
        elif key in Inference.model_fields:
            block["inference"][key] = value
        elif key == "backend":
            block["server"]["type"] = value
        elif key in Server.model_fields:
            block["server"][key] = value
        else:
            block[key] = value
    return generate.Config(**job, stage=parse(Generation, block))


def problems(n):
    return [
        {"id": i, "problem": f"What is {i} plus 1?", "expected_answer": str(i + 1)}
        for i in range(n)
    ]


def test_generates_every_row_with_contract_fields(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "in.jsonl", problems(6))
    generate.main(config(tmp_path, tiny_model_dir, temperature=0.7, top_p=0.9, seed=3))
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == list(range(6))
    for row in rows:
        assert row["expected_answer"] == str(row["id"] + 1)
        assert isinstance(row["generation"], str)
        assert 1 <= row["num_generated_tokens"] <= 8
        assert row["finish_reason"] in ("stop", "length")
        assert row["generation_time"] >= 0
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_same_seed_same_samples(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "in.jsonl", problems(4))
    outputs = []
    for name in ("a", "b"):
        cfg = config(tmp_path, tiny_model_dir, temperature=1.0, seed=5, output=str(tmp_path / name))
        generate.main(cfg)
        outputs.append([r["generation"] for r in read_jsonl(tmp_path / name)])
    assert outputs[0] == outputs[1]


def test_chunks_and_max_samples(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "in.jsonl", problems(10))
    generate.main(config(tmp_path, tiny_model_dir, num_chunks=3, chunk_id=1, max_samples=8))
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [3, 4, 5]


def test_resume_generates_only_missing_rows(tmp_path, tiny_model_dir, monkeypatch):
    write_jsonl(tmp_path / "in.jsonl", problems(5))
    cfg = config(tmp_path, tiny_model_dir)
    keys = []
    real_partial = generate.PartialOutput

    def recording_partial(output, key):
        keys.append(key)
        return real_partial(output, key)

    monkeypatch.setattr(generate, "PartialOutput", recording_partial)
    generate.main(cfg)
    complete = read_jsonl(tmp_path / "out.jsonl")
    # What a run killed after rows 0, 1 and 3 leaves behind:
    (tmp_path / "out.jsonl").unlink()
    done = real_partial(tmp_path / "out.jsonl", keys[0])
    for index in (0, 1, 3):
        done.add(index, complete[index])
    done.close()

    requested = []
    real_backend = generate.open_backend

    @contextlib.contextmanager
    def counting_backend(config):
        with real_backend(config) as backend:
            inner = backend.generate

            def generate_and_count(requests):
                requested.extend(r.index for r in requests)
                return inner(requests)

            backend.generate = generate_and_count
            yield backend

    monkeypatch.setattr(generate, "open_backend", counting_backend)
    generate.main(cfg)
    assert sorted(requested) == [2, 4]
    resumed = read_jsonl(tmp_path / "out.jsonl")
    assert [r["generation"] for r in resumed] == [r["generation"] for r in complete]
    assert resumed[0] == complete[0]


def test_missing_prompt_field_fails_before_loading_model(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "in.jsonl", [{"problem": "x"}, {"question": "y"}])
    monkeypatch.setattr(generate, "open_backend", lambda c: pytest.fail("model loaded"))
    with pytest.raises(DistilleryError, match=r"in\.jsonl:2 has no value for it"):
        generate.main(config(tmp_path, tmp_path))


def test_missing_model_dir(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", problems(1))
    with pytest.raises(DistilleryError, match="model directory does not exist"):
        generate.main(config(tmp_path, tmp_path / "no-model"))


def test_empty_chunk_writes_empty_output(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "in.jsonl", problems(1))
    generate.main(config(tmp_path, tiny_model_dir, num_chunks=2, chunk_id=1))
    assert (tmp_path / "out.jsonl").read_text() == ""


def test_kill_and_rerun_loses_and_duplicates_nothing(tmp_path, tiny_model_dir):
    """kill -9 a real generation job mid-run, rerun it, compare with an uninterrupted run."""
    rows = problems(48)
    write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    command = [
        sys.executable, "-m", "distillery.generate",
        "--input", str(tmp_path / "in.jsonl"), "--output", str(out),
        "--prompt", str(REPO / "prompts" / "math.yaml"), "--model", str(tiny_model_dir),
        "--config-json", '{"server": {"type": "hf"}, "inference": {"max_tokens": 24}}',
        "--set", "server.batch_size=1", "--threads", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for _ in range(3):  # kill at a few points; each rerun continues from what is on disk
        process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            lines = lines_in(partial)
            if lines >= 2 + len(rows) // 6 * (_ + 1):
                break
            time.sleep(0.05)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert not out.exists() or process.returncode == 0
    subprocess.run(command, env=env, check=True, stderr=subprocess.DEVNULL)
    resumed = read_jsonl(out)
    assert [r["id"] for r in resumed] == list(range(48))

    fresh = tmp_path / "fresh.jsonl"
    fresh_command = [*command]
    fresh_command[fresh_command.index(str(out))] = str(fresh)
    subprocess.run(fresh_command, env=env, check=True, stderr=subprocess.DEVNULL)
    assert [r["generation"] for r in read_jsonl(fresh)] == [r["generation"] for r in resumed]


def test_prompt_longer_than_the_context_is_an_error_row_not_a_crash(tmp_path, tiny_model_dir):
    rows = problems(4)
    rows[1]["problem"] = "What is " + "1 plus " * 40_000 + "1?"  # 280 KB, far past 1,024 tokens
    rows[2]["problem"] = "What is " + "1 plus " * 310 + "1?"  # fits, with little room left
    write_jsonl(tmp_path / "in.jsonl", rows)
    generate.main(config(tmp_path, tiny_model_dir, max_tokens=64))
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == [0, 1, 2, 3]
    rejected = out[1]
    assert rejected["finish_reason"] == "error"
    assert rejected["generation"] == "" and rejected["num_generated_tokens"] == 0
    assert "does not fit the model's context of 1024 tokens" in rejected["error"]
    assert all("error" not in r for r in (out[0], out[2], out[3]))
    assert 1 <= out[2]["num_generated_tokens"] < 64  # cut to the room the context leaves


def test_context_overflow_skip_and_fail_on_the_hf_backend(tmp_path, tiny_model_dir):
    rows = problems(3)
    rows[1]["problem"] = "What is " + "1 plus " * 310 + "1?"  # fits, but not with 64 more
    write_jsonl(tmp_path / "in.jsonl", rows)
    generate.main(config(tmp_path, tiny_model_dir, max_tokens=64, context_overflow="skip"))
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["finish_reason"] == "error" for r in out] == [False, True, False]
    assert "plus 64 to generate does not fit the model's context of 1024" in out[1]["error"]
    with pytest.raises(DistilleryError, match="sample 1: .*set the stage's context_overflow"):
        generate.main(config(tmp_path, tiny_model_dir, max_tokens=64, context_overflow="fail",
                             output=str(tmp_path / "strict.jsonl")))  # fmt: skip
    assert not (tmp_path / "strict.jsonl").exists()


def test_gpus_on_a_machine_without_cuda_is_a_clear_error(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # as a scheduler would hand one over
    write_jsonl(tmp_path / "in.jsonl", problems(2))
    with pytest.raises(DistilleryError, match="server.gpus is 1 but torch sees no CUDA GPU"):
        generate.main(config(tmp_path, tiny_model_dir, gpus=1))


def test_a_system_prompt_setting_replaces_the_prompt_files(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", problems(2))
    prompt = tmp_path / "p.yaml"
    prompt.write_text('system: "You are a tutor."\nuser: "{problem}"\n')
    plain = generate.plan_files(config(tmp_path, "m", prompt=str(prompt)))[0]
    assert plain.prompt.messages(plain.rows[0])[0]["content"] == "You are a tutor."
    # literal text: braces in it are not fields
    think = config(tmp_path, "m", prompt=str(prompt), system="detailed thinking on {x}")
    file = generate.plan_files(think)[0]
    messages = file.prompt.messages(file.rows[0])
    assert messages[0] == {"role": "system", "content": "detailed thinking on {x}"}
    assert messages[1] == {"role": "user", "content": "What is 0 plus 1?"}
    # a different system prompt is a different sample set: a .partial of the other is not reused
    other = generate.plan_files(config(tmp_path, "m", prompt=str(prompt), system="off"))[0]
    model = {"path": "m"}
    assert generate.file_key(think, file, model) != generate.file_key(think, other, model)


def test_an_empty_input_is_an_error_unless_allowed(tmp_path, tiny_model_dir, monkeypatch):
    write_jsonl(tmp_path / "in.jsonl", [])
    with pytest.raises(DistilleryError, match="input file is empty"):
        generate.main(config(tmp_path, tiny_model_dir))
    # allowed (an LLM step with nothing to ask): empty output, and no backend is started
    monkeypatch.setattr(generate, "open_backend", None)
    job = config(tmp_path, tiny_model_dir)
    generate.main(generate.Config(**{**job.__dict__, "allow_empty_input": True}))
    assert read_jsonl(tmp_path / "out.jsonl", allow_empty=True) == []


def test_each_file_is_cut_into_chunks_on_its_own(tmp_path):
    """A file's share does not move when other files join the work (a benchmark, a seed)."""
    write_jsonl(tmp_path / "a.jsonl", [{"problem": f"a{i}"} for i in range(5)])
    write_jsonl(tmp_path / "b.jsonl", [{"problem": f"b{i}"} for i in range(3)])
    prompt = str(REPO / "prompts" / "math.yaml")

    def shares(inputs: list[str], chunk: int) -> dict[str, list[int]]:
        work = [{"input": str(tmp_path / f"{name}.jsonl"), "prompt": prompt, "seeds": [0],
                 "outputs": [f"{name}_chunk_{chunk}.jsonl"]} for name in inputs]  # fmt: skip
        files = generate.plan_files(generate.Config(
            work=json.dumps(work), model="m", num_chunks=2, chunk_id=chunk,
            stage=parse(Generation, {"server": {"type": "openai", "base_url": "http://x"}}),
        ))  # fmt: skip
        return {f.output: [line for line, _ in f.numbered] for f in files}  # 1-based lines

    assert shares(["a"], 0) == {"a_chunk_0.jsonl": [1, 2, 3]}
    assert shares(["a"], 1) == {"a_chunk_1.jsonl": [4, 5]}
    assert shares(["b", "a"], 1) == {"b_chunk_1.jsonl": [3], "a_chunk_1.jsonl": [4, 5]}
