"""What a .tflite model says about itself: labels, input size, normalisation, colour order.

The converter (converters/metadata_writer.py) stores this as standard TFLite Metadata, the format that
TFLite Support and MediaPipe read, plus a small "edgevision" CustomMetadata JSON for what the standard
has no place for (BGR order, resize mode). This module reads it back on the device with the standard
library alone: no numpy, no `flatbuffers` package, no tflite-support.

Where the model says something (in order of precedence):
  1. the "edgevision" CustomMetadata JSON (channel_order, resize_mode, input_size, mean, std);
  2. the standard metadata: name/description/version/author/license, the input tensor's
     NormalizationOptions (mean, std) and ImageProperties (colour space, default size), and the labels
     file (TENSOR_AXIS_LABELS) of the output tensor, packed in the zip archive appended to the model;
  3. the shape of the first input tensor of the first subgraph (NHWC: height, width, channels).
Anything the file does not say keeps the ModelInfo default.

Field slot numbers come from the official schemas: tensorflow/lite/schema/schema.fbs (as generated in
ai_edge_litert/schema_py_generated.py) for the model, and metadata_schema.fbs 1.5.0 (kept in
converters/_schema/) for the metadata.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Optional, Union

__all__ = ["ModelInfo", "read_model_info", "load_labels_file"]

CHANNEL_ORDERS = ("RGB", "BGR")
RESIZE_MODES = ("stretch", "center_crop", "letterbox")
CUSTOM_METADATA_NAME = "edgevision"
METADATA_ENTRY_NAME = "TFLITE_METADATA"  # name of the Model.metadata entry holding ModelMetadata
TFLITE_IDENTIFIER = b"TFL3"
METADATA_IDENTIFIER = b"M001"


@dataclass(frozen=True)
class ModelInfo:
    """Everything the runtime needs to feed a classifier and name its outputs.

    `mean` and `std` are in pixel units (0..255), one value per input channel in the model's channel
    order: the model sees x = (pixel - mean) / std. A uniform `mean` or `std` of any length (e.g. the
    default (0, 0, 0) on a grayscale model, or a single 127.5) is stored as `channels` copies; a
    non-uniform one must have exactly `channels` values.
    """

    name: str = "model"
    description: str = ""
    version: str = ""
    author: str = ""
    license: str = ""
    labels: tuple[str, ...] = ()
    input_size: Optional[tuple[int, int]] = None  # (height, width)
    channels: int = 3  # 3 colour, 1 grayscale
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"  # "RGB" | "BGR"
    resize_mode: str = "center_crop"  # "stretch" | "center_crop" | "letterbox"

    def __post_init__(self) -> None:
        for field in ("name", "description", "version", "author", "license"):
            if not isinstance(getattr(self, field), str):
                raise TypeError(f"ModelInfo.{field} must be a str, got {getattr(self, field)!r}")
        if isinstance(self.labels, str) or not all(isinstance(x, str) for x in self.labels):
            raise TypeError(f"ModelInfo.labels must be a sequence of str, got {self.labels!r}")
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ValueError(f"ModelInfo.channels must be 1 (grayscale) or 3 (colour), got {self.channels!r}")
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"ModelInfo.channel_order must be one of {CHANNEL_ORDERS}, got {self.channel_order!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"ModelInfo.resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.input_size is not None:
            size = tuple(self.input_size)
            if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
                raise ValueError(
                    f"ModelInfo.input_size must be None or (height, width) with positive ints, got {self.input_size!r}"
                )
            object.__setattr__(self, "input_size", size)
        object.__setattr__(self, "mean", self._per_channel("mean", self.mean))
        object.__setattr__(self, "std", self._per_channel("std", self.std))
        if any(s == 0.0 for s in self.std):
            raise ValueError(f"ModelInfo.std must not contain 0 (it divides), got {self.std!r}")

    def _per_channel(self, field: str, values) -> tuple[float, ...]:
        try:
            floats = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise TypeError(f"ModelInfo.{field} must be a sequence of numbers, got {values!r}") from None
        if not floats or not all(math.isfinite(v) for v in floats):
            raise ValueError(f"ModelInfo.{field} must be one or more finite numbers, got {values!r}")
        if len(floats) == self.channels:
            return floats
        if all(v == floats[0] for v in floats):
            return (floats[0],) * self.channels
        raise ValueError(
            f"ModelInfo.{field} has {len(floats)} different values for a {self.channels}-channel input: "
            f"give {self.channels} values or a single one"
        )


def read_model_info(model: Union[str, os.PathLike, bytes, bytearray, memoryview]) -> ModelInfo:
    """Read a .tflite file (path or bytes) and return what it says about itself.

    Raises ValueError naming the problem when the file is not a well-formed TFLite model or its
    metadata is malformed. A model without metadata is fine: it gets the defaults (and its input
    tensor's size and channel count).
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            data = f.read()
    else:
        raise TypeError(f"read_model_info() takes a path or bytes, got {type(model).__name__}")

    root = _FlatBuffer(data, "TFLite model").root(TFLITE_IDENTIFIER)
    fields: dict = {}
    _read_input_tensor(root, fields)
    metadata_buf = _find_metadata_buffer(root, data)
    if metadata_buf is not None:
        _read_model_metadata(metadata_buf, data, fields)
    try:
        return ModelInfo(**fields)
    except (TypeError, ValueError) as e:  # values the file holds that no model can have
        raise ValueError(f"malformed model: {e}") from None


def load_labels_file(path: Union[str, os.PathLike]) -> tuple[str, ...]:
    """One label per line (UTF-8). Lines are stripped; blank lines at the end are ignored."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"labels file not found: {os.fspath(path)!r} (expected a UTF-8 text file with one label per line)"
        ) from None
    return parse_labels(raw, f"labels file {os.fspath(path)!r}")


def parse_labels(raw: bytes, source: str = "labels") -> tuple[str, ...]:
    """Split UTF-8 text into labels: one per line, stripped, trailing blank lines dropped.

    A blank line in the middle stays as an empty label, so label i still names output i.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{source} is not valid UTF-8 (byte {e.start})") from None
    labels = [line.strip() for line in text.split("\n")]
    while labels and not labels[-1]:
        labels.pop()
    return tuple(labels)


# --- TFLite model (schema.fbs) -------------------------------------------------------------------
# Slot numbers: the field's position in its table in schema.fbs (a union takes two: type, value).
_MODEL_SUBGRAPHS, _MODEL_BUFFERS, _MODEL_METADATA = 2, 4, 6
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS = 0, 1
_TENSOR_SHAPE, _TENSOR_SHAPE_SIGNATURE = 0, 7
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2
_METADATA_NAME, _METADATA_BUFFER = 0, 1


def _read_input_tensor(model: "_Table", fields: dict) -> None:
    """Height, width and channels of the first input, when it is an NHWC image with a fixed size."""
    subgraphs = model.vector(_MODEL_SUBGRAPHS, "subgraphs")
    if subgraphs is None or len(subgraphs) == 0:
        raise ValueError("malformed TFLite model: it has no subgraph")
    subgraph = subgraphs.table(0)
    inputs = subgraph.scalars(_SUBGRAPH_INPUTS, "i", "inputs")
    tensors = subgraph.vector(_SUBGRAPH_TENSORS, "tensors")
    if not inputs:
        return
    if tensors is None or not 0 <= inputs[0] < len(tensors):
        raise ValueError(f"malformed TFLite model: input tensor index {inputs[0]} is out of range")
    tensor = tensors.table(inputs[0])
    shape = tensor.scalars(_TENSOR_SHAPE, "i", "shape") or ()
    signature = tensor.scalars(_TENSOR_SHAPE_SIGNATURE, "i", "shape_signature") or shape
    if len(shape) != 4 or len(signature) != 4 or shape[3] not in (1, 3):
        return  # not an NHWC image: say nothing rather than guess
    fields["channels"] = shape[3]
    if signature[1] > 0 and signature[2] > 0:  # -1 marks a dynamic dimension
        fields["input_size"] = (shape[1], shape[2])


def _find_metadata_buffer(model: "_Table", data: bytes) -> Optional[bytes]:
    entries = model.vector(_MODEL_METADATA, "metadata")
    if entries is None:
        return None
    for i in range(len(entries)):
        entry = entries.table(i)
        if entry.string(_METADATA_NAME, "name") != METADATA_ENTRY_NAME:
            continue
        index = entry.scalar(_METADATA_BUFFER, "I", 0)
        buffers = model.vector(_MODEL_BUFFERS, "buffers")
        count = 0 if buffers is None else len(buffers)
        if index >= count:
            raise ValueError(
                f"malformed TFLite model: metadata {METADATA_ENTRY_NAME!r} points to buffer {index}, "
                f"but the model has {count} buffers"
            )
        return _buffer_bytes(buffers.table(index), index, data)
    return None


def _buffer_bytes(buffer: "_Table", index: int, data: bytes) -> bytes:
    """A Buffer's bytes: inline (`data`), or, in models written for >2 GB, at `offset` in the file."""
    offset = buffer.scalar(_BUFFER_OFFSET, "Q", 0)
    if offset > 1:  # the schema says offset is only meaningful when > 1
        size = buffer.scalar(_BUFFER_SIZE, "Q", 0)
        if offset + size > len(data):
            raise ValueError(
                f"malformed TFLite model: buffer {index} is {size} bytes at file offset {offset}, "
                f"past the end of the {len(data)}-byte file"
            )
        return data[offset : offset + size]
    return buffer.byte_vector(_BUFFER_DATA, "data") or b""


# --- TFLite Metadata (metadata_schema.fbs 1.5.0) --------------------------------------------------
_MM_NAME, _MM_DESCRIPTION, _MM_VERSION, _MM_SUBGRAPHS, _MM_AUTHOR, _MM_LICENSE = 0, 1, 2, 3, 4, 5
_SGM_INPUTS, _SGM_OUTPUTS, _SGM_CUSTOM = 2, 3, 9
_TM_CONTENT, _TM_PROCESS_UNITS, _TM_ASSOCIATED_FILES = 3, 4, 6
_CONTENT_PROPERTIES_TYPE, _CONTENT_PROPERTIES = 0, 1
_CONTENT_IMAGE_PROPERTIES = 2  # ContentProperties union member
_IMAGE_COLOR_SPACE, _IMAGE_DEFAULT_SIZE = 0, 1
_SIZE_WIDTH, _SIZE_HEIGHT = 0, 1
_COLOR_SPACE_CHANNELS = {1: 3, 2: 1}  # ColorSpaceType RGB, GRAYSCALE
_PU_OPTIONS_TYPE, _PU_OPTIONS = 0, 1
_PU_NORMALIZATION = 1  # ProcessUnitOptions union member
_NORM_MEAN, _NORM_STD = 0, 1
_FILE_NAME, _FILE_TYPE = 0, 2
_FILE_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_CUSTOM_NAME, _CUSTOM_DATA = 0, 1


def _read_model_metadata(metadata_buf: bytes, model_data: bytes, fields: dict) -> None:
    meta = _FlatBuffer(metadata_buf, "model metadata").root(METADATA_IDENTIFIER)
    for key, slot in (
        ("name", _MM_NAME),
        ("description", _MM_DESCRIPTION),
        ("version", _MM_VERSION),
        ("author", _MM_AUTHOR),
        ("license", _MM_LICENSE),
    ):
        value = meta.string(slot, key)
        if value is not None:
            fields[key] = value

    subgraphs = meta.vector(_MM_SUBGRAPHS, "subgraph_metadata")
    if subgraphs is None or len(subgraphs) == 0:
        return
    subgraph = subgraphs.table(0)

    inputs = subgraph.vector(_SGM_INPUTS, "input_tensor_metadata")
    if inputs is not None and len(inputs) > 0:
        _read_input_metadata(inputs.table(0), fields)

    outputs = subgraph.vector(_SGM_OUTPUTS, "output_tensor_metadata")
    if outputs is not None and len(outputs) > 0:
        label_file = _labels_file_name(outputs.table(0))
        if label_file is not None:
            fields["labels"] = _read_packed_labels(model_data, label_file)

    custom = subgraph.vector(_SGM_CUSTOM, "custom_metadata")
    for i in range(0 if custom is None else len(custom)):
        entry = custom.table(i)
        if entry.string(_CUSTOM_NAME, "name") == CUSTOM_METADATA_NAME:
            _apply_custom_json(entry.byte_vector(_CUSTOM_DATA, "data") or b"", fields)
            break


def _read_input_metadata(tensor: "_Table", fields: dict) -> None:
    content = tensor.table(_TM_CONTENT, "content")
    if content is not None and content.scalar(_CONTENT_PROPERTIES_TYPE, "B", 0) == _CONTENT_IMAGE_PROPERTIES:
        image = content.table(_CONTENT_PROPERTIES, "content_properties")
        if image is not None:
            channels = _COLOR_SPACE_CHANNELS.get(image.scalar(_IMAGE_COLOR_SPACE, "b", 0))
            if channels is not None:
                fields["channels"] = channels
            size = image.table(_IMAGE_DEFAULT_SIZE, "default_size")
            if size is not None:
                width, height = size.scalar(_SIZE_WIDTH, "I", 0), size.scalar(_SIZE_HEIGHT, "I", 0)
                if width > 0 and height > 0:
                    fields["input_size"] = (height, width)

    units = tensor.vector(_TM_PROCESS_UNITS, "process_units")
    for i in range(0 if units is None else len(units)):
        unit = units.table(i)
        if unit.scalar(_PU_OPTIONS_TYPE, "B", 0) != _PU_NORMALIZATION:
            continue
        options = unit.table(_PU_OPTIONS, "options")
        if options is None:
            continue
        mean = options.scalars(_NORM_MEAN, "f", "mean")
        std = options.scalars(_NORM_STD, "f", "std")
        if mean:
            fields["mean"] = mean
        if std:
            fields["std"] = std
        break


def _labels_file_name(tensor: "_Table") -> Optional[str]:
    """Name of the tensor's first TENSOR_AXIS_LABELS file (the standard's default one)."""
    files = tensor.vector(_TM_ASSOCIATED_FILES, "associated_files")
    for i in range(0 if files is None else len(files)):
        entry = files.table(i)
        if entry.scalar(_FILE_TYPE, "b", 0) == _FILE_TENSOR_AXIS_LABELS:
            name = entry.string(_FILE_NAME, "name")
            if not name:
                raise ValueError("malformed model metadata: the output labels file has no name")
            return name
    return None


# zipfile documents BadZipFile, but truncated or crafted archives surface as these too.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError,
               RuntimeError, struct.error, zlib.error, ValueError, IndexError, KeyError, OverflowError)


