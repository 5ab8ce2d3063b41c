"""The native engine's model loader (edgevision/native/tflite.py): read_model() returns a validated Graph or
raises ModelError naming the tensor or operator; nothing in a file makes it fail another way or run long.

  * its slot numbers and enum tables agree with the official generated schema (ai_edge_litert's
    schema_py_generated): statically (each slot is the one the generated accessor reads, with the same type
    and default) and by round trip (models built through the object API with non-default values read back as
    exactly those values);
  * real models read as LiteRT's Interpreter reads them: the committed EfficientNet-Lite0 and an int8 model
    built here (inline and offset buffers) - every tensor's shape, dtype, quantization and constant bytes,
    every operator's opcode, version, operands and options;
  * semantically wrong but well-formed models (built through the object API) fail with a message naming the
    tensor or operator;
  * a deterministic fuzzer mutates real model bytes (bit flips, interesting bytes and words, truncations,
    vtable entries, vector lengths, table offsets, copied/swapped/inserted/deleted regions) and checks every
    outcome is a Graph satisfying the loader's guarantees (check_graph) or a ModelError, within a per-case
    time budget; a typed fuzzer does the same with edge values set through the object API; files whose
    offsets make tables share data over and over fail fast;
  * the mutants that read are then built and run by NativeModel in a subprocess: each runs or is refused with
    ModelError; a crash, abort (glibc heap checks on) or hang of the subprocess fails the test naming the case.

A fuzz failure names its corpus, seed and case: `fuzz(corpus_bytes(corpus), case + 1, seed, ...)` replays it
(cases are independent: case k's mutation depends only on the seed and k).
"""
from __future__ import annotations

import copy
import inspect
import math
import random
import re
import signal
import struct
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from tflite_builder import ACT, SAME, VALID, TFLiteBuilder, fb, interpreter, pack

from edgevision import model_info
from edgevision.native import tflite
from edgevision.native.graph import DTYPES, Graph, ModelError
from edgevision.native.tflite import read_model

EFFICIENTNET = Path(__file__).resolve().parents[1] / "edgevision" / "models" / "efficientnet_lite0_int8.tflite"
DATA = Path(__file__).resolve().parent / "data"
T = fb.TensorType


# -- models ---------------------------------------------------------------------------------------------------------

def small_int8_builder() -> TFLiteBuilder:
    """An int8 classifier head with most of what the engine runs: per-channel conv and depthwise weights,
    int32 biases, ADD, MAX_POOL_2D, MEAN, FULLY_CONNECTED, SOFTMAX, LOGISTIC, CONCATENATION, RESHAPE,
    DEQUANTIZE; two outputs."""
    rng = np.random.default_rng(7)
    b = TFLiteBuilder()
    q = b.quant
    s_in = 0.05
    x = b.input("image", [1, 8, 8, 3], ttype=T.INT8, quant=q([s_in], [-3]))
    ws = np.array([0.01, 0.02, 0.015, 0.03], np.float32)
    w = b.tensor("conv/w", [4, 3, 3, 3], T.INT8, data=rng.integers(-127, 128, (4, 3, 3, 3), dtype=np.int8),
                 quant=q(ws, [0] * 4, 0))
    bias = b.tensor("conv/b", [4], T.INT32, data=rng.integers(-500, 500, 4, dtype=np.int32),
                    quant=q(s_in * ws, [0] * 4, 0))
    c = b.op("CONV_2D", [x, w, bias], b.options("Conv2DOptions", padding=SAME, strideW=2, strideH=2,
                                               fusedActivationFunction=ACT["relu6"]),
             out_name="conv", out_type=T.INT8, out_quant=q([0.1], [-128]))
    dws = np.array([0.02, 0.01, 0.04, 0.03], np.float32)
    dw = b.tensor("dw/w", [1, 3, 3, 4], T.INT8, data=rng.integers(-127, 128, (1, 3, 3, 4), dtype=np.int8),
                  quant=q(dws, [0] * 4, 3))
    dwb = b.tensor("dw/b", [4], T.INT32, data=rng.integers(-500, 500, 4, dtype=np.int32),
                   quant=q(0.1 * dws, [0] * 4, 0))
    d = b.op("DEPTHWISE_CONV_2D", [c, dw, dwb], b.options("DepthwiseConv2DOptions", padding=SAME, strideW=1,
                                                          strideH=1, depthMultiplier=1),
             out_name="dw", out_type=T.INT8, out_quant=q([0.12], [5]))
    a = b.op("ADD", [c, d], b.options("AddOptions", fusedActivationFunction=ACT["relu"]),
             out_name="add", out_type=T.INT8, out_quant=q([0.15], [-20]))
    p = b.op("MAX_POOL_2D", [a], b.options("Pool2DOptions", padding=VALID, strideW=2, strideH=2, filterWidth=2,
                                          filterHeight=2),
             out_name="pool", out_type=T.INT8, out_quant=q([0.15], [-20]))
    axes = b.const("axes", np.array([1, 2], np.int32))
    m = b.op("MEAN", [p, axes], b.options("ReducerOptions", keepDims=False), out_name="mean",
             out_type=T.INT8, out_quant=q([0.1], [-10]))
    fw = b.tensor("fc/w", [5, 4], T.INT8, data=rng.integers(-127, 128, (5, 4), dtype=np.int8),
                  quant=q([0.02], [0]))
    fbias = b.tensor("fc/b", [5], T.INT32, data=rng.integers(-100, 100, 5, dtype=np.int32), quant=q([0.002], [0]))
    f = b.op("FULLY_CONNECTED", [m, fw, fbias], b.options("FullyConnectedOptions"), out_name="fc",
             out_type=T.INT8, out_quant=q([0.2], [3]))
    sm = b.op("SOFTMAX", [f], b.options("SoftmaxOptions", beta=1.0), out_name="probs", out_type=T.INT8,
              out_quant=q([1 / 256], [-128]))
    lg = b.op("LOGISTIC", [f], out_name="logistic", out_type=T.INT8, out_quant=q([1 / 256], [-128]))
    cat = b.op("CONCATENATION", [sm, lg], b.options("ConcatenationOptions", axis=1), out_name="cat",
               out_type=T.INT8, out_quant=q([1 / 256], [-128]))
    shape = b.const("shape", np.array([1, 2, 5], np.int32))
    r = b.op("RESHAPE", [cat, shape], b.options("ReshapeOptions", newShape=[1, 2, 5]), out_name="reshape",
             out_type=T.INT8, out_quant=q([1 / 256], [-128]))
    scores = b.op("DEQUANTIZE", [r], out_name="scores")
    b.output(scores, m)
    return b


_CACHE: dict[str, bytes] = {}


def small_model(external_buffers: bool = False) -> bytes:
    key = f"small{external_buffers}"
    if key not in _CACHE:
        _CACHE[key] = small_int8_builder().build(external_buffers=external_buffers)
    return _CACHE[key]


def efficientnet() -> bytes:
    if "eff" not in _CACHE:
        _CACHE["eff"] = EFFICIENTNET.read_bytes()
    return _CACHE["eff"]


def camel(snake: str, upper: bool = False) -> str:
    parts = snake.split("_")
    s = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    return s[:1].upper() + s[1:] if upper else s


# -- 1. schema agreement --------------------------------------------------------------------------------------------

def enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


def test_builtin_operators_match_schema():
    names = enum_names(fb.BuiltinOperator)
    assert len(tflite.BUILTIN_OPERATORS) == max(names) + 1 == len(names)
    for code, name in names.items():
        assert tflite.BUILTIN_OPERATORS[code] == name, code
    assert tflite.BUILTIN_OPERATORS[tflite._CUSTOM] == "CUSTOM"
    assert tflite.BUILTIN_OPERATORS[tflite._PLACEHOLDER] == "PLACEHOLDER_FOR_GREATER_OP_CODES"


@pytest.mark.parametrize("ours, enum_class", [
    (tflite.TENSOR_TYPES, fb.TensorType),
    (tflite.PADDINGS, fb.Padding),
    (tflite.ACTIVATIONS, fb.ActivationFunctionType),
    (tflite.WEIGHTS_FORMATS, fb.FullyConnectedOptionsWeightsFormat),
])
def test_enum_tables_match_schema(ours, enum_class):
    names = enum_names(enum_class)
    assert tuple(names[i] for i in range(len(names))) == ours


def test_dtypes_are_schema_types():
    for name, np_type in DTYPES.items():
        assert name in tflite.TENSOR_TYPES
        assert np.dtype(np_type).itemsize == {"BOOL": 1, "UINT8": 1, "INT8": 1, "INT16": 2, "INT32": 4,
                                              "FLOAT32": 4, "INT64": 8}[name]


_FLAGS = {"b": "Int8Flags", "B": "Uint8Flags", "i": "Int32Flags", "I": "Uint32Flags", "?": "BoolFlags",
          "f": "Float32Flags", "q": "Int64Flags", "Q": "Uint64Flags", "[i": "Int32Flags"}


def accessor(table: str, field: str) -> tuple[int, str, str]:
    """(slot, source, default expression) of the generated accessor fb.<table>.<Field>."""
    src = inspect.getsource(getattr(getattr(fb, table), field))
    offset = int(re.search(r"Offset\((\d+)\)", src).group(1))
    default = re.findall(r"return (.+)", src)[-1].strip()
    return (offset - 4) // 2, src, default


