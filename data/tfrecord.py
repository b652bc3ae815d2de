"""Minimal TFRecord and ``tf.train.Example`` reader/writer, without TensorFlow or protobuf.

TFRecord framing (one record)::

    uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

``tf.train.Example`` wire format (the subset needed here)::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }      # map entry: key = 1, value = 2
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed]; }     # packed and unpacked are both decoded
    Int64List { repeated int64 value = 1 [packed]; }

A decoded example is a ``dict[str, list[bytes] | np.ndarray]``: bytes lists stay lists of ``bytes``,
float lists become ``float32`` arrays and int64 lists ``int64`` arrays.
"""
from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping, Sequence, Union

import numpy as np

from utils.errors import I2VError

FeatureValue = Union[bytes, Sequence[bytes], np.ndarray, Sequence[float], Sequence[int]]

__all__ = [
    "TFRecordError", "crc32c", "masked_crc32c", "iter_records", "TFRecordWriter",
    "decode_example", "encode_example", "read_examples", "write_examples",
]


class TFRecordError(I2VError, ValueError):
    """A TFRecord file is truncated, fails its CRC check or holds a malformed Example."""


# ----------------------------------------------------------------------------- CRC-32C (Castagnoli)
_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8
_CHUNK_THRESHOLD = 4096  # below this, a plain byte loop is fast enough


def _make_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
    return table


_TABLE = _make_table()
_TABLE_LIST = [int(v) for v in _TABLE]


def _update_bytes(state: int, data: bytes) -> int:
    """Feed ``data`` into the (un-inverted) CRC register ``state`` one byte at a time."""
    table = _TABLE_LIST
    for byte in data:
        state = table[(state ^ byte) & 0xFF] ^ (state >> 8)
    return state


@lru_cache(maxsize=32)
def _zeros_operator(n_bytes: int) -> tuple[np.ndarray, ...]:
    """Byte-sliced tables of the linear map 'feed ``n_bytes`` zero bytes into the register'."""
    basis = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    for _ in range(n_bytes):
        basis = _TABLE[basis & 0xFF] ^ (basis >> 8)
    values = np.arange(256, dtype=np.uint32)
    tables = []
    for b in range(4):
        bits = (values[:, None] >> np.arange(8, dtype=np.uint32)) & 1  # (256, 8)
        cols = basis[8 * b: 8 * b + 8]
        table = np.bitwise_xor.reduce(np.where(bits.astype(bool), cols[None, :], np.uint32(0)), axis=1)
        tables.append(table.astype(np.uint32))
    return tuple(tables)


def _apply_operator(tables: tuple[np.ndarray, ...], state: int) -> int:
    t0, t1, t2, t3 = tables
    return int(t0[state & 0xFF] ^ t1[(state >> 8) & 0xFF] ^ t2[(state >> 16) & 0xFF] ^ t3[state >> 24])


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (as used by TFRecord). Large inputs are processed in numpy-vectorised chunks.

    The CRC register is linear over GF(2): the state after ``prefix || chunk_0 || ... || chunk_k`` is
    ``Z^m(...Z^m(R(prefix)) ^ R0(chunk_0) ...) ^ R0(chunk_k)`` where ``R0`` is the register fed from 0 and
    ``Z^m`` feeds ``m`` zero bytes; all ``R0(chunk_i)`` are computed at once, column by column.
    """
    data = bytes(data)
    n = len(data)
    if n < _CHUNK_THRESHOLD:
        return _update_bytes(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    m = max(64, int(np.sqrt(n)))
    head = n % m
    state = _update_bytes(0xFFFFFFFF, data[:head])
    chunks = np.frombuffer(data, dtype=np.uint8, offset=head).reshape(-1, m)
    partial = np.zeros(chunks.shape[0], dtype=np.uint32)
    for j in range(m):
        partial = _TABLE[(partial ^ chunks[:, j]) & 0xFF] ^ (partial >> 8)
    shift = _zeros_operator(m)
    for value in partial.tolist():
        state = _apply_operator(shift, state) ^ value
    return state ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The TFRecord 'masked' CRC: rotate right by 15 bits and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- record framing
def iter_records(path: Union[str, Path], verify: bool = True) -> Iterator[bytes]:
    """Yield the raw records of a TFRecord file; with ``verify`` every CRC is checked."""
    path = Path(path)
    with path.open("rb") as fh:
        offset = 0
        while True:
            header = fh.read(12)
            if not header:
                return
            if len(header) < 12:
                raise TFRecordError(f"{path}: truncated record header at byte {offset}")
            length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
            if verify and masked_crc32c(length_bytes) != length_crc:
                raise TFRecordError(f"{path}: CRC mismatch in the length field of the record at byte {offset}")
            (length,) = struct.unpack("<Q", length_bytes)
            payload = fh.read(length)
            footer = fh.read(4)
            if len(payload) < length or len(footer) < 4:
                raise TFRecordError(f"{path}: truncated record at byte {offset} (expected {length} bytes)")
            if verify and masked_crc32c(payload) != struct.unpack("<I", footer)[0]:
                raise TFRecordError(f"{path}: CRC mismatch in the data of the record at byte {offset}")
            offset += 16 + length
            yield payload


class TFRecordWriter:
    """Write records to a TFRecord file (a context manager, like ``tf.io.TFRecordWriter``)."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._fh: BinaryIO = self.path.open("wb")

    def write(self, record: bytes) -> None:
        length = struct.pack("<Q", len(record))
        self._fh.write(length + struct.pack("<I", masked_crc32c(length)))
        self._fh.write(record + struct.pack("<I", masked_crc32c(record)))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "TFRecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- protobuf wire format
