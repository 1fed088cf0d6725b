# distillery: raw forum posts -> extracted problems -> teacher solutions -> SFT data -> trained
# student -> benchmark evaluation of base and trained models -> metric tables.
#
# Output paths (all under results/):
#   models/{model}/                                   HF model directories (gguf_to_hf)
#   data/raw-posts.jsonl, benchmarks/{bench}/test.jsonl
#   sdg/problems/output.jsonl -> sdg/extracted-problems.jsonl
#   sdg/processing/{step}/problems.jsonl               LLM problem steps (classify, ...), if on
#   sdg/judged/output-rs{seed}.jsonl                   solutions with the judge's verdicts, if on
#   sdg/solutions/output-rs{seed}_chunk_{chunk}.jsonl -> sdg/solutions/output-rs{seed}.jsonl
#   sft/sft-data.jsonl, train/model/
#   evals/{run}/generations/{bench}/output-rs{seed}.jsonl
#   evals/{run}/eval-results/{bench}/output-rs{seed}.jsonl, .../metrics.json (.md, .csv)
#   comparison.md (.csv)


from snakemake.utils import min_version

min_version("9.19")


# The embedded default, unless a config is given (--configfile): recipes are complete on their
# own, and merging them into the default would leak its settings into them.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/data.smk"
# first: the generation and merge rules of the other stages derive from its rules
include: "workflow/rules/eval.smk"


if PLAN.solutions_generated:

    include: "workflow/rules/sdg.smk"


include: "workflow/rules/sft.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/serve.smk"
include: "workflow/rules/processing.smk"


rule all:
    default_target: True
    input:
        PLAN.final_outputs(),
