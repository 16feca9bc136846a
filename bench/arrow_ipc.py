"""A compact Arrow IPC stream writer for the Python references (the Debian Python has no pyarrow).

The references must do the work ktp does, and ktp writes Arrow: this writes the same record
batches ktp writes (one `utt` string column and per-frame matrices / vectors as
List<FixedSizeList<T>[width]> / List<T>, no nulls), as Arrow IPC *stream* format: the schema message,
then one encapsulated RecordBatch message per batch (its flatbuffer built here), then end-of-stream.
ktp's files are the IPC *file* format; the difference is the footer (a few hundred bytes, once).

The schema message is constant metadata: the harness writes it with apache-arrow from the schema ktp
uses (bench/common.ts schemaMessage) and passes its bytes in; this module does not build schemas.
The bench reads every file written here back with apache-arrow and checks it, so a bug here fails
the bench rather than flatter the reference.
"""
import struct

import numpy as np

_CONTINUATION = b"\xff\xff\xff\xff"
_V5 = 4  # MetadataVersion.V5
_RECORD_BATCH = 3  # MessageHeader.RecordBatch


def _pad8(n):
    return (n + 7) & ~7


def _record_batch_message(length, nodes, buffers, body_length):
    """The flatbuffer of Message{version V5, header RecordBatch{length, nodes, buffers}, bodyLength}.

    Laid out front to back (vtables before their tables, children after the fields pointing at
    them), which flatbuffers allows: uoffsets point forward, vtable soffsets may point back.
    """
    b = bytearray()

    def at(n):
        b.extend(b"\0" * (n - len(b)))

    b += struct.pack("<I", 0)  # root uoffset, patched below
    # Message vtable: 4 fields (version, header_type, header, bodyLength)
    at(4)
    msg_vt = len(b)
    b += struct.pack("<HHHHHH", 12, 24, 4, 6, 8, 16)
    # Message table (8-aligned so the long field is aligned): soffset, version, header_type, pad, header, pad, bodyLength
    at(_pad8(len(b)))
    msg = len(b)
    b += struct.pack("<ihBxIIq", msg - msg_vt, _V5, _RECORD_BATCH, 0, 0, body_length)
    header_field = msg + 8
    # RecordBatch vtable: length, nodes, buffers
    rb_vt = len(b)
    b += struct.pack("<HHHHH", 10, 24, 8, 4, 16)
    at(_pad8(len(b)))
    rb = len(b)
    # soffset, nodes uoffset, length (long at +8), buffers uoffset (+16), pad
    b += struct.pack("<iIqII", rb - rb_vt, 0, length, 0, 0)
    nodes_field, buffers_field = rb + 4, rb + 16
    # vectors of structs: u32 count, then 16-byte structs 8-aligned (count sits at 4 mod 8)
    at(_pad8(len(b)) + 4)
    nodes_vec = len(b)
    b += struct.pack("<I", len(nodes))
    for n, nulls in nodes:
        b += struct.pack("<qq", n, nulls)
    at(_pad8(len(b)) + 4)
    buffers_vec = len(b)
    b += struct.pack("<I", len(buffers))
    for off, ln in buffers:
        b += struct.pack("<qq", off, ln)
    struct.pack_into("<I", b, 0, msg)
    struct.pack_into("<I", b, header_field, rb - header_field)
    struct.pack_into("<I", b, nodes_field, nodes_vec - nodes_field)
    struct.pack_into("<I", b, buffers_field, buffers_vec - buffers_field)
    return bytes(b)


class _Body:
    def __init__(self):
        self.parts = []
        self.buffers = []
        self.size = 0

    def add(self, data):
        data = bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data
        n = len(data)
        self.buffers.append((self.size, n))
        self.parts.append(data)
        pad = _pad8(n) - n
        if pad:
            self.parts.append(b"\0" * pad)
        self.size += n + pad

    def none(self):
        self.buffers.append((self.size, 0))


def _offsets(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype("<i4").tobytes()


class StreamWriter:
    """Write record batches of `columns` (name → kind: 'utf8', ('matrix', width) or 'vector')."""

    def __init__(self, out, schema_message, columns):
        self.out = out
        self.columns = columns
        out.write(schema_message)

    def write(self, rows):
        """rows: dict name → list per utterance (str, 2-D array frames × width, or 1-D array)."""
        body = _Body()
        nodes = []
        n = None
        for name, kind in self.columns:
            vals = rows[name]
            n = len(vals)
            if kind == "utf8":
                enc = [s.encode("utf8") for s in vals]
                nodes.append((n, 0))
                body.none()
                body.add(_offsets([len(e) for e in enc]))
                body.add(b"".join(enc))
            elif kind == "vector":
                nodes += [(n, 0), (sum(len(v) for v in vals), 0)]
                body.none()
                body.add(_offsets([len(v) for v in vals]))
                body.none()
                body.add(b"".join(np.ascontiguousarray(v).tobytes() for v in vals))
            else:  # matrix
                frames = [v.shape[0] for v in vals]
                width = vals[0].shape[1] if vals else kind[1]
                nodes += [(n, 0), (sum(frames), 0), (sum(frames) * width, 0)]
                body.none()
                body.add(_offsets(frames))
                body.none()
                body.none()
                body.add(b"".join(np.ascontiguousarray(v).tobytes() for v in vals))
        meta = _record_batch_message(n, nodes, body.buffers, body.size)
        padded = _pad8(len(meta) + 8) - 8
        self.out.write(_CONTINUATION + struct.pack("<i", padded) + meta + b"\0" * (padded - len(meta)))
        for p in body.parts:
            self.out.write(p)

    def close(self):
        self.out.write(_CONTINUATION + struct.pack("<i", 0))
