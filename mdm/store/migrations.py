"""Numbered schema migrations, recorded in the inventory itself.

Never edit a migration that has shipped: add the next number. `docs/schema.md` is
generated from a blank inventory migrated by these functions.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from mdm.store.progress_sql import (
    JUDGED_INDEX,
    PROGRESS_COLUMNS,
    PROGRESS_INDEX,
    PROGRESS_ROSTER,
    PROGRESS_SELECT,
    judged_columns,
    judged_reads_changed,
)

migrations = Migrations("mdm")


@migrations()
def m001_operators(db: Database) -> None:
    db.execute("""
        CREATE TABLE operators (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('admin', 'it', 'rollout', 'helpdesk')),
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""")


@migrations()
def m002_officers(db: Database) -> None:
    db.execute("""
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
            is_detective INTEGER NOT NULL DEFAULT 0,
            area TEXT,
            district TEXT,
            station TEXT,
            team TEXT,
            pnb_required INTEGER,
            device_eligible INTEGER,
            email TEXT,
            start_date TEXT,
            leave_date TEXT,
            status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'ABSENT', 'LEAVER')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX officers_collar ON officers (collar_number)")
    db.execute("CREATE INDEX officers_surname ON officers (surname COLLATE NOCASE)")
    db.execute("CREATE INDEX officers_station ON officers (area, station)")


