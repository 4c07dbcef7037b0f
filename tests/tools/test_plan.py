"""update_plan: the whole plan each call, one step in progress at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from parleyd.tools.base import PlanStep, ToolContext, ToolError
from parleyd.tools.plan import UpdatePlan


async def test_the_plan_is_the_result_and_its_progress_what_the_model_reads(
    tmp_path: Path,
) -> None:
    steps = [
        {"content": "Read the code", "status": "completed", "priority": "high"},
        {"content": "Fix the bug", "status": "in_progress"},
        {"content": "Run the tests", "status": "pending", "priority": "low"},
    ]
    result = await UpdatePlan().run({"steps": steps}, ToolContext(cwd=tmp_path))
    assert result.output == "Plan updated: 1 of 3 steps completed; now: Fix the bug."
    assert result.plan == (
        PlanStep("Read the code", "high", "completed"),
        PlanStep("Fix the bug", "medium", "in_progress"),
        PlanStep("Run the tests", "low", "pending"),
    )


async def test_an_empty_plan_clears_it(tmp_path: Path) -> None:
    result = await UpdatePlan().run({"steps": []}, ToolContext(cwd=tmp_path))
    assert (result.output, result.plan) == ("The plan is cleared.", ())


async def test_two_steps_in_progress_at_once_are_refused(tmp_path: Path) -> None:
    steps = [
        {"content": "Read", "status": "in_progress"},
        {"content": "Fix", "status": "in_progress"},
    ]
    with pytest.raises(ToolError, match=r"^2 steps are in_progress \(Read; Fix\); work on one"):
        await UpdatePlan().run({"steps": steps}, ToolContext(cwd=tmp_path))
    with pytest.raises(ToolError, match="invalid arguments for update_plan"):
        await UpdatePlan().run(
            {"steps": [{"content": "Read", "status": "started"}]}, ToolContext(cwd=tmp_path)
        )
