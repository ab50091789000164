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

Every linear structure (CCPs, ER, Microtubules, F-actin) is reconstructed the
same way with its own settings (line spacing, the notch: 0.4 for CCPs).
**Nonlinear SIM** (F-actin_Nonlinear) has no reconstruction in biosr: its GT
is, for either kind, the ideal image band-limited to the nonlinear SIM support
(widefield cutoff + 2 x the pattern frequency, about 3.2 x the widefield
cutoff; :func:`biosr.simulate.imaging.gt_wavelength_nm`) at 3x sampling, with
no reconstruction texture; the ``sim`` kind still makes the raw GT stack as the
mean of 3 raw sets of 25 frames (:func:`nonlinear_truth`), and the card says
``gt_kind: ideal`` (:func:`biosr.simulate.output.truth_card`).
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
    "nonlinear_truth",
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
        ``(2n, 2n)`` float64 target on the 31.3 nm grid (``gt_scale * n`` on
        the structure's grid).
    raw_gt : ndarray or None
        ``(9, n, n)`` (25 for nonlinear SIM) float64 mean of the raw sets
        (counts); None for the ideal kind.
    """

    gt: np.ndarray
    raw_gt: np.ndarray | None


def sim_parameters(
    pattern: imaging.Pattern, size: int, *, structure: str | layout.Structure | None = None
):
    """The simulator's illumination as :class:`biosr.reconstruct.parameters.SimParameters`.

    The simulator's positions run from the padded field's corner; the
    reconstruction's from the output frame's centre (raw pixel
    ``((N - 1) / 2, (N - 1) / 2)``), so each phase gains ``2 pi k . c`` with
    ``c`` that point. `structure` sets the grid (default Microtubules).
    """
    from biosr.reconstruct.parameters import SimParameters

    s = layout.get_structure(structure)
    pad = (imaging.structure_padded_size(size, s) - size) // 2
    c = (pad + size / 2.0) * s.pixel_size_wf_nm
    k = pattern.frequency_per_nm
    waves, phases = [], []
    for angle, offset in zip(pattern.angles, pattern.phase_offsets, strict=True):
        ky, kx = k * np.sin(angle), k * np.cos(angle)
        shift = offset + 2.0 * np.pi * (ky + kx) * c
        waves.append((float(ky), float(kx)))
        phases.append(tuple(float(np.rad2deg(p + shift)) % 360.0 for p in pattern.phases))
    mods = (pattern.modulation,) * len(waves)
    return SimParameters(tuple(waves), tuple(phases), mods, s.pixel_size_wf_nm)


def sim_truth(
    frames: np.ndarray,
    clean_wf: np.ndarray,
    pattern: imaging.Pattern,
    rngs: list[np.random.Generator],
    *,
    photons: float = RAW_GT_PHOTONS,
    microscope: Microscope = DEFAULT,
    structure: str | layout.Structure | None = None,
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
    structure : str or Structure, optional
        A linear SIM structure (default Microtubules): its grid and notch
        (:attr:`~biosr.layout.Structure.notch`).

    Returns
    -------
    Truth
        The mean reconstruction (offset-free counts on the 31.3 nm grid) and
        the mean raw stack.
    """
    from biosr.reconstruct.wiener import BIOSR_MODULATION, reconstruct_sim

    s = layout.get_structure(structure)
    size = frames.shape[-1]
    scale = camera.photon_scale(clean_wf, microscope.true_photons(photons))
    params = sim_parameters(pattern, size, structure=s)
    gts, raws = [], []
    for rng in rngs:
        counts = camera.expose(frames * scale, rng, **microscope.camera())
        image, _ = reconstruct_sim(
            counts.astype(np.float64) - microscope.offset,
            params,
            pixel_size_nm=s.pixel_size_wf_nm,
            otf_kind=microscope.otf_kind,
            modulation=BIOSR_MODULATION,
            notch_attenuation=s.notch,
        )
        gts.append(np.asarray(image, dtype=np.float64))
        raws.append(counts.astype(np.float64))
    return Truth(np.mean(gts, axis=0), np.mean(raws, axis=0))


def nonlinear_truth(
    clean: imaging.CleanImages,
    rngs: list[np.random.Generator],
    *,
    photons: float = RAW_GT_PHOTONS,
    microscope: Microscope = DEFAULT,
) -> Truth:
    """The ``sim`` truth of a nonlinear SIM cell: the ideal GT, and the mean of raw sets.

    biosr has no nonlinear SIM reconstruction, so the target is the ideal
    image band-limited to the nonlinear support at 3x
    (:func:`biosr.simulate.imaging.image_specimen`), in photons at `photons`,
    without a reconstruction's texture; the raw GT stack is the mean of
    ``len(rngs)`` exposures of the 25 noise-free frames at `photons`, as
    BioSR's ``RawSIMData_gt``.
    """
    if clean.frames is None:
        raise ValueError("the 'sim' ground truth needs the raw frames")
    scale = camera.photon_scale(clean.wf, microscope.true_photons(photons))
    raws = [
        camera.expose(clean.frames * scale, rng, **microscope.camera()).astype(np.float64)
        for rng in rngs
    ]
    return Truth(clean.gt * scale, np.mean(raws, axis=0))


def cell_truth(
    clean: imaging.CleanImages,
    seed: np.random.SeedSequence,
    *,
    kind: str = GT_KIND,
    microscope: Microscope = DEFAULT,
    structure: str | layout.Structure | None = None,
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
        ``sim`` (default): :func:`sim_truth` of :data:`GT_RAW_SETS` raw sets
        (for nonlinear SIM :func:`nonlinear_truth`: the ideal image, the raw
        sets' mean); ``ideal``: the noise-free ideal image in photons at
        :data:`RAW_GT_PHOTONS`.
    microscope : Microscope, optional
        Camera and OTF.
    structure : str or Structure, optional
        The cell's structure (default Microtubules).
    """
    if kind not in GT_KINDS:
        raise ValueError(f"unknown ground truth {kind!r}; choose one of {', '.join(GT_KINDS)}")
    if kind == "ideal":
        scale = camera.photon_scale(clean.wf, microscope.true_photons(RAW_GT_PHOTONS))
        return Truth(clean.gt * scale, None)
    if clean.frames is None or clean.pattern is None:
        raise ValueError("the 'sim' ground truth needs the raw frames")
    rngs = [np.random.default_rng(s) for s in seed.spawn(GT_RAW_SETS)]
    if imaging.is_nonlinear(structure):
        return nonlinear_truth(clean, rngs, microscope=microscope)
    return sim_truth(
        clean.frames, clean.wf, clean.pattern, rngs, microscope=microscope, structure=structure
    )
