"""A small acquisition both the chain's tests and the kernels' reproducibility test use: a 16^3 x
19.2 mm grid (phantom grid 32^3 x 9.6 mm), 12 views, an elliptical water body (0.05 MBq/mL) with a
30 mm hot sphere (1 MBq/mL) 20 mm off the axis."""

from __future__ import annotations

import copy

import numpy as np

from pvc_core.config import load_config
from pvc_core.specs import CameraSpec, GridSpec, recon_spec
from pvc_core.spect.acquisition import AcquisitionChain

from conftest import REPO


def small_chain() -> tuple[AcquisitionChain, np.ndarray, np.ndarray]:
    """(the chain with noRR and RR of config/test.yaml, activity MBq/mL, mu 1/cm) on the phantom grid."""
    cfg = copy.deepcopy(load_config(REPO / "config" / "test.yaml"))
    cfg["grid"].update(recon_matrix=16, recon_voxel_mm=19.2, sim_factor=2)
    cfg["camera"]["n_views"] = 12
    c = (np.arange(32) - 15.5) * 9.6
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    body = (x / 110.0) ** 2 + (y / 80.0) ** 2 <= 1.0
    mu = np.where(body, 0.14, 0.0).astype(np.float32)
    act = np.where(body, 0.05, 0.0).astype(np.float32)
    act[(x - 20) ** 2 + y ** 2 + z ** 2 <= 30.0 ** 2] = 1.0
    chain = AcquisitionChain(CameraSpec.from_config(cfg), GridSpec.from_config(cfg),
                             (recon_spec(cfg, "noRR"), recon_spec(cfg, "RR")))
    return chain, act, mu
