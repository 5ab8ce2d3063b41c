"""Read a .tflite file into a validated Graph for the native engine, with the standard library and numpy only.

Everything a kernel will rely on is checked here, before any C code sees the model: every tensor and buffer
index is in range, every constant buffer holds exactly the bytes its shape and type need, shapes are static
and positive, quantization parameters are finite and consistent (one scale per channel of the quantized
dimension, zero points in the type's range), and each operator's options table is the one its opcode needs.
A file that fails any check raises ModelError naming the tensor or operator and what was expected; nothing in
a file can make the engine read or write outside its memory.

Slot numbers and enum values come from TFLite's schema.fbs (as generated in ai_edge_litert's
schema_py_generated.py; tests/test_native_loader.py checks them against it).
"""
from __future__ import annotations

import math
import struct
from typing import Any, Optional

import numpy as np

from ..model_info import TFLITE_IDENTIFIER, _FlatBuffer, _Table
from .graph import DTYPES, Graph, ModelError, Operator, Tensor

BUILTIN_OPERATORS = (
    'ADD', 'AVERAGE_POOL_2D', 'CONCATENATION', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'DEPTH_TO_SPACE', 'DEQUANTIZE',
    'EMBEDDING_LOOKUP', 'FLOOR', 'FULLY_CONNECTED', 'HASHTABLE_LOOKUP', 'L2_NORMALIZATION', 'L2_POOL_2D',
    'LOCAL_RESPONSE_NORMALIZATION', 'LOGISTIC', 'LSH_PROJECTION', 'LSTM', 'MAX_POOL_2D', 'MUL', 'RELU',
    'RELU_N1_TO_1', 'RELU6', 'RESHAPE', 'RESIZE_BILINEAR', 'RNN', 'SOFTMAX', 'SPACE_TO_DEPTH', 'SVDF', 'TANH',
    'CONCAT_EMBEDDINGS', 'SKIP_GRAM', 'CALL', 'CUSTOM', 'EMBEDDING_LOOKUP_SPARSE', 'PAD',
    'UNIDIRECTIONAL_SEQUENCE_RNN', 'GATHER', 'BATCH_TO_SPACE_ND', 'SPACE_TO_BATCH_ND', 'TRANSPOSE', 'MEAN', 'SUB',
    'DIV', 'SQUEEZE', 'UNIDIRECTIONAL_SEQUENCE_LSTM', 'STRIDED_SLICE', 'BIDIRECTIONAL_SEQUENCE_RNN', 'EXP',
    'TOPK_V2', 'SPLIT', 'LOG_SOFTMAX', 'DELEGATE', 'BIDIRECTIONAL_SEQUENCE_LSTM', 'CAST', 'PRELU', 'MAXIMUM',
    'ARG_MAX', 'MINIMUM', 'LESS', 'NEG', 'PADV2', 'GREATER', 'GREATER_EQUAL', 'LESS_EQUAL', 'SELECT', 'SLICE',
    'SIN', 'TRANSPOSE_CONV', 'SPARSE_TO_DENSE', 'TILE', 'EXPAND_DIMS', 'EQUAL', 'NOT_EQUAL', 'LOG', 'SUM', 'SQRT',
    'RSQRT', 'SHAPE', 'POW', 'ARG_MIN', 'FAKE_QUANT', 'REDUCE_PROD', 'REDUCE_MAX', 'PACK', 'LOGICAL_OR', 'ONE_HOT',
    'LOGICAL_AND', 'LOGICAL_NOT', 'UNPACK', 'REDUCE_MIN', 'FLOOR_DIV', 'REDUCE_ANY', 'SQUARE', 'ZEROS_LIKE', 'FILL',
    'FLOOR_MOD', 'RANGE', 'RESIZE_NEAREST_NEIGHBOR', 'LEAKY_RELU', 'SQUARED_DIFFERENCE', 'MIRROR_PAD', 'ABS',
    'SPLIT_V', 'UNIQUE', 'CEIL', 'REVERSE_V2', 'ADD_N', 'GATHER_ND', 'COS', 'WHERE', 'RANK', 'ELU',
    'REVERSE_SEQUENCE', 'MATRIX_DIAG', 'QUANTIZE', 'MATRIX_SET_DIAG', 'ROUND', 'HARD_SWISH', 'IF', 'WHILE',
    'NON_MAX_SUPPRESSION_V4', 'NON_MAX_SUPPRESSION_V5', 'SCATTER_ND', 'SELECT_V2', 'DENSIFY', 'SEGMENT_SUM',
    'BATCH_MATMUL', 'PLACEHOLDER_FOR_GREATER_OP_CODES', 'CUMSUM', 'CALL_ONCE', 'BROADCAST_TO', 'RFFT2D', 'CONV_3D',
    'IMAG', 'REAL', 'COMPLEX_ABS', 'HASHTABLE', 'HASHTABLE_FIND', 'HASHTABLE_IMPORT', 'HASHTABLE_SIZE',
    'REDUCE_ALL', 'CONV_3D_TRANSPOSE', 'VAR_HANDLE', 'READ_VARIABLE', 'ASSIGN_VARIABLE', 'BROADCAST_ARGS',
    'RANDOM_STANDARD_NORMAL', 'BUCKETIZE', 'RANDOM_UNIFORM', 'MULTINOMIAL', 'GELU', 'DYNAMIC_UPDATE_SLICE',
    'RELU_0_TO_1', 'UNSORTED_SEGMENT_PROD', 'UNSORTED_SEGMENT_MAX', 'UNSORTED_SEGMENT_SUM', 'ATAN2',
    'UNSORTED_SEGMENT_MIN', 'SIGN', 'BITCAST', 'BITWISE_XOR', 'RIGHT_SHIFT', 'STABLEHLO_LOGISTIC', 'STABLEHLO_ADD',
    'STABLEHLO_DIVIDE', 'STABLEHLO_MULTIPLY', 'STABLEHLO_MAXIMUM', 'STABLEHLO_RESHAPE', 'STABLEHLO_CLAMP',
    'STABLEHLO_CONCATENATE', 'STABLEHLO_BROADCAST_IN_DIM', 'STABLEHLO_CONVOLUTION', 'STABLEHLO_SLICE',
    'STABLEHLO_CUSTOM_CALL', 'STABLEHLO_REDUCE', 'STABLEHLO_ABS', 'STABLEHLO_AND', 'STABLEHLO_COSINE',
    'STABLEHLO_EXPONENTIAL', 'STABLEHLO_FLOOR', 'STABLEHLO_LOG', 'STABLEHLO_MINIMUM', 'STABLEHLO_NEGATE',
    'STABLEHLO_OR', 'STABLEHLO_POWER', 'STABLEHLO_REMAINDER', 'STABLEHLO_RSQRT', 'STABLEHLO_SELECT',
    'STABLEHLO_SUBTRACT', 'STABLEHLO_TANH', 'STABLEHLO_SCATTER', 'STABLEHLO_COMPARE', 'STABLEHLO_CONVERT',
    'STABLEHLO_DYNAMIC_SLICE', 'STABLEHLO_DYNAMIC_UPDATE_SLICE', 'STABLEHLO_PAD', 'STABLEHLO_IOTA',
    'STABLEHLO_DOT_GENERAL', 'STABLEHLO_REDUCE_WINDOW', 'STABLEHLO_SORT', 'STABLEHLO_WHILE', 'STABLEHLO_GATHER',
    'STABLEHLO_TRANSPOSE', 'DILATE', 'STABLEHLO_RNG_BIT_GENERATOR', 'REDUCE_WINDOW', 'STABLEHLO_COMPOSITE',
    'STABLEHLO_SHIFT_LEFT', 'STABLEHLO_CBRT', 'STABLEHLO_CASE',
)
TENSOR_TYPES =  ('FLOAT32', 'FLOAT16', 'INT32', 'UINT8', 'INT64', 'STRING', 'BOOL', 'INT16', 'COMPLEX64', 'INT8', 'FLOAT64', 'COMPLEX128', 'UINT64', 'RESOURCE', 'VARIANT', 'UINT32', 'UINT16', 'INT4', 'BFLOAT16', 'INT2', 'UINT4', 'FLOAT8_E4M3FN', 'FLOAT8_E5M2')
PADDINGS = ("SAME", "VALID")
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")

