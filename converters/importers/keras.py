"""Keras importer: ``.keras`` (Keras 3) and legacy ``.h5`` files into a :class:`converters.ir.Graph`.

Neither TensorFlow nor keras is needed: a Keras model file is JSON (the model config) next to HDF5 (the
weights), so this module reads both with ``json``, ``zipfile``, ``h5py`` and ``numpy`` alone.

File layouts (read from files written by Keras 3.x and tf.keras 2.x)
--------------------------------------------------------------------
``.keras``   a zip holding ``config.json`` (the model config), ``metadata.json`` (``keras_version``) and
             ``model.weights.h5``. In the weights file a model's layers live under ``layers/<key>`` where the
             key is the snake_case class name made unique in layer order (``conv2d``, ``conv2d_1`` ...; a
             Sequential's InputLayer takes no key). Each holds ``vars/0``, ``vars/1`` ... in the layer's
             variable order; recent versions also tag ``vars`` with the layer's ``name``, which we prefer. A
             nested model's group has its own ``layers/`` below it. (tf.keras 2.13-2.15 wrote the same layout
             with ``_layer_checkpoint_dependencies`` for ``layers`` and no names.)
``.h5``      HDF5 with the JSON config in the root attribute ``model_config`` and the weights in the group
             ``model_weights/<layer name>``, whose attribute ``weight_names`` lists dataset paths (relative to
             that group) in variable order. A nested model's group lists all its sublayers' weights, named
             ``.../<sublayer name>/<variable>``.

Model configs come in two dialects: Keras 3 (``inbound_nodes`` is a list of ``{"args", "kwargs"}`` holding
``__keras_tensor__`` dicts with a ``keras_history``) and Keras 2 (``inbound_nodes`` is a list of lists of
``[layer name, node index, tensor index, kwargs]``). Both reduce to the same layer-call graph here.

Choices
-------
* BatchNormalization is folded into the conv / depthwise / dense before it when that layer has no
  activation and the BN is its only reader; otherwise it becomes ``mul`` then ``add`` with constants.
* ReLU/relu6 from an Activation or ReLU layer is fused into the node before it when possible.
* ``ReLU(negative_slope=a)`` and ``LeakyReLU`` become ``prelu`` with a constant alpha (exact); a ReLU with
  ``max_value`` other than 6, or a non-zero ``threshold``, is refused.
* ``Subtract`` becomes ``add(a, mul(b, -1))``; ``Average`` becomes adds then ``mul(1/n)``.
* A grouped Conv2D (1 < groups < channels) becomes one conv with block-diagonal weights (exact, slower).
* Dense on a 4-D input becomes a 1x1 conv2d.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from typing import Any, Callable

import numpy as np

from ..ir import FUSABLE, ConversionError, DynamicShapeError, Graph, conv_out_size, same_pads

__all__ = ["import_keras", "SUPPORTED_LAYERS"]

_MODEL_CLASSES = ("Functional", "Model", "Sequential")
_IDENTITY_LAYERS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
                    "AlphaDropout", "ActivityRegularization", "Identity")


# ----------------------------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------------------------

def import_keras(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Import a Keras model file (``.keras`` or legacy ``.h5``) as an NHWC float graph.

    ``input_shape`` fixes input dimensions the model leaves open (``None``): give ``(H, W)`` for an image
    input, or the whole shape without (or with) the batch dimension. Dimensions the model fixes must agree.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ConversionError(f"Keras model {path!r} does not exist; check the path")
    if os.path.isdir(path):
        raise ConversionError(f"{path!r} is a directory (a TensorFlow SavedModel?); only .keras and .h5 files "
                              "are read: save the model with model.save('model.keras')")
    model_config, weights, version = _read_model_file(path)
    name = os.path.splitext(os.path.basename(path))[0]
    builder = _Builder(Graph(name), weights, keras_major=version, input_shape=input_shape)
    builder.build_top(model_config)
    return builder.graph


# ----------------------------------------------------------------------------------------------------------
# Reading the files
# ----------------------------------------------------------------------------------------------------------

def _read_model_file(path: str) -> tuple[dict, "_WeightScope", int]:
    """Returns (model config, weights of the top model, Keras major version)."""
    import h5py  # the converter's optional dependency; the runtime never imports this module

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise ConversionError(f"{path!r} is a zip file but holds no config.json, so it is not a Keras 3 "
                                      f".keras file (it has: {sorted(names)[:8]})")
            config = _parse_json(zf.read("config.json"), path, "config.json")
            version = 3
            if "metadata.json" in names:
                meta = _parse_json(zf.read("metadata.json"), path, "metadata.json")
                version = _major(meta.get("keras_version"), 3)
            if "model.weights.h5" in names:
                h5 = h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r")
            elif "model.weights.npz" in names:
                raise ConversionError(f"{path!r} stores its weights as npz; re-save it with the default h5 weights "
                                      "(model.save('model.keras'))")
            else:
                raise ConversionError(f"{path!r} has no model.weights.h5 (sharded weights are not supported); "
                                      "re-save it with model.save('model.keras')")
        with h5:
            weights = _V3Scope.load(h5)
        return config, weights, version

    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as h5:
            raw = h5.attrs.get("model_config")
            if raw is None:
                hint = (" It looks like a weights-only file (model.save_weights); save the whole model instead "
                        "with model.save('model.keras')." if "layer_names" in h5.attrs else "")
                raise ConversionError(f"{path!r} is an HDF5 file without a 'model_config' attribute, so it is not "
                                      f"a saved Keras model.{hint}")
            config = _parse_json(raw, path, "model_config")
            version = _major(_text(h5.attrs.get("keras_version", "")), 2)
            group = h5["model_weights"] if "model_weights" in h5 else h5
            weights = _LegacyScope.load(group)
        return config, weights, version

    raise ConversionError(f"{path!r} is neither a Keras 3 .keras file (zip) nor a legacy Keras .h5 file (HDF5); "
                          "save the model with model.save('model.keras')")


def _parse_json(raw: Any, path: str, what: str) -> dict:
    try:
        value = json.loads(_text(raw))
    except (ValueError, UnicodeDecodeError) as e:
        raise ConversionError(f"{path!r}: {what} is not valid JSON ({e}); the file is damaged") from None
    if not isinstance(value, dict):
        raise ConversionError(f"{path!r}: {what} holds {type(value).__name__}, expected a JSON object")
    return value


def _text(raw: Any) -> str:
    return raw.decode("utf-8") if isinstance(raw, (bytes, np.bytes_)) else str(raw)


def _major(version: Any, default: int) -> int:
    m = re.match(r"\s*(\d+)", str(version or ""))
    return int(m.group(1)) if m else default


def _snake_case(name: str) -> str:
    """Keras's own class-name to weights-key rule (``DepthwiseConv2D`` -> ``depthwise_conv2d``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class _WeightScope:
    """The weights of one model: ``arrays(layer)`` in variable order; ``sub(layer)`` for a nested model."""

    def arrays(self, layer: "_Layer") -> list[np.ndarray]:
        raise NotImplementedError

    def sub(self, layer: "_Layer") -> "_WeightScope":
        raise NotImplementedError


