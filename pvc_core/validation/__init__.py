"""The paper's physical validation phantoms (3-D printed, filled with Lu-177) as voxel models."""

from pvc_core.validation.phantoms import VALIDATION_PHANTOMS, ValidationPhantom, build_validation_phantom

__all__ = ["VALIDATION_PHANTOMS", "ValidationPhantom", "build_validation_phantom"]
