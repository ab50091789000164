"""SIM illumination parameters: the record of them, its JSON file, and their estimation from frames.

Per orientation, the pattern ``1 + m cos(2 pi k.x + phi_j)`` is found from the
separated bands (Gustafsson 2000; Wicker et al. 2013):

1. the wave vector ``k``: the peak of the cross-correlation of the ``+1`` band
   with the ``0`` band over all shifts (both weighted by the OTF, low
   frequencies masked), searched in an annulus around the detection cutoff, then
   refined to a fraction of a frequency pixel by a local upsampled DFT and a
   parabola through its maximum;
2. the phase of each frame: the argument of the overlap of that frame (minus
   the 0 band) with the 0 band shifted by ``k``, re-separating the bands with
   the phases found (:data:`PHASE_ITERATIONS` times), so unequal phase steps
   are measured rather than assumed;
3. the modulation ``m``: twice the ratio of the ``+1`` band to the shifted 0 band
   in their overlap, with the 0 band's noise power (measured beyond the OTF
   cutoff) taken out of the denominator.

Positions ``x`` are in nm from the centre of the frame (see :mod:`.bands`); ``k`` is
in cycles per nm as ``(ky, kx)`` (rows, columns). ``k`` and ``-k`` with negated
phases describe the same pattern; estimates are given with the wave vector's
angle in ``[0, 180)`` degrees.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft

from biosr import layout, optics
from biosr.errors import DataError
from biosr.io.atomic import write_text
from biosr.reconstruct import bands as _bands

#: Annulus searched for the pattern frequency, as fractions of the OTF cutoff (the bands
#: overlap only below twice the cutoff; BioSR's MT pattern is about 1.1 x the cutoff).
SEARCH_RANGE = (0.75, 1.5)
#: Frequencies below this fraction of the OTF cutoff are left out of every correlation
#: (the unmodulated out-of-focus haze lives there, and the bands' leaks).
LOW_CUT = 0.1
#: OTF values below this are left out of the correlations.
OTF_FLOOR = 0.02
#: Upsampling of the DFT that refines the wave vector (steps per frequency pixel).
UPSAMPLE = 16
#: Re-separations with the measured phases.
PHASE_ITERATIONS = 4
#: Smallest ratio of the correlation peak to the annulus' median for a band to count as found.
MIN_CONTRAST = 6.0
#: Noise power is measured beyond this multiple of the OTF cutoff.
NOISE_FROM = 1.1
#: Version of the JSON parameter file.
PARAMS_FORMAT = 1


@dataclass(frozen=True)
class SimParameters:
    """Illumination of a raw 2-D SIM stack: wave vector, 3 phases, modulation per orientation.

    Attributes
    ----------
    wavevectors_per_nm : tuple of (float, float)
        Per orientation, the pattern's wave vector ``(ky, kx)`` in cycles per nm.
    phases_deg : tuple of (float, float, float)
        Per orientation, the phase ``phi_j`` of each of its 3 frames, degrees,
        for positions in nm from the frame's centre, raw pixel ``((N - 1) / 2, (N - 1) / 2)``.
    modulation : tuple of float
        Per orientation, the modulation depth ``m`` (1 = full contrast).
    pixel_size_nm : float
        Raw pixel size the parameters were measured at (kept for the record;
        ``k`` is physical and does not depend on it).
    """

    wavevectors_per_nm: tuple[tuple[float, float], ...]
    phases_deg: tuple[tuple[float, ...], ...]
    modulation: tuple[float, ...]
    pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM

    def __post_init__(self) -> None:
        k = tuple((float(ky), float(kx)) for ky, kx in self.wavevectors_per_nm)
        ph = tuple(tuple(float(p) for p in row) for row in self.phases_deg)
        m = tuple(float(v) for v in self.modulation)
        n = _bands.ORIENTATIONS
        if len(k) != n or len(ph) != n or len(m) != n or any(len(r) != _bands.PHASES for r in ph):
            raise ValueError(
                f"SIM parameters need {n} wave vectors, {n} x {_bands.PHASES} phases and "
                f"{n} modulations"
            )
        values = [v for row in k for v in row] + [v for row in ph for v in row] + list(m)
        if not all(math.isfinite(v) for v in values) or any(math.hypot(*v) == 0 for v in k):
            raise ValueError("SIM parameters must be finite, with non-zero wave vectors")
        object.__setattr__(self, "wavevectors_per_nm", k)
        object.__setattr__(self, "phases_deg", ph)
        object.__setattr__(self, "modulation", m)
        object.__setattr__(self, "pixel_size_nm", float(self.pixel_size_nm))

    @property
    def period_nm(self) -> tuple[float, ...]:
        """Pattern period ``1 / |k|`` of each orientation, nm."""
        return tuple(1.0 / math.hypot(ky, kx) for ky, kx in self.wavevectors_per_nm)

    @property
    def angle_deg(self) -> tuple[float, ...]:
        """Angle of each wave vector from the x (column) axis towards +y (rows), degrees."""
        return tuple(math.degrees(math.atan2(ky, kx)) for ky, kx in self.wavevectors_per_nm)

    @classmethod
    def from_pattern(
        cls,
        period_nm: float | tuple[float, ...],
        angle_deg: tuple[float, ...],
        phases_deg: tuple[tuple[float, ...], ...],
        modulation: float | tuple[float, ...],
        *,
        pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM,
    ) -> SimParameters:
        """Parameters from periods (one or one per orientation), angles, phases and modulations.

        Examples
        --------
        >>> p = SimParameters.from_pattern(180.0, (85.0, 145.0, 205.0), ((0, 120, 240),) * 3, 0.5)
        >>> round(p.period_nm[1], 6), round(p.angle_deg[2], 6)
        (180.0, -155.0)
        """
        n = len(angle_deg)
        periods = (period_nm,) * n if np.isscalar(period_nm) else tuple(period_nm)
        mods = (modulation,) * n if np.isscalar(modulation) else tuple(modulation)
        k = tuple(
            (math.sin(math.radians(a)) / p, math.cos(math.radians(a)) / p)
            for p, a in zip(periods, angle_deg, strict=True)
        )
        return cls(k, tuple(phases_deg), mods, pixel_size_nm)

    def to_dict(self) -> dict:
        """A JSON-able dict; the derived periods and angles are included for readers."""
        return {
            "format": PARAMS_FORMAT,
            "frame_order": "orientation-major: frame = 3 * orientation + phase",
            "position_origin": "frame centre, raw pixel ((N-1)/2, (N-1)/2); k = (ky, kx), y = rows",
            "pixel_size_nm": self.pixel_size_nm,
            "wavevectors_per_nm": [list(k) for k in self.wavevectors_per_nm],
            "period_nm": list(self.period_nm),
            "angle_deg": list(self.angle_deg),
            "phases_deg": [list(p) for p in self.phases_deg],
            "modulation": list(self.modulation),
        }

    @classmethod
    def from_dict(cls, data: dict) -> SimParameters:
        """Parameters from :meth:`to_dict`'s form (derived fields are ignored).

        Raises
        ------
        ValueError
            If a field is missing or malformed.
        """
        try:
            return cls(
                tuple(tuple(k) for k in data["wavevectors_per_nm"]),
                tuple(tuple(p) for p in data["phases_deg"]),
                tuple(data["modulation"]),
                float(data.get("pixel_size_nm", layout.PIXEL_SIZE_WF_NM)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a SIM parameter record ({type(exc).__name__}: {exc})") from None


def read_params(path: str | os.PathLike[str]) -> SimParameters:
    """Read a parameter file written by :func:`write_params`.

    Raises
    ------
    DataError
        If the file is missing, not JSON or not a parameter record.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SimParameters.from_dict(data)
    except FileNotFoundError:
        raise DataError(f"{path}: parameter file not found; pass a JSON file --params") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror})") from None
    except ValueError as exc:  # JSONDecodeError is one
        raise DataError(
            f"{path}: not a SIM parameter file ({exc}); write one with biosr reconstruct"
        ) from None


