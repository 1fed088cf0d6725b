"""Only new or changed files are generated: against a stub server that counts its requests, a
job run again after each change a user makes (a benchmark added, seeds raised, one benchmark's
prompt changed) sends exactly the requests of the new or changed files, and keeps the samples
of finished files. The workflow merges the chunk files and keeps them; the tests do the same,
and also delete them (a results directory from a run that did, or chunks cut anew)."""

import json
import shutil
import urllib.request

import pytest

from distillery import generate, merge_chunks
from distillery.generation.reuse import REGENERATE_ENV, merged_path
from distillery.jsonl import read_jsonl
from distillery.settings.base import parse
from distillery.settings.generation import Generation

from ..conftest import REPO, write_jsonl

ROWS = {"aime": 3, "gsm": 5, "math": 4}


@pytest.fixture
def job(tmp_path, stub_server):
    """Runs one evaluation-shaped job (``benches`` {name: seeds}, ``chunks``), merges its chunk
    files as the workflow does, and returns the requests the server answered."""
    url = stub_server()
    for bench, rows in ROWS.items():
        write_jsonl(tmp_path / f"{bench}.jsonl", [{"problem": f"{bench} {i}"} for i in range(rows)])
    (tmp_path / "other.yaml").write_text("user: |-\n  Solve carefully: {problem}\n")

    def served() -> int:
        with urllib.request.urlopen(url + "/stats") as response:
            return json.loads(response.read())["requests"]

    def run(benches: dict[str, int], chunks: int = 1, prompts: dict | None = None,
            keep: bool = True) -> int:  # fmt: skip
        before = served()
        work = []
        for bench, seeds in benches.items():
            prompt = (prompts or {}).get(bench, str(REPO / "prompts" / "math.yaml"))
            outputs = [
                str(tmp_path / "gen" / bench / f"output-rs{s}_chunk_{{chunk}}.jsonl")
                for s in range(seeds)
            ]
            work.append({"input": str(tmp_path / f"{bench}.jsonl"), "prompt": prompt,
                         "seeds": list(range(seeds)), "outputs": outputs})  # fmt: skip
        stage = parse(Generation, {"server": {"type": "openai", "base_url": url}})
        for chunk in range(chunks):
            text = json.dumps(work).replace("{chunk}", str(chunk))
            generate.main(generate.Config(work=text, model="stub", stage=stage,
                                          num_chunks=chunks, chunk_id=chunk))  # fmt: skip
        for bench, seeds in benches.items():
            for seed in range(seeds):
                parts = [tmp_path / "gen" / bench / f"output-rs{seed}_chunk_{c}.jsonl"
                         for c in range(chunks)]  # fmt: skip
                merge_chunks.main(
                    merge_chunks.Config(
                        inputs=tuple(map(str, parts)), output=str(merged_path(parts[0]))
                    )
                )
                for part in parts if not keep else ():
                    part.unlink()
        return served() - before

    return run


def finals(tmp_path) -> dict[str, bytes]:
    """Every merged file and its bytes."""
    return {
        str(p.relative_to(tmp_path)): p.read_bytes()
        for p in sorted((tmp_path / "gen").rglob("output-rs?.jsonl"))
    }


@pytest.mark.parametrize("keep", [True, False], ids=["chunks-kept", "chunks-deleted"])
@pytest.mark.parametrize("chunks", [1, 2])
def test_each_change_sends_only_its_requests(tmp_path, job, chunks, keep):
    assert job({"aime": 2, "gsm": 2}, chunks, keep=keep) == 2 * 3 + 2 * 5
    first = finals(tmp_path)
    assert job({"aime": 2, "gsm": 2}, chunks, keep=keep) == 0  # nothing changed
    assert finals(tmp_path) == first  # the same samples, merged again, not generated again
    assert job({"aime": 2, "gsm": 2, "math": 2}, chunks, keep=keep) == 2 * 4  # a benchmark added
    assert job({"aime": 4, "gsm": 2, "math": 2}, chunks, keep=keep) == 2 * 3  # aime's seeds 2 -> 4
    other = {"gsm": str(tmp_path / "other.yaml")}
    assert job({"aime": 4, "gsm": 2, "math": 2}, chunks, other, keep) == 2 * 5  # gsm's prompt
    gsm = read_jsonl(tmp_path / "gen" / "gsm" / "output-rs0.jsonl")
    assert len(gsm) == 5 and all("Solve carefully" not in r["generation"] for r in gsm)
    assert job({"aime": 4, "gsm": 2, "math": 2}, chunks, other, keep) == 0


@pytest.mark.parametrize("chunks", [1, 2])
def test_kept_chunk_files_are_not_written_again(tmp_path, job, chunks):
    """What keeps the workflow from merging and grading them again: their times stay."""
    assert job({"aime": 2}, chunks) == 2 * 3
    parts = sorted((tmp_path / "gen").rglob("*_chunk_*.jsonl"))
    assert len(parts) == 2 * chunks
    times = {p: p.stat().st_mtime_ns for p in parts}
    assert job({"aime": 3}, chunks) == 3  # seed 2 only
    assert {p: p.stat().st_mtime_ns for p in parts} == times


def test_a_changed_merged_file_is_generated_again(tmp_path, job):
    """Where the chunk files are gone and the merged file is not as recorded."""
    assert job({"aime": 1}, keep=False) == 3
    path = tmp_path / "gen" / "aime" / "output-rs0.jsonl"
    rows = read_jsonl(path)
    rows[1]["generation"] = "edited"
    write_jsonl(path, rows)
    assert job({"aime": 1}, keep=False) == 3
    assert read_jsonl(path)[1]["generation"] != "edited"


def test_forcing_regenerates_everything(tmp_path, job, monkeypatch):
    assert job({"aime": 1, "gsm": 1}) == 8
    monkeypatch.setenv(REGENERATE_ENV, "1")
    assert job({"aime": 1, "gsm": 1}) == 8


def test_an_unmerged_file_is_kept_as_it_is(tmp_path, job, stub_server):
    """A file that is no chunk of a merge (one --output) is left untouched when it is done."""
    url = stub_server()
    write_jsonl(tmp_path / "in.jsonl", [{"problem": "p"}])
    stage = parse(Generation, {"server": {"type": "openai", "base_url": url}})
    config = generate.Config(input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out.jsonl"),
                             prompt=str(REPO / "prompts" / "math.yaml"), model="stub",
                             stage=stage)  # fmt: skip
    generate.main(config)
    stamp = (tmp_path / "out.jsonl").stat().st_mtime_ns
    shutil.copy(tmp_path / "out.jsonl", tmp_path / "copy.jsonl")
    generate.main(config)
    assert (tmp_path / "out.jsonl").stat().st_mtime_ns == stamp
