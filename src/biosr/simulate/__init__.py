"""A physics-based simulator of BioSR-like data of every structure (specimen, optics, camera).

Microtubules by default; ``structure=`` (``biosr simulate --structure``) selects
CCPs, ER, F-actin or F-actin_Nonlinear (5 x 5 frames of a saturated pattern, a
3x GT). The pieces, each usable alone:

- :mod:`~biosr.simulate.specimen`: worm-like-chain microtubules in a thin volume of a cell;
- :mod:`~biosr.simulate.structures`: the specimen of every structure;
- :mod:`~biosr.optics`: the measured detection OTF and the Airy model;
- :mod:`~biosr.simulate.imaging`: raw SIM frames (defocused depth slices, haze; linear or
  saturated illumination), widefield and the ideal SIM-resolution GT;
- :mod:`~biosr.simulate.camera`: Poisson, offset, gain, read noise, fixed pattern, uint16;
- :mod:`~biosr.simulate.truth`: the GT as BioSR made it (3 raw sets reconstructed, averaged);
- :mod:`~biosr.simulate.microscope`: the settings in one value, or from a calibration;
- :mod:`~biosr.simulate.calibrate`: the statistics of real data the simulator is matched to;
- :mod:`~biosr.simulate.release` and :mod:`~biosr.simulate.patches`: the two output formats;
- :mod:`~biosr.simulate.preview`: a PNG montage to judge realism by eye.

Step by step::

    import numpy as np
    from biosr import layout
    from biosr.simulate import camera, imaging, specimen

    rng = np.random.default_rng(0)
    spec = specimen.random_specimen(imaging.field_nm(256), rng)        # the cell
    clean = imaging.image_specimen(spec, 256, frames=True,
                                   pattern=imaging.random_pattern(rng))  # WF, GT, 9 frames
    scale = camera.photon_scale(clean.wf, layout.PHOTONS[5])          # level 5
    raw = camera.expose(clean.frames * scale, rng)                    # uint16 (9, 256, 256)
    wf = imaging.widefield(raw)                                       # mean of the frames
    gt = clean.gt                                                     # (512, 512), 31.3 nm
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "simulate_patches", "simulate_release"]

#: Where each public name lives; imported on first use, so that importing
#: ``biosr.simulate`` (or its light :mod:`~biosr.simulate.presets`) stays cheap.
_LAZY = {
    "PRESETS": "biosr.simulate.presets",
    "simulate_patches": "biosr.simulate.patches",
    "simulate_release": "biosr.simulate.release",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
