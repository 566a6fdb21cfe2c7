#!/usr/bin/env bash
# Set up (if needed) and run the demo end to end on a fresh demo inventory and a lab of
# real sshd devices on loopback (all under inventory/demo/; your real inventory,
# inventory/mdm.db, and your own key are not touched). The lab is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DEMO=inventory/demo
export MDM_DB=$DEMO/mdm.db
export MDM_OPERATOR=demo-admin
export MDM_KEY=$DEMO/operator_ed25519
export MDM_LAB=$DEMO/lab
export COLUMNS=${COLUMNS:-120}
mdm() { .venv/bin/mdm "$@"; }
[ -f "$MDM_LAB/lab.json" ] && mdm lab down >/dev/null
rm -rf "$DEMO"; mkdir -p "$DEMO"
trap 'mdm lab down >/dev/null 2>&1 || true' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# A long table's head (its header and first rows) and its last rows, with the count between.
ends() {
  local f n; f=$(mktemp); cat > "$f"; n=$(wc -l < "$f")
  if [ "$n" -le 10 ]; then cat "$f"; else head -n 5 "$f"; echo "   … $((n - 8)) more lines …"; tail -n 3 "$f"; fi
  rm -f "$f"
}
EX=inventory/examples

step "Project settings: mdm.toml names the AMAPI enterprise and the pilot's Play track"
# Example values for the demo: a real force uses its own enterprise id and track ids.
mdm init $DEMO --enterprise-id LC04demo2015 --track pilot=4697324522958512346
export MDM_CONFIG=$DEMO/mdm.toml   # the demo's folder is not above this one, so name it
cp -r playbooks/policies $DEMO/policies   # the demo edits its own copy of the policy layers
export MDM_POLICIES=$DEMO/policies
mdm config show

step "Register operators (the first becomes admin)"
mdm operators add demo-admin
mdm operators add rm.jones --role rollout
mdm operators add it.patel --role it
mdm operators add hd.smith --role helpdesk

step "Rollout manager imports the HR roster (1,480 people)"
mdm --operator rm.jones officers import $EX/roster.csv

step "IT staff import the supplier's delivery manifest"
mdm --operator it.patel enrol import $EX/manifest-PO-2015-00417.csv

step "Allocate devices to the 55 pilot officers: one file, all pairs or none, one audit row"
mdm --operator rm.jones assign --from $EX/pilot-allocation.csv --reason "pilot group"
mdm devices list --limit 5

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

step "IT staff: an operator key, and a lab of 16 real sshd devices on 127.0.1.x"
mdm keys init
mdm lab up 16   # 12 are enrolled over SSH below; 4 go to a provisioning station at the end
mdm lab status

step "The lab's delivery arrives: import its manifest"
mdm lab manifest -o $DEMO/lab-delivery.csv
mdm --operator it.patel enrol import $DEMO/lab-delivery.csv

step "Enrol all 12 over SSH, host keys confirmed against the supplier's list"
mdm lab addresses --host-keys | head -n 13 > $DEMO/enrol-plan.csv
lab_serial() { sed -n "$(( $1 + 2 ))p" $DEMO/enrol-plan.csv | cut -d, -f1; }
mdm lab fault "$(lab_serial 4)" identity    # a different phone answers at that address
mdm lab fault "$(lab_serial 9)" offline     # switched off in a drawer
mdm --operator it.patel enrol devices --from $DEMO/enrol-plan.csv \
  || echo "(exit $?: two devices refused and named above; the other ten are enrolled)"

step "The drawer phone is switched on; enrol it again (the others are skipped)"
mdm lab fault "$(lab_serial 9)" offline --clear
mdm --operator it.patel enrol devices --from $DEMO/enrol-plan.csv || true

step "Gather facts from the fleet; one phone now answers with another host key"
mdm --operator it.patel devices refresh station=Kendall \
  || echo "(exit $?: a selector that matches no device is refused, never a run over none)"
mdm lab fault "$(lab_serial 2)" swapped
mdm --operator it.patel devices refresh \
  || echo "(exit $?: the swapped phone is refused and quarantined, the rest recorded)"
