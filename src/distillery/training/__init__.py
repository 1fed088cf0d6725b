"""Training internals behind the ``train_sft`` stage: tokenisation and packing of the records
(:mod:`.tokenization`), the TRL trainer (:mod:`.trainer`), padding-free attention
(:mod:`.varlen_attention`) and fp32 master weights for bf16 models (:mod:`.master_weights`).
"""
