"""The generation engine shared by every stage that samples text.

A backend (:mod:`.backends` lists them) turns :class:`.types.Request` objects into
:class:`.types.Result` objects; :mod:`.resume` makes a job resumable; :mod:`distillery.generate`
is the stage that ties them to files.
"""
