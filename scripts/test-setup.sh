#!/usr/bin/env bash
# Extra system packages the test-suite uses (headless Chromium for the report test).
# Best effort: without root or apt the browser test is skipped with a reason, nothing else.
set -u
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "test-setup: could not install chromium; the browser report test will be skipped"
fi
exit 0
