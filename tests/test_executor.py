"""The executor with fake transports: partial failure, retries, Ctrl-C, concurrency bound."""

from __future__ import annotations

import threading
import time

import pytest

from mdm.fleet.executor import Executor, Step
from mdm.fleet.transport import HostKeyError, StepFailed, Target, Unreachable
from tests.fakes import FakeTransport


def _targets(n: int) -> list[Target]:
    return [Target(f"DEV{i:04d}", "127.0.0.1") for i in range(n)]


def _echo(transport: FakeTransport) -> bytes:
    return transport.run("echo hi").stdout


def test_one_failing_device_never_stops_the_others() -> None:
    opened: list[FakeTransport] = []

    def connect(target: Target) -> FakeTransport:
        if target.name == "DEV0003":
            raise HostKeyError(target.name, "SHA256:a", "SHA256:b")
        fake = FakeTransport(target).expect("echo", (0, b"hi\n", b""))
        opened.append(fake)
        return fake

    def step2(t: FakeTransport) -> None:
        if t.target.name == "DEV0005":
            raise StepFailed(t.target.name, "the device said no")

    run = Executor(connect, concurrency=4, retries=0).run_all(
        _targets(10), [Step("echo", _echo), Step("check", step2)])
    assert sorted(r.target.name for r in run.failed) == ["DEV0003", "DEV0005"]
    assert len(run.succeeded) == 8
    bad = {r.target.name: r for r in run.failed}
    assert bad["DEV0003"].error_kind == "host_key" and bad["DEV0003"].steps == []
    assert [s.ok for s in bad["DEV0005"].steps] == [True, False]
    assert all(t.closed for t in opened)


def test_transient_failures_are_retried_with_backoff_and_counted() -> None:
    calls: dict[str, int] = {}

    def connect(target: Target) -> FakeTransport:
        calls[target.name] = calls.get(target.name, 0) + 1
        if calls[target.name] < 3:
            raise Unreachable(target.name, "banner timeout")
        return FakeTransport(target).expect("echo", (0, b"hi\n", b""))

    run = Executor(connect, retries=2, backoff_base=0.01).run_all(_targets(3), [Step("e", _echo)])
    assert len(run.succeeded) == 3 and all(r.attempts == 3 for r in run.results)
    run = Executor(connect, retries=1, backoff_base=0.01).run_all(
        [Target("NEW0001", "127.0.0.1")], [Step("e", _echo)])
    assert run.failed[0].error_kind == "unreachable" and run.failed[0].attempts == 2


def test_concurrency_is_bounded() -> None:
    live, peak, lock = [0], [0], threading.Lock()

    def slow(t: FakeTransport) -> None:
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.02)
        with lock:
            live[0] -= 1

    Executor(lambda t: FakeTransport(t), concurrency=3).run_all(_targets(20), [Step("s", slow)])
    assert peak[0] == 3


def test_ctrl_c_stops_new_work_closes_connections_and_leaves_no_thread() -> None:
    opened: list[FakeTransport] = []
    lock = threading.Lock()

    def connect(target: Target) -> FakeTransport:
        fake = FakeTransport(target)
        with lock:
            opened.append(fake)
        return fake

    def nap(t: FakeTransport) -> None:
        time.sleep(0.05)

    before = threading.active_count()
    seen = []
    gen = Executor(connect, concurrency=4).run(_targets(200), [Step("a", nap), Step("b", nap)])
    with pytest.raises(KeyboardInterrupt):
        for result in gen:
            seen.append(result)
            if len(seen) == 3:
                raise KeyboardInterrupt
    gen.close()
    assert len(opened) < 200  # queued devices were never started
    assert all(t.closed for t in opened)
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_each_station_is_a_lane_a_busy_one_holds_up_no_other() -> None:
    released = threading.Event()

    def connect(target: Target) -> FakeTransport:
        if target.via == "slow-bench" and not released.wait(10):
            raise StepFailed(target.name, "held up: the other lanes never ran meanwhile")
        return FakeTransport(target).expect("echo", (0, b"hi\n", b""))

    targets = [Target("SLOW1", "", 0, via="slow-bench"), Target("SLOW2", "", 0, via="slow-bench"),
               Target("FAST1", "", 0, via="annex"), Target("NET1", "127.0.0.1")]
    finished = []
    for result in Executor(connect, concurrency=1, retries=0).run(targets, [Step("e", _echo)]):
        assert result.ok, result.error
        finished.append(result.target.name)
        if {"FAST1", "NET1"} <= set(finished):
            released.set()  # the busy station's devices may go on once the others are done
    assert sorted(finished[:2]) == ["FAST1", "NET1"]
    assert sorted(finished[2:]) == ["SLOW1", "SLOW2"]
