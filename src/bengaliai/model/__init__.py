"""The network and its checkpoints: a ResNet-family backbone with one linear head per grapheme component.

Modules: ``classifier`` (``ModelConfig``, ``build_model``, the multi-head ``BengaliResNet``),
``resnet`` (the backbone family: ResNet, ResNeXt, SE-ResNeXt as data, stem and stages), ``blocks``
(its residual blocks, squeeze-and-excitation, shortcuts), ``pretrained`` (ImageNet
weights of torchvision or timm loaded by name), ``checkpoint`` (atomic checkpoints read back with
clear errors, RNG state, seeding). A new backbone goes into ``resnet`` (or a module beside it) and is
named by ``model.arch``.
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "ModelConfig": "classifier",
    "build_model": "classifier",
    "BengaliResNet": "classifier",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "seed_everything": "checkpoint",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