def _read_packed_labels(model_data: bytes, file_name: str) -> tuple[str, ...]:
    """Labels from the zip archive that TFLite Support appends after the model flatbuffer."""
    try:
        with zipfile.ZipFile(io.BytesIO(model_data)) as archive:
            names = archive.namelist()
            raw = archive.read(file_name) if file_name in names else None
    except zipfile.BadZipFile:
        raise ValueError(
            f"malformed model: metadata names labels file {file_name!r}, but no zip archive of associated "
            f"files is appended to the model"
        ) from None
    except _ZIP_ERRORS as e:
        raise ValueError(f"malformed model: cannot read packed labels file {file_name!r}: {e}") from None
    if raw is None:
        raise ValueError(
            f"malformed model: metadata names labels file {file_name!r}, but the packed files are {names}"
        )
    return parse_labels(raw, f"packed labels file {file_name!r}")


def _apply_custom_json(raw: bytes, fields: dict) -> None:
    where = f"{CUSTOM_METADATA_NAME!r} custom metadata"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"malformed model metadata: {where} is not UTF-8 JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"malformed model metadata: {where} must be a JSON object, got {type(doc).__name__}")
    for key, allowed in (("channel_order", CHANNEL_ORDERS), ("resize_mode", RESIZE_MODES)):
        if key in doc:
            if doc[key] not in allowed:
                raise ValueError(f"malformed model metadata: {where} {key!r} must be one of {allowed}, got {doc[key]!r}")
            fields[key] = doc[key]
    if doc.get("input_size") is not None:
        size = doc["input_size"]
        if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int for v in size)):
            raise ValueError(f"malformed model metadata: {where} 'input_size' must be [height, width], got {size!r}")
        fields["input_size"] = tuple(size)
    for key in ("mean", "std"):
        if key in doc:
            values = doc[key]
            if not (isinstance(values, list) and values
                    and all(type(v) in (int, float) for v in values)):
                raise ValueError(f"malformed model metadata: {where} {key!r} must be a list of numbers, got {values!r}")
            fields[key] = tuple(float(v) for v in values)


