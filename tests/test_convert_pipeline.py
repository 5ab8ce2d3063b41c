"""The converter end to end: calibration methods, bias correction, input quantization, the report, the CLI
with image folders, and the Fashion-MNIST model trained here (float vs int8 on the full 10k test set)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from converters.calibrate import BINS, _mse_range, _percentile_range
from converters.convert import input_quant_params
from edgevision.model_info import ModelInfo, read_model_info
from edgevision.preprocess import prepare, quantize

ROOT = Path(__file__).resolve().parents[1]
FASHION = ROOT / "models" / "fashion_mnist"
sys.path.insert(0, str(ROOT / "tools"))


# -- calibration ranges ---------------------------------------------------------------------------------
def _hist(values, lo, hi):
    idx = ((values - lo) * ((BINS - 1e-3) / (hi - lo))).astype(int)
    return np.bincount(np.clip(idx, 0, BINS - 1), minlength=BINS)


def _quant_error(v, a, b):
    """Mean squared error of quantizing v to 256 levels over [a, b] (clipping outside): computed directly."""
    s = (b - a) / 255
    q = np.clip(np.round((v - a) / s), 0, 255) * s + a
    return ((v - q) ** 2).mean()


def test_outlier_robust_methods_clip_heavy_tails_that_minmax_keeps():
    v = np.random.default_rng(0).laplace(0, 1, 200_000)  # heavy tails: rare values far from the bulk
    lo, hi = float(v.min()), float(v.max())
    h = _hist(v, lo, hi)
    p_lo, p_hi = _percentile_range(h, lo, hi, 99.9)
    m_lo, m_hi = _mse_range(h, lo, hi)
    assert p_hi < 0.75 * hi and p_lo > 0.75 * lo
    assert m_hi < 0.9 * hi and m_lo > 0.9 * lo
    # the MSE choice really has less error than min/max on these values
    assert _quant_error(v, m_lo, m_hi) < 0.8 * _quant_error(v, lo, hi)


def test_mse_keeps_the_full_range_of_a_uniform_distribution():
    v = np.random.default_rng(1).uniform(0, 6, 100_000)
    lo, hi = _mse_range(_hist(v, 0.0, 6.0), 0.0, 6.0)
    assert hi > 5.5  # clipping a flat distribution only adds error


# -- input quantization ---------------------------------------------------------------------------------
def test_integral_mean_and_one_std_make_int8_input_equal_pixel_minus_128():
    info = ModelInfo(input_size=(8, 8), mean=(127,), std=(128,), resize_mode="stretch")
    scale, zp = input_quant_params(info)
    pixels = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    q = quantize(prepare(pixels, info), scale, zp)
    np.testing.assert_array_equal(q.astype(int), pixels.astype(int) - 128)


def test_per_channel_normalisation_covers_every_pixel_value():
    info = ModelInfo(input_size=(4, 4), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
    scale, zp = input_quant_params(info)
    for px in (0, 255):
        x = (px - np.array(info.mean)) / np.array(info.std)
        q = np.round(x / scale) + zp
        assert (q >= -128).all() and (q <= 127).all()


# -- small torch models through the API ------------------------------------------------------------------
torch = pytest.importorskip("torch", reason="needs torch (dev extra) to build test networks")
pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (convert extra)")


class _DCNet(torch.nn.Module):
    """Filters whose weights nearly cancel, on inputs with a large mean: rounding the weights shifts every
    output by the same amount, which bias correction removes."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 16, 1)
        with torch.no_grad():
            for c in (self.c1, self.c2):
                w = torch.randn(c.weight.shape, generator=g)
                w -= w.mean(dim=(1, 2, 3), keepdim=True)  # zero-sum filters (edge detectors)
                c.weight.copy_(w * 0.3)
                c.bias.zero_()

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x) + 4.0)).mean((2, 3))


def _smooth_images(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, h // 4 + 1, w // 4 + 1, 3)).astype(np.float32)
    img = base.repeat(4, 1).repeat(4, 2)[:, :h, :w]
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def _int8_error(result, module, images):
    from converters.report import make_interpreter
    it = make_interpreter(result.model, preserve=False)
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    errs, sig = 0.0, 0.0
    for img in images:
        x = prepare(img, result.info)
        with torch.no_grad():
            f = module(torch.from_numpy(x.transpose(2, 0, 1)[None])).numpy().reshape(-1)
        it.set_tensor(d["index"], quantize(x[None], *d["quantization"]))
        it.invoke()
        s, z = o["quantization"]
        q = (it.get_tensor(o["index"]).astype(np.float32) - z) * s
        errs += ((q.reshape(-1) - f) ** 2).sum()
        sig += (f ** 2).sum()
    return 10 * np.log10(sig / errs)


def test_bias_correction_raises_sqnr_on_zero_sum_filters():
    from converters import convert
    net = _DCNet().eval()
    calib, held_out = _smooth_images(24, 16, 16), _smooth_images(12, 16, 16, seed=9)
    kw = dict(input_size=(16, 16), mean=(0,), std=(64,), resize_mode="stretch", max_drop=100, progress=False)
    with_bc = convert(net, calib, None, bias_correction=True, **kw)
    without = convert(net, calib, None, bias_correction=False, **kw)
    assert _int8_error(with_bc, net, held_out) > _int8_error(without, net, held_out) + 1.0


def test_dynamic_input_size_is_fixed_from_the_calibration_images(tmp_path):
    import onnx
    from converters import convert

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.c(x).mean((2, 3))

    path = tmp_path / "dyn.onnx"
    torch.onnx.export(Tiny().eval(), torch.zeros(1, 3, 20, 20), str(path), input_names=["x"], opset_version=13,
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}}, dynamo=False)
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[2].dim_param == "h"
    r = convert(path, _smooth_images(8, 24, 32), None, max_drop=100, progress=False)
    assert r.info.input_size == (24, 32)
    from converters.ir import ConversionError
    ragged = tmp_path / "ragged"
    ragged.mkdir()
    from PIL import Image
    for i, (h, w) in enumerate(((20, 20), (30, 40))):
        Image.fromarray(_smooth_images(1, h, w)[0]).save(ragged / f"{i}.png")
    with pytest.raises(ConversionError, match="differ in size"):
        convert(path, ragged, None, progress=False)