# (our slot constant, generated table, accessor, our read format or None for tables/vectors of tables/strings)
SLOTS = [
    ("_MODEL_VERSION", "Model", "Version", "I"), ("_MODEL_OPCODES", "Model", "OperatorCodes", None),
    ("_MODEL_SUBGRAPHS", "Model", "Subgraphs", None), ("_MODEL_BUFFERS", "Model", "Buffers", None),
    ("_OPCODE_DEPRECATED", "OperatorCode", "DeprecatedBuiltinCode", "b"),
    ("_OPCODE_CUSTOM", "OperatorCode", "CustomCode", None), ("_OPCODE_VERSION", "OperatorCode", "Version", "i"),
    ("_OPCODE_BUILTIN", "OperatorCode", "BuiltinCode", "i"),
    ("_SG_TENSORS", "SubGraph", "Tensors", None), ("_SG_INPUTS", "SubGraph", "Inputs", "[i"),
    ("_SG_OUTPUTS", "SubGraph", "Outputs", "[i"), ("_SG_OPERATORS", "SubGraph", "Operators", None),
    ("_T_SHAPE", "Tensor", "Shape", "[i"), ("_T_TYPE", "Tensor", "Type", "b"), ("_T_BUFFER", "Tensor", "Buffer", "I"),
    ("_T_NAME", "Tensor", "Name", None), ("_T_QUANT", "Tensor", "Quantization", None),
    ("_T_IS_VARIABLE", "Tensor", "IsVariable", "?"), ("_T_SPARSITY", "Tensor", "Sparsity", None),
    ("_T_SHAPE_SIG", "Tensor", "ShapeSignature", "[i"), ("_T_VARIANT_TENSORS", "Tensor", "VariantTensors", None),
    ("_T_EXTERNAL_BUFFER", "Tensor", "ExternalBuffer", "I"),
    ("_Q_SCALE", "QuantizationParameters", "Scale", "[f"),
    ("_Q_ZERO_POINT", "QuantizationParameters", "ZeroPoint", "[q"),
    ("_Q_DETAILS_TYPE", "QuantizationParameters", "DetailsType", "B"),
    ("_Q_DIM", "QuantizationParameters", "QuantizedDimension", "i"),
    ("_OP_OPCODE", "Operator", "OpcodeIndex", "I"), ("_OP_INPUTS", "Operator", "Inputs", "[i"),
    ("_OP_OUTPUTS", "Operator", "Outputs", "[i"), ("_OP_OPTIONS_TYPE", "Operator", "BuiltinOptionsType", "B"),
    ("_OP_OPTIONS", "Operator", "BuiltinOptions", None), ("_OP_CUSTOM", "Operator", "CustomOptions", None),
    ("_OP_INTERMEDIATES", "Operator", "Intermediates", "[i"),
    ("_OP_OPTIONS2_TYPE", "Operator", "BuiltinOptions2Type", "B"),
    ("_BUF_DATA", "Buffer", "Data", None), ("_BUF_OFFSET", "Buffer", "Offset", "Q"),
    ("_BUF_SIZE", "Buffer", "Size", "Q"),
]


@pytest.mark.parametrize("const, table, field, fmt", SLOTS, ids=[s[0] for s in SLOTS])
def test_slots_match_generated_accessors(const, table, field, fmt):
    slot, src, _ = accessor(table, field)
    assert getattr(tflite, const) == slot
    if fmt is not None:
        flag = {"[f": "Float32Flags", "[q": "Int64Flags"}.get(fmt, _FLAGS.get(fmt))
        assert f"number_types.{flag}" in src, (const, src)


def test_read_formats_of_scalar_slots():
    """The formats tflite.py reads with are the schema's field types (checked on its source, so a slot read
    with the wrong width cannot slip by)."""
    src = inspect.getsource(tflite)
    for const, _table, _field, fmt in SLOTS:
        if fmt is None or fmt.startswith("["):
            continue
        uses = re.findall(rf"scalar\({const}, \"(.)\"", src)
        assert set(uses) <= {fmt}, (const, uses)  # (some slots are named but not read)


OPTION_FIELDS = [(op, table, slot, name, fmt, default, enum)
                 for op, (table, _u, fields) in tflite.OPTIONS.items()
                 for slot, name, fmt, default, enum in fields]


@pytest.mark.parametrize("op, table, slot, name, fmt, default, enum", OPTION_FIELDS,
                         ids=[f"{f[0]}.{f[3]}" for f in OPTION_FIELDS])
def test_option_fields_match_generated_accessors(op, table, slot, name, fmt, default, enum):
    assert getattr(fb.BuiltinOptions, table) == tflite.OPTIONS[op][1]
    gen_slot, src, gen_default = accessor(table, camel(name, upper=True))
    assert gen_slot == slot
    assert f"number_types.{_FLAGS[fmt]}" in src
    if fmt == "[i":
        assert "Vector" in src
    else:
        assert eval(gen_default) == default  # literals only: 0, 1, True, False, 0.0
    assert hasattr(getattr(fb, table + "T")(), camel(name))


def non_default(name: str, fmt: str, default, enum, slot: int):
    """(value to set through the object API, value read_model must return)."""
    if enum is not None:
        return len(enum) - 1, enum[-1]
    if name == "quantized_bias_type":
        return T.INT64, T.INT64
    if fmt == "?":
        return (not default), (not default)
    if fmt == "f":
        return 0.75, 0.75
    if fmt == "[i":
        return [2, 3, slot + 1], (2, 3, slot + 1)
    return 3 + slot, 3 + slot


def one_op_model(opcode: str, options, *, fix=None) -> bytes:
    """A structurally valid one-operator model (not runnable: only the loader sees it)."""
    b = TFLiteBuilder()
    x = b.input("x", [1, 4, 4, 4], ttype=T.INT8, quant=b.quant([0.1], [0]))
    names = tflite.OPERANDS.get(opcode, (("input",), (1, 1)))[0]
    ins = [x] + [b.const(f"in{k}", np.array([1], np.int32)) for k, n in enumerate(names[1:], 1)
                 if not n.endswith("?")]
    y = b.op(opcode, ins, options, out_type=T.INT8, out_quant=b.quant([0.1], [0]))
    b.output(y)
    m = b.model()
    if fix is not None:
        fix(m)
    return pack(m)


@pytest.mark.parametrize("opcode", sorted(tflite.OPTIONS))
def test_options_round_trip(opcode):
    table, _, fields = tflite.OPTIONS[opcode]
    # every field set to a non-default value
    opts = getattr(fb, table + "T")()
    expected = {}
    for slot, name, fmt, default, enum in fields:
        value, read = non_default(name, fmt, default, enum, slot)
        setattr(opts, camel(name), value)
        expected[name] = read
    g = read_model(one_op_model(opcode, opts))
    assert g.operators[0].options == expected
    assert g.operators[0].opcode == opcode
    # nothing set but what must be >= 1 (the schema's default 0 is refused): the object API writes no field
    # at its default, so the reader's defaults are the schema's
    defaults = {name: (enum[default] if enum else default) for _s, name, _f, default, enum in fields}
    opts = getattr(fb, table + "T")()
    for name in set(defaults) & tflite._AT_LEAST_ONE:
        if defaults[name] < 1:
            setattr(opts, camel(name), 2)
            defaults[name] = 2
    g = read_model(one_op_model(opcode, opts))
    assert g.operators[0].options == defaults
    # no options table at all: defaults too (which for strides and filter sizes is an error)
    if any(f[3] < 1 for f in fields if f[1] in tflite._AT_LEAST_ONE):
        with pytest.raises(ModelError, match=rf"operator 0 \({opcode} v1\) option \w+ is 0; it must be at least 1"):
            read_model(one_op_model(opcode, None))
    else:
        assert read_model(one_op_model(opcode, None)).operators[0].options == defaults


@pytest.mark.parametrize("opcode", tflite.NO_OPTIONS)
def test_ops_without_options(opcode):
    assert opcode in tflite.BUILTIN_OPERATORS
    g = read_model(one_op_model(opcode, None))
    assert g.operators[0].opcode == opcode and g.operators[0].options == {}


def test_opcode_versions_and_extended_codes_are_read():
    """Codes >= 127 through builtin_code with the 127 placeholder; old files with only the int8 field."""
    def fix(m):
        m.operatorCodes[0].version = 7
    g = read_model(one_op_model("MEAN", None, fix=fix))
    assert (g.operators[0].opcode, g.operators[0].version) == ("MEAN", 7)
    assert g.operators[0].describe() == "operator 0 (MEAN v7)"

    def old_file(m):
        m.operatorCodes[0].builtinCode = 0  # written before builtin_code existed
    assert read_model(one_op_model("SOFTMAX", None, fix=old_file)).operators[0].opcode == "SOFTMAX"

    def no_old_field(m):
        m.operatorCodes[0].deprecatedBuiltinCode = 0  # a writer that leaves the old field out
    assert read_model(one_op_model("HARD_SWISH", None, fix=no_old_field)).operators[0].opcode == "HARD_SWISH"
    code = fb.BuiltinOperator.STABLEHLO_ADD
    assert code > 127

    def extended(m):
        m.operatorCodes[0].builtinCode = code
        m.operatorCodes[0].deprecatedBuiltinCode = 127
    assert read_model(one_op_model("RELU", None, fix=extended)).operators[0].opcode == "STABLEHLO_ADD"


# -- 2. real models read as LiteRT reads them ------------------------------------------------------------------------

def schema_options(op_table, table_name: str, fields) -> dict:
    """An operator's options through the generated (non-object) API, named and mapped as tflite.py does."""
    tab = op_table.BuiltinOptions()
    opts = None
    if tab is not None:
        opts = getattr(fb, table_name)()
        opts.Init(tab.Bytes, tab.Pos)
    out = {}
    for _slot, name, fmt, default, enum in fields:
        if fmt == "[i":
            if opts is None or getattr(opts, camel(name, True) + "IsNone")():
                out[name] = None
            else:
                out[name] = tuple(int(v) for v in getattr(opts, camel(name, True) + "AsNumpy")())
            continue
        value = default if opts is None else getattr(opts, camel(name, True))()
        out[name] = enum[value] if enum else value
    return out


