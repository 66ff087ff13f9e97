/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one header shared by the XDP program (bpf/capture.bpf.c) and userspace:
 * job slots, budgets, counters and the ring record. Change it in one place only.
 */
#ifndef RINGCAP_CAPTURE_ABI_H
#define RINGCAP_CAPTURE_ABI_H

#include <linux/types.h>

/* Number of job slots the program evaluates for every packet. */
#define RINGCAP_MAX_SLOTS 8
/* Interfaces a slot can be restricted to (ifindex[0] == 0: any interface). */
#define RINGCAP_MAX_SLOT_IFACES 8
/*
 * Largest number of bytes captured from one packet (whole multi-buffer packets): the most
 * bpf_xdp_load_bytes() copies in one call.
 */
#define RINGCAP_MAX_SNAPLEN 65535
/* Largest sample rate (1 in N). */
#define RINGCAP_MAX_SAMPLE_RATE 1000000
/* IPv6 extension headers walked before giving up on finding the transport header. */
#define RINGCAP_MAX_IPV6_EXT 8
/* Unlimited budget value. */
#define RINGCAP_BUDGET_UNLIMITED 0x7fffffffffffffffLL

/* ringcap_filter.fields: which filter_v1 fields are set. */
enum ringcap_filter_field {
	RINGCAP_F_SRC_ADDR = 1u << 0,
	RINGCAP_F_DST_ADDR = 1u << 1,
	RINGCAP_F_SRC_PORT = 1u << 2,
	RINGCAP_F_DST_PORT = 1u << 3,
	RINGCAP_F_PROTOCOL = 1u << 4,
};

/* Address family of a filter's addresses (and of a parsed packet). */
enum ringcap_family {
	RINGCAP_FAMILY_NONE = 0,
	RINGCAP_FAMILY_IPV4 = 4,
	RINGCAP_FAMILY_IPV6 = 6,
};

/*
 * filter_v1 in kernel form. Addresses are in network byte order; an IPv4 address
 * occupies the first 4 bytes. Ports are in network byte order.
 */
struct ringcap_filter {
	__u32 fields;    /* enum ringcap_filter_field bits */
	__u8 family;     /* enum ringcap_family; set when an address is given */
	__u8 protocol;   /* IP protocol number (IPv6: the upper-layer header) */
	__be16 src_port;
	__be16 dst_port;
	__u16 pad;
	__u8 src_addr[16];
	__u8 dst_addr[16];
};

/* Configuration of one job slot. */
struct ringcap_slot_config {
	__u32 cookie;      /* job identity, copied into every record of this slot */
	__u32 sample_rate; /* keep 1 in sample_rate matching packets (1 = all) */
	__u32 snaplen;     /* bytes kept of each packet, 1..RINGCAP_MAX_SNAPLEN */
	__u32 pad;
	__u32 ifindex[RINGCAP_MAX_SLOT_IFACES]; /* 0-terminated; ifindex[0] == 0: any */
	struct ringcap_filter filter;
};

/*
 * The shared budget of one slot (array map "budgets", one cache line per slot). CPUs do not
 * take single packets from it: each takes a lease (struct ringcap_slot_lease) of up to
 * RINGCAP_LEASE_PACKETS packets and RINGCAP_LEASE_BYTES bytes at a time with atomic
 * operations, so that the packet path touches only its own CPU's cache line. The budget a
 * job has left is packets_left/bytes_left plus every CPU's lease of the slot.
 */
struct ringcap_slot_budget {
	__s64 packets_left;
	__s64 bytes_left; /* captured bytes (cap_len) */
	__s64 pad[6];
};

/*
 * A CPU's lease of a slot's budget (array map "leases", key cpu * RINGCAP_MAX_SLOTS + slot,
 * one cache line each). The owning CPU takes a packet's budget from it with atomic operations
 * on its own cache line; when it runs short, it refills from the shared budget, and when that
 * is spent too, it collects the other CPUs' leases (compare-and-swap of positive amounts
 * only), so a packet is refused only when no budget is left anywhere.
 */
struct ringcap_slot_lease {
	__s64 packets;
	__s64 bytes;
	/*
	 * Written by the owning CPU only: a search of the other leases found no budget for a
	 * packet of cap_len >= spent_from, so the next skip_searches such packets that the
	 * lease and the shared budget cannot pay are refused without searching again. The hint
	 * runs out because a search can miss an amount another CPU is moving at that instant.
	 */
	__s64 spent_from;
	__s64 skip_searches;
	__s64 pad[4];
};

/* Refused packets a CPU lets pass without searching the other leases after a vain search. */
#define RINGCAP_SKIP_SEARCHES 1024

