#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when a command is missing.
# Each entry: "command package". Add a line when a test starts needing a new tool.
set -euo pipefail
needed=(
  "promtool prometheus"             # promtool check/test rules; the real-Prometheus e2e test
  "prometheus prometheus"
  "docker-compose docker-compose"   # `docker-compose config` validates docker-compose.yml (no engine needed)
  "chromium chromium"               # the browser tests (tests/e2e/browser): Playwright drives Debian's Chromium
)
missing=()
for entry in "${needed[@]}"; do
  cmd=${entry%% *}; pkg=${entry##* }
  if ! command -v "$cmd" >/dev/null 2>&1 && [[ " ${missing[*]-} " != *" $pkg "* ]]; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  # Another apt run (unattended upgrades, a parallel job) may hold the lock: wait for it, bounded.
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
