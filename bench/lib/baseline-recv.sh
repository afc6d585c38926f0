#!/usr/bin/env bash
# Baseline for `comms recv`: standard tools fetching what baseline-send.sh pushed.
#   GET the manifest (curl + jq); for each layer, with P at once (xargs -P): curl GET the blob,
#   hash the compressed bytes on the way (tee into sha256sum through a FIFO, checked against the digest),
#   decompress (zstd -d or gzip -d) and write at the piece's offset in one output file (dd
#   seek, conv=notrunc); then fsync the file (sync FILE), as comms does before its rename.
# Usage: baseline-recv.sh REGISTRY_URL REPO TAG CHUNK_BYTES gzip|zstd PARALLEL OUTFILE
set -euo pipefail
reg=$1 repo=$2 tag=$3 chunk=$4 comp=$5 par=$6 out=$7
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$reg/v2/$repo/manifests/$tag" \
  | jq -r '.layers | to_entries[] | "\(.key) \(.value.digest)"' > "$work/layers"
: > "$out"
export reg repo comp chunk out work
get_piece() {
  set -euo pipefail
  local i=$1 d=$2 dec got
  if [ "$comp" = zstd ]; then dec='zstd -d -q -c'; else dec='gzip -d -c'; fi
  # A FIFO feeds sha256sum the compressed bytes as they arrive (tee), off the critical path.
  mkfifo "$work/f_$i"
  sha256sum < "$work/f_$i" | cut -c1-64 > "$work/h_$i" &
  local hasher=$!
  curl -fsS "$reg/v2/$repo/blobs/$d" \
    | tee "$work/f_$i" \
    | $dec | dd of="$out" bs=1M seek=$((i * chunk)) oflag=seek_bytes conv=notrunc status=none
  wait "$hasher"
  got=$(cat "$work/h_$i")
  [ "sha256:$got" = "$d" ] || { echo "digest mismatch on piece $i" >&2; exit 1; }
}
export -f get_piece
xargs -P "$par" -n 2 bash -c 'get_piece "$1" "$2"' _ < "$work/layers"
sync "$out"
