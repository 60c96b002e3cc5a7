#!/usr/bin/env bash
# Installs the real components the test suite runs against. Idempotent: a
# package already present is not fetched again. Needs root (apt-get).
set -euo pipefail

packages=(
  ansible-core            # run_playbook / run_module tests
  prometheus              # Alertmanager loop
  prometheus-alertmanager # Alertmanager loop
  kcat                    # independent Kafka producer/consumer
  chromium                # dashboard test
  openssl                 # independent signature vectors, certificates
  git                     # GitOps loop
  wrk                     # benchmarks (bench/)
  jq                      # bench/eda-corpus.sh reads the run log
  mosquitto               # mqtt source: a real MQTT broker
  python3                 # EDA Python source plugins, through the embedded runner
  systemd                 # journald source: journalctl
  systemd-journal-remote  # journald source tests: writes journal files from the export format
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test/setup.sh: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "test/setup.sh: components ready"
