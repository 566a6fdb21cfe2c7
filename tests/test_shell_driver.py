"""The shell driver's reading of a push script's answer, with a scripted transport.

The lab tests run the real script; these pin down what mdm does with each verdict the
script can give, including the gate's second exec, without any sshd.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from mdm.driver import PolicyNotApplied
from mdm.driver.shell import ShellDriver
from mdm.fleet.profiles import load
from mdm.fleet.transport import MalformedOutput, Target
from tests.fakes import FakeTransport

POLICY = b'{"name": "base"}'
SHA = hashlib.sha256(POLICY).hexdigest()


def _driver() -> tuple[ShellDriver, FakeTransport]:
    fake = FakeTransport(Target("R58F4TEST01", "10.0.0.1"))
    return ShellDriver(fake, load("android")), fake


def _answer(driver: ShellDriver, *sections: str) -> bytes:
    return (driver.profile.boundary + "\n").join(sections).encode()


def test_a_status_the_gate_holds_but_mdm_accepts_is_written_in_a_second_exec() -> None:
    driver, fake = _driver()
    # Sound JSON, but not plain ASCII: the gate doubts it, mdm's parse accepts it.
    odd = json.dumps({"state": "ERROR", "error": "mémoire pleine"}, ensure_ascii=False)
    applied = json.dumps({"state": "APPLIED", "policySha256": SHA})

    def reply(command: str, stdin: bytes | None) -> tuple[int, bytes, bytes]:
        if "echo held" in command:
            return 0, _answer(driver, odd, "", "held\n"), b""
        assert stdin == POLICY
        return 0, _answer(driver, odd, "", "applied 0\n", applied, f"{SHA}  x\n"), b""

    fake.expect(r"mdm-dpc", reply)
    result = driver.apply_policy(POLICY, SHA)
    assert (result.changed, result.file, len(fake.commands)) == (True, SHA, 2)


def test_a_held_status_mdm_refuses_fails_the_device_and_nothing_is_written() -> None:
    driver, fake = _driver()
    fake.expect(r"mdm-dpc", (0, _answer(driver, "[1]", "", "held\n"), b""))
    with pytest.raises(MalformedOutput, match="a list, not an object"):
        driver.apply_policy(POLICY, SHA)
    assert len(fake.commands) == 1


def test_a_device_already_running_the_policy_is_left_alone_in_one_exec() -> None:
    driver, fake = _driver()
    running = json.dumps({"state": "APPLIED", "policySha256": SHA})
    fake.expect(r"mdm-dpc", (0, _answer(driver, running, f"{SHA}  p\n", "unchanged\n"), b""))
    result = driver.apply_policy(POLICY, SHA)
    assert (result.changed, len(fake.commands)) == (False, 1)


def test_a_dpc_that_reports_another_policy_is_named_with_its_words() -> None:
    driver, fake = _driver()
    other = json.dumps({"state": "APPLIED", "policySha256": "0" * 64})
    fake.expect(r"mdm-dpc", (0, _answer(driver, "", "", "applied 1\n", other, ""),
                             b"dpc: no space left\n"))
    with pytest.raises(PolicyNotApplied, match="apply exit 1: dpc: no space left"):
        driver.apply_policy(POLICY, SHA)


def test_an_upload_that_fails_or_arrives_damaged_names_that_step() -> None:
    from mdm.fleet.transport import StepFailed, TransferCorrupt

    driver, fake = _driver()
    fake.expect(r"mdm-dpc", (4, b"", b"mkdir: Read-only file system\n"))
    with pytest.raises(StepFailed, match="upload to .* failed: mkdir: Read-only"):
        driver.apply_policy(POLICY, SHA)
    driver, fake = _driver()
    fake.expect(r"mdm-dpc", (3, b"", b"ab" * 32 + b"\n"))
    with pytest.raises(TransferCorrupt, match="discarded"):
        driver.apply_policy(POLICY, SHA)


def test_installed_packages_are_parsed_against_the_schema() -> None:
    driver, fake = _driver()
    fake.expect(r"^pm list packages", (0, b"package:uk.police.mdm.dpc versionCode:300\n"
                                          b"package:com.android.chrome versionCode:272019\n",
                                       b""))
    assert driver.installed_packages() == {"uk.police.mdm.dpc": 300,
                                           "com.android.chrome": 272019}
    driver, fake = _driver()
    fake.expect(r"^pm list packages", (0, b"package:x; rm -rf / versionCode:1\n", b""))
    with pytest.raises(MalformedOutput, match="packages refused"):
        driver.installed_packages()


def test_a_timeout_names_the_step_in_words_not_the_device_command() -> None:
    from mdm.fleet.transport import CommandTimeout
    from mdm.runs.record import HINTS

    def hangs(command: str, stdin: bytes | None) -> tuple[int, bytes, bytes]:
        # as the SSH transport says it: the command it ran, quoted
        raise CommandTimeout("R58F4TEST01", f"{command[:60]!r} did not finish within 60 s",
                             60)

    for run, what in ((lambda d: d.facts(), "reading facts"),
                      (lambda d: d.apply_policy(POLICY, SHA), "pushing the policy")):
        driver, fake = _driver()
        fake.expect(r".", hangs)
        with pytest.raises(CommandTimeout) as caught:
            run(driver)
        assert caught.value.message == f"{what} timed out after 60 s"
        assert caught.value.seconds == 60 and caught.value.kind == "timeout"
    assert "run the command again" in HINTS["timeout"]
