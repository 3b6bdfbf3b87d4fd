"""Reading and writing data files: the modules behind :mod:`adcore.data`.

`adcore.data` is the public API and re-exports what callers need; these modules are internal
and their names may change. One role each:

- `dataset`: the `Dataset` type, and building one from arrays and DataFrames in memory
- `checks`: the checks every input passes (inf/NaN and nan_policy; column names and selection)
- `formats`: the supported formats, how a path's format is decided, the input-file check
- `source`: what a reader returns (feature names plus chunks that know where their rows came from)
- `csv_reader`, `json_reader`, `numpy_reader`, `parquet_reader`: one reader per format family
- `writers`: `ScoreWriter` and atomic publishing; `output_formats`: how each format is written
- `arrow_csv`: pyarrow's CSV parser and writer for large files, same results as `csv_reader` and
  `output_formats` (which stay the reference and the fallback; `ADCORE_CSV_ENGINE=stdlib` forces them)

At import time they need only numpy and the standard library: pyarrow, orjson and pandas are
imported inside the functions that need them, so `import adcore.data` stays cheap.
"""
