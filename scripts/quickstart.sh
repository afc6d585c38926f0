#!/usr/bin/env bash
# The main job on the embedded default (no server): key pairs for alice and bob, a trust file that
# binds each name to its key, a signed message into an OCI image-layout mailbox, received (verified
# as alice first) into bob's inbox with a receipt signed by bob, then the thread with every node's
# verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=quickstart
comms() { node bin/comms.js "$@"; }
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }
mkdir -p "$dir"
trust="$dir/trust"
for who in alice bob; do
  [ -f "$dir/$who.key" ] || comms keygen --out "$dir/$who"
done
echo "--- a trust file binding each name to its public key"
rm -f "$trust"
comms trust add alice "$dir/alice.pub" --trust "$trust"
comms trust add bob "$dir/bob.pub" --trust "$trust"
echo "--- alice sends bob a signed message through oci:$dir/mailbox"
digest=$(comms send --repo "oci:$dir/mailbox" --recipient bob --sender alice --key "$dir/alice.key" --json \
  --message "hello bob, this came through an OCI image layout ($(date -u +%FT%TZ))" | field digest)
echo "$digest"
echo "--- bob receives it (verified as alice first) and writes a receipt signed with his key"
comms recv --repo "oci:$dir/mailbox" --me bob --out "$dir/inbox" --trust "$trust" --key "$dir/bob.key" --write-receipt
echo "--- the thread of that message, each node with its verdict"
comms thread --repo "oci:$dir/mailbox" --trust "$trust" "$digest"
echo "--- bob's inbox: $dir/inbox"
ls -l "$dir/inbox"
