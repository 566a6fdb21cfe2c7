#!/usr/bin/env bash
# Set up (if needed) and run the demo end to end on a fresh demo inventory
# (inventory/demo.db; your real inventory, inventory/mdm.db, is not touched).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export MDM_DB=inventory/demo.db
export MDM_OPERATOR=demo-admin
export COLUMNS=${COLUMNS:-120}
rm -f inventory/demo.db inventory/demo.db-wal inventory/demo.db-shm
mdm() { .venv/bin/mdm "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
EX=inventory/examples

step "Register operators (the first becomes admin)"
mdm operators add demo-admin
mdm operators add rm.jones --role rollout
mdm operators add it.patel --role it
mdm operators add hd.smith --role helpdesk

step "Rollout manager imports the HR roster (1,480 people)"
mdm --operator rm.jones officers import $EX/roster.csv

step "IT staff import the supplier's delivery manifest"
mdm --operator it.patel enrol import $EX/manifest-PO-2015-00417.csv

step "Allocate devices to the 55 pilot officers"
tail -n +2 $EX/pilot-allocation.csv | tr -d '\r' | while IFS=, read -r serial officer; do
  mdm --operator rm.jones assign "$serial" "$officer" --reason "pilot group" 2>/dev/null
done
echo "pilot allocated: $(mdm devices export --format json | grep -c '"holder_id": "')"

first=$(sed -n 2p $EX/pilot-allocation.csv | cut -d, -f1)
second_officer=$(sed -n 2p $EX/roster.csv | cut -d, -f1)
step "Helpdesk: the officer holding $first reports a cracked screen; reassign it"
mdm --operator hd.smith reassign "$first" "$second_officer" --reason "cracked screen: swapped"
mdm --operator hd.smith devices show "$first"

step "Who held $first a moment ago, and now?"
mdm custody "$first" --at now

step "Bad input changes nothing: a manifest with a spreadsheet-damaged IMEI"
bad=$(mktemp)
printf 'serial_number,manufacturer,model,imei1\nR58F4BAD0001,samsung,SM-N910F,3.52549E+14\n' >"$bad"
mdm --operator it.patel enrol import "$bad" || echo "(exit $? as expected: nothing imported)"
rm -f "$bad"

step "Prove the audit chain, and take a checkpoint to keep outside the inventory"
mdm audit verify
mdm audit checkpoint
