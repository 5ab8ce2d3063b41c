"""TFLite Metadata written by converters.metadata_writer and read by edgevision.model_info.

The models are built here with the TFLite schema's object API (one RESHAPE op: the output is the input
flattened, so "it still runs" has an exact expected answer). TFLite Support 0.4.4, in its own venv,
is the oracle for "standard readers understand our metadata".
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter

from converters._schema import metadata_schema_py_generated as meta
from converters.metadata_writer import LABELS_FILE_NAME, embed_metadata
from edgevision.model_info import ModelInfo, load_labels_file, read_model_info

REPO = Path(__file__).resolve().parent.parent
TFSUPPORT_PYTHON = REPO / ".cache" / "tfsupport-venv" / "bin" / "python"

HOSTILE_LABELS = (
    'tabby, "tiger" cat',
    "Ñandú común",
    "日本語のラベル",
    "back\\slash 'single' quotes",
    "emoji 🐈‍⬛",
    "a,b,c",
    "ümlaut ß",
    "Ελληνικά",
    "x" * 300,
    "ends with comma,",
    "{\"json\": [1, 2]}",
    "zero-width\u200bjoiner",
)


def make_model(height=2, width=2, channels=3, dtype="int8", dynamic=False) -> bytes:
    """A one-op TFLite model: RESHAPE [1, H, W, C] -> [1, H*W*C]."""
    n = height * width * channels
    tensor_type = {"int8": tfl.TensorType.INT8, "float32": tfl.TensorType.FLOAT32}[dtype]

    def tensor(name, shape, buffer, ttype=tensor_type, signature=None):
        t = tfl.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), ttype, buffer
        if signature is not None:
            t.shapeSignature = list(signature)
        if ttype == tfl.TensorType.INT8:
            t.quantization = tfl.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [0.5], [-3]
        return t

    shape_buffer = tfl.BufferT()
    shape_buffer.data = list(np.array([1, n], dtype="<i4").tobytes())
    model = tfl.ModelT()
    model.version = 3
    opcode = tfl.OperatorCodeT()
    opcode.builtinCode = opcode.deprecatedBuiltinCode = tfl.BuiltinOperator.RESHAPE
    opcode.version = 1
    model.operatorCodes = [opcode]
    model.buffers = [tfl.BufferT(), tfl.BufferT(), tfl.BufferT(), shape_buffer]

    subgraph = tfl.SubGraphT()
    signature = [1, -1, -1, channels] if dynamic else None
    subgraph.tensors = [
        tensor("input", [1, height, width, channels], 1, signature=signature),
        tensor("new_shape", [2], 3, ttype=tfl.TensorType.INT32),
        tensor("output", [1, n], 2),
    ]
    op = tfl.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType = tfl.BuiltinOptions.ReshapeOptions
    op.builtinOptions = tfl.ReshapeOptionsT()
    op.builtinOptions.newShape = [1, n]
    subgraph.operators = [op]
    subgraph.inputs, subgraph.outputs = [0], [2]
    subgraph.name = "main"
    model.subgraphs = [subgraph]
    model.description = "test model"

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


COLOUR_INFO = ModelInfo(
    name='Model "ñ", v2',
    description="Describes, with commas, \"quotes\" and\nnewlines — and 中文.",
    version="2.1.0-rc1",
    author="Zoë O'Brien <zoe@example.org>",
    license="Apache-2.0",
    labels=HOSTILE_LABELS,
    input_size=(2, 2),
    channels=3,
    mean=(123.675, 116.28, 103.53),
    std=(58.395, 57.12, 57.375),
    channel_order="BGR",
    resize_mode="letterbox",
)

GRAY_INFO = ModelInfo(
    name="digits",
    labels=tuple(f"class {i}" for i in range(6)),
    channels=1,
    mean=(127.5,),
    std=(127.5,),
    channel_order="RGB",
    resize_mode="stretch",
)


def run_reshape(model: bytes, shape, dtype) -> tuple[np.ndarray, np.ndarray]:
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    if dtype == "int8":
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    else:
        x = rng.uniform(-3, 3, size=shape).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return x, interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


# --- (a) round trip -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "info, model_kwargs",
    [
        (COLOUR_INFO, dict(height=2, width=2, channels=3, dtype="int8")),
        (GRAY_INFO, dict(height=2, width=3, channels=1, dtype="float32")),
    ],
    ids=["colour-int8-bgr-letterbox", "gray-float-stretch"],
)
def test_read_model_info_returns_every_field_embed_metadata_wrote(info, model_kwargs):
    out = read_model_info(embed_metadata(make_model(**model_kwargs), info))
    expected_size = (model_kwargs["height"], model_kwargs["width"])
    assert out.name == info.name
    assert out.description == info.description
    assert out.version == info.version
    assert out.author == info.author
    assert out.license == info.license
    assert out.labels == info.labels
    assert out.input_size == expected_size
    assert out.channels == info.channels
    assert out.mean == info.mean  # exact: the edgevision JSON keeps full double precision
    assert out.std == info.std
    assert out.channel_order == info.channel_order
    assert out.resize_mode == info.resize_mode
    assert out == ModelInfo(**{**info.__dict__, "input_size": expected_size})


def test_read_model_info_accepts_a_path(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(embed_metadata(make_model(), COLOUR_INFO))
    assert read_model_info(path) == read_model_info(str(path)) == read_model_info(path.read_bytes())


def test_model_without_metadata_gets_defaults_and_its_input_shape():
    out = read_model_info(make_model(height=5, width=7, channels=1, dtype="float32"))
    assert out == ModelInfo(input_size=(5, 7), channels=1)
    assert out.labels == () and out.name == "model" and out.resize_mode == "center_crop"


def test_dynamic_input_size_comes_from_metadata_default_size():
    model = embed_metadata(make_model(dynamic=True), ModelInfo(input_size=(224, 160)))
    assert read_model_info(model).input_size == (224, 160)
    assert read_model_info(make_model(dynamic=True)).input_size is None


def test_standard_metadata_alone_is_read_when_the_edgevision_json_is_missing():
    # Same model, the custom metadata renamed: what remains is what any TFLite Metadata writer stores.
    info = ModelInfo(labels=("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"),
                     mean=(127.5, 127.5, 127.5), std=(128.0, 64.0, 32.0), channel_order="BGR",
                     resize_mode="stretch", name="n")
    model = embed_metadata(make_model(), info)
    needle = b"edgevision"
    assert model.count(needle) == 1
    out = read_model_info(model.replace(needle, b"xdgevision"))
    assert out.labels == info.labels and out.name == "n"
    assert out.mean == info.mean and out.std == info.std  # exactly representable in float32
    assert (out.channel_order, out.resize_mode) == ("RGB", "center_crop")  # the standard cannot say these


def test_embedding_twice_replaces_metadata_and_labels():
    once = embed_metadata(make_model(), COLOUR_INFO)
    second = ModelInfo(name="second", labels=tuple("abcdefghijkl"))
    twice = embed_metadata(once, second)
    assert read_model_info(twice) == ModelInfo(name="second", labels=tuple("abcdefghijkl"), input_size=(2, 2))
    model = tfl.Model.GetRootAs(twice, 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    assert names == [b"TFLITE_METADATA"]
    with zipfile.ZipFile(io.BytesIO(twice)) as archive:
        assert archive.namelist() == [LABELS_FILE_NAME]


def test_packed_labels_file_is_stored_uncompressed_one_label_per_line():
    model = embed_metadata(make_model(), COLOUR_INFO)
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        (entry,) = archive.infolist()
        assert entry.compress_type == zipfile.ZIP_STORED
        assert archive.read(LABELS_FILE_NAME).decode("utf-8").splitlines() == list(HOSTILE_LABELS)


def test_embed_metadata_keeps_weight_buffers_16_byte_aligned():
    model = tfl.Model.GetRootAs(embed_metadata(make_model(), COLOUR_INFO), 0)
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if not buffer.DataIsNone() and buffer.DataLength():
            start = buffer._tab.Vector(buffer._tab.Offset(4))
            assert start % 16 == 0, f"buffer {i} data starts at byte {start}"


@pytest.mark.parametrize(
    "info, message",
    [
        (ModelInfo(labels=("only", "three", "labels")), "3 labels given but the output tensor has 12"),
        (ModelInfo(channels=1), "channels is 1 but the input tensor has 3"),
        (ModelInfo(input_size=(224, 224)), r"input_size is \(224, 224\) but the input tensor is \(2, 2\)"),
        (ModelInfo(labels=("a\nb",) + tuple("bcdefghijkl")), "label 0"),
        (ModelInfo(labels=tuple("abcdefghijk") + (" padded",)), "label 11"),
        (ModelInfo(labels=tuple("abcdefghijk") + ("",)), "label 11"),
    ],
)
def test_embed_metadata_rejects_info_that_does_not_fit_the_model(info, message):
    with pytest.raises(ValueError, match=message):
        embed_metadata(make_model(), info)


def test_model_info_validates_and_broadcasts_uniform_values():
    assert ModelInfo(channels=1).mean == (0.0,)
    assert ModelInfo(mean=(127.5,)).mean == (127.5, 127.5, 127.5)
    assert ModelInfo(labels=["a", "b"]).labels == ("a", "b")
    for bad in (dict(channel_order="RGBA"), dict(resize_mode="crop"), dict(channels=4), dict(std=(0.0,)),
                dict(mean=(1.0, 2.0)), dict(input_size=(0, 10)), dict(mean=(float("nan"),))):
        with pytest.raises(ValueError):
            ModelInfo(**bad)


def test_reader_needs_neither_numpy_nor_flatbuffers(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(embed_metadata(make_model(), COLOUR_INFO))
    # Load the module file on its own (not through the package) with these imports made to fail.
    script = (
        "import importlib.util, sys\n"
        "for name in ('numpy', 'flatbuffers', 'tflite_support', 'ai_edge_litert'):\n"
        "    sys.modules[name] = None\n"
        "spec = importlib.util.spec_from_file_location('model_info', sys.argv[1])\n"
        "module = sys.modules['model_info'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(module.read_model_info(sys.argv[2]).labels[2])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "edgevision" / "model_info.py"), str(path)],
        capture_output=True, encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"}, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == HOSTILE_LABELS[2]


# --- labels files ----------------------------------------------------------------------------------


def test_load_labels_file_strips_lines_and_ignores_trailing_blank_lines(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeff  cat \r\ndog\n\n  Ñandú\t\n\n \n".encode("utf-8"))
    assert load_labels_file(path) == ("cat", "dog", "", "Ñandú")


def test_load_labels_file_names_a_missing_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="labels file not found: .*nope.txt"):
        load_labels_file(missing)


def test_load_labels_file_rejects_non_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_labels_file(path)


# --- (b) the model still runs -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_model_with_metadata_runs_in_litert_and_computes_the_same(dtype):
    info = COLOUR_INFO if dtype == "int8" else ModelInfo(labels=tuple("abcdefghijkl"))
    plain = make_model(dtype=dtype)
    x, before = run_reshape(plain, (1, 2, 2, 3), dtype)
    x2, after = run_reshape(embed_metadata(plain, info), (1, 2, 2, 3), dtype)
    np.testing.assert_array_equal(before, x.reshape(1, -1))
    np.testing.assert_array_equal(after, x2.reshape(1, -1))


# --- buffers stored outside the flatbuffer (offset/size, the schema's >2 GB layout) -------------------


def relocate_buffer(model_bytes: bytes, index: int) -> bytes:
    """Move buffer `index`'s data after the flatbuffer, referenced by offset/size; keep the packed zip."""
    if zipfile.is_zipfile(io.BytesIO(model_bytes)):
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
    else:
        files = {}
    model = tfl.ModelT.InitFromPackedBuf(model_bytes, 0)
    payload = bytes(np.asarray(model.buffers[index].data, dtype=np.uint8))
    model.buffers[index].data = None
    model.buffers[index].offset, model.buffers[index].size = 2**40, len(payload)  # placeholder, same width
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    head = bytes(builder.Output())
    offset = (len(head) + 15) // 16 * 16
    model.buffers[index].offset = offset
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    head = bytes(builder.Output())
    assert (len(head) + 15) // 16 * 16 == offset
    out = io.BytesIO()
    out.write(head + b"\0" * (offset - len(head)) + payload)
    if files:
        with zipfile.ZipFile(out, "a") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    return out.getvalue()


