"""The demo chat page in a real browser, against ``python -m trio_stream demo``.

Debian's Chromium, driven by Playwright, loads the page from the demo
process and has a conversation in each wire format: the page decodes the
stream itself, so what it shows is what the format carried. A full turn
(parallel tool calls, nested sub-streams, a failing tool, sources, a file,
data, state, the closing text), then a turn stopped mid-run, whose
cancellation the server's log must confirm.

The same with ``demo --remote``: the tree of an orchestrator and two
specialist agents in other processes, one of them calling an MCP server's
tool, rendered live; then Stop, whose cancellation every process's log must
confirm.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from ..process_log import logged, wait_for
from ..reliability.figures import FIGURES
from ..serving import running_demo

CHROMIUM = Path("/usr/bin/chromium")

# The machine's network is closed: without these, Chromium keeps trying to
# reach Google's services, and the log fills with refused connections.
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

FORMATS = ["data-stream", "assistant-transport", "ui-message-stream"]

TOP_LEVEL_TOOLS = ["get_weather", "get_weather", "search_docs", "get_stock_quote", "calculate"]

expect.set_options(timeout=15_000)

# Installed before a message is sent: a MutationObserver that records, at
# every change of the message list, how many top-level tool cards are running
# and how often top-level text changed. Observers see every DOM state, so the
# maximum is exact, not sampled.
WATCH = """
() => {
  const list = document.querySelector('[data-testid=messages]');
  const topLevel = (card) => !card.parentElement.closest('[data-testid=tool-card]');
  window.__watch = { maxRunning: 0, textUpdates: 0 };
  new MutationObserver((records) => {
    const messages = list.querySelectorAll('[data-testid=message][data-role=assistant]');
    const message = messages[messages.length - 1];
    if (!message) return;
    const running = [...message.querySelectorAll('[data-testid=tool-card][data-status=running]')]
      .filter(topLevel).length;
    window.__watch.maxRunning = Math.max(window.__watch.maxRunning, running);
    if (records.some((r) => r.target.closest?.('.content > [data-testid=text]'))) {
      window.__watch.textUpdates += 1;
    }
  }).observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
}
"""

# Bodies over a local socket arrive in few, large reads. While
# window.__splitBodies is on, the page's fetch hands the page each chat body in
# pieces of 1 to 11 bytes instead: lines, SSE events and multi-byte characters
# (the agent writes “quotes” and °C) are all cut across reads, as a slow
# network may cut them.
SPLIT_BODIES = """
(() => {
  const realFetch = window.fetch.bind(window);
  const sizes = [1, 3, 2, 7, 5, 11, 1, 4, 6];
  window.__splitBodies = true;
  window.__pieces = 0;
  window.fetch = async (resource, options) => {
    const response = await realFetch(resource, options);
    if (!window.__splitBodies || !String(resource).includes('/api/chat/')) return response;
    let n = 0;
    const split = new TransformStream({
      transform(chunk, controller) {
        for (let i = 0; i < chunk.length; ) {
          const size = sizes[n++ % sizes.length];
          controller.enqueue(chunk.subarray(i, i + size));
          window.__pieces += 1;
          i += size;
        }
      },
    });
    const { status, statusText, headers } = response;
    return new Response(response.body.pipeThrough(split), { status, statusText, headers });
  };
})();
"""

# The structure of a rendered assistant message, as plain data.
SUMMARY = """
(message) => {
  const parentCard = (el) => el.parentElement.closest('[data-testid=tool-card]');
  const nested = (card, testid) => [
    ...card.querySelectorAll(`:scope > [data-testid=tool-nested] > [data-testid=${testid}]`),
  ].map((el) => el.textContent).join('');
  const cards = [...message.querySelectorAll('[data-testid=tool-card]')].map((card) => ({
    name: card.dataset.toolName,
    id: card.dataset.toolCallId,
    status: card.dataset.status,
    parent: parentCard(card)?.dataset.toolCallId ?? null,
    result: card.querySelector(':scope > .tool-result-section [data-testid=tool-result]')
      ?.textContent ?? '',
    text: nested(card, 'text'),
    reasoning: nested(card, 'reasoning'),
  }));
  const content = message.querySelector('.content');
  const kids = [...content.children];
  return {
    status: message.dataset.status,
    cards,
    rootOrder: kids.map((el) => el.dataset.testid || el.className),
    rootText: kids.filter((el) => el.dataset.testid === 'text').map((el) => el.textContent),
    reasoning: kids.filter((el) => el.dataset.testid === 'reasoning')
      .map((el) => el.textContent).join(''),
    sources: [...message.querySelectorAll('[data-testid=source]')]
      .map((a) => ({ href: a.href, text: a.textContent })),
    images: [...message.querySelectorAll('[data-testid=file] img')]
      .map((img) => ({ src: img.src.slice(0, 40), width: img.naturalWidth })),
    data: [...message.querySelectorAll('[data-testid=data]')]
      .map((el) => ({ name: el.dataset.name, text: el.textContent })),
    errors: message.querySelectorAll('[data-testid=error]').length,
    footer: message.querySelector('[data-testid=message-footer]').textContent,
  };
}
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The demo's base URL and the file its log goes to."""
    log_path = tmp_path_factory.mktemp("demo-browser") / "server.log"
    with running_demo(log_path) as url:
        yield url, log_path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser | None]:
    """Chromium; ``None`` if it is not installed, and the test fails (it never skips)."""
    if not CHROMIUM.exists():
        yield None
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser | None) -> Iterator[Page | None]:
    if browser is None:
        yield None
        return
    with browser.new_context(viewport={"width": 1280, "height": 800}) as context:
        yield context.new_page()


