"""Seeded, reproducible example data: a Cumbria-sized roster and supplier manifests.

Used by `inventory/examples/generate.py` (the README demo's inputs), by the benchmark
(a 45,000-person roster, 50,000 devices) and by the lab, which needs a manifest that
matches its devices. Names and numbers are synthetic.
"""

from __future__ import annotations

import csv
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdm.enrol.identity import luhn_check_digit

AREAS = {
    "NORTH": [("Carlisle", "Carlisle"), ("Eden", "Penrith"), ("Carlisle", "Brampton"),
              ("Eden", "Appleby")],
    "WEST": [("Allerdale", "Workington"), ("Copeland", "Whitehaven"), ("Allerdale", "Maryport"),
             ("Allerdale", "Cockermouth"), ("Allerdale", "Keswick")],
    "SOUTH": [("Barrow-in-Furness", "Barrow"), ("South Lakeland", "Kendal"),
              ("South Lakeland", "Ulverston"), ("South Lakeland", "Windermere"),
              ("Copeland", "Millom")],
    "HQ": [("Eden", "Carleton Hall")],
}
AREA_WEIGHTS = {"NORTH": 35, "WEST": 30, "SOUTH": 30, "HQ": 5}
RANK_MIX = [("CONSTABLE", 760), ("SERGEANT", 150), ("INSPECTOR", 50), ("CHIEF_INSPECTOR", 15),
            ("SUPERINTENDENT", 7), ("CHIEF_SUPERINTENDENT", 3), ("ASSISTANT_CHIEF_CONSTABLE", 1),
            ("DEPUTY_CHIEF_CONSTABLE", 1), ("CHIEF_CONSTABLE", 1)]
FORENAMES = ["James", "Sarah", "David", "Emma", "Michael", "Laura", "Paul", "Claire", "Mark",
             "Rachel", "Andrew", "Helen", "Steven", "Nicola", "Robert", "Joanne", "Gary", "Lisa",
             "Peter", "Karen", "Daniel", "Amy", "Thomas", "Rebecca", "Christopher", "Hannah",
             "Matthew", "Gemma", "Richard", "Louise", "Ian", "Kirsty", "Neil", "Fiona"]
SURNAMES = ["Armstrong", "Bell", "Graham", "Irving", "Johnstone", "Little", "Nixon", "Routledge",
            "Elliot", "Dixon", "Robson", "Thompson", "Wilson", "Harrison", "Atkinson", "Bowness",
            "Fell", "Hodgson", "Jackson", "Kirkbride", "Lowther", "Musgrave", "Nicholson",
            "Pattinson", "Richardson", "Sewell", "Tyson", "Walker", "Hetherington", "Carrick",
            "Brough", "Stoddart", "Relph", "Wearing", "Askew", "Troughton"]
TEAMS = ["RESPONSE_A", "RESPONSE_B", "RESPONSE_C", "RESPONSE_D", "RESPONSE_E", "NPT", "ROADS",
         "CID"]
ROSTER_COLUMNS = ["officer_id", "force_code", "payroll_no", "collar_number", "warrant_card_no",
                  "forename", "surname", "worker_type", "rank", "is_detective", "area",
                  "district", "station", "team", "pnb_required", "device_eligible", "email",
                  "start_date", "leave_date", "status"]
MANIFEST_COLUMNS = ["order_number", "delivery_note", "pallet_id", "box_id", "manufacturer",
                    "model", "marketing_name", "imei1", "imei2", "serial_number", "wifi_mac",
                    "iccid", "msisdn", "carrier", "os_version", "build_id", "ship_date",
                    "enrolment_channel", "warranty_end"]
SERIAL_CHARS = "0123456789ABCDEFGHJKLMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Build:
    """An Android build of the Galaxy Note 4 (SM-N910F), as `getprop` would report it."""

    release: str  # ro.build.version.release
    sdk: int  # ro.build.version.sdk: the API level
    build_id: str  # ro.build.id (Google's)
    firmware: str  # Samsung's firmware: model, region, bootloader, year, month, revision