def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise TFRecordError("malformed protobuf: truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise TFRecordError("malformed protobuf: varint too long")


def _iter_fields(buf: memoryview) -> Iterator[tuple[int, int, Union[int, memoryview]]]:
    """Yield ``(field_number, wire_type, value)``; length-delimited and fixed values as memoryviews."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield field, wire, value
            continue
        size = {1: 8, 5: 4}.get(wire)
        if wire == 2:
            size, pos = _read_varint(buf, pos)
        if size is None:
            raise TFRecordError(f"malformed protobuf: unsupported wire type {wire}")
        if pos + size > len(buf):
            raise TFRecordError("malformed protobuf: field runs past the end of the message")
        yield field, wire, buf[pos:pos + size]
        pos += size


def _to_int64(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def _decode_feature(buf: memoryview) -> Union[list[bytes], np.ndarray]:
    for kind, wire, payload in _iter_fields(buf):
        if wire != 2:
            continue
        if kind == 1:  # BytesList
            return [bytes(v) for f, w, v in _iter_fields(payload) if f == 1 and w == 2]
        if kind == 2:  # FloatList: packed (wire 2) or unpacked (wire 5) values
            parts = [np.frombuffer(bytes(v), dtype="<f4") for f, _, v in _iter_fields(payload) if f == 1]
            return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        if kind == 3:  # Int64List: packed (wire 2) or unpacked (wire 0) varints
            values: list[int] = []
            for f, w, v in _iter_fields(payload):
                if f != 1:
                    continue
                if w == 0:
                    values.append(_to_int64(v))
                else:
                    pos = 0
                    while pos < len(v):
                        item, pos = _read_varint(v, pos)
                        values.append(_to_int64(item))
            return np.asarray(values, dtype=np.int64)
    return []  # a Feature with no kind set


def decode_example(record: bytes) -> dict[str, Union[list[bytes], np.ndarray]]:
    """Decode a serialised ``tf.train.Example`` into ``{name: list[bytes] | float32 array | int64 array}``."""
    out: dict[str, Union[list[bytes], np.ndarray]] = {}
    for field, wire, features in _iter_fields(memoryview(record)):
        if field != 1 or wire != 2:
            continue
        for entry_field, entry_wire, entry in _iter_fields(features):
            if entry_field != 1 or entry_wire != 2:
                continue
            key, value = "", memoryview(b"")
            for f, w, v in _iter_fields(entry):
                if f == 1 and w == 2:
                    key = bytes(v).decode("utf-8")
                elif f == 2 and w == 2:
                    value = v
            out[key] = _decode_feature(value)
    return out


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _encode_feature(value: FeatureValue) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        value = [bytes(value)]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bytes, bytearray)) for v in value) and value:
        return _field(1, b"".join(_field(1, bytes(v)) for v in value))
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return _field(2, _field(1, array.astype("<f4").ravel().tobytes()))
    if array.dtype.kind in "iub":
        return _field(3, _field(1, b"".join(_varint(int(v)) for v in array.ravel())))
    raise TypeError(f"cannot encode a feature of type {type(value).__name__} / dtype {array.dtype}")


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialise ``{name: bytes | list[bytes] | floats | ints}`` as a ``tf.train.Example`` (packed lists)."""
    entries = b"".join(
        _field(1, _field(1, key.encode("utf-8")) + _field(2, _encode_feature(value)))
        for key, value in features.items()
    )
    return _field(1, entries)


def read_examples(path: Union[str, Path], verify: bool = True) -> Iterator[dict[str, Union[list[bytes], np.ndarray]]]:
    """Yield the decoded ``tf.train.Example`` records of a TFRecord file."""
    for record in iter_records(path, verify=verify):
        yield decode_example(record)


def write_examples(path: Union[str, Path], examples: Iterable[Mapping[str, FeatureValue]]) -> int:
    """Write ``examples`` to a TFRecord file; returns how many were written."""
    count = 0
    with TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(encode_example(example))
            count += 1
    return count
