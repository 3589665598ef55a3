"""Spatial resolution of a reconstruction: the matched-filter FWHM used as IY's PSF."""

from pvc_core.resolution.matched_filter import matched_filter_fwhm, matched_filter_profile

__all__ = ["matched_filter_fwhm", "matched_filter_profile"]
