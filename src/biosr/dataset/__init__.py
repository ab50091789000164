"""A dataset on disk: its manifest and card, citation, verification, summary and pack.

- :mod:`~biosr.dataset.manifest`: ``manifest.csv`` and ``dataset_card.json``;
- :mod:`~biosr.dataset.citation`: the licence and BibTeX;
- :mod:`~biosr.dataset.verify`: every check a copy must pass;
- :mod:`~biosr.dataset.info`: pairs, levels, value range and size;
- :mod:`~biosr.dataset.pack`: the memory-mappable cache the loaders read.
"""
