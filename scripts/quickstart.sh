#!/usr/bin/env bash
# The main job on the embedded default (no server): a key pair, a signed message into an OCI
# image-layout mailbox, received (verified first) into an inbox, then the thread.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=quickstart
comms() { node bin/comms.js "$@"; }
mkdir -p "$dir"
[ -f "$dir/alice.key" ] || comms keygen --out "$dir/alice"
comms send --repo "oci:$dir/mailbox" --recipient bob --sender alice --key "$dir/alice.key" \
  --message "hello bob, this came through an OCI image layout ($(date -u +%FT%TZ))"
comms recv --repo "oci:$dir/mailbox" --me bob --out "$dir/inbox" --trusted-key "$dir/alice.pub" --write-receipt --no-sign
echo "--- the inbox:"
ls -l "$dir/inbox"
