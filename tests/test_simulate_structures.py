"""Physics of the simulated specimens of every structure: pits, ER network, actin fibres.

Each property is measured on a rendered image of the labels (or the imaging
chain's ideal SIM image), not read back from the generator's own draws.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import convolve, gaussian_filter, grey_dilation, label, map_coordinates

from biosr import layout
from biosr.simulate import imaging, specimen, structures

#: Sigma of the label size the imaging chain adds to every structure, nm.
LABEL_SIGMA = specimen.FILAMENT_WIDTH_NM / (2.0 * np.sqrt(2.0 * np.log(2.0)))
NEW = ("CCPs", "ER", "F-actin")
FULL = (2.0, 2.0)  # a cell covering the whole field
EIGHT = np.ones((3, 3), dtype=bool)


def fwhm(profile: np.ndarray, pixel_nm: float) -> float:
    """Full width at half maximum of a single-peaked profile, linearly interpolated."""
    half = profile.max() / 2.0
    above = np.flatnonzero(profile >= half)
    i0, i1 = above[0], above[-1]
    left = i0 - 1 + (half - profile[i0 - 1]) / (profile[i0] - profile[i0 - 1])
    right = i1 + (profile[i1] - half) / (profile[i1] - profile[i1 + 1])
    return float((right - left) * pixel_nm)


def radial_profile(image: np.ndarray, centre_px: tuple[float, float], step_px: float, n: int):
    """Mean of `image` on circles about `centre_px` (pixel coordinates), radii ``k * step_px``."""
    radii = np.arange(n) * step_px
    theta = np.linspace(0.0, 2.0 * np.pi, 90, endpoint=False)
    yy = centre_px[0] + radii[:, None] * np.sin(theta)
    xx = centre_px[1] + radii[:, None] * np.cos(theta)
    return map_coordinates(image, [yy, xx], order=1).mean(axis=1)


def isolated_pits(diameter: float, cap: float, count: int, seed: int, field: float):
    """`count` pits of one size at the field's centre (their labels summed: the mean pit)."""
    rng = np.random.default_rng(seed)
    centres = np.full((count, 2), field / 2.0)
    points, weights, depths = structures.coated_pits(
        centres, np.full(count, diameter), np.full(count, cap), rng
    )
    return points, weights * structures.tirf_excitation(depths), depths


def ring_diameter(diameter: float, *, blur_nm: float, cap: float = 150.0, seed: int = 0):
    """Peak-to-peak diameter of one pit's ring on a 2 nm render (optionally label-blurred):
    twice the radius of the brightest 2 nm annulus about the pit's axis."""
    field, px = 600.0, 2.0
    points, weights, _ = isolated_pits(diameter, cap, 1, seed, field)
    n = int(field / px)
    image = specimen.render_points(points, weights, (n, n), px)
    if blur_nm:
        image = gaussian_filter(image, blur_nm / px)
    yy, xx = (np.indices(image.shape) + 0.5) * px - field / 2.0
    annulus = (np.hypot(yy, xx) / px).astype(np.int64).ravel()
    profile = np.bincount(annulus, image.ravel()) / np.bincount(annulus)
    return 2.0 * px * (float(np.argmax(profile[: int(150.0 / px)])) + 0.5)


def structure_coherence(spec: specimen.Specimen, px: float = layout.PIXEL_SIZE_GT_NM) -> float:
    """Orientation order of a cell's image: coherence of its structure tensor summed in the cell."""
    from skimage.feature import structure_tensor

    n = int(spec.field_nm / px)
    image = gaussian_filter(specimen.render_points(spec.points, spec.weights, (n, n), px), 1.0)
    arr, arc, acc = structure_tensor(image, sigma=2.0, order="rc")
    cell = specimen.cell_image(spec.cell, (n, n), px)
    a, b, c = arr[cell].mean(), arc[cell].mean(), acc[cell].mean()
    return float(np.hypot(a - c, 2.0 * b) / (a + c))


def junction_degrees(mask: np.ndarray) -> np.ndarray:
    """Histogram of branches per junction of the skeleton of `mask` (index = degree).

    A junction is a connected cluster of skeleton pixels with 3 or more
    skeleton neighbours; its degree is the number of distinct skeleton
    segments (the skeleton less all junction pixels) touching it.
    """
    from skimage.morphology import skeletonize

    skeleton = skeletonize(mask)
    neighbours = convolve(skeleton.astype(np.int64), EIGHT.astype(np.int64), mode="constant")
    branch = skeleton & (neighbours - 1 >= 3)
    clusters, n = label(branch, structure=EIGHT)
    segments, _ = label(skeleton & ~branch, structure=EIGHT)
    grown = grey_dilation(clusters, footprint=EIGHT)
    touch = (grown > 0) & (segments > 0)
    pairs = np.unique(np.stack([grown[touch], segments[touch]]), axis=1)
    return np.bincount(np.bincount(pairs[0], minlength=n + 1)[1:])


