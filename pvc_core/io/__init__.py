"""Reading and writing images (NIfTI, DICOM), projections (Interfile) and metadata (JSON)."""

from pvc_core.io.nifti import Image, load_image, load_labels, save_image, affine_from_voxel_size
from pvc_core.io.jsonio import read_json, write_json

__all__ = ["Image", "load_image", "load_labels", "save_image", "affine_from_voxel_size", "read_json", "write_json"]
