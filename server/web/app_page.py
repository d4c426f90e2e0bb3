"""The phone app's files (contract §9): ``/app``, ``/app/sw.js``, ``/app/static/*`` and the ``/join/<code>`` page.

Every file is read once, at start-up, and answered from memory with an ``ETag`` (304 on a match), a
``Cache-Control`` and the board's strict CSP. Gzip comes from Starlette's ``GZipMiddleware`` wrapped around these
routes only: the API's answers and the WebSocket routes never pass through it.

Caching: files are revalidated (``no-cache`` + ETag, a 304 costs one small round trip) rather than cached for a
fixed time, because their names carry no version. The service worker is what makes the app open without network:
``sw.js`` is served with the version of the whole shell written into it, so a changed file changes the worker,
which fetches the new shell and drops the old cache.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from server.web.board import SECURITY_HEADERS

APP_DIR = Path(__file__).parent / "app_static"
STATIC_PREFIX = "/app/static/"
# what the worker keeps for offline use, beside /app itself (the PNG icons only matter when installing)
SHELL_EXCLUDE = {"sw.js", "index.html", "join.html", "join.js", "icon-192.png", "icon-512.png"}
GZIP_MIN_BYTES = 512

mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("text/javascript", ".js")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _asset(name: str, body: bytes) -> Asset:
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith(("json", "javascript", "svg+xml")):
        media_type += "; charset=utf-8"
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def shell_names(directory: Path = APP_DIR) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.name not in SHELL_EXCLUDE)


def load_assets(directory: Path = APP_DIR) -> dict[str, Asset]:
    """Every file by name; ``sw.js`` gets the shell list and its version (a digest of every file) written in."""
    files = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
    version = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()[:12]
    shell = ["/app", *(STATIC_PREFIX + name for name in shell_names(directory))]
    if "sw.js" in files:
        files["sw.js"] = (files["sw.js"].replace(b"__VERSION__", version.encode())
                          .replace(b'["__SHELL__"]', ("[" + ",".join(f'"{u}"' for u in shell) + "]").encode()))
    return {name: _asset(name, body) for name, body in files.items()}


class AppFiles:
    """An ASGI app answering one file (``fixed``) or the file named by the path's tail."""

    def __init__(self, assets: dict[str, Asset], fixed: str | None = None,
                 extra_headers: dict[str, str] | None = None) -> None:
        self.assets = assets
        self.fixed = fixed
        self.extra_headers = extra_headers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        name = self.fixed or request.path_params.get("name", "")
        asset = self.assets.get(name)
        if request.method not in ("GET", "HEAD"):
            response = Response("method not allowed", status_code=405, headers={"Allow": "GET, HEAD"})
        elif asset is None:
            response = Response("not found", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS)
        else:
            headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache", **self.extra_headers}
            if asset.etag in request.headers.get("if-none-match", ""):
                response = Response(status_code=304, headers=headers)
            else:
                response = Response(asset.body if request.method == "GET" else b"", media_type=asset.media_type,
                                    headers=headers)
        await response(scope, receive, send)


def routes(directory: Path = APP_DIR) -> list[Route]:
    assets = load_assets(directory)

    def serve(fixed: str | None = None, **headers: str) -> GZipMiddleware:
        return GZipMiddleware(AppFiles(assets, fixed, headers), minimum_size=GZIP_MIN_BYTES)

    return [
        Route("/app", serve("index.html")),
        # the worker lives under /app/ but must control /app itself: the header widens its allowed scope
        Route("/app/sw.js", serve("sw.js", **{"Service-Worker-Allowed": "/app"})),
        Route("/app/static/{name}", serve()),
        Route("/join/{code}", serve("join.html")),
    ]
