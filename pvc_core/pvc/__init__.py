"""Reference partial-volume correction methods (the baselines DL-PVC is compared with).

- :func:`iterative_yang`: PETPVC's iterative Yang (IY), bit-identical to ``petpvc --pvc IY``;
- :func:`richardson_lucy`, :func:`van_cittert`: PETPVC's mask-free deconvolutions;
- :func:`truth_labels`, :func:`threshold_labels`: the masks IY needs (ground truth, or the SPECT alone);
- :func:`itk_gaussian_blur`, :func:`itk_gaussian_kernel`: the PSF model all of them share (ITK's
  discrete Gaussian, as PETPVC applies it);
- :mod:`pvc_core.pvc.petpvc_backend`: runs the PETPVC binaries themselves when they are installed.
"""

from pvc_core.pvc.deconvolution import richardson_lucy, van_cittert
from pvc_core.pvc.itk_gaussian import ItkGaussianBlur, itk_gaussian_blur, itk_gaussian_kernel, petpvc_variance_vox2
from pvc_core.pvc.iterative_yang import iterative_yang
from pvc_core.pvc.masks import threshold_labels, truth_labels

__all__ = [
    "ItkGaussianBlur",
    "iterative_yang",
    "itk_gaussian_blur",
    "itk_gaussian_kernel",
    "petpvc_variance_vox2",
    "richardson_lucy",
    "threshold_labels",
    "truth_labels",
    "van_cittert",
]
