"""Model-store backends shipped with the core, registered through ``register_storage``.

- ``file`` (:mod:`adcore.stores.sqlite`): the embedded default, a SQLite index plus files;
- ``postgresql`` (:mod:`adcore.stores.postgres`): a PostgreSQL index plus S3 artifacts,
  for several machines (``pip install 'adcore[postgres]'``).

What a backend must guarantee is described on :class:`adcore.services.registry.ModelStore`.
"""
