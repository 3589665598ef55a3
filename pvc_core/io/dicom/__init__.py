"""DICOM SPECT and CT series read into an :class:`~pvc_core.io.nifti.Image`, and SPECT written back.

Conventions
-----------
*Array layout.* ``data[c, r, k]`` is the pixel at column ``c``, row ``r`` of slice ``k``: the
pixel array of each slice is transposed and the slices are stacked on axis 2. For a multi-frame
file, frame ``k`` is slice ``k`` (the file's frame order is kept).

*Geometry.* DICOM patient coordinates are LPS (x to the patient's left, y posterior, z head). The
centre of pixel (row ``r``, column ``c``) of slice ``k`` lies at
``IPP_k + c * PixelSpacing[1] * rowdir + r * PixelSpacing[0] * coldir``, where
``ImageOrientationPatient = rowdir + coldir`` (``rowdir``: direction of increasing column index).
The LPS affine has columns ``rowdir * PixelSpacing[1]``, ``coldir * PixelSpacing[0]`` and the
slice step vector, and translation ``IPP_0``; :class:`Image` gets it in NIfTI RAS+ (mm), i.e.
left-multiplied by ``diag(-1, -1, 1, 1)``. Single-slice files are sorted along the slice normal
``rowdir x coldir`` and the step is ``(IPP_last - IPP_first) / (n - 1)``. A multi-frame file uses
per-frame ``PlanePositionSequence`` positions where present, else
``normal * SpacingBetweenSlices`` (``SliceThickness`` when absent; a negative spacing runs against
the normal). ``ImagePositionPatient`` / ``ImageOrientationPatient`` are looked up at the top level,
in the functional groups, then in ``DetectorInformationSequence`` (NM).

*Values.* Stored pixel value x ``RescaleSlope`` + ``RescaleIntercept`` (defaults 1 and 0), in
float64, then float32. SPECT (modality NM or PT) is returned in MBq/mL: the unit comes from
``Units`` (0054,1001), else from ``RealWorldValueMappingSequence`` (whose slope and intercept are
then used instead of the rescale ones), else from ``RescaleType`` (0028,1054). Bq/mL (``BQML``),
kBq/mL and MBq/mL are accepted; counts, no unit or any other unit are refused. CT is returned in
Hounsfield units.

*Writing.* :func:`write_spect_series` mirrors the input: one file per input dataset, each a copy
of the input with new, deterministic series and instance UIDs (same study and frame of
reference), values in Bq/mL stored as uint16 with a linear rescale slope, uncompressed Explicit VR
Little Endian.

Every problem with a user's file is an :class:`~pvc_core.errors.InputError` naming the path.

Modules: :mod:`~pvc_core.io.dicom.read` (detection and reading), :mod:`~pvc_core.io.dicom.write`
(writing, each file through :func:`pvc_core.io.atomic.atomic_path`) and
:mod:`~pvc_core.io.dicom.common` (:class:`DicomSeries`, shared by both); the public names are
imported here.
"""

from pvc_core.io.dicom.common import DicomSeries
from pvc_core.io.dicom.read import (ACTIVITY_UNITS_TO_MBQ_ML, OBLIQUE_TOLERANCE, ORIENTATION_TOLERANCE,
                                    SPACING_TOLERANCE, is_dicom_path, read_ct_dicom, read_spect_dicom)
from pvc_core.io.dicom.write import write_spect_series

__all__ = ["ACTIVITY_UNITS_TO_MBQ_ML", "DicomSeries", "OBLIQUE_TOLERANCE", "ORIENTATION_TOLERANCE",
           "SPACING_TOLERANCE", "is_dicom_path", "read_ct_dicom", "read_spect_dicom", "write_spect_series"]
