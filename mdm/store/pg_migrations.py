"""PostgreSQL's twin of every SQLite migration, numbered and named alike, recorded in the database.

Each `mNNN_name` here makes on PostgreSQL what mdm/store/migrations.py's `mNNN_name` makes
on SQLite, so a new SQLite migration has an obvious twin to add beside it. The facts the
database holds stay held by the database: the partial unique indexes (one open assignment
per device and per officer), the foreign keys, and triggers (plpgsql) that keep custody
history, the audit log and its state proofs append-only — TRUNCATE included, which
bypasses row triggers. Types follow what the store reads back from SQLite: 64-bit
integers, text for ISO-8601 timestamps and JSON, bytes for hashes. An integer key left
out of an INSERT gets the table's highest plus one, as SQLite's INTEGER PRIMARY KEY does
(writers are serialised, so two can never take the same). The applied names are kept
in `mdm_migrations` (by mdm/store/pg.py, which refuses a database with a name this
mdm does not know).
"""

from __future__ import annotations

from mdm.store.progress_sql import (
    JUDGED_INDEX,
    PROGRESS_COLUMNS,
    PROGRESS_INDEX,
    PROGRESS_ROSTER,
    PROGRESS_SELECT,
    judged_columns,
    judged_reads_changed,
)

FUNCTIONS = [
    # Refuse the change with the trigger's message (append-only and immutable rows).
    """CREATE FUNCTION mdm_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation'; END $$""",
    # Note a changed evidential row's key for the next audit row (see evidence.py).
    """CREATE FUNCTION mdm_note_pending() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO audit_pending (tbl, key) VALUES (TG_TABLE_NAME, to_jsonb(OLD) ->> TG_ARGV[0])
          ON CONFLICT DO NOTHING;
      END IF;
      IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO audit_pending (tbl, key) VALUES (TG_TABLE_NAME, to_jsonb(NEW) ->> TG_ARGV[0])
          ON CONFLICT DO NOTHING;
      END IF;
      RETURN NULL;
    END $$""",
]


# The held device's serial and stored judgement where it still matches the device (m019),
# as the SQLite migration's.
_JUDGED_COLUMNS = "serial, judged_key, judged_compliant, judged_until"
_JUDGED_SELECT = """
    SELECT d.serial, j.policy_key, j.compliant, j.valid_until
    FROM devices d LEFT JOIN device_judgements j ON j.device_id = d.id
      AND (CASE WHEN j.status = 'quarantined' THEN 1 ELSE 0 END)
        = (CASE WHEN d.status = 'quarantined' THEN 1 ELSE 0 END)
      AND j.last_seen IS NOT DISTINCT FROM d.last_seen
      AND j.last_contact_error IS NOT DISTINCT FROM d.last_contact_error"""

# Recompute the judged columns of the row holding one device (m020), writing it only if
# they change. The device's row is there: a held device's row cannot be deleted
# (assignments reference it), and a judgement's device is its foreign key.
_REJUDGE = (f"UPDATE rollout_progress p SET ({_JUDGED_COLUMNS})"
            " = (v.serial, v.policy_key, v.compliant, v.valid_until)"
            f" FROM ({_JUDGED_SELECT} WHERE d.id = {{device}}) v"
            " WHERE p.device_id = {device} AND (p.serial, p.judged_key, p.judged_compliant,"
            " p.judged_until) IS DISTINCT FROM (v.serial, v.policy_key, v.compliant,"
            " v.valid_until)")


def _refuse(name: str, table: str, ops: str, message: str) -> str:
    return (f"CREATE TRIGGER {name} BEFORE {ops} ON {table} FOR EACH ROW"
            f" EXECUTE FUNCTION mdm_refuse('{message}')")


