"""biosr: the BioSR Microtubules super-resolution dataset, built, fetched, verified,
simulated, loaded and benchmarked.

Heavy dependencies (torch, Lightning, matplotlib) are imported only by the
modules that need them, so ``import biosr`` and ``biosr verify`` start fast.
"""

from __future__ import annotations

__version__ = "0.1.0"
