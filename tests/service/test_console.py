"""The web console at /ui, in a real headless Chromium against a real gateway and the fake upstreams.

The browser is Debian's chromium (`.ci/browser` installs it), driven by Playwright for Python;
Playwright's own browser downloads are never used. Each test opens a fresh browser context, and
fails if the page logs an error, throws, or asks anything of another origin than the gateway.

Screenshots of every page (desktop and phone width) are saved in the run's temporary folder
(`<pytest tmp>/console-screenshots0/`); with PUREAI_UPDATE_SCREENSHOTS=1 the playground's is
also copied to docs/console-playground.png, the README's picture.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Route,
    expect,
    sync_playwright,
)

from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import ADMIN_KEY, Gateway

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "console" / "src"
BUILT = ROOT / "service" / "console"
DESKTOP = {"width": 1280, "height": 900}
# The only calls the console may make: the documented API (README, ../shared/spec/api-reference.txt).
DOCUMENTED = re.compile(
    r"GET /v1/models|GET /v1/providers|POST /v1/router|GET /v1/usage"
    r"|(GET|POST) /v1/admin/keys|DELETE /v1/admin/keys/[^/]+"
    r"|(GET|POST) /v1/admin/deployments|DELETE /v1/admin/deployments/[^/]+"
    r"|GET /v1/admin/router|GET /v1/admin/router/stats"
)
PHONE = {"width": 375, "height": 812}

expect.set_options(timeout=15_000)  # a shared 2-core machine: give the first decisions room


# -- the built files ---------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_built_files_match_their_sources() -> None:
    """service/console/ is what `npm run build` makes of console/src/ and the pinned uPlot: the
    manifest it wrote holds the hash of every source and every built file (checked here without
    Node.js or the network; `npm run check` rebuilds and compares byte for byte)."""
    manifest = json.loads((BUILT / "manifest.json").read_text())
    sources = tree(SOURCES)
    built = tree(BUILT)
    built.pop("manifest.json")
    rebuild = "run `npm ci && npm run build` in console/"
    assert manifest["sources"] == sources, f"console/src/ changed since the build: {rebuild}"
    assert manifest["files"] == built, f"service/console/ was edited by hand: {rebuild}"
    for path, digest in sources.items():
        assert built[path] == digest, f"{path}: the built copy differs from its source"

    lock = json.loads((ROOT / "console" / "package-lock.json").read_text())
    pins = json.loads((ROOT / "console" / "package.json").read_text())["dependencies"]
    vendored = set()
    for name, entry in manifest["vendor"].items():
        locked = lock["packages"][f"node_modules/{name}"]
        assert entry["version"] == locked["version"] == pins[name]
        assert entry["integrity"] == locked["integrity"]
        vendored |= set(entry["files"])
    assert set(built) == set(sources) | vendored
    assert "uPlot.js (μPlot)" in (BUILT / "vendor/uplot/uPlot.esm.js").read_text()[:400]
    assert (BUILT / "vendor/uplot/LICENSE").read_text().startswith("The MIT License")  # shipped with it


def test_the_gateway_serves_the_console_at_ui(gateway: Gateway) -> None:
    moved = gateway.http.get("/ui")
    assert (moved.status_code, moved.headers["location"]) == (307, "ui/")
    page = gateway.http.get("/ui/")  # static files: no key needed, no data in them
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in page.text and "connect-src 'self'" in page.text
    script = gateway.http.get("/ui/js/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    missing = gateway.http.get("/ui/js/nothing.js")
    assert missing.status_code == 404 and "error" in missing.json()


@pytest.mark.parametrize(
    "path", ["/ui/", "/ui/index.html", "/ui/js/main.js", "/ui/vendor/uplot/uPlot.esm.js"]
)
def test_console_files_are_revalidated_on_every_use(gateway: Gateway, path: str) -> None:
    """`no-cache` with an ETag: a browser keeps the files but asks each time, and a file that has not
    changed costs a body-less 304 (the names carry no hash, so an upgrade must never mix versions)."""
    first = gateway.http.get(path)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = gateway.http.get(path, headers={"if-none-match": etag})
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["cache-control"] == "no-cache" and again.headers["etag"] == etag
    changed = gateway.http.get(path, headers={"if-none-match": '"another-version"'})
    assert changed.status_code == 200 and changed.content == first.content


# -- the browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


class Console:
    """A page of the console, and what it did: every URL it asked for, the JSON bodies it posted to
    /v1/router, and its problems (console errors, exceptions, requests to other origins)."""

    def __init__(self, page: Page, gateway: Gateway) -> None:
        self.page = page
        self.gateway = gateway
        self.urls: list[str] = []
        self.routed: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.expected_errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(e in message.text for e in self.expected_errors):
            self.problems.append(f"console error: {message.text}")

    def _request(self, request: Request) -> None:
        self.urls.append(request.url)
        if not request.url.startswith((self.gateway.url + "/", "blob:", "data:")):
            self.problems.append(f"a request to another origin: {request.url}")
        path = urlsplit(request.url).path
        call = f"{request.method} {path}"
        if (
            request.url.startswith(self.gateway.url)
            and not path.startswith("/ui")
            and not DOCUMENTED.fullmatch(call)
        ):
            self.problems.append(f"an undocumented call: {call}")
        if request.method == "POST" and request.url.endswith("/v1/router"):
            self.routed.append(json.loads(request.post_data or "{}"))

    def open(self, page: str = "playground") -> None:
        self.page.goto(f"{self.gateway.url}/ui/#/{page}")

    def sign_in(self, page: str = "playground") -> None:
        self.open(page)
        self.page.get_by_label("Admin key", exact=True).fill(ADMIN_KEY)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.locator(f"#page-{page}")).to_be_visible()

    def ready(self, page: str) -> None:
        """Wait until `page` shows its data."""
        p = self.page
        if page == "playground":
            expect(p.locator("#path-summary")).to_contain_text("The choice along cost_weight")
            expect(p.locator("#decision")).to_have_attribute("aria-busy", "false")
        elif page == "usage":
            expect(p.locator("#usage-status")).to_contain_text("ledger rows")
        else:
            expect(p.locator("#keys-status")).to_contain_text(re.compile(r"\d+ active keys?\."))
            expect(p.locator("#deployments-table tbody tr").first).to_be_visible()

    def shot(self, folder: Path, name: str) -> Path:
        path = folder / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path


@pytest.fixture()
def console(browser: Browser, gateway: Gateway) -> Iterator[Console]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    c = Console(page, gateway)
    try:
        yield c
    finally:
        context.close()
    assert c.problems == []
    secrets = [ADMIN_KEY]
    assert not [u for u in c.urls if any(s in u for s in secrets)], "a key went into a URL"


def api_decision(gateway: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    r = gateway.http.post("/v1/router", headers=gateway.admin(), json={**body, "execute": False})
    assert r.status_code == 200, r.text
    decision: dict[str, Any] = r.json()
    return decision


def only_models(page: Page, *models: str) -> None:
    page.get_by_role("button", name="Uncheck all").click()
    for model in models:
        page.locator(f'#model-choices input[value="{model}"]').check()


def duration_ms(text: str) -> float:
    """'43 ms' or '1.25 s', as the console writes durations."""
    number, unit = text.split()
    return float(number) * (1000 if unit == "s" else 1)


def curl(gateway: Gateway, key: str, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    """POST /v1/chat/completions with the real curl binary: status, headers, body."""
    done = subprocess.run(
        [
            "curl", "-sS", "--noproxy", "*", "--max-time", "30", "-D", "-",
            "-H", f"x-api-key: {key}", "-H", "Content-Type: application/json",
            "-d", json.dumps(body), gateway.url + "/v1/chat/completions",
        ],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    head, _, body = done.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


# -- sign-in ------------------------------------------------------------------------------------------


def test_sign_in_takes_an_admin_key_and_keeps_it_in_session_storage_only(
    console: Console, gateway: Gateway
) -> None:
    page = console.page
    tenant_key = gateway.new_key(tenant="t-console", name="not-an-admin")
    console.expected_errors.append("status of 401")
    console.expected_errors.append("status of 403")
    console.open()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Console pages")).to_be_hidden()

    field = page.get_by_label("Admin key", exact=True)
    field.fill("pk-nobody-0000")
    field.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("The gateway does not know this key (or it was revoked).")
    field.fill(tenant_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("This key is not an admin key: the console needs one.")

    field.fill(ADMIN_KEY)
    field.press("Enter")
    expect(page.get_by_role("heading", name="Playground", level=1)).to_be_visible()
    expect(field).to_have_value("")
    assert page.evaluate("Object.entries(sessionStorage)") == [["pureai.console.key", ADMIN_KEY]]
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []
    console.ready("playground")

    page.reload()  # the session survives a reload of the tab
    expect(page.get_by_role("heading", name="Playground", level=1)).to_be_visible()
    console.ready("playground")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert not [u for u in console.urls if tenant_key in u]
    assert ADMIN_KEY not in gateway.logs() and tenant_key not in gateway.logs()


# -- the playground -------------------------------------------------------------------------------------


def test_the_decision_follows_the_cost_weight_slider(console: Console, gateway: Gateway) -> None:
    page = console.page
    console.sign_in()
    console.ready("playground")
    prompt = "Prove that the square root of 2 is irrational, step by step."
    page.get_by_label("Message 1", exact=True).fill(prompt)
    only_models(page, "gpt-4o", "pureai/gemma-3-4b-it")
    body = {"messages": [{"role": "user", "content": prompt}], "models": ["gpt-4o", "pureai/gemma-3-4b-it"]}
    best = api_decision(gateway, {**body, "cost_weight": 0})
    cheapest = api_decision(gateway, {**body, "cost_weight": 1})
    assert best["selected_model"] != cheapest["selected_model"]

    slider = page.get_by_role("slider", name="cost_weight")
    slider.focus()
    slider.press("Home")  # the keyboard moves it
    expect(page.locator("#cost-weight-value")).to_have_text("0.00")
    expect(page.locator("#decision")).to_have_attribute("data-cost-weight", "0")
    expect(page.locator("#chosen-model")).to_have_text(best["selected_model"])
    expect(page.locator("#confidence")).to_have_text(f"{round(best['confidence'] * 100)}%")
    expect(page.locator("#reasoning")).to_have_text(best["reasoning"])
    rows = page.locator("#candidates-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-model", best["candidates"][0]["model"])
    expect(page.locator("#candidates-table tr.chosen th")).to_contain_text(best["selected_model"])
    expect(page.locator("#capabilities li")).to_have_count(len(best["capabilities"]))
    expect(page.locator("#qc-chart canvas")).to_have_count(1)
    path = page.locator("#path-summary")
    expect(path).to_contain_text(best["selected_model"])
    expect(path).to_contain_text(cheapest["selected_model"])

    slider.press("End")
    expect(page.locator("#decision")).to_have_attribute("data-cost-weight", "1")
    expect(page.locator("#chosen-model")).to_have_text(cheapest["selected_model"])
    expect(page.locator("#cost-weight-value")).to_have_text("1.00")
    slider.press("ArrowLeft")
    expect(page.locator("#cost-weight-value")).to_have_text("0.95")
    expect(page.locator("#decision")).to_have_attribute("data-cost-weight", "0.95")

    # What the page showed is what it asked: the documented body, with the chosen models.
    last = console.routed[-1]
    assert last == {**body, "cost_weight": 0.95, "execute": False}
    assert {b["cost_weight"] for b in console.routed} >= {i / 10 for i in range(11)}  # the path

    # A conversation: every turn goes to the router, which reads the last user turn.
    page.get_by_role("button", name="Add a message").click()
    page.get_by_label("Message 2", exact=True).fill("Here is a proof by contradiction.")
    expect(page.get_by_label("Role of message 2")).to_have_value("assistant")
    page.get_by_role("button", name="Add a message").click()
    page.get_by_label("Message 3", exact=True).fill("Now make it shorter.")
    expect(page.locator("#path-summary")).to_contain_text("The choice along cost_weight")
    expect(page.locator("#decision")).to_have_attribute("aria-busy", "false")
    turns = console.routed[-1]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    page.get_by_role("button", name="Remove message 2").click()
    expect(page.get_by_label("Message 3", exact=True)).to_have_count(0)
    expect(page.get_by_label("Message 2", exact=True)).to_have_value("Now make it shorter.")


def test_run_it_streams_the_answer_and_shows_its_usage(
    console: Console, gateway: Gateway, fresh: tuple[FakeUpstream, FakeUpstream], shots: Path
) -> None:
    page = console.page
    console.sign_in()
    console.ready("playground")
    # Every candidate that has a provider here (a run needs one), so that the picture has a path.
    only_models(
        page, *(m["id"] for m in gateway.http.get("/v1/models", headers=gateway.admin()).json()["data"])
    )
    page.locator('#model-choices input[value="unconfigured-model"]').uncheck()
    prompt = "Write a Python function that merges two sorted lists into one sorted list."
    page.get_by_label("Message 1", exact=True).fill(prompt)
    console.ready("playground")
    chosen = page.locator("#chosen-model").inner_text()
    for upstream in fresh:
        upstream.script({"chunk_delay_ms": 250})  # ~16 pieces: about four seconds of stream

    page.get_by_role("button", name="Run it").click()
    status = page.locator("#run-status")
    answer = page.locator("#answer")
    expect(status).to_have_text(f"Streaming from {chosen}…")  # the decision shown is the one run
    expect(answer).to_contain_text("Hello from")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    partial = answer.inner_text()
    expect(status).to_have_text(f"Done: {chosen} answered.")
    expect(answer).to_have_text(re.compile(rf"^Hello from [AB]: {re.escape(prompt[:60])}$"))
    assert len(partial) < len(answer.inner_text())  # it arrived in pieces, as they streamed
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    (sent,) = fresh[0].requests() + fresh[1].requests()
    assert sent["body"]["stream"] is True
    rows = gateway.http.get("/v1/usage", headers=gateway.admin(), params={"limit": 1, "key_id": "admin-env"})
    row = rows.json()["data"][0]
    assert (row["endpoint"], row["model"], row["stream"], row["routed"]) == ("router", chosen, True, True)

    def fact(name: str) -> Locator:
        return page.locator(f'[data-fact="{name}"]')

    expect(fact("Model")).to_have_text(chosen)
    expect(fact("Provider")).to_have_text(row["provider"])
    expect(fact("Prompt tokens")).to_have_text(str(row["prompt_tokens"]))
    expect(fact("Completion tokens")).to_have_text(str(row["completion_tokens"]))
    # the run's cost as the ledger has it, at three significant figures (dom.js `usd`:
    # toPrecision(3), written without an exponent from 1e-6 up)
    cost = row["total_cost_usd"]
    assert 1e-6 <= cost < 0.01, cost
    expect(fact("Total cost")).to_have_text(f"${cost:.{2 - math.floor(math.log10(cost))}f}")
    expect(fact("Latency")).to_have_text(re.compile(r"^\d+ ms$|^\d+\.\d\d s$"))
    expect(fact("Time to first token")).to_have_text(re.compile(r"^\d+ ms$|^\d+\.\d\d s$"))
    assert duration_ms(fact("Time to first token").inner_text()) == pytest.approx(row["ttft_ms"], abs=10)
    assert duration_ms(fact("Latency").inner_text()) == pytest.approx(row["latency_ms"], abs=10)

    playground = console.shot(shots, "playground")
    if os.environ.get("PUREAI_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(playground, ROOT / "docs" / "console-playground.png")


# -- keys, usage, revocation --------------------------------------------------------------------------


def test_a_key_made_in_the_console_works_shows_in_usage_and_is_refused_once_revoked(
    console: Console, gateway: Gateway, fresh: tuple[FakeUpstream, FakeUpstream], shots: Path
) -> None:
    page = console.page
    console.sign_in("keys")
    console.ready("keys")
    name = "console-e2e-" + os.urandom(3).hex()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Tenant", exact=True).fill("t-console")
    page.locator("#key-models").get_by_label("gpt-4o-mini", exact=True).check()
    page.get_by_label("Requests per minute").fill("50")
    page.get_by_label("Budget (USD)").fill("5")
    page.get_by_role("button", name="Create key").click()

    shown = page.get_by_role("region", name="New key, shown once")
    expect(shown).to_be_visible()
    expect(shown).to_be_focused()
    secret = page.locator("#new-key-secret").inner_text()
    assert re.fullmatch(r"pk-\S+", secret)
    key_id = shown.get_attribute("data-key")
    row = page.locator(f'#keys-table tr[data-key="{key_id}"]')
    expect(row).to_contain_text(name)
    expect(row.locator("td").nth(1)).to_have_text("gpt-4o-mini")
    expect(row.locator("td").nth(2)).to_have_text("50")
    expect(row.locator(".key-status")).to_have_text("active")

    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello from curl"}]}
    status, headers, text = curl(gateway, secret, chat)
    assert status == 200, text
    request_id = headers["x-request-id"]
    assert json.loads(text)["choices"][0]["message"]["content"] == "Hello from A: Hello from curl"

    api_decision(gateway, {"messages": chat["messages"]})  # a decision-only row, by the admin key

    page.get_by_role("link", name="Usage").click()
    console.ready("usage")
    page.get_by_label("Key", exact=True).select_option(key_id)
    expect(page.locator("#usage-status")).to_contain_text("1 ledger rows")
    expect(page.locator('[data-tile="Requests"]')).to_have_text("1")
    expect(page.locator(f'#usage-recent tr[data-request="{request_id}"]')).to_contain_text("gpt-4o-mini")
    expect(page.locator('#usage-models tr[data-model="gpt-4o-mini"] td').first).to_have_text("1")
    expect(page.locator(f'#usage-keys tr[data-key="{key_id}"]')).to_contain_text(name)
    expect(page.locator("#chart-spend-model .u-legend")).to_contain_text("gpt-4o-mini")
    expect(page.locator("#chart-spend-key .u-legend")).to_contain_text(name)
    expect(page.locator("#chart-requests .u-legend")).to_contain_text("executed")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    saved = download.value.path()
    (exported,) = list(csv.DictReader(io.StringIO(Path(saved).read_text())))
    assert (exported["request_id"], exported["key_id"], exported["model"], exported["status"]) == (
        request_id,
        key_id,
        "gpt-4o-mini",
        "200",
    )
    assert float(exported["total_cost_usd"]) > 0
    page.get_by_label("Key", exact=True).select_option("")
    expect(page.locator("#usage-status")).to_contain_text("ledger rows")
    decisions = page.locator("#usage-recent tbody tr", has_text="router (decision)")
    expect(decisions).to_have_count(0)  # the playground's decisions stay out of the way...
    page.get_by_label("Show decision-only calls").check()
    expect(decisions.first).to_be_visible()  # ...until asked for
    console.shot(shots, "usage")

    page.get_by_role("link", name="Keys & deployments").click()
    console.ready("keys")
    row.get_by_role("button", name=f"Revoke {name}").click()
    dialog = page.get_by_role("dialog", name="Revoke this key?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # changing one's mind keeps the key
    expect(dialog).to_be_hidden()
    expect(row.locator(".key-status")).to_have_text("active")
    assert curl(gateway, secret, chat)[0] == 200

    row.get_by_role("button", name=f"Revoke {name}").click()
    dialog.get_by_role("button", name="Revoke").click()
    expect(page.locator("#keys-status")).to_contain_text(f"Revoked {name}. ")
    expect(row).to_have_count(0)  # revoked keys are hidden until asked for
    page.get_by_label("Show revoked keys").check()
    expect(row.locator(".key-status")).to_contain_text("revoked")
    status, _, text = curl(gateway, secret, chat)
    assert status == 401, text
    assert json.loads(text)["error"]["code"] == "invalid_api_key"
    console.shot(shots, "keys")


def test_router_versions_show_the_share_and_mean_feedback_per_model(
    console: Console, gateway: Gateway, fresh: tuple[FakeUpstream, FakeUpstream], shots: Path
) -> None:
    key = gateway.new_key(tenant="t-versions", name="versions")
    body = {
        "messages": [{"role": "user", "content": "Which version routed me?"}],
        "models": ["claude-3-haiku"],
    }
    for score in (1.0, 0.0, 0.5):
        r = gateway.http.post("/v1/router", headers={"x-api-key": key}, json=body)
        assert r.status_code == 200, r.text
        rated = {"request_id": r.headers["x-request-id"], "score": score}
        assert gateway.http.post("/v1/feedback", headers={"x-api-key": key}, json=rated).status_code == 201
    api = gateway.http.get("/v1/admin/router/stats", headers=gateway.admin()).json()
    stat = next(x for x in api["data"] if x["version"] == api["current"] and x["model"] == "claude-3-haiku")
    assert stat["requests"] >= 3 and stat["feedback_count"] >= 3
    learning = gateway.http.get("/v1/admin/router", headers=gateway.admin()).json()["learning"]

    page = console.page
    console.sign_in("usage")
    console.ready("usage")
    row = page.locator(f'#router-versions tr[data-version="{api["current"]}"][data-model="claude-3-haiku"]')
    cells = row.locator("td")
    expect(cells.nth(0)).to_contain_text("in service")
    expect(cells.nth(1)).to_have_text(str(stat["requests"]))
    expect(cells.nth(2)).to_have_text(f"{stat['share']:.0%}")
    expect(cells.nth(3)).to_have_text(str(stat["feedback_count"]))
    expect(cells.nth(4)).to_have_text(f"{stat['mean_score']:.2f}")
    expect(cells.nth(5)).to_have_text(f"{learning['claude-3-haiku']['quality_shift']:+.3f}")
    row.scroll_into_view_if_needed()
    console.shot(shots, "router-versions")


def test_a_deployment_registered_in_the_console_serves_and_is_removed(
    console: Console, gateway: Gateway, fresh: tuple[FakeUpstream, FakeUpstream], shots: Path
) -> None:
    page = console.page
    console.sign_in("keys")
    console.ready("keys")
    for model in ("pureai/gemma-3-4b-it", "pureai/DeepSeek-R1-Distill-Llama-8B"):  # the catalogue file's
        providers = gateway.http.get("/v1/providers", headers=gateway.admin(), params={"model": model})
        listed = ", ".join(f"{p['id']} ({p['type']})" for p in providers.json()["providers"])
        cells = page.locator(f'#deployments-table tr[data-model="{model}"] td')
        expect(cells.nth(0)).to_have_text("catalogue file")
        expect(cells.nth(2)).to_have_text(listed)

    name = "console-" + os.urandom(3).hex()
    model = f"pureai/{name}"
    secret = "sk-console-" + os.urandom(6).hex()
    console.expected_errors.append("status of 400")
    page.get_by_label("Model id").fill(name)
    page.get_by_label("Base URL (OpenAI-compatible)").fill("ftp://10.0.0.5/v1")
    page.get_by_label("Input USD / 1M tokens").fill("0.1")
    page.get_by_label("Output USD / 1M tokens").fill("0.2")
    page.get_by_role("button", name="Register deployment").click()
    error = page.locator("#deploy-base-error")  # at the field the gateway named
    expect(error).to_contain_text("must be an http:// or https:// URL")  # the gateway's own check
    base = page.get_by_label("Base URL (OpenAI-compatible)")
    expect(base).to_be_focused()
    expect(base).to_have_attribute("aria-invalid", "true")
    expect(base).to_have_attribute("aria-errormessage", "deploy-base-error")

    base.fill(fresh[1].url)
    page.get_by_label("API key", exact=True).fill(secret)
    page.get_by_label("Context window").fill("16384")
    page.get_by_role("button", name="Add a backup provider").click()
    expect(page.get_by_label("Provider id")).to_be_focused()  # the keyboard lands in the new row
    page.keyboard.type("replica-a")
    page.locator("#deploy-backups").get_by_label("Base URL").fill(fresh[0].url)
    page.get_by_label("Model id").press("Enter")  # submits the form
    expect(page.locator("#deployments-status")).to_contain_text(
        f"Registered {model}. 1 registered deployment"
    )
    expect(page.locator("#deployments-title")).to_be_focused()
    expect(error).to_be_empty()
    expect(base).not_to_have_attribute("aria-invalid", "true")
    row = page.locator(f'#deployments-table tr[data-model="{model}"] td')
    expect(row.nth(0)).to_have_text("registered")
    expect(row.nth(1)).to_have_text(fresh[1].url)
    expect(row.nth(2)).to_have_text("pureai (primary), replica-a (backup)")
    expect(row.nth(3)).to_have_text("0.1 / 0.2")
    expect(row.nth(4)).to_have_text("16,384")
    expect(row.nth(5)).to_have_text("set")
    expect(
        page.locator("#key-models").get_by_label(model, exact=True)
    ).to_be_visible()  # a key may be limited to it
    assert secret not in page.content()
    console.shot(shots, "deployments")

    chat = {"model": model, "messages": [{"role": "user", "content": "Hello from the console"}]}
    r = gateway.http.post("/v1/chat/completions", headers=gateway.admin(), json=chat)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Hello from B: Hello from the console"
    assert fresh[1].requests()[-1]["headers"]["authorization"] == f"Bearer {secret}"

    page.get_by_role("button", name=f"Remove {model}").click()
    dialog = page.get_by_role("dialog", name="Remove this deployment?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Remove").click()
    expect(page.locator("#deployments-status")).to_contain_text(f"Removed {model}. 0 registered deployments")
    expect(page.locator(f'#deployments-table tr[data-model="{model}"]')).to_have_count(0)
    r = gateway.http.post("/v1/chat/completions", headers=gateway.admin(), json=chat)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert secret not in gateway.logs()


def problems_free(console: Console) -> bool:
    assert console.problems == []
    return True


def test_the_usage_figures(console: Console) -> None:
    """stats.js, the Usage page's arithmetic, run in the browser on rows made up here."""
    console.sign_in("usage")
    console.ready("usage")
    rows = [
        {"request_id": "r1", "created": 1000.0, "key_id": "k1", "tenant": "t", "endpoint": "router", "model": "a",
         "provider": "p", "status": 200, "stream": True, "routed": True, "attempts": 1, "prompt_tokens": 10,
         "completion_tokens": 5, "total_cost_usd": 0.5, "latency_ms": 100.0, "ttft_ms": 20.0, "error": None},
        {"request_id": "r2", "created": 1070.0, "key_id": "k1", "tenant": "t", "endpoint": "router", "model": "b",
         "provider": "p", "status": 200, "stream": False, "routed": True, "attempts": 2, "prompt_tokens": 10,
         "completion_tokens": 5, "total_cost_usd": 0.25, "latency_ms": 300.0, "ttft_ms": 300.0, "error": None},
        {"request_id": "r3", "created": 1080.0, "key_id": "k2", "tenant": "t", "endpoint": "router", "model": "b",
         "provider": None, "status": 200, "stream": False, "routed": True, "attempts": 0, "prompt_tokens": 0,
         "completion_tokens": 0, "total_cost_usd": 0.0, "latency_ms": 5.0, "ttft_ms": None, "error": None},
        {"request_id": "r4", "created": 1090.0, "key_id": "k2", "tenant": "t", "endpoint": "chat.completions",
         "model": "=HYPERLINK(\"x\")", "provider": "p", "status": 502, "stream": False, "routed": False,
         "attempts": 2, "prompt_tokens": 0, "completion_tokens": 0, "total_cost_usd": 0.0, "latency_ms": 50.0,
         "ttft_ms": None, "error": "upstream_error, again"},
    ]  # fmt: skip
    figures = console.page.evaluate(
        """async (rows) => {
          const s = await import("./js/stats.js");
          return {
            kinds: rows.map(s.kind),
            totals: s.totals(rows),
            share: s.routerShare(rows),
            time: s.overTime(rows, 1000, 1120, (r) => r.key_id, (r) => r.total_cost_usd),
            csv: s.csv(rows).split("\\r\\n"),
            median: s.percentile([4, 1, 3, 2], 50),
            series: [...rows, { ...rows[0], model: "gone", total_cost_usd: 0.1 }].map(s.spendSeries(new Set(["a"]))),
          };
        }""",
        rows,
    )
    assert figures["kinds"] == ["executed", "executed", "decision", "error"]
    totals = figures["totals"]
    assert (totals["requests"], totals["decisions"], totals["spend"]) == (3, 1, 0.75)
    assert (totals["errorRate"], totals["fallbackRate"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert totals["latency"][0] == 200 and totals["ttft"] == [20, 20, 20]  # TTFT: streamed only
    assert figures["share"] == [
        {"model": "b", "sent": 1, "decided": 1, "share": 0.5},  # ties: the more decided first
        {"model": "a", "sent": 1, "decided": 0, "share": 0.5},
    ]
    time = figures["time"]
    assert (time["width"], time["xs"]) == (60, [960, 1020, 1080])
    assert time["groups"] == [
        {"label": "k1", "values": [0.5, 0.25, 0], "total": 0.75},
        {"label": "k2", "values": [0, 0, 0], "total": 0},
    ]
    header, *lines, last = figures["csv"]
    assert header.startswith("request_id,created,key_id") and last == "" and len(lines) == 4
    assert lines[0].startswith("r1,1970-01-01T00:16:40.000Z,k1,")
    assert '"\'=HYPERLINK(""x"")"' in lines[3] and lines[3].endswith('"upstream_error, again"')
    assert figures["median"] == 2.5
    # Spend per model: a known model is a series; spend on others is "other models"; decisions and
    # refused requests for names the gateway does not have are left out
    assert figures["series"] == ["a", "other models", None, None, "other models"]


# -- layout at a laptop's and a phone's width (issue 19) ----------------------------------------------

WIDTHS = {"1440px": {"width": 1440, "height": 900}, "390px": {"width": 390, "height": 844}}


@pytest.fixture(params=list(WIDTHS))
def sized(request: pytest.FixtureRequest, browser: Browser, gateway: Gateway) -> Iterator[Console]:
    """A console page at each of WIDTHS; the narrow one as a phone's (mobile viewport, touch)."""
    viewport = WIDTHS[request.param]
    narrow = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, is_mobile=narrow, has_touch=narrow)
    c = Console(context.new_page(), gateway)
    try:
        yield c
    finally:
        context.close()
    assert c.problems == []


def width_of(console: Console) -> str:
    size = console.page.viewport_size
    assert size is not None
    return f"{size['width']}px"


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not on the page"
    return {**found, "right": found["x"] + found["width"], "bottom": found["y"] + found["height"]}


def within(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    return (
        inner["x"] >= outer["x"] - slack
        and inner["right"] <= outer["right"] + slack
        and inner["y"] >= outer["y"] - slack
        and inner["bottom"] <= outer["bottom"] + slack
    )


def assert_fits(page: Page, table: str) -> None:
    """`table` is no wider than its scrolling wrapper, which is inside its panel and the screen,
    and every visible cell is inside the wrapper: nothing is cut off or scrolled out of sight."""
    wrap = page.locator(f"{table} >> xpath=ancestor::div[contains(@class, 'table-wrap')]")
    panel = page.locator(f"{table} >> xpath=ancestor::*[contains(@class, 'panel')][1]")
    outer = box(wrap)
    size = page.viewport_size
    assert size is not None
    assert within(outer, box(panel)) and outer["x"] >= 0 and outer["right"] <= size["width"]
    widths = wrap.evaluate("w => [w.scrollWidth, w.clientWidth]")
    assert widths[0] <= widths[1] + 1, f"{table} is {widths[0]}px wide in a {widths[1]}px wrapper"
    cells = page.locator(f"{table} tbody :is(th, td)")
    for i in range(cells.count()):
        if cells.nth(i).is_visible():
            cell = box(cells.nth(i))
            assert within(cell, outer), f"{table}: {cells.nth(i).inner_text()!r} at {cell} outside {outer}"


# The text of each `selector` match that takes more than one line or overflows its box.
BROKEN = """(selector) => [...document.querySelectorAll(selector)].filter((el) => {
  if (!el.getClientRects().length) return false;
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = [...range.getClientRects()].filter((r) => r.width > 0).map((r) => r.top).sort((a, b) => a - b);
  const size = parseFloat(getComputedStyle(el).fontSize);
  const lines = tops.filter((t, i) => i === 0 || t - tops[i - 1] > 0.6 * size).length;
  const overflows = getComputedStyle(el).display !== "inline" && el.scrollWidth > el.clientWidth + 1;
  return lines > 1 || overflows;
}).map((el) => el.textContent.trim())"""


def broken(page: Page, selector: str) -> list[str]:
    assert page.locator(selector).count() > 0, f"nothing matches {selector}"
    found: list[str] = page.evaluate(BROKEN, selector)
    return found


def test_the_keys_table_fits_its_panel_with_a_long_model_list(
    sized: Console, gateway: Gateway, shots: Path
) -> None:
    models = [m["id"] for m in gateway.http.get("/v1/models", headers=gateway.admin()).json()["data"]]
    name = "every-model-" + os.urandom(3).hex()
    limits = {"rpm": 50, "tpm": 1_000_000, "budget_usd": 125.5}
    body = {"tenant": "t-wide", "name": name, "models": models, **limits}
    # a name and a tenant with no break in them must break, not widen the table
    unbroken = {"tenant": "t" + os.urandom(24).hex(), "name": "k" + os.urandom(24).hex()}
    assert gateway.http.post("/v1/admin/keys", headers=gateway.admin(), json=unbroken).status_code == 201
    made = gateway.http.post("/v1/admin/keys", headers=gateway.admin(), json=body)
    assert made.status_code == 201, made.text
    key_id = made.json()["id"]
    page = sized.page
    try:
        sized.sign_in("keys")
        sized.ready("keys")
        row = page.locator(f'#keys-table tr[data-key="{key_id}"]')
        toggle = row.get_by_role("button", name=f"{len(models)} models for {name}")
        expect(toggle).to_have_text(f"{len(models)} models")  # a count, with the list as its tooltip
        expect(toggle).to_have_attribute("title", ", ".join(models))
        listing = page.locator(f'#keys-table tr[data-models-of="{key_id}"]')
        expect(listing).to_be_hidden()
        revoke = row.get_by_role("button", name=f"Revoke {name}")
        for opened in (False, True):
            assert_fits(page, "#keys-table")
            revoke.scroll_into_view_if_needed()
            expect(revoke).to_be_in_viewport(ratio=1)  # all of it: not scrolled away to the right
            for figure in ("50", "1,000,000", "$125.50"):
                expect(row.locator("td.num", has_text=re.compile(f"^{re.escape(figure)}$"))).to_be_visible()
            assert broken(page, "#keys-table td.num, #keys-table .key-status") == []
            if not opened:
                toggle.click()
                expect(toggle).to_have_attribute("aria-expanded", "true")
                # the whole list, wrapped to the table's width
                expect(listing).to_contain_text(", ".join(models))
        row.scroll_into_view_if_needed()
        page.locator("#keys-table").screenshot(path=shots / f"keys-table-{width_of(sized)}.png")
        toggle.click()
        expect(listing).to_be_hidden()
    finally:
        gateway.http.delete(f"/v1/admin/keys/{key_id}", headers=gateway.admin())


def test_the_catalogue_files_deployments_show_their_base_url_prices_and_context(
    sized: Console, gateway: Gateway, shots: Path
) -> None:
    listed = gateway.http.get("/v1/admin/deployments", headers=gateway.admin()).json()["data"]
    from_file = [d for d in listed if d.get("source") == "catalogue"]
    assert {d["model"] for d in from_file} == {"pureai/gemma-3-4b-it", "pureai/DeepSeek-R1-Distill-Llama-8B"}
    page = sized.page
    sized.sign_in("keys")
    sized.ready("keys")
    for d in from_file:
        cells = page.locator(f'#deployments-table tr[data-model="{d["model"]}"] td')
        expect(cells.nth(0)).to_have_text("catalogue file")
        expect(cells.nth(1)).to_have_text(d["api_base"])
        expect(cells.nth(3)).to_have_text(f"{d['input_per_mtok']:g} / {d['output_per_mtok']:g}")
        expect(cells.nth(4)).to_have_text(f"{d['context_window']:,}")
        expect(cells.nth(6).get_by_role("button")).to_have_count(0)  # removed by editing the file, not here
    assert_fits(page, "#deployments-table")
    assert broken(page, "#deployments-table td.num") == []
    page.locator("#deployments-table").screenshot(path=shots / f"deployments-table-{width_of(sized)}.png")


def test_figures_stay_on_one_line_and_the_candidates_fit(sized: Console, shots: Path) -> None:
    page = sized.page
    sized.sign_in()
    sized.ready("playground")
    expect(page.locator("#confidence")).to_have_text(re.compile(r"^\d+%$"))
    assert broken(page, "#confidence, #complexity, #capabilities .num, #candidates-table td.num") == []
    assert_fits(page, "#candidates-table")
    if width_of(sized) == "390px":  # reflowed: each value says what it is
        first = page.locator("#candidates-table tbody tr").first.locator("td").first
        assert first.evaluate("td => getComputedStyle(td, '::before').content") == '"Quality"'
    page.locator("#decision").screenshot(path=shots / f"decision-{width_of(sized)}.png")

    page.get_by_role("link", name="Usage").click()
    sized.ready("usage")
    assert broken(page, "#usage-tiles dd:not(.hint), #usage-models td.num, #router-share .num") == []
    page.locator("#usage-tiles").screenshot(path=shots / f"usage-tiles-{width_of(sized)}.png")


# A chart of `candidates` in a box as wide as the playground's, and where its labels went.
CHART_LABELS = """async ([candidates, chosen, path]) => {
  const charts = await import("./js/charts.js");
  const host = document.createElement("div");
  host.className = "chart";
  const note = document.createElement("p");
  document.querySelector("#qc-chart").after(host, note);
  const chart = new charts.QualityCostChart(host, { note });
  chart.update(candidates, chosen, path);
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const canvas = host.querySelector("canvas").getBoundingClientRect();
  const plot = chart.plot.bbox.width / devicePixelRatio;
  const out = {
    shown: chart.shown, leftOut: chart.leftOut, note: note.textContent,
    canvas: { width: canvas.width, height: canvas.height },
    ticks: charts.decades(1e-5, 1e-2, plot).length, plot,
  };
  chart.clear();
  host.remove();
  note.remove();
  return out;
}"""


def test_chart_labels_never_overlap(sized: Console, shots: Path) -> None:
    """Sixteen candidates close together (the case of issue 19), and a few apart: each name is
    drawn where it touches no other name or point, cut with "…" or left out (and said so)."""
    page = sized.page
    sized.sign_in()
    sized.ready("playground")
    crowd = [
        {"model": f"pureai/a-long-deployment-name-{i:02d}", "quality": 0.55 + 0.004 * i, "cost_usd": 1e-4 * (1 + 0.04 * i)}
        for i in range(16)
    ]  # fmt: skip
    apart = [
        {"model": "gpt-4o", "quality": 0.86, "cost_usd": 2.2e-3},
        {"model": "gpt-4o-mini", "quality": 0.72, "cost_usd": 1.5e-4},
        {"model": "claude-3-haiku", "quality": 0.62, "cost_usd": 2.6e-4},
        {"model": "pureai/gemma-3-4b-it", "quality": 0.55, "cost_usd": 1.6e-5},
    ]
    candidates = crowd + apart
    chosen, path = "gpt-4o-mini", ["pureai/gemma-3-4b-it", "gpt-4o-mini", "gpt-4o"]
    drawn = page.evaluate(CHART_LABELS, [candidates, chosen, path])
    shown = drawn["shown"]
    assert len(shown) + len(drawn["leftOut"]) == len(candidates)
    assert {s["model"] for s in shown} >= {chosen, *path}  # the choice and its path are named first
    for i, a in enumerate(shown):
        assert a["left"] >= 0 and a["left"] + a["width"] <= drawn["canvas"]["width"] + 0.5, a
        assert a["top"] >= 0 and a["top"] + a["height"] <= drawn["canvas"]["height"] + 0.5, a
        assert a["text"] == a["model"] or (a["text"].endswith("…") and a["model"].startswith(a["text"][:-1]))
        for b in shown[i + 1 :]:
            apart_x = a["left"] + a["width"] <= b["left"] or b["left"] + b["width"] <= a["left"]
            apart_y = a["top"] + a["height"] <= b["top"] or b["top"] + b["height"] <= a["top"]
            assert apart_x or apart_y, f"{a['model']} and {b['model']} overlap"
    if drawn["leftOut"]:
        assert drawn["note"].startswith(f"{len(drawn['leftOut'])} names left off the chart")
    assert drawn["ticks"] * 70 <= drawn["plot"]  # the cost axis's figures have room too
    page.locator("#qc-chart").screenshot(path=shots / f"quality-cost-chart-{width_of(sized)}.png")


def test_unchecking_every_model_clears_the_decision(sized: Console, shots: Path) -> None:
    page = sized.page
    sized.sign_in()
    sized.ready("playground")
    expect(page.locator("#chosen-model")).not_to_have_text("—")
    page.get_by_role("slider", name="cost_weight").press("End")  # a decision on its way...
    page.get_by_role("button", name="Uncheck all").click()  # ...is not drawn
    status = page.locator("#decision-status")
    expect(status).to_have_text(re.compile(r"^No model is selected: check at least one candidate model"))
    expect(page.locator("#decision")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#chosen-model")).to_have_text("—")
    expect(page.locator("#confidence")).to_have_text("—")
    expect(page.locator("#reasoning")).to_be_empty()
    expect(page.locator("#capabilities li")).to_have_count(0)
    expect(page.locator("#candidates-table tbody")).to_have_text("No candidates.")
    expect(page.locator("#qc-chart canvas")).to_have_count(0)
    expect(page.locator("#path-summary")).to_be_empty()
    page.locator("#decision").screenshot(path=shots / f"decision-no-model-{width_of(sized)}.png")

    page.locator('#model-choices input[value="gpt-4o-mini"]').check()
    expect(page.locator("#chosen-model")).to_have_text("gpt-4o-mini")
    expect(page.locator("#candidates-table tbody tr")).to_have_count(1)
    expect(page.locator("#qc-chart canvas")).to_have_count(1)


def assert_error_at(page: Page, field: str, text: str) -> None:
    """The message is in `field`'s own error line, just below it, and the field is marked and focused."""
    error = page.locator(f"#{field}-error")
    expect(error).to_contain_text(text)
    expect(page.locator("#deploy-error")).to_be_hidden()
    control = page.locator(f"#{field}")
    expect(control).to_be_focused()
    expect(control).to_have_attribute("aria-invalid", "true")
    expect(control).to_have_attribute("aria-errormessage", f"{field}-error")
    below, at = box(error), box(control)
    assert 0 <= below["y"] - at["bottom"] <= 24, (below, at)  # under it, not at the foot of the form
    assert below["x"] < at["right"] and at["x"] < below["right"]


def test_a_deployment_needs_its_prices_or_free_and_errors_show_at_their_field(
    sized: Console, gateway: Gateway, fresh: tuple[FakeUpstream, FakeUpstream], shots: Path
) -> None:
    page = sized.page
    sized.expected_errors.append("status of 400")
    sized.sign_in("keys")
    sized.ready("keys")
    name = "priced-" + os.urandom(3).hex()
    sent: list[dict[str, Any]] = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data or "{}")) if r.method == "POST" and r.url.endswith("/v1/admin/deployments") else None)  # fmt: skip
    register = page.get_by_role("button", name="Register deployment")
    page.get_by_label("Model id").fill(name)
    page.get_by_label("Base URL (OpenAI-compatible)").fill(fresh[0].url)
    register.click()  # the console's own check: both prices, or "Free"
    assert_error_at(page, "deploy-in", "Give the price, or check “Free”")
    page.locator("#deploy-form").screenshot(path=shots / f"deploy-form-no-price-{width_of(sized)}.png")
    page.get_by_label("Input USD / 1M tokens").fill("0.4")
    register.click()
    assert_error_at(page, "deploy-out", "Give the price, or check “Free”")
    expect(page.locator("#deploy-in-error")).to_be_empty()
    expect(page.get_by_label("Input USD / 1M tokens")).not_to_have_attribute("aria-invalid", "true")
    assert sent == []  # the gateway was not asked

    def without_output_price(route: Route) -> None:  # as a client that skipped the check would send it
        if route.request.method != "POST":
            return route.continue_()
        body = json.loads(route.request.post_data or "{}")
        body.pop("output_per_mtok", None)
        return route.continue_(post_data=json.dumps(body))

    page.get_by_label("Output USD / 1M tokens").fill("9")
    page.route("**/v1/admin/deployments", without_output_price)
    register.click()  # the gateway's 400 names output_per_mtok: shown at that field
    assert_error_at(page, "deploy-out", "output_per_mtok: a deployment needs both prices")
    page.unroute("**/v1/admin/deployments")

    page.get_by_role("button", name="Add a backup provider").click()
    page.keyboard.type("pureai")  # the deployment's own endpoint's id
    register.click()
    backup_id = page.locator("#deploy-backups").get_by_label("Provider id")
    field = backup_id.get_attribute("id")
    assert field is not None
    assert_error_at(page, field, "names the deployment's own endpoint")
    page.locator("#deploy-backups").get_by_role("button", name="Remove this provider").click()

    page.get_by_label("Free: this deployment costs nothing").check()
    for label in ("Input USD / 1M tokens", "Output USD / 1M tokens"):
        expect(page.get_by_label(label)).to_be_disabled()
        expect(page.get_by_label(label)).to_have_value("")
    try:
        register.click()
        expect(page.locator("#deployments-status")).to_contain_text(f"Registered pureai/{name}.")
        assert sent[-1] == {"id": name, "api_base": fresh[0].url, "free": True}
        cells = page.locator(f'#deployments-table tr[data-model="pureai/{name}"] td')
        expect(cells.nth(3)).to_have_text("free")
        free = page.get_by_label("Free: this deployment costs nothing")
        expect(free).not_to_be_checked()  # the form is reset
        expect(page.get_by_label("Input USD / 1M tokens")).to_be_enabled()
        for error in page.locator("#deploy-form .error").all():
            expect(error).to_be_empty()
        assert_fits(page, "#deployments-table")
        page.locator("#deploy-form").screenshot(path=shots / f"deploy-form-{width_of(sized)}.png")
    finally:
        gateway.http.delete(f"/v1/admin/deployments/{name}", headers=gateway.admin())


