#!/usr/bin/env bash
# Installs what `make bench` / `make soak` need, only when it is missing:
#   Debian: wrk (saturation), hey (fixed rates), nginx (the reference), util-linux (taskset)
#   PyPI, into the given virtualenv python: matplotlib (charts), py-spy (profile)
set -euo pipefail
python=${1:?usage: bench/install.sh path/to/venv/python}
needed=("wrk wrk" "hey hey" "nginx nginx" "taskset util-linux")
missing=()
for entry in "${needed[@]}"; do
  cmd=${entry%% *}; pkg=${entry##* }
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bin=$(dirname "$python")
if ! "$python" -c "import matplotlib" 2>/dev/null || [ ! -x "$bin/py-spy" ]; then
  echo "bench: installing the bench extra (matplotlib, py-spy) into $(dirname "$bin")" >&2
  "$python" -m pip install --quiet -e "$(cd "$(dirname "$0")/.." && pwd)[bench]"
fi