class _V3Scope(_WeightScope):
    """One model's group in a Keras 3 weights file, read eagerly into a tree of dicts."""

    def __init__(self, tree: dict) -> None:
        self.tree = tree  # {"vars": {"attrs": {...}, "arrays": [...]}, "layers": {key: subtree}}
        self._by_name: dict[str, dict] | None = None

    @classmethod
    def load(cls, h5) -> "_V3Scope":
        def read(group) -> dict:
            node: dict = {"layers": {}}
            if "vars" in group:
                v = group["vars"]
                keys = sorted(v.keys(), key=lambda k: int(k) if k.isdigit() else 1 << 30)
                node["vars"] = {"name": _text(v.attrs["name"]) if "name" in v.attrs else None,
                                "arrays": [np.asarray(v[k][()]) for k in keys]}
            # tf.keras 2.13-2.15 .keras files hold a model's layers under "_layer_checkpoint_dependencies".
            for holder in ("layers", "_layer_checkpoint_dependencies"):
                if holder in group:
                    for key in group[holder]:
                        node["layers"][key] = read(group[holder][key])
            return node

        return cls(read(h5))

    def bind(self, layers: list["_Layer"], sequential: bool) -> None:
        """Map layer names to weight groups: by the stored name when present, else by Keras's key rule."""
        children = self.tree["layers"]
        named = {c["vars"]["name"]: c for c in children.values() if c.get("vars", {}).get("name")}
        if all(layer.name in named for layer in layers if not (sequential and layer.cls == "InputLayer")):
            self._by_name = named
            return
        used: dict[str, int] = {}
        self._by_name = {}
        for layer in layers:
            if sequential and layer.cls == "InputLayer":
                continue
            key = _snake_case(layer.cls)
            if key in used:
                used[key] += 1
                key = f"{key}_{used[key]}"
            else:
                used[key] = 0
            if key in children:
                self._by_name[layer.name] = children[key]

    def _group(self, layer: "_Layer") -> dict:
        assert self._by_name is not None, "bind() first"
        if layer.name not in self._by_name:
            raise ConversionError(f"layer {layer.name!r} ({layer.cls}): no weights found for it in the file; "
                                  "the file may be damaged or written by an unsupported Keras version")
        return self._by_name[layer.name]

    def arrays(self, layer: "_Layer") -> list[np.ndarray]:
        return list(self._group(layer).get("vars", {}).get("arrays", []))

    def sub(self, layer: "_Layer") -> "_V3Scope":
        return _V3Scope(self._group(layer))


class _LegacyScope(_WeightScope):
    """Weights of an ``.h5`` file: top-level layers by group name; nested models by sublayer path."""

    def __init__(self, groups: dict[str, list[tuple[str, np.ndarray]]], flat: bool = False) -> None:
        self.groups = groups  # layer name -> [(weight name, array)] in variable order
        self.flat = flat

    @classmethod
    def load(cls, root) -> "_LegacyScope":
        groups = {}
        for name in root:
            g = root[name]
            if not hasattr(g, "attrs") or "weight_names" not in g.attrs:
                continue
            entries = []
            for wn in g.attrs["weight_names"]:
                wn = _text(wn)
                entries.append((wn, np.asarray(g[wn][()])))
            groups[name] = entries
        return cls(groups)

    def bind(self, layers: list["_Layer"], sequential: bool) -> None:
        pass

    def _entries(self, layer: "_Layer") -> list[tuple[str, np.ndarray]]:
        if not self.flat:
            return self.groups.get(layer.name, [])
        # Inside a nested model every weight is named ".../<layer name>/<variable>[:0]".
        return [(n, a) for n, a in self.groups["*"] if n.split("/")[-2:-1] == [layer.name]]

    def arrays(self, layer: "_Layer") -> list[np.ndarray]:
        return [a for _, a in self._entries(layer)]

    def sub(self, layer: "_Layer") -> "_LegacyScope":
        entries = self.groups["*"] if self.flat else self.groups.get(layer.name, [])
        return _LegacyScope({"*": entries}, flat=True)


# ----------------------------------------------------------------------------------------------------------
# The model config as a layer-call graph
# ----------------------------------------------------------------------------------------------------------

TensorRef = tuple[str, int, int]  # (layer name, node index, tensor index)


class _Layer:
    def __init__(self, cls: str, name: str, config: dict, raw: dict) -> None:
        self.cls = cls
        self.name = name
        self.config = config
        self.raw = raw  # the whole layer entry (a nested model's config is its "config")
        self.calls: list[list[TensorRef]] = []  # one entry per inbound node: the tensors it reads


def _tensor_refs(node_data: Any) -> list[TensorRef]:
    """The input tensors of one inbound node, in either config dialect."""
    if isinstance(node_data, list):  # Keras 2: [[name, node, tensor, kwargs?], ...]
        return [(str(e[0]), int(e[1]), int(e[2])) for e in node_data]
    refs: list[TensorRef] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if v.get("class_name") == "__keras_tensor__":
                h = v["config"]["keras_history"]
                refs.append((str(h[0]), int(h[1]), int(h[2])))
            else:
                for x in v.values():
                    walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(node_data.get("args", []))
    if not refs:
        walk(node_data.get("kwargs", {}))
    return refs


def _io_refs(spec: Any) -> list[TensorRef]:
    """``input_layers`` / ``output_layers``: a leaf ``[name, node, tensor]`` or a nest of them."""
    if isinstance(spec, (list, tuple)) and len(spec) == 3 and isinstance(spec[0], str):
        return [(spec[0], int(spec[1]), int(spec[2]))]
    if isinstance(spec, dict):
        spec = list(spec.values())
    out: list[TensorRef] = []
    for s in spec or []:
        out.extend(_io_refs(s))
    return out


