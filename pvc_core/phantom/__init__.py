"""Phantoms: anthropomorphic bodies (procedural or labelled voxel phantoms) with random activity.

- :mod:`~pvc_core.phantom.materials`: mu at 208 keV per material (NIST XCOM / Table 4 values).
- :mod:`~pvc_core.phantom.anatomy`: procedural bodies for head, thorax and abdomen bed positions.
- :mod:`~pvc_core.phantom.voxel_phantom`: Interfile and NIfTI label maps (e.g. XCAT).
- :mod:`~pvc_core.phantom.activity`: random shapes, nonuniform pattern, patient-like scaling.
- :mod:`~pvc_core.phantom.uptake`: patient-like uptake (opt-in, ``phantom.uptake``): warm organs,
  a two-compartment kidney, small hot lesions with necrotic cores.
- :mod:`~pvc_core.phantom.generate`: :func:`generate_case`, one case from (case id, seed, config).
- :mod:`~pvc_core.phantom.figure`: :func:`montage`, the paper's Figure 2 for a few cases.
"""

from pvc_core.phantom.generate import PhantomCase, check_phantom_source, generate_case


def montage(cases, path, max_cases: int = 6):
    """Axial and coronal sections of a few cases as a PNG; see :func:`pvc_core.phantom.figure.montage`."""
    # lazy: matplotlib, pvc_core.io and nibabel (~0.65 s) would load with every pvc_core.phantom.* import
    from pvc_core.phantom.figure import montage as _montage

    return _montage(cases, path, max_cases=max_cases)


__all__ = ["PhantomCase", "check_phantom_source", "generate_case", "montage"]
