"""The workflow config, declared once: pydantic models whose fields nest like the YAML blocks.

``workflow/schemas/config.schema.yaml`` is generated from them (``python -m
distillery.settings.schema``).
"""

from distillery.settings.base import Block, parse, set_dotted
from distillery.settings.workflow import WorkflowConfig

__all__ = ["Block", "WorkflowConfig", "parse", "set_dotted"]
