"""``dlpvc apply``: DL-PVC of a user's SPECT image (NIfTI or DICOM) with a trained model.

* :mod:`pvc_core.apply.ct`: a CT in Hounsfield units to mu at 208 keV on another grid;
* :mod:`pvc_core.apply.model_grid`: the grid the network sees for an input grid;
* :mod:`pvc_core.apply.shipped`: where the shipped model lives and how a model is found;
* :mod:`pvc_core.apply.correct`: read, resample, correct, resample back, write, sidecar.
"""
