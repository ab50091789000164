"""The per-level benchmark: metrics, scoring protocols, baselines, results and the report.

- :mod:`~biosr.evaluate.metrics`: PSNR, SSIM, MS-SSIM, NRMSE, resolution;
- :mod:`~biosr.evaluate.scoring`: the ``dlsr`` and ``care`` protocols on one pair;
- :mod:`~biosr.evaluate.baselines`: ``wf``, ``bicubic``, ``rl`` as prediction folders;
- :mod:`~biosr.evaluate.evaluation`: :func:`~biosr.evaluate.evaluation.evaluate` over folders;
- :mod:`~biosr.evaluate.results`: :class:`~biosr.evaluate.results.Results`, its tables and text;
- :mod:`~biosr.evaluate.report`: plots, montage and the HTML page.

Nothing here imports torch: predictions arrive as files.
"""
