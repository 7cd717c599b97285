"""The network and its checkpoints: a ResNet backbone with one linear head per grapheme component.

Modules: ``resnet`` (``ModelConfig``, ``build_model``, the ImageNet loader), ``checkpoint`` (atomic
checkpoints read back with clear errors, RNG state, seeding). A new backbone goes into ``resnet`` (or a
module beside it) and is named by ``model.arch``.
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "ModelConfig": "resnet",
    "build_model": "resnet",
    "BengaliResNet": "resnet",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "seed_everything": "checkpoint",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
