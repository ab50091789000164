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

Every structure of :data:`biosr.layout.STRUCTURES` is imaged the same way on
its own grid: ``pixel_size_wf_nm / gt_scale`` (31.3 nm for the 2x structures,
60.4 / 3 nm for F-actin_Nonlinear), with its orientations and phases (3 x 3,
or 5 x 5). **Nonlinear SIM** (a :class:`Pattern` with ``saturation > 0``) has
a saturated excitation, the effective illumination

``I(x) = 1 - exp(-s (1 + m cos(2 pi k.x + phi)) / 2)``

(``s`` the saturation, :data:`SATURATION`; ``m`` the modulation), whose
Fourier series ``sum_n c_n exp(i n (2 pi k.x + phi))`` has the coefficients
``c_0 = 1 - e^(-s/2) I_0(s m / 2)`` and ``c_n = (-1)^(n+1) e^(-s/2) I_n(s m / 2)``
(modified Bessel functions; :func:`harmonics`). A raw frame is
``A0 + sum_n 2 (c_n / c_0) Re(exp(i n phi) B_n)`` with
``B_n = blur(s exp(2 pi i n k.x))``: the harmonics ``n = 2, 3`` carry the
specimen's frequencies up to ``fc + 2 k`` and beyond into the frames, as in a
real saturated (or photoswitching) nonlinear SIM. Its ideal GT is band-limited
to that support, ``fc + (gt_scale - 1) k`` (:func:`gt_wavelength_nm`), about
3.2 times the widefield cutoff, and sampled at 3x; no nonlinear SIM
reconstruction exists in biosr, so the nonlinear GT is always this ideal
image (:mod:`biosr.simulate.truth`).

Written by hand: no library images a point specimen through a measured,
defocused OTF with SIM illumination; each step is an FFT product.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft
from scipy.special import ive, j1

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
#: Saturation of the nonlinear SIM excitation: the pattern's peak over the saturation
#: intensity, ``s`` of ``1 - exp(-s (1 + m cos) / 2)`` (an assumption: strong enough that the
#: 2nd harmonic is about a third of the 1st, as nonlinear SIM needs to reach 3x).
SATURATION = 4.0
#: Harmonics of a saturated pattern are kept while ``|c_n / c_0|`` is at least this.
HARMONIC_FLOOR = 0.005


class Pattern(NamedTuple):
    """Illumination of a cell: orientations (radians) with a phase offset each.

    Attributes
    ----------
    angles, phase_offsets : ndarray
        One per orientation (3, or 5 for nonlinear SIM).
    frequency_per_nm : float
        Pattern frequency ``k`` (1 / line spacing).
    modulation : float
        Modulation depth ``m``.
    phases : tuple of float
        Phase steps of each orientation (:func:`phase_steps`).
    saturation : float
        0 for linear SIM (``1 + m cos``); above, the saturated excitation of
        :func:`harmonics` (nonlinear SIM).
    """

    angles: np.ndarray
    phase_offsets: np.ndarray
    frequency_per_nm: float
    modulation: float
    phases: tuple[float, ...] = PHASES
    saturation: float = 0.0


class CleanImages(NamedTuple):
    """Noise-free images of a field, in specimen units (label brightness per pixel).

    Attributes
    ----------
    wf : ndarray
        ``(n, n)`` widefield image (mean of the frames) on the raw grid (62.6 nm).
    gt : ndarray
        ``(g n, g n)`` ideal SIM-resolution ground truth on the fine grid
        (``g`` the structure's ``gt_scale``: 31.3 nm for 2x) as flux per
        pixel, so it sums to the WF's sum.
    frames : ndarray or None
        ``(9, n, n)`` raw SIM frames (25 for nonlinear SIM; orientation-major),
        or None if not asked.
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


def padded_size(
    size: int, *, scale: int = 2, pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM
) -> int:
    """Side in WF pixels of the padded field for an output of `size` (at least
    :data:`PAD_NM` each side, and `scale` times it a fast FFT length)."""
    n = scale * (size + 2 * pad_pixels(pixel_size_nm))
    while True:
        n = scipy.fft.next_fast_len(n, real=True)
        if n % scale == 0:
            return n // scale
        n += 1


def structure_padded_size(size: int, structure: str | layout.Structure | None = None) -> int:
    """:func:`padded_size` on a structure's grid (its ``gt_scale`` and raw pixel)."""
    s = layout.get_structure(structure)
    return padded_size(size, scale=s.gt_scale, pixel_size_nm=s.pixel_size_wf_nm)


def field_nm(size: int, structure: str | layout.Structure | None = None) -> float:
    """Side in nm of the padded field simulated for an output of `size` WF pixels."""
    s = layout.get_structure(structure)
    return structure_padded_size(size, s) * s.pixel_size_wf_nm


