"""Timelines (text, Mermaid, dict, notebook) and checkpoint diffs across branches."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langgraph.types import Command
from session_graphs import AGENT, APPROVAL, COUNTER, Env, cfg, cid, open_env

from langgraph_agentgit import AgentGitSaver, CheckpointDiff, SessionManager, Timeline
from langgraph_agentgit.demo import run_demo

MODES = ["sync", "async"]


@pytest.fixture
def db(any_db: str) -> str:
    """A SQLite file, then a Postgres schema: timelines and diffs read the same on both."""
    return any_db


async def agent_story(env: Env) -> dict[str, Any]:
    """main: two turns (the second calls a tool); retry: rolled back to the end of turn 1
    and run once (current); sibling: branched there, never run; a tag on the fork point."""
    s = await env.call("create_session", user_id="alice", name="support")
    main = s.current_thread_id
    await env.turn(cfg(main), "hello")
    turn_one = await env.state(cfg(main))
    await env.turn(cfg(main), "weather in Paris")
    await env.call("tag", s.id, turn_one, "first-turn")
    retry = await env.call("rollback", s.id, "first-turn", name="retry")
    await env.turn(retry.config, "again")
    sibling = await env.call("branch", s.id, turn_one, name="sibling")
    return {
        "s": await env.call("get_session", s.id),
        "main": main,
        "retry": retry.thread_id,
        "sibling": sibling.thread_id,
        "fork": cid(turn_one),
        "fork_step": turn_one.metadata["step"],  # type: ignore[index]
    }


async def timeline_of(env: Env, session_id: str) -> Timeline:
    timeline = await env.call("timeline", session_id)
    assert isinstance(timeline, Timeline)
    return timeline


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_timeline_text_tree(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        story = await agent_story(env)
        s = story["s"]
        tl = await timeline_of(env, s.id)
        lines = str(tl).splitlines()
        abbrev = tl.abbreviations()
        fork = abbrev[story["fork"]]
        assert story["fork"].startswith(fork) and len(fork) >= 8

        assert lines[0] == f"Session {s.id} 'support'"
        assert lines[1] == f"user alice · 2 branches · {s.total_checkpoints} checkpoints"
        assert all(len(line) <= 80 for line in lines)  # 80 columns, ids whole
        threads = {t: t[:8] if len(t) == 36 else t for t in (story["main"], story["retry"])}
        threads[story["sibling"]] = (
            story["sibling"][:8] if len(story["sibling"]) == 36 else story["sibling"]
        )
        main_line, main_head_line, retry_line, retry_head, sibling_line, sibling_head, tags_line = (
            lines[2:]
        )
        main_head = await env.state(cfg(story["main"]))
        assert main_line.startswith(f"main · {threads[story['main']]} · ")
        assert f"{len(await env.history(cfg(story['main'])))} checkpoints" in main_line
        assert f"step {main_head.metadata['step']} agent" in main_head_line  # type: ignore[index]
        assert main_head_line.startswith("│   head ")
        assert "'ai: the weather is sunny in Paris'" in main_head_line
        assert retry_line.startswith(
            f"├── * retry · {threads[story['retry']]} · forked at {fork} (step "
        )
        assert f"(step {story['fork_step']})" in retry_line
        assert "3 checkpoints" in retry_line and "'ai: echo: again'" in retry_head
        assert sibling_line.startswith(
            f"└── sibling · {threads[story['sibling']]} · forked at {fork}"
        )
        assert "0 checkpoints" in sibling_line and "(fork point)" in sibling_head
        assert "'ai: echo: hello'" in sibling_head
        assert tags_line == f"tags: first-turn -> {fork}"
        # Only the current branch is marked.
        assert sum("* " in line for line in (main_line, retry_line, sibling_line)) == 1

        # Branch of a branch: indented under its parent.
        await env.call("rollback", s.id, await env.state(cfg(story["retry"])), name="deeper")
        lines = str(await timeline_of(env, s.id)).splitlines()
        assert lines[4].startswith("├── retry")
        assert lines[5].startswith("│   │   head ")
        assert lines[6].startswith("│   └── * deeper")
        assert lines[7].startswith("│           head ")
        assert lines[8].startswith("└── sibling")


@pytest.mark.parametrize("mode", MODES)
async def test_timeline_records_nodes_and_counts(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        story = await agent_story(env)
        tl = await timeline_of(env, story["s"].id)
        main = tl.branch(story["main"])
        assert [(c.source, c.node) for c in main.checkpoints] == [
            ("input", None),
            ("loop", "__start__"),
            ("loop", "agent"),
            ("input", None),
            ("loop", "__start__"),
            ("loop", "agent"),
            ("loop", "tools"),
            ("loop", "agent"),
        ]
        history = await env.history(cfg(story["main"]))
        assert [c.checkpoint_id for c in main.checkpoints] == [cid(x) for x in reversed(history)]
        assert [c.step for c in main.checkpoints] == [
            x.metadata["step"]  # type: ignore[index]
            for x in reversed(history)
        ]
        assert all(c.created_at for c in main.checkpoints)
        # The branch's first checkpoint has its parent on another thread.
        retry = tl.branch(story["retry"])
        assert [(c.source, c.node) for c in retry.checkpoints] == [
            ("input", None),
            ("loop", "__start__"),
            ("loop", "agent"),
        ]
        assert retry.checkpoints[0].parent_checkpoint_id == story["fork"]
        assert retry.fork_point is not None and retry.fork_point.node == "agent"
        assert tl.current is retry
        for history_ in tl.branches:
            assert len(history_.checkpoints) == history_.branch.checkpoint_count
        assert tl.branch(story["sibling"]).head == retry.fork_point
        # update_state makes a checkpoint no node produced.
        if mode == "sync":
            env.graph.update_state(cfg(story["main"]), {"messages": [AIMessage("note")]})
        else:
            await env.graph.aupdate_state(cfg(story["main"]), {"messages": [AIMessage("note")]})
        head = (await timeline_of(env, story["s"].id)).branch(story["main"]).head
        assert head is not None and (head.source, head.node) == ("update", None)


@pytest.mark.parametrize("mode", MODES)
async def test_timeline_shows_a_pending_interrupt(mode: str, db: str) -> None:
    async with open_env(mode, db, APPROVAL) as env:
        s = await env.call("create_session")
        await env.invoke({"messages": [("user", "ship it")]}, cfg(s.current_thread_id))
        tl = await timeline_of(env, s.id)
        assert tl.branches[0].interrupted
        assert "interrupted" in str(tl)
        await env.invoke(Command(resume="fine"), cfg(s.current_thread_id))
        tl = await timeline_of(env, s.id)
        assert not tl.branches[0].interrupted
        assert tl.branches[0].last_message == "ai: review: fine"


async def test_timeline_of_a_new_session(db: str) -> None:
    async with open_env("sync", db, AGENT) as env:
        s = await env.call("create_session")
        tl = await timeline_of(env, s.id)
        assert "not run yet" in str(tl)
        assert tl.branches[0].head is None and tl.branches[0].last_message is None
        assert tl.to_mermaid() == "gitGraph\n"
        json.dumps(tl.to_dict())


# --- Mermaid -----------------------------------------------------------------------------------

COMMIT = re.compile(r'^    commit id: "([^"]+)"(?: tag: "([^"]+)")?( type: HIGHLIGHT)?$')
SAFE_ID = re.compile(r"^[A-Za-z0-9 _.,()\-]+$")


def simulate_git_graph(source: str) -> dict[str, Any]:
    """Follow gitGraph commands: which lane each commit lands on, and after which commit
    each branch was opened."""
    lines = source.splitlines()
    assert lines[0] in ("gitGraph",) or lines[1] == "gitGraph"
    main = "main"
    if lines[0].startswith("%%{init"):
        main = re.search(r"mainBranchName': '([^']+)'", lines[0]).group(1)  # type: ignore[union-attr]
        lines = lines[1:]
    on = main
    heads: dict[str, str | None] = {main: None}
    commits: dict[str, list[str]] = {main: []}
    opened_at: dict[str, str | None] = {}
    tags: dict[str, str] = {}
    highlighted: list[str] = []
    for line in lines[1:]:
        if line.startswith("    branch "):
            name = line.split()[1]
            assert name not in heads
            opened_at[name] = heads[on]
            heads[name] = heads[on]
            commits[name] = []
            on = name
        elif line.startswith("    checkout "):
            on = line.split()[1]
            assert on in heads
        else:
            found = COMMIT.match(line)
            assert found, line
            label = found.group(1)
            assert SAFE_ID.match(label), label
            commits[on].append(label)
            heads[on] = label
            if found.group(2):
                tags[found.group(2)] = label
            if found.group(3):
                highlighted.append(label)
    all_labels = [c for lane in commits.values() for c in lane]
    assert len(all_labels) == len(set(all_labels))  # commit ids are unique
    return {"commits": commits, "opened_at": opened_at, "tags": tags, "highlighted": highlighted}


@pytest.mark.parametrize("mode", MODES)
async def test_mermaid_git_graph(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        story = await agent_story(env)
        tl = await timeline_of(env, story["s"].id)
        abbrev = tl.abbreviations()
        graph = simulate_git_graph(tl.to_mermaid())

        def labels(thread_id: str) -> list[str]:
            return [abbrev[c.checkpoint_id] for c in tl.branch(thread_id).checkpoints]

        lanes = graph["commits"]
        assert set(lanes) == {"main", "retry", "sibling"}
        assert [c.split()[0] for c in lanes["main"]] == labels(story["main"])
        assert [c.split()[0] for c in lanes["retry"]] == labels(story["retry"])
        assert lanes["sibling"] == []
        fork = abbrev[story["fork"]]
        assert graph["opened_at"]["retry"].split()[0] == fork
        assert graph["opened_at"]["sibling"].split()[0] == fork
        assert graph["tags"]["first-turn"].split()[0] == fork
        retry_head = tl.branch(story["retry"]).head
        assert retry_head is not None
        assert [h.split()[0] for h in graph["highlighted"]] == [abbrev[retry_head.checkpoint_id]]
        assert lanes["main"][2].endswith(" s1 agent")

        # A deeper branch opens at its fork point on its parent's lane.
        retry_state = await env.state(cfg(story["retry"]))
        await env.call("rollback", story["s"].id, retry_state, name="deeper")
        graph = simulate_git_graph((await timeline_of(env, story["s"].id)).to_mermaid())
        assert graph["opened_at"]["deeper"] == graph["commits"]["retry"][-1]


async def test_mermaid_shortens_long_branches(db: str) -> None:
    async with open_env("sync", db, COUNTER) as env:
        mgr: SessionManager = env.mgr
        s = mgr.create_session()
        main = s.current_thread_id
        for n in range(10):
            COUNTER.turn(env.graph, cfg(main), f"turn {n}")
        history = list(reversed(await env.history(cfg(main))))  # oldest first
        mgr.branch(s.id, history[13], name="early")
        mgr.tag(s.id, history[21], "middle")
        tl = mgr.timeline(s.id)
        graph = simulate_git_graph(tl.to_mermaid(max_commits=8))
        abbrev = tl.abbreviations()
        shown = graph["commits"]["main"]
        elided = [c for c in shown if c.startswith("... ")]
        kept = [c for c in shown if not c.startswith("... ")]
        assert elided and len(kept) < len(history)
        assert len(kept) + sum(int(c.split()[1]) for c in elided) == len(history)
        kept_ids = [c.split()[0] for c in kept]
        first_four = [c.checkpoint_id for c in tl.branch(main).checkpoints[:4]]
        assert kept_ids[:4] == [abbrev[c] for c in first_four]
        assert abbrev[cid(history[13])] in kept_ids  # a fork point is never hidden
        assert abbrev[cid(history[21])] in kept_ids  # nor a tagged checkpoint
        assert graph["opened_at"]["early"].split()[0] == abbrev[cid(history[13])]
        # Everything is shown when it fits.
        full = simulate_git_graph(tl.to_mermaid(max_commits=40))
        assert len(full["commits"]["main"]) == len(history) == 40


@pytest.mark.parametrize("mode", MODES)
async def test_mermaid_flowchart_dict_and_notebook(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        story = await agent_story(env)
        tl = await timeline_of(env, story["s"].id)
        flow = tl.to_mermaid("flowchart")
        lines = flow.splitlines()
        assert lines[0] == "flowchart TD"
        assert len([x for x in lines if re.match(r'^    b\d+\["', x)]) == 3
        edges = [x for x in lines if "-->" in x]
        assert edges == [
            f'    b0 -->|"step {story["fork_step"]} {tl.abbreviations()[story["fork"]]}"| b1',
            f'    b0 -->|"step {story["fork_step"]} {tl.abbreviations()[story["fork"]]}"| b2',
        ]
        assert lines[-1] == "    style b1 stroke-width:3px"
        with pytest.raises(ValueError, match="sequence"):
            tl.to_mermaid("sequence")  # type: ignore[arg-type]

        data = json.loads(json.dumps(tl.to_dict()))
        assert data["session"]["id"] == story["s"].id
        assert data["session"]["branch_count"] == 2
        assert data["tags"] == {"first-turn": story["fork"]}
        by_thread = {b["thread_id"]: b for b in data["branches"]}
        assert by_thread[story["retry"]]["is_current"] is True
        assert by_thread[story["retry"]]["fork_point"]["checkpoint_id"] == story["fork"]
        assert by_thread[story["sibling"]]["checkpoints"] == []
        assert [c["checkpoint_id"] for c in by_thread[story["main"]]["checkpoints"]] == [
            cid(x) for x in reversed(await env.history(cfg(story["main"])))
        ]
        markdown = tl._repr_markdown_()
        assert markdown.startswith("```mermaid\ngitGraph\n")
        assert str(tl) in markdown


@pytest.mark.parametrize("mode", MODES)
async def test_mermaid_after_the_first_thread_is_deleted(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        story = await agent_story(env)
        await env.call("delete_branch", story["s"].id, story["main"])
        tl = await timeline_of(env, story["s"].id)
        source = tl.to_mermaid()
        assert source.startswith("%%{init: {'gitGraph': {'mainBranchName': 'retry'}}}%%\n")
        graph = simulate_git_graph(source)
        assert set(graph["commits"]) == {"retry", "sibling"}
        assert "of deleted thread " + story["main"][:8] in str(tl)
        assert "of deleted thread " + story["main"] in tl.format(width=None)


# --- diffs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_diff_across_branches(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        story = await agent_story(env)
        main_state = await env.state(cfg(story["main"]))
        retry_state = await env.state(cfg(story["retry"]))
        d = await env.call("diff", main_state, cfg(story["retry"]))
        assert isinstance(d, CheckpointDiff)
        assert d.base is not None and d.base.checkpoint_id == story["fork"]
        assert (d.a.thread_id, d.b.thread_id) == (story["main"], story["retry"])
        assert (d.a.checkpoint_id, d.b.checkpoint_id) == (cid(main_state), cid(retry_state))
        assert list(d.channels) == ["messages"]
        messages = d.channels["messages"]
        main_msgs, retry_msgs = main_state.values["messages"], retry_state.values["messages"]
        assert [m.id for m in messages.removed] == [m.id for m in main_msgs[2:]]
        assert [m.id for m in messages.added] == [m.id for m in retry_msgs[2:]]
        assert (messages.common, messages.changed) == (2, ())
        text = str(d).splitlines()
        short_main = story["main"][:8] if len(story["main"]) == 36 else story["main"]
        assert text[2] == f"common ancestor: {story['fork']} (step {story['fork_step']}, " + (
            f"thread {short_main})"
        )
        assert text[3] == "messages (changed): +2 -4, 2 in common"
        # One preview rule (langgraph_agentgit.views.text): the user's role, and a tool
        # call shown by its name and arguments.
        city = main_msgs[3].tool_calls[0]["args"]["city"]
        assert "  + user: again" in text
        assert "  - user: weather in Paris" in text
        assert f"  - ai → get_weather({city!r})" in text
        assert all(len(line) <= 80 for line in text)
        full = d.format(width=None).splitlines()  # nothing cut, message ids shown
        assert f"thread {story['main']})" in full[2]
        assert f"  + user: again [{retry_msgs[2].id}]" in full
        assert f"  - ai → get_weather({city!r}) [{main_msgs[3].id}]" in full
        data = json.loads(json.dumps(d.to_dict()))
        assert [m["id"] for m in data["channels"]["messages"]["added"]] == [
            m.id for m in retry_msgs[2:]
        ]
        assert data["channels"]["messages"]["removed"][1]["tool_calls"][0]["name"] == "get_weather"
        assert data["base"]["checkpoint_id"] == story["fork"]

        # The other way round swaps added and removed; Branch objects mean their heads.
        branches = {b.thread_id: b for b in await env.call("branches", story["s"].id)}
        back = await env.call("diff", branches[story["retry"]], branches[story["main"]])
        assert back.channels["messages"].added == messages.removed
        assert back.channels["messages"].removed == messages.added


@pytest.mark.parametrize("mode", MODES)
async def test_diff_along_one_branch_and_by_tag(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        story = await agent_story(env)
        s = story["s"]
        main_state = await env.state(cfg(story["main"]))
        d = await env.call("diff", "first-turn", main_state, session_id=s.id)
        assert d.base is not None and d.base.checkpoint_id == story["fork"] == d.a.checkpoint_id
        assert d.channels["messages"].removed == ()
        assert d.channels["messages"].added[0].content == "weather in Paris"
        # A bare checkpoint id outside a session is found in whatever thread has it.
        same = await env.call("diff", story["fork"], story["fork"])
        assert same.is_empty and str(same).endswith("no differences")
        # Threads that share nothing have no common ancestor.
        await env.turn(cfg("stranger"), "hello")
        apart = await env.call("diff", cfg("stranger"), main_state)
        assert apart.base is None and "common ancestor: none" in str(apart)


def test_diff_lists_the_effects_a_rollback_undid(db: str) -> None:
    with AgentGitSaver.from_conn_string(db) as saver:
        result = run_demo(saver)
        mgr = SessionManager(saver)
        d = mgr.diff(result.main_head, result.branch_head)
        [undone] = d.undone
        assert (undone.tool_name, undone.tool_call_id, undone.status) == (
            "refund_order",
            "call_5_0",
            "done",
        )
        assert undone.thread_id == result.main_thread_id
        assert result.shop is not None and result.shop.refunds["R-1"]["status"] == "cancelled"
        assert f"  ! refund_order (call call_5_0) undone {undone.updated_at}" in str(d)
        data = json.loads(json.dumps(d.to_dict()))
        assert data["undone_effects"][0]["undone_at"] == undone.updated_at
        # Either way round; nothing undone on the branch's side alone, nor before the fork.
        assert mgr.diff(result.branch_head, result.main_head).undone == d.undone
        assert mgr.diff(result.rollback_checkpoint_id, result.branch_head).undone == ()
        assert "undone effects" not in str(
            mgr.diff(result.rollback_checkpoint_id, result.branch_head)
        )


async def test_diff_of_values_and_of_a_replaced_message(db: str) -> None:
    async with open_env("sync", db, COUNTER) as env:
        COUNTER.turn(env.graph, cfg("c"), "abc")
        COUNTER.turn(env.graph, cfg("c"), "de")
        history = await env.history(cfg("c"))
        d = env.mgr.diff(history[4], history[0])
        assert set(d.channels) == {"log", "total"}
        total = d.channels["total"]
        assert (total.kind, total.status, total.before, total.after) == ("value", "changed", 4, 7)
        assert d.to_dict()["channels"]["log"]["after"][-1] == "bump"
        assert "total (changed): 4 -> 7" in str(d)
    async with open_env("sync", db, AGENT) as env:
        env.graph.invoke({"messages": [("user", "hi")]}, cfg("m"))
        before = env.graph.get_state(cfg("m"))
        reply = before.values["messages"][-1]
        env.graph.update_state(cfg("m"), {"messages": [AIMessage("edited", id=reply.id)]})
        d = env.mgr.diff(before, cfg("m"))
        change = d.channels["messages"]
        assert (change.added, change.removed) == ((), ())
        assert [(x.content, y.content) for x, y in change.changed] == [("echo: hi", "edited")]
        assert "  ~ ai: echo: hi" in str(d)
