#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when a command is missing.
# Each entry: "command package". Add a line when a test starts needing a new tool.
set -euo pipefail
needed=(
)
missing=()
for entry in "${needed[@]}"; do
  cmd=${entry%% *}; pkg=${entry##* }
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