# --- A minimal read-only flatbuffer reader ---------------------------------------------------------
# Layout (https://flatbuffers.dev/internals): a buffer starts with a uoffset (u32) to the root table,
# then an optional 4-byte file identifier. A table starts with an soffset (i32) back to its vtable;
# the vtable is u16 vtable_size, u16 table_size, then one u16 per field slot: the field's offset in
# the table, 0 if absent. Reference fields (tables, vectors, strings) hold a uoffset relative to the
# field's own position. A vector or string is a u32 count followed by its elements (strings also
# carry a NUL). All little-endian. Every read below is bounds-checked, so a malformed file raises
# ValueError saying which field was bad, never IndexError or struct.error.

_SCALAR_SIZES = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8}


class _FlatBuffer:
    def __init__(self, data: bytes, what: str, budget: Optional[int] = None):
        self.data = data
        self.what = what
        # Bytes of tables and vectors the reader may still visit (None: no limit). Offsets can make many
        # tables share one vector or table, so a small file could otherwise cost a reader time and memory
        # out of all proportion to its size; a well-formed file shares nothing but vtables, so a reader
        # visiting each field once stays within the file's size.
        self.budget = budget

    def fail(self, message: str) -> "ValueError":
        return ValueError(f"malformed {self.what} ({len(self.data)} bytes): {message}")

    def charge(self, nbytes: int, what: str) -> None:
        if self.budget is not None:
            self.budget -= nbytes
            if self.budget < 0:
                raise self.fail(
                    f"at {what}, the reader has visited more data than a file of this size can hold (its "
                    f"offsets refer to the same tables or vectors over and over): the file is corrupt"
                )

    def read(self, fmt: str, pos: int, what: str):
        size = _SCALAR_SIZES[fmt]
        if pos < 0 or pos + size > len(self.data):
            raise self.fail(f"{what} at byte {pos} lies outside the buffer")
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def root(self, identifier: bytes) -> "_Table":
        if len(self.data) < 8:
            raise self.fail("too short to be a flatbuffer (needs at least 8 bytes)")
        if self.data[4:8] != identifier:
            raise self.fail(f"file identifier is {self.data[4:8]!r}, expected {identifier!r}")
        return self.table_at(self.read("I", 0, "root offset"), "root table")

    def table_at(self, pos: int, what: str) -> "_Table":
        vtable = pos - self.read("i", pos, f"{what} vtable offset")
        vtable_size = self.read("H", vtable, f"{what} vtable size")
        if vtable_size < 4 or vtable_size % 2 or vtable + vtable_size > len(self.data):
            raise self.fail(f"{what} has a bad vtable (size {vtable_size} at byte {vtable})")
        table_size = self.read("H", vtable + 2, f"{what} table size")
        if pos + table_size > len(self.data):
            raise self.fail(f"{what} ({table_size} bytes at byte {pos}) runs past the end")
        if self.budget is not None:
            self.charge(max(4, table_size), what)
        return _Table(self, pos, vtable, vtable_size, table_size, what)


