"""The workflow config, declared once: pydantic models whose fields nest like the YAML blocks.

``workflow/schemas/config.schema.yaml`` is generated from them (``python -m
distillery.settings.schema``).
"""

from distillery.settings.base import Block, parse, set_dotted

__all__ = ["Block", "WorkflowConfig", "parse", "set_dotted"]


def __getattr__(name: str):
    # the whole config's model on first use: a block's module (a processing step's settings)
    # imports without building every other block
    if name == "WorkflowConfig":
        from distillery.settings.workflow import WorkflowConfig

        return WorkflowConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