def compare_with_litert(data: bytes) -> Graph:
    g = read_model(data)
    interp = interpreter(data)
    interp.allocate_tensors()
    # the interpreter lists the file's tensors, then any its kernels added (scratch)
    details = [d for d in interp.get_tensor_details() if d["index"] < len(g.tensors)]
    assert len(details) == len(g.tensors)
    m = fb.Model.GetRootAs(data, 0)
    sg = m.Subgraphs(0)
    for d in details:
        t = g.tensors[d["index"]]
        assert t.index == d["index"]
        assert t.name == d["name"]
        assert t.shape == tuple(int(v) for v in d["shape"]), t
        assert np.dtype(DTYPES[t.dtype]) == np.dtype(d["dtype"]), t
        qp = d["quantization_parameters"]
        assert np.array_equal(np.asarray(t.scale, np.float32), qp["scales"]), t
        assert np.array_equal(np.asarray(t.zero_point, np.int64), qp["zero_points"].astype(np.int64)), t
        if len(t.scale):
            assert t.quantized_dimension == qp["quantized_dimension"], t
        # constant bytes: the buffer as the generated schema parses it, and as the interpreter holds it
        buf = m.Buffers(sg.Tensors(t.index).Buffer())
        if buf.Offset() > 1:
            expected = data[buf.Offset():buf.Offset() + buf.Size()]
        else:
            expected = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
        if expected:
            assert t.is_constant and t.data == expected, t.describe()
            assert np.array_equal(t.array(), interp.get_tensor(t.index)), t.describe()
            assert t.nbytes == len(expected)
        else:
            assert not t.is_constant, t.describe()
    assert g.inputs == tuple(int(i) for i in sg.InputsAsNumpy())
    assert g.outputs == tuple(int(i) for i in sg.OutputsAsNumpy())
    ops = interp._get_ops_details()
    assert len(ops) == len(g.operators)
    for od, op in zip(ops, g.operators):
        assert op.opcode == od["op_name"]
        assert op.inputs == tuple(int(i) for i in od["inputs"])
        assert op.outputs == tuple(int(i) for i in od["outputs"])
        op_table = sg.Operators(op.index)
        assert op.version == m.OperatorCodes(op_table.OpcodeIndex()).Version()
        if op.opcode in tflite.OPTIONS:
            table_name, union, fields = tflite.OPTIONS[op.opcode]
            assert op_table.BuiltinOptionsType() in (0, union)
            assert op.options == schema_options(op_table, table_name, fields), op.describe()
    return g


def test_efficientnet_reads_as_litert_reads_it():
    g = compare_with_litert(efficientnet())
    assert len(g.operators) > 50 and g.tensors[g.inputs[0]].shape == (1, 224, 224, 3)
    assert {op.opcode for op in g.operators} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "FULLY_CONNECTED"}
    assert any(len(t.scale) > 1 for t in g.tensors)  # per-channel weights


@pytest.mark.parametrize("name", ["native/opmix_a", "native/opmix_b", "native/fashion_mnist_int8",
                                  "fashion_mnist_int8", "fashion_mnist_float32", "fashion_mnist_dynamic_int8"])
def test_committed_test_models_read_as_litert_reads_them(name):
    check_graph(compare_with_litert((DATA / f"{name}.tflite").read_bytes()))


def test_float16_weights_are_refused_with_a_hint():
    with pytest.raises(ModelError, match=r"tensor 1 \('.*'\) has element type FLOAT16; the native engine holds "
                                         r"FLOAT32, .* tensors: run it with --backend litert"):
        read_model((DATA / "fashion_mnist_fp16.tflite").read_bytes())


def test_efficientnet_reads_fast():
    data = efficientnet()
    read_model(data)
    best = min(_timed(lambda: read_model(data)) for _ in range(5))
    assert best < 0.05, f"read_model took {best * 1000:.1f} ms"


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@pytest.mark.parametrize("external_buffers", [False, True], ids=["inline", "offset_buffers"])
def test_built_model_reads_as_litert_reads_it(external_buffers):
    data = small_model(external_buffers)
    if external_buffers:
        m = fb.Model.GetRootAs(data, 0)
        assert any(m.Buffers(i).Offset() > 1 for i in range(m.BuffersLength()))
    g = compare_with_litert(data)
    assert [op.opcode for op in g.operators] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX", "LOGISTIC",
        "CONCATENATION", "RESHAPE", "DEQUANTIZE"]
    assert g.tensors[4].quantized_dimension == 3 and len(g.tensors[4].scale) == 4
    assert g.operators[0].options["fused_activation_function"] == "RELU6"
    assert g.operators[9].options["new_shape"] == (1, 2, 5)
    check_graph(g)


def test_shared_buffer_is_read_once():
    """Tensors sharing a buffer (TFLite's converter deduplicates equal constants) share the bytes."""
    b = small_int8_builder()
    idx = {t.name: i for i, t in enumerate(b.tensors)}
    b.tensors[idx["dw/b"]].buffer = b.tensors[idx["conv/b"]].buffer
    g = read_model(b.build(fix_shapes=False))
    assert g.tensors[idx["dw/b"]].data is g.tensors[idx["conv/b"]].data


# -- 3. well-formed models that are wrong ----------------------------------------------------------------------------

def base_model() -> fb.ModelT:
    m = fb.ModelT.InitFromPackedBuf(small_model(), 0)
    for o in m.subgraphs[0].operators:  # writable copies of the arrays that view the packed bytes
        o.inputs, o.outputs = np.array(o.inputs), np.array(o.outputs)
    return m


def tensor_index(m: fb.ModelT, name: str) -> int:
    return [t.name.decode() if isinstance(t.name, bytes) else t.name for t in m.subgraphs[0].tensors].index(name)


def tensor(m: fb.ModelT, name: str) -> fb.TensorT:
    return m.subgraphs[0].tensors[tensor_index(m, name)]


def op(m: fb.ModelT, k: int) -> fb.OperatorT:
    return m.subgraphs[0].operators[k]


def set_buffer(m: fb.ModelT, name: str, raw: bytes) -> None:
    m.buffers[tensor(m, name).buffer].data = np.frombuffer(raw, np.uint8)


def add_tensor(m: fb.ModelT, name: str, shape, ttype=T.INT8) -> int:
    t = fb.TensorT()
    t.name, t.shape, t.type = name, np.asarray(shape, np.int32), ttype
    m.subgraphs[0].tensors.append(t)
    return len(m.subgraphs[0].tensors) - 1


def quant(m: fb.ModelT, name: str, **kw) -> None:
    q = tensor(m, name).quantization
    for k, v in kw.items():
        setattr(q, k, v)


def wrong_options(m):
    o = op(m, 0)
    o.builtinOptionsType = fb.BuiltinOptions.DepthwiseConv2DOptions
    o.builtinOptions = fb.DepthwiseConv2DOptionsT()


def swap_ops(m):
    ops = m.subgraphs[0].operators
    ops[0], ops[1] = ops[1], ops[0]


def extended_code(m, builtin, deprecated):
    m.operatorCodes[0].builtinCode = builtin
    m.operatorCodes[0].deprecatedBuiltinCode = deprecated


def field(obj, **kw):
    for k, v in kw.items():
        setattr(obj, k, v)


