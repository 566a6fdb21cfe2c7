"""The funnel's GROUP BY streams from rollout_progress's index on SQLite (no sort)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdm.rollout import membership
from mdm.rollout.plan import load
from mdm.store import connect
from mdm.store import rollout as store

PLAN = Path(__file__).resolve().parent.parent / "playbooks" / "rollout.yaml"


@pytest.mark.parametrize("by", [None, "area", "station"])
def test_the_shipped_plans_funnel_is_grouped_from_the_index_without_a_sort(
        tmp_path: Path, by: str | None) -> None:
    db = connect(tmp_path / "mdm.db")
    placement = membership.Placement(db, load(PLAN))
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    store.funnel_counts(db, placement.keys, placement.picks(), by)
    db.conn.set_trace_callback(None)
    grouped = [s for s in statements if "GROUP BY" in s]
    assert grouped
    everyone = grouped[0]  # the people not hand-picked: nearly everyone
    plan = [r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + everyone)]
    assert any("COVERING INDEX rollout_progress_funnel" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_the_gates_kinds_are_counted_from_the_index_ranges_without_a_sort(
        tmp_path: Path) -> None:
    """The north wave's compliance share: its kinds read as ranges of m019's gate index,
    grouped as they are read; people in groups found by officer id, not by a pass."""
    from mdm.store import judgements

    db = connect(tmp_path / "mdm.db")
    placement = membership.Placement(db, load(PLAN))
    assert list(placement.keys) == ["area", "worker_type"]
    kinds = [("NORTH", "OFFICER"), ("NORTH", "PCSO"), ("NORTH", "SPECIAL")]
    where = store.scope(placement.keys, placement.pick(), kinds, [])
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    judgements.grouped(db, placement.keys, placement.pick(), where, [], "2015-05-01T00:00:00Z")
    db.conn.set_trace_callback(None)
    kinds_pass, others = [s for s in statements if "GROUP BY" in s]
    plan = [r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + kinds_pass)]
    assert any("COVERING INDEX rollout_progress_gate (enrolled=? AND eligible=? AND area=?"
               in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    plan = [r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + others)]
    assert not any("rollout_progress_gate" in step or step.startswith("SCAN p")
                   for step in plan), plan
