"""Specimens of every BioSR structure as label points: pits, a tubular network, actin filaments.

Each generator returns a :class:`~biosr.simulate.specimen.Specimen` (label
positions, brightness and heights, the cell, the cytosolic background), so
the imaging chain (:mod:`biosr.simulate.imaging`) images every structure
unchanged; :func:`draw_specimen` picks the generator of a structure of
:data:`biosr.layout.STRUCTURES`.

- **Microtubules**: :func:`biosr.simulate.specimen.random_specimen`, the very
  same draws.
- **CCPs** (:func:`ccp_specimen`): clathrin-coated pits at the basal membrane
  seen by TIRF. A pit is a clathrin coat on a spherical cap (100-200 nm across,
  from a shallow dome to a nearly closed bud) whose neck lies on the membrane;
  labels are uniform on the cap's surface, so seen from below a deep pit
  projects to a hollow ring (density ``1 / cos`` of the polar angle, highest at
  the equator) and a shallow or small one to a spot at SIM resolution. Pits are
  scattered uniformly over the cell (1-3 per square micrometre, none
  overlapping), each with its own brightness.
- **ER** (:func:`er_specimen`): the peripheral ER as a polygonal network of
  membrane tubules: the edges of a Voronoi diagram of seeds relaxed by Lloyd's
  algorithm (generic Voronoi vertices are three-way junctions; relaxing the
  seeds, then stretching the few edges still under 120 nm, leaves none that
  would image as a four-way one), with a mesh finer in places and coarser in
  others, thinned by removing a few edges (larger, irregular polygons), each
  tubule a gently bowed 50-100 nm membrane cylinder (labels on its surface,
  projected); a nucleus free of tubules, and around it a few flat sheets (two
  membranes, irregular outline, small fenestrations). Heights follow a smooth
  field a hundred nanometres or so around the focal plane (GI-SIM).
- **F-actin** (:func:`actin_specimen`, also **F-actin_Nonlinear**): stress
  fibres (long, nearly straight bundles of 6-30 filaments, 100-300 nm wide,
  tapering at their ends, most of them along the cell's axis) over a dense
  meshwork of short filaments (persistence length 15 um) that thickens
  towards the cell's edge, where filaments point outwards at about +-35
  degrees (lamellipodial branching). TIRF: all within about 250 nm of the
  coverslip. The filament length per area is met by drawing in batches.

Brightness scale: a label's weight is 1 on average for a microtubule label
every :data:`~biosr.simulate.specimen.STEP_NM`; one actin filament carries the
same brightness per length as a microtubule (a bundle is brighter by its
filament count), an ER tubule of 75 nm the same (its membrane's label density
then sets the sheets' and other tubules'), a 150 nm pit about as much as
0.7 um of microtubule. The TIRF structures (CCPs, F-actin) are excited by an
evanescent field that decays with height (:data:`TIRF_PENETRATION_NM`), folded
into the weights. Every label is inside the field and the cell; the imaging
chain adds the label size (a 25 nm Gaussian) to every structure. Each
structure's `density` has its own unit (:data:`DENSITY_UNITS`).
:func:`save_previews` (``python -m biosr.simulate.structures --previews DIR``)
draws a PNG of each.

Written by hand: no library draws these specimens as label points; the pieces
are scipy's Voronoi diagram and k-d tree, and cumulative sums of Gaussian
angle steps for the filaments.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d, map_coordinates, uniform_filter
from scipy.spatial import Voronoi, cKDTree

from biosr import layout
from biosr.simulate import specimen
from biosr.simulate.specimen import Cell, Specimen

#: 1/e height of the evanescent excitation of TIRF-SIM, nm.
TIRF_PENETRATION_NM = 100.0
#: Mean weight of a label of the dense structures (ER, CCPs): four labels per microtubule label,
#: for a smooth surface at the same brightness.
LABEL_WEIGHT = 0.25

#: Range of pit densities per cell, pits per square micrometre of cell (log-uniform).
CCP_DENSITY_PER_UM2 = (1.0, 3.0)
#: Range of pit diameters (of the labelled coat), nm (uniform).
CCP_DIAMETER_NM = (100.0, 200.0)
#: Range of a pit's coat extent, polar angle from its apex in degrees (uniform): a shallow
#: dome at 60, a hemisphere at 90, a nearly closed bud at 160.
CCP_CAP_DEG = (60.0, 160.0)
#: Coat brightness per area, label weight per square nm: a 150 nm pit about as bright as
#: 0.7 um of microtubule.
CCP_WEIGHT_PER_NM2 = 7.0e-4
#: Standard deviation of the log of a pit's brightness.
CCP_LOG_SD = 0.3
#: Range of the basal membrane's height above the focal plane per cell, nm (uniform).
CCP_MEMBRANE_NM = (0.0, 50.0)

#: Range of tubule length per area, 1/nm (1.5 to 3.5 um per square um, log-uniform).
ER_DENSITY_PER_NM = (1.5e-3, 3.5e-3)
#: Range of tubule diameters, nm (uniform per tubule).
ER_TUBULE_DIAMETER_NM = (50.0, 100.0)
#: Membrane brightness, label weight per square nm of membrane: a 75 nm tubule as bright
#: per length as a microtubule.
ER_WEIGHT_PER_NM2 = 1.0 / (specimen.STEP_NM * np.pi * 75.0)
#: Range of the fraction of network edges removed per cell (uniform).
ER_PRUNE = (0.05, 0.2)
#: Standard deviation of the log of the network's local seed intensity, and its correlation
#: length, nm (a mesh finer in places, coarser in others).
ER_MESH_LOG_SD = 0.5
ER_MESH_CORRELATION_NM = 4000.0
#: Lloyd iterations relaxing the network's seeds.
ER_LLOYD_ITERATIONS = 3
#: Edge length per area of the relaxed Voronoi diagram over the square root of its seeds'
#: intensity: 1.86 for a honeycomb (hexagons of area ``1 / l`` have ``sqrt(2 sqrt 3 l)``), to
#: which Lloyd's steps bring a Poisson diagram's 2.
ER_EDGE_PER_SQRT_INTENSITY = 1.86
#: Shortest tubule between two junctions, nm: shorter ones are stretched to it.
ER_MIN_EDGE_NM = 120.0
#: Passes of that stretching at most.
ER_PUSH_PASSES = 8
#: Standard deviation of a tubule's bow (midpoint offset), as a fraction of its length.
ER_BOW_SD = 0.08
#: Standard deviation of the log of a tubule's brightness.
ER_TUBULE_LOG_SD = 0.15
#: Range of the nucleus' radius as a fraction of the cell's (uniform).
ER_NUCLEUS = (0.2, 0.3)
#: Range of the number of perinuclear sheets (uniform integers, inclusive).
ER_SHEETS = (2, 6)
#: Range of a sheet's mean radius as a fraction of the cell's (uniform).
ER_SHEET_RADIUS = (0.05, 0.12)
#: Range of a fenestration's radius in a sheet, nm (uniform).
ER_FENESTRA_NM = (30.0, 80.0)
#: Fraction of a sheet's area in fenestrations.
ER_FENESTRA_FRACTION = 0.1
#: Distance of a sheet's two membranes, nm.
ER_SHEET_LUMEN_NM = 50.0
#: Standard deviation and correlation length of the network's height, nm.
ER_DEPTH_SD_NM = 120.0
ER_DEPTH_CORRELATION_NM = 3000.0

#: Range of total filament length per area, 1/nm (15 to 40 um per square um, log-uniform).
ACTIN_DENSITY_PER_NM = (15.0e-3, 40.0e-3)
#: Range of the share of filament length in stress fibres per cell (uniform).
ACTIN_BUNDLE_SHARE = (0.4, 0.7)
#: Range of filaments per stress fibre (uniform integers, inclusive).
ACTIN_BUNDLE_FILAMENTS = (6, 30)
#: Range of a stress fibre's width, nm (uniform).
ACTIN_BUNDLE_WIDTH_NM = (100.0, 300.0)
#: Range of a stress fibre's length, nm (uniform; cut where it leaves the cell).
ACTIN_BUNDLE_LENGTH_NM = (5_000.0, 25_000.0)
#: Persistence length of a stress fibre's axis, nm (nearly straight).
ACTIN_BUNDLE_PERSISTENCE_NM = 300_000.0
#: Spread of the stress fibres' directions about the cell's axis, degrees (normal).
ACTIN_BUNDLE_ANGLE_SD_DEG = 12.0
#: Fraction of stress fibres at random directions (transverse arcs, dorsal fibres).
ACTIN_BUNDLE_RANDOM = 0.2
#: Fraction of a fibre's length over which each of its filaments may start or end (taper).
ACTIN_BUNDLE_TAPER = 0.3
#: Range of a meshwork filament's length, nm (uniform).
ACTIN_LENGTH_NM = (300.0, 3_000.0)
#: Persistence length of a single actin filament, nm.
ACTIN_PERSISTENCE_NM = 15_000.0
#: Decay length of the meshwork's extra density towards the cell's edge, nm.
ACTIN_EDGE_NM = 2_000.0
#: Meshwork density at the edge relative to the interior.
ACTIN_EDGE_BOOST = 4.0
#: Branch angle of the edge meshwork to the outward normal, degrees (+ or -, spread 10).
ACTIN_BRANCH_DEG = 35.0
#: Range of a filament's height above the focal plane, nm (uniform).
ACTIN_DEPTH_NM = (0.0, 120.0)
#: Batches of filaments drawn at most to reach a cell's filament length, and the shortfall
#: accepted.
ACTIN_BATCHES = 12
ACTIN_LENGTH_TOLERANCE = 0.02

#: Unit of each structure's `density` (:func:`draw_specimen`).
DENSITY_UNITS = {
    "CCPs": "pits per square micrometre of cell",
    "ER": "tubule length per area, 1/nm",
    "Microtubules": "filament length per area, 1/nm",
    "F-actin": "filament length per area (bundled and meshwork), 1/nm",
    "F-actin_Nonlinear": "filament length per area (bundled and meshwork), 1/nm",
}
#: Range each structure's `density` is drawn from per cell when none is given.
DENSITY_RANGES = {
    "CCPs": CCP_DENSITY_PER_UM2,
    "ER": ER_DENSITY_PER_NM,
    "Microtubules": specimen.DENSITY_PER_NM,
    "F-actin": ACTIN_DENSITY_PER_NM,
    "F-actin_Nonlinear": ACTIN_DENSITY_PER_NM,
}


# --------------------------------------------------------------------------- #
# Shared pieces
# --------------------------------------------------------------------------- #


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """One draw log-uniform between `bounds`."""
    lo, hi = np.log(bounds)
    return float(np.exp(rng.uniform(lo, hi)))


def edge_radius(cell: Cell, theta: np.ndarray) -> np.ndarray:
    """Distance from the cell's centre to its outline in the directions `theta` (nm)."""
    edge = np.ones_like(np.asarray(theta, dtype=np.float64))
    for k, amp, phase in cell.harmonics:
        edge += amp * np.cos(k * theta + phase)
    return cell.radius * edge