CONV0 = r"operator 0 \(CONV_2D v1\)"
BAD = [  # (id, change to the model, message regex)
    ("op_input_out_of_range", lambda m: op(m, 0).inputs.__setitem__(1, 999),
     CONV0 + r" input 1 is tensor 999, but the subgraph has 20 tensors"),
    ("op_input_negative", lambda m: op(m, 2).inputs.__setitem__(0, -7), r"operator 2 \(ADD v1\) input 0 is tensor -7"),
    ("op_output_out_of_range", lambda m: op(m, 3).outputs.__setitem__(0, 20),
     r"operator 3 \(MAX_POOL_2D v1\) output 0 is tensor 20"),
    ("op_output_omitted", lambda m: op(m, 3).outputs.__setitem__(0, -1),
     r"operator 3 \(MAX_POOL_2D v1\) output 0 is tensor -1"),
    ("op_no_outputs", lambda m: field(op(m, 3), outputs=np.zeros(0, np.int32)),
     r"operator 3 \(MAX_POOL_2D v1\) has no outputs"),
    ("required_input_omitted", lambda m: op(m, 0).inputs.__setitem__(1, -1),
     CONV0 + r" input 1 \(filter\) is omitted \(-1\), but CONV_2D requires it"),
    ("too_few_inputs", lambda m: field(op(m, 0), inputs=op(m, 0).inputs[:1]),
     CONV0 + r" has 1 inputs; CONV_2D takes 2 to 3: input, filter, bias \(optional\)"),
    ("too_many_inputs", lambda m: field(op(m, 2), inputs=np.array([0, 3, 6], np.int32)),
     r"operator 2 \(ADD v1\) has 3 inputs; ADD takes 2: x, y"),
    ("too_many_outputs", lambda m: field(op(m, 3), outputs=np.array([8, add_tensor(m, "extra", [1])], np.int32)),
     r"operator 3 \(MAX_POOL_2D v1\) has 2 outputs; MAX_POOL_2D has 1"),
    ("concat_omitted_input", lambda m: op(m, 8).inputs.__setitem__(0, -1),
     r"operator 8 \(CONCATENATION v1\) has inputs \[-1, 15\]; CONCATENATION takes one or more"),
    ("buffer_too_small", lambda m: set_buffer(m, "conv/w", bytes(100)),
     r"tensor 1 \('conv/w'\) is INT8\[4, 3, 3, 3\] = 108 bytes, but its buffer 1 holds 100 bytes"),
    ("buffer_too_large", lambda m: set_buffer(m, "fc/b", bytes(24)),
     r"tensor 12 \('fc/b'\) is INT32\[5\] = 20 bytes, but its buffer \d+ holds 24 bytes"),
    ("buffer_shared_by_different_sizes", lambda m: field(tensor(m, "fc/b"), buffer=tensor(m, "conv/b").buffer),
     r"tensor 12 \('fc/b'\) is INT32\[5\] = 20 bytes, but its buffer 2 holds 16 bytes"),
    ("buffer_index_out_of_range", lambda m: field(tensor(m, "axes"), buffer=77),
     r"tensor 9 \('axes'\) uses buffer 77, but the model has \d+ buffers"),
    ("scales_not_channels", lambda m: quant(m, "conv/w", scale=[0.1, 0.2, 0.3], zeroPoint=[0, 0, 0]),
     r"tensor 1 \('conv/w'\) has 3 per-channel scales on dimension 0, but that dimension of its shape "
     r"\[4, 3, 3, 3\] is 4"),
    ("scales_on_wrong_dimension", lambda m: quant(m, "dw/w", quantizedDimension=0),
     r"tensor 4 \('dw/w'\) has 4 per-channel scales on dimension 0, but that dimension of its shape "
     r"\[1, 3, 3, 4\] is 1"),
    ("quantized_dimension_out_of_range", lambda m: quant(m, "dw/w", quantizedDimension=4),
     r"tensor 4 \('dw/w'\) has quantized_dimension 4, but its shape \[1, 3, 3, 4\] has 4 dimensions"),
    ("quantized_dimension_negative", lambda m: quant(m, "conv", quantizedDimension=-1),
     r"tensor 3 \('conv'\) has quantized_dimension -1"),
    ("zero_points_not_scales", lambda m: quant(m, "conv/w", zeroPoint=[0, 0]),
     r"tensor 1 \('conv/w'\) has 4 quantization scales but 2 zero points"),
    ("scale_without_zero_point", lambda m: quant(m, "conv", zeroPoint=None),
     r"tensor 3 \('conv'\) has 1 quantization scales but no zero points"),
    ("zero_point_above_int8", lambda m: quant(m, "conv", zeroPoint=[200]),
     r"tensor 3 \('conv'\) has zero point 200, outside the INT8 range \[-128, 127\]"),
    ("zero_point_below_int8", lambda m: quant(m, "image", zeroPoint=[-129]),
     r"tensor 0 \('image'\) has zero point -129, outside the INT8 range"),
    ("zero_point_int32_overflow", lambda m: quant(m, "conv/b", zeroPoint=[0, 0, 1 << 40, 0]),
     r"tensor 2 \('conv/b'\) has zero point 1099511627776, outside the INT32 range"),
    ("scale_zero", lambda m: quant(m, "conv", scale=[0.0]), r"tensor 3 \('conv'\) has quantization scale 0.0"),
    ("scale_negative", lambda m: quant(m, "conv", scale=[-0.5]), r"tensor 3 \('conv'\) has quantization scale -0.5"),
    ("scale_nan", lambda m: quant(m, "conv/w", scale=[0.1, float("nan"), 0.1, 0.1]),
     r"tensor 1 \('conv/w'\) has quantization scale nan"),
    ("scale_inf", lambda m: quant(m, "conv", scale=[float("inf")]), r"tensor 3 \('conv'\) has quantization scale inf"),
    ("scale_subnormal", lambda m: quant(m, "conv", scale=[1e-40]),
     r"has quantization scale 9.9999\d*e-41.*normal float32"),
    ("custom_quantization", lambda m: quant(m, "conv", detailsType=fb.QuantizationDetails.CustomQuantization,
                                            details=fb.CustomQuantizationT()),
     r"tensor 3 \('conv'\) uses quantization details of union type 1"),
    ("options_of_wrong_union_type", wrong_options,
     CONV0 + r" carries options of builtin_options_type 2; CONV_2D takes Conv2DOptions \(union type 1\)"),
    ("options_type_without_table", lambda m: field(op(m, 2), builtinOptionsType=fb.BuiltinOptions.MulOptions,
                                                   builtinOptions=None),
     r"operator 2 \(ADD v1\) carries options of builtin_options_type 21 \(with no table\); ADD takes AddOptions"),
    ("options_table_typed_none", lambda m: field(op(m, 2), builtinOptionsType=0),
     r"operator 2 \(ADD v1\) carries options of builtin_options_type 0"),
    ("padding_out_of_range", lambda m: field(op(m, 0).builtinOptions, padding=2),
     CONV0 + r" option padding is 2; expected one of 0 \(SAME\), 1 \(VALID\)"),
    ("activation_out_of_range", lambda m: field(op(m, 2).builtinOptions, fusedActivationFunction=-3),
     r"operator 2 \(ADD v1\) option fused_activation_function is -3"),
    ("stride_zero", lambda m: field(op(m, 0).builtinOptions, strideW=0),
     CONV0 + r" option stride_w is 0; it must be at least 1"),
    ("filter_negative", lambda m: field(op(m, 3).builtinOptions, filterHeight=-2),
     r"operator 3 \(MAX_POOL_2D v1\) option filter_height is -2"),
    ("dilation_zero", lambda m: field(op(m, 1).builtinOptions, dilationHFactor=0),
     r"operator 1 \(DEPTHWISE_CONV_2D v1\) option dilation_h_factor is 0"),
    ("softmax_beta_nan", lambda m: field(op(m, 6).builtinOptions, beta=float("nan")),
     r"operator 6 \(SOFTMAX v1\) option beta is nan"),
    ("reshape_new_shape_too_long", lambda m: field(op(m, 9).builtinOptions, newShape=[1] * 9),
     r"operator 9 \(RESHAPE v1\) option new_shape has 9 values; at most 6"),
    ("bias_type_not_a_type", lambda m: field(op(m, 0).builtinOptions, quantizedBiasType=99),
     CONV0 + r" option quantized_bias_type is 99, not a TensorType"),
    ("shape_with_zero", lambda m: field(tensor(m, "pool"), shape=np.array([1, 0, 2, 4], np.int32)),
     r"tensor 8 \('pool'\) has shape \[1, 0, 2, 4\]: every dimension must be >= 1"),
    ("shape_negative", lambda m: field(tensor(m, "image"), shape=np.array([-1, 8, 8, 3], np.int32)),
     r"tensor 0 \('image'\) has shape \[-1, 8, 8, 3\]"),
    ("shape_rank_7", lambda m: field(tensor(m, "image"), shape=np.ones(7, np.int32)),
     r"tensor 0 \('image'\) has a shape of rank 7; at most 6"),
    ("shape_too_many_bytes", lambda m: field(tensor(m, "image"), shape=np.array([1 << 16, 1 << 15], np.int32)),
     r"tensor 0 \('image'\) is INT8\[65536, 32768\] = 2147483648 bytes; the native engine takes tensors of at most"),
    ("shape_product_overflows_int64", lambda m: field(tensor(m, "image"), shape=np.full(6, 2**31 - 1, np.int32)),
     r"tensor 0 \('image'\) is INT8\[2147483647, .*\] = \d+ bytes"),
    ("float16_tensor", lambda m: field(tensor(m, "scores"), type=T.FLOAT16),
     r"tensor 19 \('scores'\) has element type FLOAT16; the native engine holds FLOAT32, .*--backend litert"),
    ("unknown_tensor_type", lambda m: field(tensor(m, "scores"), type=99),
     r"tensor 19 \('scores'\) has element type type 99 \(not a TensorType this reader knows\)"),
    ("variable_tensor", lambda m: field(tensor(m, "conv"), isVariable=True), r"tensor 3 \('conv'\) is a variable"),
    ("sparse_tensor", lambda m: field(tensor(m, "fc/w"), sparsity=fb.SparsityParametersT()),
     r"tensor 11 \('fc/w'\) is sparse"),
    ("external_buffer", lambda m: field(tensor(m, "fc/w"), externalBuffer=3),
     r"tensor 11 \('fc/w'\) refers to an external buffer"),
    ("read_before_written", swap_ops,
     r"operator 0 \(DEPTHWISE_CONV_2D v1\) input 0 reads tensor 3 \('conv', INT8\[1, 4, 4, 4\]\) before any "
     r"operator writes it"),
    ("read_never_written", lambda m: op(m, 2).inputs.__setitem__(1, add_tensor(m, "dangling", [1, 4, 4, 4])),
     r"operator 2 \(ADD v1\) input 1 reads tensor 20 \('dangling', INT8\[1, 4, 4, 4\]\) before any operator"),
    ("output_never_written", lambda m: field(m.subgraphs[0], outputs=np.array([add_tensor(m, "lost", [1])], np.int32)),
     r"subgraph output tensor 20 \('lost', INT8\[1\]\) is never written"),
    ("output_is_constant", lambda m: field(m.subgraphs[0], outputs=np.array([11], np.int32)),
     r"subgraph output tensor 11 \('fc/w', INT8\[5, 4\]\) is a constant"),
    ("op_writes_constant", lambda m: op(m, 3).outputs.__setitem__(0, 11),
     r"operator 3 \(MAX_POOL_2D v1\) output 0 is constant tensor 11"),
    ("op_writes_input", lambda m: op(m, 3).outputs.__setitem__(0, 0),
     r"operator 3 \(MAX_POOL_2D v1\) output 0 is tensor 0 \('image'.*already written"),
    ("two_ops_write_one_tensor", lambda m: op(m, 3).outputs.__setitem__(0, 7),
     r"operator 3 \(MAX_POOL_2D v1\) output 0 is tensor 7 \('add'.*already written"),
    ("input_is_constant", lambda m: field(m.subgraphs[0], inputs=np.array([0, 9], np.int32)),
     r"subgraph input tensor 9 \('axes', INT32\[2\]\) has constant data"),
    ("input_out_of_range", lambda m: field(m.subgraphs[0], inputs=np.array([40], np.int32)),
     r"subgraph input 0 is tensor 40, but the subgraph has 20 tensors"),
    ("input_twice", lambda m: field(m.subgraphs[0], inputs=np.array([0, 0], np.int32)),
     r"the subgraph's inputs \[0, 0\] name a tensor twice"),
    ("no_inputs", lambda m: field(m.subgraphs[0], inputs=np.zeros(0, np.int32)), r"the subgraph declares no inputs"),
    ("no_outputs", lambda m: field(m.subgraphs[0], outputs=None), r"the subgraph declares no outputs"),
    ("no_operators", lambda m: field(m.subgraphs[0], operators=[]), r"the model's subgraph has no operators"),
    ("no_operator_codes", lambda m: field(m, operatorCodes=None),
     r"it has 11 operators but no operator_codes table"),
    ("opcode_index_out_of_range", lambda m: field(op(m, 4), opcodeIndex=50),
     r"operator 4 uses operator code 50, but the model has 11 operator codes"),
    ("builtin_code_unknown", lambda m: extended_code(m, 400, 127),
     r"operator code 0 is builtin operator 400, which this reader does not know .*newer runtime"),
    ("placeholder_without_code", lambda m: extended_code(m, 3, 127),
     r"operator code 0 has builtin_code 3 but deprecated_builtin_code 127"),
    ("placeholder_as_code", lambda m: extended_code(m, 127, 127),
     r"operator code 0 has deprecated_builtin_code 127, which means"),
    ("codes_disagree", lambda m: extended_code(m, 4, 3),
     r"operator code 0 has builtin_code 4 but deprecated_builtin_code 3"),
    ("extended_code_without_placeholder", lambda m: extended_code(m, 150, 5),
     r"operator code 0 has builtin_code 150 but deprecated_builtin_code 5"),
    ("negative_code", lambda m: extended_code(m, -4, 0), r"operator code 0 has builtin_code -4.*not negative"),
    ("negative_deprecated_code", lambda m: extended_code(m, 0, -100), r"deprecated_builtin_code -100.*not negative"),
    ("custom_without_name", lambda m: extended_code(m, 32, 32), r"operator code 0 is CUSTOM but has no custom_code"),
    ("version_zero", lambda m: field(m.operatorCodes[0], version=0),
     r"operator code 0 \(CONV_2D\) has version 0; operator versions start at 1"),
    ("schema_version_2", lambda m: field(m, version=2), r"TFLite schema version 2; the native engine reads version 3"),
    ("no_subgraphs", lambda m: field(m, subgraphs=[]), r"it has no subgraph"),
]