def is_nonlinear(structure: str | layout.Structure | None = None) -> bool:
    """True for a structure imaged by nonlinear SIM: a GT beyond 2x needs a saturated pattern."""
    return layout.get_structure(structure).gt_scale > 2


def orientation_steps_deg(n: int) -> tuple[float, ...]:
    """`n` orientations evenly over 180 degrees (``(0, 60, 120)`` for 3, 36 degree steps for 5)."""
    return tuple(180.0 * j / n for j in range(n))


def phase_steps(n: int) -> tuple[float, ...]:
    """`n` phase steps evenly over a period, radians (:data:`PHASES` for 3).

    Examples
    --------
    >>> phase_steps(3) == PHASES
    True
    """
    return tuple(2.0 * np.pi * j / n for j in range(n))


def harmonics(
    modulation: float, saturation: float = 0.0, *, floor: float = HARMONIC_FLOOR
) -> np.ndarray:
    """Fourier coefficients ``c_n / c_0`` (``n = 0, 1, ...``) of the effective illumination.

    Linear (`saturation` 0): ``1 + m cos`` gives ``[1, m / 2]``. Saturated:
    ``1 - exp(-s (1 + m cos(t)) / 2)`` with ``e^(z cos t) = sum_n I_n(z) e^(i n t)``
    gives ``c_0 = 1 - e^(-s/2) I_0(s m / 2)`` and
    ``c_n = (-1)^(n+1) e^(-s/2) I_n(s m / 2)``; they are kept while
    ``|c_n / c_0| >= floor``.

    Examples
    --------
    >>> harmonics(0.7).tolist()
    [1.0, 0.35]
    >>> [round(float(c), 3) for c in harmonics(0.7, 4.0)]
    [1.0, 0.152, -0.049, 0.011]
    """
    if saturation <= 0:
        return np.array([1.0, modulation / 2.0])
    z = saturation * modulation / 2.0
    scale = np.exp(z - saturation / 2.0)  # e^(-s/2) I_n(z) = scale * ive(n, z)
    c0 = 1.0 - scale * float(ive(0, z))
    out = [1.0]
    for n in range(1, 64):
        c = (-1.0) ** (n + 1) * scale * float(ive(n, z)) / c0
        if abs(c) < floor:
            break
        out.append(c)
    return np.asarray(out)


def random_pattern(
    rng: np.random.Generator,
    *,
    period_nm: float = PATTERN_PERIOD_NM,
    angle_start_rad: float = ANGLE_START_RAD,
    modulation: float = MODULATION,
    orientations: int = len(ANGLE_STEPS_DEG),
    phases: int = len(PHASES),
    saturation: float = 0.0,
) -> Pattern:
    """Pattern of one cell: the microscope's orientations and period, random phase offsets.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws one phase offset per orientation.
    period_nm : float, optional
        Line spacing (default :data:`PATTERN_PERIOD_NM`).
    angle_start_rad : float, optional
        First orientation; the others follow by :func:`orientation_steps_deg`
        (:data:`ANGLE_STEPS_DEG` for 3).
    modulation : float, optional
        Modulation depth (default :data:`MODULATION`).
    orientations, phases : int, optional
        Per stack (3 x 3; a structure's :attr:`~biosr.layout.Structure.orientations`).
    saturation : float, optional
        0 (default): linear SIM; else nonlinear (:func:`harmonics`, :data:`SATURATION`).
    """
    angles = angle_start_rad + np.deg2rad(np.asarray(orientation_steps_deg(orientations)))
    offsets = rng.uniform(0.0, 2.0 * np.pi, size=orientations)
    return Pattern(
        angles,
        offsets,
        1.0 / float(period_nm),
        float(modulation),
        phase_steps(phases),
        float(saturation),
    )


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
    return bin_by(image, 2)