# --------------------------------------------------------------------------- #
# Every structure
# --------------------------------------------------------------------------- #


def test_microtubules_are_random_specimen_bit_identical():
    field = imaging.field_nm(64)
    for kwargs in ({}, {"density": 5e-3, "cell_radius": (0.7, 0.8)}):
        a_rng, b_rng = np.random.default_rng(7), np.random.default_rng(7)
        a = structures.draw_specimen("Microtubules", field, a_rng, **kwargs)
        b = specimen.random_specimen(
            field,
            b_rng,
            density_per_nm=kwargs.get("density"),
            cell_radius=kwargs.get("cell_radius", specimen.CELL_RADIUS),
        )
        for x, y in zip(a, b, strict=True):
            if isinstance(x, np.ndarray):
                assert np.array_equal(x, y)
        assert a.cell.centre == b.cell.centre and np.array_equal(a.cell.harmonics, b.cell.harmonics)
        assert a_rng.random() == b_rng.random()  # the same number of draws


def test_nonlinear_actin_is_the_actin_specimen_and_names_are_checked():
    field = imaging.field_nm(48)
    a = structures.draw_specimen("F-actin_Nonlinear", field, np.random.default_rng(3))
    b = structures.draw_specimen(layout.get_structure("f-actin"), field, np.random.default_rng(3))
    assert np.array_equal(a.points, b.points) and np.array_equal(a.weights, b.weights)
    assert set(structures.GENERATORS) == set(layout.STRUCTURES) == set(structures.DENSITY_UNITS)
    with pytest.raises(ValueError, match="unknown structure"):
        structures.draw_specimen("Mitochondria", field, np.random.default_rng(0))


@pytest.mark.parametrize("name", NEW)
def test_same_seed_same_specimen_another_seed_another(name):
    field = imaging.field_nm(64)
    a = structures.draw_specimen(name, field, np.random.default_rng(11))
    b = structures.draw_specimen(name, field, np.random.default_rng(11))
    c = structures.draw_specimen(name, field, np.random.default_rng(12))
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y)
    assert len(a.points) > 100
    assert len(a.points) != len(c.points) or not np.array_equal(a.points, c.points)


@pytest.mark.parametrize("name", (*NEW, "Microtubules"))
def test_labels_inside_the_field_and_the_cell_at_imaged_depths(name):
    field = imaging.field_nm(96)
    for seed in range(2):
        spec = structures.draw_specimen(name, field, np.random.default_rng(seed))
        p = spec.points
        assert spec.cell.contains(p[:, 0], p[:, 1]).all()
        assert np.abs(spec.depths).max() <= specimen.DEPTH_NM
        assert spec.weights.min() > 0 and spec.field_nm == field
        if name == "Microtubules":
            continue  # its filaments may leave the field (they are dropped when imaging)
        assert ((p >= 0) & (p < field)).all()
        if layout.get_structure(name).modality == "TIRF-SIM":
            # TIRF: everything within a few hundred nm of the membrane, excited less above it.
            assert spec.depths.min() >= 0 and spec.depths.max() < 300
            high = spec.depths > 150
            assert spec.weights[high].mean() < 0.5 * spec.weights[spec.depths < 50].mean()


def test_every_structure_images_through_the_unchanged_chain():
    size = 48
    for name in NEW:
        spec = structures.draw_specimen(name, imaging.field_nm(size), np.random.default_rng(1))
        clean = imaging.image_specimen(spec, size)
        assert clean.wf.shape == (size, size) and clean.gt.shape == (2 * size, 2 * size)
        assert np.isfinite(clean.gt).all() and clean.gt.max() > 3 * np.median(clean.gt)


# --------------------------------------------------------------------------- #
# CCPs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("diameter", [100.0, 130.0, 160.0, 200.0])
def test_ccp_ring_diameter_on_the_rendered_labels(diameter):
    # The labels' ring (2 nm render): within 15% of the drawn diameter.
    assert ring_diameter(diameter, blur_nm=0.0) == pytest.approx(diameter, rel=0.15)


@pytest.mark.parametrize("diameter", [180.0, 200.0])
def test_ccp_ring_diameter_with_the_label_size(diameter):
    # With the imaging chain's 25 nm label size the peaks move inwards by about 20 nm: large
    # rings stay within 15%; smaller pits are spots at SIM resolution in any case.
    measured = [ring_diameter(diameter, blur_nm=LABEL_SIGMA, seed=s) for s in range(3)]
    assert np.median(measured) == pytest.approx(diameter, rel=0.15)
    assert np.median(measured) < diameter