@pytest.mark.parametrize("change, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_wrong_models_are_refused_by_name(change: Callable, message: str):
    m = base_model()
    change(m)
    with pytest.raises(ModelError, match=message):
        read_model(pack(m))


def test_base_model_of_wrong_models_is_right():
    g = read_model(pack(base_model()))
    assert len(g.tensors) == 20 and len(g.operators) == 11


def test_not_utf8_name_is_refused_naming_the_tensor():
    data = small_model().replace(b"logistic\0", b"logi\xfftic\0")
    with pytest.raises(ModelError, match=r"tensor 15: .*tensors\[15\]\.name is not valid UTF-8"):
        read_model(data)


def test_not_utf8_custom_code_is_refused_naming_the_opcode():
    m = base_model()
    extended_code(m, 32, 32)
    m.operatorCodes[0].customCode = "MyOp"
    data = pack(m).replace(b"MyOp", b"My\x80p")
    with pytest.raises(ModelError, match=r"operator code 0: .*custom_code is not valid UTF-8"):
        read_model(data)


def test_custom_op_is_read_by_name():
    m = base_model()
    m.operatorCodes[3].builtinCode = m.operatorCodes[3].deprecatedBuiltinCode = 32
    m.operatorCodes[3].customCode = "MyPool"
    g = read_model(pack(m))
    assert g.operators[3].opcode == "CUSTOM:MyPool" and g.operators[3].options == {}


def test_not_a_tflite_file():
    with pytest.raises(ModelError, match=r"not a TFLite model: its file identifier .* is b'ABCD', expected b'TFL3'"):
        read_model(b"\x10\0\0\0ABCD" + bytes(40))
    for short in (b"", b"TFL3", bytes(7)):
        with pytest.raises(ModelError, match="too short"):
            read_model(short)
    with pytest.raises(TypeError):
        read_model("model.tflite")


def test_long_names_are_shortened_in_messages():
    m = base_model()
    tensor(m, "conv").name = "x" * 100_000
    quant(m, "x" * 100_000, zeroPoint=[300])
    with pytest.raises(ModelError) as e:
        read_model(pack(m))
    assert len(str(e.value)) < 300 and "xxx…" in str(e.value)


def vector_length_position(data: bytes, getter) -> int:
    """File position of the u32 length of a vector, found through the generated API."""
    tab, slot = getter(fb.Model.GetRootAs(data, 0))
    o = tab._tab.Offset(4 + 2 * slot)
    assert o
    return tab._tab.Vector(o) - 4


@pytest.mark.parametrize("what, getter, message", [
    ("subgraph inputs", lambda m: (m.Subgraphs(0), 1), r"inputs claims \d+ elements, more than the buffer holds"),
    ("tensor shape", lambda m: (m.Subgraphs(0).Tensors(3), 0), r"tensor 3 \('conv'\): .*shape claims"),
    ("operator inputs", lambda m: (m.Subgraphs(0).Operators(2), 1), r"operator 2 \(ADD v1\): .*inputs claims"),
    ("quantization scales", lambda m: (m.Subgraphs(0).Tensors(1).Quantization(), 2), r"tensor 1 \('conv/w'\): .*scale"),
    ("tensors", lambda m: (m.Subgraphs(0), 0), r"tensors claims"),
    ("buffer data", lambda m: (m.Buffers(1), 0), r"data claims"),
])
def test_huge_vector_lengths(what, getter, message):
    data = small_model()
    pos = vector_length_position(data, getter)
    for length in (0x7FFFFFFF, 0xFFFFFFFF, len(data)):
        bad = data[:pos] + struct.pack("<I", length) + data[pos + 4:]
        with pytest.raises(ModelError, match=message):
            read_model(bad)


def test_large_but_fitting_vector_length_is_refused_before_it_is_read():
    """A shape claiming 500 dimensions that do fit in the file is refused by its length, not unpacked."""
    data = bytearray(small_model())
    pos = vector_length_position(bytes(data), lambda m: (m.Subgraphs(0).Tensors(19), 0))
    assert len(data) - pos > 4 + 4 * 400
    data[pos:pos + 4] = struct.pack("<I", 400)
    with pytest.raises(ModelError, match=r"tensor 19 \('scores'\) has a shape of rank 400"):
        read_model(bytes(data))


def test_tables_referring_to_one_vector_over_and_over_fail_fast():
    """200 tensors whose names all point at one 50 kB string: a 60 kB file that would make a naive reader
    visit 10 MB. The reader's budget (twice the file) stops it, naming where."""
    b = small_int8_builder()
    for k in range(200):
        b.tensor(f"pad{k:03d}", [1], T.INT8)
    b.tensors[0].name = "i" * 50_000
    data = bytearray(b.build(fix_shapes=False))
    m = fb.Model.GetRootAs(bytes(data), 0)
    sg = m.Subgraphs(0)
    first = sg.Tensors(0)
    name_target = first._tab.Vector(first._tab.Offset(10)) - 4  # the string's length word
    for k in range(sg.TensorsLength() - 200, sg.TensorsLength()):
        t = sg.Tensors(k)
        pos = t._tab.Pos + t._tab.Offset(10)
        assert name_target > pos
        data[pos:pos + 4] = struct.pack("<I", name_target - pos)
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match=r"visited more data than a file of this size"):
        read_model(bytes(data))
    assert time.perf_counter() - t0 < 1.0


def point(data: bytearray, pos: int, target: int) -> None:
    """Make the reference at file position `pos` point at file position `target` (forward: offsets are
    unsigned, which is also why a flatbuffer cannot hold a cycle other than a reference to itself)."""
    assert target >= pos
    struct.pack_into("<I", data, pos, target - pos)


def field_pos(tab, slot: int) -> int:
    return tab._tab.Pos + tab._tab.Offset(4 + 2 * slot)


@pytest.mark.parametrize("how", ["quantization_is_itself", "quantization_is_another_tensor",
                                 "tensors_are_the_operators", "shape_is_a_name", "all_tensors_one_table",
                                 "all_operators_one_table", "all_buffers_one_table"])
def test_self_referring_and_shared_tables(how):
    """References to themselves, to a table of another type, or many references to one table: the reader
    follows a fixed depth of the schema, so nothing loops; the result is a ModelError naming where (or a Graph
    that passes every check), never another exception."""
    data = bytearray(small_model())
    m = fb.Model.GetRootAs(bytes(data), 0)
    sg = m.Subgraphs(0)

    def all_to_one(tab, slot, length, target):
        vec = tab._tab.Vector(tab._tab.Offset(4 + 2 * slot))
        for k in range(length):
            point(data, vec + 4 * k, target)

    if how == "quantization_is_itself":
        pos = field_pos(sg.Tensors(3), 4)
        point(data, pos, pos)
    elif how == "quantization_is_another_tensor":
        point(data, field_pos(sg.Tensors(3), 4), sg.Tensors(2)._tab.Pos)
    elif how == "tensors_are_the_operators":
        point(data, field_pos(sg, 0), sg._tab.Vector(sg._tab.Offset(4 + 2 * 3)) - 4)
    elif how == "shape_is_a_name":
        point(data, field_pos(sg.Tensors(19), 0), sg.Tensors(0)._tab.Vector(sg.Tensors(0)._tab.Offset(10)) - 4)
    elif how == "all_tensors_one_table":
        all_to_one(sg, 0, sg.TensorsLength(), sg.Tensors(sg.TensorsLength() - 1)._tab.Pos)
    elif how == "all_operators_one_table":
        all_to_one(sg, 3, sg.OperatorsLength(), sg.Operators(sg.OperatorsLength() - 1)._tab.Pos)
    else:
        all_to_one(m, 4, m.BuffersLength(), m.Buffers(1)._tab.Pos)
    try:
        check_graph(read_model(bytes(data)))
    except ModelError as e:
        assert re.search(r"tensor \d+|operator \d+|buffer \d+", str(e)), e