def _parse_layers(model: dict) -> tuple[str, list[_Layer], list[TensorRef], list[TensorRef]]:
    """(model name, layers, input refs, output refs) of a Functional or Sequential config."""
    cls = model.get("class_name")
    cfg = model.get("config")
    if cls not in _MODEL_CLASSES:
        raise ConversionError(f"the file holds a {cls!r}, not a Functional or Sequential model; subclassed models "
                              "cannot be read without their Python code: rebuild the model with the functional API")
    if isinstance(cfg, list):  # very old Keras 2 Sequential: the config is the list of layers
        cfg = {"layers": cfg}
    layers = []
    for entry in cfg.get("layers", []):
        lcfg = entry.get("config", {}) or {}
        name = entry.get("name") or lcfg.get("name")
        layers.append(_Layer(entry["class_name"], str(name), lcfg, entry))
    name = str(cfg.get("name", "model"))

    if cls == "Sequential":
        if not layers:
            raise ConversionError(f"Sequential model {name!r} has no layers")
        if layers[0].cls != "InputLayer":
            shape = (layers[0].config.get("batch_input_shape") or layers[0].config.get("batch_shape")
                     or cfg.get("build_input_shape"))
            if shape is None:
                raise ConversionError(f"Sequential model {name!r} was saved before it was built, so its input shape "
                                      "is unknown; add keras.Input(shape=...) as its first layer and save again")
            layers.insert(0, _Layer("InputLayer", f"{name}_input", {"batch_shape": list(shape)}, {}))
        prev = (layers[0].name, 0, 0)
        for layer in layers[1:]:
            layer.calls = [[prev]]
            prev = (layer.name, 0, 0)
        return name, layers, [(layers[0].name, 0, 0)], [prev]

    for layer in layers:
        layer.calls = [_tensor_refs(n) for n in layer.raw.get("inbound_nodes", [])]
    return name, layers, _io_refs(cfg.get("input_layers")), _io_refs(cfg.get("output_layers"))


# ----------------------------------------------------------------------------------------------------------
# Building the graph
# ----------------------------------------------------------------------------------------------------------

