"""Budgets checked against a conversation and its ancestors, from the ledger's figures."""

from __future__ import annotations

from parleyd.session.budget import reached
from parleyd.session.conversation import Budget, Conversation
from parleyd.session.usage import UsageLedger
from parleyd.store.records import ConversationStarted, TurnStarted, UsageRecorded

ROOT, CHILD = "conv_root", "conv_child"


def _tree() -> tuple[Conversation, Conversation, UsageLedger]:
    root = Conversation(id=ROOT)
    child = Conversation(id=CHILD, parent=ROOT, depth=1, title="Read the README")
    ledger = UsageLedger()
    ledger.adopt(ROOT, None)
    ledger.observe(ConversationStarted(conv=CHILD, parent=ROOT, depth=1))
    return root, child, ledger


def _response(conv: str, cost: float | None) -> UsageRecorded:
    return UsageRecorded(conv=conv, model="m", input_tokens=10, cost=cost)


def test_nothing_is_reached_without_limits() -> None:
    root, child, ledger = _tree()
    ledger.observe(_response(CHILD, 5.0))
    assert reached([child, root], ledger, now=0.0, unpriced_model=None) is None


def test_a_child_spends_its_own_budget() -> None:
    root, child, ledger = _tree()
    child.budget = Budget(responses=2)
    ledger.observe(_response(CHILD, None))
    assert reached([child, root], ledger, now=0.0, unpriced_model=None) is None
    ledger.observe(_response(CHILD, None))
    stop = reached([child, root], ledger, now=0.0, unpriced_model=None)
    assert stop is not None
    assert (stop.owner, stop.limit, stop.allowed, stop.used) == (CHILD, "responses", 2, 2)
    assert stop.message.startswith(
        "Stopped: the budget of 2 model responses for this sub-agent is spent (2 used)."
    )


def test_an_ancestor_budget_counts_its_descendants_and_is_named() -> None:
    root, child, ledger = _tree()
    root.budget = Budget(cost=0.5)
    ledger.observe(_response(ROOT, 0.2))
    ledger.observe(_response(CHILD, 0.3))
    stop = reached([child, root], ledger, now=0.0, unpriced_model=None)
    assert stop is not None and (stop.owner, stop.limit) == (ROOT, "cost")
    assert "$0.5 for the session is spent ($0.5000 used)" in stop.message


def test_a_cost_budget_is_not_kept_on_responses_or_a_model_priced_nowhere() -> None:
    root, child, ledger = _tree()
    root.budget = Budget(cost=0.01)
    assert reached([child, root], ledger, now=0.0, unpriced_model=None) is None
    about_to_call = reached([child, root], ledger, now=0.0, unpriced_model="house-7b")
    assert about_to_call is not None
    assert (about_to_call.owner, about_to_call.limit, about_to_call.used) == (ROOT, "cost", 0.0)
    assert about_to_call.message.startswith(
        "Stopped: the budget of $0.01 for the session cannot be kept: house-7b has no known price."
    )
    ledger.observe(_response(CHILD, None))  # a response of a model priced nowhere was counted
    counted = reached([child, root], ledger, now=0.0, unpriced_model=None)
    assert counted is not None and "some responses had no known price" in counted.message
    root.budget = Budget(responses=5)  # other limits need no prices
    assert reached([child, root], ledger, now=0.0, unpriced_model="house-7b") is None


def test_wall_time_counts_the_running_turn() -> None:
    root, child, ledger = _tree()
    child.budget = Budget(seconds=30)
    ledger.observe(TurnStarted(conv=CHILD, turn="t", ts=100.0))
    assert reached([child, root], ledger, now=120.0, unpriced_model=None) is None
    stop = reached([child, root], ledger, now=131.0, unpriced_model=None)
    assert stop is not None and (stop.limit, stop.used) == ("seconds", 31.0)
