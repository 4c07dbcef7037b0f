"""`subagent`: hand a task to a child conversation and read back its answer.

The child has its own history, starts from the task alone, may be given a role
and a subset of its parent's tools, and runs to its end before the call
returns. Several calls in one response run side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from .base import ChildTask, ToolContext, ToolError, ToolKind, ToolResult
from .builtin import WorkspaceTool
from .paths import Workspace

NAME = "subagent"
_TITLE_CHARS = 60


class SubagentBudget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    cost: Annotated[float, msgspec.Meta(gt=0)] | None = None
    """At most this many US dollars, its own sub-agents included."""
    responses: Annotated[int, msgspec.Meta(gt=0)] | None = None
    """At most this many model responses, its own sub-agents included."""
    seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None
    """At most this much wall time."""


class SubagentArguments(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    task: str
    """Everything the sub-agent needs to know: it sees nothing of this conversation."""
    title: str | None = None
    """A few words naming the task, shown to the user."""
    role: str | None = None
    """Who the sub-agent is (added to its system prompt), e.g. "a careful reviewer"."""
    tools: list[str] | None = None
    """The names of the tools it may use; all of yours when omitted."""
    budget: SubagentBudget | None = None
    """How much it may spend; it stops, saying so, when that is spent."""


def _title(args: SubagentArguments) -> str:
    if args.title and args.title.strip():
        return args.title.strip()
    first_line = args.task.strip().splitlines()[0] if args.task.strip() else "task"
    return first_line if len(first_line) <= _TITLE_CHARS else first_line[: _TITLE_CHARS - 1] + "…"


class Subagent(WorkspaceTool[SubagentArguments]):
    name = NAME
    description = (
        "Delegate a self-contained task to a sub-agent: a fresh conversation with its own "
        "history that works until it is done and returns its final answer to you. Give it "
        "everything it needs in `task`. Call it several times in one response to run "
        "independent tasks in parallel."
    )
    kind: ToolKind = "think"
    # The child asks for each of its own calls that needs it.
    needs_permission = False
    arguments_type = SubagentArguments

    def title(self, arguments: Mapping[str, Any]) -> str:
        return f"Sub-agent: {_title(msgspec.convert(dict(arguments), SubagentArguments))}"

    async def execute(
        self, args: SubagentArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        if not args.task.strip():
            raise ToolError("subagent needs a non-empty `task`")
        if context.children is None:
            raise ToolError("sub-agents cannot be started here: the nesting limit is reached")
        budget = args.budget or SubagentBudget()
        task = ChildTask(
            task=args.task,
            title=_title(args),
            role=args.role,
            tools=None if args.tools is None else tuple(args.tools),
            cost=budget.cost,
            responses=budget.responses,
            seconds=budget.seconds,
        )
        return await context.children.run_child(task)
