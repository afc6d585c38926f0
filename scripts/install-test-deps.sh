#!/usr/bin/env bash
# Installs the system packages the integration tests start for real: Debian's docker-registry
# (CNCF distribution 2.8, the registry:2 server), skopeo (a peer client), openssl (test CAs),
# age and age-keygen (the reference age CLI, the peer of encrypted messages), yq (Debian's jq for
# YAML: the GitHub Action test reads action.yml with it).
# Does nothing when they are already present.
set -euo pipefail
missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
{ command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1; } || missing+=(age)
command -v yq >/dev/null 2>&1 || missing+=(yq)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo -n); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