@migrations()
def m003_devices(db: Database) -> None:
    db.execute("""
        CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            serial TEXT NOT NULL UNIQUE,
            imei1 TEXT NOT NULL UNIQUE,
            imei2 TEXT UNIQUE,
            manufacturer TEXT NOT NULL,
            model TEXT NOT NULL,
            marketing_name TEXT,
            order_number TEXT,
            status TEXT NOT NULL DEFAULT 'delivered',
            status_changed_at TEXT NOT NULL,
            supplier TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX devices_serial_nocase ON devices (serial COLLATE NOCASE)")
    # One IMEI namespace across imei1 and imei2: a phone's second IMEI can't be another's first.
    db.execute("""
        CREATE TABLE device_imeis (
            imei TEXT PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id)
        )""")


@migrations()
def m004_assignments(db: Database) -> None:
    db.execute("""
        CREATE TABLE assignments (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id),
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            open_reason TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT,
            close_reason TEXT,
            CHECK (closed_at IS NULL OR closed_at >= opened_at)
        )""")
    # The custody invariants, held by the database itself.
    db.execute("CREATE UNIQUE INDEX one_holder_per_device ON assignments (device_id)"
               " WHERE closed_at IS NULL")
    db.execute("CREATE UNIQUE INDEX one_device_per_officer ON assignments (officer_id)"
               " WHERE closed_at IS NULL")
    db.execute("CREATE INDEX assignments_device_time ON assignments (device_id, opened_at)")
    db.execute("CREATE INDEX assignments_officer_time ON assignments (officer_id, opened_at)")
    # History is never rewritten: a row may only be closed, once, and never deleted.
    db.execute("""
        CREATE TRIGGER assignments_close_only BEFORE UPDATE ON assignments
        WHEN OLD.closed_at IS NOT NULL
          OR NEW.id IS NOT OLD.id OR NEW.device_id IS NOT OLD.device_id
          OR NEW.officer_id IS NOT OLD.officer_id OR NEW.opened_at IS NOT OLD.opened_at
          OR NEW.opened_by IS NOT OLD.opened_by OR NEW.open_reason IS NOT OLD.open_reason
        BEGIN SELECT RAISE(ABORT, 'custody history is append-only'); END""")
    db.execute("""
        CREATE TRIGGER assignments_no_delete BEFORE DELETE ON assignments
        BEGIN SELECT RAISE(ABORT, 'custody history is append-only'); END""")


@migrations()
def m005_audit(db: Database) -> None:
    db.execute("""
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            operator TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            before TEXT,
            after TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX audit_subject ON audit (subject)")
    db.execute("""
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")
    db.execute("""
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")



@migrations()
def m006_enrolment(db: Database) -> None:
    for column in ("address TEXT", "host_key TEXT", "host_key_fingerprint TEXT",
                   "enrolled_at TEXT", "last_seen TEXT", "last_contact_at TEXT",
                   "last_contact_error TEXT"):
        db.execute(f"ALTER TABLE devices ADD COLUMN {column}")
    db.execute("""
        CREATE TABLE device_facts (
            device_id INTEGER PRIMARY KEY REFERENCES devices (id),
            collected_at TEXT NOT NULL,
            os_release TEXT,
            sdk INTEGER,
            security_patch TEXT,
            crypto_state TEXT,
            packages TEXT NOT NULL,
            dpc_status TEXT,
            props TEXT NOT NULL
        )""")


@migrations()
def m007_policies_and_groups(db: Database) -> None:
    # Compiled policy versions: stored once by sha256, never changed.
    db.execute("""
        CREATE TABLE policy_versions (
            sha256 TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            layers TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TRIGGER policy_versions_immutable BEFORE UPDATE ON policy_versions
        BEGIN SELECT RAISE(ABORT, 'policy versions are immutable'); END""")
    db.execute("""
        CREATE TRIGGER policy_versions_kept BEFORE DELETE ON policy_versions
        BEGIN SELECT RAISE(ABORT, 'policy versions are immutable'); END""")
    # Each device's history of policy versions: sent, applied, reported, failed.
    db.execute("""
        CREATE TABLE policy_events (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id),
            sha256 TEXT,
            event TEXT NOT NULL CHECK (event IN ('sent', 'applied', 'reported', 'failed')),
            at TEXT NOT NULL,
            detail TEXT
        )""")
    db.execute("CREATE INDEX policy_events_device ON policy_events (device_id, id)")
    db.execute("""
        CREATE TRIGGER policy_events_append_only BEFORE UPDATE ON policy_events
        BEGIN SELECT RAISE(ABORT, 'policy history is append-only'); END""")
    for column in ("applied_policy TEXT", "applied_policy_at TEXT"):
        db.execute(f"ALTER TABLE devices ADD COLUMN {column}")
    for column in ("settings TEXT", "policy_file_sha256 TEXT"):
        db.execute(f"ALTER TABLE device_facts ADD COLUMN {column}")
    # Named groups of officers (the pilot first; rollout waves later).
    db.execute("""
        CREATE TABLE groups (
            name TEXT PRIMARY KEY,
            description TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE group_members (
            group_name TEXT NOT NULL REFERENCES groups (name),
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL,
            PRIMARY KEY (group_name, officer_id)
        )""")
    db.execute("CREATE INDEX group_members_officer ON group_members (officer_id)")


def _evidence_triggers(table: str, key: str, columns: tuple[str, ...],
                       appended: bool) -> list[str]:
    """Triggers that note each changed evidential row of `table` for the next audit row.

    Rows appended to an integer-keyed table (devices, assignments) are found by key instead
    (see evidence.py): a trigger costs ~10 µs a row, too much for a 50,000-device import.
    """
    note = "INSERT OR IGNORE INTO audit_pending (tbl, key) VALUES ('{t}', {row}.{k});"
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
    insert = [] if appended else [
        f"CREATE TRIGGER {table}_evidence_insert AFTER INSERT ON {table}"
        f" BEGIN {note.format(t=table, row='NEW', k=key)} END"]
    return [
        *insert,
        f"CREATE TRIGGER {table}_evidence_update AFTER UPDATE OF {', '.join(columns)}"
        f" ON {table} WHEN {changed}"
        f" BEGIN {note.format(t=table, row='OLD', k=key)}"
        f" {note.format(t=table, row='NEW', k=key)} END",
        f"CREATE TRIGGER {table}_evidence_delete AFTER DELETE ON {table}"
        f" BEGIN {note.format(t=table, row='OLD', k=key)} END",
    ]


@migrations()
def m008_audit_state(db: Database) -> None:
    # State proofs (mdm/store/evidence.py): the audit row of each transaction carries the
    # hashes of the evidential rows it changed. The column lists are frozen here as
    # shipped; the hashing lists live in evidence.py and must stay a subset of them.
    db.execute("""
        CREATE TABLE audit_pending (
            tbl TEXT NOT NULL,
            key NOT NULL,
            PRIMARY KEY (tbl, key)
        ) WITHOUT ROWID""")
    db.execute("""
        CREATE TABLE audit_state (
            seq INTEGER NOT NULL,
            tbl TEXT NOT NULL,
            key NOT NULL,
            row_hash BLOB,
            PRIMARY KEY (seq, tbl, key)
        ) WITHOUT ROWID""")
    db.execute("""
        CREATE TRIGGER audit_state_no_update BEFORE UPDATE ON audit_state
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")
    db.execute("""
        CREATE TRIGGER audit_state_no_delete BEFORE DELETE ON audit_state
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")
    # The chain's head as last written, kept apart from the chain: a tripwire for rows
    # removed from the end (see docs/operations.md for what it does and doesn't prove).
    db.execute("""
        CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL
        )""")
    db.execute("ALTER TABLE audit ADD COLUMN state TEXT")
    db.execute("CREATE INDEX audit_operator ON audit (operator)")
    db.execute("CREATE INDEX audit_action ON audit (action)")
    db.execute("CREATE INDEX audit_at ON audit (at)")
    evidential = {
        "operators": ("name", ("name", "role", "active", "created_at", "created_by")),
        "devices": ("id", ("id", "serial", "imei1", "imei2", "manufacturer", "model",
                           "marketing_name", "order_number", "status", "status_changed_at",
                           "supplier", "created_at", "address", "host_key",
                           "host_key_fingerprint", "enrolled_at")),
        "assignments": ("id", ("id", "device_id", "officer_id", "opened_at", "opened_by",
                               "open_reason", "closed_at", "closed_by", "close_reason")),
    }
    for table, (key, columns) in evidential.items():
        for sql in _evidence_triggers(table, key, columns, appended=key == "id"):
            db.execute(sql)
    # An inventory made before state proofs: seal every evidential row as it stands now,
    # in one audit row that says so, and start the head tripwire from the chain's head.
    counts = {}
    for table, (key, _) in evidential.items():
        db.execute(f"INSERT INTO audit_pending (tbl, key) SELECT '{table}', {key} FROM {table}")
        counts[table] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    if any(counts.values()):
        import mdm.store.audit as audit
        from mdm.store.db import Database as Inventory

        audit.record(Inventory(db.conn), "mdm", "audit.backfill", "inventory", None,
                     {"reason": "schema upgrade: the log now proves custody, device status"
                                " and host keys, and operators; rows as they stood at the"
                                " upgrade are recorded here", "rows": counts})
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if row:
        db.execute("INSERT OR IGNORE INTO audit_head (id, seq, hash) VALUES (1, ?, ?)",
                   list(row))


@migrations()
def m009_stations(db: Database) -> None:
    # Provisioning stations: Linux machines that drive USB-attached phones with adb.
    db.execute("""
        CREATE TABLE stations (
            name TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            host_key TEXT NOT NULL,
            host_key_fingerprint TEXT NOT NULL,
            concurrency INTEGER NOT NULL DEFAULT 8 CHECK (concurrency BETWEEN 1 AND 64),
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL
        )""")
    # A device's route: through this station (adb), or directly (NULL: its address, SSH).
    db.execute("ALTER TABLE devices ADD COLUMN station TEXT REFERENCES stations (name)")
    db.execute("CREATE INDEX devices_station ON devices (station)")


@migrations()
def m010_list_indexes(db: Database) -> None:
    # `officers list --station kendal`: stations are kept as HR spells them and matched
    # without regard to case, so the index that serves the match folds case too.
    db.execute("CREATE INDEX officers_station_nocase ON officers (station COLLATE NOCASE)")


@migrations()
def m011_command_queue(db: Database) -> None:
    # A lost, stolen or returned device: who reported it, when it was known (the ICO's
    # 72 hours run from then), and how many notebook entries it last reported unsynced.
    db.execute("""
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id),
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
            unsynced_entries INTEGER,
            unsynced_reported_at TEXT,
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT,
            outcome TEXT,
            note TEXT
        )""")
    db.execute("CREATE INDEX incidents_device ON incidents (device_id)")
    db.execute("CREATE INDEX incidents_open ON incidents (state) WHERE state = 'open'")
    # Device actions that may not be deliverable now. `id` is the command id the device
    # remembers (at-least-once delivery, idempotent by id). Kinds are a registry in
    # mdm/queue/kinds.py, so no CHECK here: a new kind needs no migration.
    db.execute("""
        CREATE TABLE commands (
            id TEXT PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id),
            kind TEXT NOT NULL,
            payload TEXT,
            state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'sent', 'done', 'failed', 'expired', 'cancelled',
                                 'superseded')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_answer TEXT,
            created_at TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            not_before TEXT,
            expires_at TEXT NOT NULL,
            sent_at TEXT,
            done_at TEXT,
            needs_approval INTEGER NOT NULL DEFAULT 0,
            approved_by TEXT,
            approved_at TEXT,
            held_reason TEXT,
            released_by TEXT,
            released_at TEXT,
            incident_id INTEGER REFERENCES incidents (id),
            then_status TEXT,
            superseded_by TEXT REFERENCES commands (id),
            closed_reason TEXT
        )""")
    db.execute("CREATE INDEX commands_live ON commands (device_id, kind)"
               " WHERE state IN ('queued', 'sent')")
    db.execute("CREATE INDEX commands_state ON commands (state, created_at)")
    db.execute("CREATE INDEX commands_incident ON commands (incident_id)")
    db.execute("CREATE INDEX commands_wipes ON commands (created_at) WHERE kind = 'wipe'")


@migrations()
def m012_apps(db: Database) -> None:
    # App builds: each APK once, by sha256; its file is in the build store folder, never
    # here. A package's versionCode names one build only (builds are immutable).
    db.execute("""
        CREATE TABLE app_builds (
            sha256 TEXT PRIMARY KEY,
            package TEXT NOT NULL,
            version_code INTEGER NOT NULL,
            version_name TEXT,
            min_sdk INTEGER NOT NULL,
            size INTEGER NOT NULL,
            signer TEXT NOT NULL,
            certificates TEXT NOT NULL,
            notes TEXT,
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL,
            UNIQUE (package, version_code)
        )""")
    # Releases: which build each channel runs; the newest row of a (package, channel) is
    # in force, the older ones are its history. A rollback is a release that names why.
    db.execute("""
        CREATE TABLE app_releases (
            id INTEGER PRIMARY KEY,
            package TEXT NOT NULL,
            channel TEXT NOT NULL,
            sha256 TEXT NOT NULL REFERENCES app_builds (sha256),
            released_at TEXT NOT NULL,
            released_by TEXT NOT NULL,
            rollback INTEGER NOT NULL DEFAULT 0,
            reason TEXT
        )""")
    db.execute("CREATE INDEX app_releases_channel ON app_releases (package, channel, id)")
    # What each push did to each device: installed, failed (the device's own words).
    db.execute("""
        CREATE TABLE app_events (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id),
            package TEXT NOT NULL,
            sha256 TEXT,
            event TEXT NOT NULL CHECK (event IN ('installed', 'confirmed', 'failed')),
            at TEXT NOT NULL,
            detail TEXT
        )""")
    db.execute("CREATE INDEX app_events_device ON app_events (device_id, id)")


@migrations()
def m013_rollout(db: Database) -> None:
    # The phased rollout (mdm/rollout/): the plan itself is a file the force keeps in
    # version control; the inventory keeps what happened. A wave has a row once opened.
    db.execute("""
        CREATE TABLE rollout_waves (
            name TEXT PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('open')),
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            gate TEXT,
            override_reason TEXT
        )""")
    # Each provisioning step's result per device, appended as it is proven or fails.
    db.execute("""
        CREATE TABLE provision_steps (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id),
            step TEXT NOT NULL,
            result TEXT NOT NULL CHECK (result IN ('ok', 'failed')),
            detail TEXT,
            at TEXT NOT NULL,
            operator TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX provision_steps_device ON provision_steps (device_id, step, id)")
    db.execute("""
        CREATE TABLE training (
            id INTEGER PRIMARY KEY,
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            trained_on TEXT NOT NULL,
            trainer TEXT,
            session TEXT,
            recorded_at TEXT NOT NULL,
            recorded_by TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX training_officer ON training (officer_id)")
    # A handover closes the custody chain's first link: the holder received the device.
    db.execute("""
        CREATE TABLE handovers (
            id INTEGER PRIMARY KEY,
            assignment_id INTEGER NOT NULL UNIQUE REFERENCES assignments (id),
            device_id INTEGER NOT NULL REFERENCES devices (id),
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            handed_over_at TEXT NOT NULL,
            handed_over_by TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX handovers_officer ON handovers (officer_id)")
    db.execute("""
        CREATE TRIGGER handovers_append_only BEFORE UPDATE ON handovers
        BEGIN SELECT RAISE(ABORT, 'handovers are append-only'); END""")
    db.execute("""
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            officer_id TEXT NOT NULL REFERENCES officers (officer_id),
            severity TEXT NOT NULL CHECK (severity IN ('blocker', 'major', 'minor')),
            text TEXT NOT NULL,
            minutes_saved INTEGER CHECK (minutes_saved IS NULL OR minutes_saved >= 0),
            raised_at TEXT NOT NULL,
            raised_by TEXT NOT NULL,
            resolved_at TEXT,
            resolved_by TEXT,
            resolution TEXT
        )""")
    db.execute("CREATE INDEX feedback_open ON feedback (resolved_at, severity)")


@migrations()
def m014_desk_indexes(db: Database) -> None:
    # `officers list` of the whole roster, in its order (area, station, surname, forename),
    # read from one index that holds every listed column: no sort, no table lookups.
    db.execute("CREATE INDEX officers_listing ON officers (area, station, surname, forename,"
               " officer_id, collar_number, worker_type, rank, team, status)")


@migrations()
def m015_certificates(db: Database) -> None:
    # The force's SSH user CA: its public line only (the private key never enters the
    # inventory); one row at most.
    db.execute("""
        CREATE TABLE IF NOT EXISTS ca (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            public_line TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""")
    # Every certificate issued; AUTOINCREMENT keeps serials increasing and never reused.
    db.execute("""
        CREATE TABLE certificates (
            serial INTEGER PRIMARY KEY AUTOINCREMENT,
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
        )""")
    db.execute("CREATE INDEX certificates_operator ON certificates (operator, serial)")
    # Every key revocation list built (OpenSSH KRL, `ssh-keygen -k`); never changed.
    db.execute("""
        CREATE TABLE krls (
            version INTEGER PRIMARY KEY,
            krl BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            serials TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TRIGGER krls_append_only BEFORE UPDATE ON krls
        BEGIN SELECT RAISE(ABORT, 'revocation lists are append-only'); END""")


@migrations()
def m016_device_trust(db: Database) -> None:
    # What each device's sshd was last seen to trust: the CA (by fingerprint), whether the
    # plain enrolment key is gone, and the version of the revocation list it holds.
    db.execute("""
        CREATE TABLE device_trust (
            device_id INTEGER PRIMARY KEY REFERENCES devices(id),
            ca_fingerprint TEXT,
            principals TEXT,
            plain_keys INTEGER,
            krl_version INTEGER,
            updated_at TEXT NOT NULL
        )""")


@migrations()
def m017_device_judgement(db: Database) -> None:
    # Each device's compliance judgement, stored when its facts are recorded, so the
    # rollout's views need not judge the fleet again on every look. A row holds only while
    # what it was judged from still holds: the device's status, last seen and last contact
    # error as they were (compared when read), the policy it was judged against
    # (`policy_key`, compared with the device's policy now), no later instant at which the
    # passing of time alone changes it (`valid_until`), and the facts it read: any write
    # to them deletes the row (the triggers below), whoever writes.
    db.execute("""
        CREATE TABLE device_judgements (
            device_id INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
            policy_key TEXT NOT NULL,
            status TEXT NOT NULL,
            last_seen TEXT,
            last_contact_error TEXT,
            compliant INTEGER NOT NULL,
            reasons TEXT NOT NULL,
            valid_until TEXT,
            judged_at TEXT NOT NULL
        )""")
    for event, row in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD")):
        db.execute(f"""
            CREATE TRIGGER device_facts_{event.lower()}_unjudge AFTER {event} ON device_facts
            BEGIN DELETE FROM device_judgements WHERE device_id = {row}.device_id; END""")


def _progress_of(who: str) -> str:
    """The statements that recompute one person's row (`who`: an SQL expression)."""
    return (f"DELETE FROM rollout_progress WHERE officer_id = {who};"
            f" INSERT INTO rollout_progress ({PROGRESS_COLUMNS}) {PROGRESS_SELECT}"
            f" WHERE o.officer_id = {who};")


@migrations()
def m018_rollout_progress(db: Database) -> None:
    # Each person's progress through the rollout's funnel — in any group (the plan's
    # hand-picked cohorts and the policy's group layers), holding a device (allocated),
    # enrolled, provisioned, trained, handed over, the held device's latest provisioning
    # step failed, the day of the handover — with the roster columns the plan's cohorts
    # filter on, so `rollout status` counts with GROUP BY instead of reading every person,
    # assignment, device, training and handover. Kept by the triggers below, whoever
    # writes: each recomputes the person a change touches from the base tables.
    db.execute("""
        CREATE TABLE rollout_progress (
            officer_id TEXT PRIMARY KEY,
            area TEXT,
            district TEXT,
            station TEXT,
            team TEXT,
            worker_type TEXT,
            rank TEXT,
            eligible INTEGER NOT NULL,
            grouped INTEGER NOT NULL,
            device_id INTEGER,
            allocated INTEGER NOT NULL,
            enrolled INTEGER NOT NULL,
            provisioned INTEGER NOT NULL,
            trained INTEGER NOT NULL,
            handed_over INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            handed_on TEXT
        )""")
    db.execute(f"INSERT INTO rollout_progress ({PROGRESS_COLUMNS}) {PROGRESS_SELECT}")
    db.execute(PROGRESS_INDEX)
    holder = ("(SELECT officer_id FROM assignments WHERE device_id = {}.{}"
              " AND closed_at IS NULL)")
    by_assignment = "(SELECT officer_id FROM assignments WHERE id = {}.assignment_id)"
    roster = ("officer_id, area, district, station, team, worker_type, rank, status,"
              " device_eligible, pnb_required")
    db.execute(f"""
        CREATE TRIGGER officers_progress_insert AFTER INSERT ON officers
        BEGIN {_progress_of('NEW.officer_id')} END""")
    db.execute(f"""
        CREATE TRIGGER officers_progress_update AFTER UPDATE OF {roster} ON officers
        BEGIN DELETE FROM rollout_progress WHERE officer_id = OLD.officer_id;
        {_progress_of('NEW.officer_id')} END""")
    db.execute("""
        CREATE TRIGGER officers_progress_delete AFTER DELETE ON officers
        BEGIN DELETE FROM rollout_progress WHERE officer_id = OLD.officer_id; END""")
    for table, who in (("assignments", "{}.officer_id"), ("training", "{}.officer_id"),
                       ("group_members", "{}.officer_id"),
                       ("provision_steps", holder.format("{}", "device_id")),
                       ("handovers", by_assignment)):
        db.execute(f"""
            CREATE TRIGGER {table}_progress_insert AFTER INSERT ON {table}
            BEGIN {_progress_of(who.format('NEW'))} END""")
        db.execute(f"""
            CREATE TRIGGER {table}_progress_update AFTER UPDATE ON {table}
            BEGIN {_progress_of(who.format('OLD'))} {_progress_of(who.format('NEW'))} END""")
        db.execute(f"""
            CREATE TRIGGER {table}_progress_delete AFTER DELETE ON {table}
            BEGIN {_progress_of(who.format('OLD'))} END""")
    db.execute(f"""
        CREATE TRIGGER devices_progress_status AFTER UPDATE OF status ON devices
        BEGIN {_progress_of(holder.format('NEW', 'id'))} END""")


# The held device's serial and stored judgement as it bears on the rollout's gate: its
# policy key, answer and time limit, kept only while the judgement's status (quarantined
# or not), last seen and last contact error are the device's (else all three NULL).
_JUDGED_COLUMNS = "serial, judged_key, judged_compliant, judged_until"
_JUDGED_SELECT = """
    SELECT d.serial, j.policy_key, j.compliant, j.valid_until
    FROM devices d LEFT JOIN device_judgements j ON j.device_id = d.id
      AND (CASE WHEN j.status = 'quarantined' THEN 1 ELSE 0 END)
        = (CASE WHEN d.status = 'quarantined' THEN 1 ELSE 0 END)
      AND j.last_seen IS d.last_seen AND j.last_contact_error IS d.last_contact_error
    WHERE d.id = rollout_progress.device_id"""


def _judged_of(where: str) -> str:
    """The statement that recomputes the judgement columns of the rows `where` picks."""
    return (f"UPDATE rollout_progress SET ({_JUDGED_COLUMNS}) = ({_JUDGED_SELECT})"
            f" WHERE {where};")


@migrations()
def m019_progress_judgement(db: Database) -> None:
    # Each person's held device's serial (a policy layer may name it) and its stored
    # judgement where it still matches the device (_JUDGED_SELECT), so the rollout's gate
    # groups the open waves' devices from rollout_progress alone; only whether the
    # judgement's time has passed is left to the reader. Kept by the triggers below,
    # whoever writes: a recomputed person's row (m018's triggers) fills them as it is
    # inserted; a judgement written or deleted, and a device's serial, status, last seen or
    # last contact error changed, recompute the rows holding that device.
    for column in ("serial TEXT", "judged_key TEXT", "judged_compliant INTEGER",
                   "judged_until TEXT"):
        db.execute(f"ALTER TABLE rollout_progress ADD COLUMN {column}")
    db.execute(_judged_of("device_id IS NOT NULL"))
    db.execute("CREATE INDEX rollout_progress_device ON rollout_progress (device_id)")
    db.execute(JUDGED_INDEX)
    db.execute(f"""
        CREATE TRIGGER rollout_progress_judged AFTER INSERT ON rollout_progress
        WHEN NEW.device_id IS NOT NULL
        BEGIN {_judged_of('officer_id = NEW.officer_id')} END""")
    for event, devices in (("INSERT", "NEW.device_id"),
                           ("UPDATE", "OLD.device_id, NEW.device_id"),
                           ("DELETE", "OLD.device_id")):
        db.execute(f"""
            CREATE TRIGGER device_judgements_progress_{event.lower()}
            AFTER {event} ON device_judgements
            BEGIN {_judged_of(f'device_id IN ({devices})')} END""")
    db.execute(f"""
        CREATE TRIGGER devices_progress_judged
        AFTER UPDATE OF serial, status, last_seen, last_contact_error ON devices
        BEGIN {_judged_of('device_id = NEW.id')} END""")


def _rejudged_of(where: str) -> str:
    """As _judged_of, but writing only the rows whose judged columns change."""
    return (f"UPDATE rollout_progress SET ({_JUDGED_COLUMNS}) = ({_JUDGED_SELECT})"
            f" WHERE {where} AND ({_JUDGED_COLUMNS}) IS NOT ({_JUDGED_SELECT});")


@migrations()
def m020_progress_triggers_lean(db: Database) -> None:
    # m018's and m019's triggers, doing only the work that can change a row: a roster
    # update recomputes the person only when a column their row reads changed (a
    # re-import sets every column of a person whose e-mail alone changed); a device's
    # update recomputes its holder's judged columns only when the device's serial,
    # quarantine, last seen or last contact error changed (a push records each device's
    # contact and policy: only its last seen matters) and the device has a stored
    # judgement or a new serial (else those columns are its serial and nothing else,
    # before and after); a judgement's update only when a column they read changed (not
    # its reasons or when it was judged); and a row is rewritten (with its gate index
    # entry) only when its judged columns differ, not with the same values.
    roster = ", ".join(PROGRESS_ROSTER)
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in PROGRESS_ROSTER)
    db.execute("DROP TRIGGER officers_progress_update")
    db.execute(f"""
        CREATE TRIGGER officers_progress_update AFTER UPDATE OF {roster} ON officers
        WHEN {changed}
        BEGIN DELETE FROM rollout_progress WHERE officer_id = OLD.officer_id;
        {_progress_of('NEW.officer_id')} END""")
    db.execute("DROP TRIGGER devices_progress_judged")
    db.execute(f"""
        CREATE TRIGGER devices_progress_judged
        AFTER UPDATE OF {judged_columns('devices')} ON devices
        WHEN ({judged_reads_changed('devices', 'IS NOT')}) AND (OLD.serial IS NOT NEW.serial
          OR EXISTS (SELECT 1 FROM device_judgements WHERE device_id = NEW.id))
        BEGIN {_rejudged_of('device_id = NEW.id')} END""")
    for event, devices in (("INSERT", "NEW.device_id"),
                           ("UPDATE", "OLD.device_id, NEW.device_id"),
                           ("DELETE", "OLD.device_id")):
        name = f"device_judgements_progress_{event.lower()}"
        when = (f" OF {judged_columns('device_judgements')} ON device_judgements WHEN"
                f" {judged_reads_changed('device_judgements', 'IS NOT')}"
                if event == "UPDATE" else " ON device_judgements")
        db.execute(f"DROP TRIGGER {name}")
        db.execute(f"""
            CREATE TRIGGER {name} AFTER {event}{when}
            BEGIN {_rejudged_of(f'device_id IN ({devices})')} END""")


@migrations()
def m021_progress_per_statement(db: Database) -> None:
    # PostgreSQL's m021 computes the progress rows of people added to the roster, and of
    # the holders of assignments opened, once per statement (its new rows as a transition
    # table) instead of once per row. SQLite has no statement-level triggers: its per-row
    # triggers (m018) stay, and keep the same rows. Nothing changes here; the migration
    # keeps the two engines' lists alike.
    del db