# -- Fashion-MNIST: the model trained here -------------------------------------------------------------
def _fashion():
    fm = pytest.importorskip("fashion_mnist", reason="tools/fashion_mnist.py")
    try:
        xt, yt = fm.load("test")
    except (FileNotFoundError, OSError) as e:
        pytest.skip(f"Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): {e}")
    return fm, xt, yt


@pytest.fixture(scope="module")
def fashion_result():
    from converters import convert
    fm, xt, yt = _fashion()
    r = convert(FASHION / "fashion_mnist.keras", fm.calibration_images(200), None, labels=FASHION / "labels.txt",
                eval=xt, eval_labels=yt, mean=(0,), std=(255,), progress=False)
    return r


def test_fashion_mnist_int8_top1_within_half_a_point_of_float_on_10k(fashion_result):
    rep = fashion_result.report
    assert rep.eval_images == 10_000 and rep.labelled
    assert rep.float_top1 > 90.0  # the committed float model (tools/train_fashion_mnist.py)
    assert rep.float_top1 - rep.int8_top1 <= 0.5, (rep.float_top1, rep.int8_top1)
    assert rep.passed


def test_fashion_mnist_h5_and_keras_files_convert_to_the_same_model(fashion_result):
    from converters import convert
    fm, xt, yt = _fashion()
    r = convert(FASHION / "fashion_mnist.h5", fm.calibration_images(200), None, labels=FASHION / "labels.txt",
                eval=xt[:500], eval_labels=yt[:500], mean=(0,), std=(255,), progress=False)
    a, b = r.graph, fashion_result.graph
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes]
    for na, nb in zip(a.nodes, b.nodes):
        assert a.tensors[na.outputs[0]].quant.zero_point[0] == b.tensors[nb.outputs[0]].quant.zero_point[0]
        np.testing.assert_allclose(a.tensors[na.outputs[0]].quant.scale, b.tensors[nb.outputs[0]].quant.scale,
                                   rtol=1e-5)


def test_cli_with_image_folders_writes_model_report_and_metadata(tmp_path, capsys):
    from converters.cli import main
    fm, xt, yt = _fashion()
    calib, ev = tmp_path / "calib", tmp_path / "eval"
    xs = fm.calibration_images(60)
    calib.mkdir()
    from PIL import Image
    for i, img in enumerate(xs):
        Image.fromarray(img).save(calib / f"{i:03d}.png")
    fm.write_image_folder(ev, "test", limit=300, labelled=True)
    out, rep = tmp_path / "fm.tflite", tmp_path / "report.json"
    code = main([str(FASHION / "fashion_mnist.keras"), "--calib", str(calib), "-o", str(out), "--labels",
                 str(FASHION / "labels.txt"), "--eval", str(ev), "--mean", "0", "--std", "255", "--report-json",
                 str(rep), "-q"])
    captured = capsys.readouterr()
    text = captured.out
    assert code == 0, captured.err
    assert "top-1 %" in text and "worst layers" in text and "PASS" in text
    data = json.loads(rep.read_text())
    assert data["labelled"] and data["eval_images"] == 300 and data["calibration_images"] == 60
    assert abs(data["float_top1"] - data["int8_top1"]) < 3
    assert len(data["worst_layers"]) == 5 and all(l["sqnr_db"] > 10 for l in data["worst_layers"])
    info = read_model_info(out)
    assert info.channels == 1 and info.input_size == (28, 28) and info.std == (255.0,)
    assert info.labels == tuple((FASHION / "labels.txt").read_text().split("\n")[:10])


@pytest.mark.parametrize("fixture", ["fashion_mnist_float32.tflite", "fashion_mnist_fp16.tflite"])
def test_float_tflite_from_tensorflow_converts_like_the_keras_file(fixture, fashion_result):
    """TF-written float TFLite (fp16 weights behind DEQUANTIZE too) → the same int8 accuracy as the .keras."""
    from converters import convert
    fm, xt, yt = _fashion()
    r = convert(ROOT / "tests" / "data" / fixture, fm.calibration_images(200), None, labels=FASHION / "labels.txt",
                eval=xt[:2000], eval_labels=yt[:2000], mean=(0,), std=(255,), progress=False)
    assert r.report.float_top1 - r.report.int8_top1 <= 0.5
    assert r.report.agreement_top1 >= 99.0
    assert r.info.labels == fashion_result.info.labels and r.info.input_size == (28, 28)


def test_calibration_reads_a_phone_photo_upright_like_the_runtime(tmp_path):
    """A photo stored sideways with an EXIF orientation tag: calibration must see it as the camera source does."""
    from PIL import Image
    from converters.data import load_rgb
    from edgevision.sources.images import ImageSource
    img = Image.fromarray(_smooth_images(1, 20, 40)[0])  # 20 high, 40 wide as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif.tobytes())
    rgb = load_rgb(path)
    assert rgb.shape[:2] == (40, 20)
    with ImageSource(path) as src:
        np.testing.assert_array_equal(src.read().to_rgb(), rgb)
