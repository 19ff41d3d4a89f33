"""Parsing protobuf bodies into generated messages, with errors that say what failed.

Protobuf parsers put a field that arrives with another wire type than its
declaration (a sample value sent as a varint, a timestamp as 64 bits) among
the message's unknown fields and leave the declared field at its default. A
receiver that reads the message then stores an invented value (0.0, 0). So
:func:`parse` refuses such a body with 400. Fields the schema does not know
at all (a newer sender's additions) are ignored, as protobuf intends.

The check costs two passes of the protobuf runtime in C in the usual case:
unknown fields are dropped and the message's canonical size compared with
the body's. Only when they differ (unknown fields, or a sender that encodes
differently, such as unpacked repeated numbers or explicit defaults) is the
body parsed again and every message walked for a known field number among
its unknown fields.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from remote_storage.errors import MalformedBody

__all__ = ["parse"]

_WIRE_TYPES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "start-group", 4: "end-group", 5: "32-bit"}


def parse(message: Any, payload: bytes) -> None:
    """Parse ``payload`` into ``message`` in place; raise MalformedBody (400) on bad input.

    A field sent with a wire type its declaration does not allow is bad
    input too; unknown fields are dropped from ``message``.
    """
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise MalformedBody(f"invalid {_name(message)} protobuf", str(exc) or "cannot parse") from None
    message.DiscardUnknownFields()
    if message.ByteSize() != len(payload):
        _check_wire_types(type(message), payload)


def _name(message: Any) -> str:
    return str(message.DESCRIPTOR.full_name)


def _check_wire_types(message_class: Any, payload: bytes) -> None:
    """Raise MalformedBody if any message in ``payload`` holds a known field among its unknown ones."""
    fresh = message_class()
    fresh.ParseFromString(payload)  # parsed once already: cannot fail
    pending = [fresh]
    while pending:
        message = pending.pop()
        fields_by_number = message.DESCRIPTOR.fields_by_number
        for unknown in UnknownFieldSet(message):
            declared = fields_by_number.get(unknown.field_number)
            if declared is not None:
                sent = _WIRE_TYPES.get(unknown.wire_type, str(unknown.wire_type))
                raise MalformedBody(
                    f"invalid {_name(message)} protobuf",
                    f"field {declared.name!r} (number {declared.number}) was sent with wire type {sent}, "
                    "which its declared type does not allow; the value would be lost",
                )
        for descriptor, value in message.ListFields():
            if descriptor.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            if descriptor.is_repeated:
                pending.extend(value)
            else:
                pending.append(value)