mdm devices show "$(lab_serial 2)"

step "Rollout: the pilot group, and lab devices allocated to officers of differing roles"
mdm --operator rm.jones groups create pilot --description "first users, mixed ranks and roles"
mdm --operator rm.jones groups add pilot --from $EX/pilot-allocation.csv
pick() {  # officers of a worker type who hold no device yet (not pilot, not the swap above)
  awk -F, -v kind="$1" -v n="$2" -v swapped="$second_officer" 'NR==FNR { skip[$2]=1; next }
    FNR>1 && !($1 in skip) && $1 != swapped && $8==kind && $16=="true" { print $1; if (++c >= n) exit }' \
    $EX/pilot-allocation.csv $EX/roster.csv
}
{ pick OFFICER 5; pick PCSO 2; pick SPECIAL 2; pick STAFF 1; } > $DEMO/lab-holders.txt
tail -n +2 $DEMO/enrol-plan.csv | cut -d, -f1 | grep -v -e "$(lab_serial 4)" -e "$(lab_serial 2)" \
  | paste -d' ' - $DEMO/lab-holders.txt | while read -r serial officer; do
  [ -n "$officer" ] && mdm --operator rm.jones assign "$serial" "$officer" --reason "wave 1 issue" >/dev/null
done
mdm devices find Hodgson || true

step "Security policy as code: validate the force's layers, see one device's effective policy"
mdm policy validate
pcso_device=$(mdm devices find "$(pick PCSO 1)" --json | grep '"serial"' | cut -d'"' -f4)
mdm policy show --device "$pcso_device"
mdm policy compile --device "$pcso_device" > $DEMO/pcso-policy.json
sed -n '1,25p' $DEMO/pcso-policy.json
grep '"name"' $DEMO/pcso-policy.json   # enterprises/{id}/policies/{layers}

step "Push: the plan first (--check changes nothing), then for real, then again (no-op)"
mdm --operator it.patel policy push --check
mdm --operator it.patel policy push
mdm --operator it.patel policy push

step "A Special's lock changes in the YAML: see what it would change (each distinct change once)"
printf '  lock:\n    auto_lock_seconds: 90\n' >> $DEMO/policies/11-special.yaml
mdm policy diff
mdm --operator it.patel policy push status=enrolled

step "Compliance: one phone loses its encryption; the report names it (exit 1), changes nothing"
mdm lab fault "$(lab_serial 6)" unencrypted
mdm --operator it.patel devices refresh || true
mdm compliance report || echo "(exit $?: the devices that are not compliant are named above)"
mdm policy history "$(lab_serial 6)"

step "Provision: compliant enrolled devices move to provisioned; the unencrypted phone is named"
mdm --operator it.patel devices provision --check \
  || echo "(exit $?: --check changed nothing; one device would stay enrolled)"
mdm --operator it.patel devices provision \
  || echo "(exit $?: the others are provisioned; the unencrypted phone stays enrolled)"
mdm devices list status=provisioned

step "App builds: real signed APKs (made here with aapt and apksigner), read from the file itself"
bash scripts/make-apks.sh $DEMO/apks
EN=uk.police.cumbria.enotebook
mdm --operator it.patel apps add $DEMO/apks/enotebook-10500.apk --notes "1.5.0"
mdm --operator it.patel apps add $DEMO/apks/enotebook-10600.apk --notes "1.6.0: offline sync"
mdm --operator it.patel apps add $DEMO/apks/zip-bomb.apk \
  || echo "(exit $?: a zip bomb named .apk is refused before it is inflated; nothing stored)"
mdm apps list
mdm --operator it.patel apps release $EN 10500 --channel stable
mdm --operator it.patel apps push

step "A new build goes to the pilot first (one lab phone's officer joins the pilot group)"
mdm --operator rm.jones groups add pilot "$(head -n 1 $DEMO/lab-holders.txt)"
mdm --operator it.patel apps release $EN 10600 --channel pilot --check
mdm --operator it.patel apps release $EN 10600 --channel pilot
mdm --operator it.patel apps push
mdm apps status $EN --by channel

