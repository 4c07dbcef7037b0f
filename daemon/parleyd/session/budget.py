"""Budgets: how much a conversation may spend (cost, model responses, wall
time), checked before every model call against the conversation and each of
its ancestors, whose totals include it.

A conversation that reaches a budget stops with a message naming it; a
child's parent reads that message as the child's result. The client raises a
budget with `_parley/session/setBudget` and goes on.
"""

from __future__ import annotations

from typing import Literal

from parleyd.session.conversation import Conversation
from parleyd.session.usage import UsageLedger
from parleyd.store.records import BudgetReached

Limit = Literal["cost", "responses", "seconds"]


def reached(lineage: list[Conversation], ledger: UsageLedger, now: float) -> BudgetReached | None:
    """The first budget of the conversation or an ancestor that is spent, if any."""
    for conversation in lineage:
        budget = conversation.budget
        usage = ledger.of(conversation.id)
        spent: list[tuple[Limit, float | None, float]] = [
            ("responses", budget.responses, usage.total.responses),
            ("cost", budget.cost, usage.total.cost or 0.0),
            ("seconds", budget.seconds, ledger.seconds_in_turns(conversation.id, now)),
        ]
        for limit, allowed, used in spent:
            if allowed is not None and used >= allowed:
                return BudgetReached(
                    owner=conversation.id,
                    limit=limit,
                    allowed=allowed,
                    used=round(used, 6),
                    message=_message(conversation, lineage[0], limit, allowed, used),
                )
    return None


def _message(
    owner: Conversation, stopped: Conversation, limit: Limit, allowed: float, used: float
) -> str:
    amounts = {
        "responses": (f"{allowed:g} model response{'' if allowed == 1 else 's'}", f"{used:g}"),
        "cost": (f"${allowed:g}", f"${used:.4f}"),
        "seconds": (f"{allowed:g} s of wall time", f"{used:.1f} s"),
    }
    budget, spent = amounts[limit]
    whose = (
        "the session"
        if owner.is_root
        else "this sub-agent"
        if owner is stopped
        else f"the sub-agent {owner.title or owner.id}"
    )
    return (
        f"Stopped: the budget of {budget} for {whose} is spent ({spent} used). "
        "Raise it with _parley/session/setBudget to go on."
    )
