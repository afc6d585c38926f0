#!/usr/bin/env bash
# Baseline for `comms send`: standard tools moving the same bytes to the same registry.
#   split the file into CHUNK-byte pieces; for each piece, with P at once (xargs -P):
#   compress (zstd -3 or gzip -6), sha256sum the result, POST an upload session and PUT the
#   compressed piece monolithically with curl -T (streamed from disk, not read into memory);
#   then push the empty config blob and an OCI manifest listing the pieces (curl + jq).
# Usage: baseline-send.sh FILE REGISTRY_URL REPO TAG CHUNK_BYTES gzip|zstd PARALLEL WORKDIR
# Prints, on stdout, the seconds spent in split (the rest is compression + hashing + upload).
set -euo pipefail
file=$1 reg=$2 repo=$3 tag=$4 chunk=$5 comp=$6 par=$7 work=$8
mkdir -p "$work"
cd "$work"

t0=$(date +%s.%N)
split -b "$chunk" -d -a 4 "$file" piece_
t1=$(date +%s.%N)

export reg repo comp
push_piece() {
  set -euo pipefail
  local f=$1 z
  if [ "$comp" = zstd ]; then z=$f.zst; zstd -3 -q -f "$f" -o "$z"; else z=$f.gz; gzip -6 -c "$f" > "$z"; fi
  rm -f "$f"
  local d size loc sep
  d=sha256:$(sha256sum "$z" | cut -c1-64)
  size=$(stat -c %s "$z")
  loc=$(curl -fsS -X POST -D - -o /dev/null "$reg/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  case "$loc" in http*) ;; *) loc=$reg$loc ;; esac
  case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$z" "$loc${sep}digest=$d" -o /dev/null
  rm -f "$z"
  printf '%s %s %s\n' "${f#piece_}" "$d" "$size" > "$f.desc"
}
export -f push_piece
ls piece_* | xargs -P "$par" -n 1 bash -c 'push_piece "$1"' _

# The empty config and the manifest (pieces in order).
empty='{}'
ed=sha256:$(printf '%s' "$empty" | sha256sum | cut -c1-64)
loc=$(curl -fsS -X POST -D - -o /dev/null "$reg/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
case "$loc" in http*) ;; *) loc=$reg$loc ;; esac
case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
printf '%s' "$empty" | curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary @- "$loc${sep}digest=$ed" -o /dev/null
mt=application/vnd.dockercomms.chunk.v1.tar+$([ "$comp" = zstd ] && echo zstd || echo gzip)
cat piece_*.desc | sort -n | jq -R -s --arg mt "$mt" --arg ed "$ed" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  artifactType: "application/vnd.dockercomms.message.v1",
  config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $ed, size: 2},
  layers: [split("\n")[] | select(length > 0) | split(" ") | {mediaType: $mt, digest: .[1], size: (.[2] | tonumber)}]
}' > manifest.json
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @manifest.json "$reg/v2/$repo/manifests/$tag" -o /dev/null
rm -f piece_*.desc
echo "split_s $(echo "$t1 - $t0" | bc)"
