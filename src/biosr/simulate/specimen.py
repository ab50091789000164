"""The specimen: microtubules as worm-like chains over a cell-shaped region.

A cell is a smooth star-shaped region (a circle whose radius is modulated by a
few low harmonics). Filaments start at random points inside it and grow as
discretised worm-like chains: the tangent angle performs a random walk with
variance ``ds / Lp`` per step of length ``ds`` (``Lp``: persistence length,
tens of micrometres, so filaments are nearly straight over microns and gently
curve). A filament ends where it leaves the cell or reaches its drawn length.
Each chain is a line of label positions carrying a brightness: a per-filament
factor, a smooth log-normal modulation along the filament (labelling density)
and a per-label Gamma factor (stochastic labelling), and a depth: each filament
lies at a height drawn in a thin volume (:data:`DEPTH_NM`, +-0.5 um around
the focal plane) and tilts gently along its length, so part of the
network is out of focus (:mod:`biosr.simulate.imaging` images each depth with
its defocused OTF). The cell also holds a diffuse cytosolic background, a
smooth log-normal field inside the cell's outline. The filament's 25 nm
width is a Gaussian profile applied in Fourier space when imaging
(:mod:`biosr.simulate.imaging`), so the specimen is only points and weights.

Written by hand: no library simulates filament networks; a WLC is a cumulative
sum of Gaussian angle increments.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter1d

#: Filament width (FWHM of its Gaussian cross-section), nm.
FILAMENT_WIDTH_NM = 25.0
#: Spacing of label positions along a filament, nm.
STEP_NM = 20.0
#: Range of persistence lengths drawn per cell, nm (log-uniform).
PERSISTENCE_NM = (20_000.0, 60_000.0)
#: Range of filament lengths, nm (uniform; cut short where a filament leaves the cell).
LENGTH_NM = (10_000.0, 40_000.0)
#: Range of network densities per cell, filament length per area in 1/nm
#: (10 to 25 micrometres of filament per square micrometre, log-uniform): with
#: these, a simulated cell's foreground fraction
#: (:func:`biosr.simulate.calibrate.foreground_fraction`) and the share of its
#: power beyond half Nyquist match a real BioSR cell's (about 0.3 and 0.09).
DENSITY_PER_NM = (10.0e-3, 25.0e-3)
#: Correlation length of the labelling modulation along a filament, nm.
LABEL_CORRELATION_NM = 800.0
#: Standard deviation of the log of the labelling modulation.
LABEL_LOG_SD = 0.2
#: Standard deviation of the log of the per-filament brightness.
FILAMENT_LOG_SD = 0.1
#: Shape of the per-label Gamma brightness factor (mean 1, variance 1 / shape).
LABEL_GAMMA_SHAPE = 4.0
#: Range of a cell's mean radius as a fraction of the field's side (uniform).
CELL_RADIUS = (0.5, 0.9)
#: Half-thickness of the volume the filaments lie in, nm.
DEPTH_NM = 500.0
#: Standard deviation of a filament's starting height, nm (normal, folded into +-DEPTH_NM):
#: most filaments lie near the coverslip, as GI-SIM's thin illumination sees them.
DEPTH_SD_NM = 250.0
#: Standard deviation of a filament's tilt (height change per length), dimensionless.
TILT_SD = 0.03
#: Correlation length of the cytosolic background's modulation, nm.
BACKGROUND_CORRELATION_NM = 3000.0
#: Standard deviation of the log of the cytosolic background's modulation.
BACKGROUND_LOG_SD = 0.15


class Cell(NamedTuple):
    """Shape of a cell: centre and radius harmonics (all lengths in nm).

    Attributes
    ----------
    centre : tuple of float
        ``(y, x)`` of the centre.
    radius : float
        Mean radius.
    harmonics : ndarray
        ``(k, amplitude, phase)`` rows; the boundary is at
        ``radius * (1 + sum(a * cos(k * theta + phase)))``.
    """

    centre: tuple[float, float]
    radius: float
    harmonics: np.ndarray

    def contains(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """True where the points ``(y, x)`` (nm) are inside the cell."""
        dy, dx = np.asarray(y) - self.centre[0], np.asarray(x) - self.centre[1]
        theta = np.arctan2(dy, dx)
        edge = np.ones_like(theta)
        for k, amp, phase in self.harmonics:
            edge += amp * np.cos(k * theta + phase)
        return np.hypot(dy, dx) < self.radius * edge


class Specimen(NamedTuple):
    """A simulated cell: label positions, brightness and depth, its shape and background.

    Attributes
    ----------
    points : ndarray
        ``(n, 2)`` label positions ``(y, x)`` in nm, origin at the field's corner.
    weights : ndarray
        ``(n,)`` brightness of each label (mean about 1).
    depths : ndarray
        ``(n,)`` height of each label above the focal plane, nm.
    cell : Cell
        The cell's shape.
    background : ndarray
        The cytosolic background's relative modulation (mean about 1) on a
        coarse grid of :data:`BACKGROUND_PIXEL_NM` covering the field; zero
        size for no background. Its level is set when imaging
        (:func:`biosr.simulate.imaging.image_specimen`).
    field_nm : float
        Side of the square field, nm.
    """

    points: np.ndarray
    weights: np.ndarray
    depths: np.ndarray
    cell: Cell
    background: np.ndarray
    field_nm: float


#: Pixel of the background's coarse grid, nm.
BACKGROUND_PIXEL_NM = 250.0


def random_cell(
    field_nm: float, rng: np.random.Generator, *, radius: tuple[float, float] = CELL_RADIUS
) -> Cell:
    """Draw a cell shape over a square field of side `field_nm`.

    Parameters
    ----------
    field_nm : float
        Side of the field, nm.
    rng : numpy.random.Generator
        Source of randomness.
    radius : tuple of float, optional
        Range of the mean radius as a fraction of `field_nm` (uniform; default
        :data:`CELL_RADIUS`: most of the field, as a BioSR cell fills its frame).
    """
    centre = tuple(field_nm * rng.uniform(0.3, 0.7, size=2))
    radius = field_nm * rng.uniform(*radius)
    ks = np.arange(2, 6, dtype=np.float64)
    amps = rng.normal(0.0, 0.12 / ks)
    phases = rng.uniform(0.0, 2 * np.pi, size=ks.size)
    return Cell(
        (float(centre[0]), float(centre[1])), float(radius), np.stack([ks, amps, phases], 1)
    )


def filaments(
    cell: Cell,
    field_nm: float,
    rng: np.random.Generator,
    *,
    density_per_nm: float,
    persistence_nm: float,
    step_nm: float = STEP_NM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grow worm-like-chain filaments inside `cell`.

    Parameters
    ----------
    cell : Cell
        Where filaments may lie.
    field_nm : float
        Side of the field (used to estimate the cell's area).
    rng : numpy.random.Generator
        Source of randomness.
    density_per_nm : float
        Target filament length per area (1/nm).
    persistence_nm : float
        Persistence length of the chains.
    step_nm : float, optional
        Spacing of label positions.

    Returns
    -------
    points : ndarray
        ``(n, 2)`` positions ``(y, x)`` in nm.
    weights : ndarray
        ``(n,)`` label brightness.
    depths : ndarray
        ``(n,)`` heights above the focal plane, nm: a start drawn normal with
        :data:`DEPTH_SD_NM` per filament, a tilt of :data:`TILT_SD` along it,
        folded back into ``+-DEPTH_NM``.
    """
    # Cell area by Monte Carlo on a fixed number of draws.
    probe = rng.uniform(0.0, field_nm, size=(4096, 2))
    area = field_nm**2 * float(cell.contains(probe[:, 0], probe[:, 1]).mean())
    mean_length = 0.5 * sum(LENGTH_NM)
    n_fil = max(1, round(density_per_nm * area / mean_length))
    # Start points uniform inside the cell (rejection sampling).
    starts = np.empty((0, 2))
    while len(starts) < n_fil:
        cand = rng.uniform(0.0, field_nm, size=(4 * n_fil + 16, 2))
        starts = np.concatenate([starts, cand[cell.contains(cand[:, 0], cand[:, 1])]])
    starts = starts[:n_fil]
    n_steps = int(np.ceil(LENGTH_NM[1] / step_nm))
    lengths = rng.uniform(*LENGTH_NM, size=n_fil)
    theta0 = rng.uniform(0.0, 2 * np.pi, size=(n_fil, 1))
    dtheta = rng.normal(0.0, np.sqrt(step_nm / persistence_nm), size=(n_fil, n_steps))
    dtheta[:, 0] = 0.0
    theta = theta0 + np.cumsum(dtheta, axis=1)
    y = step_nm * np.cumsum(np.sin(theta), axis=1)
    x = step_nm * np.cumsum(np.cos(theta), axis=1)
    # The start point lies at a random place along the chain (it grows both ways).
    index = np.arange(n_steps)[None, :]
    within = index * step_nm < lengths[:, None]
    anchor = np.floor(rng.uniform(0.0, 1.0, size=(n_fil, 1)) * lengths[:, None] / step_nm)
    anchor = np.minimum(anchor.astype(np.int64), n_steps - 1)
    at = np.take_along_axis
    y += starts[:, :1] - at(y, anchor, axis=1)
    x += starts[:, 1:] - at(x, anchor, axis=1)
    # A filament ends at its drawn length or where it first leaves the cell, both ways.
    valid = cell.contains(y, x) & within
    forward = np.cumprod(valid | (index < anchor), axis=1).astype(bool)
    backward = np.cumprod((valid | (index > anchor))[:, ::-1], axis=1)[:, ::-1].astype(bool)
    keep = forward & backward
    # Brightness: per filament x smooth modulation along it x per label.
    per_fil = rng.lognormal(0.0, FILAMENT_LOG_SD, size=(n_fil, 1))
    smooth = gaussian_filter1d(
        rng.normal(size=(n_fil, n_steps)), LABEL_CORRELATION_NM / step_nm, axis=1, mode="wrap"
    )
    smooth /= smooth.std() or 1.0
    along = np.exp(LABEL_LOG_SD * smooth - 0.5 * LABEL_LOG_SD**2)
    labels = rng.gamma(LABEL_GAMMA_SHAPE, 1.0 / LABEL_GAMMA_SHAPE, size=(n_fil, n_steps))
    weights = (per_fil * along * labels)[keep]
    points = np.stack([y[keep], x[keep]], axis=1)
    # Height: a start drawn in the volume and a gentle tilt, folded back at its faces.
    z0 = rng.normal(0.0, DEPTH_SD_NM, size=(n_fil, 1))
    tilt = rng.normal(0.0, TILT_SD, size=(n_fil, 1))
    z = z0 + tilt * step_nm * (index - anchor) + DEPTH_NM
    z = np.abs((z + 2 * DEPTH_NM) % (4 * DEPTH_NM) - 2 * DEPTH_NM) - DEPTH_NM
    return points, weights, z[keep]


