"""The monolith's storefront: GET / (the catalog, and a form that makes an image) and its script and style
sheet under /static/.

The page calls POST /api/images with fetch on whatever origin served it: opened through the proxy, the
call takes the real routing (the page sets a `uid` cookie, one of the route's sticky keys, so a visitor
stays on one side), and the generation id it shows says which side made the image (`leg_…` the
monolith, `img_…` the image service). The visitor's earlier images are kept in the browser
(localStorage). The image API's contract is untouched: the page is only one more client of it.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

from legacy_stub.orders import CATALOG

__all__ = ["STATIC", "add_routes", "page"]

STATIC = Path(__file__).parent / "static"
SIZES = ("256x256", "512x512", "1024x1024")  # the contract's (strangler_common/contracts/images.yaml)
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip


def page() -> str:
    rows = "\n".join(
        f"      <li><strong>{html.escape(p.name)}</strong> <code>{html.escape(p.sku)}</code>"
        f" &mdash; {p.price_cents / 100:.2f} EUR</li>"
        for p in CATALOG
    )
    sizes = "".join(
        f'<option{" selected" if size == "512x512" else ""}>{size}</option>' for size in SIZES
    )
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Pixel Emporium</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/storefront.css">
  <script src="/static/storefront.js" defer></script>
</head>
<body>
  <header><h1>Pixel Emporium</h1><p>Images made to order from your words.</p></header>
  <main>
    <section class="make">
      <h2>Make an image</h2>
      <form id="make" method="post" action="/api/images">
        <label for="prompt">Prompt</label>
        <input id="prompt" name="prompt" required maxlength="1000" placeholder="a lighthouse at dusk">
        <label for="size">Size</label>
        <select id="size" name="size">{sizes}</select>
        <button type="submit" id="make-button">Make it</button>
      </form>
      <noscript><p>Making an image needs JavaScript.</p></noscript>
      <p id="status" role="status"></p>
      <div id="result"></div>
    </section>
    <section class="history">
      <h2>Your earlier images</h2>
      <p id="history-empty">None yet: they are remembered in this browser.</p>
      <ul id="history"></ul>
    </section>
    <section>
      <h2>Prints</h2>
      <ul>
{rows}
      </ul>
    </section>
  </main>
</body>
</html>
"""


async def storefront(_: web.Request) -> web.Response:
    response = web.Response(text=page(), content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = _CSP
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", storefront)
    app.router.add_static("/static", STATIC)
