"""The migration console in a real browser, on a proxy in process with fake services it can bend: the
routes page follows a reload by itself, an image mismatch shows both pictures side by side with their
dimensions, a JSON mismatch marks the differing path, an action without the CSRF token is refused, and
the noise page forgets on request. No page breaks the Content-Security-Policy (the browser would say)."""

from __future__ import annotations

import os
from typing import Any

import yaml
from playwright.async_api import Dialog, Page

from tests.e2e.browser.conftest import STEP_MS, browser_tab, until
from tests.integration.proxy.console.conftest import TOKEN, Console, ConsoleFactory
from tests.integration.proxy.console.conftest import make_console as make_console

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def url(console: Console, path: str) -> str:
    return str(console.admin.make_url(path))


async def accept(dialog: Dialog) -> None:
    await dialog.accept()  # the console asks before every action


async def open_logged_in(page: Page, console: Console, path: str) -> None:
    sep = "&" if "?" in path else "?"
    response = await page.goto(url(console, f"{path}{sep}token={TOKEN}"))
    assert response is not None
    assert response.status == 200
    assert TOKEN not in page.url


async def kept_refs(console: Console) -> list[str]:
    body = await (await console.admin.get("/shadow/mismatches", headers=AUTH)).json()
    return [str(m["ref"]) for m in body["mismatches"]]


def set_percent(console: Console, percent: float) -> None:
    doc: dict[str, Any] = yaml.safe_load(console.config.read_text())
    doc["routes"][0]["rollout"]["percent"] = percent
    console.config.write_text(yaml.safe_dump(doc, sort_keys=False))


