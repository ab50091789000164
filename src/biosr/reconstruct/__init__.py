"""2-D linear SIM reconstruction of raw BioSR stacks, written here rather than taken from PyPI.

Modules: :mod:`.bands` (frame order, padding, band separation),
:mod:`.parameters` (:class:`SimParameters`, their JSON file, estimation),
:mod:`.wiener` (:func:`reconstruct_sim`), :mod:`.files` (stacks and release
folders in, TIFF and JSON out).

Why by hand: the two packages on the index were read before writing this.
``napari-sim-processor`` (0.1.1, "Pre-Alpha") imports matplotlib, Qt, magicgui
and superqt at import time and prints on import; its processors are stateful
classes with a model OTF of their own (no measured OTF to pass in) and no
per-band notch of the authors' kind. ``pyfairsim`` (0.0.3, alpha, classified
Windows-only) reads its settings from a JSON file, plots with matplotlib and is
not maintained. Neither takes BioSR's frame order, MRC dialect or settings, and
wrapping either would still leave the estimation untested on BioSR's stacks.
The algorithm is the standard one (Gustafsson 2000; Wicker et al. 2013 for
the phases; fairSIM's generalised Wiener filter with a notch), a few hundred
lines of numpy and scipy.fft.
"""

from biosr.reconstruct.parameters import (
    SimParameters,
    estimate_parameters,
    read_params,
    write_params,
)
from biosr.reconstruct.wiener import reconstruct_sim

__all__ = ["SimParameters", "estimate_parameters", "read_params", "reconstruct_sim", "write_params"]
