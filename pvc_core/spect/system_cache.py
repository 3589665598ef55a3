"""Per-case reuse of :class:`SPECTSystem` across calls (simulate's scatter, four reconstructions).

The public functions take plain arrays, so the cache is keyed by the content of the attenuation
map (BLAKE2 digest of its bytes, a few ms at 128^3) and by every geometric and camera parameter,
but not by the collimator-detector response: the simulator (collimator formula) and the RR
reconstruction (fitted response, :mod:`pvc_core.spect.response_fit`) share one system's geometry
through :meth:`SPECTSystem.with_response`, which keeps the CDR ladders per response.
Only the most recent systems are kept (``MAX_SYSTEMS``) because one system holds the rotated
attenuation factors of every view (64^3, 120 views: ~180 MB; 128^3: ~1.4 GB).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch

from pvc_core.spect.system_model import DistanceResponse, SPECTSystem

#: How many systems stay cached (one case at a time is the pipeline's pattern).
MAX_SYSTEMS = 1

_CACHE: "OrderedDict[tuple, SPECTSystem]" = OrderedDict()


def _digest(a: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(a, dtype=np.float32).tobytes(), digest_size=16).hexdigest()


def get_system(mu_per_cm: np.ndarray, voxel_mm: float, angles_deg: np.ndarray, radii_mm: np.ndarray,
               collimator: DistanceResponse | None, counts_per_mbq: float, subset_counts: tuple[int, ...],
               device: torch.device | str | None = None) -> SPECTSystem:
    """A (possibly cached) system for this attenuation map, orbit and camera, with response
    ``collimator`` (None: projection without CDR only)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    mu = np.asarray(mu_per_cm, dtype=np.float32)
    key = (_digest(mu), mu.shape, round(float(voxel_mm), 9), _digest(np.asarray(angles_deg)),
           _digest(np.asarray(radii_mm)), round(float(counts_per_mbq), 9),
           tuple(sorted(set(int(m) for m in subset_counts))), str(dev))
    system = _CACHE.get(key)
    if system is None:
        system = SPECTSystem(mu, voxel_mm, angles_deg, radii_mm, collimator, counts_per_mbq,
                             subset_counts=key[6], device=dev, cache=True)
        _CACHE[key] = system
        while len(_CACHE) > MAX_SYSTEMS:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return system.with_response(collimator)


def clear_system_cache() -> None:
    """Drop every cached system (frees its memory)."""
    _CACHE.clear()
