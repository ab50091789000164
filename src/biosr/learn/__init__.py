"""Deep learning on BioSR: the only subpackage that imports torch and Lightning.

- :mod:`~biosr.learn.reader`: the index of a split and the batch reader (preadv, threads);
- :mod:`~biosr.learn.data`: the map-style dataset and NumPy loading;
- :mod:`~biosr.learn.datamodule`: the Lightning data module;
- :mod:`~biosr.learn.transforms`: paired symmetries and crops;
- :mod:`~biosr.learn.losses`, :mod:`~biosr.learn.models`: loss and networks;
- :mod:`~biosr.learn.train`, :mod:`~biosr.learn.predict`: training and tiled prediction.

Importing this package imports no torch; the modules that need it do.
"""
