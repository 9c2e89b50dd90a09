"""The console's Mismatches pages: the kept mismatches newest first (filtered by route and kind), one
mismatch in detail, and a kept image body for its <img>.

The detail shows the request (method, path, request id, the user key hashed, never a secret header: the
shadow store redacted them), each difference as field path / primary value / candidate value, and the two
answers side by side: two JSON documents with the differing paths marked (jsonview.py), or two pictures
with their format and dimensions (pictures.py), from the whole bodies the route's keep_bodies_bytes kept;
otherwise from the cut text view the store always keeps. Owns the handlers and the panes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from proxy.admin.api import AdminApi, Sample
from proxy.console import jsonview, pictures
from proxy.console.login import render
from proxy.console.state import CONSOLE
from strangler_common.web import REQUEST_ID

__all__ = ["KINDS", "Pane", "body", "mismatch_page", "mismatches_page"]

KINDS = ("status", "header", "body_shape", "body_value", "image")
SIDES = ("primary", "candidate")
LISTED = 100  # rows on the list page
_FETCHED = "500"  # read before filtering by kind


@dataclass(frozen=True)
class Pane:
    """One side's answer body as the detail page shows it."""

    kind: str  # "image" | "json" | "text" | "binary" | "empty"
    lines: list[jsonview.Line] = field(default_factory=list)
    text: str = ""
    picture: pictures.Picture | None = None
    url: str = ""
    note: str = ""  # e.g. "cut at 4096 bytes"


async def mismatches_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    rid = request.get(REQUEST_ID)
    route, kind = request.query.get("route") or None, request.query.get("kind") or None
    query = {"limit": _FETCHED, **({"route": route} if route else {})}
    reply, routes = await asyncio.gather(console.api.mismatches(query, request_id=rid),
                                         console.api.routes(request_id=rid))  # fmt: skip
    found = reply.body.get("mismatches", []) if reply.ok else []
    if kind:
        found = [m for m in found if any(d["kind"] == kind for d in m["differences"])]
    names = {r["name"] for r in routes.body.get("routes", [])} if routes.ok else set()
    names |= set(reply.body.get("kept", {})) if reply.ok else set()
    return render(request, "mismatches.html", {
        "nav": "mismatches", "mismatches": found[:LISTED], "more": len(found) > LISTED, "route": route,
        "kind": kind, "kinds": KINDS, "routes": sorted(names), "error": reply.message,
        "kept": reply.body.get("kept", {}) if reply.ok else {},
    })  # fmt: skip


async def mismatch_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    ref, rid = request.match_info["ref"], request.get(REQUEST_ID)
    reply = await console.api.mismatch(ref, request_id=rid)
    if not reply.ok:
        return render(request, "message.html", {"title": "No such mismatch", "text": reply.message,
                                                "nav": "mismatches"}, status=404)  # fmt: skip
    found = reply.body
    marked = {d["path"] for d in found["differences"]}
    rows = [{**d, **dict(zip(SIDES, jsonview.split_detail(d["detail"]), strict=True))}
            for d in found["differences"]]  # fmt: skip
    panes = await asyncio.gather(*(_pane(console.api, ref, side, found, marked, rid) for side in SIDES))
    return render(request, "mismatch.html", {"nav": "mismatches", "m": found, "rows": rows,
                                             "panes": dict(zip(SIDES, panes, strict=True))})  # fmt: skip


async def _pane(
    api: AdminApi, ref: str, side: str, found: dict[str, Any], marked: set[str], request_id: str | None
) -> Pane:
    sample = await api.sample(ref, side, request_id=request_id) if side in found.get("bodies", {}) else None
    if sample is not None:
        return _kept(sample, ref, side, marked)
    view = found[side]
    media = str(view.get("headers", {}).get("content-type", ""))
    cut = f"cut at {len(view['body'])} of {view['body_size']} bytes" if view.get("body_truncated") else ""
    if view.get("body_encoding") != "utf-8":
        return Pane("binary" if view.get("body_size") else "empty", note=f"{view.get('body_size')} bytes, "
                    f"{media or 'no content type'}: the whole body was not kept")  # fmt: skip
    if "json" in media and not cut:
        pane = _json(view["body"].encode(), marked)
        if pane is not None:
            return pane
    return Pane("text" if view["body"] else "empty", text=view["body"], note=cut)


def _kept(sample: Sample, ref: str, side: str, marked: set[str]) -> Pane:
    if sample.media_type.startswith("image/"):
        picture = pictures.describe(sample.data)
        note = "" if picture is not None else f"{len(sample.data)} bytes that are not a readable image"
        return Pane("image", picture=picture, url=f"/console/mismatches/{ref}/{side}", note=note)
    pane = _json(sample.data, marked)
    if pane is not None:
        return pane
    return Pane("text", text=sample.data[:65536].decode("utf-8", errors="replace"), note="not valid JSON")


def _json(data: bytes, marked: set[str]) -> Pane | None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    lines, cut = jsonview.lines(document, marked)
    return Pane("json", lines=lines, note=f"cut at {len(lines)} lines" if cut else "")


async def body(request: web.Request) -> web.StreamResponse:
    """GET /console/mismatches/{ref}/{side}: a kept image body, for the detail page's <img>."""
    console = request.app[CONSOLE]
    ref, side = request.match_info["ref"], request.match_info["side"]
    sample = await console.api.sample(ref, side, request_id=request.get(REQUEST_ID))
    if sample is None or not sample.media_type.startswith("image/"):
        return render(request, "message.html", {"title": "Not kept", "text": "That body is not kept (any "
                      "more): see the route's shadow.keep_bodies_bytes."}, status=404)  # fmt: skip
    # Served as what it is, never sniffed, and sandboxed should anyone open an SVG by its URL.
    return web.Response(body=sample.data, content_type=sample.media_type, headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        "Cache-Control": "private, no-store",
    })  # fmt: skip
