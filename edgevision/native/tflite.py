"""Read a .tflite file into a validated Graph for the native engine, with the standard library and numpy only.

Everything a kernel will rely on is checked here, before any C code sees the model: every tensor, buffer and
operator-code index is in range, every constant buffer holds exactly the bytes its shape and type need, shapes
are static, positive, of rank <= 6 and at most 1 GiB (so sizes and offsets fit int32), quantization parameters
are finite, normal and consistent (a zero point per scale, one scale per channel of the quantized dimension,
zero points in the type's range), operator codes are known builtins (the int8 deprecated_builtin_code and the
int32 builtin_code agree) with versions >= 1, each operator of a kind the engine runs has the operand counts
TFLite's kernel accepts, and its options table is the one its opcode needs, with valid enum values and strides,
dilations and filter sizes >= 1. Operators must be in execution order (each reads only subgraph inputs,
constants and what earlier operators wrote; each tensor is written once), and every subgraph output is written.
A file that fails any check raises ModelError naming the tensor or operator, what it holds and what was
expected; nothing in a file can make the reader fail another way or take long. Per-operator limits (which
versions, types and shapes an op accepts) are the op preparers' (ops/*.py); operator versions are recorded here
for them.

Only the first subgraph is read (the engine runs no control flow). The reader visits at most about twice the
file's size in tables and vectors, so a file whose offsets make tables share data over and over fails fast.

Slot numbers and enum values come from TFLite's schema.fbs (as generated in ai_edge_litert's
schema_py_generated.py; tests/test_native_loader.py checks them against it).
"""
from __future__ import annotations

import math
import struct
from typing import Any, Optional

import numpy as np

from ..model_info import TFLITE_IDENTIFIER, _FlatBuffer, _Table
from .graph import DTYPES, Graph, ModelError, Operator, Tensor, _short

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
TENSOR_TYPES = ('FLOAT32', 'FLOAT16', 'INT32', 'UINT8', 'INT64', 'STRING', 'BOOL', 'INT16', 'COMPLEX64', 'INT8',
                'FLOAT64', 'COMPLEX128', 'UINT64', 'RESOURCE', 'VARIANT', 'UINT32', 'UINT16', 'INT4', 'BFLOAT16',
                'INT2', 'UINT4', 'FLOAT8_E4M3FN', 'FLOAT8_E5M2')
PADDINGS = ("SAME", "VALID")
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
WEIGHTS_FORMATS = ("DEFAULT", "SHUFFLED4x16INT8")

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

_CUSTOM = 32        # BuiltinOperator.CUSTOM
_PLACEHOLDER = 127  # BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES: the int8 deprecated_builtin_code's ceiling

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
    (0, "fused_activation_function", "b", 0, ACTIVATIONS), (1, "weights_format", "b", 0, WEIGHTS_FORMATS),
    (2, "keep_num_dims", "?", False, None), (3, "asymmetric_quantize_inputs", "?", False, None),
    (4, "quantized_bias_type", "b", 0, None)))
_POOL = ("Pool2DOptions", 5, ((0, "padding", "b", 0, PADDINGS), (1, "stride_w", "i", 0, None),
                              (2, "stride_h", "i", 0, None), (3, "filter_width", "i", 0, None),
                              (4, "filter_height", "i", 0, None),
                              (5, "fused_activation_function", "b", 0, ACTIVATIONS)))
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
# Option values no TFLite kernel accepts (a stride of 0 divides by zero): must be >= 1.
_AT_LEAST_ONE = frozenset(("stride_w", "stride_h", "dilation_w_factor", "dilation_h_factor", "filter_width",
                           "filter_height"))

