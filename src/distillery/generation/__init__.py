"""The generation engine shared by every stage that samples text.

A backend turns :class:`Request` objects into :class:`Result` objects; :mod:`.resume` makes a job
resumable; :mod:`distillery.generate` is the stage that ties them to files.
"""

from distillery.generation.types import Request, Result, SamplingParams

__all__ = ["Request", "Result", "SamplingParams"]
