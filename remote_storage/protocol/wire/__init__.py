"""The wire layer: the only code, besides the generated ``pb`` modules, that knows protobuf tags.

Everything that writes or scans protobuf bytes by hand goes through here:

* :mod:`.records`: the records of remote-read responses (``Label``,
  ``Sample``, ``Chunk``, ``TimeSeries``, ``QueryResult``, ``ChunkedSeries``),
  label records from joined label bytes, and the remote-write records the
  load generator lays out in its templates;
* :mod:`.frames`: the length-delimited, CRC-32C-checked frames of
  ``STREAMED_XOR_CHUNKS`` responses;
* :mod:`.v1_scan`: the scanner of remote-write 1.0 bodies.

Each has a C twin in this folder (``_wire.c``, ``_v1scan.c``) with the same
bytes for every input; :mod:`remote_storage.native` imports the twins and
decides, once, which implementation runs. Messages that are not on a hot
path are written and parsed by the generated classes, never by hand.
This package imports nothing itself, so the native loader can import its
extensions without a cycle.
"""