def cell_area(cell: Cell, field_nm: float, rng: np.random.Generator) -> float:
    """Area of the cell inside the field, nm^2 (Monte Carlo on 4096 draws, as
    :func:`biosr.simulate.specimen.filaments`)."""
    probe = rng.uniform(0.0, field_nm, size=(4096, 2))
    return field_nm**2 * float(cell.contains(probe[:, 0], probe[:, 1]).mean())


def uniform_in_cell(cell: Cell, field_nm: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` points ``(y, x)`` uniform in the part of the cell inside the field (rejection)."""
    out = np.empty((0, 2))
    while len(out) < n:
        cand = rng.uniform(0.0, field_nm, size=(2 * n + 16, 2))
        out = np.concatenate([out, cand[cell.contains(cand[:, 0], cand[:, 1])]])
    return out[:n]


def tirf_excitation(depths: np.ndarray, penetration_nm: float = TIRF_PENETRATION_NM):
    """Relative evanescent excitation at heights `depths` (nm above the coverslip), ``exp(-z/d)``.

    Heights below the coverslip count as 0.
    """
    return np.exp(-np.maximum(np.asarray(depths, dtype=np.float64), 0.0) / penetration_nm)


def label_gamma(n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-label brightness factors, Gamma of mean 1 (:data:`specimen.LABEL_GAMMA_SHAPE`)."""
    shape = specimen.LABEL_GAMMA_SHAPE
    return rng.gamma(shape, 1.0 / shape, size=n)


def smooth_field(field_nm: float, rng: np.random.Generator, correlation_nm: float) -> np.ndarray:
    """Standard normal noise smoothed to `correlation_nm` on the background's coarse grid."""
    m = int(np.ceil(field_nm / specimen.BACKGROUND_PIXEL_NM)) + 1
    g = gaussian_filter(rng.normal(size=(m, m)), correlation_nm / specimen.BACKGROUND_PIXEL_NM)
    return g / (g.std() or 1.0)


def sample_field(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Values of a coarse-grid field (:func:`smooth_field`) at `points` (nm; linear)."""
    coords = np.asarray(points, dtype=np.float64).T / specimen.BACKGROUND_PIXEL_NM
    return map_coordinates(grid, coords, order=1, mode="nearest")


def inside(
    cell: Cell, field_nm: float, points: np.ndarray, weights: np.ndarray, depths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labels inside the field ``[0, field_nm)^2`` and the cell."""
    ok = ((points >= 0.0) & (points < field_nm)).all(axis=1)
    ok &= cell.contains(points[:, 0], points[:, 1])
    return points[ok], weights[ok], depths[ok]


def chains(
    starts: np.ndarray,
    angles: np.ndarray,
    lengths: np.ndarray,
    persistence_nm: float,
    rng: np.random.Generator,
    *,
    cell: Cell | None = None,
    field_nm: float | None = None,
    step_nm: float = specimen.STEP_NM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Worm-like chains through `starts`, grown both ways, cut at their length or the cell.

    As :func:`biosr.simulate.specimen.filaments` grows them: the tangent angle
    is a random walk of variance ``step / persistence`` per step, the start
    lies at a uniform place along the chain, and a chain ends where it first
    leaves `cell` or the field ``[0, field_nm)^2`` (when given), both ways.

    Parameters
    ----------
    starts : ndarray
        ``(n, 2)`` points ``(y, x)`` the chains pass through, nm.
    angles : ndarray
        ``(n,)`` tangent angles at the chains' first label, radians.
    lengths : ndarray
        ``(n,)`` lengths, nm.
    persistence_nm : float
        Persistence length.
    rng : numpy.random.Generator
        Source of randomness.
    cell : Cell, optional
        Where the chains end.
    field_nm : float, optional
        Side of the field where the chains end.
    step_nm : float, optional
        Spacing of the labels.

    Returns
    -------
    y, x, theta : ndarray
        ``(n, k)`` label positions and tangent angles.
    keep : ndarray
        ``(n, k)`` boolean: the labels of each chain.
    """
    n = len(starts)
    k = max(1, int(np.ceil(float(np.max(lengths, initial=step_nm)) / step_nm)))
    dtheta = rng.normal(0.0, np.sqrt(step_nm / persistence_nm), size=(n, k))
    dtheta[:, 0] = 0.0
    theta = np.asarray(angles, dtype=np.float64)[:, None] + np.cumsum(dtheta, axis=1)
    y = step_nm * np.cumsum(np.sin(theta), axis=1)
    x = step_nm * np.cumsum(np.cos(theta), axis=1)
    index = np.arange(k)[None, :]
    within = index * step_nm < np.asarray(lengths)[:, None]
    anchor = np.floor(rng.uniform(0.0, 1.0, size=(n, 1)) * np.asarray(lengths)[:, None] / step_nm)
    anchor = np.minimum(anchor.astype(np.int64), k - 1)
    y += starts[:, :1] - np.take_along_axis(y, anchor, axis=1)
    x += starts[:, 1:] - np.take_along_axis(x, anchor, axis=1)
    valid = within if cell is None else within & cell.contains(y, x)
    if field_nm is not None:
        valid &= (y >= 0.0) & (y < field_nm) & (x >= 0.0) & (x < field_nm)
    forward = np.cumprod(valid | (index < anchor), axis=1).astype(bool)
    backward = np.cumprod((valid | (index > anchor))[:, ::-1], axis=1)[:, ::-1].astype(bool)
    return y, x, theta, forward & backward & within


# --------------------------------------------------------------------------- #
# CCPs
# --------------------------------------------------------------------------- #


def coated_pits(
    centres: np.ndarray,
    diameters_nm: np.ndarray,
    caps_deg: np.ndarray,
    rng: np.random.Generator,
    *,
    membrane_nm: float = 0.0,
    brightness: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of clathrin coats on spherical caps whose necks lie on the membrane.

    A pit of radius ``R`` and coat extent ``a`` (polar angle from its apex) is
    the part ``theta <= a`` of a sphere; its neck (``theta = a``) is on the
    membrane at `membrane_nm` and its apex deepest in the cell, so a label at
    polar angle ``theta`` lies at height ``membrane + R (cos theta - cos a)``.
    Labels are uniform on the coat (``cos theta`` uniform), their number
    Poisson with mean :data:`CCP_WEIGHT_PER_NM2` x area / :data:`LABEL_WEIGHT`.

    Parameters
    ----------
    centres : ndarray
        ``(n, 2)`` pit axes ``(y, x)``, nm.
    diameters_nm : ndarray
        ``(n,)`` sphere diameters.
    caps_deg : ndarray
        ``(n,)`` coat extents, degrees (above 90: the projection is a ring).
    rng : numpy.random.Generator
        Source of randomness.
    membrane_nm : float, optional
        Height of the membrane above the focal plane.
    brightness : ndarray, optional
        ``(n,)`` per-pit brightness factors (default 1).

    Returns
    -------
    points, weights, depths : ndarray
        As :class:`~biosr.simulate.specimen.Specimen`'s (no TIRF factor yet).
    """
    radius = 0.5 * np.asarray(diameters_nm, dtype=np.float64)
    cos_a = np.cos(np.deg2rad(np.asarray(caps_deg, dtype=np.float64)))
    area = 2.0 * np.pi * radius**2 * (1.0 - cos_a)
    counts = rng.poisson(CCP_WEIGHT_PER_NM2 * area / LABEL_WEIGHT)
    pit = np.repeat(np.arange(len(radius)), counts)
    cos_t = rng.uniform(cos_a[pit], 1.0)
    sin_t = np.sqrt(np.maximum(1.0 - cos_t**2, 0.0))
    phi = rng.uniform(0.0, 2.0 * np.pi, size=pit.size)
    r = radius[pit]
    points = centres[pit] + (r * sin_t)[:, None] * np.stack([np.sin(phi), np.cos(phi)], axis=1)
    depths = membrane_nm + r * (cos_t - cos_a[pit])
    factor = np.ones(len(radius)) if brightness is None else np.asarray(brightness)
    weights = LABEL_WEIGHT * factor[pit] * label_gamma(pit.size, rng)
    return points, weights, depths


def ccp_specimen(
    field_nm: float,
    rng: np.random.Generator,
    *,
    density: float | None = None,
    cell_radius: tuple[float, float] = specimen.CELL_RADIUS,
) -> Specimen:
    """A cell's clathrin-coated pits at its basal membrane, seen by TIRF.

    Parameters
    ----------
    field_nm : float
        Side of the square field, nm.
    rng : numpy.random.Generator
        Source of randomness.
    density : float, optional
        Pits per square micrometre of cell; default drawn log-uniformly in
        :data:`CCP_DENSITY_PER_UM2`.
    cell_radius : tuple of float, optional
        Range of the cell's radius as a fraction of `field_nm`.

    Returns
    -------
    Specimen
        Pits of :data:`CCP_DIAMETER_NM` and :data:`CCP_CAP_DEG`, none
        overlapping another (the later of two overlapping pits is dropped).
    """
    cell = specimen.random_cell(field_nm, rng, radius=cell_radius)
    if density is None:
        density = log_uniform(rng, CCP_DENSITY_PER_UM2)
    n = max(1, round(float(density) * cell_area(cell, field_nm, rng) * 1e-6))
    diameters = rng.uniform(*CCP_DIAMETER_NM, size=n)
    caps = rng.uniform(*CCP_CAP_DEG, size=n)
    brightness = rng.lognormal(-0.5 * CCP_LOG_SD**2, CCP_LOG_SD, size=n)
    membrane = float(rng.uniform(*CCP_MEMBRANE_NM))
    # Inside the cell with a margin of the pit's radius, so a whole pit is always in it.
    centres = uniform_in_cell(cell, field_nm, n, rng)
    half = 0.5 * diameters
    whole = ((centres >= half[:, None]) & (centres < field_nm - half[:, None])).all(axis=1)
    edge = edge_radius(
        cell, np.arctan2(centres[:, 0] - cell.centre[0], centres[:, 1] - cell.centre[1])
    )
    whole &= np.hypot(centres[:, 0] - cell.centre[0], centres[:, 1] - cell.centre[1]) < edge - half
    pairs = cKDTree(centres).query_pairs(CCP_DIAMETER_NM[1], output_type="ndarray")
    if len(pairs):
        gap = np.hypot(*(centres[pairs[:, 0]] - centres[pairs[:, 1]]).T)
        overlap = pairs[gap < half[pairs[:, 0]] + half[pairs[:, 1]]]
        whole[overlap.max(axis=1)] = False
    points, weights, depths = coated_pits(
        centres[whole],
        diameters[whole],
        caps[whole],
        rng,
        membrane_nm=membrane,
        brightness=brightness[whole],
    )
    weights = weights * tirf_excitation(depths)
    points, weights, depths = inside(cell, field_nm, points, weights, depths)
    background = specimen.background_field(field_nm, rng)
    return Specimen(points, weights, depths, cell, background, float(field_nm))


# --------------------------------------------------------------------------- #
# ER
# --------------------------------------------------------------------------- #


def er_network(
    cell: Cell,
    field_nm: float,
    rng: np.random.Generator,
    *,
    density_per_nm: float,
    exclude: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ER's tubules as a planar graph: relaxed Voronoi edges inside the cell, thinned.

    Seeds are drawn over the field and a margin around it, with a mean
    intensity that gives `density_per_nm` of edge length after pruning
    (:data:`ER_EDGE_PER_SQRT_INTENSITY`), modulated by a smooth log-normal
    field (:data:`ER_MESH_LOG_SD`, :data:`ER_MESH_CORRELATION_NM`: finer and
    coarser meshes in one cell); they are relaxed by
    :data:`ER_LLOYD_ITERATIONS` Lloyd steps whose cell centroids are
    estimated on 24 draws of the same intensity per seed. The diagram's
    finite edges with both ends inside the field and the cell (and not in `exclude`) are
    kept, then a fraction :data:`ER_PRUNE` of them is removed at random; the
    ends of an edge shorter than :data:`ER_MIN_EDGE_NM` are pushed apart to it
    (two junctions closer than that would image as one four-way junction).

    Parameters
    ----------
    cell : Cell
        Where the network lies.
    field_nm : float
        Side of the field, nm.
    rng : numpy.random.Generator
        Source of randomness.
    density_per_nm : float
        Tubule length per area, 1/nm.
    exclude : callable, optional
        Takes ``(n, 2)`` points, returns True where no junction may lie
        (the nucleus, the sheets).

    Returns
    -------
    nodes : ndarray
        ``(m, 2)`` junction positions ``(y, x)``, nm.
    edges : ndarray
        ``(e, 2)`` int64 node indices of each tubule.
    """
    prune = float(rng.uniform(*ER_PRUNE))
    intensity = (density_per_nm / (ER_EDGE_PER_SQRT_INTENSITY * (1.0 - prune))) ** 2
    margin = 3.0 / np.sqrt(intensity)
    lo, hi = -margin, field_nm + margin
    mesh = ER_MESH_LOG_SD * smooth_field(field_nm, rng, ER_MESH_CORRELATION_NM)

    def draw(m: int) -> np.ndarray:
        # `m` points of intensity proportional to exp(mesh), by rejection.
        out = np.empty((0, 2))
        while len(out) < m:
            cand = rng.uniform(lo, hi, size=(2 * m + 16, 2))
            keep = rng.uniform(size=len(cand)) < np.exp(sample_field(mesh, cand) - mesh.max())
            out = np.concatenate([out, cand[keep]])
        return out[:m]

    n = max(4, int(rng.poisson(intensity * (hi - lo) ** 2)))
    seeds = draw(n)
    for _ in range(ER_LLOYD_ITERATIONS):
        probe = draw(24 * n)
        owner = cKDTree(seeds).query(probe)[1]
        count = np.bincount(owner, minlength=n)
        sums = np.stack([np.bincount(owner, probe[:, i], minlength=n) for i in (0, 1)], axis=1)
        moved = count > 0
        seeds[moved] = sums[moved] / count[moved, None]
    diagram = Voronoi(seeds)
    nodes = diagram.vertices
    ridges = np.array([r for r in diagram.ridge_vertices if min(r) >= 0], dtype=np.int64)
    ok = ((nodes >= 0.0) & (nodes < field_nm)).all(axis=1) & cell.contains(nodes[:, 0], nodes[:, 1])
    if exclude is not None:
        ok &= ~exclude(nodes)
    edges = ridges[ok[ridges].all(axis=1)]
    edges = edges[rng.uniform(size=len(edges)) >= prune]
    # Two junctions closer than SIM resolves would image as a four-way one: push them apart
    # (a few passes, as pushing one edge's ends moves their other edges' too).
    nodes = nodes.copy()
    for _ in range(ER_PUSH_PASSES):
        d = nodes[edges[:, 1]] - nodes[edges[:, 0]]
        length = np.hypot(d[:, 0], d[:, 1])
        short = length < ER_MIN_EDGE_NM
        if not short.any():
            break
        unit = d[short] / np.maximum(length[short], 1e-9)[:, None]
        push = 0.5 * (ER_MIN_EDGE_NM - length[short])[:, None] * unit
        np.add.at(nodes, edges[short, 0], -push)
        np.add.at(nodes, edges[short, 1], push)
    used = np.unique(edges)
    renumber = np.full(len(nodes), -1, dtype=np.int64)
    renumber[used] = np.arange(used.size)
    return nodes[used], renumber[edges]


def tubules(
    nodes: np.ndarray, edges: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels on membrane tubules along the network's edges, gently bowed.

    Each edge is a quadratic Bezier curve from node to node whose control
    point is offset sideways by a normal draw of :data:`ER_BOW_SD` of its
    length, a cylinder of diameter :data:`ER_TUBULE_DIAMETER_NM` labelled
    uniformly on its surface (:data:`ER_WEIGHT_PER_NM2`): a label at angle
    ``phi`` round the axis lies ``r cos phi`` to the side and ``r sin phi``
    above it.

    Returns
    -------
    points, weights, dz : ndarray
        Positions ``(n, 2)``, weights and heights relative to the tubule's axis.
    """
    p0, p1 = nodes[edges[:, 0]], nodes[edges[:, 1]]
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])
    normal = np.stack([d[:, 1], -d[:, 0]], axis=1) / np.maximum(length, 1e-9)[:, None]
    control = 0.5 * (p0 + p1) + (rng.normal(0.0, ER_BOW_SD, len(d)) * length)[:, None] * normal
    radius = 0.5 * rng.uniform(*ER_TUBULE_DIAMETER_NM, size=len(d))
    brightness = rng.lognormal(-0.5 * ER_TUBULE_LOG_SD**2, ER_TUBULE_LOG_SD, size=len(d))
    counts = rng.poisson(ER_WEIGHT_PER_NM2 * 2.0 * np.pi * radius * length / LABEL_WEIGHT)
    e = np.repeat(np.arange(len(d)), counts)
    t = rng.uniform(0.0, 1.0, size=e.size)[:, None]
    a, c, b = p0[e], control[e], p1[e]
    axis = (1 - t) ** 2 * a + 2 * t * (1 - t) * c + t**2 * b
    tangent = 2 * (1 - t) * (c - a) + 2 * t * (b - c)
    side = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    side /= np.maximum(np.hypot(side[:, 0], side[:, 1]), 1e-9)[:, None]
    phi = rng.uniform(0.0, 2.0 * np.pi, size=e.size)
    points = axis + (radius[e] * np.cos(phi))[:, None] * side
    weights = LABEL_WEIGHT * brightness[e] * label_gamma(e.size, rng)
    return points, weights, radius[e] * np.sin(phi)


def random_outline(
    centre: np.ndarray, radius: float, rng: np.random.Generator, *, roughness: float = 0.15
) -> Cell:
    """A smooth star-shaped outline of mean `radius` about `centre` (nm): a sheet's, a nucleus'.

    Harmonics 2 to 5 of the radius with amplitudes normal of ``roughness / k``.
    """
    ks = np.arange(2, 6, dtype=np.float64)
    amps = rng.normal(0.0, roughness / ks)
    phases = rng.uniform(0.0, 2 * np.pi, size=ks.size)
    return Cell(
        (float(centre[0]), float(centre[1])), float(radius), np.stack([ks, amps, phases], 1)
    )


def sheet(outline: Cell, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of a flat ER sheet: two membranes over `outline`, with fenestrations.

    Labels are uniform over the outline at twice :data:`ER_WEIGHT_PER_NM2`
    (a top and a bottom membrane, :data:`ER_SHEET_LUMEN_NM` apart); holes of
    :data:`ER_FENESTRA_NM` cover about :data:`ER_FENESTRA_FRACTION` of it.

    Returns
    -------
    points, weights, dz : ndarray
        Positions, weights and heights relative to the sheet's mid-plane.
    """
    reach = outline.radius * (1.0 + np.abs(outline.harmonics[:, 1]).sum())
    box = (2.0 * reach) ** 2
    n = int(rng.poisson(2.0 * ER_WEIGHT_PER_NM2 * box / LABEL_WEIGHT))
    points = np.asarray(outline.centre) + rng.uniform(-reach, reach, size=(n, 2))
    points = points[outline.contains(points[:, 0], points[:, 1])]
    hole_r = rng.uniform(
        *ER_FENESTRA_NM,
        size=int(rng.poisson(ER_FENESTRA_FRACTION * box / (np.pi * np.mean(ER_FENESTRA_NM) ** 2))),
    )
    if hole_r.size:
        holes = np.asarray(outline.centre) + rng.uniform(-reach, reach, size=(hole_r.size, 2))
        dist, which = cKDTree(holes).query(points)
        points = points[dist >= hole_r[which]]
    side = rng.integers(0, 2, size=len(points)) * 2 - 1
    weights = LABEL_WEIGHT * label_gamma(len(points), rng)
    return points, weights, 0.5 * ER_SHEET_LUMEN_NM * side


def er_specimen(
    field_nm: float,
    rng: np.random.Generator,
    *,
    density: float | None = None,
    cell_radius: tuple[float, float] = specimen.CELL_RADIUS,
) -> Specimen:
    """A cell's ER: a tubular network around a nucleus, and perinuclear sheets.

    The nucleus (radius :data:`ER_NUCLEUS` of the cell's, a tenth of it off
    centre) holds no ER; :data:`ER_SHEETS` sheets (:func:`sheet`, radius
    :data:`ER_SHEET_RADIUS` of the cell's) lie on its rim; the network
    (:func:`er_network`, :func:`tubules`) fills the rest of the cell. Heights:
    a smooth field (:data:`ER_DEPTH_SD_NM`, :data:`ER_DEPTH_CORRELATION_NM`)
    plus each label's place on its tubule or membrane.

    Parameters
    ----------
    field_nm : float
        Side of the square field, nm.
    rng : numpy.random.Generator
        Source of randomness.
    density : float, optional
        Tubule length per area, 1/nm; default drawn log-uniformly in
        :data:`ER_DENSITY_PER_NM`.
    cell_radius : tuple of float, optional
        Range of the cell's radius as a fraction of `field_nm`.

    Returns
    -------
    Specimen
    """
    cell = specimen.random_cell(field_nm, rng, radius=cell_radius)
    if density is None:
        density = log_uniform(rng, ER_DENSITY_PER_NM)
    shift = rng.normal(0.0, 0.1 * cell.radius, size=2)
    nucleus_at = np.asarray(cell.centre) + shift
    nucleus_r = cell.radius * rng.uniform(*ER_NUCLEUS)
    nucleus = random_outline(nucleus_at, nucleus_r, rng, roughness=0.05)
    outlines = []
    for _ in range(int(rng.integers(ER_SHEETS[0], ER_SHEETS[1] + 1))):
        r = cell.radius * rng.uniform(*ER_SHEET_RADIUS)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        at = nucleus_at + (nucleus_r + rng.uniform(-0.3, 0.7) * r) * np.array(
            [np.sin(angle), np.cos(angle)]
        )
        outlines.append(random_outline(at, r, rng))

    def excluded(p: np.ndarray) -> np.ndarray:
        out = nucleus.contains(p[:, 0], p[:, 1])
        for o in outlines:
            out |= o.contains(p[:, 0], p[:, 1])
        return out

    nodes, edges = er_network(cell, field_nm, rng, density_per_nm=float(density), exclude=excluded)
    points, weights, dz = tubules(nodes, edges, rng)
    parts = [(points, weights, dz)]
    for o in outlines:
        sp, sw, sz = sheet(o, rng)
        keep = ~nucleus.contains(sp[:, 0], sp[:, 1])
        parts.append((sp[keep], sw[keep], sz[keep]))
    points = np.concatenate([p for p, _, _ in parts])
    weights = np.concatenate([w for _, w, _ in parts])
    height = ER_DEPTH_SD_NM * sample_field(
        smooth_field(field_nm, rng, ER_DEPTH_CORRELATION_NM), points
    )
    depths = np.clip(
        height + np.concatenate([z for _, _, z in parts]), -specimen.DEPTH_NM, specimen.DEPTH_NM
    )
    points, weights, depths = inside(cell, field_nm, points, weights, depths)
    background = specimen.background_field(field_nm, rng)
    return Specimen(points, weights, depths, cell, background, float(field_nm))


# --------------------------------------------------------------------------- #
# F-actin
# --------------------------------------------------------------------------- #


def stress_fibre(
    axis_y: np.ndarray,
    axis_x: np.ndarray,
    axis_theta: np.ndarray,
    filaments: int,
    width_nm: float,
    rng: np.random.Generator,
    *,
    step_nm: float = specimen.STEP_NM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of a bundle of `filaments` parallel filaments along an axis.

    Each filament runs at a fixed sideways offset, uniform across `width_nm`
    (so the bundle's profile is about `width_nm` wide at half maximum), and
    at a height offset uniform across half of it; it covers the axis but for
    a uniform fraction up to :data:`ACTIN_BUNDLE_TAPER` at either end, so the
    fibre tapers. Labels every `step_nm` with a random shift along the axis.

    Parameters
    ----------
    axis_y, axis_x, axis_theta : ndarray
        ``(k,)`` the axis' positions (nm) and tangent angles, labels `step_nm` apart.
    filaments : int
        Filaments in the bundle.
    width_nm : float
        Width of the bundle.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    points, weights, dz : ndarray
        Positions, weights (each filament as bright per length as a
        microtubule) and heights relative to the axis.
    """
    k = len(axis_y)
    offset = rng.uniform(-0.5, 0.5, size=(filaments, 1)) * width_nm
    lift = rng.uniform(-0.25, 0.25, size=(filaments, 1)) * width_nm
    begin = rng.uniform(0.0, ACTIN_BUNDLE_TAPER, size=(filaments, 1)) * k
    end = k - rng.uniform(0.0, ACTIN_BUNDLE_TAPER, size=(filaments, 1)) * k
    index = np.arange(k)[None, :]
    on = (index >= begin) & (index < end)
    shift = rng.uniform(0.0, step_nm, size=(filaments, 1))
    sin, cos = np.sin(axis_theta)[None, :], np.cos(axis_theta)[None, :]
    y = axis_y[None, :] + shift * sin + offset * cos
    x = axis_x[None, :] + shift * cos - offset * sin
    per = rng.lognormal(
        -0.5 * specimen.FILAMENT_LOG_SD**2, specimen.FILAMENT_LOG_SD, size=(filaments, 1)
    )
    weights = np.broadcast_to(per, on.shape)[on] * label_gamma(int(on.sum()), rng)
    dz = np.broadcast_to(lift, on.shape)[on]
    return np.stack([y[on], x[on]], axis=1), weights, dz


#: A piece of a specimen: label positions ``(n, 2)``, weights and heights (nm).
Part = tuple[np.ndarray, np.ndarray, np.ndarray]


def until_length(
    target_nm: float, draw: Callable[[int], list[Part]], guess_nm: float
) -> list[Part]:
    """Draw filaments in batches until their length inside the cell reaches `target_nm`.

    Parameters
    ----------
    target_nm : float
        Filament length wanted (labels x :data:`~biosr.simulate.specimen.STEP_NM`).
    draw : callable
        ``draw(n)`` draws `n` filaments (or bundles) and returns their parts.
    guess_nm : float
        Expected length of one; after the first batch, the mean measured so far.

    Returns
    -------
    list of Part
        Up to :data:`ACTIN_BATCHES` batches, stopping within
        :data:`ACTIN_LENGTH_TOLERANCE` of the target, or at the part (a
        bundle, a batch of filaments) that would overshoot it by more than
        leaving it out would fall short.
    """
    parts: list[Part] = []
    done, drawn, per = 0.0, 0, float(guess_nm)
    for batch in range(ACTIN_BATCHES):
        # The first batch by the guess, then half the shortfall at a time (no large overshoot).
        n = max(1, int(np.ceil((1.0 if batch == 0 else 0.5) * (target_nm - done) / per)))
        drawn += n
        for part in draw(n):
            length = specimen.STEP_NM * len(part[0])
            if done + length > target_nm and done + length - target_nm > target_nm - done:
                return parts  # this one would overshoot more than leaving it out falls short
            parts.append(part)
            done += length
        if done >= (1.0 - ACTIN_LENGTH_TOLERANCE) * target_nm:
            break
        per = max(done / drawn, specimen.STEP_NM)
    return parts


def stress_fibres(
    cell: Cell, field_nm: float, n: int, cell_axis: float, rng: np.random.Generator
) -> list[Part]:
    """`n` stress fibres: nearly straight axes cut by the cell and field, then their filaments.

    Directions are the cell's axis plus :data:`ACTIN_BUNDLE_ANGLE_SD_DEG`, or
    random for a fraction :data:`ACTIN_BUNDLE_RANDOM`; filaments, width and
    height per fibre from :data:`ACTIN_BUNDLE_FILAMENTS`,
    :data:`ACTIN_BUNDLE_WIDTH_NM` and :data:`ACTIN_DEPTH_NM`
    (:func:`stress_fibre`). Heights exclude the TIRF factor.
    """
    angles = cell_axis + np.deg2rad(ACTIN_BUNDLE_ANGLE_SD_DEG) * rng.normal(size=n)
    free = rng.uniform(size=n) < ACTIN_BUNDLE_RANDOM
    angles[free] = rng.uniform(0.0, np.pi, size=int(free.sum()))
    y, x, theta, keep = chains(
        uniform_in_cell(cell, field_nm, n, rng),
        angles,
        rng.uniform(*ACTIN_BUNDLE_LENGTH_NM, size=n),
        ACTIN_BUNDLE_PERSISTENCE_NM,
        rng,
        cell=cell,
        field_nm=field_nm,
    )
    counts = rng.integers(ACTIN_BUNDLE_FILAMENTS[0], ACTIN_BUNDLE_FILAMENTS[1] + 1, size=n)
    widths = rng.uniform(*ACTIN_BUNDLE_WIDTH_NM, size=n)
    # A fibre's axis lies a quarter of its width above the membrane at least (its filaments
    # spread that far up and down).
    heights = rng.uniform(*ACTIN_DEPTH_NM, size=n) + 0.25 * widths
    parts = []
    for i in range(n):
        on = keep[i]
        if on.sum() < 2:
            continue
        p, w, dz = stress_fibre(y[i, on], x[i, on], theta[i, on], int(counts[i]), widths[i], rng)
        ok = ((p >= 0.0) & (p < field_nm)).all(axis=1) & cell.contains(p[:, 0], p[:, 1])
        parts.append((p[ok], w[ok], heights[i] + dz[ok]))
    return parts


def meshwork(cell: Cell, field_nm: float, n: int, rng: np.random.Generator) -> list[Part]:
    """`n` short worm-like actin filaments, denser and branching outwards near the cell's edge.

    Starts are uniform in the cell thinned to a density ``1 + B exp(-d / L)``
    at a distance ``d`` inside the edge (:data:`ACTIN_EDGE_BOOST`,
    :data:`ACTIN_EDGE_NM`); with probability ``exp(-d / L)`` a filament points
    outwards at +-:data:`ACTIN_BRANCH_DEG`, else anywhere. Brightness as a
    microtubule's (per filament, smooth along it, per label); heights exclude
    the TIRF factor.
    """
    step = specimen.STEP_NM
    starts = np.empty((0, 2))
    while len(starts) < n:
        cand = uniform_in_cell(cell, field_nm, 2 * n, rng)
        dy, dx = cand[:, 0] - cell.centre[0], cand[:, 1] - cell.centre[1]
        depth = np.maximum(edge_radius(cell, np.arctan2(dy, dx)) - np.hypot(dy, dx), 0.0)
        boost = ACTIN_EDGE_BOOST * np.exp(-depth / ACTIN_EDGE_NM)
        accept = rng.uniform(size=len(cand)) * (1.0 + ACTIN_EDGE_BOOST) < 1.0 + boost
        starts = np.concatenate([starts, cand[accept]])
    starts = starts[:n]
    dy, dx = starts[:, 0] - cell.centre[0], starts[:, 1] - cell.centre[1]
    outward = np.arctan2(dy, dx)
    near_edge = np.exp(
        -np.maximum(edge_radius(cell, outward) - np.hypot(dy, dx), 0.0) / ACTIN_EDGE_NM
    )
    branch = rng.uniform(size=n) < near_edge
    angles = rng.uniform(0.0, 2.0 * np.pi, size=n)
    sign = rng.integers(0, 2, size=n) * 2 - 1
    spread = np.deg2rad(10.0) * rng.normal(size=n)
    angles[branch] = (outward + sign * np.deg2rad(ACTIN_BRANCH_DEG) + spread)[branch]
    y, x, _, keep = chains(
        starts,
        angles,
        rng.uniform(*ACTIN_LENGTH_NM, size=n),
        ACTIN_PERSISTENCE_NM,
        rng,
        cell=cell,
        field_nm=field_nm,
    )
    k = y.shape[1]
    sd = specimen.FILAMENT_LOG_SD
    per = rng.lognormal(-0.5 * sd**2, sd, size=(n, 1))
    smooth = gaussian_filter1d(
        rng.normal(size=(n, k)), specimen.LABEL_CORRELATION_NM / step, axis=1, mode="wrap"
    )
    smooth /= smooth.std() or 1.0
    sd = specimen.LABEL_LOG_SD
    along = np.exp(sd * smooth - 0.5 * sd**2)
    weights = (per * along)[keep] * label_gamma(int(keep.sum()), rng)
    z = np.broadcast_to(rng.uniform(*ACTIN_DEPTH_NM, size=(n, 1)), keep.shape)[keep]
    return [(np.stack([y[keep], x[keep]], axis=1), weights, z)]


def actin_specimen(
    field_nm: float,
    rng: np.random.Generator,
    *,
    density: float | None = None,
    cell_radius: tuple[float, float] = specimen.CELL_RADIUS,
) -> Specimen:
    """A cell's F-actin at its basal membrane: stress fibres over a dense meshwork.

    Parameters
    ----------
    field_nm : float
        Side of the square field, nm.
    rng : numpy.random.Generator
        Source of randomness.
    density : float, optional
        Filament length per area, 1/nm, the filaments of the stress fibres
        included (a share :data:`ACTIN_BUNDLE_SHARE` of it); default drawn
        log-uniformly in :data:`ACTIN_DENSITY_PER_NM`.
    cell_radius : tuple of float, optional
        Range of the cell's radius as a fraction of `field_nm`.

    Returns
    -------
    Specimen
    """
    cell = specimen.random_cell(field_nm, rng, radius=cell_radius)
    if density is None:
        density = log_uniform(rng, ACTIN_DENSITY_PER_NM)
    total = float(density) * cell_area(cell, field_nm, rng)
    share = float(rng.uniform(*ACTIN_BUNDLE_SHARE))
    cell_axis = float(rng.uniform(0.0, np.pi))

    def fibres(n: int) -> list[Part]:
        return stress_fibres(cell, field_nm, n, cell_axis, rng)

    def mesh(n: int) -> list[Part]:
        return meshwork(cell, field_nm, n, rng)

    guess = np.mean(ACTIN_BUNDLE_LENGTH_NM) * np.mean(ACTIN_BUNDLE_FILAMENTS)
    parts = until_length(share * total, fibres, guess)
    parts += until_length((1.0 - share) * total, mesh, np.mean(ACTIN_LENGTH_NM))
    points = np.concatenate([p for p, _, _ in parts])
    depths = np.concatenate([d for _, _, d in parts])
    weights = np.concatenate([w for _, w, _ in parts]) * tirf_excitation(depths)
    points, weights, depths = inside(cell, field_nm, points, weights, depths)
    background = specimen.background_field(field_nm, rng)
    return Specimen(points, weights, depths, cell, background, float(field_nm))


# --------------------------------------------------------------------------- #
# Dispatch
# --------------------------------------------------------------------------- #


def microtubule_specimen(
    field_nm: float,
    rng: np.random.Generator,
    *,
    density: float | None = None,
    cell_radius: tuple[float, float] = specimen.CELL_RADIUS,
) -> Specimen:
    """Microtubules: :func:`biosr.simulate.specimen.random_specimen`, the same draws."""
    return specimen.random_specimen(field_nm, rng, density_per_nm=density, cell_radius=cell_radius)


#: The specimen generator of each structure (F-actin_Nonlinear images F-actin).
GENERATORS: dict[str, Callable[..., Specimen]] = {
    "CCPs": ccp_specimen,
    "ER": er_specimen,
    "Microtubules": microtubule_specimen,
    "F-actin": actin_specimen,
    "F-actin_Nonlinear": actin_specimen,
}


def draw_specimen(
    structure: str | layout.Structure,
    field_nm: float,
    rng: np.random.Generator,
    *,
    density: float | None = None,
    cell_radius: tuple[float, float] = specimen.CELL_RADIUS,
) -> Specimen:
    """Draw a cell of `structure` over a square field.

    Parameters
    ----------
    structure : str or layout.Structure
        A name of :data:`biosr.layout.STRUCTURES` (case-insensitive) or its entry.
    field_nm : float
        Side of the square field, nm.
    rng : numpy.random.Generator
        Source of randomness; the same state gives the same specimen.
    density : float, optional
        The structure's own density, in :data:`DENSITY_UNITS`; default drawn
        per cell in :data:`DENSITY_RANGES`.
    cell_radius : tuple of float, optional
        Range of the cell's radius as a fraction of `field_nm`
        (:func:`biosr.simulate.specimen.random_cell`).

    Returns
    -------
    Specimen

    Raises
    ------
    ValueError
        For a name that is not a structure.

    Examples
    --------
    >>> import numpy as np
    >>> spec = draw_specimen("CCPs", 8000.0, np.random.default_rng(0))
    >>> bool(((spec.points >= 0) & (spec.points < 8000.0)).all())
    True
    """
    entry = layout.get_structure(structure)
    return GENERATORS[entry.name](field_nm, rng, density=density, cell_radius=cell_radius)


# --------------------------------------------------------------------------- #
# Previews
# --------------------------------------------------------------------------- #

#: Side of a preview's field in WF pixels (62.6 nm): 12 um.
PREVIEW_SIZE = 192


def save_previews(
    folder: str | os.PathLike[str],
    *,
    size: int = PREVIEW_SIZE,
    seed: int = 0,
    structures: tuple[str, ...] | None = None,
) -> list[Path]:
    """Write one PNG per structure: its labels, noise-free widefield and ideal SIM image.

    Each structure's cell is drawn by :func:`draw_specimen` and imaged by
    :func:`biosr.simulate.imaging.image_specimen` on the structure's grid. Four
    panels: the labels splatted on the GT grid (31.3 nm, or 20.1 nm for nonlinear
    SIM), the noise-free widefield image, the ideal SIM image and its busiest
    quarter-side window magnified 4 x. Written as 8-bit grey PNGs
    (about 50-150 KB). matplotlib (and its Pillow) is imported here only.

    Parameters
    ----------
    folder : path-like
        Output folder; files ``<structure>.png``.
    size : int, optional
        Side of the field in WF pixels.
    seed : int, optional
        Seed of every structure's cell.
    structures : tuple of str, optional
        Names to draw (default: every structure; F-actin_Nonlinear shows the
        F-actin specimen on its 3x grid, with its nonlinear-SIM-limited GT).

    Returns
    -------
    list of Path
        The PNG files.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from biosr.io.atomic import atomic_path
    from biosr.simulate import imaging

    names = structures or tuple(GENERATORS)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        entry = layout.get_structure(name)
        scale, fine_nm = entry.gt_scale, entry.pixel_size_gt_nm
        padded = imaging.structure_padded_size(size, entry)
        pad = (padded - size) // 2
        crop = slice(scale * pad, scale * (pad + size))
        spec = draw_specimen(entry, imaging.field_nm(size, entry), np.random.default_rng(seed))
        clean = imaging.image_specimen(spec, size, structure=entry)
        grid = scale * padded
        labels = specimen.render_points(spec.points, spec.weights, (grid, grid), fine_nm)[
            crop, crop
        ]
        # A quarter of the field's side, magnified where most of it is structure: rings,
        # junctions, fibres.
        side = len(clean.gt) // 4
        busy = uniform_filter(
            (clean.gt > 0.25 * np.percentile(clean.gt, 99.5)).astype(np.float64), side
        )
        half = side // 2
        cy, cx = np.unravel_index(
            np.argmax(busy[half:-half, half:-half]), (len(busy) - 2 * half,) * 2
        )
        zoom = (slice(cy, cy + side), slice(cx, cx + side))
        um = fine_nm / 1000.0
        panels = (
            (gaussian_filter(labels, 0.5), f"labels ({fine_nm:.1f} nm grid)"),
            (clean.wf, f"widefield, noise-free ({entry.pixel_size_wf_nm:g} nm)"),
            (clean.gt, f"ideal SIM ({fine_nm:.1f} nm)"),
            (clean.gt[zoom], f"ideal SIM, {side * um:.1f} um of it"),
        )
        fig, axes = plt.subplots(1, 4, figsize=(15, 4.1), constrained_layout=True)
        for ax, (image, title) in zip(axes, panels, strict=True):
            lo, hi = np.percentile(image, [0.5, 99.7])
            ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(title)
            ax.set_axis_off()
        text = entry.description
        if not text.lower().startswith(entry.name.lower()):
            text = f"{entry.name}: {text}"
        fig.suptitle(f"{text} ({entry.modality}; {size * entry.pixel_size_wf_nm / 1000:.0f} um)")
        png = folder / f"{entry.name}.png"
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=72, format="png")
        plt.close(fig)
        buffer.seek(0)
        with Image.open(buffer) as rgba, atomic_path(png) as tmp:
            # The panels are grey: an 8-bit grey PNG is a third of matplotlib's RGBA one.
            rgba.convert("L").save(tmp, format="png", optimize=True)
        out.append(png)
    return out


if __name__ == "__main__":  # pragma: no cover - regenerates the README's docs/previews
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m biosr.simulate.structures", description="Write the specimen previews."
    )
    parser.add_argument("--previews", type=Path, required=True, metavar="DIR")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for written in save_previews(arguments.previews, seed=arguments.seed):
        print(written)
