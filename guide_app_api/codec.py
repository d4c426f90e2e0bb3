"""Frames to plain data and back: a binary frame is one MessagePack map, a text frame is one JSON object.

Decoding is the first thing untrusted bytes meet, so it is strict and total: whatever comes in, the answer
is a ``dict`` with string keys or a :class:`BadFrame`, never another exception. What is *in* the map is
:mod:`guide_app_api.messages`' business.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import msgpack

from guide_app_api.errors import BadFrame

# Caps well above any valid message yet far below what a hostile header could make msgpack pre-allocate.
# The endpoint already refuses frames over 64 KiB; these hold for any caller. Nesting is bounded by msgpack's
# own parser stack (1024 levels, StackError) and, for JSON, by the recursion limit (RecursionError).
MAX_STR = 65536
MAX_BIN = 65536
MAX_ARRAY = 4096
MAX_MAP = 1024

# A JSON escape that may produce a lone surrogate: such a str cannot be encoded as UTF-8 (msgpack, Redis), so
# the frame is refused here rather than failing later when the event is stored. Scanned only when present.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads/dumps with non-default options would construct a new (de|en)coder per call.
_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# msgpack.packb builds a Packer, and mallocs its buffer, on every call: 1.4 µs here against 0.5 for a packer kept
# (per thread: a Packer is not thread-safe). Every stored event, state field and binary frame is packed here
_PACKERS = threading.local()


def packb(obj: Any) -> bytes:
    """``msgpack.packb(obj, use_bin_type=True)``, with this thread's packer (it resets itself on an error)."""
    try:
        packer = _PACKERS.packer
    except AttributeError:
        packer = _PACKERS.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(obj)


def unpackb(data: bytes) -> Any:
    """What :func:`packb` wrote, as storage reads it back: ``msgpack.unpackb(data, raw=False, strict_map_key=False)``.

    For stored data only (events, states, payloads): an untrusted frame goes through :func:`decode`, with its caps."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"MessagePack extension type {code} is not accepted")


def decode(data: bytes | str) -> dict[str, Any]:
    """One frame -> one map with string keys, or :class:`BadFrame`."""
    if isinstance(data, bytes):
        return _decode_msgpack(data)
    if isinstance(data, str):
        return _decode_json(data)
    raise BadFrame(f"a frame must be bytes or text, not {type(data).__name__}")


def _decode_msgpack(data: bytes) -> dict[str, Any]:
    try:
        obj = msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True, ext_hook=_no_ext,
            # max_ext_len=0 also refuses the timestamp extension (-1), which msgpack decodes without ext_hook
            max_ext_len=0, max_str_len=MAX_STR, max_bin_len=MAX_BIN, max_array_len=MAX_ARRAY,
            max_map_len=MAX_MAP,
        )
    except msgpack.ExtraData:
        raise BadFrame("a binary frame must hold exactly one MessagePack map (trailing data)") from None
    except Exception as exc:  # any decoder failure (ValueError, TypeError, ...) is a bad frame
        raise BadFrame(f"undecodable MessagePack: {_reason(exc)}") from None
    if type(obj) is not dict:
        raise BadFrame(f"a binary frame must be a MessagePack map, not {_kind(obj)}")
    for key in obj:
        # strict_map_key still lets bin (bytes) keys through
        if type(key) is not str:
            raise BadFrame("map keys must be strings")
    return obj


def _decode_json(text: str) -> dict[str, Any]:
    try:
        obj = _JSON_DECODER.decode(text)
    except RecursionError:
        raise BadFrame("undecodable JSON: nested too deeply") from None
    except Exception as exc:  # JSONDecodeError, ValueError (constants, huge ints), ...
        raise BadFrame(f"undecodable JSON: {_reason(exc)}") from None
    if type(obj) is not dict:
        raise BadFrame(f"a text frame must be a JSON object, not {_kind(obj)}")
    if _SURROGATE_ESCAPE.search(text) is not None and not _utf8_clean(obj):
        raise BadFrame("undecodable JSON: a \\u escape makes a lone surrogate")
    return obj


def _utf8_clean(obj: Any) -> bool:
    try:
        _JSON_ENCODER.encode(obj).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _kind(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, list | tuple):
        return "an array"
    return f"a {type(obj).__name__}"


def encode(obj: dict[str, Any], binary: bool) -> bytes | str:
    """A server frame in the encoding of the frame it answers (or the phone last spoke)."""
    if binary:
        return packb(obj)
    return _JSON_ENCODER.encode(obj)
