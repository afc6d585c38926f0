#!/usr/bin/env bash
# The curl side of the serve-throughput benchmark: push (POST + monolithic PUT, curl -T streams
# the file) or pull (GET into /dev/null, curl -Z with PARALLEL transfers in one process) every
# blob listed in LIST (lines "path digest"), PARALLEL at once.
# Usage: curl-blobs.sh push|pull REGISTRY_URL REPO PARALLEL LIST
set -euo pipefail
mode=$1 reg=$2 repo=$3 par=$4 list=$5
export reg repo
if [ "$mode" = push ]; then
  put_one() {
    set -euo pipefail
    local f=$1 d=$2 loc sep
    loc=$(curl -fsS -X POST -D - -o /dev/null "$reg/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
    case "$loc" in http*) ;; *) loc=$reg$loc ;; esac
    case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -fsS -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$f" "$loc${sep}digest=$d" -o /dev/null
  }
  export -f put_one
  xargs -P "$par" -n 2 bash -c 'put_one "$1" "$2"' _ < "$list"
else
  cfg=$(mktemp)
  trap 'rm -f "$cfg"' EXIT
  while read -r _ d; do printf 'url = "%s/v2/%s/blobs/%s"\noutput = "/dev/null"\n' "$reg" "$repo" "$d"; done < "$list" > "$cfg"
  curl -fsS -Z --parallel-max "$par" -K "$cfg"
fi
