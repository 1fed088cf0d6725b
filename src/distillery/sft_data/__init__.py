"""SFT data preparation: from solution samples to chat-formatted training records.

:mod:`.labels` decides correctness, :mod:`.filters` holds the ordered selection steps (NeMo-Skills'
filters), :mod:`.contamination` finds benchmark overlap, :mod:`.formatting` and
:mod:`.chat_template` write the student's chat format, :mod:`.pipeline` streams it all.
"""
