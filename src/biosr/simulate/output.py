"""The simulator's card: every physical parameter of the simulation."""

from __future__ import annotations

from typing import Any

from biosr import layout


def physics() -> dict[str, Any]:
    """Every physical parameter of the simulation, for the dataset card."""
    from biosr import optics
    from biosr.simulate import camera, imaging, specimen

    return {
        "pixel_size_wf_nm": layout.PIXEL_SIZE_WF_NM,
        "pixel_size_gt_nm": layout.PIXEL_SIZE_GT_NM,
        "emission_nm": layout.EMISSION_NM,
        "excitation_nm": layout.EXCITATION_NM,
        "na": layout.NA,
        "psf": "Airy (aberration-free circular pupil), pixel-integrated",
        "psf_fwhm_nm": round(optics.psf_fwhm_nm(), 3),
        "gt_psf": "Airy at half the emission wavelength (ideal 2x linear SIM)",
        "gt_psf_fwhm_nm": round(optics.psf_fwhm_nm(layout.EMISSION_NM / 2), 3),
        "sim_pattern_fraction_of_cutoff": imaging.PATTERN_FRACTION,
        "sim_pattern_period_nm": round(
            1.0 / (imaging.PATTERN_FRACTION * optics.cutoff_per_nm()), 3
        ),
        "sim_modulation": imaging.MODULATION,
        "sim_orientations_deg": list(imaging.ANGLE_STEPS_DEG),
        "sim_phases": len(imaging.PHASES),
        "photons_per_level": {str(k): round(v, 3) for k, v in layout.PHOTONS.items()},
        "photon_definition": "mean expected photons per raw frame over structure pixels "
        f"(noise-free WF above {camera.STRUCTURE_FRACTION} of its 99.5th percentile)",
        "camera_offset_counts": layout.CAMERA_OFFSET,
        "photons_per_count": layout.PHOTONS_PER_COUNT,
        "read_noise_counts": camera.READ_NOISE_COUNTS,
        "filament_width_nm": specimen.FILAMENT_WIDTH_NM,
        "filament_density_um_per_um2": [1e3 * d for d in specimen.DENSITY_PER_NM],
        "persistence_length_nm": list(specimen.PERSISTENCE_NM),
        "filament_length_nm": list(specimen.LENGTH_NM),
        "background_fraction": list(specimen.BACKGROUND_FRACTION),
    }