class _Table:
    def __init__(self, fb: _FlatBuffer, pos: int, vtable: int, vtable_size: int, table_size: int, what: str):
        self.fb, self.pos, self.vtable, self.vtable_size, self.table_size, self.what = (
            fb, pos, vtable, vtable_size, table_size, what)

    def _field(self, slot: int, size: int, name: str) -> Optional[int]:
        """Absolute position of a present field, or None when absent."""
        entry = 4 + 2 * slot
        if entry >= self.vtable_size:
            return None  # written by an older schema that did not have this field
        offset = self.fb.read("H", self.vtable + entry, f"{self.what}.{name} vtable entry")
        if offset == 0:
            return None
        if offset + size > self.table_size:
            raise self.fb.fail(f"{self.what}.{name} lies outside its table")
        return self.pos + offset

    def _deref(self, slot: int, name: str) -> Optional[int]:
        pos = self._field(slot, 4, name)
        if pos is None:
            return None
        target = pos + self.fb.read("I", pos, f"{self.what}.{name} offset")
        if target >= len(self.fb.data):
            raise self.fb.fail(f"{self.what}.{name} points to byte {target}, past the end")
        return target

    def scalar(self, slot: int, fmt: str, default):
        pos = self._field(slot, _SCALAR_SIZES[fmt], f"field {slot}")
        return default if pos is None else self.fb.read(fmt, pos, f"{self.what} field {slot}")

    def table(self, slot: int, name: str) -> Optional["_Table"]:
        target = self._deref(slot, name)
        return None if target is None else self.fb.table_at(target, f"{self.what}.{name}")

    def _vector_span(self, slot: int, elem_size: int, name: str) -> Optional[tuple[int, int]]:
        target = self._deref(slot, name)
        if target is None:
            return None
        count = self.fb.read("I", target, f"{self.what}.{name} length")
        if target + 4 + count * elem_size > len(self.fb.data):
            raise self.fb.fail(f"{self.what}.{name} claims {count} elements, more than the buffer holds")
        if self.fb.budget is not None:
            self.fb.charge(4 + count * elem_size, f"{self.what}.{name}")
        return target + 4, count

    def byte_vector(self, slot: int, name: str) -> Optional[bytes]:
        span = self._vector_span(slot, 1, name)
        return None if span is None else self.fb.data[span[0] : span[0] + span[1]]

    def string(self, slot: int, name: str) -> Optional[str]:
        raw = self.byte_vector(slot, name)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fb.fail(f"{self.what}.{name} is not valid UTF-8") from None

    def scalars(self, slot: int, fmt: str, name: str) -> Optional[tuple]:
        size = _SCALAR_SIZES[fmt]
        span = self._vector_span(slot, size, name)
        if span is None:
            return None
        start, count = span
        return struct.unpack_from(f"<{count}{fmt}", self.fb.data, start)

    def vector(self, slot: int, name: str) -> Optional["_TableVector"]:
        span = self._vector_span(slot, 4, name)
        return None if span is None else _TableVector(self.fb, span[0], span[1], f"{self.what}.{name}")


class _TableVector:
    """A vector of tables, read one element at a time (a model may have thousands of tensors)."""

    def __init__(self, fb: _FlatBuffer, start: int, count: int, what: str):
        self.fb, self.start, self.count, self.what = fb, start, count, what

    def __len__(self) -> int:
        return self.count

    def table(self, i: int) -> _Table:
        if not 0 <= i < self.count:
            raise self.fb.fail(f"{self.what}[{i}] is out of range (length {self.count})")
        pos = self.start + 4 * i
        return self.fb.table_at(pos + self.fb.read("I", pos, f"{self.what}[{i}] offset"), f"{self.what}[{i}]")
