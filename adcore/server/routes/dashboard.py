"""``GET /``: the dashboard, three static files shipped in the package (no build step, no CDN).

The page itself holds no data; it calls the authenticated ``/v1`` endpoints and asks for
the API key when they answer 401. Only the files listed in :data:`ASSETS` are served (no
path from the request reaches the filesystem), with a Content-Security-Policy that
allows nothing from other origins.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Response

from adcore.server.errors import ServerError
from adcore.server.jsonbody import StrictJSONRoute

ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class AssetNotFound(ServerError):
    http_status = 404
    error_type = "not_found"


def _read(name: str) -> bytes:
    return resources.files("adcore.server").joinpath("dashboard", name).read_bytes()


def build_router() -> APIRouter:
    router = APIRouter(tags=["dashboard"], include_in_schema=False, route_class=StrictJSONRoute)

    @router.get("/")
    async def index() -> Response:
        return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @router.get("/dashboard/{asset}")
    async def asset(asset: str) -> Response:
        media_type = ASSETS.get(asset)
        if media_type is None:
            raise AssetNotFound(f"no dashboard file {asset!r}")
        return Response(_read(asset), media_type=f"{media_type}; charset=utf-8", headers=SECURITY_HEADERS)

    return router
