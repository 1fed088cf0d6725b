"""SFT data preparation: from solution samples to chat-formatted training records.

:mod:`.labels` decides correctness, :mod:`.filters` and :mod:`.contamination` decide what to
drop, :mod:`.formatting` writes the student's chat format, :mod:`.pipeline` streams it all.
"""