def metadata_buffer_index(model_bytes: bytes) -> int:
    model = tfl.Model.GetRootAs(model_bytes, 0)
    (index,) = [model.Metadata(i).Buffer() for i in range(model.MetadataLength())
                if model.Metadata(i).Name() == b"TFLITE_METADATA"]
    return index


def test_metadata_stored_outside_the_flatbuffer_is_read():
    model = embed_metadata(make_model(), COLOUR_INFO)
    moved = relocate_buffer(model, metadata_buffer_index(model))
    assert tfl.Model.GetRootAs(moved, 0).Buffers(metadata_buffer_index(moved)).DataIsNone()
    assert read_model_info(moved) == read_model_info(model)


def test_embed_metadata_brings_external_weight_buffers_inline_and_the_model_still_runs():
    moved = relocate_buffer(make_model(dtype="float32"), 3)  # buffer 3: RESHAPE's new_shape
    x, y = run_reshape(embed_metadata(moved, ModelInfo()), (1, 2, 2, 3), "float32")
    np.testing.assert_array_equal(y, x.reshape(1, -1))


# --- (c) the oracle: TFLite Support reads what we wrote ----------------------------------------------

ORACLE = r"""
import json, sys
from tflite_support import metadata as md

ours = open(sys.argv[1], "rb").read()
plain = open(sys.argv[2], "rb").read()
shown = md.MetadataDisplayer.with_model_buffer(ours)
labels = shown.get_associated_file_buffer("labels.txt")

# The reference: TFLite Support's own populator packing our metadata buffer and labels into the plain
# model. It recomputes min_parser_version and checks tensor counts and associated files.
populator = md.MetadataPopulator.with_model_buffer(plain)
populator.load_metadata_buffer(shown.get_metadata_buffer())
populator.load_associated_file_buffers({"labels.txt": labels})
populator.populate()
reference = md.MetadataDisplayer.with_model_buffer(populator.get_model_buffer())

print(json.dumps({
    "metadata": json.loads(shown.get_metadata_json()),
    "packed": shown.get_packed_associated_file_list(),
    "labels": labels.decode("utf-8"),
    "reference_metadata": json.loads(reference.get_metadata_json()),
    "reference_packed": reference.get_packed_associated_file_list(),
}))
"""


