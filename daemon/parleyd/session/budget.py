"""Budgets: how much a conversation may spend (cost, model responses, wall
time), checked before every model call against the conversation and each of
its ancestors, whose totals include it.

A conversation that reaches a budget stops with a message naming it; a
child's parent reads that message as the child's result. The client raises a
budget with `_parley/session/setBudget` and goes on.

A cost budget is kept only where every response has a price: a model Parley
knows no price of (about to be called, or among the responses counted) stops
the turn as a spent budget does, saying so, rather than spend on uncounted.
"""

from __future__ import annotations

from typing import Literal

from parleyd.session.conversation import Conversation
from parleyd.session.usage import UsageLedger
from parleyd.store.records import BudgetReached

Limit = Literal["cost", "responses", "seconds"]


def reached(
    lineage: list[Conversation], ledger: UsageLedger, now: float, *, unpriced_model: str | None
) -> BudgetReached | None:
    """The first budget of the conversation or an ancestor that is spent, if
    any; `unpriced_model` is the model about to be called, if it has no price."""
    for conversation in lineage:
        budget = conversation.budget
        usage = ledger.of(conversation.id)
        if budget.cost is not None and (unpriced_model or not usage.total.priced):
            used = usage.total.cost or 0.0
            return BudgetReached(
                owner=conversation.id,
                limit="cost",
                allowed=budget.cost,
                used=round(used, 6),
                message=_unkept(conversation, lineage[0], budget.cost, unpriced_model),
            )
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


def _unkept(owner: Conversation, stopped: Conversation, allowed: float, model: str | None) -> str:
    unknown = f"{model} has no known price" if model else "some responses had no known price"
    return (
        f"Stopped: the budget of ${allowed:g} for {_whose(owner, stopped)} cannot be kept: "
        f"{unknown}. Give its price under [prices] in config.toml, or lift the cost budget "
        "with _parley/session/setBudget, to go on."
    )


def _whose(owner: Conversation, stopped: Conversation) -> str:
    if owner.is_root:
        return "the session"
    return "this sub-agent" if owner is stopped else f"the sub-agent {owner.title or owner.id}"


def _message(
    owner: Conversation, stopped: Conversation, limit: Limit, allowed: float, used: float
) -> str:
    amounts = {
        "responses": (f"{allowed:g} model response{'' if allowed == 1 else 's'}", f"{used:g}"),
        "cost": (f"${allowed:g}", f"${used:.4f}"),
        "seconds": (f"{allowed:g} s of wall time", f"{used:.1f} s"),
    }
    budget, spent = amounts[limit]
    return (
        f"Stopped: the budget of {budget} for {_whose(owner, stopped)} is spent ({spent} used). "
        "Raise it with _parley/session/setBudget to go on."
    )