# What a Note 4 could run during the 2015 rollout: it shipped with KitKat (its firmware
# ANK4 is from November 2014), Samsung's Lollipop updates reached it during 2015 (5.1.1
# with monthly security patch levels from October 2015: COJ3), and Android 6.0 (API 23)
# only in 2016. A delivery arrives on the first; the force updates it at the bench to the
# second before handover (the lab's devices run it), so the policy asks for API 21.
NOTE4_SHIPPED = Build("4.4.4", 19, "KTU84P", "N910FXXU1ANK4")
NOTE4_2015 = Build("5.1.1", 22, "LMY47X", "N910FXXU1COJ3")


def _mix(total: int) -> list[tuple[str, str | None]]:
    """Return (worker_type, rank) for `total` people in Cumbria's 2015 proportions."""
    officers = round(total * 1130 / 1480)
    pcsos = round(total * 100 / 1480)
    specials = round(total * 140 / 1480)
    staff = total - officers - pcsos - specials
    weight_sum = sum(w for _, w in RANK_MIX)
    people: list[tuple[str, str | None]] = []
    for rank, weight in RANK_MIX[1:]:
        people += [("OFFICER", rank)] * max(1 if weight >= 1 else 0,
                                            round(officers * weight / weight_sum))
    people += [("OFFICER", "CONSTABLE")] * (officers - len(people))
    people += [("PCSO", None)] * pcsos + [("SPECIAL", "SPECIAL_CONSTABLE")] * specials
    people += [("STAFF", None)] * staff
    return people


def _senior(rank: str | None) -> bool:
    return rank not in (None, "CONSTABLE", "SERGEANT", "SPECIAL_CONSTABLE")


def _band(worker_type: str, senior: bool) -> str:
    """Return the collar-number band of a person: senior officers, PCSOs, specials, the rest."""
    if senior and worker_type == "OFFICER":
        return "senior"
    return worker_type if worker_type in ("PCSO", "SPECIAL") else "low"


def _collar_bands(mix: list[tuple[str, str | None]]) -> dict[str, int]:
    """Return each band's first collar number: 1000, 3000, 6000 and 7000 while the bands fit
    there, else each starts where the one before it ends, so no two people share a collar."""
    sizes = {"low": 0, "senior": 0, "PCSO": 0, "SPECIAL": 0}
    for worker_type, rank in mix:
        if worker_type != "STAFF":
            sizes[_band(worker_type, _senior(rank))] += 1
    starts, end = {}, 0
    for band, base in (("low", 1000), ("senior", 3000), ("PCSO", 6000), ("SPECIAL", 7000)):
        starts[band] = max(base, end)
        end = starts[band] + sizes[band]
    return starts


