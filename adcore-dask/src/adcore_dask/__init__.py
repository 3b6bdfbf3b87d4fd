"""adcore-dask: score and fit over many files on a Dask cluster (``--executor dask``).

Registers the ``dask`` batch executor (``adcore score/fit/run --executor dask`` for a local
cluster, ``dask://HOST:PORT`` for a running scheduler). Registration is lazy, so listing
plugins never imports dask or distributed. See README.md and docs/dask.md.
"""

from __future__ import annotations

__version__ = "0.1.0"
