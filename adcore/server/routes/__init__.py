"""One module per resource; each exposes ``build_router()`` returning a fresh ``APIRouter``."""