# schema slots
_MODEL_VERSION, _MODEL_OPCODES, _MODEL_SUBGRAPHS, _MODEL_BUFFERS = 0, 1, 2, 4
_OPCODE_DEPRECATED, _OPCODE_CUSTOM, _OPCODE_VERSION, _OPCODE_BUILTIN = 0, 1, 2, 3
_SG_TENSORS, _SG_INPUTS, _SG_OUTPUTS, _SG_OPERATORS = 0, 1, 2, 3
_T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT, _T_IS_VARIABLE, _T_SPARSITY, _T_SHAPE_SIG = 0, 1, 2, 3, 4, 5, 6, 7
_T_VARIANT_TENSORS, _T_EXTERNAL_BUFFER = 9, 10
_Q_SCALE, _Q_ZERO_POINT, _Q_DETAILS_TYPE, _Q_DIM = 2, 3, 4, 6
_OP_OPCODE, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS_TYPE, _OP_OPTIONS, _OP_CUSTOM = 0, 1, 2, 3, 4, 5
_OP_INTERMEDIATES, _OP_OPTIONS2_TYPE = 8, 11
_BUF_DATA, _BUF_OFFSET, _BUF_SIZE = 0, 1, 2

# Options tables the engine reads: BuiltinOptions union index and fields as (slot, name, struct format, default,
# enum names or None). Opcodes listed in NO_OPTIONS take no options (an options table, if present, is ignored).
_CONV = ("Conv2DOptions", 1, ((0, "padding", "b", 0, PADDINGS), (1, "stride_w", "i", 0, None),
                              (2, "stride_h", "i", 0, None), (3, "fused_activation_function", "b", 0, ACTIVATIONS),
                              (4, "dilation_w_factor", "i", 1, None), (5, "dilation_h_factor", "i", 1, None),
                              (6, "quantized_bias_type", "b", 0, None)))
