#!/usr/bin/env bash
# The main job on the embedded default (no server): a key pair, a signed message into an OCI
# image-layout mailbox, received (verified first) into an inbox with a receipt, then the thread.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=quickstart
comms() { node bin/comms.js "$@"; }
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }
mkdir -p "$dir"
[ -f "$dir/alice.key" ] || comms keygen --out "$dir/alice"
echo "--- alice sends bob a signed message through oci:$dir/mailbox"
digest=$(comms send --repo "oci:$dir/mailbox" --recipient bob --sender alice --key "$dir/alice.key" --json \
  --message "hello bob, this came through an OCI image layout ($(date -u +%FT%TZ))" | field digest)
echo "$digest"
echo "--- bob receives it (signature verified against alice.pub first) and writes a receipt"
comms recv --repo "oci:$dir/mailbox" --me bob --out "$dir/inbox" --trusted-key "$dir/alice.pub" --write-receipt --no-sign
echo "--- the thread of that message"
comms thread --repo "oci:$dir/mailbox" "$digest"
echo "--- bob's inbox: $dir/inbox"
ls -l "$dir/inbox"
