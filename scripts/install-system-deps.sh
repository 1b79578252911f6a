#!/usr/bin/env bash
# Debian packages the tests and benchmarks use: dcmtk (real DICOM clients),
# Chromium (the pages, driven by Playwright), PostgreSQL (throwaway test
# server), wrk (HTTP load), Orthanc (the benchmarks' reference).
# Installs only what is missing, so a warm machine pays nothing.
set -euo pipefail

need=()
command -v /usr/bin/storescu >/dev/null 2>&1 || need+=(dcmtk)
command -v /usr/bin/chromium >/dev/null 2>&1 || need+=(chromium)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v initdb >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
if [ "${WITH_BENCH_DEPS:-0}" = 1 ]; then
  [ -x /usr/sbin/Orthanc ] || need+=(orthanc)
  [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
fi
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Chinese glyphs in the pages' screenshots (the patient's name, the report)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || need+=(fonts-wqy-zenhei)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
