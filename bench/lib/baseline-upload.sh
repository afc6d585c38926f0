#!/usr/bin/env bash
# Upload-only baseline: already compressed files (the layers comms spooled) pushed with
# sha256sum + curl POST/PUT (monolithic, curl -T streams from disk), PARALLEL at once.
# Usage: baseline-upload.sh REGISTRY_URL REPO PARALLEL FILE...
set -euo pipefail
reg=$1 repo=$2 par=$3
shift 3
export reg repo
put_one() {
  set -euo pipefail
  local z=$1 d loc sep
  d=sha256:$(sha256sum "$z" | cut -c1-64)
  loc=$(curl -fsS -X POST -D - -o /dev/null "$reg/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  case "$loc" in http*) ;; *) loc=$reg$loc ;; esac
  case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$z" "$loc${sep}digest=$d" -o /dev/null
}
export -f put_one
printf '%s\n' "$@" | xargs -P "$par" -n 1 bash -c 'put_one "$1"' _
