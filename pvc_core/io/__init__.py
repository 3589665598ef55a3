"""Reading and writing images (NIfTI, DICOM), projections (Interfile) and metadata (JSON)."""

from pvc_core.io.nifti import Image, load_image, load_labels, save_image, affine_from_voxel_size
from pvc_core.io.grids import grid_mismatch, require_same_grid
from pvc_core.io.outputs import require_nifti_output, require_output_folder
from pvc_core.io.jsonio import read_json, write_json

__all__ = ["Image", "load_image", "load_labels", "save_image", "affine_from_voxel_size", "grid_mismatch",
           "require_same_grid", "require_nifti_output", "require_output_folder", "read_json", "write_json"]
