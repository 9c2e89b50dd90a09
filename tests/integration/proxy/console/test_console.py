"""The migration console on a single process's admin listener, over HTTP (the browser tests are in
tests/e2e/browser): logging in with the token like Jupyter, the session cookie, CSRF, the pages, the
mismatch detail with both bodies, and the security headers."""

from __future__ import annotations

import re

from proxy.admin.auth import FREE_FAILURES
from proxy.console.app import CSP
from tests.integration.proxy.console.conftest import TOKEN, Console, ConsoleFactory

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_token_url_sets_an_httponly_strict_cookie_and_redirects_to_the_bare_url(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    response = await console.admin.get(f"/console?token={TOKEN}", allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/console"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/console" in cookie
    assert TOKEN not in cookie
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"

    page = await console.admin.get("/console")
    assert page.status == 200
    assert 'id="route-images"' in await page.text()
    assert page.headers["Content-Security-Policy"] == CSP


async def test_a_token_url_on_any_page_comes_back_to_that_page_without_the_token(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    response = await console.admin.get(f"/console/mismatches?kind=image&token={TOKEN}", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/console/mismatches?kind=image"


async def test_without_a_session_the_console_sends_to_the_login_form_which_takes_the_token(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    response = await console.admin.get("/console/noise", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/console/login")

    response = await console.admin.post("/console/login", data={"token": TOKEN}, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/console")
    assert (await console.admin.get("/console/noise")).status == 200


async def test_a_wrong_token_gets_no_page_and_counts_as_an_auth_failure_then_is_throttled(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    for attempt in range(FREE_FAILURES):
        response = await console.admin.get("/console?token=wrong", allow_redirects=False)
        text = await response.text()
        assert response.status == 401, attempt
        assert "That is not the admin token" in text
        assert "route-images" not in text
        assert "Set-Cookie" not in response.headers
    assert console.sample("strangler_admin_auth_failures_total", reason="wrong") == FREE_FAILURES

    response = await console.admin.post("/console/login", data={"token": TOKEN}, allow_redirects=False)
    assert response.status == 429  # even the right token waits once the address is throttled
    assert "Retry-After" in response.headers
    assert console.sample("strangler_admin_auth_failures_total", reason="throttled") == 1


async def test_the_json_endpoints_keep_bearer_tokens_and_ignore_the_session_cookie(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    await console.login()
    assert (await console.admin.get("/routes")).status == 401
    assert (await console.admin.get("/routes", headers=AUTH)).status == 200


async def test_an_action_without_the_csrf_token_is_refused_with_403_and_a_page_saying_why(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    csrf = await console.login()
    before = console.sample("strangler_config_reloads_total", result="success")

    for form in ({}, {"csrf": "forged"}):
        response = await console.admin.post("/console/actions/reload", data=form, allow_redirects=False)
        assert response.status == 403
        assert "CSRF" in await response.text()
    assert console.sample("strangler_config_reloads_total", result="success") == before

    response = await console.admin.post("/console/actions/reload", data={"csrf": csrf, "back": "/console"},
                                        allow_redirects=False)  # fmt: skip
    assert (response.status, response.headers["Location"]) == (303, "/console")
    assert console.sample("strangler_config_reloads_total", result="success") == before + 1
    assert "Reloaded: the same configuration is serving" in await (await console.admin.get("/console")).text()


async def test_an_action_goes_back_only_to_a_console_page(make_console: ConsoleFactory) -> None:
    console = await make_console()
    csrf = await console.login()
    for back in ("https://evil.example/", "//evil.example/console", "/elsewhere", "/console\r\nX-Evil: 1"):
        response = await console.admin.post("/console/actions/guard-reset",
                                            data={"csrf": csrf, "route": "images", "back": back},
                                            allow_redirects=False)  # fmt: skip
        assert response.headers["Location"] == "/console"


async def test_logout_ends_the_session(make_console: ConsoleFactory) -> None:
    console = await make_console()
    csrf = await console.login()
    await console.admin.post("/console/logout", data={"csrf": csrf})
    assert (await console.admin.get("/console", allow_redirects=False)).status == 303


async def test_the_console_is_off_without_an_admin_token(make_console: ConsoleFactory) -> None:
    console = await make_console(admin_token=None)
    response = await console.admin.get("/console?token=anything")
    assert response.status == 403
    assert "STRANGLER_ADMIN_TOKEN" in await response.text()


async def _mismatch_ref(console: Console) -> str:
    body = await (await console.admin.get("/shadow/mismatches", headers=AUTH)).json()
    (kept,) = body["mismatches"]
    return str(kept["ref"])


async def test_a_json_mismatch_shows_both_documents_with_the_differing_path_marked(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    console.new.patch = {"prompt": "a blue fox"}
    await console.public.post("/api/images", json={"prompt": "a red fox"}, cookies={"uid": "u-17"})
    await console.settle()
    await console.login()

    page = await (await console.admin.get(f"/console/mismatches/{await _mismatch_ref(console)}")).text()

    marked = re.findall(r'<span class="line marked" data-path="([^"]+)">([^<]*)</span>', page)
    assert ("prompt", '  &#34;prompt&#34;: &#34;a red fox&#34;,') in marked
    assert ("prompt", '  &#34;prompt&#34;: &#34;a blue fox&#34;,') in marked
    assert {path for path, _ in marked} == {"prompt"}
    assert "<code>&#34;a red fox&#34;</code>" in page  # the differences table: primary value
    assert re.search(r"cookie:uid [0-9a-f]{12}", page)  # the user key, hashed
    assert "u-17" not in page


async def test_an_image_mismatch_shows_both_pictures_with_their_format_and_dimensions(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    console.legacy.image_size, console.new.image_size = (8, 8), (16, 12)
    await console.public.get("/api/image")
    await console.settle()
    await console.login()
    ref = await _mismatch_ref(console)

    page = await (await console.admin.get(f"/console/mismatches/{ref}")).text()
    assert f'src="/console/mismatches/{ref}/primary"' in page
    assert f'src="/console/mismatches/{ref}/candidate"' in page
    assert re.search(r'id="facts-primary">PNG 8×8 · \d+ bytes', page)
    assert re.search(r'id="facts-candidate">PNG 16×12 · \d+ bytes', page)

    picture = await console.admin.get(f"/console/mismatches/{ref}/candidate")
    assert picture.status == 200
    assert picture.content_type == "image/png"
    assert (await picture.read()).startswith(b"\x89PNG")
    assert "sandbox" in picture.headers["Content-Security-Policy"]
    assert console.sample("strangler_shadow_bodies_total", route="images", result="kept") == 1
    # the JSON API says which bodies are kept, never serves them
    detail = await (await console.admin.get(f"/shadow/mismatches/{ref}", headers=AUTH)).json()
    assert detail["bodies"]["candidate"]["media_type"] == "image/png"
    assert (await console.admin.get(f"/shadow/samples/{ref}/candidate", headers=AUTH)).status == 404


async def test_a_pair_larger_than_the_routes_budget_is_not_kept_and_is_counted(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(keep_bodies_bytes=100)
    console.legacy.image_size, console.new.image_size = (64, 64), (32, 32)
    await console.public.get("/api/image")
    await console.settle()
    await console.login()

    assert console.sample("strangler_shadow_bodies_total", route="images", result="too_large") == 1
    page = await (await console.admin.get(f"/console/mismatches/{await _mismatch_ref(console)}")).text()
    assert "the whole body was not kept" in page


async def test_the_routes_page_shows_the_percent_why_and_the_figures(make_console: ConsoleFactory) -> None:
    console = await make_console()
    for _ in range(3):
        await console.public.get("/api/nonce")
    await console.settle()
    await console.login()

    page = await (await console.admin.get("/console")).text()
    assert '<strong class="percent" id="percent-images">0 %</strong>' in page
    assert "config: rollout.percent in routes.yaml" in page
    assert re.search(r'<tr class="side-primary"><th>primary</th><td>3</td>', page)
    assert "this one proxy replica" in page
    assert "Not configured: set <code>STRANGLER_CONTROLLER_URL</code>" in page

    noise = await (await console.admin.get("/console/noise")).text()
    assert 'id="noise-images"' in noise

