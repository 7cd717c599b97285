"""ImageNet weights of a torchvision or timm ResNet, ResNeXt or SE-ResNeXt loaded into the backbone, by name.

A checkpoint file (``.pth``/``.pt`` from torchvision or a training script, ``.safetensors`` from timm
on the Hugging Face hub) is read into a flat state dict, unwrapped from its training-script
wrappers and prefixes, and matched to the model's backbone tensors name by name; an RGB stem (the
first convolution: ``conv1`` or, in the deep stem of timm's 'd' models, ``conv1.0``) is summed to one
channel. The classifier and the heads are never loaded.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from bengaliai.core.errors import BengaliaiError
from bengaliai.model.resnet import ResNet

log = logging.getLogger(__name__)

# Checkpoint wrappers and name prefixes of training scripts (DataParallel/DDP, torch.compile).
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_PREFIXES = ("module.", "_orig_mod.")
# ImageNet classifiers (torchvision/timm ``fc``) and our own heads are never loaded.
_SKIPPED_PREFIXES = ("fc.", "heads.")


def load_pretrained(model: ResNet, path: str | Path) -> None:
    """Load backbone weights of a torchvision or timm checkpoint of ``model.arch`` into ``model``, by name.

    An RGB stem is summed over its input channels for a one-channel model. The heads keep
    their fresh initialisation. Raises BengaliaiError unless every backbone tensor is found
    with the right shape and nothing else but the classifier is left over.
    """
    state = _read_state_dict(Path(path))
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("heads.")}
    stem = model.stem_weight_key()
    loaded: dict[str, Tensor] = {}
    unexpected: list[str] = []
    mismatched: dict[str, str] = {}
    for key, value in state.items():
        if key.startswith(_SKIPPED_PREFIXES):
            continue
        if key not in own:
            unexpected.append(key)
            continue
        if key == stem and value.ndim == 4 and value.shape[1] == 3 and own[key].shape[1] == 1:
            # timm's adapt_input_conv: a gray image is R = G = B, so the summed kernel gives the
            # same response as the RGB kernel on the gray image repeated three times.
            log.info("%s: summing the RGB stem kernel %s to one channel", path, tuple(value.shape))
            value = value.sum(dim=1, keepdim=True)
        if value.shape != own[key].shape:
            mismatched[key] = f"{key}: checkpoint {tuple(value.shape)}, model {tuple(own[key].shape)}"
            continue
        loaded[key] = value
    # Checkpoints saved before PyTorch 0.4.1 (torchvision's own ResNets) lack the BN counters.
    missing = [k for k in own if k not in loaded and k not in mismatched
               and not k.endswith("num_batches_tracked")]
    if unexpected or mismatched or missing:
        groups = {"shape mismatch": list(mismatched.values()), "missing": missing, "unexpected": unexpected}
        problems = [f"{label} ({len(keys)}): {', '.join(keys[:8])}{', ...' * (len(keys) > 8)}"
                    for label, keys in groups.items() if keys]
        raise BengaliaiError(
            f"{path}: not a checkpoint of {model.arch} (base width {model.base_width}, "
            f"{model.in_chans} input channel(s)); " + "; ".join(problems)
        )
    model.load_state_dict(loaded, strict=False)
    log.info("%s: loaded %d backbone tensors into %s; heads freshly initialised",
             path, len(loaded), model.arch)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """The flat state dict of a checkpoint file, unwrapped and without training-script prefixes."""
    if not path.is_file():
        raise BengaliaiError(f"pretrained checkpoint not found: {path}")
    try:
        data = _read_safetensors(path) if path.suffix == ".safetensors" else torch.load(
            path, map_location="cpu", weights_only=True)
    except BengaliaiError:
        raise
    except Exception as error:  # noqa: BLE001 - torch.load raises many kinds; the user needs one message
        raise BengaliaiError(f"{path}: cannot read as a PyTorch checkpoint: {error}") from None
    while isinstance(data, Mapping) and not _is_state_dict(data):
        wrapper = next((k for k in _WRAPPER_KEYS if isinstance(data.get(k), Mapping)), None)
        if wrapper is None:
            raise BengaliaiError(f"{path}: no state dict found; top-level keys: {', '.join(map(str, data))}")
        data = data[wrapper]
    if not isinstance(data, Mapping):
        raise BengaliaiError(f"{path}: expected a state dict, got {type(data).__name__}")
    state = {}
    for key, value in data.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        state[key] = value
    return state


def _is_state_dict(data: Mapping) -> bool:
    return len(data) > 0 and all(isinstance(v, Tensor) for v in data.values())


_SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    """A .safetensors file (timm's weights on the Hugging Face hub) without the safetensors package."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    body = bytearray(raw[8 + size :])
    state = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise BengaliaiError(f"{path}: tensor {key} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        flat = torch.frombuffer(body[start:end] or bytearray(1), dtype=torch.uint8)[: end - start]
        state[key] = flat.view(_SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"]).clone()
    return state
