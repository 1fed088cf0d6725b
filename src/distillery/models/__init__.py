"""Model files: finding, saving and staging model directories (:mod:`.files`), and the
conversions to and from other formats (:mod:`.conversion`).
"""
