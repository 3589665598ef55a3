"""``dlpvc apply``: DL-PVC of a user's SPECT image (NIfTI or DICOM) with a trained model.

* :mod:`pvc_core.apply.plan`: the whole call planned before anything loads (no output may be an
  input, an input's sidecar, another output or, unasked, an existing file);
* :mod:`pvc_core.apply.domain`: what is physically impossible, what an input states, the domain
  a model's card states, and whether they agree;
* :mod:`pvc_core.apply.model`: the models (registry by reconstruction kind, cards, loading);
* :mod:`pvc_core.apply.model_grid`: the grid the network sees for an input grid;
* :mod:`pvc_core.apply.ct`: a CT in Hounsfield units to mu at 208 keV on another grid;
* :mod:`pvc_core.apply.hollow`: the hollow guard (hot regions the output made hollow);
* :mod:`pvc_core.apply.uncertainty`: ``--uncertainty``, the spread of the corrections over the orbit
  symmetries (voxel-wise SD, regions' CV);
* :mod:`pvc_core.apply.correct`: read, check, resample, correct, resample back, write, sidecar;
* :mod:`pvc_core.apply.batch`: one call: its inputs in turn, one line each, the exit code;
* :mod:`pvc_core.apply.ship`: the shipped model's card from a finished DAG run.
"""