_DEPTHWISE = ("DepthwiseConv2DOptions", 2, (
    (0, "padding", "b", 0, PADDINGS), (1, "stride_w", "i", 0, None), (2, "stride_h", "i", 0, None),
    (3, "depth_multiplier", "i", 0, None), (4, "fused_activation_function", "b", 0, ACTIVATIONS),
    (5, "dilation_w_factor", "i", 1, None), (6, "dilation_h_factor", "i", 1, None)))
_FC = ("FullyConnectedOptions", 8, (
    (0, "fused_activation_function", "b", 0, ACTIVATIONS), (1, "weights_format", "b", 0, ("DEFAULT", "SHUFFLED4x16INT8")),
    (2, "keep_num_dims", "?", False, None), (3, "asymmetric_quantize_inputs", "?", False, None),
    (4, "quantized_bias_type", "b", 0, None)))
_POOL = ("Pool2DOptions", 5, ((0, "padding", "b", 0, PADDINGS), (1, "stride_w", "i", 0, None),
                              (2, "stride_h", "i", 0, None), (3, "filter_width", "i", 0, None),
                              (4, "filter_height", "i", 0, None), (5, "fused_activation_function", "b", 0, ACTIVATIONS)))
OPTIONS: dict[str, tuple[str, int, tuple]] = {
    "CONV_2D": _CONV,
    "DEPTHWISE_CONV_2D": _DEPTHWISE,
    "FULLY_CONNECTED": _FC,
    "ADD": ("AddOptions", 11, ((0, "fused_activation_function", "b", 0, ACTIVATIONS),
                               (1, "pot_scale_int16", "?", True, None))),
    "MUL": ("MulOptions", 21, ((0, "fused_activation_function", "b", 0, ACTIVATIONS),)),
    "AVERAGE_POOL_2D": _POOL,
    "MAX_POOL_2D": _POOL,
    "MEAN": ("ReducerOptions", 27, ((0, "keep_dims", "?", False, None),)),
    "RESHAPE": ("ReshapeOptions", 17, ((0, "new_shape", "[i", None, None),)),
    "SQUEEZE": ("SqueezeOptions", 30, ((0, "squeeze_dims", "[i", None, None),)),
    "CONCATENATION": ("ConcatenationOptions", 10, ((0, "axis", "i", 0, None),
                                                   (1, "fused_activation_function", "b", 0, ACTIVATIONS))),
    "SOFTMAX": ("SoftmaxOptions", 9, ((0, "beta", "f", 0.0, None),)),
    "RESIZE_BILINEAR": ("ResizeBilinearOptions", 15, ((2, "align_corners", "?", False, None),
                                                      (3, "half_pixel_centers", "?", False, None))),
    "RESIZE_NEAREST_NEIGHBOR": ("ResizeNearestNeighborOptions", 74, ((0, "align_corners", "?", False, None),
                                                                     (1, "half_pixel_centers", "?", False, None))),
}
NO_OPTIONS = ("PAD", "PADV2", "EXPAND_DIMS", "LOGISTIC", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE", "RELU", "RELU6")

_MAX_RANK = 6
_MAX_ELEMENTS = 1 << 31  # no tensor of an image model comes near this; larger is a corrupt or hostile file


def read_model(data: bytes) -> Graph:
    """Parse and validate a .tflite flatbuffer (the first subgraph). Raises ModelError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"read_model() takes the model's bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        return _read(data)
    except ModelError:
        raise
    except ValueError as e:  # _FlatBuffer's structural errors
        raise ModelError(str(e).replace("malformed TFLite model", "malformed TFLite model", 1)) from None


def _read(data: bytes) -> Graph:
    fb = _FlatBuffer(data, "TFLite model")
    model = fb.root(TFLITE_IDENTIFIER)
    version = model.scalar(_MODEL_VERSION, "I", 0)
    if version != 3:
        raise ModelError(f"TFLite schema version {version}; the native engine reads version 3 (TFLite 2.x)")
    subgraphs = model.vector(_MODEL_SUBGRAPHS, "subgraphs")
    if subgraphs is None or len(subgraphs) == 0:
        raise ModelError("malformed TFLite model: it has no subgraph")
    buffers = model.vector(_MODEL_BUFFERS, "buffers")
    n_buffers = 0 if buffers is None else len(buffers)
    opcodes = _read_opcodes(model)
    sg = subgraphs.table(0)
    tvec = sg.vector(_SG_TENSORS, "tensors")
    n_tensors = 0 if tvec is None else len(tvec)
    tensors = tuple(_read_tensor(tvec.table(i), i, buffers, n_buffers, data) for i in range(n_tensors))

    def indices(values, what: str, allow_optional: bool) -> tuple[int, ...]:
        for v in values:
            if not (0 <= v < n_tensors or (allow_optional and v == -1)):
                raise ModelError(f"malformed TFLite model: {what} names tensor {v}, but the subgraph has "
                                 f"{n_tensors} tensors")
        return tuple(values)

    inputs = indices(sg.scalars(_SG_INPUTS, "i", "inputs") or (), "the subgraph's inputs", False)
    outputs = indices(sg.scalars(_SG_OUTPUTS, "i", "outputs") or (), "the subgraph's outputs", False)
    if not inputs or not outputs:
        raise ModelError("malformed TFLite model: the subgraph declares no inputs or no outputs")
    for t in inputs:
        if tensors[t].is_constant:
            raise ModelError(f"malformed TFLite model: input {tensors[t].describe()} is a constant")
    ovec = sg.vector(_SG_OPERATORS, "operators")
    operators = []
    written: set[int] = set(inputs)
    for i in range(0 if ovec is None else len(ovec)):
        t = ovec.table(i)
        idx = t.scalar(_OP_OPCODE, "I", 0)
        if idx >= len(opcodes):
            raise ModelError(f"malformed TFLite model: operator {i} uses opcode {idx}, but the model has "
                             f"{len(opcodes)} opcodes")
        name, op_version = opcodes[idx]
        where = f"operator {i} ({name})"
        ins = indices(t.scalars(_OP_INPUTS, "i", "inputs") or (), f"{where} input", True)
        outs = indices(t.scalars(_OP_OUTPUTS, "i", "outputs") or (), f"{where} output", False)
        if not outs:
            raise ModelError(f"malformed TFLite model: {where} has no output")
        for x in ins:
            if x >= 0 and not tensors[x].is_constant and x not in written:
                raise ModelError(f"{where} reads {tensors[x].describe()} before any operator writes it "
                                 "(operators must be in execution order, as TFLite writes them)")
        for x in outs:
            if tensors[x].is_constant:
                raise ModelError(f"malformed TFLite model: {where} writes constant {tensors[x].describe()}")
            if x in written:
                raise ModelError(f"{where} writes {tensors[x].describe()}, which is already written "
                                 "(by an input or an earlier operator)")
            written.add(x)
        options = _read_options(t, name, where)
        operators.append(Operator(i, name, op_version, ins, outs, options))
    for t in outputs:
        if t not in written and not tensors[t].is_constant:
            raise ModelError(f"malformed TFLite model: output {tensors[t].describe()} is never written")
    return Graph(tensors, tuple(operators), inputs, outputs)


def _read_opcodes(model: _Table) -> list[tuple[str, int]]:
    vec = model.vector(_MODEL_OPCODES, "operator_codes")
    out = []
    for i in range(0 if vec is None else len(vec)):
        t = vec.table(i)
        code = max(t.scalar(_OPCODE_DEPRECATED, "b", 0), t.scalar(_OPCODE_BUILTIN, "i", 0))
        version = t.scalar(_OPCODE_VERSION, "i", 1)
        if code == 32:  # CUSTOM
            custom = t.string(_OPCODE_CUSTOM, "custom_code") or "?"
            name = f"CUSTOM:{custom}"
        elif 0 <= code < len(BUILTIN_OPERATORS):
            name = BUILTIN_OPERATORS[code]
        else:
            name = f"BUILTIN_{code}"
        if version < 1:
            raise ModelError(f"malformed TFLite model: opcode {i} ({name}) has version {version}")
        out.append((name, version))
    return out


def _read_tensor(t: _Table, index: int, buffers, n_buffers: int, data: bytes) -> Tensor:
    name = t.string(_T_NAME, "name") or ""
    label = f"tensor {index} ({name!r})"
    type_code = t.scalar(_T_TYPE, "b", 0)
    dtype = TENSOR_TYPES[type_code] if 0 <= type_code < len(TENSOR_TYPES) else f"type {type_code}"
    if dtype not in DTYPES:
        raise ModelError(f"{label} has element type {dtype}; the native engine holds "
                         f"{', '.join(DTYPES)}")
    shape = t.scalars(_T_SHAPE, "i", "shape")
    shape = tuple(shape) if shape is not None else ()
    if len(shape) > _MAX_RANK:
        raise ModelError(f"{label} has rank {len(shape)}; at most {_MAX_RANK} is supported")
    if any(d < 1 for d in shape):
        raise ModelError(f"{label} has shape {list(shape)}: every dimension must be ≥ 1 (the native engine runs "
                         "static shapes; fix dynamic sizes when converting, e.g. --input-size)")
    signature = t.scalars(_T_SHAPE_SIG, "i", "shape_signature")
    if signature is not None and any(d < 0 for d in signature) and index >= 0:
        # -1 in the signature only says the size was dynamic when converted; the stored shape is what runs
        pass
    size = math.prod(shape) if shape else 1
    if size > _MAX_ELEMENTS:
        raise ModelError(f"{label} has {size} elements (shape {list(shape)}); that is not an image model")
    if t.table(_T_SPARSITY, "sparsity") is not None:
        raise ModelError(f"{label} is sparse; the native engine runs dense tensors only")
    if t.scalar(_T_IS_VARIABLE, "?", False):
        raise ModelError(f"{label} is a variable (stateful) tensor; the native engine runs stateless models")
    if t.scalar(_T_EXTERNAL_BUFFER, "I", 0):
        raise ModelError(f"{label} refers to an external buffer; the native engine reads self-contained files")
    scale, zero_point, qdim = _read_quant(t, label, dtype, shape)
    buffer_index = t.scalar(_T_BUFFER, "I", 0)
    if buffer_index >= max(n_buffers, 1) and buffer_index != 0:
        raise ModelError(f"malformed TFLite model: {label} uses buffer {buffer_index}, but the model has "
                         f"{n_buffers} buffers")
    payload: Optional[bytes] = None
    if buffer_index and buffers is not None:
        raw = _buffer_bytes(buffers.table(buffer_index), buffer_index, data)
        if raw:
            need = size * np.dtype(DTYPES[dtype]).itemsize
            if len(raw) != need:
                raise ModelError(f"malformed TFLite model: {label} is {dtype}{list(shape)} = {need} bytes, but its "
                                 f"buffer {buffer_index} holds {len(raw)} bytes")
            payload = raw
    return Tensor(index, name, shape, dtype, scale, zero_point, qdim, payload)


def _read_quant(t: _Table, label: str, dtype: str, shape: tuple) -> tuple[tuple, tuple, int]:
    q = t.table(_T_QUANT, "quantization")
    if q is None:
        return (), (), 0
    if q.scalar(_Q_DETAILS_TYPE, "B", 0) != 0:
        raise ModelError(f"{label} uses custom/blockwise quantization details; the native engine supports "
                         "per-tensor and per-channel affine quantization")
    scale = q.scalars(_Q_SCALE, "f", "scale") or ()
    zero_point = q.scalars(_Q_ZERO_POINT, "q", "zero_point") or ()
    qdim = q.scalar(_Q_DIM, "i", 0)
    if not scale:
        if zero_point and any(zero_point):
            raise ModelError(f"{label} has zero points but no scales")
        return (), (), 0
    if not all(math.isfinite(s) and s > 0 for s in scale):
        raise ModelError(f"{label} has quantization scales {list(scale)[:8]}: every scale must be finite and > 0")
    if len(zero_point) not in (0, len(scale)):
        raise ModelError(f"{label} has {len(scale)} scales but {len(zero_point)} zero points")
    if not zero_point:
        zero_point = (0,) * len(scale)
    lo, hi = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767)}.get(dtype, (-(2 ** 31), 2 ** 31 - 1))
    if dtype in ("INT8", "UINT8", "INT16") and not all(lo <= z <= hi for z in zero_point):
        raise ModelError(f"{label} has zero points {list(zero_point)[:8]} outside the {dtype} range [{lo}, {hi}]")
    if len(scale) > 1:
        if not 0 <= qdim < len(shape) or shape[qdim] != len(scale):
            raise ModelError(f"{label} has {len(scale)} per-channel scales on dimension {qdim}, but its shape is "
                             f"{list(shape)}: expected one scale per element of that dimension")
    return tuple(float(s) for s in scale), tuple(int(z) for z in zero_point), int(qdim)


def _buffer_bytes(buf: _Table, index: int, data: bytes) -> bytes:
    offset = buf.scalar(_BUF_OFFSET, "Q", 0)
    if offset > 1:
        size = buf.scalar(_BUF_SIZE, "Q", 0)
        if offset + size > len(data):
            raise ModelError(f"malformed TFLite model: buffer {index} is {size} bytes at file offset {offset}, "
                             f"past the end of the {len(data)}-byte file")
        return data[offset:offset + size]
    return buf.byte_vector(_BUF_DATA, "data") or b""


def _read_options(t: _Table, opcode: str, where: str) -> dict[str, Any]:
    spec = OPTIONS.get(opcode)
    if spec is None:
        return {}
    table_name, union_index, fields = spec
    kind = t.scalar(_OP_OPTIONS_TYPE, "B", 0)
    table = t.table(_OP_OPTIONS, "builtin_options")
    if table is not None and kind != union_index:
        raise ModelError(f"malformed TFLite model: {where} carries options of union type {kind}, expected "
                         f"{table_name} ({union_index})")
    options: dict[str, Any] = {}
    for slot, name, fmt, default, enum in fields:
        if fmt == "[i":
            value = None if table is None else table.scalars(slot, "i", name)
            options[name] = None if value is None else tuple(value)
            continue
        value = default if table is None else table.scalar(slot, fmt, default)
        if enum is not None:
            if not 0 <= value < len(enum) or enum[value] is None:
                raise ModelError(f"malformed TFLite model: {where} option {name} = {value} is not a valid value")
            value = enum[value]
        if fmt == "f":
            value = float(value)
        options[name] = value
    return options
