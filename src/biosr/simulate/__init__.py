"""A physics-based simulator of BioSR-like Microtubules data (specimen, optics, camera).

The pieces, each usable alone:

- :mod:`~biosr.simulate.specimen`: worm-like-chain microtubules over a cell;
- :mod:`~biosr.simulate.optics`: the Airy widefield PSF/OTF and its FWHM;
- :mod:`~biosr.simulate.imaging`: raw SIM frames, widefield and SIM-resolution GT;
- :mod:`~biosr.simulate.camera`: Poisson, offset, gain, read noise, uint16;
- :mod:`~biosr.simulate.release` and :mod:`~biosr.simulate.patches`: the two output formats;
- :mod:`~biosr.simulate.preview`: a PNG montage to judge realism by eye.
"""

from __future__ import annotations

from biosr.simulate.patches import PRESETS, simulate_patches
from biosr.simulate.release import simulate_release

__all__ = ["PRESETS", "simulate_patches", "simulate_release"]
