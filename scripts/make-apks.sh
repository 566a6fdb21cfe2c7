#!/usr/bin/env bash
# Make real, signed APK files for the tests, the demo and the benchmark, with real tools:
# Debian's aapt packages a minimal manifest (against Android's framework resources),
# zipalign aligns it, apksigner signs it (v1, v2 and v3 schemes) with EC keys made by
# openssl. Also the bad inputs mdm must refuse: a zip that is no APK, a truncated APK, a
# zip bomb named .apk, an empty file and an unsigned APK.
#   usage: scripts/make-apks.sh OUT_DIR [BIG_MIB]   (BIG_MIB: also a BIG_MIB MiB build)
# bash scripts/setup.sh installs aapt, zipalign, apksigner and the framework resources.
set -euo pipefail
out=${1:?usage: make-apks.sh OUT_DIR [BIG_MIB]}
big=${2:-0}
FRAMEWORK=/usr/share/android-framework-res/framework-res.apk
for tool in aapt zipalign apksigner openssl python3; do
  command -v "$tool" >/dev/null || { echo "make-apks: $tool is missing (run bash scripts/setup.sh)" >&2; exit 1; }
done
[ -f "$FRAMEWORK" ] || { echo "make-apks: $FRAMEWORK is missing (run bash scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

key() {  # an EC P-256 signing key and its self-signed certificate
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 10000 \
    -subj "/O=Cumbria Constabulary/CN=$1" -keyout "$work/$1.pem" -out "$work/$1.crt" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$work/$1.pem" -outform DER -out "$work/$1.pk8"
}

unsigned() {  # NAME PACKAGE VERSION_CODE VERSION_NAME MIN_SDK [ASSET_MIB]
  local dir="$work/$1"
  mkdir -p "$dir/assets"
  cat > "$dir/AndroidManifest.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="$2" android:versionCode="$3" android:versionName="$4">
  <uses-sdk android:minSdkVersion="$5" android:targetSdkVersion="28"/>
  <application android:label="$2" android:hasCode="false"/>
</manifest>
XML
  local assets=()
  if [ "${6:-0}" -gt 0 ]; then  # incompressible padding, stored as an asset
    head -c "$(( $6 * 1024 * 1024 ))" /dev/urandom > "$dir/assets/padding.bin"
    assets=(-A "$dir/assets" -0 bin)
  fi
  aapt package -f -M "$dir/AndroidManifest.xml" -I "$FRAMEWORK" "${assets[@]}" -F "$dir/raw.apk"
  zipalign -f 4 "$dir/raw.apk" "$dir/aligned.apk"
}

signed() {  # NAME KEY OUT
  apksigner sign --key "$work/$2.pk8" --cert "$work/$2.crt" --out "$3" "$work/$1/aligned.apk"
  rm -f "$3.idsig"
}

key force-apps
key someone-else
unsigned v1 uk.police.cumbria.enotebook 10500 1.5.0 21
unsigned v2 uk.police.cumbria.enotebook 10600 1.6.0 21
unsigned v3 uk.police.cumbria.enotebook 10700 1.7.0 21
unsigned newsdk uk.police.cumbria.enotebook 10800 1.8.0 30
# apksigner starts a JVM each time: sign two at a time (the machine's cores).
signed v1 force-apps "$out/enotebook-10500.apk" & signed v2 force-apps "$out/enotebook-10600.apk"
wait
signed v3 someone-else "$out/enotebook-10700-other-signer.apk" &
signed newsdk force-apps "$out/enotebook-10800-sdk30.apk"
wait
# The same build signed again: ECDSA signatures differ each time, so other bytes.
signed v1 force-apps "$out/enotebook-10500-resigned.apk"
if [ "$big" -gt 0 ]; then
  unsigned big uk.police.cumbria.enotebook 20000 2.0.0 21 "$big"
  signed big force-apps "$out/enotebook-20000-big.apk"
fi
cp "$work/v1/aligned.apk" "$out/enotebook-unsigned.apk"
head -c 3000 "$out/enotebook-10500.apk" > "$out/truncated.apk"
: > "$out/empty.apk"
python3 - "$out" <<'PY'
import sys, zipfile
out = sys.argv[1]
with zipfile.ZipFile(f"{out}/not-an-apk.apk", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("README.txt", "a zip file, but no Android package in it\n")
# A zip bomb named like an APK: a manifest entry that inflates 1000-fold to 256 MiB.
with zipfile.ZipFile(f"{out}/zip-bomb.apk", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    with z.open("AndroidManifest.xml", "w", force_zip64=True) as entry:
        block = bytes(1 << 20)
        for _ in range(256):
            entry.write(block)
    z.writestr("classes.dex", b"dex\n035\0")
PY
echo "make-apks: APKs in $out" >&2