step "Widened to everyone (stable), then found bad: rolled back, the devices downgraded"
mdm --operator it.patel apps release $EN 10600 --channel stable
mdm --operator it.patel apps push
mdm --operator it.patel apps rollback $EN --channel stable --reason "1.6.0 loses drafts on lock"
mdm apps show $EN
mdm audit log --subject "app:$EN"
mdm --operator it.patel policy push   # the compiled minimumVersionCode follows the releases

step "A provisioning station: four more phones of the delivery on a USB hub, driven with adb"
mdm lab station up hq-bench        # a bench machine: its own sshd and host key, and adb
bench_serials=$(mdm lab status --json | grep '"serial"' | cut -d'"' -f4 | tail -n 4)
for serial in $bench_serials; do mdm lab plug "$serial" --station hq-bench; done
refuser=$(echo "$bench_serials" | sed -n 3p)
mdm lab fault "$refuser" unauthorized   # nobody accepted the USB debugging prompt on it
mdm lab station status --json > $DEMO/station.json
mdm --operator it.patel stations add hq-bench \
  --address "$(grep '"address"' $DEMO/station.json | cut -d'"' -f4)" \
  --host-key "$(grep '"fingerprint"' $DEMO/station.json | cut -d'"' -f4)"
mdm stations scan hq-bench
mdm --operator it.patel enrol station hq-bench \
  || echo "(exit $?: the unauthorised phone is named; the other three are enrolled)"
mdm lab fault "$refuser" unauthorized --clear   # the prompt is accepted, 'Always allow'
mdm --operator it.patel enrol station hq-bench
mdm --operator it.patel devices refresh $bench_serials
mdm --operator it.patel policy push $bench_serials   # at the bench: USB debugging stays on
# Before a phone leaves the bench: its field route (it must answer there with its key),
# then the field policy, which switches USB debugging off; the station no longer sees it.
leaver=$(echo "$bench_serials" | sed -n 1p)
mdm lab unplug "$leaver"
field=$(mdm lab addresses --host-keys | grep "^$leaver,")
mdm --operator it.patel stations route "$leaver" --direct "$(echo "$field" | cut -d, -f2)" \
  --host-key "$(echo "$field" | cut -d, -f3)" --reason "issued to the field"
mdm --operator it.patel policy push "$leaver"
mdm stations list

step "Rollout: the lab's holders join the pilot; the plan is checked against the roster"
cp playbooks/rollout.yaml playbooks/provision.yaml $DEMO/   # beside the demo's policies
mdm --operator rm.jones groups add pilot $(cat $DEMO/lab-holders.txt)
mdm lab fault "$(lab_serial 6)" unencrypted --clear   # the phone from step 14 is fixed
mdm --operator it.patel policy push group=pilot   # the pilot layer now applies to them
mdm --operator it.patel devices refresh group=pilot
mdm rollout validate                 # playbooks/rollout.yaml: pilot, north, west, south, HQ+staff
mdm rollout pilot-select --size 55 --stratify rank,worker_type,area --seed 30 | tail -n 8
echo "(a proposal only: this pilot group was filled from its list; on an empty group --apply fills it)"
mdm --operator rm.jones rollout advance pilot

step "Provision the pilot's lab phone that lost its encryption, now fixed: every step recorded"
mdm --operator it.patel provision "$(lab_serial 6)" --check   # its window: its holder's rota
# At the bench the phone is not with its holder: if the holder is on shift now, this is
# recorded in the audit log as a window ignored, with the reason.
mdm --operator it.patel provision "$(lab_serial 6)" --ignore-window \
  --reason "at the IT bench today, not with its holder"

step "Train the pilot (1 trainer : 6, off-shift), then hand devices over"
mdm training plan --wave pilot | tail -n 6
{ echo "officer,date,trainer,session"; head -n 9 $DEMO/lab-holders.txt \
    | sed 's/$/,2015-03-31,T. Hodgson,pilot-1/'; } > $DEMO/trained.csv
