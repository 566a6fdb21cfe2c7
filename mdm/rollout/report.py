"""The rollout manager's report: one self-contained HTML page, from `rollout status`.

The page holds everything inline (styles, and charts as SVG without scripts), so it opens
from an email attachment with no network. Its numbers are the `rollout status` result
itself, rendered by a template engine that escapes every value from the roster or the
feedback; charts are drawn by pygal. Both are imported only when a report is made, so
the CLI's start-up does not pay for them.
"""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

from mdm import safefile
from mdm.rollout import feedback
from mdm.rollout import status as funnel
from mdm.rollout.plan import load
from mdm.store.db import Database
from mdm.timeutil import now

TEMPLATE = "report.html.j2"
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S)


def _burn_up_svg(series: dict[str, Any]) -> str:
    """Draw one wave's handovers against its plan as an inline SVG (no scripts)."""
    import pygal
    from pygal.style import Style

    _drop_pygal_import_hook()

    style = Style(background="white", plot_background="white", font_family="sans-serif",
                  colors=("#9aa5b1", "#1f5fa8"))
    chart = pygal.DateLine(js=[], disable_xml_declaration=True, width=640, height=260,
                           style=style, show_dots=True, dots_size=2, x_label_rotation=20,
                           legend_at_bottom=True, title=f"{series['wave']}: handovers",
                           x_value_formatter=lambda d: d.isoformat(), include_x_axis=True)
    chart.add("planned", [(date.fromisoformat(p["date"]), p["handed_over"])
                          for p in series["planned"]], stroke_style={"dasharray": "6,4"})
    chart.add("handed over", [(date.fromisoformat(p["date"]), p["handed_over"])
                              for p in series["actual"]])
    # pygal adds an inline script holding its tooltip settings even with no script to read
    # them: take it out, so the page carries no script at all.
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def _drop_pygal_import_hook() -> None:
    """Take out the import hook pygal adds to sys.meta_path for its map plugins.

    mdm draws no maps, and the hook is of the old kind (find_module): once installed, every
    later import it is asked about raises an ImportWarning, in this process for good.
    """
    sys.meta_path[:] = [f for f in sys.meta_path
                        if type(f).__module__ != "pygal" or type(f).__name__ != "PluginImportFixer"]


def build(db: Database, path: Path, folder: Path) -> str:
    """Render the report page from the status of every wave, open blockers and benefit."""
    import jinja2

    result = funnel.status(db, load(path), folder)
    env = jinja2.Environment(loader=jinja2.PackageLoader("mdm.rollout", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    charts = {s["wave"]: _burn_up_svg(s) for s in result["burn_up"]}
    blockers = list(feedback.iter_items(db, open_only=True, severity="blocker"))
    return env.get_template(TEMPLATE).render(
        status=result, stages=funnel.STAGES, charts=charts, blockers=blockers,
        benefit=feedback.benefit(db), generated=now()[:16].replace("T", " ") + " UTC")


def write(db: Database, path: Path, folder: Path, output: Path, force: bool) -> dict[str, Any]:
    """Write the report to a new file (or replace it with `force`)."""
    safefile.check_target(output, force)
    page = build(db, path, folder)
    safefile.write(output, page.encode("utf-8"), force)
    return {"output": str(output), "bytes": len(page.encode("utf-8"))}
