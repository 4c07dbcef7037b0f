"""update_plan: the model's todo list for the task at hand, shown to the user.

The model sends its whole plan each time (the steps, each pending, in progress
or completed), and the client shows it as ACP's `plan` update, which replaces
the plan it had. The call's record keeps the plan, so a replay shows it where
it changed, and the model reads it back in its own history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from .base import PlanPriority, PlanStatus, PlanStep, ToolContext, ToolError, ToolKind, ToolResult
from .builtin import WorkspaceTool
from .paths import Workspace


class Step(msgspec.Struct, forbid_unknown_fields=True):
    content: Annotated[str, Meta(min_length=1, description="What the step does, in a line")]
    status: PlanStatus
    priority: PlanPriority = "medium"


class UpdatePlanArguments(msgspec.Struct, forbid_unknown_fields=True):
    steps: Annotated[
        list[Step],
        Meta(description="The whole plan, in order; an empty list clears it", max_length=50),
    ]


class UpdatePlan(WorkspaceTool[UpdatePlanArguments]):
    name = "update_plan"
    description = (
        "Keep a plan for a task of several steps, shown to the user: send the whole "
        "list each time, marking a step in_progress before you work on it (one at a "
        "time) and completed once it is done. Skip it for a task of one or two steps."
    )
    arguments_type = UpdatePlanArguments
    kind: ToolKind = "think"
    needs_permission = False

    def title(self, arguments: Mapping[str, Any]) -> str:
        return "Update the plan"

    async def execute(
        self, args: UpdatePlanArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        working = [step.content for step in args.steps if step.status == "in_progress"]
        if len(working) > 1:
            raise ToolError(
                f"{len(working)} steps are in_progress ({'; '.join(working)}); "
                "work on one step at a time and mark only that one in_progress"
            )
        plan = tuple(PlanStep(step.content, step.priority, step.status) for step in args.steps)
        if not plan:
            return ToolResult("The plan is cleared.", plan=plan)
        done = sum(step.status == "completed" for step in plan)
        said = f"Plan updated: {done} of {len(plan)} steps completed"
        return ToolResult(f"{said}; now: {working[0]}." if working else f"{said}.", plan=plan)
