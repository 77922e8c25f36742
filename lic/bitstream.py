"""The ``.lic`` file format: one file per image.

Layout (big-endian)::

    magic       4s   b"LIC\\x1a"
    version     B    3
    quantizer   B    quantizer id (0 = USQ, 1 = TCQ)
    model       I    the model's architecture: CRC-32 of its name (:func:`model_id`), a registered
                     name such as ``mbt2018`` or a user's ``module:Class``
    fingerprint 8s   first 8 bytes of the model's SHA-256 weight fingerprint
    height      I    image height in pixels
    width       I    image width in pixels
    qparams     H    length, then that many bytes of quantizer parameters
    z           I    length, then the hyper-latent rANS stream
    y           I    length, then the latent rANS stream
    crc32       I    of every byte before it

Every field is checked before anything is allocated from it. Older versions still decode: version 2
has ``model B``, the architecture's index in ``lic.config.ARCHITECTURES``; version 1 has no ``model``
and is a mean-scale hyperprior's.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from lic.config import ARCHITECTURES
from lic.errors import LicError

MAGIC = b"LIC\x1a"
VERSION = 3
HEAD = struct.Struct(">4sBBI8sII")  # magic, version, quantizer, model, fingerprint, height, width
# every version this build reads: 1 without a model field, 2 with the model's index in ARCHITECTURES
_HEADS = {1: struct.Struct(">4sBB8sII"), 2: struct.Struct(">4sBBB8sII"), VERSION: HEAD}
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class BitstreamError(LicError):
    """A ``.lic`` stream that is truncated, corrupted or not ours."""


def model_id(architecture: str) -> int:
    """The ``model`` field of an architecture: CRC-32 of its name."""
    return zlib.crc32(architecture.encode())


def model_name(model: int) -> str | None:
    """The registered architecture whose :func:`model_id` is ``model``; None for any other."""
    return next((a for a in ARCHITECTURES if model_id(a) == model), None)


def _registered(index: int) -> int:
    """:func:`model_id` of a version-2 header's model index."""
    if index >= len(ARCHITECTURES):
        raise BitstreamError(f"stream names unknown model kind {index} (this build knows {len(ARCHITECTURES)})")
    return model_id(ARCHITECTURES[index])


@dataclass(frozen=True)
class Header:
    quantizer: int
    fingerprint: bytes
    height: int
    width: int
    qparams: bytes = b""
    model: int = model_id(ARCHITECTURES[0])  # :func:`model_id` of the architecture


def pack(header: Header, z_string: bytes, y_string: bytes) -> bytes:
    """Serialize one image's header and streams, with a trailing CRC-32."""
    body = b"".join(
        [
            HEAD.pack(MAGIC, VERSION, header.quantizer, header.model, header.fingerprint, header.height,
                      header.width),
            _U16.pack(len(header.qparams)),
            header.qparams,
            _U32.pack(len(z_string)),
            z_string,
            _U32.pack(len(y_string)),
            y_string,
        ]
    )
    return body + _U32.pack(zlib.crc32(body))


def unpack(data: bytes, max_pixels: int) -> tuple[Header, bytes, bytes]:
    """Parse and validate a stream: ``(header, z_string, y_string)``."""
    if len(data) < 5 or data[:4] != MAGIC:
        raise BitstreamError("not a .lic stream (bad magic)" if len(data) >= 5 else
                             f"stream too short ({len(data)} bytes) to be a .lic file")
    head = _HEADS.get(data[4])
    if head is None:
        raise BitstreamError(f".lic format version {data[4]} is not supported (this build reads "
                             f"{', '.join(map(str, _HEADS))})")
    if len(data) < head.size + _U16.size + 2 * _U32.size + _U32.size:
        raise BitstreamError(f"stream too short ({len(data)} bytes) to be a .lic file")
    body, (crc,) = data[:-4], _U32.unpack(data[-4:])
    if zlib.crc32(body) != crc:
        raise BitstreamError("checksum mismatch: the stream is corrupted or truncated")
    values = head.unpack_from(body, 0)
    quantizer, (fingerprint, height, width) = values[2], values[-3:]
    model = values[3] if head is HEAD else _registered(values[3] if data[4] == 2 else 0)
    if not (1 <= height and 1 <= width and height * width <= max_pixels):
        raise BitstreamError(f"header gives an invalid image size {width}x{height} (limit {max_pixels} pixels)")
    pos = head.size
    fields = []
    for fmt in (_U16, _U32, _U32):
        if pos + fmt.size > len(body):
            raise BitstreamError("stream truncated inside the header")
        (n,) = fmt.unpack_from(body, pos)
        pos += fmt.size
        if pos + n > len(body):
            raise BitstreamError("a length field points past the end of the stream")
        fields.append(body[pos : pos + n])
        pos += n
    if pos != len(body):
        raise BitstreamError(f"{len(body) - pos} unexpected bytes after the latent stream")
    qparams, z_string, y_string = fields
    return Header(quantizer, fingerprint, height, width, qparams, model), z_string, y_string
