"""A physics-based simulator of BioSR-like Microtubules data (specimen, optics, camera)."""

from __future__ import annotations
