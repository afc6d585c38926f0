#!/usr/bin/env bash
# The run step of action.yml: turns the action's inputs (COMMS_INPUT_*) into one `comms send`,
# and its --json result into the step outputs digest, tag and signed.
set -euo pipefail

fail() {
  echo "::error title=comms send::$1"
  exit "${2:-4}"
}

repo="${COMMS_INPUT_REPO:-}"
[ -n "$repo" ] || fail "the repo input is required"
[ -n "${COMMS_INPUT_RECIPIENT:-}" ] || fail "the recipient input is required"

args=(send --repo "$repo" --recipient "$COMMS_INPUT_RECIPIENT" --json --quiet)

if [ -n "${COMMS_INPUT_MESSAGE:-}" ] && [ -n "${COMMS_INPUT_FILE:-}" ]; then
  fail "give the message input or the file input, not both"
elif [ -n "${COMMS_INPUT_MESSAGE:-}" ]; then
  args+=(--message "$COMMS_INPUT_MESSAGE")
elif [ -n "${COMMS_INPUT_FILE:-}" ]; then
  args+=("$COMMS_INPUT_FILE")
else
  fail "give the message input or the file input"
fi

# The sender defaults to the identity keyless signing certifies for this workflow, so a receiver
# can require the two to match (--require-sender-match).
sender="${COMMS_INPUT_SENDER:-}"
if [ -z "$sender" ] && [ -n "${COMMS_GITHUB_WORKFLOW_REF:-}" ]; then
  sender="${COMMS_GITHUB_SERVER_URL:-https://github.com}/${COMMS_GITHUB_WORKFLOW_REF}"
fi
[ -z "$sender" ] || args+=(--sender "$sender")

case "${COMMS_INPUT_SIGNING:-keyless}" in
  keyless)
    if [ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ] && [ -z "${SIGSTORE_ID_TOKEN:-}" ]; then
      fail "keyless signing needs the job's OIDC token: add 'permissions: id-token: write' to the job (or use signing: key / none)"
    fi
    ;;
  key)
    [ -n "${COMMS_INPUT_KEY:-}" ] || fail "signing: key needs the key input (a PEM private key file)"
    args+=(--key "$COMMS_INPUT_KEY")
    ;;
  none)
    args+=(--no-sign)
    ;;
  *)
    fail "signing must be keyless, key or none (got '${COMMS_INPUT_SIGNING}')"
    ;;
esac

# Registry credentials: the inputs, else for ghcr.io the job's own token. The token is only ever
# given for ghcr.io; for other registries comms reads docker's config.json (e.g. docker/login-action).
host="${repo%%/*}"
username="${COMMS_INPUT_USERNAME:-}"
password="${COMMS_INPUT_PASSWORD:-}"
if [ -z "$password" ] && [ "$host" = "ghcr.io" ] && [ -n "${COMMS_GITHUB_TOKEN:-}" ]; then
  username="${username:-${COMMS_GITHUB_ACTOR:-github-actions}}"
  password="$COMMS_GITHUB_TOKEN"
fi
if [ -n "$password" ]; then
  [ -n "$username" ] || fail "registry-password needs registry-username"
  echo "::add-mask::$password"
  export COMMS_REGISTRY_HOST="$host" COMMS_REGISTRY_USERNAME="$username" COMMS_REGISTRY_PASSWORD="$password"
fi
unset COMMS_INPUT_PASSWORD COMMS_GITHUB_TOKEN

if [ -n "${COMMS_INPUT_ARGS:-}" ]; then
  read -r -a extra <<< "$COMMS_INPUT_ARGS"
  args+=("${extra[@]}")
fi

if [ -n "${COMMS_INPUT_COMMAND:-}" ]; then
  read -r -a comms <<< "$COMMS_INPUT_COMMAND"
else
  comms=(npx --yes --package "oci-comms@${COMMS_INPUT_VERSION:-0.1.0}" -- comms)
fi

set +e
result="$("${comms[@]}" "${args[@]}")"
code=$?
set -e
if [ "$code" -ne 0 ]; then
  echo "::error title=comms send::comms send failed with exit code $code (see the log above)"
  exit "$code"
fi

# The last stdout line is the JSON result: {"digest", "tag", "signed", ...}.
printf '%s\n' "$result" | node -e '
let s = "";
process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const r = JSON.parse(s.trim().split("\n").pop());
  process.stdout.write(`digest=${r.digest}\ntag=${r.tag}\nsigned=${r.signed}\n`);
});' >> "$GITHUB_OUTPUT"
echo "sent to ${COMMS_INPUT_RECIPIENT}: ${repo}@$(printf '%s\n' "$result" | tail -n 1 | sed -n 's/.*"digest":"\([^"]*\)".*/\1/p')"