def write_params(path: str | os.PathLike[str], params: SimParameters) -> Path:
    """Write `params` as JSON to `path`, atomically."""
    path = Path(path)
    write_text(path, json.dumps(params.to_dict(), indent=2) + "\n")
    return path


def estimate_parameters(
    stack: np.ndarray,
    *,
    pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM,
    otf_kind: str = "measured",
    search_range: tuple[float, float] = SEARCH_RANGE,
    min_contrast: float = MIN_CONTRAST,
) -> SimParameters:
    """Estimate wave vectors, phases and modulations of a raw 2-D SIM stack.

    Parameters
    ----------
    stack : ndarray
        ``(9, N, N)`` raw frames in BioSR's order (``frame = 3 * orientation + phase``).
    pixel_size_nm : float, optional
        Raw pixel size (default :data:`biosr.layout.PIXEL_SIZE_WF_NM`).
    otf_kind : {'measured', 'airy'}, optional
        Detection OTF used as the correlations' weight (:func:`biosr.optics.otf`).
    search_range : (float, float), optional
        Annulus searched for ``|k|``, in fractions of the OTF cutoff.
    min_contrast : float, optional
        Smallest correlation peak over the annulus' median accepted as a band.

    Returns
    -------
    SimParameters

    Raises
    ------
    DataError
        If the stack is malformed (not 9 square frames, not finite) or an
        orientation's bands cannot be found (too dim, no pattern).
    """
    stack = _bands.check_stack(stack)
    return estimate_from_spectra(
        _bands.pad_frames(stack),
        _bands.pad_frames(stack, taper=_bands.ESTIMATION_TAPER),
        pixel_size_nm=pixel_size_nm,
        otf_kind=otf_kind,
        search_range=search_range,
        min_contrast=min_contrast,
    )