def _no_truncate(table: str, message: str) -> str:
    return (f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION mdm_refuse('{message}')")


def _next_id(table: str) -> str:
    """An integer key left out takes the highest plus one, as SQLite's rowid does.

    One function per table, so its query is planned once per connection.
    """
    return (f"CREATE FUNCTION {table}_next_id() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN SELECT COALESCE(MAX(id), 0) + 1 INTO NEW.id FROM {table}; RETURN NEW;"
            f" END $$; CREATE TRIGGER {table}_next_id BEFORE INSERT ON {table} FOR EACH ROW"
            f" WHEN (NEW.id IS NULL) EXECUTE FUNCTION {table}_next_id()")


def _evidence(table: str, key: str, columns: tuple[str, ...], appended: bool) -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
    insert = [] if appended else [
        f"CREATE TRIGGER {table}_evidence_insert AFTER INSERT ON {table} FOR EACH ROW"
        f" EXECUTE FUNCTION mdm_note_pending('{key}')"]
    return [
        *insert,
        f"CREATE TRIGGER {table}_evidence_update AFTER UPDATE OF {', '.join(columns)}"
        f" ON {table} FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION mdm_note_pending('{key}')",
        f"CREATE TRIGGER {table}_evidence_delete AFTER DELETE ON {table} FOR EACH ROW"
        f" EXECUTE FUNCTION mdm_note_pending('{key}')",
    ]


ID = "id BIGINT PRIMARY KEY"  # SQLite's INTEGER PRIMARY KEY, with a _next_id trigger

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("m001_operators", [*FUNCTIONS, """
        CREATE TABLE operators (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('admin', 'it', 'rollout', 'helpdesk')),
            active BIGINT NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )"""]),
    ("m002_officers", ["""
        CREATE TABLE officers (
            officer_id TEXT PRIMARY KEY,
            force_code TEXT,
            payroll_no TEXT NOT NULL UNIQUE,
            collar_number TEXT,
            warrant_card_no TEXT,
            forename TEXT NOT NULL,
            surname TEXT NOT NULL,
            worker_type TEXT NOT NULL
                CHECK (worker_type IN ('OFFICER', 'PCSO', 'SPECIAL', 'STAFF')),
            rank TEXT,
            is_detective BIGINT NOT NULL DEFAULT 0,
            area TEXT,
            district TEXT,
            station TEXT,
            team TEXT,
            pnb_required BIGINT,
            device_eligible BIGINT,
            email TEXT,
            start_date TEXT,
            leave_date TEXT,
            status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'ABSENT', 'LEAVER')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX officers_collar ON officers (collar_number)",
        "CREATE INDEX officers_surname ON officers (lower(surname))",
        "CREATE INDEX officers_station ON officers (area, station)"]),
    ("m003_devices", [f"""
        CREATE TABLE devices (
            {ID},
            serial TEXT NOT NULL UNIQUE,
            imei1 TEXT NOT NULL UNIQUE,
            imei2 TEXT UNIQUE,
            manufacturer TEXT NOT NULL,
            model TEXT NOT NULL,
            marketing_name TEXT,
            order_number TEXT,
            status TEXT NOT NULL DEFAULT 'delivered',
            status_changed_at TEXT NOT NULL,
            supplier TEXT NOT NULL DEFAULT '{{}}',
            created_at TEXT NOT NULL
        )""", _next_id("devices"),
        "CREATE INDEX devices_serial_nocase ON devices (lower(serial))",
        """CREATE TABLE device_imeis (
            imei TEXT PRIMARY KEY,
            device_id BIGINT NOT NULL REFERENCES devices (id)
        )"""]),
    ("m004_assignments", [f"""
        CREATE TABLE assignments (
            {ID},
            device_id BIGINT NOT NULL REFERENCES devices (id),
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            open_reason TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT,
            close_reason TEXT,
            CHECK (closed_at IS NULL OR closed_at >= opened_at)
        )""", _next_id("assignments"),
        "CREATE UNIQUE INDEX one_holder_per_device ON assignments (device_id)"
        " WHERE closed_at IS NULL",
        "CREATE UNIQUE INDEX one_device_per_officer ON assignments (officer_id)"
        " WHERE closed_at IS NULL",
        "CREATE INDEX assignments_device_time ON assignments (device_id, opened_at)",
        "CREATE INDEX assignments_officer_time ON assignments (officer_id, opened_at)",
        "CREATE TRIGGER assignments_close_only BEFORE UPDATE ON assignments FOR EACH ROW"
        " WHEN (OLD.closed_at IS NOT NULL OR NEW.id IS DISTINCT FROM OLD.id"
        " OR NEW.device_id IS DISTINCT FROM OLD.device_id"
        " OR NEW.officer_id IS DISTINCT FROM OLD.officer_id"
        " OR NEW.opened_at IS DISTINCT FROM OLD.opened_at"
        " OR NEW.opened_by IS DISTINCT FROM OLD.opened_by"
        " OR NEW.open_reason IS DISTINCT FROM OLD.open_reason)"
        " EXECUTE FUNCTION mdm_refuse('custody history is append-only')",
        _refuse("assignments_no_delete", "assignments", "DELETE",
                "custody history is append-only"),
        _no_truncate("assignments", "custody history is append-only")]),
    ("m005_audit", ["""
        CREATE TABLE audit (
            seq BIGINT PRIMARY KEY,
            at TEXT NOT NULL,
            operator TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            before TEXT,
            after TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX audit_subject ON audit (subject)",
        _refuse("audit_no_update", "audit", "UPDATE", "the audit log is append-only"),
        _refuse("audit_no_delete", "audit", "DELETE", "the audit log is append-only"),
        _no_truncate("audit", "the audit log is append-only")]),
    ("m006_enrolment", [
        *(f"ALTER TABLE devices ADD COLUMN {column}" for column in (
            "address TEXT", "host_key TEXT", "host_key_fingerprint TEXT", "enrolled_at TEXT",
            "last_seen TEXT", "last_contact_at TEXT", "last_contact_error TEXT")),
        """CREATE TABLE device_facts (
            device_id BIGINT PRIMARY KEY REFERENCES devices (id),
            collected_at TEXT NOT NULL,
            os_release TEXT,
            sdk BIGINT,
            security_patch TEXT,
            crypto_state TEXT,
            packages TEXT NOT NULL,
            dpc_status TEXT,
            props TEXT NOT NULL
        )"""]),
    ("m007_policies_and_groups", ["""
        CREATE TABLE policy_versions (
            sha256 TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            layers TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""",
        _refuse("policy_versions_immutable", "policy_versions", "UPDATE",
                "policy versions are immutable"),
        _refuse("policy_versions_kept", "policy_versions", "DELETE",
                "policy versions are immutable"),
        f"""CREATE TABLE policy_events (
            {ID},
            device_id BIGINT NOT NULL REFERENCES devices (id),
            sha256 TEXT,
            event TEXT NOT NULL CHECK (event IN ('sent', 'applied', 'reported', 'failed')),
            at TEXT NOT NULL,
            detail TEXT
        )""", _next_id("policy_events"),
        "CREATE INDEX policy_events_device ON policy_events (device_id, id)",
        _refuse("policy_events_append_only", "policy_events", "UPDATE",
                "policy history is append-only"),
        "ALTER TABLE devices ADD COLUMN applied_policy TEXT",
        "ALTER TABLE devices ADD COLUMN applied_policy_at TEXT",
        "ALTER TABLE device_facts ADD COLUMN settings TEXT",
        "ALTER TABLE device_facts ADD COLUMN policy_file_sha256 TEXT",
        """CREATE TABLE groups (
            name TEXT PRIMARY KEY,
            description TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""",
        """CREATE TABLE group_members (
            group_name TEXT NOT NULL REFERENCES groups (name),
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL,
            PRIMARY KEY (group_name, officer_id)
        )""",
        "CREATE INDEX group_members_officer ON group_members (officer_id)"]),
    ("m008_audit_state", [
        # Keys are text here (SQLite's column is untyped); evidence.py reads them back
        # as each table's own key type.
        """CREATE TABLE audit_pending (
            tbl TEXT NOT NULL,
            key TEXT NOT NULL,
            PRIMARY KEY (tbl, key)
        )""",
        """CREATE TABLE audit_state (
            seq BIGINT NOT NULL,
            tbl TEXT NOT NULL,
            key TEXT NOT NULL,
            row_hash BYTEA,
            PRIMARY KEY (seq, tbl, key)
        )""",
        _refuse("audit_state_no_update", "audit_state", "UPDATE",
                "the audit log is append-only"),
        _refuse("audit_state_no_delete", "audit_state", "DELETE",
                "the audit log is append-only"),
        _no_truncate("audit_state", "the audit log is append-only"),
        """CREATE TABLE audit_head (
            id BIGINT PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "ALTER TABLE audit ADD COLUMN state TEXT",
        "CREATE INDEX audit_operator ON audit (operator)",
        "CREATE INDEX audit_action ON audit (action)",
        "CREATE INDEX audit_at ON audit (at)",
        *_evidence("operators", "name", ("name", "role", "active", "created_at", "created_by"),
                   appended=False),
        *_evidence("devices", "id", (
            "id", "serial", "imei1", "imei2", "manufacturer", "model", "marketing_name",
            "order_number", "status", "status_changed_at", "supplier", "created_at", "address",
            "host_key", "host_key_fingerprint", "enrolled_at"), appended=True),
        *_evidence("assignments", "id", (
            "id", "device_id", "officer_id", "opened_at", "opened_by", "open_reason",
            "closed_at", "closed_by", "close_reason"), appended=True)]),
    ("m009_stations", ["""
        CREATE TABLE stations (
            name TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            host_key TEXT NOT NULL,
            host_key_fingerprint TEXT NOT NULL,
            concurrency BIGINT NOT NULL DEFAULT 8 CHECK (concurrency BETWEEN 1 AND 64),
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL
        )""",
        "ALTER TABLE devices ADD COLUMN station TEXT REFERENCES stations (name)",
        "CREATE INDEX devices_station ON devices (station)"]),
    ("m010_list_indexes", [
        "CREATE INDEX officers_station_nocase ON officers (lower(station))"]),
    ("m011_command_queue", [f"""
        CREATE TABLE incidents (
            {ID},
            device_id BIGINT NOT NULL REFERENCES devices (id),
            kind TEXT NOT NULL CHECK (kind IN ('lost', 'stolen', 'return')),
            state TEXT NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'recovered', 'wiped', 'closed')),
            holder_officer_id TEXT REFERENCES officers (officer_id),
            reported_by_officer TEXT,
            place TEXT,
            crime_ref TEXT,
            return_reason TEXT
                CHECK (return_reason IN ('leaver', 'transfer', 'fault', 'end-of-life')),
            known_at TEXT NOT NULL,
            dp_deadline TEXT,
            unsynced_entries BIGINT,
            unsynced_reported_at TEXT,
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT,
            outcome TEXT,
            note TEXT
        )""", _next_id("incidents"),
        "CREATE INDEX incidents_device ON incidents (device_id)",
        "CREATE INDEX incidents_open ON incidents (state) WHERE state = 'open'",
        """CREATE TABLE commands (
            id TEXT PRIMARY KEY,
            device_id BIGINT NOT NULL REFERENCES devices (id),
            kind TEXT NOT NULL,
            payload TEXT,
            state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'sent', 'done', 'failed', 'expired', 'cancelled',
                                 'superseded')),
            attempts BIGINT NOT NULL DEFAULT 0,
            last_answer TEXT,
            created_at TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            not_before TEXT,
            expires_at TEXT NOT NULL,
            sent_at TEXT,
            done_at TEXT,
            needs_approval BIGINT NOT NULL DEFAULT 0,
            approved_by TEXT,
            approved_at TEXT,
            held_reason TEXT,
            released_by TEXT,
            released_at TEXT,
            incident_id BIGINT REFERENCES incidents (id),
            then_status TEXT,
            superseded_by TEXT REFERENCES commands (id),
            closed_reason TEXT
        )""",
        "CREATE INDEX commands_live ON commands (device_id, kind)"
        " WHERE state IN ('queued', 'sent')",
        "CREATE INDEX commands_state ON commands (state, created_at)",
        "CREATE INDEX commands_incident ON commands (incident_id)",
        "CREATE INDEX commands_wipes ON commands (created_at) WHERE kind = 'wipe'"]),
    ("m012_apps", ["""
        CREATE TABLE app_builds (
            sha256 TEXT PRIMARY KEY,
            package TEXT NOT NULL,
            version_code BIGINT NOT NULL,
            version_name TEXT,
            min_sdk BIGINT NOT NULL,
            size BIGINT NOT NULL,
            signer TEXT NOT NULL,
            certificates TEXT NOT NULL,
            notes TEXT,
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL,
            UNIQUE (package, version_code)
        )""",
        f"""CREATE TABLE app_releases (
            {ID},
            package TEXT NOT NULL,
            channel TEXT NOT NULL,
            sha256 TEXT NOT NULL REFERENCES app_builds (sha256),
            released_at TEXT NOT NULL,
            released_by TEXT NOT NULL,
            rollback BIGINT NOT NULL DEFAULT 0,
            reason TEXT
        )""", _next_id("app_releases"),
        "CREATE INDEX app_releases_channel ON app_releases (package, channel, id)",
        f"""CREATE TABLE app_events (
            {ID},
            device_id BIGINT NOT NULL REFERENCES devices (id),
            package TEXT NOT NULL,
            sha256 TEXT,
            event TEXT NOT NULL CHECK (event IN ('installed', 'confirmed', 'failed')),
            at TEXT NOT NULL,
            detail TEXT
        )""", _next_id("app_events"),
        "CREATE INDEX app_events_device ON app_events (device_id, id)"]),
    ("m013_rollout", ["""
        CREATE TABLE rollout_waves (
            name TEXT PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('open')),
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            gate TEXT,
            override_reason TEXT
        )""",
        f"""CREATE TABLE provision_steps (
            {ID},
            device_id BIGINT NOT NULL REFERENCES devices (id),
            step TEXT NOT NULL,
            result TEXT NOT NULL CHECK (result IN ('ok', 'failed')),
            detail TEXT,
            at TEXT NOT NULL,
            operator TEXT NOT NULL
        )""", _next_id("provision_steps"),
        "CREATE INDEX provision_steps_device ON provision_steps (device_id, step, id)",
        f"""CREATE TABLE training (
            {ID},
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            trained_on TEXT NOT NULL,
            trainer TEXT,
            session TEXT,
            recorded_at TEXT NOT NULL,
            recorded_by TEXT NOT NULL
        )""", _next_id("training"),
        "CREATE INDEX training_officer ON training (officer_id)",
        f"""CREATE TABLE handovers (
            {ID},
            assignment_id BIGINT NOT NULL UNIQUE REFERENCES assignments (id),
            device_id BIGINT NOT NULL REFERENCES devices (id),
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            handed_over_at TEXT NOT NULL,
            handed_over_by TEXT NOT NULL
        )""", _next_id("handovers"),
        "CREATE INDEX handovers_officer ON handovers (officer_id)",
        _refuse("handovers_append_only", "handovers", "UPDATE", "handovers are append-only"),
        f"""CREATE TABLE feedback (
            {ID},
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            severity TEXT NOT NULL CHECK (severity IN ('blocker', 'major', 'minor')),
            text TEXT NOT NULL,
            minutes_saved BIGINT CHECK (minutes_saved IS NULL OR minutes_saved >= 0),
            raised_at TEXT NOT NULL,
            raised_by TEXT NOT NULL,
            resolved_at TEXT,
            resolved_by TEXT,
            resolution TEXT
        )""", _next_id("feedback"),
        "CREATE INDEX feedback_open ON feedback (resolved_at, severity)"]),
    ("m014_desk_indexes", [
        "CREATE INDEX officers_listing ON officers (area, station, surname, forename,"
        " officer_id, collar_number, worker_type, rank, team, status)"]),
    ("m015_certificates", ["""
        CREATE TABLE IF NOT EXISTS ca (
            id BIGINT PRIMARY KEY CHECK (id = 1),
            public_line TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""", """
        CREATE TABLE certificates (
            serial BIGINT PRIMARY KEY,
            operator TEXT NOT NULL REFERENCES operators (name),
            key_id TEXT NOT NULL,
            principals TEXT NOT NULL,
            key_fingerprint TEXT NOT NULL,
            ca_fingerprint TEXT NOT NULL,
            valid_after TEXT NOT NULL,
            valid_before TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            revoked_at TEXT,
            revoked_by TEXT,
            revoke_reason TEXT
        )""",
        # SQLite's AUTOINCREMENT: a serial left out is the highest ever plus one (rows are
        # never deleted, and writers are serialised).
        "CREATE FUNCTION mdm_certificates_next_serial() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN SELECT COALESCE(MAX(serial), 0) + 1 INTO NEW.serial FROM certificates;"
        " RETURN NEW; END $$; CREATE TRIGGER certificates_next_serial BEFORE INSERT ON"
        " certificates FOR EACH ROW WHEN (NEW.serial IS NULL)"
        " EXECUTE FUNCTION mdm_certificates_next_serial()",
        "CREATE INDEX certificates_operator ON certificates (operator, serial)", """
        CREATE TABLE krls (
            version BIGINT PRIMARY KEY,
            krl BYTEA NOT NULL,
            sha256 TEXT NOT NULL,
            serials TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""",
        _refuse("krls_append_only", "krls", "UPDATE", "revocation lists are append-only")]),
    ("m016_device_trust", ["""
        CREATE TABLE device_trust (
            device_id BIGINT PRIMARY KEY REFERENCES devices (id),
            ca_fingerprint TEXT,
            principals TEXT,
            plain_keys BIGINT,
            krl_version BIGINT,
            updated_at TEXT NOT NULL
        )"""]),
    ("m017_device_judgement", ["""
        CREATE TABLE device_judgements (
            device_id BIGINT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
            policy_key TEXT NOT NULL,
            status TEXT NOT NULL,
            last_seen TEXT,
            last_contact_error TEXT,
            compliant BIGINT NOT NULL,
            reasons TEXT NOT NULL,
            valid_until TEXT,
            judged_at TEXT NOT NULL
        )""",
        # Any write to a device's facts makes its stored judgement go, whoever writes.
        "CREATE FUNCTION mdm_device_facts_unjudge() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN"
        " IF TG_OP IN ('UPDATE', 'DELETE') THEN"
        " DELETE FROM device_judgements WHERE device_id = OLD.device_id; END IF;"
        " IF TG_OP = 'INSERT' THEN"
        " DELETE FROM device_judgements WHERE device_id = NEW.device_id; END IF;"
        " RETURN NULL; END $$",
        "CREATE TRIGGER device_facts_unjudge AFTER INSERT OR UPDATE OR DELETE ON device_facts"
        " FOR EACH ROW EXECUTE FUNCTION mdm_device_facts_unjudge()"]),
    ("m018_rollout_progress", [
        """
        CREATE TABLE rollout_progress (
            officer_id TEXT PRIMARY KEY,
            area TEXT,
            district TEXT,
            station TEXT,
            team TEXT,
            worker_type TEXT,
            rank TEXT,
            eligible BIGINT NOT NULL,
            grouped BIGINT NOT NULL,
            device_id BIGINT,
            allocated BIGINT NOT NULL,
            enrolled BIGINT NOT NULL,
            provisioned BIGINT NOT NULL,
            trained BIGINT NOT NULL,
            handed_over BIGINT NOT NULL,
            failed BIGINT NOT NULL,
            handed_on TEXT
        )""",
        f"INSERT INTO rollout_progress ({PROGRESS_COLUMNS}) {PROGRESS_SELECT}",
        PROGRESS_INDEX,
        # Recompute one person's row from the base tables.
        "CREATE FUNCTION mdm_rollout_progress_of(who TEXT) RETURNS void LANGUAGE plpgsql AS $$"
        " BEGIN IF who IS NULL THEN RETURN; END IF;"
        " DELETE FROM rollout_progress WHERE officer_id = who;"
        f" INSERT INTO rollout_progress ({PROGRESS_COLUMNS}) {PROGRESS_SELECT}"
        " WHERE o.officer_id = who; END $$",
        # Whoever writes a row the funnel reads, recompute the person it touches (before
        # and after): TG_ARGV[0] says how a row names its person (officer_id; the holder of
        # the device in column TG_ARGV[1]; the holder of the assignment).
        "CREATE FUNCTION mdm_rollout_progress_note() RETURNS trigger LANGUAGE plpgsql AS $$"
        " DECLARE r jsonb; who TEXT;"
        " BEGIN"
        " FOREACH r IN ARRAY CASE TG_OP WHEN 'INSERT' THEN ARRAY[to_jsonb(NEW)]"
        " WHEN 'DELETE' THEN ARRAY[to_jsonb(OLD)] ELSE ARRAY[to_jsonb(OLD), to_jsonb(NEW)] END"
        " LOOP"
        " who := NULL;"
        " IF TG_ARGV[0] = 'officer' THEN who := r ->> 'officer_id';"
        " ELSIF TG_ARGV[0] = 'device' THEN SELECT a.officer_id INTO who FROM assignments a"
        " WHERE a.device_id = (r ->> TG_ARGV[1])::bigint AND a.closed_at IS NULL;"
        " ELSE SELECT a.officer_id INTO who FROM assignments a"
        " WHERE a.id = (r ->> 'assignment_id')::bigint; END IF;"
        " PERFORM mdm_rollout_progress_of(who);"
        " END LOOP;"
        " RETURN NULL; END $$",
        "CREATE TRIGGER officers_progress AFTER INSERT OR DELETE OR UPDATE OF officer_id, area,"
        " district, station, team, worker_type, rank, status, device_eligible, pnb_required"
        " ON officers FOR EACH ROW EXECUTE FUNCTION mdm_rollout_progress_note('officer')",
        *(f"CREATE TRIGGER {table}_progress AFTER INSERT OR UPDATE OR DELETE ON {table}"
          f" FOR EACH ROW EXECUTE FUNCTION mdm_rollout_progress_note({how})"
          for table, how in (("assignments", "'officer'"), ("training", "'officer'"),
                             ("group_members", "'officer'"),
                             ("provision_steps", "'device', 'device_id'"),
                             ("handovers", "'assignment'"))),
        "CREATE TRIGGER devices_progress AFTER UPDATE OF status ON devices"
        " FOR EACH ROW EXECUTE FUNCTION mdm_rollout_progress_note('device', 'id')"]),
    ("m019_progress_judgement", [
        *(f"ALTER TABLE rollout_progress ADD COLUMN {column}"
          for column in ("serial TEXT", "judged_key TEXT", "judged_compliant BIGINT",
                         "judged_until TEXT")),
        f"UPDATE rollout_progress SET ({_JUDGED_COLUMNS}) = ({_JUDGED_SELECT}"
        " WHERE d.id = rollout_progress.device_id) WHERE device_id IS NOT NULL",
        "CREATE INDEX rollout_progress_device ON rollout_progress (device_id)",
        JUDGED_INDEX,
        # A person's row, as m018's triggers insert it, takes its device's judgement.
        "CREATE FUNCTION mdm_rollout_progress_judged() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN" + _JUDGED_SELECT.replace(
            "FROM devices d", "INTO NEW.serial, NEW.judged_key, NEW.judged_compliant,"
            " NEW.judged_until FROM devices d")
        + " WHERE d.id = NEW.device_id; RETURN NEW; END $$",
        "CREATE TRIGGER rollout_progress_judged BEFORE INSERT ON rollout_progress"
        " FOR EACH ROW WHEN (NEW.device_id IS NOT NULL)"
        " EXECUTE FUNCTION mdm_rollout_progress_judged()",
        # A judgement written or deleted, or its device's serial, status, last seen or last
        # contact error changed: recompute the rows holding that device (TG_ARGV[0]: the
        # column naming it).
        "CREATE FUNCTION mdm_rollout_progress_rejudge() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ DECLARE ids bigint[];"
        " BEGIN"
        " ids := CASE TG_OP WHEN 'INSERT' THEN ARRAY[(to_jsonb(NEW) ->> TG_ARGV[0])::bigint]"
        " WHEN 'DELETE' THEN ARRAY[(to_jsonb(OLD) ->> TG_ARGV[0])::bigint]"
        " ELSE ARRAY[(to_jsonb(OLD) ->> TG_ARGV[0])::bigint,"
        " (to_jsonb(NEW) ->> TG_ARGV[0])::bigint] END;"
        f" UPDATE rollout_progress SET ({_JUDGED_COLUMNS}) = ({_JUDGED_SELECT}"
        " WHERE d.id = rollout_progress.device_id)"
        " WHERE device_id = ANY (ids);"
        " RETURN NULL; END $$",
        "CREATE TRIGGER device_judgements_progress AFTER INSERT OR UPDATE OR DELETE"
        " ON device_judgements FOR EACH ROW"
        " EXECUTE FUNCTION mdm_rollout_progress_rejudge('device_id')",
        "CREATE TRIGGER devices_progress_judged AFTER UPDATE OF serial, status, last_seen,"
        " last_contact_error ON devices FOR EACH ROW"
        " EXECUTE FUNCTION mdm_rollout_progress_rejudge('id')"]),
    ("m020_progress_triggers_lean", [
        # m019's recomputing of a held device's judged columns, as one statement the
        # server plans once per connection (_REJUDGE): m019's took the device from the row
        # as JSON and matched it with `= ANY (array)`, which the server planned afresh at
        # every call (most of a push's server time, ~0.7 ms a device). It writes only a
        # row whose judged columns change, and a device's update runs it only when a
        # column those read changed (a push records each device's contact: only its last
        # seen matters) and the device has a stored judgement or a new serial (else they
        # are its serial and nothing else, before and after); a judgement's update only
        # when a column they read changed (not its reasons or when it was judged).
        # m018's triggers keyed by a person (officers, assignments, training, group
        # members), by a function reading the person's id from the row itself (m018's
        # turned each row into JSON to find it: ~0.05 ms a row, a second of a 45,000-person
        # import), recomputing once when an update leaves the person the same (m018's did
        # the old and the new person, the same one twice); a roster update only when a
        # column the row reads changed.
        *(f"DROP TRIGGER {table}_progress ON {table}"
          for table in ("officers", "assignments", "training", "group_members")),
        "CREATE FUNCTION mdm_rollout_progress_person() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN"
        " IF TG_OP = 'INSERT' THEN PERFORM mdm_rollout_progress_of(NEW.officer_id);"
        " ELSE PERFORM mdm_rollout_progress_of(OLD.officer_id);"
        " IF TG_OP = 'UPDATE' THEN IF NEW.officer_id IS DISTINCT FROM OLD.officer_id THEN"
        " PERFORM mdm_rollout_progress_of(NEW.officer_id); END IF; END IF; END IF;"
        " RETURN NULL; END $$",
        "CREATE TRIGGER officers_progress AFTER INSERT OR DELETE ON officers FOR EACH ROW"
        " EXECUTE FUNCTION mdm_rollout_progress_person()",
        f"CREATE TRIGGER officers_progress_update AFTER UPDATE OF {', '.join(PROGRESS_ROSTER)}"
        " ON officers FOR EACH ROW WHEN ("
        + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in PROGRESS_ROSTER)
        + ") EXECUTE FUNCTION mdm_rollout_progress_person()",
        *(f"CREATE TRIGGER {table}_progress AFTER INSERT OR UPDATE OR DELETE ON {table}"
          " FOR EACH ROW EXECUTE FUNCTION mdm_rollout_progress_person()"
          for table in ("assignments", "training", "group_members")),
        "DROP TRIGGER devices_progress_judged ON devices",
        "DROP TRIGGER device_judgements_progress ON device_judgements",
        "DROP FUNCTION mdm_rollout_progress_rejudge()",
        "CREATE FUNCTION mdm_rollout_progress_rejudge(dev BIGINT) RETURNS void"
        f" LANGUAGE plpgsql AS $$ BEGIN {_REJUDGE.format(device='dev')}; END $$",
        "CREATE FUNCTION mdm_devices_rejudge() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.serial IS DISTINCT FROM OLD.serial OR EXISTS (SELECT 1 FROM"
        f" device_judgements WHERE device_id = NEW.id) THEN {_REJUDGE.format(device='NEW.id')};"
        " END IF; RETURN NULL; END $$",
        f"CREATE TRIGGER devices_progress_judged AFTER UPDATE OF {judged_columns('devices')}"
        " ON devices FOR EACH ROW WHEN"
        f" ({judged_reads_changed('devices', 'IS DISTINCT FROM')})"
        " EXECUTE FUNCTION mdm_devices_rejudge()",
        "CREATE FUNCTION mdm_device_judgements_rejudge() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN"
        " IF TG_OP = 'INSERT' THEN PERFORM mdm_rollout_progress_rejudge(NEW.device_id);"
        " ELSE PERFORM mdm_rollout_progress_rejudge(OLD.device_id);"
        " IF TG_OP = 'UPDATE' THEN IF NEW.device_id IS DISTINCT FROM OLD.device_id THEN"
        " PERFORM mdm_rollout_progress_rejudge(NEW.device_id); END IF; END IF; END IF;"
        " RETURN NULL; END $$",
        "CREATE TRIGGER device_judgements_progress AFTER INSERT OR DELETE ON device_judgements"
        " FOR EACH ROW EXECUTE FUNCTION mdm_device_judgements_rejudge()",
        "CREATE TRIGGER device_judgements_progress_update AFTER UPDATE OF"
        f" {judged_columns('device_judgements')} ON device_judgements FOR EACH ROW WHEN"
        f" ({judged_reads_changed('device_judgements', 'IS DISTINCT FROM')})"
        " EXECUTE FUNCTION mdm_device_judgements_rejudge()"]),
    ("m021_progress_per_statement", [
        # People added to the roster, and assignments opened, have their holders' progress
        # rows computed once per statement (the new rows as a transition table), not once
        # per row: an import's 45,000 people in a few COPY statements were 45,000 trigger
        # calls, each a DELETE and an INSERT ... SELECT planned and run for one person
        # (three quarters of the server's time for the import), and `assign --from`'s one
        # INSERT of 1,500 assignments 1,500 of them (0.29 s for it, 0.17 s now). The
        # rows are the same: a row trigger AFTER INSERT fires at the statement's end too,
        # on the same tables. A person deleted, a roster row updated, an assignment closed
        # are still recomputed per row (one person, or one row of an update, at a time).
        "DROP TRIGGER officers_progress ON officers",
        "CREATE TRIGGER officers_progress AFTER DELETE ON officers FOR EACH ROW"
        " EXECUTE FUNCTION mdm_rollout_progress_person()",
        "DROP TRIGGER assignments_progress ON assignments",
        "CREATE TRIGGER assignments_progress AFTER UPDATE OR DELETE ON assignments"
        " FOR EACH ROW EXECUTE FUNCTION mdm_rollout_progress_person()",
        # (Without JIT: the server's estimate for an import's statement is far above
        # jit_above_cost, and compiling it took 1.2 s, longer than it runs.)
        "CREATE FUNCTION mdm_rollout_progress_added() RETURNS trigger LANGUAGE plpgsql"
        " SET jit = off AS $$ BEGIN"
        " DELETE FROM rollout_progress WHERE officer_id IN (SELECT officer_id FROM added);"
        f" INSERT INTO rollout_progress ({PROGRESS_COLUMNS}) {PROGRESS_SELECT}"
        " WHERE o.officer_id IN (SELECT officer_id FROM added);"
        " RETURN NULL; END $$",
        *(f"CREATE TRIGGER {table}_progress_added AFTER INSERT ON {table}"
          " REFERENCING NEW TABLE AS added FOR EACH STATEMENT"
          " EXECUTE FUNCTION mdm_rollout_progress_added()"
          for table in ("officers", "assignments"))]),
]

NAMES = [name for name, _ in MIGRATIONS]