def generate_roster(total: int = 1480, seed: int = 2015) -> list[dict[str, Any]]:
    """Return a synthetic roster of `total` people, the same for the same seed."""
    rng = random.Random(seed)
    areas = list(AREA_WEIGHTS)
    weights = list(AREA_WEIGHTS.values())
    mix = _mix(total)
    next_collar = _collar_bands(mix)
    rows = []
    for i, (worker_type, rank) in enumerate(mix):
        senior = _senior(rank)
        area = "HQ" if rank in ("ASSISTANT_CHIEF_CONSTABLE", "DEPUTY_CHIEF_CONSTABLE",
                                "CHIEF_CONSTABLE") else rng.choices(areas, weights)[0]
        district, station = rng.choice(AREAS[area])
        forename, surname = rng.choice(FORENAMES), rng.choice(SURNAMES)
        if worker_type == "STAFF":
            collar = ""
        elif total > 3000:  # large forces prefix a division code, as the Met does
            collar = f"{rng.choice('ABCDEFGHJK')}{rng.choice('NSEW')}{i}"
        else:
            band = _band(worker_type, senior)
            collar = str(next_collar[band])
            next_collar[band] += 1
        team = ("ADMIN" if worker_type == "STAFF" else "NPT" if worker_type == "PCSO"
                else rng.choice(TEAMS))
        pnb = worker_type != "STAFF" and rank not in ("SUPERINTENDENT", "CHIEF_SUPERINTENDENT",
                                                      "ASSISTANT_CHIEF_CONSTABLE",
                                                      "DEPUTY_CHIEF_CONSTABLE", "CHIEF_CONSTABLE")
        rows.append({
            "officer_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "force_code": "CUMB", "payroll_no": f"P{100000 + i:06d}", "collar_number": collar,
            "warrant_card_no": f"W{rng.randrange(10**7):07d}" if worker_type in
            ("OFFICER", "SPECIAL") else "",
            "forename": forename, "surname": surname, "worker_type": worker_type,
            "rank": rank or "", "is_detective": "true" if team == "CID" else "false",
            "area": area, "district": district, "station": station, "team": team,
            "pnb_required": "true" if pnb else "false",
            "device_eligible": "true" if pnb or rng.random() < 0.3 else "false",
            "email": f"{forename.lower()}.{surname.lower()}{i}@cumbria.pnn.police.uk",
            "start_date": f"{rng.randrange(1985, 2015)}-{rng.randrange(1, 13):02d}-01",
            "leave_date": "", "status": "ACTIVE",
        })
    rng.shuffle(rows)
    return rows


def imei(tac: str, snr: int) -> str:
    """Return a valid IMEI for a TAC and serial-number part."""
    body = f"{tac}{snr:06d}"
    return body + str(luhn_check_digit(body))


def serial(rng: random.Random, prefix: str = "R58F4") -> str:
    """Return an 11-character Samsung-style serial."""
    return prefix + "".join(rng.choice(SERIAL_CHARS) for _ in range(11 - len(prefix)))


def generate_manifest(count: int, seed: int = 417, order: str = "PO-2015-00417",
                      tac: str = "35254906", first_snr: int = 1) -> list[dict[str, Any]]:
    """Return a synthetic delivery manifest of `count` Galaxy Note 4s."""
    rng = random.Random(seed)
    seen: set[str] = set()
    rows = []
    for i in range(count):
        s = serial(rng)
        while s in seen:
            s = serial(rng)
        seen.add(s)
        rows.append({
            "order_number": order, "delivery_note": f"DN{88000 + i // 500}",
            "pallet_id": f"PAL{i // 500 + 1:02d}", "box_id": f"BX{i // 10 + 1:04d}",
            "manufacturer": "samsung", "model": "SM-N910F", "marketing_name": "Galaxy Note 4",
            "imei1": imei(tac, first_snr + i), "imei2": "", "serial_number": s,
            "wifi_mac": ":".join(f"{rng.randrange(256):02X}" for _ in range(6)),
            "iccid": "8944" + "".join(str(rng.randrange(10)) for _ in range(15)),
            "msisdn": "07" + "".join(str(rng.randrange(10)) for _ in range(9)),
            "carrier": "EE", "os_version": NOTE4_SHIPPED.release,
            "build_id": NOTE4_SHIPPED.firmware,
            "ship_date": "2015-03-16", "enrolment_channel": "MANUAL",
            "warranty_end": "2017-03-16",
        })
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Write rows to a CSV file."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def pilot(roster: list[dict[str, Any]], size: int = 55, seed: int = 30) -> Iterator[dict[str, Any]]:
    """Pick a pilot of mixed ranks, roles and areas from a roster (for the demo)."""
    rng = random.Random(seed)
    eligible = [r for r in roster if r["device_eligible"] == "true"]
    by_kind: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in eligible:
        by_kind.setdefault((r["area"], r["worker_type"], r["rank"]), []).append(r)
    picked: list[dict[str, Any]] = []
    groups = sorted(by_kind)
    while len(picked) < size and any(by_kind.values()):
        for key in groups:
            if by_kind[key] and len(picked) < size:
                picked.append(by_kind[key].pop(rng.randrange(len(by_kind[key]))))
    return iter(picked)
