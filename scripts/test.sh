#!/usr/bin/env bash
# Sets up this Debian 12 machine (as root), builds ringcap and runs the whole test suite:
# unit tests, BPF_PROG_TEST_RUN tests of the XDP program and veth/netns integration tests.
# Under CI=true a test that cannot run on this machine fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j2