def test_ccp_large_deep_pits_are_hollow_rings_small_ones_spots_at_sim_resolution():
    size = 16
    field = imaging.field_nm(size)
    pad = (imaging.padded_size(size) - size) // 2
    centre = field / 2.0 / layout.PIXEL_SIZE_GT_NM - 2 * pad - 0.5
    dips = {}
    for diameter in (100.0, 200.0):
        points, weights, depths = isolated_pits(diameter, 150.0, 20, 0, field)
        cell = specimen.Cell((field / 2, field / 2), 10 * field, np.zeros((0, 3)))
        spec = specimen.Specimen(points, weights, depths, cell, np.zeros((0, 0)), field)
        gt = imaging.image_specimen(spec, size, haze=0.0).gt
        profile = radial_profile(gt, (centre, centre), 5.0 / layout.PIXEL_SIZE_GT_NM, 40)
        dips[diameter] = profile[0] / profile.max()
    assert dips[100.0] == pytest.approx(1.0)  # a spot: brightest at its centre
    assert dips[200.0] < 0.9  # a ring: its centre darker than its rim


def test_ccp_density_and_sizes_in_a_drawn_cell():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    field = 10_000.0
    spec = structures.ccp_specimen(field, np.random.default_rng(4), density=1.5, cell_radius=FULL)
    pairs = cKDTree(spec.points).query_pairs(50.0, output_type="ndarray")
    n = len(spec.points)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    count, pit = connected_components(graph, directed=False)
    assert count / (field / 1000.0) ** 2 == pytest.approx(1.5, rel=0.2)
    # Each pit's extent: twice the 95th percentile of its labels' distance to their centroid.
    sizes = []
    for k in np.flatnonzero(np.bincount(pit) >= 20):
        p = spec.points[pit == k]
        sizes.append(2 * np.percentile(np.hypot(*(p - p.mean(axis=0)).T), 95))
    lo, hi = structures.CCP_DIAMETER_NM
    assert np.mean((np.array(sizes) > 0.7 * lo) & (np.array(sizes) < 1.1 * hi)) > 0.95


# --------------------------------------------------------------------------- #
# ER
# --------------------------------------------------------------------------- #


def er_graph(seed: int, field: float = 8000.0, density: float = 2.5e-3):
    cell = specimen.Cell((field / 2, field / 2), 10 * field, np.zeros((0, 3)))
    rng = np.random.default_rng(seed)
    return (*structures.er_network(cell, field, rng, density_per_nm=density), rng)


def test_er_network_has_three_way_junctions_and_its_drawn_density():
    field, density = 8000.0, 2.5e-3
    for seed in range(2):
        nodes, edges, _ = er_graph(seed, field, density)
        degree = np.bincount(edges.ravel(), minlength=len(nodes))
        assert degree.max() == 3 and degree.min() >= 1
        assert np.mean(degree == 3) > 0.5
        lengths = np.hypot(*(nodes[edges[:, 0]] - nodes[edges[:, 1]]).T)
        assert lengths.min() >= structures.ER_MIN_EDGE_NM * 0.9
        assert lengths.sum() / field**2 == pytest.approx(density, rel=0.15)


def test_er_rendered_junctions_are_three_way():
    px = 20.0
    for seed in range(2):
        nodes, edges, rng = er_graph(seed)
        points, weights, _ = structures.tubules(nodes, edges, rng)
        n = int(8000.0 / px)
        image = gaussian_filter(specimen.render_points(points, weights, (n, n), px), 40.0 / px)
        mask = image > 0.3 * np.percentile(image[image > 0], 99)
        hist = junction_degrees(mask)
        assert hist.sum() > 100
        assert hist[3] / hist[3:].sum() > 0.85


def test_er_sheets_are_filled_membranes_with_fenestrations():
    rng = np.random.default_rng(2)
    outline = structures.random_outline(np.array([2000.0, 2000.0]), 1200.0, rng, roughness=0.0)
    points, weights, dz = structures.sheet(outline, rng)
    area = np.pi * 1200.0**2
    # Two membranes' labels over the area, less the fenestrations.
    full = 2 * structures.ER_WEIGHT_PER_NM2 * area
    assert weights.sum() / full == pytest.approx(1 - structures.ER_FENESTRA_FRACTION, abs=0.05)
    assert set(np.unique(dz)) == {-25.0, 25.0}
    px = 10.0
    image = specimen.render_points(points, weights, (400, 400), px)
    disc = np.hypot(*(np.indices((400, 400)) + 0.5 - 200.0)) < 100  # 1 um around the centre
    empty = gaussian_filter(image, 1.0)[disc] < 0.1 * image[disc].mean()
    assert 0.02 < empty.mean() < 0.2  # holes of 30-80 nm


