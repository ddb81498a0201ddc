"""``agentgit serve`` in a real browser: headless Chromium (Debian's ``chromium``, at
/usr/bin/chromium; Playwright downloads nothing) against the viewer started as a real
process on a free loopback port, on a database filled by real graphs.

Skipped, with one line saying why, where Playwright or Chromium is missing; with
``AGENTGIT_REQUIRE_BROWSER=1`` (CI) that is a failure instead. The tests take screenshots
as they go; with ``AGENTGIT_SCREENSHOTS=docs`` they are written to docs/ (the README shows
one: ``AGENTGIT_SCREENSHOTS=docs pytest tests/test_web_browser.py`` refreshes them),
otherwise to a temporary folder, so that a test run leaves the checkout as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("AGENTGIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE = os.environ.get("AGENTGIT_REQUIRE_BROWSER") == "1"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


_why = _missing()
if _why is not None:
    if REQUIRE:
        pytest.fail(f"AGENTGIT_REQUIRE_BROWSER=1 but {_why}", pytrace=False)
    pytest.skip(f"browser tests: {_why}", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402
from web_helpers import (  # noqa: E402
    XSS_IMG,
    XSS_NAME,
    XSS_SCRIPT,
    WebDb,
    copy_db,
    fill_web_db,
    running_server,
)

from langgraph_agentgit.views.text import message_preview  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
# One folder per test process: pytest-xdist runs tests in two.
SHOTS = Path(tempfile.gettempdir()) / f"agentgit-screenshots-{os.getpid()}"
VIEWPORT = {"width": 1280, "height": 820}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> WebDb:
    template = fill_web_db(tmp_path_factory.mktemp("browser") / "template.db")
    return copy_db(template, template.path.parent / "served.db")


@pytest.fixture(scope="module")
def server(db: WebDb) -> Iterator[str]:
    with running_server(db.path) as served:
        yield served.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    opened.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
    )
    opened.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    yield opened
    context.close()
    # A CSP violation, a script error or an alert() from a message fails the test.
    assert problems == []


def shot(page: Page, name: str) -> None:
    folder = DOCS if os.environ.get("AGENTGIT_SCREENSHOTS") == "docs" else SHOTS
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=False)
    assert (folder / name).stat().st_size > 0


def test_the_sessions_page_lists_and_filters_the_sessions(db: WebDb, server: str, page: Page):
    with db.open(read_only=True) as (_, mgr):
        sessions = mgr.list_sessions()
    page.goto(server + "/")
    rows = page.locator("tr.session")
    expect(rows).to_have_count(len(sessions))
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.sessionId)")) == sorted(
        s.id for s in sessions
    )
    # A name is shown as typed, markup and all.
    expect(page.locator("tr.session td.name", has_text=XSS_NAME)).to_have_count(1)
    shot(page, "web-sessions.png")
    page.fill("#filter", "long chat")
    expect(page.locator("tr.session:visible")).to_have_count(1)
    expect(page.locator("tr.session:visible td.name")).to_have_text("long chat")


def test_a_session_shows_one_lane_per_branch_and_one_dot_per_checkpoint(
    db: WebDb, server: str, page: Page
) -> None:
    page.goto(server + "/")
    page.click(f'tr[data-session-id="{db.demo.session_id}"] td.name a')
    expect(page.locator("#session-name")).to_contain_text("order support")
    with db.open(read_only=True) as (_, mgr):
        timeline = mgr.timeline(db.demo.session_id)
    lanes = page.locator("#timeline g.lane")
    expect(lanes).to_have_count(len(timeline.branches))
    expect(page.locator("#timeline circle.dot")).to_have_count(timeline.session.total_checkpoints)
    for history in timeline.branches:
        lane = page.locator(f'#timeline g.lane[data-thread-id="{history.branch.thread_id}"]')
        expect(lane.locator("circle.dot")).to_have_count(len(history.checkpoints))
    current = timeline.current
    assert current is not None and current.head is not None
    expect(page.locator("#timeline circle.dot.current")).to_have_attribute(
        "data-checkpoint-id", current.head.checkpoint_id
    )
    expect(page.locator("#timeline g.tag")).to_have_count(len(timeline.tags))
    shot(page, "web-session.png")


def test_clicking_a_checkpoint_shows_its_conversation(db: WebDb, server: str, page: Page):
    demo = db.demo
    with db.open(read_only=True) as (saver, _):
        head = saver.get_tuple(
            {
                "configurable": {
                    "thread_id": demo.branch_thread_id,
                    "checkpoint_ns": "",
                    "checkpoint_id": demo.branch_head,
                }
            }
        )
    assert head is not None
    messages = head.checkpoint["channel_values"]["messages"]
    page.goto(f"{server}/sessions/{demo.session_id}")
    page.click(f'#timeline circle.dot[data-checkpoint-id="{demo.branch_head}"]')
    expect(page.locator("#checkpoint-id")).to_have_text(demo.branch_head)
    shown = page.locator("#messages li.message")
    expect(shown).to_have_count(len(messages))
    assert shown.evaluate_all("ms => ms.map(m => m.dataset.messageId)") == [m.id for m in messages]
    texts = page.locator("#messages li.message .text").all_inner_texts()
    assert texts == [m.content for m in messages if m.content]
    calls = page.locator("#messages .tool-call strong").all_inner_texts()
    assert calls == [c["name"] for m in messages for c in getattr(m, "tool_calls", [])]
    shot(page, "web-checkpoint.png")


def test_diff_of_the_two_heads(db: WebDb, server: str, page: Page) -> None:
    demo = db.demo
    with db.open(read_only=True) as (_, mgr):
        diff = mgr.diff(demo.main_head, demo.branch_head, session_id=demo.session_id)
    page.goto(f"{server}/sessions/{demo.session_id}")
    page.select_option("#diff-a", demo.main_head)
    page.select_option("#diff-b", demo.branch_head)
    page.click("#diff-form button[type=submit]")
    messages = diff.channels["messages"]
    added = page.locator('section[data-channel="messages"] li.added')
    removed = page.locator('section[data-channel="messages"] li.removed')
    expect(added).to_have_count(len(messages.added))
    expect(removed).to_have_count(len(messages.removed))
    assert added.all_inner_texts() == [f"+ {message_preview(m, 300)}" for m in messages.added]
    assert removed.all_inner_texts() == [f"- {message_preview(m, 300)}" for m in messages.removed]
    shot(page, "web-diff.png")


def test_a_rollback_asks_first_then_opens_a_new_current_branch(
    db: WebDb, server: str, page: Page
) -> None:
    demo = db.demo
    with db.open(read_only=True) as (_, mgr):
        before = mgr.branches(demo.session_id)
        target = mgr.tags(demo.session_id)["after-lookup"]
    page.goto(f"{server}/sessions/{demo.session_id}/checkpoints/{target}")
    page.fill('form[action$="/actions/rollback"] input[name=name]', "from-browser")
    page.click("#rollback")
    expect(page.locator("#question")).to_contain_text("Roll the session back")
    with db.open(read_only=True) as (_, mgr):
        assert mgr.branches(demo.session_id) == before  # nothing yet: only asked
    page.click("#confirm")
    expect(page.locator("#notice")).to_contain_text("from-browser")
    expect(page.locator("#timeline g.lane")).to_have_count(len(before) + 1)
    with db.open(read_only=True) as (_, mgr):
        session = mgr.get_session(demo.session_id)
        new = [b for b in mgr.branches(demo.session_id) if b not in before]
    assert session is not None and [b.name for b in new] == ["from-browser"]
    assert new[0].fork_checkpoint_id == target and session.current_thread_id == new[0].thread_id
    expect(page.locator("#timeline g.lane.current")).to_have_attribute(
        "data-thread-id", new[0].thread_id
    )


def test_markup_in_messages_names_and_tags_renders_as_text(
    db: WebDb, server: str, page: Page
) -> None:
    with db.open(read_only=True) as (_, mgr):
        timeline = mgr.timeline(db.xss_session_id)
    head = timeline.branches[0].head
    assert head is not None
    page.goto(f"{server}/sessions/{db.xss_session_id}")
    expect(page.locator("#session-name")).to_have_text(XSS_NAME)
    # The branch named after it: its lane's label (cut to fit) starts with the markup.
    branch = next(h for h in timeline.branches if h.branch.name == XSS_NAME + "-branch")
    label = page.locator(f'#timeline g.lane[data-thread-id="{branch.branch.thread_id}"] .label')
    expect(label).to_contain_text(XSS_NAME[:12])
    page.goto(f"{server}/sessions/{db.xss_session_id}/checkpoints/{head.checkpoint_id}")
    first = page.locator("#messages li.message .text").first
    expect(first).to_contain_text(XSS_SCRIPT)
    expect(first).to_contain_text(XSS_IMG)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#messages img, #messages script, a[href^='javascript:']").count() == 0


def test_a_post_without_the_csrf_token_is_refused(db: WebDb, server: str, page: Page) -> None:
    demo = db.demo
    with db.open(read_only=True) as (_, mgr):
        before = mgr.branches(demo.session_id)
    response: Any = page.request.post(
        f"{server}/sessions/{demo.session_id}/actions/rollback",
        form={"checkpoint": demo.main_head, "confirm": "yes"},
    )
    assert response.status == 403 and "CSRF" in response.text()
    with db.open(read_only=True) as (_, mgr):
        assert mgr.branches(demo.session_id) == before
