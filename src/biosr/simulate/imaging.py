"""Imaging a specimen as BioSR's microscope does: raw SIM frames, widefield and the ideal target.

All images are computed on the ground-truth grid (31.3 nm) with FFTs, from the
specimen's label positions splatted onto that grid:

- the detection OTF is the microscope's measured one by default
  (:data:`OTF_KIND`, :func:`biosr.optics.otf`), the Airy model an option; it
  is multiplied by the filament's Gaussian cross-section (25 nm FWHM) and the
  bilinear splat kernel is divided out, so the result is the band-limited
  image of the continuous specimen;
- out of focus: the labels are sorted into :data:`DEPTH_SLICES` slices by
  height, and each slice's OTF carries the defocus factor of Stokseth's
  approximation (:func:`defocus_factor`), so filaments a few hundred nm off
  the focal plane add a soft haze;
- a raw frame is the specimen times the illumination ``1 + m cos(2 pi k.x + phi)``
  blurred by that OTF, then integrated over 2 x 2 grid pixels (the 62.6 nm
  camera pixel). Per orientation, ``blur(s * exp(2 pi i k.x))`` is summed over
  the slices in Fourier space and inverted once; the three phases follow as
  ``A0 + m Re(exp(i phi) B)``. The pattern has the real microscope's line
  spacing (:data:`PATTERN_PERIOD_NM`, 180 nm, beyond the detection cutoff, so
  no stripes show in a raw frame's spectrum) and orientations
  (:data:`ANGLE_START_RAD` plus 60 degree steps);
- the cytosolic background (:attr:`~biosr.simulate.specimen.Specimen.background`)
  is smooth, so its modulated part lies beyond the OTF: it adds the same
  blurred image to the 9 frames. Its level is set per cell so that the
  noise-free widefield image's haze ratio inside the cell,
  ``p20 / p99``, is the microscope's (:func:`haze_level`);
- widefield = the mean of the 9 frames, which is exactly ``A0``: the three
  phases' cosines sum to zero;
- the *ideal* ground truth = every label, in focus, blurred by the Airy shape
  at half the wavelength (ideal linear SIM), plus the background, at 31.3 nm.
  The default ground truth is a SIM reconstruction of simulated raw frames
  (:mod:`biosr.simulate.truth`), as BioSR's was.

The field is padded by :data:`PAD_NM` on each side before the FFT and cropped
after, so light does not wrap around the edges.

Written by hand: no library images a point specimen through a measured,
defocused OTF with SIM illumination; each step is an FFT product.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft
from scipy.special import j1

from biosr import layout, optics
from biosr.simulate.specimen import (
    BACKGROUND_PIXEL_NM,
    DEPTH_NM,
    FILAMENT_WIDTH_NM,
    Specimen,
    cell_image,
    render_points,
)

#: Detection OTF of the simulated microscope (one of :data:`biosr.optics.OTF_KINDS`).
OTF_KIND = "measured"
#: Line spacing of the illumination pattern, nm (the authors' GI-SIM setting for Microtubules).
PATTERN_PERIOD_NM = 180.0
#: Modulation depth of the illumination pattern.
MODULATION = 0.7
#: Angle of the first pattern orientation, radians (as estimated on real BioSR stacks).
ANGLE_START_RAD = 1.48
#: Pattern orientations: :data:`ANGLE_START_RAD` plus these steps, degrees.
ANGLE_STEPS_DEG = (0.0, 60.0, 120.0)
#: Pattern phases per orientation (plus a random offset per orientation), radians.
PHASES = (0.0, 2.0 * np.pi / 3.0, 4.0 * np.pi / 3.0)
#: Margin simulated around the field and cropped away (no FFT wrap-around), nm.
PAD_NM = 1000.0
#: Depth slices the filament volume (+-``DEPTH_NM``) is imaged in.
DEPTH_SLICES = 5
#: Range of the haze ratio (noise-free WF inside the cell: p20 / p99) drawn per cell (uniform).
HAZE_RATIO = (0.20, 0.26)


class Pattern(NamedTuple):
    """Illumination of a cell: 3 orientations (radians) with a phase offset each."""

    angles: np.ndarray
    phase_offsets: np.ndarray
    frequency_per_nm: float
    modulation: float


class CleanImages(NamedTuple):
    """Noise-free images of a field, in specimen units (label brightness per pixel).

    Attributes
    ----------
    wf : ndarray
        ``(n, n)`` widefield image (mean of the frames) on the 62.6 nm grid.
    gt : ndarray
        ``(2n, 2n)`` ideal SIM-resolution ground truth on the 31.3 nm grid
        (flux per pixel, so it sums to the WF's sum).
    frames : ndarray or None
        ``(9, n, n)`` raw SIM frames (orientation-major), or None if not asked.
    pattern : Pattern or None
        The illumination used for the frames.
    """

    wf: np.ndarray
    gt: np.ndarray
    frames: np.ndarray | None
    pattern: Pattern | None


def pad_pixels(pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM) -> int:
    """Margin in WF pixels simulated around a field (:data:`PAD_NM`)."""
    return int(np.ceil(PAD_NM / pixel_size_nm))


def padded_size(size: int) -> int:
    """Side in WF pixels of the padded field for an output of `size` (at least
    :data:`PAD_NM` each side, and twice it a fast FFT length)."""
    n = 2 * (size + 2 * pad_pixels())
    while True:
        n = scipy.fft.next_fast_len(n, real=True)
        if n % 2 == 0:
            return n // 2
        n += 1


def field_nm(size: int) -> float:
    """Side in nm of the padded field simulated for an output of `size` WF pixels."""
    return padded_size(size) * layout.PIXEL_SIZE_WF_NM


def random_pattern(
    rng: np.random.Generator,
    *,
    period_nm: float = PATTERN_PERIOD_NM,
    angle_start_rad: float = ANGLE_START_RAD,
    modulation: float = MODULATION,
) -> Pattern:
    """Pattern of one cell: the microscope's orientations and period, random phase offsets.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the 3 phase offsets.
    period_nm : float, optional
        Line spacing (default :data:`PATTERN_PERIOD_NM`).
    angle_start_rad : float, optional
        First orientation; the others follow by :data:`ANGLE_STEPS_DEG`.
    modulation : float, optional
        Modulation depth (default :data:`MODULATION`).
    """
    angles = angle_start_rad + np.deg2rad(np.asarray(ANGLE_STEPS_DEG))
    offsets = rng.uniform(0.0, 2.0 * np.pi, size=len(ANGLE_STEPS_DEG))
    return Pattern(angles, offsets, 1.0 / float(period_nm), float(modulation))


def defocus_factor(
    rho_per_nm: np.ndarray,
    depth_nm: float,
    *,
    wavelength_nm: float = layout.EMISSION_NM,
    na: float = layout.NA,
    index: float = layout.IMMERSION_INDEX,
) -> np.ndarray:
    """Defocus attenuation of the OTF at radial frequency `rho_per_nm` (Stokseth 1969).

    ``2 J1(a) / a`` with ``a = 4 pi (w / lambda) s (1 - s / 2)``, ``s`` the
    frequency in units of ``NA / lambda`` (2 at the cutoff) and
    ``w = |z| (n - sqrt(n^2 - NA^2))`` the defocus path difference at the
    pupil's edge. 1 in focus; applied to the measured OTF as to the Airy one.

    Examples
    --------
    >>> float(defocus_factor(np.array([0.002]), 0.0)[0])
    1.0
    """
    rho = np.asarray(rho_per_nm, dtype=np.float64)
    if depth_nm == 0:
        return np.ones_like(rho)
    s = np.clip(rho * wavelength_nm / na, 0.0, 2.0)
    w = abs(float(depth_nm)) * (index - np.sqrt(index**2 - na**2))
    a = 4.0 * np.pi * w / wavelength_nm * s * (1.0 - s / 2.0)
    out = np.ones_like(a)
    nz = a > 1e-12
    out[nz] = 2.0 * j1(a[nz]) / a[nz]
    return out


def transfer(
    shape: tuple[int, int],
    pixel_size_nm: float,
    *,
    kind: str = OTF_KIND,
    wavelength_nm: float = layout.EMISSION_NM,
    na: float = layout.NA,
    depth_nm: float = 0.0,
    real: bool = True,
) -> np.ndarray:
    """OTF (at `depth_nm` of defocus) x filament cross-section / bilinear-splat kernel.

    Parameters
    ----------
    shape : tuple of int
        FFT grid.
    pixel_size_nm : float
        Its pixel.
    kind : {'measured', 'airy'}, optional
        Detection OTF (:func:`biosr.optics.otf`); default :data:`OTF_KIND`.
    wavelength_nm, na : float, optional
        Of the Airy OTF (and the defocus factor).
    depth_nm : float, optional
        Defocus (:func:`defocus_factor`).
    real : bool, optional
        ``rfft2`` layout.
    """
    fy, fx = optics.frequency_grid(shape, pixel_size_nm, real=real)
    sigma = FILAMENT_WIDTH_NM / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    width = np.exp(-2.0 * np.pi**2 * sigma**2 * (fy**2 + fx**2))
    splat = np.sinc(fy * pixel_size_nm) ** 2 * np.sinc(fx * pixel_size_nm) ** 2
    h = optics.otf(shape, pixel_size_nm, kind=kind, wavelength_nm=wavelength_nm, na=na, real=real)
    if depth_nm:
        h = h * defocus_factor(np.hypot(fy, fx), depth_nm, wavelength_nm=wavelength_nm, na=na)
    return h * width / splat


def bin2(image: np.ndarray) -> np.ndarray:
    """Mean over 2 x 2 blocks of the last two axes (sides must be even)."""
    *lead, ny, nx = image.shape
    return image.reshape(*lead, ny // 2, 2, nx // 2, 2).mean(axis=(-3, -1))


def slice_depths(slices: int = DEPTH_SLICES, depth_nm: float = DEPTH_NM) -> np.ndarray:
    """Centres of `slices` equal slices of ``+-depth_nm`` (nm)."""
    edges = np.linspace(-depth_nm, depth_nm, slices + 1)
    return 0.5 * (edges[1:] + edges[:-1])


def specimen_slices(
    specimen: Specimen, grid: int, *, slices: int = DEPTH_SLICES
) -> list[tuple[float, np.ndarray]]:
    """The labels splatted on the padded 31.3 nm grid, one image per non-empty depth slice."""
    p = layout.PIXEL_SIZE_GT_NM
    centres = slice_depths(slices)
    which = np.abs(specimen.depths[:, None] - centres[None, :]).argmin(axis=1)
    out = []
    for i, z in enumerate(centres):
        sel = which == i
        if sel.any():
            image = render_points(specimen.points[sel], specimen.weights[sel], (grid, grid), p)
            out.append((float(z), image))
    return out


def background_image(specimen: Specimen, grid: int) -> np.ndarray:
    """The cytosolic background's relative brightness on the padded 31.3 nm grid (0 outside)."""
    from scipy.ndimage import map_coordinates

    p = layout.PIXEL_SIZE_GT_NM
    if specimen.background.size == 0:
        return np.zeros((grid, grid))
    coords = (np.arange(grid) + 0.5) * p / BACKGROUND_PIXEL_NM
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    smooth = map_coordinates(specimen.background, [yy, xx], order=1, mode="nearest")
    return smooth * cell_image(specimen.cell, (grid, grid), p)


def haze_level(filaments: np.ndarray, background: np.ndarray, inside: np.ndarray, haze: float):
    """Factor ``b`` so that ``filaments + b * background`` has ``p20 / p99 = haze`` inside the cell.

    Both images are noise-free widefield images; the ratio grows with ``b``,
    so it is found by bisection. Returns 0 when `haze` is 0 or the cell is empty.
    """
    if haze <= 0 or not inside.any() or not background[inside].any():
        return 0.0
    f, g = filaments[inside], background[inside]

    def ratio(b: float) -> float:
        lo, hi = np.percentile(f + b * g, (20.0, 99.0))
        return float(lo / hi) if hi > 0 else 1.0

    top = float(np.percentile(f, 99.0)) / max(float(g.mean()), 1e-300)
    lo, hi = 0.0, top
    while ratio(hi) < haze and hi < 1e6 * top:
        hi *= 4.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ratio(mid) < haze else (lo, mid)
    return 0.5 * (lo + hi)


def image_specimen(
    specimen: Specimen,
    size: int,
    *,
    frames: bool = False,
    pattern: Pattern | None = None,
    otf_kind: str = OTF_KIND,
    haze: float = float(np.mean(HAZE_RATIO)),
    slices: int = DEPTH_SLICES,
) -> CleanImages:
    """Noise-free WF, ideal GT and (optionally) raw SIM frames of a specimen.

    Parameters
    ----------
    specimen : Specimen
        Drawn on a field of side :func:`field_nm` ``(size)``.
    size : int
        Output side in WF pixels (GT: ``2 * size``).
    frames : bool, optional
        Also compute the 9 raw SIM frames (3 complex FFTs per depth slice).
    pattern : Pattern, optional
        Illumination; required when `frames` is True.
    otf_kind : {'measured', 'airy'}, optional
        Detection OTF (default :data:`OTF_KIND`).
    haze : float, optional
        Haze ratio of the noise-free WF inside the cell (:func:`haze_level`);
        0 for no cytosolic background.
    slices : int, optional
        Depth slices (:data:`DEPTH_SLICES`).

    Returns
    -------
    CleanImages
    """
    padded = padded_size(size)
    pad = (padded - size) // 2
    grid = 2 * padded
    if abs(specimen.field_nm - grid * layout.PIXEL_SIZE_GT_NM) > 1e-6 * grid:
        raise ValueError(f"specimen field {specimen.field_nm} nm does not match size {size}")
    if frames and pattern is None:
        raise ValueError("frames=True needs a pattern")
    p = layout.PIXEL_SIZE_GT_NM
    crop = slice(2 * pad, 2 * pad + 2 * size)
    layers = specimen_slices(specimen, grid, slices=slices)
    h_gt = transfer((grid, grid), p, kind="airy", wavelength_nm=layout.EMISSION_NM / 2.0)
    h_wf0 = transfer((grid, grid), p, kind=otf_kind)
    fy, fx = optics.frequency_grid((grid, grid), p, real=True)
    rho = np.hypot(fy, fx)
    a0 = np.zeros((grid, grid // 2 + 1), dtype=np.complex128)
    gt_spec = np.zeros_like(a0)
    for z, image in layers:
        spec = scipy.fft.rfft2(image)
        a0 += spec * (h_wf0 * defocus_factor(rho, z) if z else h_wf0)
        gt_spec += spec * h_gt
    fil_wf = bin2(scipy.fft.irfft2(a0, s=(grid, grid))[crop, crop])
    back = background_image(specimen, grid)
    back_spec = scipy.fft.rfft2(back)
    back_wf = bin2(scipy.fft.irfft2(back_spec * h_wf0, s=(grid, grid))[crop, crop])
    inside = cell_image(specimen.cell, (grid, grid), p)[crop, crop][::2, ::2]
    level = haze_level(fil_wf, back_wf, inside, haze)
    wf = fil_wf + level * back_wf
    gt = scipy.fft.irfft2(gt_spec + level * back_spec * h_gt, s=(grid, grid))[crop, crop] / 4.0
    raw = None
    if frames:
        assert pattern is not None
        fy_full, fx_full = optics.frequency_grid((grid, grid), p)
        rho_full = np.hypot(fy_full, fx_full)
        h_full0 = transfer((grid, grid), p, kind=otf_kind, real=False)
        h_full = {z: h_full0 * defocus_factor(rho_full, z) if z else h_full0 for z, _ in layers}
        coords = (np.arange(grid) + 0.5) * p
        raw = np.empty((len(pattern.angles) * len(PHASES), size, size))
        for a, (angle, offset) in enumerate(
            zip(pattern.angles, pattern.phase_offsets, strict=True)
        ):
            ky = pattern.frequency_per_nm * np.sin(angle)
            kx = pattern.frequency_per_nm * np.cos(angle)
            wave = (
                np.exp(2j * np.pi * ky * coords)[:, None] * np.exp(2j * np.pi * kx * coords)[None]
            )
            acc = np.zeros((grid, grid), dtype=np.complex128)
            for z, image in layers:
                acc += scipy.fft.fft2(image * wave) * h_full[z]
            b = bin2(scipy.fft.ifft2(acc)[crop, crop])
            for j, phase in enumerate(PHASES):
                rot = np.exp(1j * (phase + offset))
                raw[a * len(PHASES) + j] = wf + pattern.modulation * (rot * b).real
        np.maximum(raw, 0.0, out=raw)
    return CleanImages(np.maximum(wf, 0.0), np.maximum(gt, 0.0), raw, pattern)


def widefield(frames: np.ndarray) -> np.ndarray:
    """Widefield image of a raw SIM stack: the mean of its frames (the stripes cancel).

    Parameters
    ----------
    frames : ndarray
        ``(9, ny, nx)`` raw frames (counts or photons).

    Returns
    -------
    ndarray
        float64 ``(ny, nx)`` mean over the first axis.
    """
    return np.asarray(frames, dtype=np.float64).mean(axis=0)
