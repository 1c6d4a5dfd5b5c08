# Writes the seeds of the binary_event fuzz target (fuzz/corpus/binary_event/seed-*). Its input is
# an `arbitrary`-derived struct (fuzz_targets/binary_event.rs), so a seed is that struct in
# arbitrary 1.5's byte format: integers little-endian from the front, an enum variant as a u32
# scaled to the variant count, a 1 byte before each Vec element and a 0 after the last, slice and
# str lengths one byte each from the back, the last field the rest. Check a seed with
#
#   cargo +nightly fuzz fmt binary_event fuzz/corpus/binary_event/seed-valid-json
#
# Run: python3 fuzz/binary_event_seeds.py fuzz/corpus/binary_event
import os
import struct
import sys

CONTENT_TYPES = ["Absent", "Json", "Text", "OctetStream", "CloudEvents", "Batch", "Avro", "Raw"]
NAMES = ["Specversion", "Id", "Source", "Type", "Time", "Dataschema", "Subject",
         "Datacontenttype", "Data", "DataBase64", "Traceparent", "Other"]


def variant(index, count):
    """The smallest u32 that derive(Arbitrary) reads as variant `index` of `count`."""
    return struct.pack("<I", -(-(index << 32) // count))


def encode(content_type, required, headers, body):
    front, lengths = bytearray(), []
    front += variant(CONTENT_TYPES.index(content_type), len(CONTENT_TYPES))
    front += bytes([1 if required else 0])
    for name, value in headers:
        front += b"\x01"
        if name in NAMES:
            front += variant(NAMES.index(name), len(NAMES))
        else:  # Other(name)
            front += variant(NAMES.index("Other"), len(NAMES))
            lengths.append(len(name))
            front += name.encode()
        lengths.append(len(value))
        front += value
    front += b"\x00"
    data = bytes(front) + body + bytes(reversed(lengths))
    # One length byte each holds while the input is at most 256 bytes.
    assert len(data) <= 256
    return data


SEEDS = {
    "seed-valid-json": ("Json", False, [
        ("Specversion", b"1.0"), ("Id", b"1"), ("Source", b"/s"), ("Type", b"t"),
        ("Subject", b"a%20b%E2%82%AC"), ("myext", b"x%25y"),
    ], b'{"k":1}'),
    "seed-valid-text": ("Text", True, [
        ("Time", b"2018-04-05T17:31:00Z"), ("Dataschema", b"https://example.com/s"),
        ("Traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ], b"hello"),
    "seed-quoted-and-overlong": ("OctetStream", True, [
        ("Subject", b'"a\\"b %41"'), ("bad_name", b"%C0%A0"),
    ], b"\x00\x01"),
    "seed-reserved-and-repeated": ("Absent", True, [
        ("Datacontenttype", b"text/plain"), ("Id", b"2"), ("Data", b"x"),
    ], b""),
}

if __name__ == "__main__":
    out = sys.argv[1]
    for file, spec in SEEDS.items():
        with open(os.path.join(out, file), "wb") as f:
            f.write(encode(*spec))
