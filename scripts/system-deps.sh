#!/usr/bin/env bash
# Installs the Debian packages dialtone needs: `run` for running it, `test` for its tests.
# As root it uses apt-get; otherwise it prints the exact command to run.
set -euo pipefail

RUN_PACKAGES=(libopus0 espeak-ng flite)
TEST_PACKAGES=(sip-tester redis-server redis-sentinel baresip-core linphone-cli asterisk-core-sounds-en
               asterisk-core-sounds-en-wav sox tcpdump chromium unzip graphviz)

case "${1:-run}" in
  run) wanted=("${RUN_PACKAGES[@]}") ;;
  test) wanted=("${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "dialtone needs these Debian packages; install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