/* Largest lease a CPU takes from the shared budget at a time. */
#define RINGCAP_LEASE_PACKETS 256
#define RINGCAP_LEASE_BYTES (256 * 1024)

/*
 * The history slot (docs/history.md): armed while the history is enabled, apart from the job
 * slots. It samples 1 in sample_rate packets (on average, each CPU on its own) on its
 * interfaces, with no filter, and writes the first snaplen bytes of each into a ring buffer of
 * its own (map "history_ring", an array of one ring), so that it never takes a job's ring
 * space nor a job its ring space. Its records have the layout of struct ringcap_record with
 * one struct ringcap_record_slot: slot_mask is 1u << RINGCAP_HISTORY_RECORD_SLOT and the entry
 * holds the history's cookie, so that RingDrainer drains that ring as it drains the jobs'.
 */
struct ringcap_history_config {
	__u32 cookie;       /* copied into every record */
	__u32 sample_rate;  /* 1..RINGCAP_MAX_SAMPLE_RATE */
	__u32 snaplen;      /* 1..RINGCAP_MAX_SNAPLEN */
	__u32 wakeup_bytes; /* pending bytes in the history ring that wake the consumer */
	__u32 ifindex[RINGCAP_MAX_SLOT_IFACES]; /* 0-terminated; ifindex[0] == 0: any */
	__u32 wake_first;   /* 1: also wake the consumer at the first record into an empty ring */
};

/* The slot bit of the history's records (they are in a ring of their own). */
#define RINGCAP_HISTORY_RECORD_SLOT 0

/*
 * The history slot's counters, listed once (userspace's HistoryCounters is generated from it).
 * X(field, member, description); the order is the layout: append, never reorder.
 */
#define RINGCAP_HISTORY_COUNTERS(X)                                                         \
	X(sampled, sampled, "packets the history sampled on its interfaces")                \
	X(emitted, emitted, "records written to the history ring")                          \
	X(bytes_emitted, bytesEmitted, "bytes (cap_len) of the records written")            \
	X(ring_full, ringFull, "sampled packets dropped because the history ring was full") \
	X(copy_failed, copyFailed, "sampled packets the kernel could not copy (never expected)")

/*
 * Everything userspace configures at run time, in the program's .bss (global variable
 * "ringcap_config"): read with plain loads, no map lookup on the per-packet path. Userspace
 * writes the whole value with bpf_map_update_elem(); a slot's config is written while its
 * bit in active_mask is clear, and the bit is set by a second write.
 */
struct ringcap_config {
	__u32 active_mask;   /* bit i: slot i is armed */
	__u32 history_armed; /* 1: the history slot is armed (struct ringcap_history_config) */
	struct ringcap_slot_config slot[RINGCAP_MAX_SLOTS];
	struct ringcap_history_config history;
};

/*
 * The history slot's state on one CPU (per-CPU array map "history_state", one entry): the
 * sampling countdown and the history's own counters (RINGCAP_HISTORY_COUNTERS).
 */
struct ringcap_history_state {
	/*
	 * Packets until the next sample on this CPU: a packet that finds it above 1 decrements
	 * it and is not sampled; the sampled packet reloads it with a random gap of 1 to
	 * 2 * sample_rate - 1 packets (mean sample_rate). Userspace zeroes it at arming.
	 */
	__u64 countdown;
#define RINGCAP_HISTORY_COUNTER_FIELD(field, member, description) __u64 field;
	RINGCAP_HISTORY_COUNTERS(RINGCAP_HISTORY_COUNTER_FIELD)
#undef RINGCAP_HISTORY_COUNTER_FIELD
	__u64 pad[2];
};

/*
 * The per-slot counters, listed once: every userspace list of them (sums, differences,
 * records, job state, D-Bus properties, tools, tests) is generated from this one.
 * X(field, member, name, Property, description):
 *   field        member of struct ringcap_slot_counters, and its key in the job store's state
 *   member       member of userspace's SlotCounters (userspace/engine/SlotCounters.h)
 *   name         key in capture records, ringcap-dump --json and ringcapctl
 *   Property     D-Bus property of capture objects
 *   description  what it counts
 * The order is the struct's layout: append, never reorder.
 */
