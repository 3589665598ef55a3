"""Analytic Lu-177 SPECT simulation and OSEM reconstruction (noRR and RR).

Public interface (stable; used by the pipeline and the ``dlpvc simulate`` command)::

    Projections                 three energy windows + orbit + meta (counts)
    simulate_projections(...)   noise-free expected counts from activity (MBq/mL) and mu (1/cm)
    add_poisson_noise(...)      Poisson realisation from a seeded numpy Generator
    reconstruct(...)            OSEM + AC + TEW SC, 'noRR' or 'RR' (CDR modelled), MBq/mL
    reconstruct_together(...)   the same for several acquisitions of one case in one batch
    rr_response(...)            RR's CDR model: a Gaussian fitted to simulated point sources
    write_projections(...)      Interfile (.hdr + one .h00/.a00 pair per window)
    read_projections(...)
    orbit_radii_mm(...)         body-contour orbit radii per view

Modules: ``physics_data`` (Lu-177 lines, NIST attenuation), ``collimator`` (CDR formula),
``energy_windows``, ``scatter`` (simulation model, TEW), ``geometry`` (rotated frame, splat and
sampling), ``cdr`` (depth-dependent blurring), ``response_fit`` (RR's response, fitted to
simulated point sources), ``system_model`` (cached projector, PyTomography adapter),
``kernels`` and ``rotation_kernels`` (the projector's fused numba CPU kernels), ``system_cache``
(per-case reuse), ``orbit``, ``projections``, ``simulate``, ``noise``, ``osem``
(:func:`reconstruct`, the OSEM loop), ``interfile``.

Threads: the kernels use as many threads as torch (``torch.set_num_threads``, i.e. Snakemake's
``threads``) on numba's own pool; results are the same for any thread count. The DAG runs
per-case stages one thread per job, one job per core.

Other back ends (STIR, CASToR, SIMIND): the data flow is Interfile projections in, NIfTI image
out, so an external reconstruction can replace :func:`reconstruct` by reading the Interfile
written by :func:`write_projections` (windows, angles, radii, pixel size in the headers); a Monte
Carlo simulator can replace :func:`simulate_projections` by writing the same files. Neither is
wired in yet.
"""

import importlib

#: Public names and their modules, imported on first use (PEP 562): importing a small module of
#: this package (e.g. the collimator, for the typed settings a Snakefile parses) must not pay
#: for torch and PyTomography.
_PUBLIC = {
    "Projections": "projections", "simulate_projections": "simulate", "add_poisson_noise": "noise",
    "reconstruct": "osem", "reconstruct_together": "osem", "rr_response": "osem", "write_projections": "interfile", "read_projections": "interfile",
    "orbit_radii_mm": "orbit", "view_angles_deg": "orbit",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"pvc_core.spect.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'pvc_core.spect' has no attribute {name!r}")