def estimate_from_spectra(
    padded: _bands.Padded,
    windowed: _bands.Padded,
    *,
    pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM,
    otf_kind: str = "measured",
    search_range: tuple[float, float] = SEARCH_RANGE,
    min_contrast: float = MIN_CONTRAST,
) -> SimParameters:
    """:func:`estimate_parameters` on a stack padded and FFT'd by ``bands.pad_frames``.

    `padded` (ramp padding) gives the wave vectors: an edge window biases them
    towards higher frequencies. `windowed` (``taper`` > 0, the same size) gives
    the phases and modulations: a ramp dilutes the modulation, and the window
    keeps the bands' ratio exact.
    """
    size = padded.size
    fine = 2 * size
    cut = _bands.otf_cutoff_per_nm(otf_kind)
    step = 1.0 / (size * pixel_size_nm)  # frequency pixel of both grids, cycles/nm
    h = _bands.band_otf((size, size), pixel_size_nm, otf_kind)
    fy, fx = optics.frequency_grid((size, size), pixel_size_nm)
    rho_raw = np.hypot(fy, fx)
    mask = (rho_raw > LOW_CUT * cut) & (h > OTF_FLOOR)
    weight = (h * h * mask).astype(np.complex64)  # the band's own OTF times the weight H
    noise_region = rho_raw > NOISE_FROM * cut
    fyf, fxf = optics.frequency_grid((fine, fine), pixel_size_nm / 2.0)
    rho = np.hypot(fyf, fxf)
    annulus = (rho >= search_range[0] * cut) & (rho <= search_range[1] * cut)
    pos = _bands.coordinates_nm(padded, pixel_size_nm, fine=False)
    nominal = np.asarray(_bands.NOMINAL_PHASES)
    # Overlap of the two bands' weights at each shift: without dividing by it the
    # correlation favours short shifts, and a filament's streak in the spectrum
    # makes a ridge whose inner end can beat the true peak.
    g = scipy.fft.ifft2(_bands.fine_spectrum(weight), workers=1)
    overlap_q = np.abs(scipy.fft.fft2(np.abs(g) ** 2, workers=1))
    overlap_q = np.maximum(overlap_q, overlap_q.max() * 1e-3)

    # 1. coarse wave vectors: correlation over every shift, on the 2x grid (no wrap)
    coarse = []
    for a in range(_bands.ORIENTATIONS):
        frames = padded.spectra[_bands.PHASES * a : _bands.PHASES * (a + 1)]
        sep = _bands.separation_matrix(nominal).astype(np.complex64)
        pair = np.stack([_bands.combine(sep[0], frames), _bands.combine(sep[1], frames)])
        e0, ep = scipy.fft.ifft2(_bands.fine_spectrum(pair * weight), workers=1)
        corr = np.abs(scipy.fft.fft2(ep * e0.conj(), workers=1)) / overlap_q
        peak = int(np.argmax(np.where(annulus, corr, -1.0)))
        median = max(float(np.median(corr[annulus])), 1e-30)
        coarse.append((corr, median, corr.flat[peak] / median, np.unravel_index(peak, corr.shape)))
    peaks = [(float(fyf[c[3][0], 0]), float(fxf[0, c[3][1]])) for c in coarse]
    # the reference: the peak most others agree with (one grating, turned), then the sharpest
    support = [sum(_consistent(q, p) for q in peaks) for p in peaks]
    best = max(range(len(coarse)), key=lambda i: (support[i], coarse[i][2]))
    if not coarse[best][2] >= min_contrast:
        raise DataError(
            f"no SIM band found (correlation peak {coarse[best][2]:.1f} x the background, below "
            f"{min_contrast:g}); the stack is too dim or has no pattern, pass known parameters "
            "with --params"
        )
    kb = peaks[best]

    wavevectors, phases_out, mods = [], [], []
    for a in range(_bands.ORIENTATIONS):
        frames = padded.spectra[_bands.PHASES * a : _bands.PHASES * (a + 1)]
        frames_w = windowed.spectra[_bands.PHASES * a : _bands.PHASES * (a + 1)]
        corr, median, contrast, (iy, ix) = coarse[a]
        k0 = (float(fyf[iy, 0]), float(fxf[0, ix]))
        if contrast < min_contrast or not _consistent(k0, kb):
            # a dim orientation: the pattern is one grating rotated, so look where the
            # brightest orientation's wave vector lands when turned by a multiple of 60 deg
            k0 = _rotated_peak(corr, kb, a - best, step)
            contrast = corr[round(k0[0] / step) % fine, round(k0[1] / step) % fine] / median
            if not contrast >= min_contrast / 2:
                raise DataError(
                    f"orientation {a + 1}: no SIM band found (correlation peak {contrast:.1f} "
                    "x the background where the other orientations put it); the stack is too "
                    "dim, pass known parameters with --params"
                )
        sep = _bands.separation_matrix(nominal).astype(np.complex64)
        c0 = _bands.combine(sep[0], frames)
        cp = _bands.combine(sep[1], frames)
        s0 = (round(k0[0] / step), round(k0[1] / step))
        # 2. sub-pixel: both bands through the same filter H(f) H(f - k0) on their overlap,
        # so the product's phase ramps only with the residual k - k0
        # the shifted band's low frequencies (f near k) are kept: the signal is there
        overlap = mask & (_bands.shifted(h, s0) > OTF_FLOOR)
        hk = _bands.shifted(h, s0) * overlap
        ho = h * overlap
        a_x = scipy.fft.ifft2(hk * cp, workers=1)
        b_x = scipy.fft.ifft2(ho * _bands.shifted(c0, s0), workers=1)
        dk = _refine(a_x * b_x.conj(), pos, step)
        k = (k0[0] + dk[0], k0[1] + dk[1])
        # 3. phases: each frame's side bands against the 0 band shifted exactly by k
        ph = nominal.copy()
        for i in range(PHASE_ITERATIONS + 1):
            sep = _bands.separation_matrix(ph).astype(np.complex64)
            c0 = _bands.combine(sep[0], frames_w)
            ref = ho * scipy.fft.fft2(
                scipy.fft.ifft2(c0, workers=1) * _bands.wave(k, pos, pos), workers=1
            )
            if i == PHASE_ITERATIONS:
                break
            ph = np.array(
                [np.angle(np.vdot(ref, hk * (frames_w[j] - c0))) for j in range(_bands.PHASES)]
            )
        # 4. modulation: the +1 band over the shifted 0 band, noise power taken out
        cp = _bands.combine(sep[1], frames_w)
        noise = float(np.mean(np.abs(c0[noise_region]) ** 2)) if noise_region.any() else 0.0
        den = float(np.vdot(ref, ref).real) - noise * float(np.sum(ho * ho))
        m = 2.0 * abs(complex(np.vdot(ref, hk * cp))) / den if den > 0 else float("nan")
        if not (math.isfinite(m) and m > 0):
            raise DataError(
                f"orientation {a + 1}: the SIM band's modulation cannot be measured (noise "
                "dominates the band overlap); pass known parameters with --params"
            )
        if not 0.0 <= math.atan2(k[0], k[1]) < math.pi:
            k, ph = (-k[0], -k[1]), -ph
        wavevectors.append(k)
        phases_out.append(tuple(float(np.rad2deg(p) % 360.0) for p in ph))
        mods.append(m)
    return SimParameters(tuple(wavevectors), tuple(phases_out), tuple(mods), pixel_size_nm)


