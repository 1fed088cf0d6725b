"""The peer of scripts/bench_sft_data.py: the default SFT filter chain as one plain orjson loop.

python scripts/sft_loop_peer.py SEED_FILE[,SEED_FILE...] OUTPUT PROMPT TOKENIZER
"""

import sys
from collections import Counter

import orjson

from distillery.grading.answers import ExtractionConfig, extract_answer, is_equivalent
from distillery.prompts import load_prompt
from distillery.sft_data.chat_template import ChatTemplate
from distillery.sft_data.filters import has_multiple_boxed, has_think_tags
from distillery.sft_data.formatting import ChatFormatter


def main() -> None:
    inputs, output = sys.argv[1].split(","), sys.argv[2]
    prompt, template = load_prompt(sys.argv[3]), ChatTemplate.from_pretrained(sys.argv[4])
    formatter = ChatFormatter(template.render)
    extraction = ExtractionConfig()
    seen = set()
    handles = [open(path, "rb") for path in inputs]
    with open(output, "wb") as out:
        for lines in zip(*handles, strict=True):
            rows = [orjson.loads(line) for line in lines]
            for row in rows:
                row["predicted_answer"] = extract_answer(row["generation"], extraction)
            if not rows[0].get("expected_answer"):
                votes = Counter(r["predicted_answer"] for r in rows if r["predicted_answer"])
                answer = votes.most_common(1)[0][0] if votes else None
                for row in rows:
                    row["expected_answer"] = answer
            for row in rows:
                expected, generation = row["expected_answer"], row["generation"]
                if expected is None or not is_equivalent(expected, row["predicted_answer"]):
                    continue
                key = hash((row["problem"], generation))
                if key in seen:
                    continue
                seen.add(key)
                if has_multiple_boxed(generation) or not has_think_tags(generation, ("</think>",)):
                    continue
                messages = prompt.messages(row) + [{"role": "assistant", "content": generation}]
                text_input, text_output = formatter.split(messages)
                record = {
                    "messages": messages,
                    "input": text_input,
                    "output": text_output,
                    "problem": row["problem"],
                    "expected_answer": expected,
                }
                out.write(orjson.dumps(record) + b"\n")


if __name__ == "__main__":
    main()