# Operands of the operators the engine runs, as TFLite's kernels accept them: input names (a trailing "?" marks
# an optional input, which may be left out at the end or given as -1; "*" any number >= 1) and the range of
# output counts.
OPERANDS: dict[str, tuple[tuple[str, ...], tuple[int, int]]] = {
    "CONV_2D": (("input", "filter", "bias?"), (1, 1)),
    "DEPTHWISE_CONV_2D": (("input", "filter", "bias?"), (1, 1)),
    "FULLY_CONNECTED": (("input", "weights", "bias?"), (1, 2)),
    "ADD": (("x", "y"), (1, 1)),
    "MUL": (("x", "y"), (1, 1)),
    "AVERAGE_POOL_2D": (("input",), (1, 1)),
    "MAX_POOL_2D": (("input",), (1, 1)),
    "MEAN": (("input", "axis"), (1, 1)),
    "RESHAPE": (("input", "shape?"), (1, 1)),
    "SQUEEZE": (("input",), (1, 1)),
    "CONCATENATION": (("*",), (1, 1)),
    "SOFTMAX": (("input",), (1, 1)),
    "RESIZE_BILINEAR": (("input", "size"), (1, 1)),
    "RESIZE_NEAREST_NEIGHBOR": (("input", "size"), (1, 1)),
    "PAD": (("input", "paddings", "constant_values?"), (1, 1)),
    "PADV2": (("input", "paddings", "constant_values?"), (1, 1)),
    "EXPAND_DIMS": (("input", "axis"), (1, 1)),
    **{op: (("input",), (1, 1)) for op in ("LOGISTIC", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE", "RELU", "RELU6")},
}

_MAX_RANK = 6
_MAX_TENSOR_BYTES = 1 << 30  # 1 GiB: far beyond any image model; keeps every offset and size an int32
_MAX_TENSORS = 1 << 16       # per subgraph; real image models have hundreds
_MAX_OPERATORS = 1 << 16
_MAX_OPCODES = 1 << 12
_MAX_OPERANDS = 1 << 10      # inputs or outputs of one operator
_FLT_MIN = 2.0 ** -126       # smallest normal float32: a smaller scale is no quantizer's output; 1/scale overflows
_ZERO_POINT_RANGES = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767),
                      "INT32": (-(1 << 31), (1 << 31) - 1)}
_OTHER_BACKEND = "run it with --backend litert"