def _refine(product: np.ndarray, pos: np.ndarray, step: float) -> tuple[float, float]:
    """Frequency (cycles/nm, within one `step` of 0) where ``|DFT(product)|`` peaks.

    A local upsampled DFT (:data:`UPSAMPLE` points per step), then a parabola
    through the maximum and its neighbours.
    """
    offsets = np.arange(-UPSAMPLE, UPSAMPLE + 1) / UPSAMPLE * step
    basis = np.exp(-2j * np.pi * offsets[:, None] * pos[None, :]).astype(np.complex64)
    # einsum's own loops: BLAS threads only add overhead on these small products
    inner = np.einsum("ij,kj->ik", product.astype(np.complex64), basis, optimize=False)
    local = np.abs(np.einsum("ij,jk->ik", basis, inner, optimize=False)).astype(np.float64)
    iy, ix = np.unravel_index(int(np.argmax(local)), local.shape)
    iy = min(max(iy, 1), len(offsets) - 2)
    ix = min(max(ix, 1), len(offsets) - 2)

    def vertex(lo: float, mid: float, hi: float) -> float:
        denom = lo - 2.0 * mid + hi
        return 0.0 if denom >= 0 else float(np.clip(0.5 * (lo - hi) / denom, -0.5, 0.5))

    dy = vertex(local[iy - 1, ix], local[iy, ix], local[iy + 1, ix])
    dx = vertex(local[iy, ix - 1], local[iy, ix], local[iy, ix + 1])
    d = step / UPSAMPLE
    return (offsets[iy] + dy * d, offsets[ix] + dx * d)


def _consistent(k: tuple[float, float], ref: tuple[float, float]) -> bool:
    """True if `k` has `ref`'s length (2%) and lies a multiple of 60 deg (2 deg) from it."""
    ratio = math.hypot(*k) / math.hypot(*ref)
    turn = math.degrees(math.atan2(k[0], k[1]) - math.atan2(ref[0], ref[1])) % 60.0
    return abs(ratio - 1.0) < 0.02 and min(turn, 60.0 - turn) < 2.0


def _rotated_peak(
    corr: np.ndarray, ref: tuple[float, float], steps: int, step: float, radius: int = 2
) -> tuple[float, float]:
    """Largest correlation within `radius` pixels of `ref` turned by +-60 deg x `steps`."""
    n = corr.shape[0]
    best, where = -1.0, ref
    for sign in (1, -1):
        t = math.radians(60.0 * steps * sign)
        ky = ref[0] * math.cos(t) + ref[1] * math.sin(t)
        kx = -ref[0] * math.sin(t) + ref[1] * math.cos(t)
        cy, cx = round(ky / step), round(kx / step)
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                value = corr[(cy + dy) % n, (cx + dx) % n]
                if value > best:
                    best, where = float(value), ((cy + dy) * step, (cx + dx) * step)
    return where