def disconnects(log_path: Path, format_name: str) -> int:
    line = (
        f"client disconnected from /api/chat/{format_name}: run cancelled, all its tasks done in"
    )
    return log_path.read_text().count(line)


def send(page: Page, text: str) -> Locator:
    """Type ``text``, press Enter, and return the assistant message it starts."""
    answers = page.locator("[data-testid=message][data-role=assistant]")
    before = answers.count()
    page.evaluate(WATCH)
    page.get_by_test_id("composer").fill(text)
    page.get_by_test_id("composer").press("Enter")
    expect(answers).to_have_count(before + 1)
    return answers.nth(before)


def screenshot(page: Page, path: Path) -> None:
    """The whole conversation, in one image.

    The header and the composer are sticky: a plain full-page capture draws
    them where the window was. A window as tall as the page shows each once,
    in its place.
    """
    page.evaluate("window.scrollTo(0, 0)")
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": height})
    page.screenshot(path=path, full_page=True)


@pytest.mark.parametrize("format_name", FORMATS)
def test_a_conversation_in_the_browser(
    format_name: str,
    demo: tuple[str, Path],
    page: Page | None,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    assert page is not None, (
        f"Chromium is missing at {CHROMIUM}: the browser test needs Debian's chromium "
        "package (apt-get install chromium), which scripts/check.sh installs"
    )
    url, log_path = demo
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    page.add_init_script(SPLIT_BODIES)
    page.goto(f"{url}/")
    # The header shows /api/info's model; the switch starts at its format.
    expect(page.get_by_test_id("model")).to_have_text("scripted")
    expect(page.get_by_test_id("format")).to_have_value("data-stream")
    page.get_by_test_id("format").select_option(format_name)

    # -- a whole turn ---------------------------------------------------------------
    message = send(page, "What's the weather in Lisbon and Kyoto?")
    expect(message).to_have_attribute("data-status", "streaming")
    expect(page.get_by_test_id("stop")).to_be_enabled()
    expect(message).to_have_attribute("data-status", "done")
    watched = page.evaluate("window.__watch")
    assert page.evaluate("window.__pieces") > 1000  # the body was read in small pieces
    summary = page.evaluate(SUMMARY, message.element_handle())

    cards = summary["cards"]
    top = [card for card in cards if card["parent"] is None]
    assert [card["name"] for card in top] == TOP_LEVEL_TOOLS
    # Parallel, as the page saw it: calls running side by side at one moment
    # (all five, normally; serial calls would never show more than one).
    assert watched["maxRunning"] >= 2, watched
    assert [card["status"] for card in top] == ["done", "done", "done", "error", "done"]
    failed = next(card for card in top if card["name"] == "get_stock_quote")
    assert "quote service unavailable" in failed["result"]
    lisbon = next(card for card in top if card["name"] == "get_weather")
    assert '"celsius": 24' in lisbon["result"]

    # search_docs's sub-stream renders inside its card: reasoning, text, and two
    # fetch_page calls, one of which streams text of its own (depth 2).
    search = next(card for card in top if card["name"] == "search_docs")
    assert "Two pages match" in search["reasoning"]
    assert search["text"].startswith("Searching the docs")
    fetches = [card for card in cards if card["parent"] == search["id"]]
    assert [(card["name"], card["status"]) for card in fetches] == [("fetch_page", "done")] * 2
    assert any(card["text"].startswith("Skimming the section") for card in fetches)
    assert {card["parent"] for card in cards} == {None, search["id"]}

    # Reasoning first, text token by token, tools, then sources, a file, data
    # and the closing text, in this order.
    assert summary["reasoning"].startswith("Reasoning")
    assert "I will check the weather" in summary["reasoning"]
    assert summary["rootOrder"] == [
        "reasoning",
        "text",
        "tool-group",
        "sources",
        "file",
        "data",
        "text",
    ]
    assert summary["rootText"][0] == "Let me look into that. I am running five tools in parallel. "
    assert summary["rootText"][-1].startswith("Done. Lisbon is 24 °C and Kyoto 17 °C")
    assert watched["textUpdates"] > 10, watched  # rendered as it arrived, not at the end
    assert [source["href"] for source in summary["sources"]] == [
        "https://trio.readthedocs.io/en/stable/",
        "https://vorpus.org/blog/notes-on-structured-concurrency-or-go-statement-considered-harmful/",
    ]
    assert summary["images"][0]["src"].startswith("data:image/svg+xml;base64,")
    assert summary["images"][0]["width"] > 0  # the SVG decoded
    assert summary["data"][0]["name"] == "weather"
    assert '"Lisbon": 24' in summary["data"][0]["text"]
    assert summary["errors"] == 0
    assert "finish: stop" in summary["footer"]
    state = page.get_by_test_id("state-progress")
    expect(state).to_have_attribute("data-done", "5")
    expect(state).to_have_attribute("data-total", "5")

    # -- a turn stopped while its tools run ---------------------------------------------------
    page.evaluate("window.__splitBodies = false")  # this turn reads the body as it comes
    cancelled_before = disconnects(log_path, format_name)
    stopped = send(page, "How do Trio nurseries cancel tasks?")
    running = stopped.locator("[data-testid=tool-card][data-status=running]")
    expect(running.first).to_be_visible()
    if format_name == "assistant-transport":
        # The state sent back holds the first turn: the server's history now
        # has it and the new question.
        expect(page.locator("[data-testid=state] [data-key=messages]")).to_have_text("3 items")
    page.get_by_test_id("stop").click()
    expect(stopped).to_have_attribute("data-status", "stopped")
    expect(running).to_have_count(0)
    expect(stopped.locator("[data-testid=tool-card][data-status=stopped]").first).to_be_visible()
    expect(stopped.get_by_test_id("message-footer")).to_contain_text("Stopped")
    expect(page.get_by_test_id("stop")).to_be_disabled()
    expect(page.get_by_test_id("send")).to_be_enabled()
    deadline = time.monotonic() + 5
    while disconnects(log_path, format_name) == cancelled_before:
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.05)
    assert problems == []

    path = tmp_path / f"demo-{format_name}.png"
    screenshot(page, path)
    print(f"screenshot: {path}")
    # What record_property stores, without its refusal to run under
    # --junitxml's default family (a warning, which this suite makes an error);
    # tests/demo/conftest.py lists these paths at the end of the run.
    request.node.user_properties.append(("screenshot", str(path)))


