#!/usr/bin/env bash
# ringcap-merge against mergecap: the same packets (time, lengths, interface name, MD5 of the
# bytes) in the same order, read back with tshark; capinfos and tcpdump read the output;
# truncated, empty and corrupt inputs; option errors. s3:// inputs: test_merge_s3.sh.
# Exit 77 = skipped (a failure if CI=true).
#
# mergecap 4.0 breaks timestamp ties in favour of the LATER input (its is_earlier() is true for
# equal times); ringcap-merge keeps the order of the inputs. The reference of a timestamp merge
# is therefore mergecap given the inputs in reverse order, which yields exactly that order.
set -euo pipefail
source "$(dirname "$0")/../lib/check.sh" # fail, skip, expect_eq, expect_rc, expect_grep

BUILD_DIR=${BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
MERGE=${RINGCAP_MERGE:-$BUILD_DIR/tools/ringcap-merge}
HERE=$(cd "$(dirname "$0")" && pwd)


for tool in mergecap tshark capinfos tcpdump python3; do
  command -v $tool >/dev/null || skip "needs $tool (wireshark-common, tshark, tcpdump, python3)"
done
[ -x "$MERGE" ] || fail "ringcap-merge not built at $MERGE"
TMP=$(mktemp -d /tmp/ringcap-merge-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
python3 "$HERE/gen_inputs.py" "$TMP/in"
cd "$TMP"
A=in/a_usec.pcap B=in/b_nsec_be.pcap C=in/c_two_ifaces.pcapng D=in/d_late_be.pcapng
E=in/e_same.pcapng F=in/f_sections.pcapng G=in/g_unsorted.pcap H1=in/h1_host.pcapng
H2=in/h2_host.pcapng

# One line per packet: time, length, captured length, interface name, MD5 of the captured
# bytes [, interface id]. tshark calls an interface without if_name "unknown"; the writer
# always writes if_name, empty for classic pcap inputs.
packets() {
  local extra=()
  [ "${2:-}" = ids ] && extra=(-e frame.interface_id)
  tshark -r "$1" -o frame.generate_md5_hash:TRUE -T fields -e frame.time_epoch -e frame.len \
    -e frame.cap_len -e frame.interface_name -e frame.md5_hash "${extra[@]}" 2>/dev/null |
    awk -F'\t' -v OFS='\t' '$4 == "unknown" { $4 = "" } { print }'
}

# compare NAME OURS REF [ids]: the same packets, line by line.
compare() {
  packets "$2" "${4:-}" >"$1.ours"
  packets "$3" "${4:-}" >"$1.ref"
  [ -s "$1.ref" ] || fail "$1: the reference has no packets"
  cmp -s "$1.ours" "$1.ref" || {
    diff "$1.ours" "$1.ref" | head -20 >&2
    fail "$1: packets differ from mergecap's"
  }
  echo "ok: $1: $(wc -l <"$1.ours") packets equal${4:+ (interface ids too)}"
}

# run EXPECTED-RC ARGS...: runs ringcap-merge, stderr in $TMP/err.
run() {
  local want=$1 rc=0
  shift
  "$MERGE" "$@" >"$TMP/stdout" 2>"$TMP/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "ringcap-merge $*: exit code $rc, expected $want: $(cat "$TMP/err")"
}

reverse() { printf '%s\n' "$@" | tac; }

# Timestamp merge of everything: pcap us/ns (little/big-endian), pcapng with two interfaces,
# late interfaces, ISB and custom blocks. The inputs share timestamps: check that ties occur.
ALL=("$A" "$B" "$C" "$D" "$E")
run 0 -v -w merged.pcapng "${ALL[@]}"
mapfile -t REV < <(reverse "${ALL[@]}")
mergecap -w ref_merged.pcapng "${REV[@]}"
compare merge merged.pcapng ref_merged.pcapng
ties=$(cut -f1 merge.ours | uniq -d | wc -l)
[ "$ties" -gt 50 ] || fail "only $ties timestamps occur more than once: ties are not tested"
echo "ok: $ties timestamps shared by several packets"
# Ties in input order: the only difference from mergecap's own order is within equal times.
mergecap -w ref_fwd.pcapng "${ALL[@]}"
packets ref_fwd.pcapng >fwd.ref
cmp -s fwd.ref merge.ours && fail "mergecap's forward order equals ours: ties are not tested"
cmp -s <(sort fwd.ref) <(sort merge.ours) || fail "merge: not the same packets as mergecap's"
awk -F'\t' 'prev > $1 { exit 1 } { prev = $1 }' merge.ours || fail "merge: out of order"
echo "ok: merge: ordered by time, ties in input order (mergecap: later input first)"
grep -q "interfaces were declared after packets" err || fail "late interfaces not reported: $(cat err)"
expect_eq "$(capinfos -I merged.pcapng | grep -c '^Interface #')" 9 "interfaces (-I all, inputs differ)"
expect_eq "$(capinfos -c -M merged.pcapng | awk '/Number of packets/ {print $NF}')" 960 "capinfos packets"
expect_eq "$(capinfos merged.pcapng | grep -c '^Section')" 0 "extra sections (capinfos lists them)"
# On a pipe the output cannot start over: late interfaces start a new section instead.
# (Wireshark 4.0 names the interfaces of later sections wrongly, so names are not compared.)
"$MERGE" -w - "${ALL[@]}" | cat >piped.pcapng
compare_noname() {
  cmp -s <(packets "$1" | cut -f1-3,5) <(packets "$2" | cut -f1-3,5) || fail "$3: packets differ"
  echo "ok: $3: packets equal"
}
compare_noname piped.pcapng ref_merged.pcapng "stdout (pipe)"
expect_eq "$(capinfos piped.pcapng | grep -c '^Section')" 3 "sections on a pipe"
# Same when an input is a pipe (it cannot be read twice).
run 0 -w pipe_in.pcapng <(cat "$D") "$A"
mergecap -w ref_pipe_in.pcapng "$A" "$D"
compare_noname pipe_in.pcapng ref_pipe_in.pcapng "input from a pipe"
expect_eq "$(capinfos pipe_in.pcapng | grep -c '^Section')" 3 "sections with an input from a pipe"
"$MERGE" -w - "${ALL[@]}" >redirected.pcapng
cmp -s redirected.pcapng merged.pcapng || fail "stdout redirected to a file differs from -w FILE"
echo "ok: stdout redirected to a file: one section, same bytes as -w FILE"

# An input out of time order is merged as it comes, like mergecap does.
run 0 -w unsorted.pcapng "$G" "$A" "$C"
mergecap -w ref_unsorted.pcapng "$C" "$A" "$G"
compare unsorted unsorted.pcapng ref_unsorted.pcapng

# Concatenation: mergecap -a, interface ids included (no late interfaces: those come after
# their input's other interfaces here, where mergecap appends them when it meets them).
run 0 -a -w cat.pcapng "$A" "$B" "$C" "$E" "$A"
mergecap -a -w ref_cat.pcapng "$A" "$B" "$C" "$E" "$A"
compare concat cat.pcapng ref_cat.pcapng ids
run 0 -a -w cat_all.pcapng "${ALL[@]}"
mergecap -a -w ref_cat_all.pcapng "${ALL[@]}"
compare concat_late cat_all.pcapng ref_cat_all.pcapng

# Interface merge modes, against mergecap -I (ids included).
for mode in all any none; do
  run 0 -a -I $mode -w cat_$mode.pcapng "$A" "$B" "$C" "$E" "$A" "$C"
  mergecap -a -I $mode -w ref_cat_$mode.pcapng "$A" "$B" "$C" "$E" "$A" "$C"
  compare "concat -I $mode" cat_$mode.pcapng ref_cat_$mode.pcapng ids
done
run 0 -w same.pcapng "$C" "$E" # -I all, identical lists: one list (ids do not depend on order)
mergecap -w ref_same.pcapng "$E" "$C"
compare "merge -I all, same interfaces" same.pcapng ref_same.pcapng ids
expect_eq "$(capinfos -I same.pcapng | grep -c '^Interface #')" 2 "interfaces (-I all, same lists)"

# Per-host captures like ringcap's: tcpdump reads the result (libpcap needs one link type and
# one snaplen over all interfaces) and prints what it prints for mergecap's.
run 0 -I none -w hosts.pcapng "$H1" "$H2"
mergecap -I none -w ref_hosts.pcapng "$H2" "$H1"
compare hosts hosts.pcapng ref_hosts.pcapng
tcpdump -r hosts.pcapng -nn -tt --time-stamp-precision=nano -x >hosts.tcpdump 2>/dev/null
tcpdump -r ref_hosts.pcapng -nn -tt --time-stamp-precision=nano -x >ref_hosts.tcpdump 2>/dev/null
[ -s hosts.tcpdump ] && cmp -s hosts.tcpdump ref_hosts.tcpdump || fail "tcpdump output differs"
expect_eq "$(grep -c "^[0-9]" hosts.tcpdump)" 300 "tcpdump packets"
expect_eq "$(tshark -r hosts.pcapng -T fields -e frame.interface_description 2>/dev/null | sort -u | tr '\n' ' ')" \
  "$H1 $H2 " "interface descriptions name the inputs"

# Several sections in one input: compared without names (Wireshark 4.0 misnames interfaces
# of later sections in the input); names checked against the packets' own tags ("f:<n>:";
# odd packets are on the section's own interface sec0..sec2).
run 0 -w sections.pcapng "$F" "$A"
mergecap -w ref_sections.pcapng "$A" "$F"
compare_noname sections.pcapng ref_sections.pcapng "sections"
# Prints "<packets checked> <wrong names>": all 120 packets of the three sections are checked.
names=$(tshark -r sections.pcapng -Y 'data.data[0:2] == 66:3a' -T fields -e frame.interface_name \
  -e data.data 2>/dev/null | python3 -c '
import sys
total = bad = 0
for line in sys.stdin:
    name, data = line.rstrip("\n").split("\t")
    n = int(bytes.fromhex(data[:40]).split(b":")[1])
    want = f"sec{n // 40}" if n % 2 else "eth0"
    total += 1
    bad += name != want
print(total, bad)')
expect_eq "$names" "120 0" "sections: packets checked and wrong interface names"

# Truncated inputs: the last packet cut short is dropped with a warning, like a file that ends
# before it (which mergecap merges); --strict makes it an error.
python3 - "$A" "$C" <<'EOF'
import struct, sys
a = open(sys.argv[1], "rb").read()
off, last = 24, 24
while off < len(a):
    last = off
    off += 16 + struct.unpack_from("<I", a, off + 8)[0]
open("in/a_clean.pcap", "wb").write(a[:last])
open("in/a_cut.pcap", "wb").write(a[:len(a) - 20])
c = open(sys.argv[2], "rb").read()
off, last = 0, 0
while off < len(c):
    last = off
    off += struct.unpack_from("<I", c, off + 4)[0]
open("in/c_clean.pcapng", "wb").write(c[:last])
open("in/c_cut.pcapng", "wb").write(c[:last + 30])
EOF
run 0 -w cut.pcapng in/a_cut.pcap "$B" in/c_cut.pcapng
grep -q "warning: in/a_cut.pcap: truncated packet record at offset" err || fail "no warning: $(cat err)"
grep -q "warning: in/c_cut.pcapng: truncated block at offset" err || fail "no warning: $(cat err)"
mergecap -w ref_cut.pcapng in/c_clean.pcapng "$B" in/a_clean.pcap
compare truncated cut.pcapng ref_cut.pcapng
run 1 --strict -w strict.pcapng in/a_cut.pcap "$B"
grep -q "truncated packet record" err || fail "--strict: unclear message: $(cat err)"
[ ! -e strict.pcapng ] || fail "--strict: left the output file behind"
: >in/empty.pcap
run 0 -w empty.pcapng in/empty.pcap "$B"
grep -q "warning: in/empty.pcap: truncated file header (empty file)" err || fail "empty: $(cat err)"
compare empty_input empty.pcapng "$B"
run 1 -w none.pcapng in/empty.pcap
grep -q "no input declares an interface" err || fail "nothing to write: $(cat err)"
[ ! -e none.pcapng ] || fail "nothing to write: left an output file"

# Errors: unreadable and corrupt inputs (exit 1, an existing output left alone), usage (2).
echo keep >existing.pcapng
run 1 -w existing.pcapng "$A" in/missing.pcap
grep -q "in/missing.pcap: cannot open" err || fail "missing input: $(cat err)"
expect_eq "$(cat existing.pcapng)" keep "output untouched after an input error"
head -c 100 /dev/urandom >in/garbage.pcap
run 1 -w garbage.pcapng "$A" in/garbage.pcap
grep -q "not a pcap or pcapng file" err || fail "corrupt input: $(cat err)"
python3 - "$A" <<'EOF'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
off = 24
for _ in range(150):  # the 151st record claims 2 GB: found once the output is written
    off += 16 + struct.unpack_from("<I", d, off + 8)[0]
struct.pack_into("<I", d, off + 8, 0x7FFFFFFF)
open("in/huge.pcap", "wb").write(d)
EOF
run 1 -w huge.pcapng "$B" in/huge.pcap
grep -q "in/huge.pcap: packet length .* too large" err || fail "corrupt record: $(cat err)"
[ ! -e huge.pcapng ] || fail "corrupt input: left a partial output file"
# What the pcapng writer cannot write: other link types, packets longer than the snaplen.
python3 - "$A" <<'EOF'
import struct, sys
a = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into("<I", a, 20, 113)  # LINKTYPE_LINUX_SLL
open("in/sll.pcap", "wb").write(a)
struct.pack_into("<II", a, 16, 64, 1)  # snaplen 64, Ethernet: the packets are longer
open("in/short_snaplen.pcap", "wb").write(a)
EOF
run 1 -w sll.pcapng "$B" in/sll.pcap
grep -q "in/sll.pcap: interface \"\" has link type 113; the pcapng writer writes Ethernet" err ||
  fail "link type: $(cat err)"
run 1 -w snap.pcapng in/short_snaplen.pcap
grep -q "in/short_snaplen.pcap: packet 1: captured length 96 exceeds the snaplen 64" err ||
  fail "snaplen: $(cat err)"
[ ! -e sll.pcapng ] && [ ! -e snap.pcapng ] || fail "unwritable input: left an output file"
run 2 "$A"
grep -q -- "-w: an output file is needed" err || fail "no -w: $(cat err)"
run 2 -w x.pcapng
run 2 -I some -w x.pcapng "$A"
run 2 --colour -w x.pcapng "$A"
run 2 -w "$A" "$B" "$A"
grep -q "the output file is also an input" err || fail "output = input: $(cat err)"
[ ! -e x.pcapng ] || fail "a usage error created the output file"
echo "PASS"