#define RINGCAP_SLOT_COUNTERS(X)                                                            \
	X(seen, seen, packets_seen, PacketsSeen,                                            \
	  "packets on the capture's interfaces while it was armed")                         \
	X(matched, matched, packets_matched, PacketsMatched,                                \
	  "packets that matched the filter")                                                \
	X(sampled_out, sampledOut, packets_sampled_out, PacketsSampledOut,                  \
	  "matching packets skipped by 1-in-N sampling")                                    \
	X(captured, captured, packets_captured, PacketsCaptured,                            \
	  "records the kernel wrote to the ring")                                           \
	X(bytes_captured, bytesCaptured, bytes_captured, BytesCaptured,                     \
	  "bytes (cap_len) of the records written to the ring")                             \
	X(ring_lost, ringLost, packets_lost_ring_full, PacketsLostRingFull,                 \
	  "matching packets lost because the ring was full (their budget is given back)")   \
	X(limit_reached, limitReached, packets_over_limit, PacketsOverLimit,                \
	  "matching packets refused because the packet or byte budget was spent")           \
	X(copy_failed, copyFailed, packets_copy_failed, PacketsCopyFailed,                  \
	  "matching packets lost because the kernel could not copy them (never expected)")

/* Per-slot counters; the "counters" per-CPU map holds one ringcap_counters per CPU. */
struct ringcap_slot_counters {
#define RINGCAP_SLOT_COUNTER_FIELD(field, member, name, property, description) __u64 field;
	RINGCAP_SLOT_COUNTERS(RINGCAP_SLOT_COUNTER_FIELD)
#undef RINGCAP_SLOT_COUNTER_FIELD
};

struct ringcap_counters {
	struct ringcap_slot_counters slot[RINGCAP_MAX_SLOTS];
	__u64 packets;     /* packets inspected with at least one slot armed */
	__u64 non_ip;      /* not IPv4/IPv6 (after VLAN tags): match only empty filters */
	__u64 malformed;   /* truncated or invalid headers: match only empty filters */
	__u64 no_ports;    /* IP fragments and truncated transport headers: no ports known */
	__u64 pad[4];
};

/*
 * A ring record holds a packet once, however many slots took it:
 *   struct ringcap_record                       (RINGCAP_RECORD_HDR_LEN bytes)
 *   struct ringcap_record_slot[popcount(slot_mask)], lowest slot first
 *   packet bytes: the largest cap_len of the slot entries
 * Slot i's packet is the first cap_len bytes of the entry for bit i, exactly as if it had a
 * record of its own. The kernel's record may be longer (size classes); the slack is ignored.
 */
struct ringcap_record {
	__u64 tstamp_boot_ns; /* bpf_ktime_get_boot_ns() when the packet was seen */
	__u32 ifindex;        /* ingress interface */
	__u32 rx_queue;       /* rx queue index */
	__u32 pkt_len;        /* original length of the whole packet (all buffers) */
	__u16 slot_mask;      /* bit i: slot i took the packet; bits >= RINGCAP_MAX_SLOTS are 0 */
	__u16 flags;          /* reserved, 0 */
};

/* One per bit of slot_mask, after the header. */
struct ringcap_record_slot {
	__u32 cookie;  /* the slot's cookie at capture time */
	__u32 cap_len; /* the slot's bytes: min(pkt_len, the slot's snaplen) */
};

#define RINGCAP_RECORD_HDR_LEN 24
#define RINGCAP_RECORD_SLOT_LEN 8
/* The longest header: every slot took the packet. */
#define RINGCAP_RECORD_MAX_HDR_LEN (RINGCAP_RECORD_HDR_LEN + RINGCAP_RECORD_SLOT_LEN * RINGCAP_MAX_SLOTS)

#ifndef __bpf__
#ifdef __cplusplus
static_assert(sizeof(struct ringcap_filter) == 44, "ringcap_filter layout");
static_assert(sizeof(struct ringcap_slot_config) == 92, "ringcap_slot_config layout");
static_assert(sizeof(struct ringcap_slot_budget) == 64, "ringcap_slot_budget layout");
static_assert(sizeof(struct ringcap_slot_lease) == 64, "ringcap_slot_lease layout");
static_assert(sizeof(struct ringcap_history_config) == 52, "ringcap_history_config layout");
static_assert(sizeof(struct ringcap_config) == 8 + 92 * RINGCAP_MAX_SLOTS + 52,
	      "ringcap_config layout");
static_assert(sizeof(struct ringcap_history_state) == 64, "ringcap_history_state layout");
static_assert(sizeof(struct ringcap_slot_counters) == 64, "ringcap_slot_counters layout");
static_assert(sizeof(struct ringcap_counters) == 64 * RINGCAP_MAX_SLOTS + 64,
	      "ringcap_counters layout");
static_assert(sizeof(struct ringcap_record) == RINGCAP_RECORD_HDR_LEN, "ringcap_record layout");
static_assert(sizeof(struct ringcap_record_slot) == RINGCAP_RECORD_SLOT_LEN,
	      "ringcap_record_slot layout");
static_assert(RINGCAP_MAX_SLOTS <= 16, "slot_mask has 16 bits");
#endif
#endif

#endif /* RINGCAP_CAPTURE_ABI_H */
