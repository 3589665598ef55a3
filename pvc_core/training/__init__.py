"""Training and applying DL-PVC networks.

* :mod:`~pvc_core.training.normalisation`: input-max normalisation, activity conservation.
* :mod:`~pvc_core.training.patches`: padding, windows, 32^3 patch sampling and reassembly.
* :mod:`~pvc_core.training.augmentation`: the 16 symmetries of the acquisition.
* :mod:`~pvc_core.training.case_cache`: cases normalised once into memory-mappable ``.npy`` files.
* :mod:`~pvc_core.training.dataset`: the streaming torch ``Dataset`` and its seeded epoch sampler.
* :mod:`~pvc_core.training.loader`: the ``DataLoader`` (workers, pinned memory, seeded generator).
* :mod:`~pvc_core.training.checkpoint`: the per-epoch training checkpoint and automatic resume.
* :mod:`~pvc_core.training.distributed`: data-parallel training over torchrun ranks (PyTorch DDP).
* :mod:`~pvc_core.training.train`: :func:`train_model` (writes model.pt, model_card.json, history.csv).
* :mod:`~pvc_core.training.predict`: :func:`load_model`, :func:`predict_image`.


Names are imported on first use (PEP 562), so that ``pvc_core.training.predict`` (what ``dlpvc
apply`` needs) does not import the training loop and its dependencies.
"""

from importlib import import_module

__all__ = ["conserve_total", "rescale_output", "load_model", "predict_image", "train_model"]

_WHERE = {"conserve_total": "normalisation", "rescale_output": "normalisation", "load_model": "predict",
          "predict_image": "predict", "train_model": "train"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"pvc_core.training.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'pvc_core.training' has no attribute {name!r}")
