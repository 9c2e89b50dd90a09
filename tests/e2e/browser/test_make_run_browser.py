"""`make run` as a newcomer meets it, in a real browser: the console URL it prints logs in and leaves no
token in the address bar, a wrong token gets no page, the storefront makes an image through the proxy on
either side (a flag cookie moves it), and the console's reload button shows the new percent at once."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Dialog

from tests.e2e.browser.conftest import browser_tab, until
from tests.e2e.conftest import REPO, free_port, shipped_routes, stack_env, wait_until_up

PROMPT = "a lighthouse at dusk"


@dataclass
class MadeRun:
    """`make run` on free ports, with the shipped routes.yaml at 100 %, its admin token left to make."""

    proxy: str
    admin: str
    routes: Path
    token_file: Path
    output: Path

    def console_url(self) -> str:
        found = re.search(r"console\s+(http://\S+/console\?token=[0-9a-f]+)", self.output.read_text())
        assert found, self.output.read_text()[-2000:]
        return found.group(1)


def routes_at(text: str, percent: int) -> str:
    changed, count = re.subn(r"(rollout:\n\s+percent: )\d+", rf"\g<1>{percent}", text)
    assert count == 1
    return changed


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadeRun]:
    workdir = tmp_path_factory.mktemp("make-run-browser")
    ports = {name: free_port() for name in ("legacy", "imageservice", "proxy", "admin")}
    routes = workdir / "routes.yaml"
    routes.write_text(routes_at(shipped_routes(ports), 100))
    env = {k: v for k, v in stack_env(workdir, ports).items() if not k.startswith("STRANGLER_ADMIN_TOKEN")}
    env["ROUTES_FILE"] = str(routes)
    run = MadeRun(f"http://127.0.0.1:{ports['proxy']}", f"http://127.0.0.1:{ports['admin']}", routes,
                  workdir / "admin.token", workdir / "make-run.log")  # fmt: skip
    with run.output.open("wb") as sink:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"SHADOW_KEY_FILE={workdir / 'shadow.key'}",
             f"ADMIN_TOKEN_FILE={run.token_file}"],
            cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        for url in (f"{run.admin}/healthz", f"http://127.0.0.1:{ports['legacy']}/healthz",
                    f"http://127.0.0.1:{ports['imageservice']}/healthz", f"{run.proxy}/healthz"):  # fmt: skip
            wait_until_up(url, process)
        yield run
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def test_the_printed_console_url_logs_in_and_leaves_no_token_in_the_address_bar(
    made_run: MadeRun,
) -> None:
    url = made_run.console_url()
    token = made_run.token_file.read_text().strip()
    assert url == f"{made_run.admin}/console?token={token}"
    assert stat.S_IMODE(made_run.token_file.stat().st_mode) == 0o600

    async with browser_tab() as tab:
        response = await tab.page.goto(url)
        assert response is not None
        assert response.status == 200
        assert tab.page.url == f"{made_run.admin}/console"
        assert await tab.page.locator("#route-images").count() == 1
        (cookie,) = [c for c in await tab.context.cookies() if c["name"] == "strangler_console"]
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/console")
        assert token not in cookie["value"]
        assert "strangler_console" not in await tab.page.evaluate("document.cookie")
        assert tab.errors == []
        await tab.page.go_back()  # the tab's history: the blank page it opened with, then /console
        assert tab.page.url == "about:blank"


async def test_a_wrong_token_gets_no_page(made_run: MadeRun) -> None:
    async with browser_tab() as tab:
        response = await tab.page.goto(f"{made_run.admin}/console?token=not-the-token")
        assert response is not None
        assert response.status == 401
        assert "That is not the admin token" in await tab.page.inner_text("#login-error")
        assert await tab.page.locator("#route-images").count() == 0
        assert await tab.page.locator("nav").count() == 0
        assert [c for c in await tab.context.cookies() if c["name"] == "strangler_console"] == []


async def test_the_storefront_makes_an_image_through_the_proxy_on_either_side(made_run: MadeRun) -> None:
    async with browser_tab() as tab:
        page = tab.page
        await page.goto(f"{made_run.proxy}/")
        uid = [c for c in await tab.context.cookies() if c["name"] == "uid"]
        assert len(uid) == 1  # the page gave this visitor a sticky key

        made = []
        for cookie in (None, "old"):  # 100 %: the image service; the opt-out flag cookie: the monolith
            if cookie:
                flag = {"name": "images_backend", "value": cookie, "url": made_run.proxy}
                await tab.context.add_cookies([flag])  # type: ignore[list-item]
            await page.fill("#prompt", PROMPT)
            await page.select_option("#size", "256x256")
            if made:  # wait for the new generation, not the one shown
                await page.evaluate("document.getElementById('generation-id').remove()")
            await page.click("#make-button")
            await page.locator("#generation-id").wait_for()
            made.append(await page.inner_text("#generation-id"))
            await until(page, "[...document.querySelectorAll('#result img')].every(i => i.naturalWidth > 0)")
            assert await page.eval_on_selector("#result img", "i => i.naturalWidth") == 256
        assert made[0].startswith("img_")
        assert made[1].startswith("leg_")
        assert "made by the monolith" in await page.inner_text("#result")
        await until(page, "[...document.querySelectorAll('#history img')].every(i => i.naturalWidth > 0)")
        await tab.shoot("storefront.png")

        await page.reload()  # the earlier images are the browser's own, and still shown
        ids = await page.locator("#history .earlier code.id").all_inner_texts()
        assert ids == [made[1], made[0]]
        await until(page, "[...document.querySelectorAll('#history img')].every(i => i.naturalWidth > 0)")
        assert tab.errors == []


async def test_the_consoles_reload_button_shows_the_new_percent_at_once(made_run: MadeRun) -> None:
    async with browser_tab() as tab:
        page = tab.page
        page.on("dialog", accept)
        await page.goto(made_run.console_url())
        assert await page.inner_text("#percent-images") == "100 %"
        made_run.routes.write_text(routes_at(made_run.routes.read_text(), 40))
        await page.click("text=Reload routes.yaml")
        await page.wait_for_selector("#notice")
        assert "Reloaded" in await page.inner_text("#notice")
        assert await page.inner_text("#percent-images") == "40 %"
        assert tab.errors == []
