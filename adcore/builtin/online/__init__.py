"""Online (streaming) detectors: count sketches that learn record by record, scored test-then-train.

Each module holds one detector; :mod:`.base` holds what they share. They are registered by
the ``core`` plugin as ``core:loda``, ``core:rshash``, ``core:xstream`` and ``core:hst``.
"""