def bin_by(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over `factor` x `factor` blocks of the last two axes (sides divisible by it)."""
    *lead, ny, nx = image.shape
    return image.reshape(*lead, ny // factor, factor, nx // factor, factor).mean(axis=(-3, -1))


def slice_depths(slices: int = DEPTH_SLICES, depth_nm: float = DEPTH_NM) -> np.ndarray:
    """Centres of `slices` equal slices of ``+-depth_nm`` (nm)."""
    edges = np.linspace(-depth_nm, depth_nm, slices + 1)
    return 0.5 * (edges[1:] + edges[:-1])


def specimen_slices(
    specimen: Specimen,
    grid: int,
    *,
    slices: int = DEPTH_SLICES,
    pixel_size_nm: float = layout.PIXEL_SIZE_GT_NM,
) -> list[tuple[float, np.ndarray]]:
    """The labels splatted on the padded fine grid (31.3 nm), one image per non-empty slice."""
    p = pixel_size_nm
    centres = slice_depths(slices)
    which = np.abs(specimen.depths[:, None] - centres[None, :]).argmin(axis=1)
    out = []
    for i, z in enumerate(centres):
        sel = which == i
        if sel.any():
            image = render_points(specimen.points[sel], specimen.weights[sel], (grid, grid), p)
            out.append((float(z), image))
    return out


def background_image(
    specimen: Specimen, grid: int, *, pixel_size_nm: float = layout.PIXEL_SIZE_GT_NM
) -> np.ndarray:
    """The cytosolic background's relative brightness on the padded fine grid (0 outside)."""
    from scipy.ndimage import map_coordinates

    p = pixel_size_nm
    if specimen.background.size == 0:
        return np.zeros((grid, grid))
    coords = (np.arange(grid) + 0.5) * p / BACKGROUND_PIXEL_NM
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    smooth = map_coordinates(specimen.background, [yy, xx], order=1, mode="nearest")
    return smooth * cell_image(specimen.cell, (grid, grid), p)


def gt_wavelength_nm(
    structure: str | layout.Structure | None = None, *, period_nm: float = PATTERN_PERIOD_NM
) -> float:
    """Wavelength of the Airy OTF of the ideal GT (its cutoff is ``2 NA / wavelength``).

    A 2x structure (linear SIM): half the emission wavelength, the ideal 2x
    SIM. A structure of ``gt_scale`` g > 2 (nonlinear SIM): the support of a
    nonlinear reconstruction that separates the harmonics up to ``g - 1``,
    ``fc + (g - 1) / period_nm`` with ``fc = 2 NA / emission`` the widefield
    cutoff: for F-actin_Nonlinear at 180 nm, 16.1 cycles/um, 3.24 fc.

    Examples
    --------
    >>> gt_wavelength_nm() == layout.EMISSION_NM / 2
    True
    >>> round(gt_wavelength_nm("F-actin_Nonlinear", period_nm=180.0), 1)
    161.9
    """
    s = layout.get_structure(structure)
    if s.gt_scale <= 2:
        return layout.EMISSION_NM / 2.0
    cutoff = 2.0 * layout.NA / layout.EMISSION_NM + (s.gt_scale - 1) / float(period_nm)
    return 2.0 * layout.NA / cutoff


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
    structure: str | layout.Structure | None = None,
    period_nm: float | None = None,
) -> CleanImages:
    """Noise-free WF, ideal GT and (optionally) raw SIM frames of a specimen.

    Parameters
    ----------
    specimen : Specimen
        Drawn on a field of side :func:`field_nm` ``(size, structure)``.
    size : int
        Output side in WF pixels (GT: ``gt_scale * size``).
    frames : bool, optional
        Also compute the raw SIM frames (per orientation, one complex FFT per
        depth slice and harmonic of the pattern).
    pattern : Pattern, optional
        Illumination; required when `frames` is True. Its orientations and
        phases make the stack (3 x 3, or 5 x 5); a ``saturation`` above 0
        adds the harmonics of :func:`harmonics` (nonlinear SIM).
    otf_kind : {'measured', 'airy'}, optional
        Detection OTF (default :data:`OTF_KIND`).
    haze : float, optional
        Haze ratio of the noise-free WF inside the cell (:func:`haze_level`);
        0 for no cytosolic background.
    slices : int, optional
        Depth slices (:data:`DEPTH_SLICES`).
    structure : str or Structure, optional
        Sets the grid: raw pixel ``pixel_size_wf_nm``, computed and GT at
        ``pixel_size_wf_nm / gt_scale`` (default Microtubules: 62.6 / 31.3 nm),
        and the GT's support (:func:`gt_wavelength_nm`).
    period_nm : float, optional
        Line spacing the nonlinear GT's support is computed for when no
        `pattern` is given (default: the structure's
        :attr:`~biosr.layout.Structure.line_spacing_nm`); unused for 2x structures.

    Returns
    -------
    CleanImages
        ``gt`` holds flux per GT pixel (it sums to the WF's sum).
    """
    s = layout.get_structure(structure)
    scale = s.gt_scale
    padded = padded_size(size, scale=scale, pixel_size_nm=s.pixel_size_wf_nm)
    pad = (padded - size) // 2
    grid = scale * padded
    p = s.pixel_size_gt_nm
    if abs(specimen.field_nm - grid * p) > 1e-6 * grid:
        raise ValueError(f"specimen field {specimen.field_nm} nm does not match size {size}")
    if frames and pattern is None:
        raise ValueError("frames=True needs a pattern")
    if pattern is not None:
        period_nm = 1.0 / pattern.frequency_per_nm
    elif period_nm is None:
        period_nm = s.line_spacing_nm
    crop = slice(scale * pad, scale * pad + scale * size)
    layers = specimen_slices(specimen, grid, slices=slices, pixel_size_nm=p)
    gt_wavelength = gt_wavelength_nm(s, period_nm=period_nm)
    h_gt = transfer((grid, grid), p, kind="airy", wavelength_nm=gt_wavelength)
    h_wf0 = transfer((grid, grid), p, kind=otf_kind)
    fy, fx = optics.frequency_grid((grid, grid), p, real=True)
    rho = np.hypot(fy, fx)
    a0 = np.zeros((grid, grid // 2 + 1), dtype=np.complex128)
    gt_spec = np.zeros_like(a0)
    for z, image in layers:
        spec = scipy.fft.rfft2(image)
        a0 += spec * (h_wf0 * defocus_factor(rho, z) if z else h_wf0)
        gt_spec += spec * h_gt
    fil_wf = bin_by(scipy.fft.irfft2(a0, s=(grid, grid))[crop, crop], scale)
    back = background_image(specimen, grid, pixel_size_nm=p)
    back_spec = scipy.fft.rfft2(back)
    back_wf = bin_by(scipy.fft.irfft2(back_spec * h_wf0, s=(grid, grid))[crop, crop], scale)
    centre = (scale - 1) // 2  # the fine pixel at (or before) the raw pixel's centre
    inside = cell_image(specimen.cell, (grid, grid), p)[crop, crop][centre::scale, centre::scale]
    level = haze_level(fil_wf, back_wf, inside, haze)
    wf = fil_wf + level * back_wf
    gt_spec = gt_spec + level * back_spec * h_gt
    gt = scipy.fft.irfft2(gt_spec, s=(grid, grid))[crop, crop] / float(scale * scale)
    raw = None
    if frames:
        assert pattern is not None
        raw = _raw_frames(pattern, layers, wf, grid, p, crop, scale, size, otf_kind)
    return CleanImages(np.maximum(wf, 0.0), np.maximum(gt, 0.0), raw, pattern)


def _raw_frames(
    pattern: Pattern,
    layers: list[tuple[float, np.ndarray]],
    wf: np.ndarray,
    grid: int,
    p: float,
    crop: slice,
    scale: int,
    size: int,
    otf_kind: str,
) -> np.ndarray:
    """The raw frames ``wf + sum_n 2 c_n Re(exp(i n phi) B_n)``, orientation-major, clipped at 0.

    ``B_n`` = blur(specimen x ``exp(2 pi i n k.x)``), summed over the depth
    slices in Fourier space; the smooth background's modulated parts lie
    beyond the OTF, so it adds to ``wf`` only.
    """
    fy_full, fx_full = optics.frequency_grid((grid, grid), p)
    rho_full = np.hypot(fy_full, fx_full)
    h_full0 = transfer((grid, grid), p, kind=otf_kind, real=False)
    h_full = {z: h_full0 * defocus_factor(rho_full, z) if z else h_full0 for z, _ in layers}
    coords = (np.arange(grid) + 0.5) * p
    coefficients = harmonics(pattern.modulation, pattern.saturation)
    amplitudes = [(n, 2.0 * float(c)) for n, c in enumerate(coefficients) if n > 0]
    phases = pattern.phases
    raw = np.empty((len(pattern.angles) * len(phases), size, size))
    for a, (angle, offset) in enumerate(zip(pattern.angles, pattern.phase_offsets, strict=True)):
        ky = pattern.frequency_per_nm * np.sin(angle)
        kx = pattern.frequency_per_nm * np.cos(angle)
        bands = []
        for n, _ in amplitudes:
            wave = (
                np.exp(2j * np.pi * (n * ky) * coords)[:, None]
                * np.exp(2j * np.pi * (n * kx) * coords)[None]
            )
            acc = np.zeros((grid, grid), dtype=np.complex128)
            for z, image in layers:
                acc += scipy.fft.fft2(image * wave) * h_full[z]
            bands.append(bin_by(scipy.fft.ifft2(acc)[crop, crop], scale))
        for j, phase in enumerate(phases):
            frame = wf
            for (n, amplitude), b in zip(amplitudes, bands, strict=True):
                rot = np.exp(1j * (n * (phase + offset)))
                frame = frame + amplitude * (rot * b).real
            raw[a * len(phases) + j] = frame
    np.maximum(raw, 0.0, out=raw)
    return raw


def widefield(frames: np.ndarray) -> np.ndarray:
    """Widefield image of a raw SIM stack: the mean of its frames (the stripes cancel).

    Parameters
    ----------
    frames : ndarray
        ``(frames, ny, nx)`` raw frames (counts or photons; 9, or 25 for nonlinear SIM).

    Returns
    -------
    ndarray
        float64 ``(ny, nx)`` mean over the first axis.
    """
    return np.asarray(frames, dtype=np.float64).mean(axis=0)