def test_buffers_sharing_one_data_vector_fail_fast():
    """Buffer entries 2..40 all pointing at buffer 1's table (a 100 kB constant): a 100 kB file that would
    make a naive reader copy 4 MB (and a 5 MB one, gigabytes). Tensors sharing one buffer *index* share one
    copy and are fine (test_shared_buffer_is_read_once); distinct entries of one table exceed the budget."""
    b = TFLiteBuilder()
    x = b.input("x", [1, 4], ttype=T.INT8, quant=b.quant([0.1], [0]))
    b.output(b.op("RELU", [x], out_type=T.INT8, out_quant=b.quant([0.1], [0])))
    b.tensor("big0", [100_000], T.INT8, data=np.zeros(100_000, np.int8))
    for k in range(1, 40):
        b.tensor(f"big{k}", [100_000], T.INT8, data=np.zeros(1, np.int8))
    data = bytearray(b.build(fix_shapes=False))
    assert len(data) < 110_000
    m = fb.Model.GetRootAs(bytes(data), 0)
    sg = m.Subgraphs(0)
    first = sg.Tensors(2).Buffer()
    vec = m._tab.Vector(m._tab.Offset(4 + 2 * 4))
    for k in range(3, sg.TensorsLength()):
        point(data, vec + 4 * sg.Tensors(k).Buffer(), m.Buffers(first)._tab.Pos)
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match=r"tensor \d+ \('big\d+'\): buffer \d+: .*visited more data than a file "
                                         r"of this size"):
        read_model(bytes(data))
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("slot, what", [(0, "tensors"), (3, "operators")])
def test_too_many_tensors_or_operators(slot, what):
    """Counts that fit in the (5 MB) file but are beyond any image model are refused before they are read."""
    data = bytearray(efficientnet())
    sg = fb.Model.GetRootAs(bytes(data), 0).Subgraphs(0)
    pos = sg._tab.Vector(sg._tab.Offset(4 + 2 * slot)) - 4
    struct.pack_into("<I", data, pos, 70_000)
    with pytest.raises(ModelError, match=rf"the subgraph has 70000 {what}; the native engine takes at most 65536"):
        read_model(bytes(data))


@pytest.mark.parametrize("soffset, vtable_size, message", [
    (0x7FFFFFFF, None, r"vtable offset|vtable size at byte -\d+ lies outside the buffer"),
    (-0x7FFFFFFF, None, r"vtable size at byte \d+ lies outside the buffer"),
    (None, 0xFFFE, r"has a bad vtable \(size 65534"),
    (None, 3, r"has a bad vtable \(size 3"),
    (None, 2, r"has a bad vtable \(size 2"),
])
def test_vtables_out_of_place(soffset, vtable_size, message):
    """A tensor table whose vtable lies outside the file or claims to be longer than it: refused, naming it."""
    data = bytearray(small_model())
    t = fb.Model.GetRootAs(bytes(data), 0).Subgraphs(0).Tensors(7)
    pos = t._tab.Pos
    if soffset is not None:
        struct.pack_into("<i", data, pos, soffset)
    else:
        vtable = pos - struct.unpack_from("<i", data, pos)[0]
        struct.pack_into("<H", data, vtable, vtable_size)
    with pytest.raises(ModelError, match=r"tensor (7|\d+)\b.*tensors\[\d+\]( vtable| has a bad vtable).*"):
        read_model(bytes(data))
    with pytest.raises(ModelError, match=message):
        read_model(bytes(data))


def test_buffer_past_the_end():
    data = small_model(external_buffers=True)
    m = fb.Model.GetRootAs(data, 0)
    k = m.Subgraphs(0).Tensors(11).Buffer()  # fc/w
    buf = m.Buffers(k)
    offset_at, size_at = (buf._tab.Pos + buf._tab.Offset(4 + 2 * slot) for slot in (1, 2))
    assert struct.unpack_from("<Q", data, size_at)[0] == 20
    for offset, size, message in ((1 << 40, 20, "20 bytes at file offset 1099511627776"),
                                  (64, (1 << 64) - 1, "18446744073709551615 bytes at file offset 64"),
                                  (len(data) - 19, 20, f"20 bytes at file offset {len(data) - 19}")):
        bad = bytearray(data)
        struct.pack_into("<Q", bad, offset_at, offset)
        struct.pack_into("<Q", bad, size_at, size)
        with pytest.raises(ModelError,
                           match=rf"tensor 11 \('fc/w'\) uses buffer {k}, which is {message}, past the end"):
            read_model(bytes(bad))


# -- 4. fuzzing ------------------------------------------------------------------------------------------------------

def check_graph(g: Graph) -> None:
    """What read_model guarantees about every Graph it returns (what kernels and the planner rely on)."""
    assert isinstance(g, Graph)
    n = len(g.tensors)
    for i, t in enumerate(g.tensors):
        assert t.index == i and isinstance(t.name, str)
        assert t.dtype in DTYPES
        assert isinstance(t.shape, tuple) and len(t.shape) <= 6 and all(type(d) is int and d >= 1 for d in t.shape)
        assert t.nbytes <= tflite._MAX_TENSOR_BYTES
        assert t.data is None or (type(t.data) is bytes and len(t.data) == t.nbytes)
        assert len(t.scale) == len(t.zero_point)
        if t.scale:
            assert all(math.isfinite(s) and s >= 2.0 ** -126 for s in t.scale)
            lo, hi = tflite._ZERO_POINT_RANGES.get(t.dtype, (-(1 << 63), (1 << 63) - 1))
            assert all(lo <= z <= hi for z in t.zero_point)
            assert 0 <= t.quantized_dimension < max(len(t.shape), 1)
            if len(t.scale) > 1:
                assert t.shape[t.quantized_dimension] == len(t.scale)
    assert g.inputs and g.outputs and g.operators
    written = set(g.inputs)
    assert len(written) == len(g.inputs) and len(set(g.outputs)) == len(g.outputs)
    assert all(0 <= i < n and not g.tensors[i].is_constant for i in g.inputs + g.outputs)
    for k, o in enumerate(g.operators):
        assert o.index == k and isinstance(o.opcode, str) and o.version >= 1 and o.outputs
        for x in o.inputs:
            assert x == -1 or (0 <= x < n and (x in written or g.tensors[x].is_constant))
        for x in o.outputs:
            assert 0 <= x < n and x not in written and not g.tensors[x].is_constant
            written.add(x)
        if o.opcode in tflite.OPERANDS:
            names, (lo_out, hi_out) = tflite.OPERANDS[o.opcode]
            assert lo_out <= len(o.outputs) <= hi_out
        if o.opcode in tflite.OPTIONS:
            assert set(o.options) == {f[1] for f in tflite.OPTIONS[o.opcode][2]}
    assert all(t in written for t in g.outputs)


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def structure_of(data: bytes) -> dict[str, list]:
    """Where a clean read visits: tables (pos, vtable, vtable size, table size) and vectors (length word,
    element size, count). Found by recording the flatbuffer reader's calls."""
    tables, vectors = [], []
    orig_table_at, orig_span = model_info._FlatBuffer.table_at, model_info._Table._vector_span

    def table_at(self, pos, what):
        t = orig_table_at(self, pos, what)
        tables.append((t.pos, t.vtable, t.vtable_size, t.table_size))
        return t

    def span(self, slot, elem_size, name):
        s = orig_span(self, slot, elem_size, name)
        if s is not None:
            vectors.append((s[0] - 4, elem_size, s[1]))
        return s

    model_info._FlatBuffer.table_at, model_info._Table._vector_span = table_at, span
    try:
        read_model(data)
    finally:
        model_info._FlatBuffer.table_at, model_info._Table._vector_span = orig_table_at, orig_span
    tables, vectors = sorted(set(tables)), sorted(set(vectors))
    # bytes that are not constant data (vectors of bytes longer than a name): where structure lives
    data_ranges = sorted((p + 4, p + 4 + c) for p, size, c in vectors if size == 1 and c > 256)
    structural, last = [], 0
    for a, b in data_ranges:
        if a > last:
            structural.append((last, a))
        last = max(last, b)
    structural.append((last, len(data)))
    return {"tables": tables, "vectors": vectors, "structural": structural}


INTERESTING_8 = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)
INTERESTING_32 = (0, 1, 2, 4, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                  0xFFFFFFFC, 0x40000000)
INTERESTING_16 = (0, 1, 2, 3, 4, 6, 8, 0x7FFF, 0x8000, 0xFFFF, 0xFFFE)


