#!/usr/bin/env bash
# ringcap next to the host's own XDP program (a counting program loaded with xdp-loader).
# Where libxdp's multi-program dispatcher works, both run: the host program still counts
# every packet and ringcap captures them. Where it cannot load (kernels that refuse program
# extensions, BPF_PROG_TYPE_EXT), the host program runs alone: ringcap must refuse with a
# clear error and leave it attached and counting. The test checks whichever case this
# kernel is, and says which.
source "$(dirname "$0")/lib.sh"
require_lab
command -v xdp-loader >/dev/null || skip "needs xdp-loader (xdp-tools)"
lab_up 74
COUNT_OBJ=$BUILD_DIR/bpf/count.bpf.o
[ -f "$COUNT_OBJ" ] || fail "missing $COUNT_OBJ"

in_cap_bpffs xdp-loader load "$IF_CAP" "$COUNT_OBJ"
# The host program's packet counter (map values come as BTF-formatted numbers or as bytes).
count() {
  in_cap bpftool map dump name ringcap_count_p -j | python3 -c '
import json, sys
e = json.load(sys.stdin)[0]
v = e.get("formatted", e)["value"]
print(v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little"))'
}
# Fails unless the host program counted at least $1 packets since $before.
expect_counted() {
  local now seen
  now=$(count)
  seen=$((now - before))
  [ "$seen" -ge "$1" ] || fail "the host program saw $seen packets, expected at least $1"
  echo "ok: the host program saw $seen packets (>= $1)"
}
before=$(count)

OUT=$LAB_TMP/coexist.pcapng
if in_cap_bpffs xdp-loader status "$IF_CAP" | grep -q xdp_dispatcher; then
  echo "this kernel runs libxdp's dispatcher: checking that both programs run"
  start_dump -i "$IF_CAP" -w "$OUT" --destination-port 7200 --packet-limit 50 --time-limit 60
  in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7200 --count 50 --size 100 >/dev/null
  wait_dump 30
  expect_eq "$DUMP_RC" 0 "ringcap-dump exit code"
  expect_eq "$(capinfos -c -M "$OUT" | awk '/Number of packets/ {print $NF}')" 50 "packets captured by ringcap"
  expect_counted 50
  in_cap_bpffs xdp-loader status "$IF_CAP" | grep -q xdp_count || fail "the host program was detached"
else
  echo "libxdp's dispatcher does not load on this kernel: checking that ringcap refuses safely"
  rc=0
  in_cap_bpffs "$RINGCAP_DUMP" -i "$IF_CAP" -w "$OUT" --time-limit 5 2>"$LAB_TMP/err" || rc=$?
  cat "$LAB_TMP/err"
  expect_eq "$rc" 1 "ringcap-dump exit code"
  grep -q "already runs the XDP program xdp_count" "$LAB_TMP/err" || fail "the error does not name the other program"
  grep -q "never replaces another XDP program" "$LAB_TMP/err" || fail "the error does not say why"
  in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7200 --count 50 --size 100 >/dev/null
  expect_counted 50
fi
in_cap_bpffs xdp-loader unload "$IF_CAP" --all
expect_detached
echo "PASS"
