"""The ground truth made as BioSR made it: 3 high-SNR raw sets, each SIM-reconstructed, averaged.

BioSR's ``SIM_gt.mrc`` is the mean of 3 Wiener SIM reconstructions of 3 raw
sets at more than 1,200 photons, and ``RawSIMData_gt.mrc`` the mean of those
raw sets (DL-SR issue #17). :func:`sim_truth` does the same with
:func:`biosr.reconstruct.wiener.reconstruct_sim` (the measured OTF, the
authors' Wiener settings), so the simulated target carries a real
reconstruction's texture: residual honeycomb, ringing beside bright
filaments, noise and haze in the background. The reconstruction is given
the illumination the simulator used (it knows it exactly), so no estimate can
fail on a sparse cell, and weights the side bands with the authors' fixed
modulation (0.5). The noise-free ideal target stays available
(:data:`GT_KINDS`, ``'ideal'``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from biosr import layout
from biosr.simulate import camera, imaging
from biosr.simulate.microscope import DEFAULT, Microscope
from biosr.simulate.presets import GT_KIND, GT_KINDS

__all__ = [
    "GT_KIND",
    "GT_KINDS",
    "GT_RAW_SETS",
    "RAW_GT_PHOTONS",
    "Truth",
    "cell_truth",
    "sim_truth",
]

#: Raw sets reconstructed and averaged for the ``sim`` ground truth.
GT_RAW_SETS = 3
#: Photons per frame (the authors' definition) of each of those raw sets.
RAW_GT_PHOTONS = 1500.0


class Truth(NamedTuple):
    """A cell's ground truth and its high-SNR raw stack.

    Attributes
    ----------
    gt : ndarray
        ``(2n, 2n)`` float64 target on the 31.3 nm grid.
    raw_gt : ndarray or None
        ``(9, n, n)`` float64 mean of the raw sets (counts); None for the ideal kind.
    """

    gt: np.ndarray
    raw_gt: np.ndarray | None


def sim_parameters(pattern: imaging.Pattern, size: int):
    """The simulator's illumination as :class:`biosr.reconstruct.parameters.SimParameters`.

    The simulator's positions run from the padded field's corner; the
    reconstruction's from the output frame's centre (raw pixel
    ``((N - 1) / 2, (N - 1) / 2)``), so each phase gains ``2 pi k . c`` with
    ``c`` that point.
    """
    from biosr.reconstruct.parameters import SimParameters

    pad = (imaging.padded_size(size) - size) // 2
    c = (pad + size / 2.0) * layout.PIXEL_SIZE_WF_NM
    k = pattern.frequency_per_nm
    waves, phases = [], []
    for angle, offset in zip(pattern.angles, pattern.phase_offsets, strict=True):
        ky, kx = k * np.sin(angle), k * np.cos(angle)
        shift = offset + 2.0 * np.pi * (ky + kx) * c
        waves.append((float(ky), float(kx)))
        phases.append(tuple(float(np.rad2deg(p + shift)) % 360.0 for p in imaging.PHASES))
    mods = (pattern.modulation,) * len(waves)
    return SimParameters(tuple(waves), tuple(phases), mods, layout.PIXEL_SIZE_WF_NM)


def sim_truth(
    frames: np.ndarray,
    clean_wf: np.ndarray,
    pattern: imaging.Pattern,
    rngs: list[np.random.Generator],
    *,
    photons: float = RAW_GT_PHOTONS,
    microscope: Microscope = DEFAULT,
) -> Truth:
    """Reconstruct each of ``len(rngs)`` noisy raw sets at `photons` and average them.

    Parameters
    ----------
    frames : ndarray
        ``(9, n, n)`` noise-free raw frames (:func:`biosr.simulate.imaging.image_specimen`).
    clean_wf : ndarray
        Their noise-free widefield image (sets the photon scale).
    pattern : imaging.Pattern
        The illumination of `frames`.
    rngs : list of numpy.random.Generator
        One per raw set (default count :data:`GT_RAW_SETS`).
    photons : float, optional
        Photons per frame of each raw set, by the authors' definition
        (default :data:`RAW_GT_PHOTONS`).
    microscope : Microscope, optional
        Camera and OTF kind.

    Returns
    -------
    Truth
        The mean reconstruction (offset-free counts on the 31.3 nm grid) and
        the mean raw stack.
    """
    from biosr.reconstruct.wiener import BIOSR_MODULATION, reconstruct_sim

    size = frames.shape[-1]
    scale = camera.photon_scale(clean_wf, microscope.true_photons(photons))
    params = sim_parameters(pattern, size)
    gts, raws = [], []
    for rng in rngs:
        counts = camera.expose(frames * scale, rng, **microscope.camera())
        image, _ = reconstruct_sim(
            counts.astype(np.float64) - microscope.offset,
            params,
            pixel_size_nm=layout.PIXEL_SIZE_WF_NM,
            otf_kind=microscope.otf_kind,
            modulation=BIOSR_MODULATION,
        )
        gts.append(np.asarray(image, dtype=np.float64))
        raws.append(counts.astype(np.float64))
    return Truth(np.mean(gts, axis=0), np.mean(raws, axis=0))


def cell_truth(
    clean: imaging.CleanImages,
    seed: np.random.SeedSequence,
    *,
    kind: str = GT_KIND,
    microscope: Microscope = DEFAULT,
) -> Truth:
    """A simulated cell's ground truth of `kind` (:data:`GT_KINDS`).

    Parameters
    ----------
    clean : imaging.CleanImages
        The cell's noise-free images (with frames for the ``sim`` kind).
    seed : numpy.random.SeedSequence
        The cell's truth seed (:data:`biosr.simulate.field.TRUTH`); each raw
        set draws from its own child.
    kind : {'sim', 'ideal'}, optional
        ``sim`` (default): :func:`sim_truth` of :data:`GT_RAW_SETS` raw sets;
        ``ideal``: the noise-free ideal image in photons at :data:`RAW_GT_PHOTONS`.
    microscope : Microscope, optional
        Camera and OTF.
    """
    if kind not in GT_KINDS:
        raise ValueError(f"unknown ground truth {kind!r}; choose one of {', '.join(GT_KINDS)}")
    if kind == "ideal":
        scale = camera.photon_scale(clean.wf, microscope.true_photons(RAW_GT_PHOTONS))
        return Truth(clean.gt * scale, None)
    if clean.frames is None or clean.pattern is None:
        raise ValueError("the 'sim' ground truth needs the raw frames")
    rngs = [np.random.default_rng(s) for s in seed.spawn(GT_RAW_SETS)]
    return sim_truth(clean.frames, clean.wf, clean.pattern, rngs, microscope=microscope)