mdm --operator rm.jones training import $DEMO/trained.csv
tail -n +2 $DEMO/enrol-plan.csv | cut -d, -f1 | grep -v -e "$(lab_serial 4)" -e "$(lab_serial 2)" \
  | paste -d' ' - $DEMO/lab-holders.txt | while read -r serial officer; do
  [ -n "$officer" ] && { mdm --operator rm.jones handover "$serial" --officer "$officer" \
    || echo "(exit $?: refused, each unmet condition named)"; }
done

step "The pilot's voice: a blocker holds the next wave back; the gate is overridden, audited"
mdm --operator rm.jones feedback add --officer "$(sed -n 1p $DEMO/lab-holders.txt)" \
  --severity blocker --text "notebook app loses the last entry after a reboot"
mdm --operator rm.jones feedback add --officer "$(sed -n 2p $DEMO/lab-holders.txt)" \
  --severity minor --text "saves me a trip back to the station" --minutes-saved 40
mdm --operator rm.jones rollout advance north \
  || echo "(exit $?: the pilot's gate does not hold; every unmet condition is named)"
mdm --operator rm.jones feedback resolve 1 --note "fixed in build 1.4.3"
mdm rollout advance north --override --reason "Chief Constable: go live 27 April as planned"
mdm rollout status --wave pilot --by area
mdm rollout report -o $DEMO/rollout-report.html
if command -v chromium >/dev/null; then   # open it as a reader would, headless
  profile=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-sync \
    --disable-quic --disable-background-networking --disable-component-update \
    --user-data-dir="$profile" --screenshot=$DEMO/rollout-report.png \
    --window-size=1200,1600 "file://$PWD/$DEMO/rollout-report.html" 2>/dev/null \
    && echo "opened in headless Chromium: $DEMO/rollout-report.png"
  rm -rf "$profile"
fi

step "Helpdesk: a phone is stolen while switched off; lock now, wipe once a second operator approves"
mdm operators add hd.jones --role helpdesk
provisioned=$(mdm devices list status=provisioned --json | grep '"serial"' | cut -d'"' -f4)
stolen=$(echo "$provisioned" | sed -n 1p); lost=$(echo "$provisioned" | sed -n 2p)
holder_of() { mdm devices show "$1" --json | grep -m1 '"officer_id"' | cut -d'"' -f4; }
mdm lab notebook "$stolen" --unsynced 3     # three e-notebook entries not yet synced
mdm --operator it.patel devices refresh "$stolen"
mdm lab fault "$stolen" offline             # the thief switches it off
mdm --operator hd.smith lost "$stolen" --stolen --reported-by "$(holder_of "$stolen")" \
  --where "Kendal bus station" --crime-ref CR/0412/26
mdm --operator it.patel queue run           # the phone is off: its lock and wipe wait
mdm incidents --open
mdm --operator hd.smith incidents approve-wipe 1 \
  || echo "(exit $?: whoever asked for a wipe cannot approve it)"
mdm --operator hd.jones incidents approve-wipe 1
mdm lab fault "$stolen" offline --clear     # switched on again
mdm --operator it.patel queue run           # locked, then wiped (a factory reset: a new host key)
mdm lab commands "$stolen"                  # the DPC's own record: each command id, once
mdm queue list "$stolen"

step "Helpdesk: a phone is lost, then handed in before its wipe is due"
mdm --operator hd.smith lost "$lost" --lost --reported-by "$(holder_of "$lost")" \
  --where "Penrith station car park"
mdm --operator it.patel queue run           # locked at once; the wipe waits 24 h (and approval)
mdm --operator hd.smith recovered "$lost" --note "handed in at Penrith front desk"
mdm incidents