def random_specimen(
    field_nm: float,
    rng: np.random.Generator,
    *,
    density_per_nm: float | None = None,
    cell_radius: tuple[float, float] = CELL_RADIUS,
) -> Specimen:
    """Draw a whole cell: shape, filament network (density varying per cell), background.

    The background's modulation is drawn here; its level relative to the
    filaments is set when imaging, from the microscope's haze ratio.

    Parameters
    ----------
    field_nm : float
        Side of the square field, nm.
    rng : numpy.random.Generator
        Source of randomness.
    density_per_nm : float, optional
        Filament length per area; default drawn log-uniformly in
        :data:`DENSITY_PER_NM` (sparse to dense networks).
    cell_radius : tuple of float, optional
        Range of the cell's radius as a fraction of `field_nm`
        (:func:`random_cell`); ``(2.0, 2.0)`` fills the field.

    Returns
    -------
    Specimen
    """
    cell = random_cell(field_nm, rng, radius=cell_radius)
    if density_per_nm is None:
        lo, hi = np.log(DENSITY_PER_NM)
        density_per_nm = float(np.exp(rng.uniform(lo, hi)))
    lo, hi = np.log(PERSISTENCE_NM)
    persistence = float(np.exp(rng.uniform(lo, hi)))
    points, weights, depths = filaments(
        cell, field_nm, rng, density_per_nm=density_per_nm, persistence_nm=persistence
    )
    background = background_field(field_nm, rng)
    return Specimen(points, weights, depths, cell, background, float(field_nm))


