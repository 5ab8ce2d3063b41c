"""Our converter against TensorFlow's TFLiteConverter on the same Keras model and the same 200 calibration
images (Fashion-MNIST, full 10k test set). Both int8 files run in the same interpreter (ai-edge-litert):
default kernels, as users run them, and reference kernels.

TensorFlow lives in its own venv (tools/setup_tf_venv.sh; .ci/run builds it once per run); the test runs
TF's side there in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TF_PY = ROOT / ".cache" / "tf-venv" / "bin" / "python"
MODEL = ROOT / "models" / "fashion_mnist" / "fashion_mnist.keras"
sys.path.insert(0, str(ROOT / "tools"))

pytestmark = pytest.mark.tfpeer


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    if not (TF_PY.exists() and (TF_PY.parent.parent / "READY").exists()):
        pytest.skip("TensorFlow peer venv missing: run tools/setup_tf_venv.sh (CI builds it in .ci/run)")
    fm = pytest.importorskip("fashion_mnist")
    from converters import convert
    tmp = tmp_path_factory.mktemp("peer")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}  # other tests run Keras on torch in this process
    proc = subprocess.run([str(TF_PY), str(ROOT / "tools" / "tf_peer.py"), "--out", str(tmp / "tf.json"),
                           "--tflite-out", str(tmp / "tf.tflite")], capture_output=True, text=True, cwd=ROOT,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    xt, yt = fm.load("test")
    ours = convert(MODEL, fm.calibration_images(200), None, eval=xt[:16], eval_labels=yt[:16], mean=(0,),
                   std=(255,), progress=False)
    return {"tf_json": json.loads((tmp / "tf.json").read_text()), "tf": (tmp / "tf.tflite").read_bytes(),
            "ours": ours, "x": (xt.astype(np.float32) / 255)[..., None], "y": yt}


def _run(model: bytes, x: np.ndarray, reference: bool) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from edgevision.preprocess import quantize
    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    it = Interpreter(model_content=model, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    (s, z), (so, zo) = d["quantization"], o["quantization"]
    out = np.empty((len(x), int(np.prod(o["shape"]))), np.float32)
    for i in range(len(x)):
        it.set_tensor(d["index"], quantize(x[i:i + 1], s, z))
        it.invoke()
        out[i] = (it.get_tensor(o["index"]).astype(np.float32).reshape(-1) - zo) * so
    return out


@pytest.fixture(scope="module")
def scores(peer):
    from converters.float_exec import FloatExecutor
    g = peer["ours"].graph
    f = FloatExecutor(g).run(peer["x"])[g.outputs[0]].reshape(len(peer["x"]), -1)
    res = {"float_top1": float((f.argmax(1) == peer["y"]).mean() * 100)}
    for name, model in (("ours", peer["ours"].model), ("tf", peer["tf"])):
        for ref in (False, True):
            q = _run(model, peer["x"], ref)
            key = f"{name}_{'ref' if ref else 'default'}"
            res[key] = {"top1": float((q.argmax(1) == peer["y"]).mean() * 100),
                        "agreement": float((q.argmax(1) == f.argmax(1)).mean() * 100),
                        "sqnr_db": float(10 * np.log10((f ** 2).sum() / ((f - q) ** 2).sum()))}
    print(json.dumps(res, indent=1))  # the figures for the README / closing note (pytest -s shows them)
    return res


def test_tf_float_model_is_the_same_model(peer, scores):
    # TF's Keras and our Keras importer + float executor score the float model identically
    assert abs(peer["tf_json"]["float_top1"] * (100 if peer["tf_json"]["float_top1"] <= 1 else 1)
               - scores["float_top1"]) < 0.02


def test_our_int8_drop_is_at_most_tfs_and_half_a_point(scores):
    for kernels in ("default", "ref"):
        ours, tf = scores[f"ours_{kernels}"], scores[f"tf_{kernels}"]
        drop_ours = scores["float_top1"] - ours["top1"]
        drop_tf = scores["float_top1"] - tf["top1"]
        assert drop_ours <= 0.5, (kernels, drop_ours)
        if kernels == "default":
            assert drop_ours <= drop_tf, (drop_ours, drop_tf)


def test_our_int8_model_is_closer_to_float_than_tfs(scores):
    for kernels in ("default", "ref"):
        ours, tf = scores[f"ours_{kernels}"], scores[f"tf_{kernels}"]
        assert ours["agreement"] >= tf["agreement"], (kernels, ours, tf)
        assert ours["sqnr_db"] >= tf["sqnr_db"] - 0.5, (kernels, ours, tf)
