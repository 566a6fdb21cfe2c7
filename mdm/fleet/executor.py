"""Run a playbook (a list of steps) on many devices at once, and hand back every result.

One connection per device for all its steps; bounded concurrency, per route (directly,
and through each provisioning station: one lane each); transient failures
(refused connections, banner time-outs under load) retried with full-jitter backoff;
one failing device never stops the others. Results are yielded to the caller's thread as
each device finishes, so the feature records them from one thread, in batches.

Ctrl-C: no new device is started, devices in flight stop after their current step
(every step has a deadline), every connection is closed, and what finished has already
been handed back.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from mdm.fleet.transport import FleetError, Target

DEFAULT_CONCURRENCY = 16


class Connection(Protocol):
    """What the executor holds per device: a transport, or a driver built on one."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Step:
    """One named operation: a function of the open connection that returns a value."""

    name: str
    run: Callable[[Any], Any]


@dataclass
class StepResult:
    name: str
    ok: bool
    value: Any = None
    error: str = ""
    seconds: float = 0.0


@dataclass
class DeviceResult:
    target: Target
    steps: list[StepResult] = field(default_factory=list)
    error: str = ""
    error_kind: str = ""
    attempts: int = 0
    seconds: float = 0.0
    exception: FleetError | None = None

    @property
    def ok(self) -> bool:
        return not self.error and all(s.ok for s in self.steps)

    def value(self, step: str) -> Any:
        """Return what a step returned."""
        return next(s.value for s in self.steps if s.name == step)


@dataclass
class RunResult:
    """Every device's result of one run, and the devices a stopped run never started."""

    results: list[DeviceResult] = field(default_factory=list)
    not_attempted: list[Target] = field(default_factory=list)

    @property
    def succeeded(self) -> list[DeviceResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[DeviceResult]:
        return [r for r in self.results if not r.ok]


class Cancelled(FleetError):
    kind = "cancelled"


@dataclass
class Executor:
    connect: Callable[[Target], Connection]
    concurrency: int = DEFAULT_CONCURRENCY
    retries: int = 2
    backoff_base: float = 0.2
    backoff_cap: float = 3.0
    _cancel: threading.Event = field(default_factory=threading.Event)

    def _open(self, target: Target) -> tuple[Connection, int]:
        attempt = 0
        while True:
            attempt += 1
            if self._cancel.is_set():
                raise Cancelled(target.name, "cancelled before it started")
            try:
                return self.connect(target), attempt
            except FleetError as exc:
                if not exc.transient or attempt > self.retries:
                    exc.attempts = attempt  # type: ignore[attr-defined]
                    raise
            # full jitter: spread retries so a busy device isn't hit in lock-step
            delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** attempt))
            if self._cancel.wait(delay):
                raise Cancelled(target.name, "cancelled while waiting to retry")

    def _one(self, target: Target, steps: Sequence[Step]) -> DeviceResult:
        result = DeviceResult(target)
        started = time.monotonic()
        transport: Connection | None = None
        try:
            transport, result.attempts = self._open(target)
            for step in steps:
                if self._cancel.is_set():
                    raise Cancelled(target.name, f"cancelled before {step.name}")
                t0 = time.monotonic()
                try:
                    value = step.run(transport)
                except FleetError as exc:
                    result.steps.append(StepResult(step.name, False, error=exc.message,
                                                   seconds=time.monotonic() - t0))
                    raise
                result.steps.append(StepResult(step.name, True, value,
                                               seconds=time.monotonic() - t0))
        except FleetError as exc:
            result.error, result.error_kind, result.exception = exc.message, exc.kind, exc
            result.attempts = result.attempts or getattr(exc, "attempts", 1)
        finally:
            if transport is not None:
                transport.close()
            result.seconds = time.monotonic() - started
        return result

    def cancel(self) -> None:
        """Start no more devices; devices in flight stop after their current step."""
        self._cancel.set()

    def run(self, targets: Sequence[Target], steps: Sequence[Step]) -> Iterator[DeviceResult]:
        """Yield one DeviceResult per target as each finishes (in completion order).

        Devices are worked on in lanes: those reached directly in one, those reached
        through each provisioning station (`Target.via`) in one per station, each lane
        with up to `concurrency` workers of its own. So a slow station never holds up
        another or the direct devices, and a station's devices keep its one connection
        busy (the station itself caps how many of them run a command at once).

        On Ctrl-C: no new device starts, devices in flight finish their current step and
        their results are still yielded, then KeyboardInterrupt is raised. A second
        Ctrl-C stops at once.
        """
        self._cancel.clear()
        size = max(1, self.concurrency)
        waiting: dict[str | None, deque[Target]] = {}
        for target in targets:
            waiting.setdefault(target.via, deque()).append(target)
        pools = {lane: ThreadPoolExecutor(max_workers=min(size, len(queue)),
                                          thread_name_prefix=f"mdm-fleet-{lane or 'direct'}")
                 for lane, queue in waiting.items()}
        submitted = dict.fromkeys(waiting, 0)
        lane_of: dict[Future[DeviceResult], str | None] = {}
        pending: set[Future[DeviceResult]] = set()
        interrupted = False

        def fill() -> None:
            for lane, queue in waiting.items():  # keep each lane's pool fed, twice over
                while queue and submitted[lane] < size * 2:
                    future = pools[lane].submit(self._one, queue.popleft(), steps)
                    lane_of[future] = lane
                    submitted[lane] += 1
                    pending.add(future)

        try:
            fill()
            while pending:
                try:
                    done, still = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    if interrupted:
                        raise
                    interrupted = True
                    self.cancel()
                    for future in pending:
                        future.cancel()  # only those not yet started
                    pending = {f for f in pending if not f.cancelled()}
                    continue
                pending = set(still)
                for future in done:
                    submitted[lane_of.pop(future)] -= 1
                    if not future.cancelled():
                        yield future.result()
                if not interrupted:
                    fill()
        except BaseException:
            self.cancel()
            raise
        finally:
            for future in pending:
                future.cancel()
            for pool in pools.values():
                pool.shutdown(wait=True, cancel_futures=True)
        if interrupted:
            raise KeyboardInterrupt

    def run_all(self, targets: Sequence[Target], steps: Sequence[Step]) -> RunResult:
        """Run and collect every result."""
        return RunResult(list(self.run(targets, steps)))
