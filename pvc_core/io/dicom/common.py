"""What the DICOM reader and writer share: the :class:`DicomSeries` a reader returns and a writer
mirrors, and the frame count of a dataset (conventions in :mod:`pvc_core.io.dicom`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from pvc_core.io.nifti import Image


@dataclass
class DicomSeries:
    """A DICOM image series read as one 3-D :class:`Image`, with what is needed to write it back.

    Attributes
    ----------
    image:
        float32 values (SPECT: MBq/mL; CT: Hounsfield units) and the affine in mm, NIfTI RAS+.
    datasets:
        The pydicom datasets with pixel data, in slice order (one per file), or the one
        multi-frame dataset.
    files:
        The files the datasets were read from, in the same order.
    modality:
        ``"NM"``, ``"PT"`` or ``"CT"``.
    multiframe:
        Whether the series is one multi-frame file.
    unit:
        The unit as found in the header, e.g. ``"BQML"``, ``"Bq/ml"``, ``"HU"``.
    """

    image: Image
    datasets: list
    files: list[Path]
    modality: str
    multiframe: bool
    unit: str


def _n_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1