# -- agents of agents: demo --remote ---------------------------------------------------


@pytest.fixture(scope="module")
def remote_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``demo --remote`` at half its pace: its URL, and the log all its processes share."""
    log_path = tmp_path_factory.mktemp("demo-remote-browser") / "processes.log"
    with running_demo(log_path, "--remote", "--pace", "0.5") as url:
        yield url, log_path


REMOTE_QUESTION = "How do nurseries cancel tasks, and what is 17 * 23?"

# When Stop aborts the request, in the page's own clock (the machine's, as the logs').
TIME_ABORTS = """
(() => {
  const abort = AbortController.prototype.abort;
  AbortController.prototype.abort = function (...reason) {
    window.__abortedAt = Date.now() / 1000;
    return abort.apply(this, reason);
  };
})();
"""

CANCELLED_EVERYWHERE = {
    ("researcher", "run cancelled"),
    ("researcher", "client disconnected from /chat: run cancelled"),
    ("notes", "tool search_notes cancelled"),
    ("calculator", "tool calculate cancelled"),
    ("calculator", "run cancelled"),
    ("calculator", "client disconnected from /chat: run cancelled"),
}
"""What each helper process logs when a Stop on the page reaches it."""


@pytest.mark.parametrize("format_name", ["data-stream", "ui-message-stream"])
def test_agents_of_agents_in_the_browser(
    format_name: str,
    remote_demo: tuple[str, Path],
    page: Page | None,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    assert page is not None, f"Chromium is missing at {CHROMIUM}"
    url, log_path = remote_demo
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.add_init_script(TIME_ABORTS)
    page.goto(f"{url}/")
    expect(page.get_by_test_id("model")).to_have_text("orchestrator")
    page.get_by_test_id("format").select_option(format_name)
    # The welcome is the orchestrator's own; its first suggestion starts a turn.
    expect(page.locator("#welcome p")).to_contain_text("four processes")
    page.evaluate(WATCH)
    page.get_by_role("button", name=REMOTE_QUESTION).click()
    message = page.locator("[data-testid=message][data-role=assistant]").last

    # -- a whole turn, rendered as it streams ---------------------------------------------
    search = message.locator("[data-testid=tool-card][data-tool-name=search_notes]")
    progress = search.get_by_test_id("tool-progress")
    expect(progress).to_be_visible()
    # The MCP server's progress shows on its card while the call runs, four
    # processes away; both specialists' cards run side by side.
    expect(search).to_have_attribute("data-status", "running")
    expect(message).to_have_attribute("data-status", "streaming")
    expect(message).to_have_attribute("data-status", "done")
    assert page.evaluate("window.__watch")["maxRunning"] == 2
    summary = page.evaluate(SUMMARY, message.element_handle())
    cards = {card["name"]: card for card in summary["cards"]}
    assert cards.keys() == {"ask_researcher", "ask_calculator", "search_notes", "calculate"}
    researcher, calculator = cards["ask_researcher"], cards["ask_calculator"]
    assert (researcher["parent"], calculator["parent"]) == (None, None)
    # Ids renamed across the wire (call_a.call_b) nest each card in its caller's.
    assert cards["search_notes"]["parent"] == researcher["id"]
    assert cards["search_notes"]["id"].startswith(researcher["id"] + ".")
    assert cards["calculate"]["parent"] == calculator["id"]
    assert [card["status"] for card in summary["cards"]] == ["done"] * 4
    # Each level's reasoning and text in its own card, three levels down.
    assert researcher["reasoning"].startswith("Reasoning")
    assert "The notes server has a search tool" in researcher["reasoning"]
    assert researcher["text"].startswith("3 notes match. A nursery waits")
    assert calculator["text"] == "17 * 23 = 391"
    assert cards["calculate"]["text"] == "Evaluating 17 * 23, then checking it. "
    assert '"value": 391' in cards["calculate"]["result"]
    expect(progress).to_have_attribute("data-progress", "4")
    expect(progress).to_have_attribute("data-total", "4")
    expect(progress).to_have_text("summing up")
    assert summary["rootText"][-1].endswith("The calculator: 17 * 23 = 391.")
    assert summary["data"] == []  # progress went to its card, not the message
    assert summary["errors"] == 0

    # -- Stop, while both specialists work ------------------------------------------------
    cancelled_before = disconnects(log_path, format_name)
    since = len(logged(log_path.read_text()))
    stopped = send(page, REMOTE_QUESTION)
    expect(stopped.get_by_test_id("tool-progress")).to_be_visible()
    calculate = stopped.locator("[data-testid=tool-card][data-tool-name=calculate]")
    expect(calculate).to_have_attribute("data-status", "running")
    pressed = time.time()
    page.get_by_test_id("stop").click()
    expect(stopped).to_have_attribute("data-status", "stopped")
    expect(stopped.locator("[data-testid=tool-card][data-status=running]")).to_have_count(0)
    expect(stopped.locator("[data-testid=tool-card][data-status=stopped]")).to_have_count(4)
    found = wait_for(log_path, CANCELLED_EVERYWHERE, since=since)
    deadline = time.monotonic() + 5
    while disconnects(log_path, format_name) == cancelled_before:  # the demo's own run
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.05)
    aborted = page.evaluate("window.__abortedAt")
    assert pressed <= aborted
    assert min(line.at for line in found.values()) >= aborted - 0.001
    last = max(line.at for line in found.values())
    from_click, from_abort = (last - pressed) * 1000, (last - aborted) * 1000
    FIGURES.record(
        "agents of agents",
        f"Stop clicked -> last clean-up, {format_name}",
        f"{from_click:.0f} ms (from the page's abort: {from_abort:.0f} ms)",
    )
    assert problems == []

    path = tmp_path / f"demo-remote-{format_name}.png"
    screenshot(page, path)
    request.node.user_properties.append(("screenshot", str(path)))
