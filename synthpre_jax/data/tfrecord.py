"""TFRecord files and `tf.train.Example` bytes features, read without TensorFlow.

A TFRecord file is a sequence of records: uint64 little-endian payload length, uint32
masked CRC-32C of those 8 bytes, the payload, uint32 masked CRC-32C of the payload.
`read_records` checks the framing (every length fits in the file, so a truncated file
raises ValueError naming it). It verifies the CRCs only when a CRC-32C implementation
is importable (`google_crc32c` or `crc32c`; `CRC32C` is None otherwise); callers that
need integrity without one check a digest of the whole file (the fixed-split caches
in tasks/ check each file's SHA-256). `example_bytes_features` decodes the protobuf
wire format of a serialized `tf.train.Example` for its bytes-list features only.
Standard library.
"""
from __future__ import annotations

import os
import struct
from typing import Callable, Iterator, Optional


def _find_crc32c() -> Optional[Callable[[bytes], int]]:
  try:
    import google_crc32c  # pylint: disable=g-import-not-at-top
    return lambda data: google_crc32c.value(bytes(data))
  except ImportError:
    pass
  try:
    import crc32c  # pylint: disable=g-import-not-at-top
    return crc32c.crc32c
  except ImportError:
    return None


CRC32C: Optional[Callable[[bytes], int]] = _find_crc32c()


def masked_crc(data: bytes, crc32c: Callable[[bytes], int]) -> int:
  """TFRecord's masked CRC-32C of `data`."""
  crc = crc32c(data) & 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path: "str | os.PathLike", *, skip: int = 0) -> Iterator[bytes]:
  """The payloads of the TFRecord file `path`, in order, after its first `skip` records
  (skipped by their length fields, unread). Raises ValueError naming the file and the
  record on a truncated or (with `CRC32C`) corrupt record."""
  crc32c = CRC32C
  with open(path, "rb") as f:
    size = os.fstat(f.fileno()).st_size
    at, n = 0, 0
    while at < size:
      where = f"{os.fspath(path)}: record {n} at byte {at}"
      head = f.read(12)
      if len(head) < 12:
        raise ValueError(f"{where}: truncated header ({len(head)} of 12 bytes)")
      length, length_crc = struct.unpack("<QI", head)
      if crc32c is not None and masked_crc(head[:8], crc32c) != length_crc:
        raise ValueError(f"{where}: corrupt length (CRC mismatch)")
      end = at + 12 + length + 4
      if end > size:
        raise ValueError(f"{where}: truncated: the record needs {length + 16} bytes, "
                         f"the file has {size - at} left")
      if n < skip:
        f.seek(end)
      else:
        data = f.read(length)
        (data_crc,) = struct.unpack("<I", f.read(4))
        if crc32c is not None and masked_crc(data, crc32c) != data_crc:
          raise ValueError(f"{where}: corrupt payload (CRC mismatch)")
        yield data
      at, n = end, n + 1


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
  value = shift = 0
  while True:
    byte = buf[pos]
    pos += 1
    value |= (byte & 0x7F) << shift
    if byte < 0x80:
      return value, pos
    shift += 7
    if shift > 63:
      raise ValueError("malformed protobuf: varint longer than 10 bytes")


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, tuple]]:
  """(field number, wire type, (start, end) of a length-delimited value else ()) of the
  message buf[start:end]."""
  pos = start
  while pos < end:
    key, pos = _varint(buf, pos)
    wire, span = key & 7, ()
    if wire == 2:
      length, pos = _varint(buf, pos)
      span, pos = (pos, pos + length), pos + length
    elif wire == 0:
      _, pos = _varint(buf, pos)
    elif wire in (1, 5):
      pos += 8 if wire == 1 else 4
    else:
      raise ValueError(f"malformed protobuf: wire type {wire}")
    if pos > end:
      raise ValueError("malformed protobuf: a field runs past its message")
    yield key >> 3, wire, span


def example_bytes_features(data: bytes) -> dict[str, list[bytes]]:
  """feature name -> its bytes_list values, of a serialized `tf.train.Example`
  (Example.features = 1, Features.feature = 1 (map: key 1, value 2), Feature.bytes_list
  = 1, BytesList.value = 1). Features of other kinds map to []. Raises ValueError on a
  malformed message."""
  buf = memoryview(data)
  out: dict[str, list[bytes]] = {}
  try:
    for number, wire, features in _fields(buf, 0, len(buf)):
      if number != 1 or wire != 2:
        continue
      for number, wire, entry in _fields(buf, *features):
        if number != 1 or wire != 2:
          continue
        key, values = "", []
        for number, wire, span in _fields(buf, *entry):
          if wire != 2:
            continue
          if number == 1:
            key = str(buf[span[0]:span[1]], "utf-8")
          elif number == 2:
            values = []
            for kind, wire, lst in _fields(buf, *span):
              if kind == 1 and wire == 2:
                values += [bytes(buf[v[0]:v[1]]) for n, w, v in _fields(buf, *lst)
                           if n == 1 and w == 2]
        out[key] = values
  except IndexError as e:
    raise ValueError("malformed protobuf: truncated message") from e
  return out