def background_field(field_nm: float, rng: np.random.Generator) -> np.ndarray:
    """The cytosol's smooth relative brightness on the coarse grid (log-normal, mean 1).

    Parameters
    ----------
    field_nm : float
        Side of the square field, nm.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray
        ``(m, m)`` float64, ``m = ceil(field_nm / BACKGROUND_PIXEL_NM) + 1``:
        Gaussian noise smoothed to :data:`BACKGROUND_CORRELATION_NM`,
        standardised and exponentiated with :data:`BACKGROUND_LOG_SD`.
    """
    from scipy.ndimage import gaussian_filter

    m = int(np.ceil(field_nm / BACKGROUND_PIXEL_NM)) + 1
    g = gaussian_filter(rng.normal(size=(m, m)), BACKGROUND_CORRELATION_NM / BACKGROUND_PIXEL_NM)
    g /= g.std() or 1.0
    return np.exp(BACKGROUND_LOG_SD * g - 0.5 * BACKGROUND_LOG_SD**2)


def line_specimen(field_nm: float, *, angle_deg: float = 0.0) -> Specimen:
    """One straight, uniformly labelled filament through the field's centre (for resolution tests).

    Parameters
    ----------
    field_nm : float
        Side of the square field, nm.
    angle_deg : float, optional
        Angle of the filament to the x axis.

    Returns
    -------
    Specimen
        In focus, no background; the cell covers the whole field.
    """
    half = field_nm / 2.0
    t = np.arange(-half, half, STEP_NM / 2.0)
    a = np.deg2rad(angle_deg)
    points = np.stack([half + t * np.sin(a), half + t * np.cos(a)], axis=1)
    inside = ((points >= 0) & (points < field_nm)).all(axis=1)
    points = points[inside]
    cell = Cell((half, half), 10.0 * field_nm, np.zeros((0, 3)))
    n = len(points)
    return Specimen(points, np.ones(n), np.zeros(n), cell, np.zeros((0, 0)), float(field_nm))