def read_model(data: bytes) -> Graph:
    """Parse and validate a .tflite flatbuffer (the first subgraph). Raises ModelError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"read_model() takes the model's bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        return _Reader(data).graph()
    except ModelError:
        raise
    except ValueError as e:  # _FlatBuffer's structural errors outside any tensor or operator
        raise ModelError(str(e)) from None


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        # twice the file: a well-formed file is read once over; see _FlatBuffer.budget
        self.fb = _FlatBuffer(data, "TFLite model", budget=2 * len(data) + 4096)
        self.buffer_cache: dict[int, bytes] = {}

    def graph(self) -> Graph:
        fb = self.fb
        if len(self.data) >= 8 and self.data[4:8] != TFLITE_IDENTIFIER:
            raise ModelError(f"not a TFLite model: its file identifier (bytes 4-7) is {self.data[4:8]!r}, "
                             f"expected {TFLITE_IDENTIFIER!r}; give the native engine a .tflite file")
        model = fb.root(TFLITE_IDENTIFIER)
        version = model.scalar(_MODEL_VERSION, "I", 0)
        if version != 3:
            raise ModelError(f"TFLite schema version {version}; the native engine reads version 3 (TFLite 2.x "
                             "files); convert the model again with a current converter")
        subgraphs = model.vector(_MODEL_SUBGRAPHS, "subgraphs")
        if subgraphs is None or len(subgraphs) == 0:
            raise ModelError("malformed TFLite model: it has no subgraph")
        self.buffers = model.vector(_MODEL_BUFFERS, "buffers")
        self.n_buffers = 0 if self.buffers is None else len(self.buffers)
        opcodes = self.read_opcodes(model)
        sg = subgraphs.table(0)

        tvec = sg.vector(_SG_TENSORS, "tensors")
        n_tensors = 0 if tvec is None else len(tvec)
        if n_tensors == 0:
            raise ModelError("malformed TFLite model: the subgraph has no tensors")
        if n_tensors > _MAX_TENSORS:
            raise ModelError(f"the subgraph has {n_tensors} tensors; the native engine takes at most {_MAX_TENSORS} "
                             "(it runs image models, which have hundreds)")
        tensors = []
        for i in range(n_tensors):
            try:
                tensors.append(self.read_tensor(tvec.table(i), i))
            except ModelError:
                raise
            except ValueError as e:
                raise ModelError(f"tensor {i}: {e}") from None
        self.tensors = tensors = tuple(tensors)

        inputs = self.graph_ends(sg, _SG_INPUTS, "inputs")
        outputs = self.graph_ends(sg, _SG_OUTPUTS, "outputs")
        for t in inputs:
            if tensors[t].is_constant:
                raise ModelError(f"malformed TFLite model: subgraph input {tensors[t].describe()} has constant data "
                                 "in the file; an input must be an empty (non-constant) tensor")
        ovec = sg.vector(_SG_OPERATORS, "operators")
        n_ops = 0 if ovec is None else len(ovec)
        if n_ops == 0:
            raise ModelError("the model's subgraph has no operators: there is nothing to run")
        if n_ops > _MAX_OPERATORS:
            raise ModelError(f"the subgraph has {n_ops} operators; the native engine takes at most {_MAX_OPERATORS} "
                             "(it runs image models, which have hundreds)")
        if opcodes is None:
            raise ModelError(f"malformed TFLite model: it has {n_ops} operators but no operator_codes table "
                             "(the list of operator kinds they index)")
        operators = []
        written: set[int] = set(inputs)
        for i in range(n_ops):
            try:
                operators.append(self.read_operator(ovec.table(i), i, opcodes, written))
            except ModelError:
                raise
            except ValueError as e:
                raise ModelError(f"operator {i}: {e}") from None
        for t in outputs:
            if tensors[t].is_constant:
                raise ModelError(f"subgraph output {tensors[t].describe()} is a constant stored in the file; the "
                                 "native engine only returns tensors its operators compute")
            if t not in written:
                raise ModelError(f"malformed TFLite model: subgraph output {tensors[t].describe()} is never written: "
                                 "no operator has it as an output and it is not an input")
        return Graph(tensors, tuple(operators), inputs, outputs)

    def graph_ends(self, sg: _Table, slot: int, what: str) -> tuple[int, ...]:
        values = _int_vector(sg, slot, what, len(self.tensors), f"malformed TFLite model: the subgraph lists {{n}} "
                             f"{what}, but has only {len(self.tensors)} tensors")
        if not values:
            raise ModelError(f"malformed TFLite model: the subgraph declares no {what}")
        n = len(self.tensors)
        for k, v in enumerate(values):
            if not 0 <= v < n:
                raise ModelError(f"malformed TFLite model: subgraph {what[:-1]} {k} is tensor {v}, but the subgraph "
                                 f"has {n} tensors{_range(n)}")
        if len(set(values)) != len(values):
            raise ModelError(f"malformed TFLite model: the subgraph's {what} {list(values)[:16]} name a tensor "
                             "twice")
        return values

    # -- operator codes ------------------------------------------------------------------------------------------
    def read_opcodes(self, model: _Table) -> Optional[list[tuple[str, int]]]:
        vec = model.vector(_MODEL_OPCODES, "operator_codes")
        if vec is None:
            return None
        if len(vec) > _MAX_OPCODES:
            raise ModelError(f"the model has {len(vec)} operator codes; the native engine takes at most "
                             f"{_MAX_OPCODES}")
        out = []
        for i in range(len(vec)):
            try:
                out.append(_read_opcode(vec.table(i), i))
            except ModelError:
                raise
            except ValueError as e:
                raise ModelError(f"operator code {i}: {e}") from None
        return out

    # -- tensors -------------------------------------------------------------------------------------------------
    def read_tensor(self, t: _Table, index: int) -> Tensor:
        name = t.string(_T_NAME, "name") or ""
        label = f"tensor {index} ({_short(name)!r})"
        try:
            return self._read_tensor(t, index, name, label)
        except ModelError:
            raise
        except ValueError as e:
            raise ModelError(f"{label}: {e}") from None

    def _read_tensor(self, t: _Table, index: int, name: str, label: str) -> Tensor:
        type_code = t.scalar(_T_TYPE, "b", 0)
        dtype = TENSOR_TYPES[type_code] if 0 <= type_code < len(TENSOR_TYPES) else f"type {type_code}"
        if dtype not in DTYPES:
            known = "" if 0 <= type_code < len(TENSOR_TYPES) else " (not a TensorType this reader knows)"
            raise ModelError(f"{label} has element type {dtype}{known}; the native engine holds "
                             f"{', '.join(DTYPES)} tensors: {_OTHER_BACKEND}")
        shape = _int_vector(t, _T_SHAPE, "shape", _MAX_RANK, f"{label} has a shape of rank {{n}}; at most {_MAX_RANK} "
                            "dimensions are supported")
        if any(d < 1 for d in shape):
            raise ModelError(f"{label} has shape {list(shape)}: every dimension must be >= 1 (the native engine "
                             "runs static, non-empty shapes; fix dynamic sizes when converting, e.g. --input-size)")
        size = math.prod(shape)
        nbytes = size * np.dtype(DTYPES[dtype]).itemsize
        if nbytes > _MAX_TENSOR_BYTES:
            raise ModelError(f"{label} is {dtype}{list(shape)} = {nbytes} bytes; the native engine takes tensors of "
                             f"at most {_MAX_TENSOR_BYTES} bytes")
        if t.table(_T_SPARSITY, "sparsity") is not None:
            raise ModelError(f"{label} is sparse; the native engine runs dense tensors only: {_OTHER_BACKEND}")
        if t.scalar(_T_IS_VARIABLE, "?", False):
            raise ModelError(f"{label} is a variable (stateful) tensor; the native engine runs stateless models: "
                             f"{_OTHER_BACKEND}")
        if t.scalar(_T_EXTERNAL_BUFFER, "I", 0):
            raise ModelError(f"{label} refers to an external buffer (data kept outside the .tflite file); the "
                             "native engine reads self-contained files")
        scale, zero_point, qdim = self.read_quant(t, label, dtype, shape)
        buffer_index = t.scalar(_T_BUFFER, "I", 0)
        payload = None
        if buffer_index != 0:
            if buffer_index >= self.n_buffers:
                raise ModelError(f"malformed TFLite model: {label} uses buffer {buffer_index}, but the model has "
                                 f"{self.n_buffers} buffers{_range(self.n_buffers)}")
            raw = self.buffer(buffer_index, label)
            if raw:
                if len(raw) != nbytes:
                    raise ModelError(f"malformed TFLite model: {label} is {dtype}{list(shape)} = {nbytes} bytes, but "
                                     f"its buffer {buffer_index} holds {len(raw)} bytes")
                payload = raw
        return Tensor(index, name, shape, dtype, scale, zero_point, qdim, payload)

    def buffer(self, index: int, label: str) -> bytes:
        """A Buffer's bytes (b"" when empty): inline `data`, or at `offset` in the file for >2 GB models. Cached,
        so tensors sharing a buffer share one copy (and a file cannot make the reader copy one many times)."""
        raw = self.buffer_cache.get(index)
        if raw is None:
            try:
                raw = self._buffer(index, label)
            except ModelError:
                raise
            except ValueError as e:
                raise ModelError(f"{label}: buffer {index}: {e}") from None
            self.buffer_cache[index] = raw
        return raw

    def _buffer(self, index: int, label: str) -> bytes:
        buf = self.buffers.table(index)
        offset = buf.scalar(_BUF_OFFSET, "Q", 0)
        if offset > 1:  # the schema: offset is only meaningful when > 1
            size = buf.scalar(_BUF_SIZE, "Q", 0)
            if offset + size > len(self.data):
                raise ModelError(f"malformed TFLite model: {label} uses buffer {index}, which is {size} bytes at file "
                                 f"offset {offset}, past the end of the {len(self.data)}-byte file")
            self.fb.charge(size, f"buffer {index}")
            return self.data[offset:offset + size]
        return buf.byte_vector(_BUF_DATA, "data") or b""

    def read_quant(self, t: _Table, label: str, dtype: str, shape: tuple) -> tuple[tuple, tuple, int]:
        q = t.table(_T_QUANT, "quantization")
        if q is None:
            return (), (), 0
        details = q.scalar(_Q_DETAILS_TYPE, "B", 0)
        if details != 0:
            raise ModelError(f"{label} uses quantization details of union type {details} (custom, blockwise or "
                             "multi-axis); the native engine supports per-tensor and per-channel affine "
                             f"quantization: {_OTHER_BACKEND}")
        scale = _array(q, _Q_SCALE, "<f4", "scale")
        zero_point = _array(q, _Q_ZERO_POINT, "<i8", "zero_point")
        qdim = q.scalar(_Q_DIM, "i", 0)
        if scale is None or len(scale) == 0:
            # TFLite reads such a tensor as not quantized, whatever else the table holds
            return (), (), 0
        n = len(scale)
        if zero_point is None or len(zero_point) != n:
            got = "no" if zero_point is None else len(zero_point)
            raise ModelError(f"malformed TFLite model: {label} has {n} quantization scales but {got} zero points; "
                             "they come in pairs")
        if not (np.isfinite(scale).all() and (scale >= _FLT_MIN).all()):
            bad = [float(s) for s in scale if not (math.isfinite(s) and s >= _FLT_MIN)]
            raise ModelError(f"{label} has quantization scale {bad[0]!r}: every scale must be finite and at least "
                             f"{_FLT_MIN:.3g} (a normal float32)")
        lo, hi = _ZERO_POINT_RANGES.get(dtype, (-(1 << 63), (1 << 63) - 1))
        zmin, zmax = int(zero_point.min()), int(zero_point.max())
        if zmin < lo or zmax > hi:
            bad = zmin if zmin < lo else zmax
            raise ModelError(f"{label} has zero point {bad}, outside the {dtype} range [{lo}, {hi}]")
        rank = len(shape)
        if not (0 <= qdim < rank or qdim == rank == 0):
            raise ModelError(f"malformed TFLite model: {label} has quantized_dimension {qdim}, but its shape "
                             f"{list(shape)} has {rank} dimensions (expected 0..{max(rank - 1, 0)})")
        if n != 1 and (rank == 0 or shape[qdim] != n):
            channels = shape[qdim] if rank else 1
            raise ModelError(f"{label} has {n} per-channel scales on dimension {qdim}, but that dimension of its "
                             f"shape {list(shape)} is {channels}: expected 1 scale (per-tensor) or {channels} "
                             "(one per channel)")
        return tuple(scale.tolist()), tuple(zero_point.tolist()), qdim

    # -- operators -----------------------------------------------------------------------------------------------
    def read_operator(self, t: _Table, i: int, opcodes: list, written: set) -> Operator:
        idx = t.scalar(_OP_OPCODE, "I", 0)
        if idx >= len(opcodes):
            raise ModelError(f"malformed TFLite model: operator {i} uses operator code {idx}, but the model has "
                             f"{len(opcodes)} operator codes{_range(len(opcodes))}")
        name, op_version = opcodes[idx]
        where = f"operator {i} ({_short(name)} v{op_version})"
        try:
            return self._read_operator(t, i, name, op_version, where, written)
        except ModelError:
            raise
        except ValueError as e:
            raise ModelError(f"{where}: {e}") from None

    def _read_operator(self, t: _Table, i: int, name: str, op_version: int, where: str, written: set) -> Operator:
        tensors = self.tensors
        limit = f"{where} has {{n}} {{what}}; at most {_MAX_OPERANDS} are accepted"
        ins = _int_vector(t, _OP_INPUTS, "inputs", _MAX_OPERANDS, limit.replace("{what}", "inputs"))
        outs = _int_vector(t, _OP_OUTPUTS, "outputs", _MAX_OPERANDS, limit.replace("{what}", "outputs"))
        n = len(tensors)
        for kind, values in (("input", ins), ("output", outs)):
            for k, v in enumerate(values):
                if not (0 <= v < n or (v == -1 and kind == "input")):
                    raise ModelError(f"malformed TFLite model: {where} {kind} {k} is tensor {v}, but the subgraph "
                                     f"has {n} tensors{_range(n)}"
                                     + (" (or -1 for an omitted optional input)" if kind == "input" else ""))
        if not outs:
            raise ModelError(f"malformed TFLite model: {where} has no outputs")
        operands = OPERANDS.get(name)
        if operands is not None:
            _check_operands(name, where, ins, outs, *operands)
        for k, x in enumerate(ins):
            if x >= 0 and x not in written and not tensors[x].is_constant:
                raise ModelError(f"{where} input {k} reads {tensors[x].describe()} before any operator writes it "
                                 "(operators must be in execution order, as TFLite writes them, and every tensor "
                                 "read must be a subgraph input, a constant or an earlier operator's output)")
        for k, x in enumerate(outs):
            if tensors[x].is_constant:
                raise ModelError(f"malformed TFLite model: {where} output {k} is constant {tensors[x].describe()}; "
                                 "an operator can only write non-constant tensors")
            if x in written:
                raise ModelError(f"malformed TFLite model: {where} output {k} is {tensors[x].describe()}, which is "
                                 "already written (a subgraph input, an earlier operator's output, or an earlier "
                                 "output of this operator)")
            written.add(x)
        options = _read_options(t, name, where)
        return Operator(i, name, op_version, ins, outs, options)


def _range(n: int) -> str:
    return f" (0..{n - 1})" if n else ""


def _check_operands(name: str, where: str, ins: tuple, outs: tuple, names: tuple, out_range: tuple) -> None:
    lo_out, hi_out = out_range
    if not lo_out <= len(outs) <= hi_out:
        want = str(lo_out) if lo_out == hi_out else f"{lo_out} to {hi_out}"
        raise ModelError(f"{where} has {len(outs)} outputs; {name} has {want}")
    if names == ("*",):
        if not ins or -1 in ins:
            raise ModelError(f"{where} has inputs {list(ins)[:16]}; {name} takes one or more tensors (none omitted)")
        return
    required = sum(1 for n in names if not n.endswith("?"))
    if not required <= len(ins) <= len(names):
        spelled = ", ".join(n.rstrip("?") + (" (optional)" if n.endswith("?") else "") for n in names)
        want = str(required) if required == len(names) else f"{required} to {len(names)}"
        raise ModelError(f"{where} has {len(ins)} inputs; {name} takes {want}: {spelled}")
    for k in range(required):
        if ins[k] == -1:
            raise ModelError(f"{where} input {k} ({names[k]}) is omitted (-1), but {name} requires it")


def _read_opcode(t: _Table, i: int) -> tuple[str, int]:
    deprecated = t.scalar(_OPCODE_DEPRECATED, "b", 0)
    builtin = t.scalar(_OPCODE_BUILTIN, "i", 0)
    version = t.scalar(_OPCODE_VERSION, "i", 1)
    where = f"operator code {i}"
    if deprecated < 0 or builtin < 0:
        raise ModelError(f"malformed TFLite model: {where} has builtin_code {builtin} and deprecated_builtin_code "
                         f"{deprecated}; operator codes are not negative")
    # schema.fbs: builtin_code holds the code; the old int8 field holds min(code, 127) (127 = "see builtin_code").
    # Files from before builtin_code existed have only the old field; TFLite takes the larger of the two.
    if deprecated != 0 and builtin != 0 and deprecated != min(builtin, _PLACEHOLDER):
        raise ModelError(f"malformed TFLite model: {where} has builtin_code {builtin} but deprecated_builtin_code "
                         f"{deprecated}; the old field must equal the code, or 127 for codes of 127 and above")
    code = max(deprecated, builtin)
    if code == _PLACEHOLDER:
        raise ModelError(f"malformed TFLite model: {where} has deprecated_builtin_code 127, which means 'the code "
                         f"is in builtin_code', but builtin_code is {builtin}")
    if code >= len(BUILTIN_OPERATORS):
        raise ModelError(f"{where} is builtin operator {code}, which this reader does not know (its schema has "
                         f"0..{len(BUILTIN_OPERATORS) - 1}); the model needs a newer runtime: {_OTHER_BACKEND}")
    if code == _CUSTOM:
        custom = t.string(_OPCODE_CUSTOM, "custom_code")
        if not custom:
            raise ModelError(f"malformed TFLite model: {where} is CUSTOM but has no custom_code naming the operator")
        name = f"CUSTOM:{custom}"
    else:
        name = BUILTIN_OPERATORS[code]
    if version < 1:
        raise ModelError(f"malformed TFLite model: {where} ({_short(name)}) has version {version}; operator "
                         "versions start at 1")
    return name, version


def _int_vector(t: _Table, slot: int, name: str, limit: int, too_long: str, absent: Any = ()) -> tuple[int, ...]:
    """An int32 vector field (`absent` if absent), refused before it is unpacked if longer than `limit`."""
    span = t._vector_span(slot, 4, name)
    if span is None:
        return absent
    start, count = span
    if count > limit:
        raise ModelError(too_long.replace("{n}", str(count)))
    return struct.unpack_from(f"<{count}i", t.fb.data, start)


def _array(t: _Table, slot: int, dtype: str, name: str) -> Optional[np.ndarray]:
    """A numeric vector field as a numpy array (a view of the file), or None if absent."""
    span = t._vector_span(slot, np.dtype(dtype).itemsize, name)
    if span is None:
        return None
    start, count = span
    return np.frombuffer(t.fb.data, dtype=dtype, count=count, offset=start)


def _read_options(t: _Table, opcode: str, where: str) -> dict[str, Any]:
    spec = OPTIONS.get(opcode)
    if spec is None:
        return {}
    table_name, union_index, fields = spec
    kind = t.scalar(_OP_OPTIONS_TYPE, "B", 0)
    table = t.table(_OP_OPTIONS, "builtin_options")
    if kind != union_index and (kind != 0 or table is not None):
        got = f"builtin_options_type {kind}" + ("" if table is not None else " (with no table)")
        raise ModelError(f"malformed TFLite model: {where} carries options of {got}; {opcode} takes "
                         f"{table_name} (union type {union_index}) or none")
    options: dict[str, Any] = {}
    for slot, name, fmt, default, enum in fields:
        if fmt == "[i":
            options[name] = None if table is None else _int_vector(
                table, slot, name, _MAX_RANK, f"{where} option {name} has {{n}} values; at most {_MAX_RANK} are "
                "accepted", absent=None)
            continue
        value = default if table is None else table.scalar(slot, fmt, default)
        if enum is not None:
            if not 0 <= value < len(enum):
                raise ModelError(f"malformed TFLite model: {where} option {name} is {value}; expected one of "
                                 + ", ".join(f"{k} ({v})" for k, v in enumerate(enum)))
            value = enum[value]
        elif name in _AT_LEAST_ONE and value < 1:
            raise ModelError(f"{where} option {name} is {value}; it must be at least 1")
        elif name == "quantized_bias_type" and not 0 <= value < len(TENSOR_TYPES):
            raise ModelError(f"malformed TFLite model: {where} option quantized_bias_type is {value}, not a "
                             "TensorType")
        elif fmt == "f":
            value = float(value)
            if not math.isfinite(value):
                raise ModelError(f"{where} option {name} is {value}; it must be a finite number")
        options[name] = value
    return options
