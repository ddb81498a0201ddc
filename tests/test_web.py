"""``agentgit serve`` over HTTP, in-process (Starlette's TestClient) on real databases:
the JSON API against the CLI's ``--json``, the SVG timeline against the session's real
branches and checkpoints, escaping, and every safety rule (CSRF, Host, access token,
read-only, a missing or foreign database). The same pages in a real browser:
tests/test_web_browser.py.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphs import build_interrupt_graph
from starlette.testclient import TestClient
from typer.testing import CliRunner
from web_helpers import (
    XSS_IMG,
    XSS_NAME,
    XSS_SCRIPT,
    XSS_TAG,
    WebDb,
    copy_db,
    fill_web_db,
    running_server,
)

from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.cli import app as cli_app
from langgraph_agentgit.views import SCHEMA_VERSION
from langgraph_agentgit.views.svg import FULL_LANE
from langgraph_agentgit.web import Guard, allowed_hosts, create_app

runner = CliRunner()
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> WebDb:
    return fill_web_db(tmp_path_factory.mktemp("web") / "web.db")


@pytest.fixture
def db(template: WebDb, tmp_path: Path) -> WebDb:
    return copy_db(template, tmp_path / "web.db")


@contextmanager
def client(
    path: Path, *, read_only: bool = False, guard: Guard | None = None, base: str = BASE
) -> Iterator[tuple[TestClient, Guard, SessionManager]]:
    """The viewer's app on the database at ``path`` (as ``agentgit serve`` makes it), and
    a client."""
    guard = guard or Guard(hosts=allowed_hosts("127.0.0.1", PORT), token=None)
    with AgentGitSaver.from_conn_string(str(path), read_only=read_only) as saver:
        mgr = SessionManager(saver)
        web = create_app(saver, mgr, guard=guard, read_only=read_only, database=str(path))
        with TestClient(web, base_url=base, follow_redirects=False) as c:
            yield c, guard, mgr


def cli_json(db: WebDb, *args: str) -> Any:
    result = runner.invoke(cli_app, [*args, "--db", str(db.path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def svg_of(html: str) -> ET.Element:
    """The timeline SVG a session page holds, parsed as XML (it must be well formed)."""
    found = re.search(r"<svg .*?</svg>", html, re.S)
    assert found is not None, "no SVG on the page"
    return ET.fromstring(found.group(0))


def dots(svg: ET.Element) -> list[ET.Element]:
    return [c for c in svg.iter(f"{SVG}circle") if "dot" in c.get("class", "").split()]


# --- one views layer -------------------------------------------------------------------


def test_the_cli_json_and_the_api_agree(db: WebDb) -> None:
    demo = db.demo
    sessions = cli_json(db, "sessions")
    show = cli_json(db, "show", demo.session_id)
    diff = cli_json(db, "diff", demo.main_head, demo.branch_head, "--session", demo.session_id)
    with db.open() as (_, mgr):
        timeline = json.loads(json.dumps(mgr.timeline(demo.session_id).to_dict()))
    with client(db.path) as (c, _, _):
        api_sessions = c.get("/api/sessions").json()
        api_session = c.get(f"/api/sessions/{demo.session_id}").json()
        api_diff = c.get(
            f"/api/sessions/{demo.session_id}/diff",
            params={"a": demo.main_head, "b": demo.branch_head},
        ).json()
        api_timeline = c.get(f"/api/sessions/{demo.session_id}/timeline").json()
    assert api_sessions["schema_version"] == show["schema_version"] == SCHEMA_VERSION
    assert api_sessions["sessions"] == sessions and len(sessions) == 3
    session_keys = set(api_session["session"])
    assert {k: show[k] for k in session_keys} == api_session["session"]
    assert api_session["branches"] == show["branches"] and api_session["tags"] == show["tags"]
    assert {k: v for k, v in api_diff.items() if k != "kind"} == diff
    assert diff["channels"]["messages"]["added"]  # a real diff, not two empty ones
    assert {k: v for k, v in api_timeline.items() if k not in ("kind", "schema_version")} == (
        timeline
    )
    # A timeline's session is the session's details without the usage counts.
    details = {k: v for k, v in api_session["session"].items() if k != "usage"}
    assert api_session["session"]["usage"]["turns"] >= 3
    assert api_timeline["session"] == details | {
        "last_message": timeline["session"]["last_message"]
    }


def test_checkpoint_api_shows_messages_tool_calls_and_metadata(db: WebDb) -> None:
    demo = db.demo
    with db.open() as (saver, mgr):
        head = saver.get_tuple(mgr.config(demo.session_id))
        assert head is not None
        messages = head.checkpoint["channel_values"]["messages"]
    with client(db.path) as (c, _, _):
        data = c.get(f"/api/sessions/{demo.session_id}/checkpoints/{demo.branch_head}").json()
    assert data["kind"] == "checkpoint"
    shown = data["checkpoint"]
    assert shown["checkpoint_id"] == demo.branch_head
    assert [m["id"] for m in shown["messages"]] == [m.id for m in messages]
    assert [m["text"] for m in shown["messages"]] == [m.content for m in messages]
    calls = [c["name"] for m in shown["messages"] for c in m.get("tool_calls", [])]
    assert calls == [c["name"] for m in messages for c in getattr(m, "tool_calls", [])]
    assert calls  # the demo calls tools
    assert shown["metadata"]["step"] == head.metadata["step"]


# --- the timeline ----------------------------------------------------------------------


def test_one_lane_per_branch_and_one_dot_per_checkpoint(db: WebDb) -> None:
    demo = db.demo
    with client(db.path) as (c, _, mgr):
        page = c.get(f"/sessions/{demo.session_id}")
        timeline = mgr.timeline(demo.session_id)
    assert page.status_code == 200
    svg = svg_of(page.text)
    lanes = [g for g in svg.iter(f"{SVG}g") if "lane" in g.get("class", "").split()]
    assert [g.get("data-thread-id") for g in lanes] == [
        h.branch.thread_id for h in timeline.branches
    ]
    for lane, history in zip(lanes, timeline.branches, strict=True):
        in_lane = [d.get("data-checkpoint-id") for d in dots(lane)]
        assert in_lane == [c.checkpoint_id for c in history.checkpoints]
    current = [d for d in dots(svg) if "current" in d.get("class", "").split()]
    assert [d.get("data-checkpoint-id") for d in current] == [demo.branch_head]
    assert len(dots(svg)) == timeline.session.total_checkpoints
    # The demo's rollback undid the refund on main: said at the end of main's lane.
    notes = {
        g.get("data-thread-id"): " ".join(
            t.text or "" for t in g.iter(f"{SVG}text") if t.get("class") == "note"
        )
        for g in lanes
    }
    for history in timeline.branches:
        undone = timeline.undone.get(history.branch.thread_id, ())
        assert (f"↶ {len(undone)} undone" in notes[history.branch.thread_id]) == bool(undone)
    assert any(timeline.undone.values())
    # Each dot links to its checkpoint's page.
    links = [a.get("href") for a in svg.iter(f"{SVG}a")]
    assert f"/sessions/{demo.session_id}/checkpoints/{demo.branch_head}" in links


def test_long_runs_collapse_and_keep_every_fork_point_tag_and_head(db: WebDb) -> None:
    with client(db.path) as (c, _, mgr):
        collapsed = svg_of(c.get(f"/sessions/{db.long_session_id}").text)
        full = svg_of(c.get(f"/sessions/{db.long_session_id}", params={"all": "1"}).text)
        timeline = mgr.timeline(db.long_session_id)
    main = timeline.branches[0]
    assert len(main.checkpoints) > FULL_LANE  # the data really is long
    shown = {d.get("data-checkpoint-id") for d in dots(collapsed)}
    gaps = [int(g.get("data-count", "0")) for g in collapsed.iter(f"{SVG}g")
            if g.get("class") == "gap"]  # fmt: skip
    assert gaps and len(shown) + sum(gaps) == timeline.session.total_checkpoints
    must = {h.branch.fork_checkpoint_id for h in timeline.branches} - {None}
    must |= set(timeline.tags.values()) | {
        h.head.checkpoint_id for h in timeline.branches if h.head
    }
    assert must <= shown
    assert len(dots(full)) == timeline.session.total_checkpoints
    assert not [g for g in full.iter(f"{SVG}g") if g.get("class") == "gap"]


# --- escaping --------------------------------------------------------------------------


def test_message_names_and_tags_are_escaped(db: WebDb) -> None:
    with client(db.path) as (c, _, mgr):
        s = db.xss_session_id
        head = mgr.timeline(s).branches[0].head
        assert head is not None
        pages = [
            c.get("/"),
            c.get(f"/sessions/{s}"),
            c.get(f"/sessions/{s}/checkpoints/{head.checkpoint_id}"),
        ]
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        for raw in (XSS_SCRIPT, XSS_IMG, XSS_NAME, XSS_TAG, "<script>x</script>"):
            assert raw not in page.text
        # The only script on any page is the viewer's own file.
        assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/app.js" defer>']
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in pages[2].text
    assert "&lt;svg onload=" in pages[1].text and "&lt;b&gt;tag&lt;/b&gt;" in pages[1].text


# --- actions and their guards ----------------------------------------------------------


def test_a_post_needs_the_csrf_token_and_a_confirmation(db: WebDb) -> None:
    demo = db.demo
    url = f"/sessions/{demo.session_id}/actions/rollback"
    with client(db.path) as (c, guard, mgr):
        before = mgr.branches(demo.session_id)
        refused = c.post(url, data={"checkpoint": demo.main_head})
        wrong = c.post(url, data={"checkpoint": demo.main_head, "csrf": "x" + guard.csrf})
        asked = c.post(url, data={"checkpoint": demo.main_head, "csrf": guard.csrf})
        assert mgr.branches(demo.session_id) == before
        done = c.post(
            url,
            data={"checkpoint": demo.main_head, "name": "from-web", "csrf": guard.csrf,
                  "confirm": "yes"},
        )  # fmt: skip
        after = mgr.branches(demo.session_id)
        session = mgr.get_session(demo.session_id)
    assert (refused.status_code, wrong.status_code) == (403, 403)
    assert "CSRF" in refused.text
    assert asked.status_code == 200 and "Roll the session back" in asked.text
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/sessions/{demo.session_id}?notice=")
    new = [b for b in after if b not in before]
    assert [b.name for b in new] == ["from-web"]
    assert new[0].fork_checkpoint_id == demo.main_head
    assert session is not None and session.current_thread_id == new[0].thread_id


def test_tag_branch_and_checkout_go_through_the_session_manager(db: WebDb) -> None:
    demo = db.demo
    base = f"/sessions/{demo.session_id}/actions"
    with client(db.path) as (c, guard, mgr):
        main = mgr.branches(demo.session_id)[0]

        def do(action: str, **fields: str) -> Any:
            return c.post(f"{base}/{action}", data={**fields, "csrf": guard.csrf,
                                                     "confirm": "yes"})  # fmt: skip

        assert do("tag", checkpoint=demo.main_head, name="web-tag").status_code == 303
        assert do("branch", checkpoint=demo.main_head, name="side").status_code == 303
        assert do("checkout", thread=main.thread_id).status_code == 303
        duplicate = do("tag", checkpoint=demo.branch_head, name="web-tag")
        session = mgr.get_session(demo.session_id)
        assert mgr.tags(demo.session_id)["web-tag"] == demo.main_head
        assert "side" in [b.name for b in mgr.branches(demo.session_id)]
        assert session is not None and session.current_thread_id == main.thread_id
    assert duplicate.status_code == 400 and "web-tag" in duplicate.text
    assert "Traceback" not in duplicate.text


def test_a_cross_site_post_is_refused(db: WebDb) -> None:
    demo = db.demo
    with client(db.path) as (c, guard, mgr):
        before = mgr.branches(demo.session_id)
        response = c.post(
            f"/sessions/{demo.session_id}/actions/rollback",
            data={"checkpoint": demo.main_head, "csrf": guard.csrf, "confirm": "yes"},
            headers={"Origin": "http://evil.example"},
        )
        assert mgr.branches(demo.session_id) == before
    assert response.status_code == 403


def test_the_host_header_is_checked(db: WebDb) -> None:
    with client(db.path) as (c, _, _):
        assert c.get("/", headers={"Host": f"localhost:{PORT}"}).status_code == 200
        rebound = c.get("/api/sessions", headers={"Host": f"attacker.example:{PORT}"})
    assert rebound.status_code == 400 and "Host" in rebound.text


def test_any_other_host_needs_the_access_token(db: WebDb) -> None:
    guard = Guard(hosts=allowed_hosts("0.0.0.0", PORT), token="a-long-secret-token")
    with client(db.path, guard=guard, base=f"http://192.0.2.10:{PORT}") as (c, _, _):
        assert c.get("/").status_code == 401
        assert c.get("/api/sessions").status_code == 401
        assert c.get("/", params={"token": "wrong-token"}).status_code == 401
        bearer = c.get("/api/sessions", headers={"Authorization": "Bearer a-long-secret-token"})
        assert bearer.status_code == 200 and bearer.json()["sessions"]
        first = c.get("/sessions/x", params={"token": "a-long-secret-token", "all": "1"})
        assert first.status_code == 303 and first.headers["location"] == "/sessions/x?all=1"
        assert "httponly" in first.headers["set-cookie"].lower()
        # The redirect stays on this viewer, whatever the path looks like.
        for path in ("//evil.example/", "/%2F%2Fevil.example", "/\\evil.example"):
            away = c.get(path, params={"token": "a-long-secret-token"})
            assert away.status_code == 303, path
            location = away.headers["location"]
            assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        assert c.get("/").status_code == 200  # the cookie now carries it
        c.cookies.clear()
        assert c.get("/").status_code == 401


def test_a_form_announcing_a_huge_body_is_refused_before_it_is_read(db: WebDb) -> None:
    demo = db.demo
    with client(db.path) as (c, guard, _):
        response = c.post(
            f"/sessions/{demo.session_id}/actions/tag",
            content=f"csrf={guard.csrf}",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Length": "999999999999",
            },
        )
    assert response.status_code == 413


def test_a_damaged_session_does_not_take_the_listing_down(db: WebDb) -> None:
    """One session whose head cannot be decoded: the listings still answer, naming it
    unreadable; reading its damaged head is a 500 (damage), never a 400."""
    demo = db.demo
    with db.open() as (saver, mgr):
        head = saver.get_tuple(mgr.config(demo.session_id))
        assert head is not None
    with sqlite3.connect(db.path) as conn:
        refs = json.loads(
            conn.execute(
                "SELECT refs FROM agentgit_checkpoints WHERE checkpoint_id = ?",
                (head.checkpoint["id"],),
            ).fetchone()[0]
        )
        conn.execute(
            "UPDATE agentgit_blobs SET data = ? WHERE id = ?",
            (b"\x00garbage", refs["messages"]),
        )
    with client(db.path) as (c, _, _):
        listing = c.get("/")
        api = c.get("/api/sessions")
        own = c.get(f"/api/sessions/{demo.session_id}")
        timeline = c.get(f"/api/sessions/{demo.session_id}/timeline")
    assert listing.status_code == 200 and "(unreadable:" in listing.text
    assert api.status_code == 200
    previews = {s["id"]: s["last_message"] for s in api.json()["sessions"]}
    assert previews[demo.session_id].startswith("(unreadable:")
    assert sum(1 for p in previews.values() if p.startswith("(unreadable:")) == 1
    assert own.status_code == 200 and own.json()["session"]["last_message"].startswith("(unr")
    assert timeline.status_code == 500 and timeline.json()["kind"] == "error"
    listed = {s["id"]: s["last_message"] for s in cli_json(db, "sessions")}
    assert listed == previews


def test_the_sessions_page_and_api_page_through_many_sessions(db: WebDb) -> None:
    """50 sessions a page, most recently active first, in the manager's order; filters
    (user, text) carry over to the next page; a bad ``?offset=`` or ``?user=`` is a 400
    naming it."""
    with db.open() as (_, mgr):
        for i in range(120):
            made = mgr.create_session(user_id="alice" if i % 3 else "bob", name=f"batch {i}")
            if i % 10 == 0:  # inactive, not ended: listed, but not as active
                mgr.deactivate(made.id)
        active = [s.id for s in mgr.list_sessions(active_only=True)]
        everyone = [s.id for s in mgr.list_sessions()]
        alices = [s.id for s in mgr.list_sessions(user_id="alice")]
        named = [s.id for s in mgr.list_sessions() if "batch 11" in (s.name or "")]
    assert len(everyone) == 123 and len(alices) == 80 and len(named) == 11

    def ids(html: str) -> list[str]:
        return re.findall(r'<tr class="session[^"]*" data-session-id="([^"]+)"', html)

    def walk(c: TestClient, url: str) -> tuple[list[str], list[str]]:
        seen: list[str] = []
        counts: list[str] = []
        while True:
            page = c.get(url)
            assert page.status_code == 200, page.text
            seen += ids(page.text)
            counts.append(re.search(r'<p class="count">([^<]*)</p>', page.text).group(1))
            older = re.search(r'<a href="([^"]+)" id="older"', page.text)
            if older is None:
                return seen, counts
            url = older.group(1).replace("&amp;", "&")

    with client(db.path) as (c, _, _):
        first = c.get("/")
        assert len(ids(first.text)) == 50 and 'id="newer"' not in first.text
        pages = [
            "1 to 50 of 123 sessions",
            "51 to 100 of 123 sessions",
            "101 to 123 of 123 sessions",
        ]
        assert walk(c, "/") == (everyone, pages)
        assert walk(c, "/?user=alice")[0] == alices
        walked, counts = walk(c, "/?active=1")
        assert (
            walked == active
            and counts[-1] == f"101 to {len(active)} of {len(active)} sessions matching"
        )
        assert c.get("/api/sessions?active=1").json()["total"] == len(active) < len(everyone)
        assert walk(c, "/?q=BATCH+11")[0] == named
        second = c.get("/?offset=50")
        assert 'id="newer"' in second.text and ids(second.text) == everyone[50:100]
        api = c.get("/api/sessions").json()
        assert [s["id"] for s in api["sessions"]] == everyone[:50]
        assert (api["total"], api["offset"], api["next_offset"]) == (123, 0, 50)
        last = c.get("/api/sessions", params={"offset": 100, "user": "alice"}).json()
        assert [s["id"] for s in last["sessions"]] == []
        assert (last["total"], last["next_offset"]) == (80, None)
        bad = {
            "/?offset=-1": "?offset=",
            "/?offset=1e3": "?offset=",
            "/api/sessions?offset=99999999999": "?offset=",
            "/?user=%20alice": "user id",
            "/api/sessions?user=a%00b": "user id",
        }
        for url, named_in_error in bad.items():
            response = c.get(url)
            assert response.status_code == 400, url
            assert named_in_error in response.text and "Traceback" not in response.text


def test_a_read_only_viewer_offers_and_allows_no_action(db: WebDb) -> None:
    demo = db.demo
    with client(db.path, read_only=True) as (c, guard, mgr):
        page = c.get(f"/sessions/{demo.session_id}/checkpoints/{demo.main_head}")
        posted = c.post(
            f"/sessions/{demo.session_id}/actions/rollback",
            data={"checkpoint": demo.main_head, "csrf": guard.csrf, "confirm": "yes"},
        )
        assert len(mgr.branches(demo.session_id)) == 2
    assert page.status_code == 200 and "Roll back here" not in page.text
    assert "read-only" in page.text
    assert posted.status_code == 403 and "read-only" in posted.text


def test_unknown_ids_are_clear_errors(db: WebDb) -> None:
    demo = db.demo
    with client(db.path) as (c, _, _):
        page = c.get("/sessions/no-such-session")
        api = c.get("/api/sessions/no-such-session")
        checkpoint = c.get(f"/sessions/{demo.session_id}/checkpoints/1f0-nope")
        diff = c.get(f"/api/sessions/{demo.session_id}/diff", params={"a": "zz", "b": "yy"})
        nowhere = c.get("/nowhere")
    assert page.status_code == 404 and "no session &#39;no-such-session&#39;" in page.text
    assert api.status_code == 404 and api.json()["message"] == "no session 'no-such-session'"
    assert checkpoint.status_code == 404 and "1f0-nope" in checkpoint.text
    assert diff.status_code == 400 and diff.json()["kind"] == "error"
    assert nowhere.status_code == 404
    for response in (page, api, checkpoint, diff, nowhere):
        assert "Traceback" not in response.text


# --- agentgit serve's start ------------------------------------------------------------


def test_serve_refuses_a_missing_or_foreign_database_without_creating_one(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = runner.invoke(cli_app, ["serve", "--db", str(missing), "--port", "1"])
    assert result.exit_code == 2 and f"no database at {missing}" in result.stderr
    assert not missing.exists()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = foreign.read_bytes()
    result = runner.invoke(cli_app, ["serve", "--db", str(foreign)])
    assert result.exit_code == 2 and "is not an agentgit database" in result.stderr
    assert foreign.read_bytes() == before
    assert "Traceback" not in result.output


def test_serve_refuses_a_short_token(db: WebDb) -> None:
    result = runner.invoke(cli_app, ["serve", "--db", str(db.path), "--token", "short"])
    assert result.exit_code == 2 and "--token" in result.stderr


def test_tree_svg_writes_the_timeline_the_viewer_shows(db: WebDb, tmp_path: Path) -> None:
    out = tmp_path / "timeline.svg"
    result = runner.invoke(
        cli_app, ["tree", db.long_session_id, "--svg", str(out), "--db", str(db.path)]
    )
    assert result.exit_code == 0, result.output
    written = ET.fromstring(out.read_text(encoding="utf-8").split("?>", 1)[1])
    with client(db.path) as (c, _, mgr):
        shown = svg_of(c.get(f"/sessions/{db.long_session_id}").text)
        total = mgr.timeline(db.long_session_id).session.total_checkpoints

    def marks(svg: ET.Element) -> list[tuple[str | None, str | None]]:
        return [(d.get("data-thread-id"), d.get("data-checkpoint-id")) for d in dots(svg)]

    assert marks(written) == marks(shown) and marks(written)
    assert written.find(f"{SVG}style") is not None  # a file carries its own styles
    every = tmp_path / "all.svg"
    runner.invoke(
        cli_app, ["tree", db.long_session_id, "--all", "--svg", str(every), "--db", str(db.path)]
    )
    assert len(dots(ET.fromstring(every.read_text(encoding="utf-8").split("?>", 1)[1]))) == total
    both = runner.invoke(
        cli_app, ["tree", db.long_session_id, "--svg", str(out), "--json", "--db", str(db.path)]
    )
    assert both.exit_code == 2 and "choose one" in both.stderr


def test_serve_on_another_host_prints_a_token_and_refuses_requests_without_it(
    db: WebDb,
) -> None:
    with running_server(db.path, "--read-only", host="0.0.0.0") as served:
        token_lines = [line for line in served.printed if "?token=" in line]
        assert len(token_lines) == 1, served.printed
        token = token_lines[0].split("?token=", 1)[1].strip()
        assert len(token) >= 16
        assert any("read-only" in line for line in served.printed)
        with httpx.Client(base_url=served.url, follow_redirects=False) as c:
            refused = c.get("/api/sessions")
            wrong = c.get("/api/sessions", headers={"Authorization": "Bearer not-the-token"})
            allowed = c.get("/api/sessions", headers={"Authorization": f"Bearer {token}"})
            first = c.get("/", params={"token": token})
            by_cookie = c.get("/")
    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert allowed.status_code == 200 and len(allowed.json()["sessions"]) == 3
    assert first.status_code == 303 and by_cookie.status_code == 200
    assert "Roll back" not in by_cookie.text  # --read-only


def test_an_interrupted_head_is_marked_and_its_interrupt_shown(tmp_path: Path) -> None:
    path = tmp_path / "approval.db"
    with AgentGitSaver.from_conn_string(str(path)) as saver:
        mgr = SessionManager(saver)
        graph = build_interrupt_graph().compile(checkpointer=saver)
        s = mgr.create_session(name="approval")
        graph.invoke({"steps": []}, mgr.config(s.id))
        state = graph.get_state(mgr.config(s.id))
        (waiting,) = state.interrupts
        head = state.config["configurable"]["checkpoint_id"]
    with client(path) as (c, _, _):
        svg = svg_of(c.get(f"/sessions/{s.id}").text)
        detail = c.get(f"/api/sessions/{s.id}/checkpoints/{head}").json()["checkpoint"]
        page = c.get(f"/sessions/{s.id}/checkpoints/{head}").text
    marked = [d for d in dots(svg) if "interrupted" in d.get("class", "").split()]
    assert [d.get("data-checkpoint-id") for d in marked] == [head]
    assert detail["interrupts"] == [{"id": waiting.id, "value": waiting.value}]
    assert "Interrupts waiting" in page and "approve?" in page


def test_serve_says_when_it_cannot_listen(db: WebDb) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = runner.invoke(cli_app, ["serve", "--db", str(db.path), "--port", str(port)])
    assert busy.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    unknown = runner.invoke(cli_app, ["serve", "--db", str(db.path), "--host", "nowhere.invalid"])
    assert unknown.exit_code == 2 and "cannot listen on nowhere.invalid" in unknown.stderr
    assert "Traceback" not in busy.output + unknown.output


def test_a_rollback_shows_the_tool_calls_it_leaves_behind(db: WebDb) -> None:
    """The confirmation of a rollback lists SessionManager.plan_rollback's effects (tool,
    arguments, status), newest first, and says the viewer undoes none of them."""
    demo = db.demo
    url = f"/sessions/{demo.session_id}/actions/rollback"
    with client(db.path) as (c, guard, mgr):
        plan = mgr.plan_rollback(demo.session_id, demo.main_head)
        asked = c.post(url, data={"checkpoint": demo.main_head, "csrf": guard.csrf})
        nothing = mgr.plan_rollback(demo.session_id, demo.branch_head)
        asked_head = c.post(url, data={"checkpoint": demo.branch_head, "csrf": guard.csrf})
    assert plan.effects, "the demo's current branch made tool calls after the fork"
    assert asked.status_code == 200
    rows = re.findall(r'<tr class="effect" data-status="([a-z_]+)"><td>([^<]*)</td>', asked.text)
    assert rows == [(p.status, p.effect.tool_name) for p in plan.effects]
    assert "runs no undo handlers" in asked.text
    assert not nothing.effects and 'id="no-effects"' in asked_head.text


def test_search_page_and_api_give_the_managers_hits_escaped(db: WebDb) -> None:
    """The sessions page's search: /search and /api/search give SessionManager.search's
    hits (the same as `agentgit search --json`), each match in <mark>, message text that
    holds markup escaped."""
    with client(db.path) as (c, _, mgr):
        expected = [h.to_dict() for h in mgr.search("window", limit=50)]
        api = c.get("/api/search", params={"q": "window"}).json()
        html = c.get("/search", params={"q": "window"}).text
        empty = c.get("/search", params={"q": '"("*)'}).status_code
        front = c.get("/").text
    assert expected, "the XSS session's messages say window.__xss"
    assert api["kind"] == "search" and api["hits"] == expected
    assert cli_json(db, "search", "window", "--limit", "50") == expected
    rows = re.findall(
        r'<tr class="hit" data-session-id="([^"]*)" data-checkpoint-id="([^"]*)"', html
    )
    assert rows == [(h["session_id"], h["checkpoint_id"]) for h in expected]
    assert "<mark>window</mark>" in html and "<script>window" not in html
    assert "&lt;/script&gt;" in html or "&lt;img" in html  # the markup around the match, as text
    assert empty == 200 and 'action="/search"' in front


def test_search_filters_are_the_managers(db: WebDb) -> None:
    """/search and /api/search take agentgit search's filters: ?user=, ?session= and
    ?role=, with the manager's hits for them; an unknown session is a 404, an unknown
    role or a malformed user a 400 naming the parameter's problem."""
    with client(db.path) as (c, _, mgr):
        everything = mgr.search("the", limit=50)
        users = sorted({s.user_id for s in mgr.list_sessions() if s.user_id})
        session_id = next(h.session_id for h in everything if h.session_id)
        cases: list[dict[str, str]] = [
            {"role": "human"},
            {"role": "ai"},
            {"session": session_id},
            {"session": session_id, "role": "ai"},
            *({"user": u} for u in users),
        ]
        for params in cases:
            expected = [
                h.to_dict()
                for h in mgr.search(
                    "the",
                    user_id=params.get("user"),
                    session_id=params.get("session"),
                    role=params.get("role"),
                    limit=50,
                )
            ]
            api = c.get("/api/search", params={"q": "the", **params}).json()
            assert api["hits"] == expected, params
            html = c.get("/search", params={"q": "the", **params}).text
            rows = re.findall(r'<tr class="hit" data-session-id="([^"]*)"', html)
            assert rows == [h["session_id"] or "None" for h in expected], params
        assert any(
            c.get("/api/search", params={"q": "the", **p}).json()["hits"]
            != [h.to_dict() for h in everything]
            for p in cases
        ), "the filters change nothing on this database"
        missing = c.get("/api/search", params={"q": "the", "session": "no-such-session"})
        bad_role = c.get("/api/search", params={"q": "the", "role": "wizard"})
        bad_user = c.get("/search", params={"q": "the", "user": "x\x00y"})
        scoped = c.get(f"/sessions/{session_id}").text
    assert missing.status_code == 404 and "no-such-session" in missing.json()["message"]
    assert bad_role.status_code == 400 and "wizard" in bad_role.json()["message"]
    assert bad_user.status_code == 400 and "?user=" in bad_user.text
    assert 'id="session-search"' in scoped and f'value="{session_id}"' in scoped
