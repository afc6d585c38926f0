#!/usr/bin/env bash
# The curl side of the tag-push workload of the serve-throughput benchmark: PUTs every manifest
# listed in LIST (lines "path tag") under its tag, from ONE curl process (keep-alive connections),
# PARALLEL at once (curl -Z); 1 means one after the other.
# Usage: curl-tags.sh REGISTRY_URL REPO PARALLEL LIST
set -euo pipefail
reg=$1 repo=$2 par=$3 list=$4
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
while read -r f t; do printf 'url = "%s/v2/%s/manifests/%s"\nupload-file = "%s"\noutput = "/dev/null"\n' "$reg" "$repo" "$t" "$f"; done < "$list" > "$cfg"
if [ "$par" -gt 1 ]; then
  curl -fsS -X PUT -H 'Expect:' -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --no-progress-meter -Z --parallel-max "$par" -K "$cfg"
else
  curl -fsS -X PUT -H 'Expect:' -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' -K "$cfg"
fi
