"""The published patch dataset from an original release.

- :mod:`~biosr.build.source`: reads a release (zip or folder of MRC cells);
- :mod:`~biosr.build.protocol`: the authors' (DL-SR) patch protocol on arrays;
- :mod:`~biosr.build.options`: the protocol's options (``BuildOptions``) and its presets;
- :mod:`~biosr.build.produce`: the split folders and per-cell seeds both producers share;
- :mod:`~biosr.build.builder`: :func:`~biosr.build.builder.build`, the whole build.
"""
