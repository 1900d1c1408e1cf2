"""Loki's push protobuf (`logproto.PushRequest`), built at import from a descriptor with the `protobuf` runtime.

No maintained Python package ships Loki's `logproto`, so this module declares the subset of Loki's
`pkg/push/push.proto` that a push carries, field for field, and lets `protobuf` build the message classes
(no generated code, no hand-written wire parsing):

    syntax = "proto3";
    package logproto;
    import "google/protobuf/timestamp.proto";

    message PushRequest { repeated StreamAdapter streams = 1; }
    message StreamAdapter {
      string labels = 1;                 // a Prometheus label string: {job="x", level="error"}
      repeated EntryAdapter entries = 2;
      uint64 hash = 3;                   // ignored
    }
    message LabelPairAdapter { string name = 1; string value = 2; }
    message EntryAdapter {
      google.protobuf.Timestamp timestamp = 1;
      string line = 2;
      repeated LabelPairAdapter structuredMetadata = 3;
      repeated LabelPairAdapter parsed = 4;  // set by Loki's own components only; ignored
    }

Loki's gogoproto options change only the Go types, not the wire format, so they are left out. The classes
live in a private descriptor pool, so they never clash with another library's `logproto`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

__all__ = ["PushRequest"]

_Field = descriptor_pb2.FieldDescriptorProto


def _field(
    name: str, number: int, kind: _Field.Type.ValueType, *, repeated: bool = False, type_name: str = ""
) -> _Field:
    label = _Field.LABEL_REPEATED if repeated else _Field.LABEL_OPTIONAL
    field = _Field(name=name, number=number, type=kind, label=label, json_name=name)
    if type_name:
        field.type_name = type_name
    return field


def _push_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="mintlog/loki/push.proto",
        package="logproto",
        syntax="proto3",
        dependency=[timestamp_pb2.DESCRIPTOR.name],
    )
    file.message_type.add(
        name="PushRequest",
        field=[_field("streams", 1, _Field.TYPE_MESSAGE, repeated=True, type_name=".logproto.StreamAdapter")],
    )
    file.message_type.add(
        name="StreamAdapter",
        field=[
            _field("labels", 1, _Field.TYPE_STRING),
            _field("entries", 2, _Field.TYPE_MESSAGE, repeated=True, type_name=".logproto.EntryAdapter"),
            _field("hash", 3, _Field.TYPE_UINT64),
        ],
    )
    file.message_type.add(
        name="LabelPairAdapter",
        field=[_field("name", 1, _Field.TYPE_STRING), _field("value", 2, _Field.TYPE_STRING)],
    )
    file.message_type.add(
        name="EntryAdapter",
        field=[
            _field("timestamp", 1, _Field.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp"),
            _field("line", 2, _Field.TYPE_STRING),
            _field("structuredMetadata", 3, _Field.TYPE_MESSAGE, repeated=True, type_name=".logproto.LabelPairAdapter"),
            _field("parsed", 4, _Field.TYPE_MESSAGE, repeated=True, type_name=".logproto.LabelPairAdapter"),
        ],
    )
    return file


def _build() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(_push_file().SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequest: Any = _build()
"""The message class of `logproto.PushRequest`: `PushRequest.FromString(data)` decodes a (decompressed) push,
raising `google.protobuf.message.DecodeError` for bytes that are not one (truncated, or a string field that is
not UTF-8)."""
