"""File formats: TIFF images, BioSR's MRC dialect, and atomic writes."""
