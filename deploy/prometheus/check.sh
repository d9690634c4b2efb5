#!/usr/bin/env bash
# Checks the alert rules with promtool (from Debian's `prometheus` package, installed here when
# missing and running as root).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing promtool (apt-get install prometheus)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "promtool is missing: install Debian's prometheus package (sudo apt-get install prometheus)" >&2
    exit 1
  fi
fi
promtool check rules alerts.yml
