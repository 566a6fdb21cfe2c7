"""Device selectors: which devices a fleet command acts on.

A selector is `all`, a serial, or `key=value` terms joined by commas (all must match),
e.g. `status=enrolled,station=Kendal`. Several selectors on one command line are OR-ed.
Keys about the holder (station, area, team, worker_type, rank, officer) match the
officer who holds the device now.
"""

from __future__ import annotations

from mdm.errors import InputError

_DEVICE_KEYS = {"serial": "d.serial", "status": "d.status", "model": "d.model",
                "order": "d.order_number", "manufacturer": "d.manufacturer"}
_HOLDER_KEYS = {"station": "o.station", "area": "o.area", "team": "o.team",
                "worker_type": "o.worker_type", "rank": "o.rank", "officer": "o.officer_id",
                "district": "o.district"}

FROM = ("FROM devices d LEFT JOIN assignments a ON a.device_id = d.id AND a.closed_at IS NULL"
        " LEFT JOIN officers o ON o.officer_id = a.officer_id")


def to_sql(selectors: list[str]) -> tuple[str, list[str]]:
    """Return a WHERE clause (without WHERE) and its arguments for the selectors."""
    if not selectors or any(s.strip().lower() == "all" for s in selectors):
        return "1", []
    alternatives, args = [], []
    for selector in selectors:
        terms = []
        for term in selector.split(","):
            term = term.strip()
            if "=" not in term:
                terms.append("d.serial = ?")
                args.append(term)
                continue
            key, value = (p.strip() for p in term.split("=", 1))
            column = _DEVICE_KEYS.get(key) or _HOLDER_KEYS.get(key)
            if column is None or not value:
                keys = ", ".join(sorted({*_DEVICE_KEYS, *_HOLDER_KEYS}))
                raise InputError(f"selector term {term!r} is not understood",
                                 f"use all, a serial, or key=value with key one of: {keys}")
            terms.append(f"{column} = ? COLLATE NOCASE")
            args.append(value)
        alternatives.append("(" + " AND ".join(terms) + ")")
    return " OR ".join(alternatives), args
