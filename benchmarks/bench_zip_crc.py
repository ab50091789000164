"""Time the up-front CRC check of a release zip (``biosr.build.source._check_crc``).

Run by hand: ``python benchmarks/bench_zip_crc.py [--dir /tmp/bench_zip_crc] [--cells 4]``.
Writes ``--cells`` cells of full-size members (9 x 502 x 502 uint16 raw levels, a
1004 x 1004 float32 GT) as noisy images into a stored and a deflated zip, then reads
every member through as :func:`biosr.build.source.open_source` does before a build.
Prints MB/s per kind and the extrapolation to the 55-cell release.
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

import numpy as np

from biosr import layout
from biosr.build.source import _check_crc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_zip_crc"))
    parser.add_argument("--cells", type=int, default=4)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    size = layout.RELEASE_RAW_SIZE
    raw = rng.poisson(200, (layout.RAW_FRAMES, size, size)).astype(np.uint16).tobytes()
    gt = rng.random((2 * size, 2 * size), dtype=np.float32).tobytes()
    for kind, method in (("stored", zipfile.ZIP_STORED), ("deflated", zipfile.ZIP_DEFLATED)):
        archive = args.dir / f"{kind}.zip"
        with zipfile.ZipFile(archive, "w", method) as zf:
            for cell in range(1, args.cells + 1):
                for key, path in layout.release_files("Microtubules", cell).items():
                    zf.writestr(path.as_posix(), gt if key == "sim_gt" else raw)
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            start = time.perf_counter()
            for info in infos:
                _check_crc(zf, info, info.filename)
            seconds = time.perf_counter() - start
        per_cell = seconds / args.cells
        print(
            f"{kind:9s} {total / 1e6:7.0f} MB in {seconds:6.2f} s = {total / 1e6 / seconds:6.0f} "
            f"MB/s; 55 cells: about {55 * per_cell:5.1f} s"
        )


if __name__ == "__main__":
    main()
