"""Regenerate the README demo's example inputs (seeded: the same files every time).

    python inventory/examples/generate.py
"""

from pathlib import Path

from mdm import examples

HERE = Path(__file__).parent


def main() -> None:
    roster = examples.generate_roster(1480)
    examples.write_csv(HERE / "roster.csv", roster, examples.ROSTER_COLUMNS)
    delivery = examples.generate_manifest(60)
    examples.write_csv(HERE / "manifest-PO-2015-00417.csv", delivery, examples.MANIFEST_COLUMNS)
    pairs = [{"serial_number": d["serial_number"], "officer_id": o["officer_id"]}
             for d, o in zip(delivery, examples.pilot(roster, 55), strict=False)]
    examples.write_csv(HERE / "pilot-allocation.csv", pairs, ["serial_number", "officer_id"])


if __name__ == "__main__":
    main()
