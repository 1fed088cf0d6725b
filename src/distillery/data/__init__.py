"""Where rows come from: the hub or local files (:mod:`.sources`), raw forum data
(:mod:`.raw_sources`), and the generated demo posts and benchmark (:mod:`.demo`).
"""