class _Builder:
    def __init__(self, graph: Graph, weights: _WeightScope, keras_major: int,
                 input_shape: tuple[int, ...] | None) -> None:
        self.graph = graph
        self.top_weights = weights
        self.keras_major = keras_major
        self.input_shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
        self.bn_pairs: list[tuple[str, str]] = []  # (mul output, add output) of each unfolded BatchNormalization
        self.fusable_acts: set[str] = set()  # outputs of relu/relu6 nodes that may fuse into their producer

    # -- top level ------------------------------------------------------------------------------------
    def build_top(self, model: dict) -> None:
        name, layers, in_refs, out_refs = _parse_layers(model)
        self.graph.name = name or self.graph.name
        inputs = {}
        for ref in in_refs:
            layer = next((lay for lay in layers if lay.name == ref[0]), None)
            if layer is None or layer.cls != "InputLayer":
                raise ConversionError(f"model input {ref[0]!r} is not an InputLayer; the config is not supported")
            inputs[ref] = self._add_input(layer)
        outs = self._build_model(name, layers, in_refs, out_refs, self.top_weights, inputs,
                                 sequential=model.get("class_name") == "Sequential")
        self.graph.outputs = list(dict.fromkeys(outs))
        self._fold_batch_norms()
        self._fuse_activations()
        self.graph.prune()
        self.graph.check()

    def _add_input(self, layer: _Layer) -> str:
        cfg = layer.config
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if shape is None and cfg.get("shape") is not None:
            shape = [None] + list(cfg["shape"])
        if shape is None:
            raise ConversionError(f"input {layer.name!r} has no shape in the config; save the model with "
                                  "keras.Input(shape=...)")
        dims = list(shape)[1:]
        given = self.input_shape
        if given is not None:
            if len(given) == len(dims) + 1:
                given = given[1:]
            elif len(given) == 2 and len(dims) == 3:
                given = given + (dims[2] if dims[2] is not None else -1,)
            if len(given) != len(dims):
                raise ConversionError(f"input {layer.name!r} has shape {_fmt(shape)}; the input size "
                                      f"{list(self.input_shape)} does not match it (give H,W or the full shape "
                                      "without the batch)")
            for i, (d, g) in enumerate(zip(dims, given)):
                if d is None:
                    if g <= 0:
                        raise ConversionError(f"input {layer.name!r} has shape {_fmt(shape)}: dimension {i + 1} is "
                                              "open and the given input size does not fix it")
                    dims[i] = g
                elif g > 0 and g != d:
                    raise ConversionError(f"input {layer.name!r} is fixed at {_fmt(shape)} by the model, but the "
                                          f"input size {list(self.input_shape)} asks for {g} in dimension {i + 1}; "
                                          "drop --input-size or pass the model's own size")
        if any(d is None for d in dims):
            raise DynamicShapeError(f"input {layer.name!r} has shape {_fmt(shape)} with open dimensions; fix them with "
                                  "--input-size HxW (input_shape=(H, W) from Python)")
        return self.graph.add_input(self.graph.unique(layer.name), [1] + [int(d) for d in dims])

    # -- one model (top level or nested) --------------------------------------------------------------
    def _build_model(self, name: str, layers: list[_Layer], in_refs: list[TensorRef], out_refs: list[TensorRef],
                     weights: _WeightScope, bound: dict[TensorRef, str], sequential: bool) -> list[str]:
        """Convert every layer call; ``bound`` maps the model's input refs to graph tensors."""
        weights.bind(layers, sequential)
        by_name = {lay.name: lay for lay in layers}
        tensors: dict[TensorRef, str] = dict(bound)
        done = {lay.name: 0 for lay in layers}
        for lay in layers:
            if lay.cls == "InputLayer":
                if not any(r[0] == lay.name for r in bound):
                    raise ConversionError(f"input layer {lay.name!r} of model {name!r} is not one of its inputs")
                done[lay.name] = 1
        # Keras's own order: sweep the layers, calling each node once all its inputs exist (shared layers
        # may be called at different depths).
        pending = sum(len(lay.calls) for lay in layers if lay.cls != "InputLayer")
        while pending:
            progress = False
            for lay in layers:
                while lay.cls != "InputLayer" and done[lay.name] < len(lay.calls):
                    refs = lay.calls[done[lay.name]]
                    for ref in refs:
                        if ref[0] not in by_name:
                            raise ConversionError(f"layer {lay.name!r} reads from {ref[0]!r}, which is not in model "
                                                  f"{name!r}; the config is damaged")
                    if not all(r in tensors for r in refs):
                        break
                    node_index = done[lay.name]
                    outs = self._convert_layer(lay, [tensors[r] for r in refs], weights, node_index)
                    for i, t in enumerate(outs):
                        tensors[(lay.name, node_index, i)] = t
                    done[lay.name] += 1
                    pending -= 1
                    progress = True
            if not progress:
                stuck = [lay.name for lay in layers if lay.cls != "InputLayer" and done[lay.name] < len(lay.calls)]
                raise ConversionError(f"model {name!r}: layers {stuck[:5]} read tensors that are never produced; "
                                      "the config is damaged")
        result = []
        for ref in out_refs:
            key = ref
            if key not in tensors and by_name.get(ref[0]) is not None and by_name[ref[0]].cls in _MODEL_CLASSES:
                key = (ref[0], ref[1] - 1, ref[2])  # Keras counts a nested model's built-in node first
            if key not in tensors:
                raise ConversionError(f"model {name!r}: output {list(ref)} is never produced; the config is damaged")
            result.append(tensors[key])
        return result

    def _convert_layer(self, lay: _Layer, inputs: list[str], weights: _WeightScope, node_index: int) -> list[str]:
        fmt = lay.config.get("data_format")
        if fmt == "channels_first":
            raise ConversionError(f"layer {lay.name!r} ({lay.cls}) uses data_format='channels_first'; only "
                                  "channels_last (NHWC) models are supported: rebuild the model channels_last "
                                  "(the weights are the same) and save it again")
        if lay.cls in _MODEL_CLASSES:
            return self._convert_nested(lay, inputs, weights)
        fn = _CONVERTERS.get(lay.cls)
        if fn is None:
            if lay.cls in _IDENTITY_LAYERS:
                return [self._single(lay, inputs)]
            raise ConversionError(f"layer {lay.name!r} is a {lay.cls}, which the Keras importer does not support. "
                                  f"Supported layers: {', '.join(SUPPORTED_LAYERS)}. Replace the layer, or export "
                                  "the model to ONNX and convert that")
        name = lay.name if node_index == 0 else f"{lay.name}_{node_index}"
        return [fn(self, _Call(lay, name, inputs, weights))]

    def _convert_nested(self, lay: _Layer, inputs: list[str], weights: _WeightScope) -> list[str]:
        name, layers, in_refs, out_refs = _parse_layers(lay.raw)
        if len(in_refs) != len(inputs):
            raise ConversionError(f"nested model {lay.name!r} takes {len(in_refs)} inputs but is called with "
                                  f"{len(inputs)}")
        by_name = {x.name: x for x in layers}
        for ref, t in zip(in_refs, inputs):
            il = by_name.get(ref[0])
            want = (il.config.get("batch_shape") or il.config.get("batch_input_shape")) if il else None
            have = self.graph.tensors[t].shape
            if want and any(w is not None and w != h for w, h in zip(list(want)[1:], have[1:])):
                raise ConversionError(f"nested model {lay.name!r} expects input {_fmt(want)}, gets {list(have)}")
        bound = dict(zip(in_refs, inputs))
        return self._build_model(name, layers, in_refs, out_refs, weights.sub(lay), bound,
                                 sequential=lay.cls == "Sequential")

    def _single(self, lay: _Layer, inputs: list[str]) -> str:
        if len(inputs) != 1:
            raise ConversionError(f"layer {lay.name!r} ({lay.cls}) takes one input, got {len(inputs)}")
        return inputs[0]

    # -- emitting helpers -----------------------------------------------------------------------------
    def shape(self, t: str) -> tuple[int, ...]:
        return self.graph.tensors[t].shape

    def node(self, op: str, inputs: list[str], out_shape, name: str, **attrs) -> str:
        return self.graph.add_node(op, inputs, out_shape, name=self.graph.unique(name), **attrs)

    def const(self, base: str, data: np.ndarray) -> str:
        return self.graph.add_const(base, np.asarray(data, dtype=np.float32))

    def activation(self, call: "_Call", x: str, act: Any, fused_ok: bool = False) -> tuple[str, str | None]:
        """Apply a Keras activation to ``x``; returns (tensor, fused act to set on x's producer instead)."""
        act = _act_name(act)
        if act in (None, "linear"):
            return x, None
        if act in ("relu", "relu6") and fused_ok:
            return x, act
        name = f"{call.name}/{act}"
        shape = self.shape(x)
        if act in ("relu", "relu6"):
            out = self.node(act, [x], shape, name)
            self.fusable_acts.add(out)
            return out, None
        if act in ("sigmoid", "tanh"):
            return self.node(act, [x], shape, name), None
        if act in ("hard_swish", "hard_silu"):
            return self.node("hard_swish", [x], shape, name), None
        if act in ("swish", "silu"):
            s = self.node("sigmoid", [x], shape, f"{name}/sigmoid")
            return self.node("mul", [x, s], shape, name), None
        if act == "softmax":
            return self.node("softmax", [x], shape, name, axis=len(shape) - 1, beta=1.0), None
        if act == "hard_sigmoid":
            # Keras 3: clip(x/6 + 1/2, 0, 1); Keras 2: clip(0.2x + 0.5, 0, 1). Both are relu6(a*x + 3) / 6.
            a = 1.0 if self.keras_major >= 3 else 1.2
            y = x
            if a != 1.0:
                y = self.node("mul", [y, self.const(f"{name}/slope", np.float32(a))], shape, f"{name}/scale")
            y = self.node("add", [y, self.const(f"{name}/three", np.float32(3.0))], shape, f"{name}/shift",
                          act="relu6")
            return self.node("mul", [y, self.const(f"{name}/sixth", np.float32(1 / 6))], shape, name), None
        raise ConversionError(f"layer {call.lay.name!r} ({call.lay.cls}) uses activation {act!r}, which is not "
                              f"supported. Supported activations: {', '.join(SUPPORTED_ACTIVATIONS)}")

    # -- passes ---------------------------------------------------------------------------------------
    def _fold_batch_norms(self) -> None:
        g = self.graph
        for mul_out, add_out in self.bn_pairs:
            mul = g.producer(mul_out)
            add = g.producer(add_out)
            if mul is None or add is None:
                continue
            x = mul.inputs[0]
            p = g.producer(x)
            if (p is None or p.op not in ("conv2d", "depthwise_conv2d", "fully_connected") or p.act is not None
                    or [n.name for n in g.consumers(x)] != [mul.name] or x in g.outputs):
                continue
            scale = g.const(mul.inputs[1]).reshape(-1)
            shift = g.const(add.inputs[1]).reshape(-1)
            w = g.const(p.inputs[1])
            n_out = w.shape[-1] if p.op == "depthwise_conv2d" else w.shape[0]
            if scale.size != n_out or shift.size != n_out:
                continue
            bias = g.const(p.inputs[2]) if len(p.inputs) > 2 else np.zeros(n_out, np.float32)
            if p.op == "depthwise_conv2d":
                w2 = w * scale
            else:
                w2 = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
            p.inputs = [p.inputs[0], self.const(f"{p.name}/weights_bn", w2),
                        self.const(f"{p.name}/bias_bn", bias * scale + shift)]
            g.remove_node(mul)
            g.remove_node(add)
            g.replace_uses(add_out, x)

    def _fuse_activations(self) -> None:
        g = self.graph
        for out in list(self.fusable_acts):
            node = g.producer(out)
            if node is None:
                continue
            x = node.inputs[0]
            p = g.producer(x)
            if (p is None or p.op not in _FUSE_INTO or p.act is not None or x in g.outputs
                    or [n.name for n in g.consumers(x)] != [node.name]):
                continue
            p.attrs["act"] = node.op
            g.remove_node(node)
            g.replace_uses(out, x)