step "Admin: the force's SSH user CA; two operators log in for a shift, each with their own key"
# The demo keeps the CA key in its own folder; a force keeps it outside the project
# (default ~/.config/mdm/ca) and types the passphrase at the prompt.
export MDM_CA_DIR=$DEMO/ca-key MDM_CA_PASSPHRASE=demo-only-passphrase
mdm ca init
mdm ca show
for who in it.patel hd.smith; do
  MDM_KEY=$DEMO/$who/id_ed25519 mdm --operator "$who" keys init
  MDM_KEY=$DEMO/$who/id_ed25519 mdm --operator "$who" login
done
mdm ca certificates
mdm --operator nobody login || echo "(exit $?: only registered operators with a role get one)"

step "Devices trust the CA, not a shared key: the plain enrolment key goes; the device holds each role"
mdm login                                     # demo-admin: a certificate beside the enrolment key
mdm ca rollout --check | ends        # per device: trust to install, plain key to remove
mdm ca station hq-bench                # the bench's sshd checks certificates too
mdm ca rollout \
  || echo "(exit $?: a device that did not answer keeps its plain key and gets the CA when back)"
mdm ca status | ends
# What a device itself lets a certificate do, asked with OpenSSH's own client (as anyone
# holding the key and its certificate could), its host key pinned from the lab.
device_ssh() {
  local key=$1 serial=$2; shift 2
  mdm lab status --json | .venv/bin/python -c 'import json, sys
r = next(d for d in json.load(sys.stdin) if d["serial"] == sys.argv[1])
host, port = r["address"].rsplit(":", 1)
print("[" + host + "]:" + port, r["host_key"])' "$serial" > $DEMO/known_hosts
  local address; address=$(grep -o '^\[[^]]*\]:[0-9]*' $DEMO/known_hosts)
  local host=${address%%]*}; host=${host#[}
  ssh -F none -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile=$DEMO/known_hosts -p "${address##*:}" "$host" "$@"
}
target=$(mdm devices list status=provisioned --json | grep '"serial"' | cut -d'"' -f4 | tail -n 1)
HD=$DEMO/hd.smith/id_ed25519 IT=$DEMO/it.patel/id_ed25519
# A helpdesk certificate runs exactly the commands mdm sends for its role: a lock, as
# mdm words it (under the device's timeout, with the command's id), is carried out ...
lock_id=$(.venv/bin/python -c 'import uuid; print(uuid.uuid4().hex)')
device_ssh $HD "$target" "timeout -k 1 31 sh -c 'am broadcast -a uk.police.mdm.action.LOCK -n uk.police.mdm.dpc/.PolicyReceiver --es uk.police.mdm.extra.COMMAND_ID $lock_id'"
# ... a policy, or any command written by hand, is refused by the device.
device_ssh $HD "$target" "am broadcast -a uk.police.mdm.action.APPLY_POLICY -n uk.police.mdm.dpc/.PolicyReceiver" \
  || echo "(exit $?: the device refuses a helpdesk certificate a policy, whoever holds it)"
device_ssh $HD "$target" 'echo "restrict,command=\"\$HOME/bin/mdm-shell --principal mdm-admin\" mdm-helpdesk" > etc/auth_princ""ipals' \
  || echo "(exit $?: nor may it rewrite whom the device lets in: only mdm's own commands)"
MDM_KEY=$IT mdm --operator it.patel devices refresh "$target"
grep -o 'by mdm:[^	]*' "$MDM_LAB/devices/$target/log/commands" | sort | uniq -c   # its own log

step "A leaver: no more certificates, and the ones issued revoked on every device"
mdm operators remove it.patel --reason "left the IT team"
mdm ca revoke it.patel --reason "left the IT team"
mdm ca krl                             # the revocation list, queued to every device
mdm queue run
mdm ca status | ends
device_ssh $IT "$target" getprop ro.serialno \
  || echo "(exit $?: the device refuses the leaver's certificate: it holds the list)"

step "Prove the audit chain, and take a checkpoint to keep outside the inventory"
mdm audit verify
mdm audit checkpoint
mdm audit checkpoint --sign "$MDM_KEY" -o $DEMO/checkpoint.txt  # signed: anyone can check it
mdm audit verify --checkpoint $DEMO/checkpoint.txt --signer "$MDM_KEY.pub"