async def test_the_routes_page_shows_a_new_percent_within_one_refresh_after_a_reload(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(refresh_s=1)
    for uid in range(6):
        await console.public.get("/api/nonce", cookies={"uid": f"u{uid}"})
    await console.public.post("/api/images", json={"prompt": "a red fox"})
    await console.settle()
    async with browser_tab() as tab:
        await open_logged_in(tab.page, console, "/console")
        assert await tab.page.inner_text("#percent-images") == "0 %"
        await tab.page.evaluate("window.sameDocument = true")

        set_percent(console, 30)
        assert (await console.admin.post("/reload", headers=AUTH)).status == 200
        await tab.page.locator("#percent-images", has_text="30 %").wait_for(timeout=STEP_MS)
        assert await tab.page.evaluate("window.sameDocument") is True  # refreshed in place, not reloaded
        assert "config: rollout.percent" in await tab.page.inner_text("#why-images")
        if os.environ.get("STRANGLER_SCREENSHOTS"):  # a page with traffic on both sides, for the docs
            for uid in range(20):
                await console.public.get("/api/nonce", cookies={"uid": f"w{uid}"})
            await until(tab.page, "document.querySelector('tr.side-candidate td').textContent !== '0'")
            await tab.shoot("console-routes.png")
        assert tab.errors == []


async def test_an_image_mismatch_shows_both_pictures_side_by_side_with_their_dimensions(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    console.legacy.image_size, console.new.image_size = (160, 120), (240, 120)  # the candidate's is wider
    console.legacy.image_colour, console.new.image_colour = "#b4532a", "#2f5bd3"
    await console.public.get("/api/image")
    await console.settle()
    (ref,) = await kept_refs(console)
    async with browser_tab() as tab:
        page = tab.page
        await open_logged_in(page, console, f"/console/mismatches/{ref}")
        await until(page, "[...document.querySelectorAll('.picture img')].every(i => i.naturalWidth > 0)")
        widths = await page.eval_on_selector_all(".picture img", "images => images.map(i => i.naturalWidth)")
        assert widths == [160, 240]
        assert (await page.inner_text("#facts-primary")).startswith("PNG 160×120")
        assert (await page.inner_text("#facts-candidate")).startswith("PNG 240×120")
        primary, candidate = await page.locator("#image-primary").bounding_box(), await page.locator(
            "#image-candidate").bounding_box()  # fmt: skip
        assert primary is not None
        assert candidate is not None
        assert primary["x"] + primary["width"] <= candidate["x"]  # side by side, primary on the left
        assert abs(primary["y"] - candidate["y"]) < 2
        row = page.locator("#differences tr[data-path='(body)'] td")
        assert await row.all_inner_texts() == ["image", "(body)", "PNG 160x120", "PNG 240x120"]
        await tab.shoot("console-mismatch-image.png")
        assert tab.errors == []


async def test_a_json_mismatch_marks_the_differing_path_in_both_documents(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    console.new.patch = {"prompt": "a blue fox"}
    await console.public.post("/api/images", json={"prompt": "a red fox"}, cookies={"uid": "visitor-1"})
    await console.settle()
    console.new.patch, console.new.image_size = {}, (16, 16)
    await console.public.get("/api/image")  # an image mismatch too, for the list's kind filter
    await console.settle()
    json_ref = (await kept_refs(console))[-1]
    async with browser_tab() as tab:
        page = tab.page
        await open_logged_in(page, console, f"/console/mismatches/{json_ref}")
        for side, fox in (("primary", "a red fox"), ("candidate", "a blue fox")):
            marked = page.locator(f"#json-{side} .line.marked")
            assert await marked.count() == 1
            assert await marked.get_attribute("data-path") == "prompt"
            assert (await marked.inner_text()).strip() == f'"prompt": "{fox}",'
        colours = await page.evaluate("""[...document.querySelectorAll('#json-primary .line')]
            .map(line => [line.classList.contains('marked'), getComputedStyle(line).backgroundColor])""")
        assert {c for marked, c in colours if marked}.isdisjoint({c for marked, c in colours if not marked})
        assert "cookie:uid" in await page.inner_text("main")
        assert "visitor-1" not in await page.content()
        await page.click("#differences tr[data-path='prompt']")
        assert await page.locator("#json-candidate .line.focus[data-path='prompt']").count() == 1
        await tab.shoot("console-mismatch-json.png")

        await page.goto(url(console, "/console/mismatches"))
        assert await page.locator("#mismatch-list .detail-link").count() == 2
        async with page.expect_navigation():
            await page.select_option("select[name=kind]", "body_value")  # the script submits the filter
        assert "kind=body_value" in page.url
        assert await page.locator("#mismatch-list .detail-link").count() == 1
        await page.select_option("select[name=kind]", "")
        await page.wait_for_url("**/console/mismatches?route=&kind=")
        await tab.shoot("console-mismatches.png")
        assert tab.errors == []


async def test_an_action_without_the_csrf_token_is_refused_and_with_it_is_done(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    before = console.sample("strangler_config_reloads_total", result="success")
    async with browser_tab() as tab:
        page = tab.page
        page.on("dialog", accept)
        await open_logged_in(page, console, "/console")
        await page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(i => i.remove())")
        async with page.expect_response("**/console/actions/reload") as answer:
            await page.click("text=Reload routes.yaml")
        assert (await answer.value).status == 403
        assert "Refused: no valid CSRF token" in await page.inner_text("h1")
        assert console.sample("strangler_config_reloads_total", result="success") == before

        await page.goto(url(console, "/console"))
        await page.click("text=Reload routes.yaml")
        await page.wait_for_selector("#notice")
        assert "Reloaded" in await page.inner_text("#notice")
        assert console.sample("strangler_config_reloads_total", result="success") == before + 1


async def test_the_noise_page_shows_what_a_route_learned_and_forgets_it_on_request(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(noise_baseline={"percent": 100, "methods": ["GET"]})
    for _ in range(3):
        await console.public.get("/api/nonce")
    await console.settle()
    async with browser_tab() as tab:
        page = tab.page
        page.on("dialog", accept)
        await open_logged_in(page, console, "/console/noise")
        assert "nonce" in await page.inner_text("#noise-images")
        await tab.shoot("console-noise.png")
        await page.click("#noise-images >> text=Reset noise")
        await page.wait_for_selector("#notice")
        assert "Noise of images forgotten (1 paths)" in await page.inner_text("#notice")
        assert "Nothing learned" in await page.inner_text("#noise-images")
        assert tab.errors == []
