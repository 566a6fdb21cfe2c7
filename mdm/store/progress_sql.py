"""SQL shared by the SQLite and PostgreSQL migrations that keep `rollout_progress` (m018,
m019, m020): each person's place in the rollout's funnel and the indexes `rollout status` reads.
One text for both engines, so the two can never recompute a person differently."""

# Each person's place in the rollout's funnel, recomputed from the base tables.
PROGRESS_COLUMNS = ("officer_id, area, district, station, team, worker_type, rank, eligible,"
                    " grouped, device_id, allocated, enrolled, provisioned, trained,"
                    " handed_over, failed, handed_on")
PROGRESS_SELECT = """
    SELECT o.officer_id, o.area, o.district, o.station, o.team, o.worker_type, o.rank,
      CASE WHEN o.status <> 'LEAVER' AND COALESCE(o.device_eligible, o.pnb_required,
        CASE WHEN o.worker_type = 'STAFF' THEN 0 WHEN o.worker_type IS NOT NULL THEN 1 END)
        <> 0 THEN 1 ELSE 0 END,
      CASE WHEN EXISTS (SELECT 1 FROM group_members g WHERE g.officer_id = o.officer_id)
        THEN 1 ELSE 0 END,
      a.device_id,
      CASE WHEN a.id IS NULL THEN 0 ELSE 1 END,
      CASE WHEN d.status IN ('enrolled', 'provisioned') THEN 1 ELSE 0 END,
      CASE WHEN d.status = 'provisioned' THEN 1 ELSE 0 END,
      CASE WHEN EXISTS (SELECT 1 FROM training t WHERE t.officer_id = o.officer_id)
        THEN 1 ELSE 0 END,
      CASE WHEN h.id IS NULL THEN 0 ELSE 1 END,
      CASE WHEN (SELECT p.result FROM provision_steps p WHERE p.device_id = a.device_id
        ORDER BY p.id DESC LIMIT 1) = 'failed' THEN 1 ELSE 0 END,
      NULLIF(substr(h.handed_over_at, 1, 10), '')
    FROM officers o
    LEFT JOIN assignments a ON a.officer_id = o.officer_id AND a.closed_at IS NULL
    LEFT JOIN devices d ON d.id = a.device_id
    LEFT JOIN handovers h ON h.assignment_id = a.id"""


# The funnel's index: in the order `rollout status` groups the people not hand-picked by
# the shipped plan's cohort columns (area, worker type), the handover day and (`--by`)
# the station, then all it reads besides, so that grouping streams from the index (no
# sort, no table lookups).
PROGRESS_INDEX = ("CREATE INDEX rollout_progress_funnel ON rollout_progress (eligible, area,"
                  " worker_type, handed_on, station, team, grouped, officer_id, allocated,"
                  " enrolled, provisioned, trained, handed_over, failed)")


# The gate's index: the enrolled, device-eligible people first, with every column the
# open waves' judgements are grouped by, so that query reads this index alone (a third of
# the rows, narrower), not the table. (Its GROUP BY leads with whether a person is
# hand-picked, an expression: it still sorts.)
JUDGED_INDEX = ("CREATE INDEX rollout_progress_gate ON rollout_progress (enrolled, eligible,"
                " area, worker_type, rank, station, grouped, officer_id, serial, judged_key,"
                " judged_compliant, judged_until, device_id)")


# The roster columns a person's row is recomputed from (m018's officers triggers; m020
# recomputes it only when one of them changed).
PROGRESS_ROSTER = ("officer_id", "area", "district", "station", "team", "worker_type", "rank",
                   "status", "device_eligible", "pnb_required")


# What a held person's judged columns (m019) are read from, on the device's row and on its
# stored judgement: m020's triggers fire only when one of these changed (for the device's
# status, only whether it is quarantined).
JUDGED_READS = {
    "devices": ("serial", "(status = 'quarantined')", "last_seen", "last_contact_error"),
    "device_judgements": ("device_id", "policy_key", "status", "last_seen",
                          "last_contact_error", "compliant", "valid_until"),
}


def judged_reads_changed(table: str, is_not: str) -> str:
    """The trigger condition: a column of `table` the judged columns read changed, with the
    engine's null-safe inequality `is_not` (SQLite `IS NOT`, PostgreSQL `IS DISTINCT FROM`)."""
    def of(row: str, column: str) -> str:
        return f"({row}.{column[1:]}" if column.startswith("(") else f"{row}.{column}"

    return " OR ".join(f"{of('OLD', c)} {is_not} {of('NEW', c)}" for c in JUDGED_READS[table])


def judged_columns(table: str) -> str:
    """The plain columns of `table` the judged columns read (a trigger's UPDATE OF list)."""
    return ", ".join(c.strip("()").split(" ")[0] for c in JUDGED_READS[table])