def render_points(
    points: np.ndarray, weights: np.ndarray, shape: tuple[int, int], pixel_size_nm: float
) -> np.ndarray:
    """Splat weighted points onto a pixel grid with bilinear weights (pixel centres at integers).

    The splat is a convolution with a triangle kernel one pixel wide on each
    side; :func:`biosr.simulate.imaging.transfer` divides its transfer function
    back out, so the rendered image is exact in the passband.

    Returns
    -------
    ndarray
        float64 image of `shape`; points outside the grid are dropped.
    """
    ny, nx = shape
    pos = np.asarray(points, dtype=np.float64) / pixel_size_nm - 0.5
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    out = np.zeros(ny * nx)
    for dy in (0, 1):
        wy = frac[:, 0] if dy else 1.0 - frac[:, 0]
        for dx in (0, 1):
            wx = frac[:, 1] if dx else 1.0 - frac[:, 1]
            iy, ix = i0[:, 0] + dy, i0[:, 1] + dx
            ok = (iy >= 0) & (iy < ny) & (ix >= 0) & (ix < nx)
            out += np.bincount(
                iy[ok] * nx + ix[ok], weights=(weights * wy * wx)[ok], minlength=ny * nx
            )
    return out.reshape(ny, nx)


def cell_image(cell: Cell, shape: tuple[int, int], pixel_size_nm: float) -> np.ndarray:
    """Boolean mask of `cell` on a pixel grid (pixel centres)."""
    yy = (np.arange(shape[0]) + 0.5) * pixel_size_nm
    xx = (np.arange(shape[1]) + 0.5) * pixel_size_nm
    return cell.contains(yy[:, None], xx[None, :])
