"""Device trust without devices: what is refused before any device is touched."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.backends


def test_a_rollout_with_no_ca_and_a_krl_with_no_list_are_refused_and_change_nothing(
        mdm: Any, inventory: Any) -> None:
    refused = mdm("ca", "rollout", code=2)
    assert "no CA" in refused.stderr and "mdm ca init" in refused.stderr
    refused = mdm("ca", "krl", code=2)
    assert "no revocation list" in refused.stderr
    assert mdm.json("queue", "list") == []


def test_a_helpdesk_operator_may_not_roll_out_trust(mdm: Any, inventory: Any) -> None:
    mdm("operators", "add", "hd.one", "--role", "helpdesk")
    refused = mdm("ca", "krl", code=2, operator="hd.one")
    assert "ca.rollout" in refused.stderr
