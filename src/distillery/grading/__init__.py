"""Grading: answer extraction and equivalence (:mod:`.answers`), exact arithmetic on bounded
numbers (:mod:`.numeric`), and the worker pool with hard time and memory limits (:mod:`.pool`).
"""
