"""distillery: improve an LLM's reasoning end to end, as a Snakemake workflow.

Every stage of the workflow is a module runnable as ``python -m distillery.<stage>``; the
Snakemake rules only assemble their command lines.
"""

__version__ = "0.1.0"
