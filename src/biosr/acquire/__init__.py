"""Getting a copy: :mod:`~biosr.acquire.download` over a git sparse checkout
(:mod:`~biosr.acquire.git`), HTTP with resume (:mod:`~biosr.acquire.http`) and
archives (:mod:`~biosr.acquire.archive`).
"""