def test_spend_per_model_has_series_only_for_the_gateways_models(
    sized: Console, gateway: Gateway, fresh: tuple[FakeUpstream, FakeUpstream], shots: Path
) -> None:
    key = gateway.new_key(tenant="t-spend", name="spend-" + os.urandom(3).hex())
    typos = [f"no-such-model-{os.urandom(3).hex()}" for _ in range(3)]
    for model in typos:  # refused (404), and in the ledger under the name the client sent
        r = gateway.http.post("/v1/chat/completions", headers={"x-api-key": key}, json={"model": model, "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        assert r.status_code == 404, r.text
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello spend"}]}
    assert gateway.http.post("/v1/chat/completions", headers={"x-api-key": key}, json=chat).status_code == 200
    page = sized.page
    sized.sign_in("usage")
    sized.ready("usage")
    legend = page.locator("#chart-spend-model .u-legend")
    expect(legend).to_contain_text("gpt-4o-mini")
    for model in typos:
        expect(legend).not_to_contain_text(model)
        # the table keeps them: their error rate is worth seeing
        expect(page.locator(f'#usage-models tr[data-model="{model}"]')).to_have_count(1)
    page.locator("#chart-spend-model").screenshot(path=shots / f"spend-per-model-{width_of(sized)}.png")


# -- layout and accessibility ----------------------------------------------------------------------------

# Every visible form control has a name a screen reader can say; every visible piece of text has
# WCAG AA contrast with what is behind it (4.5:1, or 3:1 for large text).
AUDIT = """() => {
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const unnamed = [];
  for (const el of document.querySelectorAll("input, select, textarea, meter, button, [role=slider]")) {
    if (!visible(el)) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label") ||
      el.getAttribute("aria-labelledby") || (el.tagName === "BUTTON" && el.textContent.trim());
    if (!named) unnamed.push(el.outerHTML.slice(0, 120));
  }
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const poor = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !visible(el) || el.closest(".visually-hidden, [hidden], canvas")) continue;
    const style = getComputedStyle(el);
    const a = lum(rgb(style.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) poor.push(`${node.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
  }
  return { unnamed, poor };
}"""


@pytest.mark.parametrize("page_name", ["playground", "usage", "keys"])
def test_every_control_is_labelled_and_text_has_aa_contrast(console: Console, page_name: str) -> None:
    page = console.page
    console.sign_in(page_name)
    console.ready(page_name)
    if page_name == "playground":
        page.get_by_role("button", name="Add a message").click()  # a turn with its remove button
    assert page.evaluate(AUDIT) == {"unnamed": [], "poor": []}


def test_the_keyboard_reaches_everything_with_a_visible_focus(console: Console) -> None:
    page = console.page
    console.sign_in()
    console.ready("playground")
    page.reload()  # focus back at the start of the document
    console.ready("playground")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0  # on screen once focused
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.reload()
    console.ready("playground")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    first = page.get_by_role("link", name="Playground")
    expect(first).to_be_focused()
    outline = first.evaluate("e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth")
    assert outline == "solid 3px"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # follows the focused link: Usage
    expect(page.get_by_role("heading", name="Usage", level=1)).to_be_focused()
    expect(page.get_by_role("link", name="Usage")).to_have_attribute("aria-current", "page")
    console.ready("usage")


def test_every_page_fits_a_phone(browser: Browser, gateway: Gateway, shots: Path) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        console = Console(context.new_page(), gateway)
        console.sign_in()
        for name, link in (("playground", "Playground"), ("usage", "Usage"), ("keys", "Keys & deployments")):
            console.page.get_by_role("link", name=link).click()
            console.ready(name)
            width = console.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name} is {width}px wide on a {PHONE['width']}px screen"
            console.shot(shots, f"phone-{name}")
        assert problems_free(console)
    finally:
        context.close()