def filled_area_um2(points: np.ndarray, weights: np.ndarray, field: float) -> float:
    """Area where labels cover all of a 280 nm square (31.3 nm render): sheets, not tubules."""
    from scipy.ndimage import minimum_filter

    px = layout.PIXEL_SIZE_GT_NM
    n = int(field / px)
    image = gaussian_filter(specimen.render_points(points, weights, (n, n), px), 1.0)
    full = minimum_filter(image, 9) > 0.2 * np.percentile(image[image > 0], 99)
    return float(full.sum() * (px / 1000.0) ** 2)


def test_er_cell_has_a_nucleus_and_filled_sheets_its_tubules_do_not_fill():
    field = imaging.field_nm(192)
    spec = structures.er_specimen(field, np.random.default_rng(0))
    px = 62.6
    n = int(field / px)
    image = gaussian_filter(specimen.render_points(spec.points, spec.weights, (n, n), px), 1.0)
    cell = specimen.cell_image(spec.cell, (n, n), px)
    dark, _ = label(cell & (image < 0.02 * image.max()))
    largest = np.bincount(dark.ravel())[1:].max() * (px / 1000) ** 2
    lo = structures.ER_NUCLEUS[0]
    assert largest > 0.5 * np.pi * (lo * spec.cell.radius / 1000) ** 2  # the nucleus, um^2
    assert filled_area_um2(spec.points, spec.weights, field) > 0.2  # sheets
    nodes, edges, rng = er_graph(0, 12_000.0, structures.ER_DENSITY_PER_NM[1])
    points, weights, _ = structures.tubules(nodes, edges, rng)
    assert filled_area_um2(points, weights, 12_000.0) < 0.05  # the densest network: no sheet


# --------------------------------------------------------------------------- #
# F-actin
# --------------------------------------------------------------------------- #


def test_actin_stress_fibres_are_more_ordered_than_microtubules():
    field = imaging.field_nm(160)
    actin, tubes = [], []
    for seed in range(4):
        rng_a, rng_m = np.random.default_rng(seed), np.random.default_rng(seed)
        actin.append(structure_coherence(structures.draw_specimen("F-actin", field, rng_a)))
        tubes.append(structure_coherence(structures.draw_specimen("Microtubules", field, rng_m)))
    assert np.median(actin) > 2.0 * np.median(tubes)
    assert np.median(actin) > 0.3


@pytest.mark.parametrize("width", [100.0, 200.0, 300.0])
def test_actin_stress_fibre_width(width):
    rng = np.random.default_rng(0)
    px, length = 5.0, 3000.0
    k = int(length / specimen.STEP_NM)
    axis_y, axis_x = np.full(k, 1000.0), np.arange(k) * specimen.STEP_NM
    n = (int(2000.0 / px), int(length / px))
    profiles = []
    for _ in range(8):
        p, w, _ = structures.stress_fibre(axis_y, axis_x, np.zeros(k), 20, width, rng)
        image = gaussian_filter(specimen.render_points(p, w, n, px), LABEL_SIGMA / px)
        profiles.append(image[:, n[1] // 3 : 2 * n[1] // 3].mean(axis=1))
    assert fwhm(np.mean(profiles, axis=0), px) == pytest.approx(width, rel=0.15)


def test_actin_single_filaments_are_label_thin_and_density_is_kept():
    field = 8000.0
    spec = structures.actin_specimen(
        field, np.random.default_rng(5), density=20e-3, cell_radius=FULL
    )
    area = structures.cell_area(spec.cell, field, np.random.default_rng(0))
    assert len(spec.points) * specimen.STEP_NM / area == pytest.approx(20e-3, rel=0.05)
    # One meshwork filament across a pixel grid: as thin as the label.
    rng = np.random.default_rng(1)
    cell = specimen.Cell((1000.0, 1000.0), 1e5, np.zeros((0, 3)))
    y, x, _, keep = structures.chains(
        np.array([[1000.0, 1000.0]]), np.zeros(1), np.array([1500.0]), 1e9, rng, cell=cell
    )
    px = 2.0
    points = np.stack([y[keep], x[keep]], axis=1)
    image = specimen.render_points(points, np.ones(len(points)), (1000, 1000), px)
    image = gaussian_filter(image, (LABEL_SIGMA / px, 10.0))
    assert fwhm(image[:, 500], px) == pytest.approx(specimen.FILAMENT_WIDTH_NM, rel=0.15)


# --------------------------------------------------------------------------- #
# Previews
# --------------------------------------------------------------------------- #


def test_preview_png_is_small_grey_and_reproducible(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    (png,) = structures.save_previews(tmp_path / "a", size=48, structures=("CCPs",))
    (again,) = structures.save_previews(tmp_path / "b", size=48, structures=("CCPs",))
    assert png.name == "CCPs.png" and png.read_bytes() == again.read_bytes()
    assert png.stat().st_size < 150_000
    with Image.open(png) as image:
        assert image.mode == "L" and image.width > 3 * 150