def run_oracle(tmp_path, model: bytes, plain: bytes) -> dict:
    if not TFSUPPORT_PYTHON.exists():
        pytest.skip(
            f"TFLite Support oracle venv missing ({TFSUPPORT_PYTHON}); create it with: "
            "python3.11 -m venv .cache/tfsupport-venv && "
            ".cache/tfsupport-venv/bin/pip install tflite-support==0.4.4 'numpy<2'"
        )
    (tmp_path / "ours.tflite").write_bytes(model)
    (tmp_path / "plain.tflite").write_bytes(plain)
    (tmp_path / "oracle.py").write_text(ORACLE)
    result = subprocess.run(
        [str(TFSUPPORT_PYTHON), str(tmp_path / "oracle.py"), str(tmp_path / "ours.tflite"), str(tmp_path / "plain.tflite")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"TFLite Support could not read our model:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_tflite_support_reads_our_metadata(tmp_path):
    plain = make_model()
    got = run_oracle(tmp_path, embed_metadata(plain, COLOUR_INFO), plain)
    meta = got["metadata"]

    assert meta["name"] == COLOUR_INFO.name
    assert meta["description"] == COLOUR_INFO.description
    assert meta["version"] == COLOUR_INFO.version
    assert meta["author"] == COLOUR_INFO.author
    assert meta["license"] == COLOUR_INFO.license
    assert got["packed"] == [LABELS_FILE_NAME]
    assert got["labels"].splitlines() == list(HOSTILE_LABELS)

    (subgraph,) = meta["subgraph_metadata"]
    (image,) = subgraph["input_tensor_metadata"]
    assert image["content"]["content_properties_type"] == "ImageProperties"
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    (unit,) = image["process_units"]
    assert unit["options_type"] == "NormalizationOptions"
    np.testing.assert_allclose(unit["options"]["mean"], COLOUR_INFO.mean, rtol=1e-6)  # float32 in the schema
    np.testing.assert_allclose(unit["options"]["std"], COLOUR_INFO.std, rtol=1e-6)
    assert image["stats"] == {"max": [127.0], "min": [-128.0]}  # int8 input tensor
    (scores,) = subgraph["output_tensor_metadata"]
    (labels_file,) = scores["associated_files"]
    assert labels_file["name"] == LABELS_FILE_NAME and labels_file["type"] == "TENSOR_AXIS_LABELS"
    (custom,) = subgraph["custom_metadata"]
    assert custom["name"] == "edgevision"
    assert json.loads(bytes(custom["data"]).decode("utf-8"))["channel_order"] == "BGR"

    # Byte-for-byte the same metadata TFLite Support's populator writes, min_parser_version included.
    assert got["reference_metadata"] == meta
    assert got["reference_packed"] == got["packed"]


def test_tflite_support_reads_grayscale_float_metadata(tmp_path):
    plain = make_model(height=2, width=3, channels=1, dtype="float32")
    got = run_oracle(tmp_path, embed_metadata(plain, GRAY_INFO), plain)
    image = got["metadata"]["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert image["content"]["content_properties"]["color_space"] == "GRAYSCALE"
    assert image["process_units"][0]["options"] == {"mean": [127.5], "std": [127.5]}
    assert image["stats"] == {"max": [1.0], "min": [-1.0]}  # (0 - 127.5) / 127.5, (255 - 127.5) / 127.5
    assert got["labels"].splitlines() == list(GRAY_INFO.labels)
    assert got["reference_metadata"] == got["metadata"]


# --- (d) malformed input: ValueError naming the problem, nothing else -----------------------------------


def test_every_truncation_of_a_model_raises_value_error():
    model = embed_metadata(make_model(), COLOUR_INFO)
    for length in range(len(model)):
        with pytest.raises(ValueError):
            read_model_info(model[:length])


def test_truncated_model_says_what_is_wrong():
    model = embed_metadata(make_model(), COLOUR_INFO)
    with pytest.raises(ValueError, match="too short to be a flatbuffer"):
        read_model_info(model[:5])
    flat_end = model.index(b"PK\x03\x04")
    with pytest.raises(ValueError, match="no zip archive of associated files"):
        read_model_info(model[:flat_end])
    with pytest.raises(ValueError, match="outside|past the end|more than the buffer holds"):
        read_model_info(model[: flat_end // 2])


def test_random_bytes_raise_value_error():
    rng = random.Random(1234)
    with pytest.raises(ValueError, match="file identifier"):
        read_model_info(bytes(rng.randrange(256) for _ in range(1000)))
    for _ in range(300):  # with the right identifier, so the parser goes deeper
        data = bytearray(rng.randrange(256) for _ in range(rng.randrange(8, 400)))
        data[4:8] = b"TFL3"
        data[0:4] = rng.randrange(min(len(data), 64)).to_bytes(4, "little")
        with pytest.raises(ValueError):
            read_model_info(bytes(data))


def test_corrupted_bytes_give_a_model_info_or_value_error_only():
    model = embed_metadata(make_model(), COLOUR_INFO)
    rng = random.Random(99)
    outcomes = {"ok": 0, "ValueError": 0}
    for _ in range(1500):
        data = bytearray(model)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            read_model_info(bytes(data))
            outcomes["ok"] += 1
        except ValueError:
            outcomes["ValueError"] += 1
    assert outcomes["ValueError"] > 0 and outcomes["ok"] > 0, outcomes


def test_metadata_entry_pointing_past_the_buffers_raises_value_error():
    model = tfl.ModelT.InitFromPackedBuf(embed_metadata(make_model(), ModelInfo()), 0)
    model.metadata[0].buffer = 1000
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(ValueError, match=r"metadata 'TFLITE_METADATA' points to buffer 1000, but the model has 5 buffers"):
        read_model_info(bytes(builder.Output()))


def test_external_metadata_buffer_past_the_end_raises_value_error():
    model = embed_metadata(make_model(), ModelInfo())
    moved = relocate_buffer(model, metadata_buffer_index(model))
    with pytest.raises(ValueError, match="past the end of the .*-byte file"):
        read_model_info(moved[: len(moved) - 10])


def test_metadata_buffer_without_the_m001_identifier_raises_value_error():
    model = embed_metadata(make_model(), ModelInfo())
    with pytest.raises(ValueError, match=r"model metadata .*file identifier is b'X001', expected b'M001'"):
        read_model_info(model.replace(b"M001", b"X001"))


def test_bad_edgevision_json_raises_value_error():
    for bad in (b'{"channel_order": "RGBA"}', b'{"input_size": [1]}', b"[1, 2]", b"\xff\xfe", b'{"mean": "x"}'):
        info = ModelInfo()
        model = embed_metadata(make_model(), info)
        md_model = tfl.ModelT.InitFromPackedBuf(model, 0)
        # Rebuild the metadata with the custom JSON replaced.
        index = metadata_buffer_index(model)
        md_bytes = bytes(np.asarray(md_model.buffers[index].data, np.uint8))
        md = meta.ModelMetadataT.InitFromObj(meta.ModelMetadata.GetRootAsModelMetadata(md_bytes, 0))
        md.subgraphMetadata[0].customMetadata[0].data = list(bad)
        builder = flatbuffers.Builder(1024)
        builder.Finish(md.Pack(builder), file_identifier=b"M001")
        md_model.buffers[index].data = list(bytes(builder.Output()))
        builder = flatbuffers.Builder(1024)
        builder.Finish(md_model.Pack(builder), file_identifier=b"TFL3")
        with pytest.raises(ValueError, match="'edgevision' custom metadata"):
            read_model_info(bytes(builder.Output()))


def test_missing_packed_labels_file_is_named():
    model = embed_metadata(make_model(), COLOUR_INFO)
    renamed = model.replace(LABELS_FILE_NAME.encode(), b"labels.TXT")  # the zip's copies, not the metadata's
    assert renamed != model
    # The metadata also holds "labels.txt"; restore just that one so only the zip entry is renamed.
    first = model.index(LABELS_FILE_NAME.encode())
    renamed = renamed[:first] + LABELS_FILE_NAME.encode() + renamed[first + len(LABELS_FILE_NAME):]
    with pytest.raises(ValueError, match=r"labels file 'labels.txt', but the packed files are \['labels.TXT'\]"):
        read_model_info(renamed)
