"""What the evaluation reports: NeMo-Skills' metrics (:mod:`.metrics`), tables
(:mod:`.tables`), plots (:mod:`.plots`) and the provenance every metrics file records
(:mod:`.provenance`).
"""