# Ops whose fused activation a later relu may take: the IR's FUSABLE set.
_FUSE_INTO = FUSABLE


def _act_name(act: Any) -> str | None:
    if isinstance(act, dict):  # Keras 3 may serialize an activation as {"class_name": "function", "config": "relu"}
        act = act.get("config") if isinstance(act.get("config"), str) else act.get("class_name")
    return None if act is None else str(act)


def _fmt(shape) -> str:
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


class _Call:
    """One call of a layer: its config, output node name, input tensors and weights."""

    def __init__(self, lay: _Layer, name: str, inputs: list[str], weights: _WeightScope) -> None:
        self.lay = lay
        self.name = name
        self.inputs = inputs
        self._weights = weights

    @property
    def cfg(self) -> dict:
        return self.lay.config

    def fail(self, found: str, fix: str) -> ConversionError:
        return ConversionError(f"layer {self.lay.name!r} ({self.lay.cls}): {found}; {fix}")

    def one_input(self, b: _Builder, rank: int | None = None) -> str:
        if len(self.inputs) != 1:
            raise self.fail(f"called with {len(self.inputs)} inputs", "expected exactly one")
        x = self.inputs[0]
        if rank is not None and len(b.shape(x)) != rank:
            raise self.fail(f"input has shape {list(b.shape(x))}", f"only rank-{rank} inputs are supported")
        return x

    def weights(self, want: list[str]) -> dict[str, np.ndarray]:
        """The layer's variables, in Keras's order, as float32 arrays keyed by ``want``."""
        arrays = self._weights.arrays(self.lay)
        if len(arrays) != len(want):
            raise self.fail(f"the file holds {len(arrays)} weight arrays", f"expected {len(want)} ({', '.join(want)}); "
                            "the file may be damaged or use an unsupported variant of the layer")
        return {k: np.asarray(a, dtype=np.float32) for k, a in zip(want, arrays)}


def _pair(v: Any, what: str, call: _Call) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(e, int) for e in v):
        return int(v[0]), int(v[1])
    raise call.fail(f"{what}={v!r}", "expected an int or a pair of ints")


def _spatial_pads(call: _Call, h: int, w: int, k: tuple[int, int], s: tuple[int, int],
                  d: tuple[int, int]) -> tuple[int, int, int, int]:
    padding = str(call.cfg.get("padding", "valid")).lower()
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        top, bottom = same_pads(h, k[0], s[0], d[0])
        left, right = same_pads(w, k[1], s[1], d[1])
        return top, left, bottom, right
    raise call.fail(f"padding={padding!r}", "only 'same' and 'valid' are supported")


def _out_hw(h: int, w: int, k, s, d, pads) -> tuple[int, int]:
    oh = conv_out_size(h, k[0], s[0], d[0], pads[0], pads[2])
    ow = conv_out_size(w, k[1], s[1], d[1], pads[1], pads[3])
    return oh, ow


# ----------------------------------------------------------------------------------------------------------
# Layer converters: each returns the output tensor
# ----------------------------------------------------------------------------------------------------------

def _conv_geometry(b: _Builder, call: _Call, x: str):
    _, h, w, c = b.shape(x)
    k = _pair(call.cfg.get("kernel_size"), "kernel_size", call)
    s = _pair(call.cfg.get("strides", 1), "strides", call)
    d = _pair(call.cfg.get("dilation_rate", 1), "dilation_rate", call)
    pads = _spatial_pads(call, h, w, k, s, d)
    oh, ow = _out_hw(h, w, k, s, d, pads)
    if oh <= 0 or ow <= 0:
        raise call.fail(f"a {k[0]}x{k[1]} kernel does not fit its {h}x{w} input", "use a larger input size")
    return (h, w, c), k, s, d, pads, (oh, ow)


def _emit_with_act(b: _Builder, call: _Call, op: str, inputs: list[str], shape, **attrs) -> str:
    act = _act_name(call.cfg.get("activation"))
    fusable = act in ("relu", "relu6")
    out = b.node(op, inputs, shape, call.name, act=act if fusable else None, **attrs)
    if fusable:
        return out
    return b.activation(call, out, act)[0]