class Mutator:
    def __init__(self, data: bytes, focus_structure: bool):
        self.data = data
        self.s = structure_of(data)
        self.focus = focus_structure
        self.weights = [w for _a, w in self._spans()]

    def _spans(self):
        return [((a, b), b - a) for a, b in self.s["structural"]]

    def pos(self, rng: random.Random, buf: bytearray, width: int = 1) -> int:
        n = len(buf)
        if n <= width:
            return 0
        if self.focus and rng.random() < 0.9:
            (a, b), = rng.choices([sp for sp, _w in self._spans()], weights=self.weights)
            p = rng.randrange(a, max(a + 1, b))
        else:
            p = rng.randrange(n)
        if width > 1 and rng.random() < 0.7:
            p -= p % 4
        return max(0, min(p, n - width))

    def word(self, rng: random.Random, n: int, pos: int) -> int:
        r = rng.random()
        if r < 0.5:
            return rng.choice(INTERESTING_32)
        if r < 0.8:  # an offset to somewhere in (or just past) the file, from here
            return (rng.randrange(-64, n + 64) - pos) & 0xFFFFFFFF
        return rng.getrandbits(32)

    def mutate(self, rng: random.Random) -> tuple[bytes, list[str]]:
        buf = bytearray(self.data)
        done = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            kind = rng.choice(("bitflip", "byte", "word", "word", "vtable", "vtable", "vector_length", "soffset",
                               "field", "field", "truncate", "copy", "swap", "insert", "delete"))
            n = len(buf)
            if n < 16:
                break
            if kind == "bitflip":
                p = self.pos(rng, buf)
                buf[p] ^= 1 << rng.randrange(8)
            elif kind == "byte":
                p = self.pos(rng, buf)
                buf[p] = rng.choice(INTERESTING_8)
            elif kind == "word":
                p = self.pos(rng, buf, 4)
                struct.pack_into("<I", buf, p, self.word(rng, n, p))
            elif kind == "vtable":
                _pos, vt, vsize, tsize = rng.choice(self.s["tables"])
                p = vt + 2 * rng.randrange(vsize // 2)
                if p + 2 <= n:
                    v = rng.choice(INTERESTING_16 + (tsize, tsize - 1, tsize + 4, vsize, rng.getrandbits(16)))
                    struct.pack_into("<H", buf, p, v & 0xFFFF)
            elif kind == "vector_length":
                p, size, count = rng.choice(self.s["vectors"])
                if p + 4 <= n:
                    v = rng.choice(INTERESTING_32 + (count + 1, count - 1, count * 2, (n - p) // max(size, 1),
                                                     (n - p) // max(size, 1) + 1))
                    struct.pack_into("<I", buf, p, v & 0xFFFFFFFF)
            elif kind == "soffset":
                pos, vt, _vs, _ts = rng.choice(self.s["tables"])
                if pos + 4 <= n:
                    v = rng.choice((pos - vt + 2, pos - vt - 2, 0, -4, pos, pos + 1, -(n - pos), 0x7FFFFFFF,
                                    -0x80000000, rng.randrange(-n, n)))
                    struct.pack_into("<i", buf, pos, v)
            elif kind == "field":  # a word inside a table's inline part: a reference or a scalar
                pos, _vt, _vs, tsize = rng.choice(self.s["tables"])
                if tsize > 4:
                    p = pos + 4 * rng.randrange(1, max(2, tsize // 4))
                    if p + 4 <= n:
                        struct.pack_into("<I", buf, p, self.word(rng, n, p))
            elif kind == "truncate":
                cut = self.pos(rng, buf) if rng.random() < 0.7 else rng.randrange(n)
                del buf[cut:]
            elif kind in ("copy", "swap"):
                length = rng.choice((4, 8, 16, 32, 64, 256))
                a, b = self.pos(rng, buf, length), self.pos(rng, buf, length)
                if kind == "copy":
                    buf[b:b + length] = buf[a:a + length]
                else:
                    lo, hi = sorted((a, b))
                    if hi - lo >= length:
                        buf[lo:lo + length], buf[hi:hi + length] = buf[hi:hi + length], buf[lo:lo + length]
            elif kind == "insert":
                p = self.pos(rng, buf)
                buf[p:p] = bytes(rng.choice(INTERESTING_8) for _ in range(rng.choice((1, 4, 8))))
            elif kind == "delete":
                p = self.pos(rng, buf)
                del buf[p:p + rng.choice((1, 4, 8))]
            done.append(f"{kind}")
        return bytes(buf), done


def fuzz(data: bytes, cases: int, seed: int, focus_structure: bool, budget_s: float = 2.0,
         accepted: list | None = None) -> dict:
    """Read `cases` mutants of `data`; fail on anything but a Graph (that check_graph accepts) or a ModelError.
    Mutants that read are appended to `accepted`."""
    mutator = Mutator(data, focus_structure)
    outcomes = {"graph": 0, "error": 0}
    failures = []
    old = signal.signal(signal.SIGALRM, _alarm)
    slowest = 0.0
    try:
        for case in range(cases):
            rng = random.Random(seed * 1_000_003 + case)
            mutated, how = mutator.mutate(rng)
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, budget_s)
            try:
                g = read_model(mutated)
                signal.setitimer(signal.ITIMER_REAL, 0)
                check_graph(g)
                outcomes["graph"] += 1
                if accepted is not None:
                    accepted.append(mutated)
            except ModelError as e:
                signal.setitimer(signal.ITIMER_REAL, 0)
                assert str(e)
                outcomes["error"] += 1
            except _Timeout:
                failures.append(f"seed {seed} case {case} ({'+'.join(how)}): no answer within {budget_s} s")
            except BaseException as e:  # noqa: BLE001 - any other outcome is the bug this test looks for
                signal.setitimer(signal.ITIMER_REAL, 0)
                tb = traceback.extract_tb(e.__traceback__)[-1]
                failures.append(f"seed {seed} case {case} ({'+'.join(how)}): {type(e).__name__}: {e} "
                                f"at {Path(tb.filename).name}:{tb.lineno}")
            slowest = max(slowest, time.perf_counter() - t0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not failures, f"{len(failures)} of {cases} fuzzed models failed:\n" + "\n".join(failures[:20])
    outcomes["slowest"] = slowest
    return outcomes


def corpus_bytes(corpus: str) -> bytes:
    if corpus.startswith("opmix"):  # int8 models made by our converter, committed for the engine's tests
        return (DATA / "native" / f"{corpus}.tflite").read_bytes()
    return {"small": lambda: small_model(), "small_offset_buffers": lambda: small_model(True),
            "efficientnet": efficientnet}[corpus]()


ACCEPTED: dict[str, list[bytes]] = {}  # mutants that read, per corpus: the engine fuzz runs them

FUZZ = [  # (corpus, cases, seed, focus on structure)
    ("small", 3000, 1, False),
    ("small_offset_buffers", 2000, 2, False),
    ("opmix_a", 1200, 5, False),
    ("opmix_b", 1000, 6, False),
    ("efficientnet", 300, 3, True),
]


@pytest.mark.parametrize("corpus, cases, seed, focus", FUZZ, ids=[f[0] for f in FUZZ])
def test_fuzzed_models_read_or_fail_cleanly(corpus, cases, seed, focus):
    data = corpus_bytes(corpus)
    outcome = fuzz(data, cases, seed, focus, accepted=ACCEPTED.setdefault(corpus, []))
    # the fuzzer must reach both outcomes, or it is not testing what it claims
    assert outcome["error"] > cases // 4 and outcome["graph"] > 0, outcome
    assert outcome["slowest"] < 1.0, outcome


# Typed fuzzing: well-formed flatbuffers whose values are wrong. Random fields of the object-API model set to
# values at and around the edges of their types and of the model's own counts.

def _edge_ints(n: int, lo: int, hi: int) -> list[int]:
    vals = {lo, lo + 1, -129, -128, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 127, 128, 255, 256, 32767, 32768, n - 1, n,
            n + 1, hi - 1, hi, 1 << 16, 1 << 30}
    return sorted(v for v in vals if lo <= v <= hi)


I32, U32, I8 = (-(1 << 31), (1 << 31) - 1), (0, (1 << 32) - 1), (-128, 127)
FLOATS = (0.0, -0.0, -1.0, 1e-45, 1e-40, 1.2e-38, 1e-3, 0.5, 1.0, 3.4e38, float("inf"), float("-inf"), float("nan"))


def _ints(rng: random.Random, n: int, rng_type=I32, max_len: int = 8) -> np.ndarray:
    return np.array([rng.choice(_edge_ints(n, *rng_type)) for _ in range(rng.randrange(max_len + 1))], np.int64)


def typed_mutation(m: fb.ModelT, rng: random.Random) -> str:
    sg = m.subgraphs[0]
    nt, nb, no = len(sg.tensors), len(m.buffers), len(sg.operators)
    pick = lambda r=I32, n=nt: rng.choice(_edge_ints(n, *r))  # noqa: E731
    kind = rng.choice(("op_operand", "op_operand", "op_operands", "opcode_index", "options_type", "options_field",
                       "options_none", "shape", "type", "buffer_index", "scale", "zero_point", "qdim", "buffer_data",
                       "buffer_offset", "code", "version", "custom", "graph_ends", "op_order", "is_variable"))
    o = rng.choice(sg.operators)
    t = rng.choice(sg.tensors)
    if kind == "op_operand":
        arr = np.array(rng.choice((o.inputs, o.outputs)) if rng.random() < 0.5 else o.inputs, np.int64)
        if len(arr):
            arr[rng.randrange(len(arr))] = pick()
        setattr(o, rng.choice(("inputs", "outputs")), arr.astype(np.int32))
    elif kind == "op_operands":
        setattr(o, rng.choice(("inputs", "outputs")), _ints(rng, nt).astype(np.int32))
    elif kind == "opcode_index":
        o.opcodeIndex = pick(U32, len(m.operatorCodes))
    elif kind == "options_type":
        o.builtinOptionsType = rng.randrange(0, 130)
    elif kind == "options_field" and o.builtinOptions is not None:
        name = rng.choice([k for k in vars(o.builtinOptions)])
        old = getattr(o.builtinOptions, name)
        if isinstance(old, bool):
            value = not old
        elif isinstance(old, float):
            value = rng.choice(FLOATS)
        elif isinstance(old, int):
            value = pick(I8 if name in ("padding", "fusedActivationFunction", "weightsFormat", "quantizedBiasType")
                         else I32)
        else:
            value = _ints(rng, 6, max_len=10).astype(np.int32)
        setattr(o.builtinOptions, name, value)
    elif kind == "options_none":
        o.builtinOptions = None
    elif kind == "shape":
        t.shape = _ints(rng, 4).astype(np.int32)
    elif kind == "type":
        t.type = pick(I8, 25)
    elif kind == "buffer_index":
        t.buffer = pick(U32, nb)
    elif kind in ("scale", "zero_point", "qdim"):
        q = t.quantization or fb.QuantizationParametersT()
        t.quantization = q
        if kind == "scale":
            q.scale = [rng.choice(FLOATS) for _ in range(rng.randrange(6))] if rng.random() < 0.8 else None
        elif kind == "zero_point":
            q.zeroPoint = list(_ints(rng, 4, (-(1 << 63), (1 << 63) - 1), 5)) if rng.random() < 0.8 else None
        else:
            q.quantizedDimension = pick()
    elif kind == "buffer_data":
        b = rng.choice(m.buffers)
        raw = b"" if b.data is None else bytes(b.data)
        raw = rng.choice((raw[:-1], raw + b"\0", raw * 2, b"", raw[: len(raw) // 2], b"\1"))
        b.data = np.frombuffer(raw, np.uint8) if raw else None
    elif kind == "buffer_offset":
        b = rng.choice(m.buffers)
        b.offset = rng.choice((0, 1, 2, 8, 64, 1 << 32, (1 << 64) - 1))
        b.size = rng.choice((0, 1, 20, 108, 1 << 32, (1 << 64) - 1))
    elif kind == "code":
        c = rng.choice(m.operatorCodes)
        c.builtinCode = rng.choice((-1, 0, 3, 32, 126, 127, 128, 208, 209, 210, 1000, (1 << 31) - 1))
        c.deprecatedBuiltinCode = rng.choice((-128, -1, 0, 3, 32, 126, 127))
    elif kind == "version":
        rng.choice(m.operatorCodes).version = pick()
    elif kind == "custom":
        c = rng.choice(m.operatorCodes)
        c.customCode = rng.choice((None, "", "X", "a" * 300))
        c.builtinCode = c.deprecatedBuiltinCode = 32
    elif kind == "graph_ends":
        setattr(sg, rng.choice(("inputs", "outputs")), _ints(rng, nt, max_len=3).astype(np.int32))
    elif kind == "op_order":
        ops = list(sg.operators)
        i, j = rng.randrange(no), rng.randrange(no)
        if rng.random() < 0.5:
            ops[i], ops[j] = ops[j], ops[i]
        elif rng.random() < 0.5:
            ops.insert(j, ops[i])
        else:
            del ops[i]
        sg.operators = ops
    elif kind == "is_variable":
        t.isVariable = True
    return kind


TYPED_CASES = 700


def typed_fuzz(cases: int, accepted: list) -> dict:
    base = fb.ModelT.InitFromPackedBuf(small_model(), 0)
    outcomes = {"graph": 0, "error": 0, "unpackable": 0}
    failures = []
    for case in range(cases):
        rng = random.Random(4_000_037 + case)
        m = copy.deepcopy(base)
        how = [typed_mutation(m, rng) for _ in range(rng.choice((1, 1, 2, 3)))]
        try:
            data = pack(m)
        except (struct.error, OverflowError, TypeError, ValueError):
            outcomes["unpackable"] += 1  # a value the flatbuffers builder itself refuses
            continue
        try:
            check_graph(read_model(data))
            outcomes["graph"] += 1
            accepted.append(data)
        except ModelError as e:
            assert str(e)
            outcomes["error"] += 1
        except BaseException as e:  # noqa: BLE001
            tb = traceback.extract_tb(e.__traceback__)[-1]
            failures.append(f"case {case} ({'+'.join(how)}): {type(e).__name__}: {e} at "
                            f"{Path(tb.filename).name}:{tb.lineno}")
    assert not failures, f"{len(failures)} typed-fuzz models failed:\n" + "\n".join(failures[:20])
    return outcomes


def test_typed_fuzz_of_a_well_formed_model():
    outcomes = typed_fuzz(TYPED_CASES, ACCEPTED.setdefault("typed", []))
    assert outcomes["error"] > TYPED_CASES // 2 and outcomes["graph"] > 20 and outcomes["unpackable"] < 100, outcomes


def test_every_truncation_of_the_small_model_fails_cleanly():
    data = small_model()
    for cut in range(len(data)):
        try:
            check_graph(read_model(data[:cut]))
        except ModelError:
            pass


# -- 5. fuzzed models that read, on the engine ------------------------------------------------------------------------
# Every mutant the reader accepted must then plan and run on NativeModel, or be refused with ModelError, never
# crash the process: they run in a subprocess (glibc's heap checks on), so a segfault, abort or hang is a
# failure naming the case, not the end of pytest.

ENGINE_WORKER = r"""
import json, sys, traceback
import numpy as np
from edgevision.native.engine import NativeModel
from edgevision.native.graph import ModelError

folder, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(first, last):
    print(json.dumps([i, "start"]), flush=True)
    with open(f"{folder}/{i}.tflite", "rb") as f:
        data = f.read()
    try:
        m = NativeModel(data, threads=1 + i % 2, variant=None if i % 3 else "ref")
        rng = np.random.default_rng(i)
        for k in range(len(m.graph.inputs)):
            view = m.input(k)
            if view.dtype.kind == "f":
                view[...] = rng.standard_normal(view.shape)
            elif view.dtype.kind == "b":
                view[...] = rng.integers(0, 2, view.shape)
            else:
                info = np.iinfo(view.dtype)
                view[...] = rng.integers(max(info.min, -1000), min(info.max, 1000), view.shape, endpoint=True)
        m.invoke()
        m.invoke()
        outs = [m.output(k).copy() for k in range(len(m.graph.outputs))]
        print(json.dumps([i, "ran"]), flush=True)
    except ModelError as e:
        print(json.dumps([i, "refused", str(e)[:200]]), flush=True)
    except BaseException as e:
        tb = traceback.extract_tb(e.__traceback__)[-1]
        print(json.dumps([i, "error", f"{type(e).__name__}: {str(e)[:300]} at {tb.filename}:{tb.lineno}"]),
              flush=True)
"""


def engine_cases() -> list[tuple[str, bytes]]:
    """Mutants the reader accepted (those of the fuzz tests above, or made here when run alone)."""
    for corpus, cases, seed, focus in FUZZ:
        if corpus not in ACCEPTED and corpus != "efficientnet":
            fuzz(corpus_bytes(corpus), cases, seed, focus, accepted=ACCEPTED.setdefault(corpus, []))
    if "typed" not in ACCEPTED:
        typed_fuzz(TYPED_CASES, ACCEPTED.setdefault("typed", []))
    out = []
    for corpus, limit in (("small", 80), ("small_offset_buffers", 30), ("opmix_a", 70), ("opmix_b", 30),
                          ("typed", 120), ("efficientnet", 2)):
        # deduplicated, in a fixed order
        seen = dict.fromkeys(ACCEPTED.get(corpus, []))
        out += [(corpus, d) for d in list(seen)[:limit]]
    return out


def run_engine_worker(folder: Path, first: int, last: int, timeout: float) -> tuple[list, int | None, str]:
    import os
    import subprocess
    import sys

    env = dict(os.environ, MALLOC_CHECK_="3", MALLOC_PERTURB_="165", PYTHONFAULTHANDLER="1")
    root = Path(__file__).resolve().parents[1]
    try:
        p = subprocess.run([sys.executable, "-c", ENGINE_WORKER, str(folder), str(first), str(last)],
                           capture_output=True, text=True, timeout=timeout, cwd=root, env=env)
        out, rc, err = p.stdout, p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc, err = None, "timeout"
    import json
    return [json.loads(line) for line in out.splitlines() if line.startswith("[")], rc, err


def test_fuzzed_models_that_read_run_or_are_refused_on_the_engine(tmp_path):
    from edgevision.native import variants
    try:
        variants.extension()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"the native extension is not built: {e}")
    cases = engine_cases()
    assert len(cases) > 250, len(cases)
    for i, (_corpus, data) in enumerate(cases):
        (tmp_path / f"{i}.tflite").write_bytes(data)
    failures, counts = [], {"ran": 0, "refused": 0}
    first, timeout = 0, 60
    while first < len(cases):
        lines, rc, err = run_engine_worker(tmp_path, first, len(cases), timeout=timeout)
        done = {}
        for rec in lines:
            done[rec[0]] = rec
        last_started = max(done, default=first - 1)
        for i in range(first, last_started + 1):
            rec = done.get(i)
            if rec is None or rec[1] == "start":
                continue
            if rec[1] == "error":
                failures.append(f"case {i} ({cases[i][0]}): {rec[2]}")
            else:
                counts[rec[1]] += 1
        if rc == 0:
            break
        # the worker died (or hung) in the case it started last
        rec = done.get(last_started)
        if rec is not None and rec[1] == "start":
            why = f"hung (no answer in {timeout} s)" if rc is None else f"crashed the process (exit {rc})"
            failures.append(f"case {last_started} ({cases[last_started][0]}): {why}: {err.strip()[-500:]}")
        first = last_started + 1
    assert not failures, f"{len(failures)} of {len(cases)} models that read failed on the engine:\n" + \
        "\n".join(failures[:20])
    assert counts["ran"] > 50 and counts["refused"] > 10, counts
