"""A loaded session's provider: its settings are checked at `session/load`,
and it is reached with the first prompt."""

from __future__ import annotations

from pathlib import Path

from tests.support.daemon import daemon_env, replay_env
from tests.support.raw_daemon import raw_daemon
from tests.support.replay_server import ReplayServer


async def test_a_session_on_openai_does_not_load_without_the_key(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    # OpenAI itself, which needs a key; making the session reaches no network.
    with_key = daemon_env(home, PARLEY_PROVIDER="openai", OPENAI_API_KEY="sk-test-not-a-real-key")
    async with raw_daemon(with_key) as daemon:
        await daemon.initialize()
        session_id = await daemon.new_session(workspace)
    async with raw_daemon(daemon_env(home, PARLEY_PROVIDER="offline")) as daemon:
        await daemon.initialize()
        refused = await daemon.load_session(session_id, workspace)
        assert refused["error"]["code"] == -32011
        assert "OPENAI_API_KEY" in refused["error"]["message"]
        # Refused, not broken: the daemon goes on answering.
        assert "result" in await daemon.request("session/list", {})
    # And the session is as it was: with the key, it loads.
    async with raw_daemon(with_key) as daemon:
        await daemon.initialize()
        loaded = await daemon.load_session(session_id, workspace)
        assert loaded["result"]["modes"]["currentModeId"] == "ask"


async def test_a_loaded_session_reaches_its_provider_with_the_first_prompt(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with ReplayServer() as provider:
        env = replay_env(home, provider.url)
        async with raw_daemon(env) as daemon:
            await daemon.initialize()
            session_id = await daemon.new_session(workspace)
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        async with raw_daemon(env) as daemon:
            await daemon.initialize()
            loaded = await daemon.load_session(session_id, workspace)
            assert loaded["result"]["modes"]["currentModeId"] == "ask"
            assert provider.requests == []
            prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": "hi"}]}
            answer = await daemon.request("session/prompt", prompt)
            assert answer["result"] == {"stopReason": "end_turn"}
        assert len(provider.requests) == 1
