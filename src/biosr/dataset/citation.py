"""Licence and citations of the BioSR data, as the published copy asks for them."""

from __future__ import annotations

LICENCE = "CC BY 4.0 (Creative Commons Attribution 4.0 International), https://creativecommons.org/licenses/by/4.0/"

DATASET_BIBTEX = """@article{Qiao2020,
author = "Chang Qiao and Di Li",
title = "{BioSR: a biological image dataset for super-resolution microscopy}",
year = "2020",
month = "11",
url = "https://figshare.com/articles/dataset/BioSR/13264793",
doi = "10.6084/m9.figshare.13264793.v9"
}"""

PAPER_BIBTEX = """@article{qiao2021biosr,
  title={Evaluation and development of deep neural networks for image super-resolution in optical microscopy},
  author={Qiao, Chang and Li, Yuxiang and Qu, Junle and others},
  journal={Nature Methods},
  volume={18},
  pages={194--202},
  year={2021},
  publisher={Nature Publishing Group},
  doi={10.1038/s41592-020-01048-5}
}"""

BIBTEX = DATASET_BIBTEX + "\n\n" + PAPER_BIBTEX


def citation_text() -> str:
    """The licence, a plain-text attribution and both BibTeX entries, ready to print."""
    return (
        "BioSR Microtubules data\n"
        f"Licence: {LICENCE}\n\n"
        "If you use this data, cite both the dataset and the paper:\n"
        "  Qiao, C. & Li, D. BioSR: a biological image dataset for super-resolution "
        "microscopy (2020). https://doi.org/10.6084/m9.figshare.13264793.v9\n"
        "  Qiao, C. et al. Evaluation and development of deep neural networks for image "
        "super-resolution in optical microscopy. Nature Methods 18, 194-202 (2021). "
        "https://doi.org/10.1038/s41592-020-01048-5\n\n"
        f"{BIBTEX}\n"
    )
