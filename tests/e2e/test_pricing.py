"""What a turn's `usage_update` says it cost, through the real daemon and a
recorded OpenAI stream (16 prompt tokens, 10 completion tokens): a model of the
shipped table, one priced by config.toml's `[prices]`, and one priced nowhere,
which says so live and again when the session is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import replay_env
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.replay_server import ReplayServer

PROMPT_TOKENS, COMPLETION_TOKENS = 16, 10
UNPRICED = "house-model-7b"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    return root


def _usage_updates(daemon: RawDaemon) -> list[dict[str, Any]]:
    return [
        f["params"]["update"]
        for f in daemon.frames
        if f.get("method") == "session/update"
        and f["params"]["update"]["sessionUpdate"] == "usage_update"
    ]


def _env(provider: ReplayServer, home: Path, model: str, config: str = "") -> dict[str, str]:
    """parleyd on the replay server with `model`, and `config` as its config.toml."""
    env = dict(replay_env(home, provider.url, model))
    if config:
        path = home.parent / "config.toml"
        path.write_text(config)
        env["PARLEY_CONFIG"] = str(path)
    return env


async def _one_turn(env: dict[str, str], workspace: Path) -> tuple[str, dict[str, Any]]:
    """A session whose one turn answers from the recording: its id, its last usage."""
    async with raw_daemon(env) as daemon:
        await daemon.initialize()
        session_id = await daemon.new_session(workspace)
        prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": "go"}]}
        answer = await daemon.request("session/prompt", prompt)
        assert answer["result"] == {"stopReason": "end_turn"}
        return session_id, _usage_updates(daemon)[-1]


@pytest.mark.parametrize(
    ("model", "config", "per_million"),
    [
        ("gpt-4o-mini", "", (0.15, 0.60)),  # the shipped table's
        (UNPRICED, f'[prices."{UNPRICED}"]\ninput = 0.2\noutput = 0.8\n', (0.2, 0.8)),
    ],
    ids=["shipped", "configured"],
)
async def test_a_priced_model_reports_its_cost(
    tmp_path: Path, workspace: Path, model: str, config: str, per_million: tuple[float, float]
) -> None:
    async with ReplayServer() as provider:
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        _, usage = await _one_turn(_env(provider, tmp_path / "home", model, config), workspace)
    per_input, per_output = per_million
    expected = (PROMPT_TOKENS * per_input + COMPLETION_TOKENS * per_output) / 1_000_000
    assert usage["cost"]["currency"] == "USD"
    assert usage["cost"]["amount"] == pytest.approx(expected)
    detail = usage["_meta"]["parley"]["usage"]
    assert detail["model"] == model
    for scope in ("turn", "total", "session"):
        assert detail[scope]["priced"] is True
        assert detail[scope]["cost"] == pytest.approx(expected)


async def test_a_model_priced_nowhere_says_so_and_reports_no_cost(
    tmp_path: Path, workspace: Path
) -> None:
    async with ReplayServer() as provider:
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        env = _env(provider, tmp_path / "home", UNPRICED)
        session_id, live = await _one_turn(env, workspace)

    def unpriced(usage: dict[str, Any]) -> None:
        assert "cost" not in usage  # not 0: unknown
        detail = usage["_meta"]["parley"]["usage"]
        assert detail["model"] == UNPRICED
        for scope in ("turn", "own", "total", "session"):
            assert detail[scope]["priced"] is False
            assert (detail[scope]["cost"], detail[scope]["currency"]) == (None, None)
            assert detail[scope]["inputTokens"] == PROMPT_TOKENS

    unpriced(live)
    # A load replays the turn's figures from the log: unpriced still.
    async with raw_daemon(env) as daemon:
        await daemon.initialize()
        await daemon.load_session(session_id, workspace)
        (replayed,) = _usage_updates(daemon)
    unpriced(replayed)


async def test_a_cost_budget_is_not_spent_on_a_model_priced_nowhere(
    tmp_path: Path, workspace: Path
) -> None:
    go = [{"type": "text", "text": "go"}]
    async with ReplayServer() as provider:
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        async with raw_daemon(_env(provider, tmp_path / "home", UNPRICED)) as daemon:
            await daemon.initialize()
            session_id = await daemon.new_session(workspace)
            budget = {"sessionId": session_id, "budget": {"cost": 1.0}}
            assert "result" in await daemon.request("_parley/session/setBudget", budget)
            answer = await daemon.request("session/prompt", {"sessionId": session_id, "prompt": go})
            assert answer["result"] == {"stopReason": "max_turn_requests"}
            (said,) = [  # a client without ACP notices reads it as the agent's words
                f["params"]["update"]
                for f in daemon.frames
                if f.get("method") == "session/update"
                and f["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
            ]
            assert said["_meta"]["parley"]["budget"]["limit"] == "cost"
            assert said["content"]["text"] == (
                f"Stopped: the budget of $1 for the session cannot be kept: {UNPRICED} has no "
                "known price. Give its price under [prices] in config.toml, or lift the cost "
                "budget with _parley/session/setBudget, to go on."
            )
            assert provider.requests == []  # nothing was spent uncounted
            lifted = {"sessionId": session_id, "budget": {"cost": None}}
            assert "result" in await daemon.request("_parley/session/setBudget", lifted)
            answer = await daemon.request("session/prompt", {"sessionId": session_id, "prompt": go})
            assert answer["result"] == {"stopReason": "end_turn"}
