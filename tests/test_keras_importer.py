"""Keras importer: every supported layer, both file formats, against Keras itself as the oracle.

Keras 3 runs here on its torch backend (no TensorFlow). Each test builds a small model with random weights
(BatchNormalization statistics too), saves it, imports it with ``import_keras`` — which never imports keras —
runs the graph with the numpy ``FloatExecutor`` and compares with ``model(x, training=False)``.
"""
from __future__ import annotations

import ast
import json
import math
import os
import pathlib
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="keras is not installed (pip install keras; it runs on torch)")
from keras import layers  # noqa: E402

from converters.float_exec import FloatExecutor  # noqa: E402
from converters.importers import keras as keras_importer  # noqa: E402
from converters.importers.keras import import_keras  # noqa: E402
from converters.ir import ConversionError  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORMATS = [".keras", ".h5"]


# -- helpers ---------------------------------------------------------------------------------------------

def _randomize(model, seed: int = 0) -> None:
    """Random weights everywhere; BatchNormalization variances positive and far from 1 so folding shows."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape = tuple(v.shape)
        path = getattr(v, "path", v.name)
        if "moving_variance" in path:
            value = rng.uniform(0.3, 2.5, shape)
        elif "gamma" in path:
            value = rng.uniform(0.5, 1.5, shape)
        elif "alpha" in path:
            value = rng.uniform(0.05, 0.5, shape)
        else:
            value = rng.normal(0, 0.5, shape)
        v.assign(value.astype(np.float32))


def _oracle(model, x):
    out = model(x, training=False)
    if isinstance(out, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in out]
    return [keras.ops.convert_to_numpy(out)]


def _save(model, tmp_path: pathlib.Path, fmt: str) -> pathlib.Path:
    path = tmp_path / f"{model.name}{fmt}"
    model.save(path)
    return path


def _run(graph, xs):
    feeds = xs[0] if len(xs) == 1 else dict(zip(graph.inputs, xs))
    res = FloatExecutor(graph).run(feeds)
    return [res[o] for o in graph.outputs]


def _inputs_for(model, seed=1, batch=3, hw=None):
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        shape = list(t.shape[1:])
        if hw is not None:
            shape = [hw[0], hw[1]] + shape[2:]
        xs.append(rng.normal(0, 1, [batch] + shape).astype(np.float32))
    return xs


def _assert_close(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != keras {want.shape}"
    tol = 1e-4 * max(1.0, float(np.abs(want).max()))
    err = np.abs(got - want)
    if err.max() > tol:
        i = np.unravel_index(np.argmax(err), err.shape)
        pytest.fail(f"{what}: max error {err.max():.3g} > {tol:.3g} at {i}: ours {got[i]!r}, keras {want[i]!r}")


def _check(model, tmp_path, fmt, seed=0, input_shape=None, hw=None):
    _randomize(model, seed)
    path = _save(model, tmp_path, fmt)
    graph = import_keras(path, input_shape=input_shape)
    xs = _inputs_for(model, hw=hw)
    want = _oracle(model, xs if len(xs) > 1 else xs[0])
    got = _run(graph, xs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _assert_close(g, w, f"{model.name}{fmt}")
    return graph


# -- the models ------------------------------------------------------------------------------------------

def seq_conv_pool_dense():
    return keras.Sequential([
        keras.Input((11, 13, 3)),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(5, (3, 2), padding="valid", dilation_rate=(2, 1), use_bias=False, activation="relu6"),
        layers.MaxPooling2D(2, padding="same"),
        layers.Flatten(),
        layers.Dense(7, activation="tanh"),
        layers.Dropout(0.5),
        layers.Dense(3, activation="softmax"),
    ], name="seq_conv_pool_dense")


def residual_bn():
    inp = keras.Input((9, 11, 4))
    x = layers.Conv2D(4, 3, padding="same", name="c1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.Conv2D(4, 3, padding="same", use_bias=False, name="c2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.Add(name="res")([x, inp])
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(6, name="head")(x)
    return keras.Model(inp, out, name="residual_bn")


def depthwise_separable():
    inp = keras.Input((25, 27, 3))
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="relu6")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.DepthwiseConv2D(5, dilation_rate=2, padding="valid", use_bias=False)(x)
    x = layers.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="sigmoid")(x)
    y = layers.SeparableConv2D(5, (2, 3), strides=(2, 1), padding="valid", use_bias=False)(x)
    return keras.Model(inp, y, name="depthwise_separable")


def bn_not_foldable():
    inp = keras.Input((6, 7, 3))
    a = layers.BatchNormalization(name="bn_on_input")(inp)  # standalone: no producer to fold into
    b = layers.Conv2D(4, 3, activation="relu", name="c_relu")(a)
    b = layers.BatchNormalization(name="bn_after_relu")(b)  # after a fused relu: cannot fold
    c = layers.Conv2D(4, 3, name="c_shared_out")(a)
    d = layers.BatchNormalization(name="bn_branch")(c)  # the conv output has a second reader
    out = layers.Concatenate(name="cat")([b, d, c])
    return keras.Model(inp, out, name="bn_not_foldable")


def activations():
    inp = keras.Input((5, 6, 4))
    outs = [
        layers.Activation("sigmoid")(inp),
        layers.Activation("hard_sigmoid")(inp),
        layers.Activation("hard_swish")(inp),
        layers.Activation("tanh")(inp),
        layers.Activation("linear")(inp),
        layers.Activation("swish")(inp),
        layers.Activation("relu6")(inp),
        layers.ReLU(max_value=6.0)(inp),
        layers.ReLU(negative_slope=0.1)(inp),
        layers.LeakyReLU(negative_slope=0.2)(inp),
        layers.PReLU()(inp),
        layers.PReLU(shared_axes=[1, 2])(inp),
        layers.Softmax()(inp),
        layers.Softmax(axis=1)(inp),
        layers.Conv2D(3, 1, activation="hard_sigmoid")(inp),
    ]
    return keras.Model(inp, outs, name="activations")


def merges():
    inp = keras.Input((5, 4, 3))
    a = layers.Conv2D(3, 1, name="a")(inp)
    b = layers.Conv2D(3, 1, name="b")(inp)
    c = layers.Conv2D(3, 1, name="c")(inp)
    outs = [
        layers.Add()([a, b, c]),
        layers.Multiply()([a, b]),
        layers.Subtract()([a, b]),
        layers.Average()([a, b, c]),
        layers.Concatenate()([a, inp, b]),
        layers.Concatenate(axis=1)([a, b]),
        layers.ReLU()(layers.Add()([a, b])),  # relu fuses into the add
    ]
    return keras.Model(inp, outs, name="merges")


def pad_pool():
    inp = keras.Input((9, 8, 2))
    x = layers.ZeroPadding2D(((1, 1), (3, 0)))(inp)
    outs = [
        # Symmetric SAME padding only: on asymmetric padding Keras's torch backend replicates edge cells into
        # the average, where TensorFlow (and TFLite, and we) leave them out; see the test below.
        layers.AveragePooling2D(3, strides=2, padding="same")(x),
        layers.MaxPooling2D(3, strides=2, padding="valid")(x),
        layers.MaxPooling2D((2, 3), strides=(1, 2), padding="same")(x),
        layers.AveragePooling2D((2, 2))(inp),
        layers.GlobalMaxPooling2D()(x),
        layers.GlobalMaxPooling2D(keepdims=True)(x),
        layers.GlobalAveragePooling2D(keepdims=True)(x),
        layers.ZeroPadding2D(2)(inp),
        layers.ZeroPadding2D((1, 2))(inp),
    ]
    return keras.Model(inp, outs, name="pad_pool")


def shapes_and_resize():
    inp = keras.Input((4, 6, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    outs = [
        layers.Reshape((-1, 3))(x),
        layers.Permute((2, 1, 3))(x),
        layers.Reshape((6, 4, 3))(layers.Permute((2, 1, 3))(x)),
        layers.UpSampling2D(2)(x),
        layers.UpSampling2D((2, 3), interpolation="bilinear")(x),
        layers.Rescaling(2.0)(x),
        layers.Resizing(7, 9, interpolation="bilinear")(x),
        layers.Resizing(3, 10, interpolation="nearest")(x),
        layers.Dense(5, activation="relu")(x),  # Dense on a feature map: a 1x1 conv
        layers.Dense(2)(layers.Reshape((8, 9))(x)),  # Dense on a rank-3 tensor
    ]
    return keras.Model(inp, outs, name="shapes_and_resize")


def grouped_and_shared():
    inp = keras.Input((7, 7, 4))
    x = layers.Conv2D(6, 3, groups=2, padding="same", name="grouped")(inp)
    y = layers.Conv2D(8, 3, groups=4, padding="same", name="per_channel")(inp)  # groups == channels: depthwise
    shared = layers.Conv2D(4, 3, padding="same", activation="relu", name="shared")
    z = shared(shared(inp))  # one layer called twice
    return keras.Model(inp, [x, y, z], name="grouped_and_shared")


def nested():
    inner = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3, name="ic"),
                              layers.BatchNormalization(name="ibn"), layers.ReLU()], name="inner")
    inp = keras.Input((8, 8, 3))
    x = inner(inp)
    x = layers.Conv2D(2, 1, name="oc")(x)
    return keras.Model(inp, x, name="nested")


def two_inputs():
    a = keras.Input((4, 4, 2), name="left")
    b = keras.Input((4, 4, 3), name="right")
    x = layers.Concatenate()([a, b])
    x = layers.Conv2D(3, 3, padding="same")(x)
    return keras.Model([a, b], x, name="two_inputs")


MODELS = [seq_conv_pool_dense, residual_bn, depthwise_separable, bn_not_foldable, activations, merges, pad_pool,
          shapes_and_resize, grouped_and_shared, nested, two_inputs]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__)
def test_model_matches_keras(build, fmt, tmp_path):
    _check(build(), tmp_path, fmt)


# -- specific behaviour ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_batch_norm_after_conv_is_folded_into_its_weights(fmt, tmp_path):
    graph = _check(residual_bn(), tmp_path, fmt)
    ops = [n.op for n in graph.nodes]
    assert ops.count("mul") == 0, graph.summary()
    # bn1 folded into c1, then r1 fused: one conv with relu.
    c1 = next(n for n in graph.nodes if n.name == "c1")
    assert c1.act == "relu" and len(c1.inputs) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_batch_norm_that_cannot_fold_becomes_mul_add(fmt, tmp_path):
    graph = _check(bn_not_foldable(), tmp_path, fmt)
    assert [n.op for n in graph.nodes].count("mul") == 3, graph.summary()


def test_average_pool_same_padding_excludes_padding_cells_like_tensorflow(tmp_path):
    model = keras.Sequential([keras.Input((6, 5, 1)), layers.AveragePooling2D(3, strides=2, padding="same")],
                             name="avg_same")
    graph = import_keras(_save(model, tmp_path, ".keras"))
    x = np.arange(30, dtype=np.float32).reshape(1, 6, 5, 1)
    # TF SAME: rows padded (0, 1), columns (1, 1); each output averages only the real cells in its window.
    xp = np.pad(x[0, :, :, 0], ((0, 1), (1, 1)), constant_values=np.nan)
    want = np.array([[np.nanmean(xp[2 * i:2 * i + 3, 2 * j:2 * j + 3]) for j in range(3)] for i in range(3)])
    _assert_close(_run(graph, [x])[0][0, :, :, 0], want.astype(np.float32), "avg pool SAME")


def test_dynamic_input_size_taken_from_input_shape(tmp_path):
    inp = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, x, name="dynamic")
    _randomize(model)
    path = _save(model, tmp_path, ".keras")
    with pytest.raises(ConversionError, match="--input-size"):
        import_keras(path)
    graph = import_keras(path, input_shape=(10, 7))
    assert graph.tensors[graph.inputs[0]].shape == (1, 10, 7, 3)
    xs = _inputs_for(model, hw=(10, 7))
    _assert_close(_run(graph, xs)[0], _oracle(model, xs[0])[0], "dynamic")


def test_input_shape_conflicting_with_a_fixed_model_is_an_error(tmp_path):
    model = seq_conv_pool_dense()
    path = _save(model, tmp_path, ".keras")
    with pytest.raises(ConversionError, match="fixed"):
        import_keras(path, input_shape=(32, 32))
    graph = import_keras(path, input_shape=(11, 13))  # agreeing with the model is fine
    assert graph.tensors[graph.inputs[0]].shape == (1, 11, 13, 3)


def _keras2_h5_from(model, tmp_path) -> pathlib.Path:
    """A legacy .h5 in the tf.keras 2.x dialect: list-style inbound_nodes, batch_input_shape, "name:0" weights."""
    import h5py

    src = _save(model, tmp_path, ".h5")
    with h5py.File(src, "r") as f:
        config = json.loads(f.attrs["model_config"])
        order = [n.decode() if isinstance(n, bytes) else n for n in f["model_weights"].attrs["layer_names"]]
        old = {name: [(n.decode() if isinstance(n, bytes) else n, f["model_weights"][name][n][()])
                      for n in f["model_weights"][name].attrs["weight_names"]]
               for name in order}

    def history(arg):
        return arg["config"]["keras_history"]

    for lay in config["config"]["layers"]:
        cfg = lay["config"]
        if "batch_shape" in cfg:
            cfg["batch_input_shape"] = cfg.pop("batch_shape")
        cfg["dtype"] = "float32"
        nodes = []
        for node in lay["inbound_nodes"]:
            args = node["args"][0]
            args = args if isinstance(args, list) else [args]
            nodes.append([history(a) + [{}] for a in args])
        lay["inbound_nodes"] = nodes
    config["class_name"] = "Functional"
    dst = tmp_path / f"{model.name}_keras2.h5"
    with h5py.File(dst, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [n.encode() for n in old]
        for name, entries in old.items():
            g = mw.create_group(name)
            names = [f"{name}/{n.split('/')[-1]}:0" for n, _ in entries]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, (_, arr) in zip(names, entries):
                g.create_dataset(n, data=arr)
    return dst


def test_keras2_dialect_h5_matches_keras(tmp_path):
    model = residual_bn()
    _randomize(model, 3)
    path = _keras2_h5_from(model, tmp_path)
    # Keras itself reads the crafted file, so the dialect is real; and our import of it matches the model.
    reloaded = keras.saving.load_model(path, compile=False)
    xs = _inputs_for(model)
    _assert_close(_oracle(reloaded, xs[0])[0], _oracle(model, xs[0])[0], "keras reload")
    graph = import_keras(path)
    _assert_close(_run(graph, xs)[0], _oracle(model, xs[0])[0], "keras2 dialect")


def test_keras_file_without_weight_names_maps_layers_by_class_order(tmp_path):
    """Older writers (tf.keras 2.13-2.15) keep layers under _layer_checkpoint_dependencies, unnamed."""
    import h5py

    model = grouped_and_shared()
    _randomize(model, 5)
    src = _save(model, tmp_path, ".keras")
    weights = tmp_path / "w.h5"
    with zipfile.ZipFile(src) as z:
        weights.write_bytes(z.read("model.weights.h5"))
        config = z.read("config.json")
    with h5py.File(weights, "r+") as f:
        f.move("layers", "_layer_checkpoint_dependencies")
        f.visititems(lambda name, obj: obj.attrs.pop("name", None) if isinstance(obj, h5py.Group) else None)
        f["vars"].attrs.pop("name", None)
    dst = tmp_path / "unnamed.keras"
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("config.json", config)
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        z.write(weights, "model.weights.h5")
    xs = _inputs_for(model)
    want = _oracle(model, xs[0])
    reloaded = keras.saving.load_model(dst, compile=False)  # Keras reads this layout itself
    _assert_close(_oracle(reloaded, xs[0])[2], want[2], "keras reload")
    for got, w in zip(_run(import_keras(dst), xs), want):
        _assert_close(got, w, "unnamed layers")


def test_unbuilt_sequential_says_to_add_an_input(tmp_path):
    model = keras.Sequential([layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(2)], name="unbuilt")
    with pytest.raises(ConversionError, match="keras.Input"):
        import_keras(_save(model, tmp_path, ".keras"))


def test_keras2_hard_sigmoid_uses_the_keras2_slope(tmp_path):
    model = keras.Sequential([keras.Input((3, 3, 2)), layers.Activation("hard_sigmoid")], name="hs")
    path = _keras2_h5_from(keras.Model(model.inputs, model.outputs, name="hs"), tmp_path)
    graph = import_keras(path)
    x = np.linspace(-4, 4, 18, dtype=np.float32).reshape(1, 3, 3, 2)
    _assert_close(_run(graph, [x])[0], np.clip(0.2 * x + 0.5, 0, 1), "keras2 hard_sigmoid")


# -- bad input -------------------------------------------------------------------------------------------

def test_missing_file_is_a_conversion_error(tmp_path):
    with pytest.raises(ConversionError, match="does not exist"):
        import_keras(tmp_path / "nope.keras")


def test_text_file_is_not_a_keras_file(tmp_path):
    p = tmp_path / "model.keras"
    p.write_text("hello")
    with pytest.raises(ConversionError, match="neither"):
        import_keras(p)


def test_zip_without_config_is_not_a_keras_file(tmp_path):
    p = tmp_path / "model.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("other.txt", "x")
    with pytest.raises(ConversionError, match="config.json"):
        import_keras(p)


def test_weights_only_h5_says_so(tmp_path):
    model = seq_conv_pool_dense()
    p = tmp_path / "w.weights.h5"
    model.save_weights(p)
    with pytest.raises(ConversionError, match="model_config"):
        import_keras(p)


@pytest.mark.parametrize("fmt", FORMATS)
def test_unsupported_layer_names_the_layer_its_class_and_the_supported_list(fmt, tmp_path):
    inp = keras.Input((6, 6, 3))
    x = layers.Conv2D(2, 3, name="fine")(inp)
    x = layers.LayerNormalization(name="my_norm")(x)
    model = keras.Model(inp, x, name="unsupported")
    path = _save(model, tmp_path, fmt)
    with pytest.raises(ConversionError) as e:
        import_keras(path)
    msg = str(e.value)
    assert "'my_norm'" in msg and "LayerNormalization" in msg and "Conv2D" in msg


def test_unsupported_activation_is_named(tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 1)), layers.Conv2D(2, 1, activation="elu", name="c_elu")],
                             name="elu")
    with pytest.raises(ConversionError, match="'c_elu'.*'elu'"):
        import_keras(_save(model, tmp_path, ".keras"))


def test_channels_first_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((3, 8, 8)), layers.Conv2D(2, 3, data_format="channels_first",
                                                                     name="nchw")], name="cf")
    with pytest.raises(ConversionError, match="channels_first"):
        import_keras(_save(model, tmp_path, ".keras"))


def test_importer_never_imports_keras_or_tensorflow():
    tree = ast.parse(pathlib.Path(keras_importer.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    assert not names & {"keras", "tensorflow", "tf_keras", "jax"}, names


# -- the project's own Fashion-MNIST models (trained with the TensorFlow backend) -------------------------

FASHION = ROOT / "models" / "fashion_mnist"


@pytest.mark.parametrize("name", ["fashion_mnist.keras", "fashion_mnist.h5"])
def test_fashion_mnist_model_imports_and_matches_keras(name):
    path = FASHION / name
    if not path.exists():
        pytest.skip(f"{path} has not been produced yet")
    graph = import_keras(path)
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.random.default_rng(0).uniform(0, 1, (4,) + shape[1:]).astype(np.float32)
    got = _run(graph, [x])[0]
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - a TF-only file may not load on torch; fall back to a sanity check
        model, reason = None, f"{type(e).__name__}: {e}"
    if model is not None:
        _assert_close(got, _oracle(model, x)[0], name)
    else:
        assert got.shape[0] == 4 and np.all(got >= 0), reason
        assert np.allclose(got.sum(axis=-1), 1, atol=1e-4), f"not a probability vector; keras could not load: {reason}"
    assert math.isfinite(float(got.sum()))
