"""The simulator's card: every physical parameter of the simulation."""

from __future__ import annotations

from typing import Any

from biosr import layout

#: The producer name of simulated folders (:mod:`biosr.io.owner`).
PRODUCER = "simulate"


def physics(microscope: Any = None, *, structure: Any = None) -> dict[str, Any]:
    """Every physical parameter of the simulation, for the dataset card.

    `microscope` is the :class:`biosr.simulate.microscope.Microscope` simulated
    (default: BioSR's, :data:`~biosr.simulate.microscope.DEFAULT`); `structure`
    the :class:`biosr.layout.Structure` (default Microtubules), which sets the
    pixel sizes, orientations, phases and photon ladder. Nonlinear SIM adds
    its saturation, harmonics and GT support.
    """
    from biosr import optics
    from biosr.simulate import calibrate, imaging, specimen
    from biosr.simulate.microscope import DEFAULT

    mic = DEFAULT if microscope is None else microscope
    s = layout.get_structure(structure)
    out = {
        "pixel_size_wf_nm": s.pixel_size_wf_nm,
        "pixel_size_gt_nm": s.pixel_size_gt_nm,
        "emission_nm": layout.EMISSION_NM,
        "excitation_nm": layout.EXCITATION_NM,
        "na": layout.NA,
        "immersion_index": layout.IMMERSION_INDEX,
        "otf": mic.otf_kind,
        "psf": f"detection OTF {mic.otf_kind!r} (biosr.optics.otf), defocused per depth slice "
        "(Stokseth), filament cross-section, pixel-integrated",
        "psf_fwhm_nm": round(optics.psf_fwhm_nm(), 3),
        "depth_nm": [-specimen.DEPTH_NM, specimen.DEPTH_NM],
        "depth_slices": imaging.DEPTH_SLICES,
        "ideal_gt_psf": "Airy at half the emission wavelength (ideal 2x linear SIM), in focus",
        "sim_pattern_period_nm": mic.pattern_period_nm,
        "sim_modulation": mic.modulation,
        "sim_angle_start_rad": mic.angle_start_rad,
        "sim_orientations_deg": list(imaging.orientation_steps_deg(s.orientations)),
        "sim_phases": s.phases,
        "haze_ratio": list(mic.haze_ratio),
        "haze": "diffuse cytosolic background inside the cell (smooth log-normal field), its "
        "level set per cell so that the noise-free WF's p20 / p99 inside the cell is haze_ratio",
        "photons_per_level": {str(k): round(v, 3) for k, v in s.photons.items()},
        "photon_definition": "the authors': WF minus offset, clipped at 0, Gaussian blur "
        f"({calibrate.PHOTON_BLUR_SIZE} x {calibrate.PHOTON_BLUR_SIZE}, sigma "
        f"{calibrate.PHOTON_BLUR_SIGMA}), mean over the pixels above "
        f"{calibrate.PHOTON_MASK_FRACTION} of its maximum, in photons per raw frame",
        "camera_offset_counts": mic.offset,
        "photons_per_count": mic.photons_per_count,
        "read_noise_counts": mic.read_noise,
        "calibration": mic.source,
        "filament_width_nm": specimen.FILAMENT_WIDTH_NM,
        "filament_density_um_per_um2": [1e3 * d for d in specimen.DENSITY_PER_NM],
        "persistence_length_nm": list(specimen.PERSISTENCE_NM),
        "filament_length_nm": list(specimen.LENGTH_NM),
        "cell_radius_fraction": list(specimen.CELL_RADIUS),
    }
    if mic.saturation > 0:
        coefficients = imaging.harmonics(mic.modulation, mic.saturation)
        out["sim_saturation"] = mic.saturation
        out["sim_illumination"] = "1 - exp(-s (1 + m cos(2 pi k.x + phi)) / 2), s saturation"
        out["sim_harmonics"] = [round(float(c), 6) for c in coefficients]
    if imaging.is_nonlinear(s):
        wavelength = imaging.gt_wavelength_nm(s, period_nm=mic.pattern_period_nm)
        out["ideal_gt_psf"] = (
            f"Airy band-limited to the nonlinear SIM support, WF cutoff + {s.gt_scale - 1} x "
            f"the pattern frequency ({2e3 * layout.NA / wavelength:.2f} cycles/um), in focus"
        )
    return out


def truth_card(gt: str, *, structure: Any = None) -> dict[str, Any]:
    """The card's record of the ground truth of kind `gt` (``'sim'`` or ``'ideal'``).

    Nonlinear SIM has no reconstruction in biosr: its GT is always the ideal
    image band-limited to the nonlinear support (``gt_kind: ideal``), and
    ``gt_requested`` keeps the kind asked for.
    """
    from biosr.simulate import imaging, truth

    s = layout.get_structure(structure)
    if imaging.is_nonlinear(s):
        raw = f"the mean of {truth.GT_RAW_SETS} raw sets" if gt == "sim" else "one raw set"
        how = (
            "ideal (nonlinear SIM; biosr has no nonlinear SIM reconstruction): every label in "
            f"focus, band-limited to the nonlinear SIM support (WF cutoff + {s.gt_scale - 1} x "
            f"the pattern frequency) at {s.gt_scale}x sampling, no reconstruction texture; "
            f"raw GT {raw} of {s.frames} frames at {truth.RAW_GT_PHOTONS:g} photons"
        )
        return {"gt_kind": "ideal", "gt_requested": gt, "gt_made": how}
    if gt == "ideal":
        how = "ideal: every label in focus, Airy PSF at half the emission wavelength"
    else:
        how = (
            f"sim: mean of {truth.GT_RAW_SETS} Wiener SIM reconstructions "
            "(biosr.reconstruct.wiener.reconstruct_sim, the simulator's illumination) of "
            f"{truth.GT_RAW_SETS} raw sets at {truth.RAW_GT_PHOTONS:g} photons"
        )
    return {"gt_kind": gt, "gt_made": how}
