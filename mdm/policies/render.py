"""How the fleet-wide policy views print: a summary for a person, every device for a program.

At force scale a plan or a report covers tens of thousands of devices, and nobody reads
50,000 table rows on a terminal (drawing them took longer than the work itself). So on
a terminal `policy diff`, `policy push --check` and `compliance report` print what a
person acts on: each distinct change once, with its device count and a few example
serials; counts per reason and per station. Every device is listed when asked (`--all`, a
table), when stdout is a pipe or a file (tab-separated lines), or in the format asked for
(`--format tsv|csv|json`); `--json` is always the whole result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mdm import csvio, ui
from mdm.errors import InputError

FORMATS = ("tsv", "csv", "json")
PLAN_COLUMNS = ["serial", "holder", "from", "to", "change"]
EVERY_DEVICE_HINT = "every device: --all, --format tsv|csv|json, or pipe the output"


def list_format(fmt: str | None) -> str | None:
    """Validate --format for a device list (any case)."""
    if fmt is None:
        return None
    if fmt.lower() not in FORMATS:
        raise InputError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}",
                         "use tsv (tab-separated), csv (for a spreadsheet) or json")
    return fmt.lower()


def format_of(output: Path | None) -> str | None:
    """Return the list format a file's name implies (`report.csv` → csv), if any."""
    suffix = output.suffix.lower().lstrip(".") if output else ""
    return suffix if suffix in FORMATS else None


def on_terminal(fmt: str | None, output: Path | None = None) -> bool:
    """Say whether to draw for a person: stdout is a terminal and no format or file given."""
    return fmt is None and output is None and ui.stdout_is_terminal()


def device_list(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str | None,
                whole: object = None) -> str:
    """Return every device as TSV (the default), CSV or JSON (`whole`, else the rows)."""
    if fmt == "json":
        return ui.json_rows_text(whole if whole is not None else list(rows)) + "\n"
    if fmt == "csv":
        return csvio.write_csv(rows, list(columns))
    return ui.tsv_text(rows, columns)


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "none"


def _count(n: int) -> str:
    return f"{n:,}"


def _examples(serials: list[str], count: int) -> str:
    more = count - len(serials)
    return ", ".join(serials) + (f" and {more:,} more" if more > 0 else "")


def _layers(name: str | None) -> str:
    """The layers that apply, from the policy name `enterprises/…/policies/base.pcso`."""
    return ", ".join((name or "").rsplit("/", 1)[-1].split("."))


def changes(result: Mapping[str, Any]) -> None:
    """Print a diff: each distinct change once, its fields, device count and examples."""
    for change in result["changes"]:
        versions = (f"{_short(change['from'])} → {_short(change['to'])}"
                    f" (layers: {_layers(change['policy'])})")
        lines = [] if result["device"] else [
            f"  e.g. {_examples(change['examples'], change['devices'])}"]
        if not change["from_known"]:
            lines.append(f"  version {_short(change['from'])} is not in this inventory:"
                         " every field of the new policy is shown")
        ui.heading(f"device {result['device']}: {versions}" if result["device"] else
                   f"{change['devices']:,} device(s): {versions}", *lines)
        ui.table(change["fields"], ["field", "from", "to"])
    if result["device"]:
        if not result["changes"]:
            ui.success(f"device {result['device']} already runs its policy: no change")
        return
    if not result["changes"]:
        ui.success(f"no device would change ({result['selected']:,} checked)")
        return
    ui.info(f"{result['would_change']:,} of {result['selected']:,} device(s) would change,"
            f" in {len(result['changes']):,} distinct change(s); one device's change:"
            " mdm policy diff --device SERIAL")


def plan(result: Mapping[str, Any]) -> None:
    """Print a push plan as a summary: each distinct change with its device count."""
    rows = [{"devices": _count(c["devices"]),
             "change": f"{_short(c['from'])} → {_short(c['to'])}",
             "layers": _layers(c["policy"]),
             "examples": _examples(c["examples"][:3], c["devices"])}
            for c in result["changes"]]
    ui.table(rows, ["devices", "change", "layers", "examples"],
             f"Plan: {result['would_change']:,} of {result['selected']:,} device(s) would"
             f" change; {result['selected'] - result['would_change']:,} already run their"
             " policy")
    ui.info(EVERY_DEVICE_HINT)


def plan_devices(result: Mapping[str, Any]) -> None:
    """Print every device of a push plan as a table (versions shortened to 12 characters)."""
    ui.table([{**d, "from": _short(d["from"]), "to": _short(d["to"])}
              for d in result["devices"]], PLAN_COLUMNS,
             f"Plan: {result['would_change']:,} of {result['selected']:,} device(s) would"
             " change")


def compliance_devices(result: Mapping[str, Any]) -> None:
    """Print every device of a compliance report as a table, with every reason."""
    rows = [{**r, "reasons": "; ".join(x["detail"] for x in r["reasons"]) or "ok"}
            for r in result["devices"]]
    ui.table(rows, ["serial", "status", "holder", "station", "reasons"],
             f"Compliance: {result['compliant']:,} of {result['total']:,} compliant")


def compliance(result: Mapping[str, Any]) -> None:
    """Print a compliance report as a summary: counts per reason, station, area and group."""
    summary = result["summary"]
    reasons = sorted(summary["reason"].items(), key=lambda kv: (-kv[1]["devices"], kv[0]))
    ui.table([{"reason": code, "devices": _count(r["devices"]),
               "examples": _examples(r["examples"][:3], r["devices"])} for code, r in reasons],
             ["reason", "devices", "examples"],
             f"Compliance: {result['compliant']:,} of {result['total']:,} compliant")
    for by in ("station", "area", "group"):
        if summary[by]:
            ui.table([{by: k, **{n: _count(v) for n, v in counts.items()}}
                      for k, counts in sorted(summary[by].items())],
                     [by, "total", "compliant", "non_compliant"], f"By {by}")
    ui.info(EVERY_DEVICE_HINT)
