#!/usr/bin/env bash
# System packages: the offline resources apertium (back-translation) and WordNet (synonym swap); chromium,
# the headless browser the tests render report.html in; and PostgreSQL's server binaries, which
# tests/test_deploy.py uses (initdb/pg_ctl in a temporary folder, as the postgres user) to run a Prefect server
# on PostgreSQL (no cluster of the system's is used). Installs them with apt-get where we are root; otherwise
# says what to install. Never fails the setup: without them the augmenters that need them are skipped with a
# reason in the report, and the browser and PostgreSQL tests are skipped saying what is missing.
set -u
pkgs=(apertium apertium-eng-spa wordnet-base chromium postgresql)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: ${pkgs[*]} already installed"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "system packages: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null; } \
    || echo "system packages: apt-get could not install ${missing[*]}; continuing without them"
else
  echo "system packages: missing ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
fi
exit 0