def _conv2d(b: _Builder, call: _Call) -> str:
    x = call.one_input(b, rank=4)
    (h, w, c), k, s, d, pads, (oh, ow) = _conv_geometry(b, call, x)
    filters = int(call.cfg["filters"])
    groups = int(call.cfg.get("groups", 1) or 1)
    use_bias = bool(call.cfg.get("use_bias", True))
    wts = call.weights(["kernel", "bias"] if use_bias else ["kernel"])
    kernel = wts["kernel"]  # [KH, KW, C/groups, O]
    if kernel.shape != (k[0], k[1], c // groups, filters):
        raise call.fail(f"kernel shape {list(kernel.shape)}",
                        f"expected {[k[0], k[1], c // groups, filters]} for a {c}-channel input")
    geometry = dict(strides=s, dilations=d, pads=pads)
    if groups > 1 and groups == c:
        # One input channel per group: a depthwise conv whose output channel o reads input channel o // M.
        mult = filters // c
        dw = kernel.reshape(1, k[0], k[1], filters)
        inputs = [x, b.const(f"{call.name}/weights", dw)] + ([b.const(f"{call.name}/bias", wts["bias"])]
                                                            if use_bias else [])
        return _emit_with_act(b, call, "depthwise_conv2d", inputs, (1, oh, ow, filters), multiplier=mult,
                              **geometry)
    if groups > 1:
        # Grouped conv as one dense conv with block-diagonal weights: exact, at groups-times the work.
        full = np.zeros((filters, k[0], k[1], c), np.float32)
        cin, cout = c // groups, filters // groups
        for g in range(groups):
            full[g * cout:(g + 1) * cout, :, :, g * cin:(g + 1) * cin] = \
                kernel[:, :, :, g * cout:(g + 1) * cout].transpose(3, 0, 1, 2)
        weight = full
    else:
        weight = kernel.transpose(3, 0, 1, 2)
    inputs = [x, b.const(f"{call.name}/weights", weight)]
    if use_bias:
        inputs.append(b.const(f"{call.name}/bias", wts["bias"]))
    return _emit_with_act(b, call, "conv2d", inputs, (1, oh, ow, filters), **geometry)


def _depthwise_conv2d(b: _Builder, call: _Call) -> str:
    x = call.one_input(b, rank=4)
    (h, w, c), k, s, d, pads, (oh, ow) = _conv_geometry(b, call, x)
    mult = int(call.cfg.get("depth_multiplier", 1))
    use_bias = bool(call.cfg.get("use_bias", True))
    wts = call.weights(["kernel", "bias"] if use_bias else ["kernel"])
    kernel = wts["kernel"]  # [KH, KW, C, M]; output channel c*M + m
    if kernel.shape != (k[0], k[1], c, mult):
        raise call.fail(f"kernel shape {list(kernel.shape)}", f"expected {[k[0], k[1], c, mult]}")
    inputs = [x, b.const(f"{call.name}/weights", kernel.reshape(1, k[0], k[1], c * mult))]
    if use_bias:
        inputs.append(b.const(f"{call.name}/bias", wts["bias"]))
    return _emit_with_act(b, call, "depthwise_conv2d", inputs, (1, oh, ow, c * mult), strides=s, dilations=d,
                          pads=pads, multiplier=mult)


def _separable_conv2d(b: _Builder, call: _Call) -> str:
    x = call.one_input(b, rank=4)
    (h, w, c), k, s, d, pads, (oh, ow) = _conv_geometry(b, call, x)
    mult = int(call.cfg.get("depth_multiplier", 1))
    filters = int(call.cfg["filters"])
    use_bias = bool(call.cfg.get("use_bias", True))
    wts = call.weights(["depthwise_kernel", "pointwise_kernel", "bias"] if use_bias
                       else ["depthwise_kernel", "pointwise_kernel"])
    dk, pk = wts["depthwise_kernel"], wts["pointwise_kernel"]
    if dk.shape != (k[0], k[1], c, mult) or pk.shape != (1, 1, c * mult, filters):
        raise call.fail(f"kernels of shapes {list(dk.shape)} and {list(pk.shape)}",
                        f"expected {[k[0], k[1], c, mult]} and {[1, 1, c * mult, filters]}")
    y = b.node("depthwise_conv2d", [x, b.const(f"{call.name}/depthwise_weights", dk.reshape(1, k[0], k[1], c * mult))],
               (1, oh, ow, c * mult), f"{call.name}/depthwise", strides=s, dilations=d, pads=pads, multiplier=mult,
               act=None)
    inputs = [y, b.const(f"{call.name}/weights", pk.reshape(c * mult, filters).T.reshape(filters, 1, 1, c * mult))]
    if use_bias:
        inputs.append(b.const(f"{call.name}/bias", wts["bias"]))
    return _emit_with_act(b, call, "conv2d", inputs, (1, oh, ow, filters), strides=(1, 1), dilations=(1, 1),
                          pads=(0, 0, 0, 0))


def _dense(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    shape = b.shape(x)
    units = int(call.cfg["units"])
    use_bias = bool(call.cfg.get("use_bias", True))
    wts = call.weights(["kernel", "bias"] if use_bias else ["kernel"])
    kernel = wts["kernel"]  # [K, O]
    if kernel.shape != (shape[-1], units):
        raise call.fail(f"kernel shape {list(kernel.shape)}", f"expected {[shape[-1], units]} for input {list(shape)}")
    bias = [b.const(f"{call.name}/bias", wts["bias"])] if use_bias else []
    if len(shape) == 4:  # Dense over the channels of a feature map is a 1x1 conv
        weight = b.const(f"{call.name}/weights", kernel.T.reshape(units, 1, 1, shape[-1]))
        return _emit_with_act(b, call, "conv2d", [x, weight] + bias, shape[:-1] + (units,), strides=(1, 1),
                              dilations=(1, 1), pads=(0, 0, 0, 0))
    weight = b.const(f"{call.name}/weights", kernel.T)
    return _emit_with_act(b, call, "fully_connected", [x, weight] + bias, shape[:-1] + (units,))


def _batch_norm(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    shape = b.shape(x)
    axis = call.cfg.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        axis = axis[0] if len(axis) == 1 else None
    if axis is None or axis not in (-1, len(shape) - 1):
        raise call.fail(f"normalizes axis {call.cfg.get('axis')!r} of a {list(shape)} input",
                        "only the channel (last) axis is supported")
    scale_on, center_on = call.cfg.get("scale", True), call.cfg.get("center", True)
    want = (["gamma"] if scale_on else []) + (["beta"] if center_on else []) + ["moving_mean", "moving_variance"]
    wts = call.weights(want)
    n = shape[-1]
    gamma = wts.get("gamma", np.ones(n, np.float32))
    beta = wts.get("beta", np.zeros(n, np.float32))
    eps = float(call.cfg.get("epsilon", 1e-3))
    # y = gamma * (x - mean) / sqrt(var + eps) + beta = x * scale + shift; computed in float64, stored float32.
    scale = gamma.astype(np.float64) / np.sqrt(wts["moving_variance"].astype(np.float64) + eps)
    shift = beta - wts["moving_mean"].astype(np.float64) * scale
    m = b.node("mul", [x, b.const(f"{call.name}/scale", scale.astype(np.float32))], shape, f"{call.name}/mul")
    out = b.node("add", [m, b.const(f"{call.name}/shift", shift.astype(np.float32))], shape, call.name)
    b.bn_pairs.append((m, out))
    return out


def _activation_layer(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    return b.activation(call, x, call.cfg.get("activation"))[0]


def _relu_layer(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    max_value = call.cfg.get("max_value")
    slope = float(call.cfg.get("negative_slope", 0.0) or 0.0)
    threshold = float(call.cfg.get("threshold", 0.0) or 0.0)
    if threshold != 0.0:
        raise call.fail(f"threshold={threshold}", "only threshold=0 is supported")
    if max_value is not None and float(max_value) != 6.0:
        raise call.fail(f"max_value={max_value}", "only max_value=None (relu) or 6 (relu6) is supported")
    if slope != 0.0:
        if max_value is not None:
            raise call.fail(f"negative_slope={slope} together with max_value={max_value}",
                            "use one or the other")
        return _prelu_const(b, call, x, slope)
    return b.activation(call, x, "relu6" if max_value is not None else "relu")[0]


def _prelu_const(b: _Builder, call: _Call, x: str, slope: float) -> str:
    alpha = b.const(f"{call.name}/alpha", np.full((1,) * len(b.shape(x)), slope, np.float32))
    return b.node("prelu", [x, alpha], b.shape(x), call.name)


def _leaky_relu(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    slope = call.cfg.get("negative_slope", call.cfg.get("alpha", 0.3))
    return _prelu_const(b, call, x, float(slope))


def _prelu(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    shape = b.shape(x)
    alpha = call.weights(["alpha"])["alpha"]
    try:
        np.broadcast_shapes(shape, (1,) + alpha.shape)
    except ValueError:
        raise call.fail(f"alpha of shape {list(alpha.shape)}", f"expected it to broadcast to {list(shape)}") from None
    return b.node("prelu", [x, b.const(f"{call.name}/alpha", alpha.reshape((1,) + alpha.shape))], shape, call.name)


def _softmax(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    rank = len(b.shape(x))
    axis = call.cfg.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise call.fail(f"axis={axis}", "only one axis is supported")
        axis = axis[0]
    axis = int(axis) % rank
    if axis == 0:
        raise call.fail("axis 0 (the batch)", "softmax over the batch is not supported")
    return b.node("softmax", [x], b.shape(x), call.name, axis=axis, beta=1.0)


def _merge_shapes(b: _Builder, call: _Call) -> tuple[int, ...]:
    if len(call.inputs) < 2:
        raise call.fail(f"called with {len(call.inputs)} inputs", "expected two or more")
    try:
        return tuple(np.broadcast_shapes(*[b.shape(t) for t in call.inputs]))
    except ValueError:
        raise call.fail(f"inputs of shapes {[list(b.shape(t)) for t in call.inputs]}",
                        "they must have equal (or broadcastable) shapes") from None


def _chain(b: _Builder, call: _Call, op: str, inputs: list[str], shape, out_name: str) -> str:
    y = inputs[0]
    for i, t in enumerate(inputs[1:], 1):
        last = i == len(inputs) - 1
        y = b.node(op, [y, t], shape, out_name if last else f"{call.name}/{op}{i}")
    return y


def _add(b: _Builder, call: _Call) -> str:
    return _chain(b, call, "add", call.inputs, _merge_shapes(b, call), call.name)


def _multiply(b: _Builder, call: _Call) -> str:
    return _chain(b, call, "mul", call.inputs, _merge_shapes(b, call), call.name)


def _subtract(b: _Builder, call: _Call) -> str:
    shape = _merge_shapes(b, call)
    if len(call.inputs) != 2:
        raise call.fail(f"called with {len(call.inputs)} inputs", "expected exactly two")
    a, c = call.inputs
    neg = b.node("mul", [c, b.const(f"{call.name}/minus_one", np.float32(-1.0))], b.shape(c), f"{call.name}/negate")
    return b.node("add", [a, neg], shape, call.name)


def _average(b: _Builder, call: _Call) -> str:
    shape = _merge_shapes(b, call)
    total = _chain(b, call, "add", call.inputs, shape, f"{call.name}/sum")
    inv_n = b.const(f"{call.name}/inv_n", np.float32(1.0 / len(call.inputs)))
    return b.node("mul", [total, inv_n], shape, call.name)


def _concatenate(b: _Builder, call: _Call) -> str:
    if len(call.inputs) < 1:
        raise call.fail("called with no inputs", "expected one or more")
    shapes = [b.shape(t) for t in call.inputs]
    rank = len(shapes[0])
    axis = int(call.cfg.get("axis", -1)) % rank
    if axis == 0:
        raise call.fail("axis 0 (the batch)", "concatenation along the batch is not supported")
    for s in shapes:
        if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
            raise call.fail(f"inputs of shapes {[list(x) for x in shapes]}",
                            f"all dimensions but axis {axis} must agree")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return b.node("concat", list(call.inputs), out, call.name, axis=axis)


def _zero_padding(b: _Builder, call: _Call) -> str:
    x = call.one_input(b, rank=4)
    p = call.cfg.get("padding", 1)
    if isinstance(p, int):
        (t, bo), (le, r) = (p, p), (p, p)
    elif isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(e, int) for e in p):
        (t, bo), (le, r) = (p[0], p[0]), (p[1], p[1])
    elif isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(e, (list, tuple)) for e in p):
        (t, bo), (le, r) = p
    else:
        raise call.fail(f"padding={p!r}", "expected an int, (h, w) or ((top, bottom), (left, right))")
    n, h, w, c = b.shape(x)
    return b.node("pad", [x], (n, h + t + bo, w + le + r, c), call.name,
                  pads=((0, 0), (int(t), int(bo)), (int(le), int(r)), (0, 0)))


def _pool(op: str) -> Callable[[_Builder, _Call], str]:
    def convert(b: _Builder, call: _Call) -> str:
        x = call.one_input(b, rank=4)
        n, h, w, c = b.shape(x)
        k = _pair(call.cfg.get("pool_size", 2), "pool_size", call)
        strides = call.cfg.get("strides")
        s = k if strides is None else _pair(strides, "strides", call)
        pads = _spatial_pads(call, h, w, k, s, (1, 1))
        oh, ow = _out_hw(h, w, k, s, (1, 1), pads)
        if oh <= 0 or ow <= 0:
            raise call.fail(f"a {k[0]}x{k[1]} window does not fit its {h}x{w} input", "use a larger input size")
        return b.node(op, [x], (n, oh, ow, c), call.name, kernel=k, strides=s, pads=pads, act=None)

    return convert


def _global_avg_pool(b: _Builder, call: _Call) -> str:
    x = call.one_input(b, rank=4)
    n, _, _, c = b.shape(x)
    keep = bool(call.cfg.get("keepdims", False))
    return b.node("mean", [x], (n, 1, 1, c) if keep else (n, c), call.name, axes=(1, 2), keepdims=keep)


def _global_max_pool(b: _Builder, call: _Call) -> str:
    x = call.one_input(b, rank=4)
    n, h, w, c = b.shape(x)
    keep = bool(call.cfg.get("keepdims", False))
    y = b.node("max_pool2d", [x], (n, 1, 1, c), call.name if keep else f"{call.name}/pool", kernel=(h, w),
               strides=(1, 1), pads=(0, 0, 0, 0), act=None)
    return y if keep else b.node("reshape", [y], (n, c), call.name, shape=(n, c))


def _flatten(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    shape = b.shape(x)
    out = (shape[0], math.prod(shape[1:]))
    return b.node("reshape", [x], out, call.name, shape=out)


def _reshape(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    shape = b.shape(x)
    target = [int(d) for d in call.cfg.get("target_shape", [])]
    size = math.prod(shape[1:])
    if target.count(-1) > 1:
        raise call.fail(f"target_shape={target}", "at most one -1 is allowed")
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        if known == 0 or size % known:
            raise call.fail(f"target_shape={target} for an input of {list(shape)}", "the sizes do not divide")
        target[target.index(-1)] = size // known
    if math.prod(target) != size:
        raise call.fail(f"target_shape={target} for an input of {list(shape)}", "the sizes must match")
    out = (shape[0], *target)
    return b.node("reshape", [x], out, call.name, shape=out)


def _permute(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    shape = b.shape(x)
    dims = [int(d) for d in call.cfg.get("dims", [])]
    if sorted(dims) != list(range(1, len(shape))):
        raise call.fail(f"dims={dims} for an input of {list(shape)}", f"expected a permutation of 1..{len(shape) - 1}")
    perm = (0, *dims)
    return b.node("transpose", [x], tuple(shape[p] for p in perm), call.name, perm=perm)


def _rescaling(b: _Builder, call: _Call) -> str:
    x = call.one_input(b)
    shape = b.shape(x)
    scale = np.asarray(call.cfg.get("scale", 1.0), np.float32)
    offset = np.asarray(call.cfg.get("offset", 0.0), np.float32)
    for what, v in (("scale", scale), ("offset", offset)):
        try:
            np.broadcast_shapes(shape, v.shape)
        except ValueError:
            raise call.fail(f"{what} of shape {list(v.shape)}",
                            f"it must broadcast to the input {list(shape)}") from None
    y = x
    if not np.all(scale == 1.0):
        y = b.node("mul", [y, b.const(f"{call.name}/scale", scale)], shape,
                   call.name if np.all(offset == 0.0) else f"{call.name}/mul")
    if not np.all(offset == 0.0):
        y = b.node("add", [y, b.const(f"{call.name}/offset", offset)], shape, call.name)
    return y


def _resize_mode(call: _Call, key: str) -> str:
    mode = str(call.cfg.get(key, "nearest")).lower()
    if mode not in ("nearest", "bilinear"):
        raise call.fail(f"{key}={mode!r}", "only 'nearest' and 'bilinear' are supported")
    return mode


def _upsampling(b: _Builder, call: _Call) -> str:
    x = call.one_input(b, rank=4)
    n, h, w, c = b.shape(x)
    sh, sw = _pair(call.cfg.get("size", 2), "size", call)
    mode = _resize_mode(call, "interpolation")
    # TF's and torch's resize (align_corners off) sample at half-pixel centres.
    return b.node("resize", [x], (n, h * sh, w * sw, c), call.name, size=(h * sh, w * sw), mode=mode,
                  align_corners=False, half_pixel_centers=True)


def _resizing(b: _Builder, call: _Call) -> str:
    x = call.one_input(b, rank=4)
    n, _, _, c = b.shape(x)
    if call.cfg.get("crop_to_aspect_ratio") or call.cfg.get("pad_to_aspect_ratio"):
        raise call.fail("crop_to_aspect_ratio / pad_to_aspect_ratio is set", "only a plain resize is supported")
    if call.cfg.get("antialias"):
        raise call.fail("antialias=True", "only antialias=False is supported")
    oh, ow = int(call.cfg["height"]), int(call.cfg["width"])
    mode = _resize_mode(call, "interpolation")
    return b.node("resize", [x], (n, oh, ow, c), call.name, size=(oh, ow), mode=mode, align_corners=False,
                  half_pixel_centers=True)


_CONVERTERS: dict[str, Callable[[_Builder, _Call], str]] = {
    "Conv2D": _conv2d,
    "DepthwiseConv2D": _depthwise_conv2d,
    "SeparableConv2D": _separable_conv2d,
    "Dense": _dense,
    "BatchNormalization": _batch_norm,
    "Activation": _activation_layer,
    "ReLU": _relu_layer,
    "LeakyReLU": _leaky_relu,
    "PReLU": _prelu,
    "Softmax": _softmax,
    "Add": _add,
    "Multiply": _multiply,
    "Subtract": _subtract,
    "Average": _average,
    "Concatenate": _concatenate,
    "ZeroPadding2D": _zero_padding,
    "MaxPooling2D": _pool("max_pool2d"),
    "MaxPool2D": _pool("max_pool2d"),
    "AveragePooling2D": _pool("avg_pool2d"),
    "AvgPool2D": _pool("avg_pool2d"),
    "GlobalAveragePooling2D": _global_avg_pool,
    "GlobalAvgPool2D": _global_avg_pool,
    "GlobalMaxPooling2D": _global_max_pool,
    "GlobalMaxPool2D": _global_max_pool,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Permute": _permute,
    "Rescaling": _rescaling,
    "UpSampling2D": _upsampling,
    "Resizing": _resizing,
}

SUPPORTED_LAYERS: tuple[str, ...] = tuple(sorted(set(_CONVERTERS) | set(_IDENTITY_LAYERS) | {"InputLayer"}
                                                 | set(_MODEL_CLASSES)))
SUPPORTED_ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "hard_sigmoid", "hard_swish",
                         "hard_silu", "swish", "silu")
