// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * ringcap's XDP program: matches packets against up to RINGCAP_MAX_SLOTS job slots,
 * samples them, takes each slot's packet and byte budget from this CPU's lease of it and
 * copies min(pkt_len, snaplen) bytes (multi-buffer packets included) into this CPU's ring
 * buffer. Nothing on the path of a captured packet is shared between CPUs while budget lasts.
 * Apart from the job slots, the history slot samples 1 in N packets of its interfaces into a
 * ring of its own (history_packet()).
 * It always returns XDP_PASS: capturing never changes what happens to a packet.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <xdp/xdp_helpers.h>

#include "capture_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Wake the consumer when this many bytes are waiting in a CPU's ring (set before load). */
const volatile __u32 wakeup_bytes = 256 * 1024;
/*
 * Also wake the consumer for the first record into an empty ring (set before load): a
 * consumer that then drains after a bounded delay (ringcap-dump) needs no periodic tick.
 */
const volatile __u32 wake_first = 0;
/* Possible CPUs: the number of rings and of leases per slot (set before load). */
const volatile __u32 nr_cpus = 1;

/* Job slots and the armed mask, written by userspace (see struct ringcap_config). */
struct ringcap_config ringcap_config = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RINGCAP_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct ringcap_slot_budget);
} budgets SEC(".maps");

/* Key cpu * RINGCAP_MAX_SLOTS + slot; resized to RINGCAP_MAX_SLOTS * nr_cpus before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RINGCAP_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct ringcap_slot_lease);
} leases SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ringcap_counters);
} counters SEC(".maps");

/*
 * One ring buffer per CPU online at load, so that no two CPUs (RX queues) share a
 * reservation lock; the entry of a CPU that was offline names an online CPU's ring.
 * Userspace sizes the template and the array (one entry per possible CPU) before load and
 * creates the rings.
 */
struct ring_of_cpu {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct ring_of_cpu);
} rings SEC(".maps");

/* The history slot's sampling countdown and counters on each CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ringcap_history_state);
} history_state SEC(".maps");

/*
 * The history slot's ring, apart from the jobs' rings: one ring buffer shared by the CPUs (it
 * takes 1 packet in sample_rate, so its lock is rarely contended), in an array of one entry so
 * that userspace can create it, of the size the history asks for, when it arms the slot.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct ring_of_cpu);
} history_ring SEC(".maps");

/* libxdp: run first among the interface's programs, continue the chain on XDP_PASS. */
struct {
	__uint(priority, 1);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(ringcap_xdp);

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IP_MF_ 0x2000
#define IP_OFFSET_ 0x1FFF

enum parse_state {
	PARSE_OK = 0,     /* IP header parsed; ports valid if has_ports */
	PARSE_NON_IP = 1, /* not IPv4/IPv6: matches only empty filters */
	PARSE_BAD = 2,    /* truncated or invalid: matches only empty filters */
};

struct pkt_meta {
	__u8 state;
	__u8 family;
	__u8 protocol;
	__u8 has_ports;
	__be16 src_port;
	__be16 dst_port;
	__u8 src_addr[16];
	__u8 dst_addr[16];
};

struct vlan_hdr_ {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct ipv6_opt_hdr_ {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct frag_hdr_ {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

static __always_inline int proto_has_ports(__u8 proto)
{
	/* TCP, UDP, DCCP, SCTP, UDP-Lite: ports are the first 4 bytes. */
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_DCCP ||
	       proto == IPPROTO_SCTP || proto == IPPROTO_UDPLITE;
}

static __always_inline void parse_ports(struct pkt_meta *m, void *l4, void *data_end,
					struct ringcap_counters *c)
{
	if (!proto_has_ports(m->protocol))
		return;
	__be16 *ports = l4;
	if ((void *)(ports + 2) > data_end) {
		c->no_ports++;
		return;
	}
	m->src_port = ports[0];
	m->dst_port = ports[1];
	m->has_ports = 1;
}

static __always_inline void parse_packet(struct xdp_md *ctx, struct pkt_meta *m,
					 struct ringcap_counters *c)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cur;
	__be16 proto;

	m->state = PARSE_BAD;
	if ((void *)(eth + 1) > data_end)
		return;
	proto = eth->h_proto;
	cur = eth + 1;

	/* Up to two tags: 802.1Q, 802.1ad (QinQ) in either combination. */
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q_) && proto != bpf_htons(ETH_P_8021AD_))
			break;
		struct vlan_hdr_ *vh = cur;
		if ((void *)(vh + 1) > data_end)
			return;
		proto = vh->encapsulated_proto;
		cur = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = cur;
		if ((void *)(iph + 1) > data_end)
			return;
		__u32 ihl = iph->ihl * 4;
		if (iph->version != 4 || ihl < sizeof(*iph))
			return;
		if (cur + ihl > data_end)
			return;
		m->family = RINGCAP_FAMILY_IPV4;
		m->protocol = iph->protocol;
		__builtin_memcpy(m->src_addr, &iph->saddr, 4);
		__builtin_memcpy(m->dst_addr, &iph->daddr, 4);
		m->state = PARSE_OK;
		/* Non-first fragments carry no transport header. */
		if (iph->frag_off & bpf_htons(IP_OFFSET_)) {
			c->no_ports++;
			return;
		}
		parse_ports(m, cur + ihl, data_end, c);
		return;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cur;
		if ((void *)(ip6 + 1) > data_end)
			return;
		if (ip6->version != 6)
			return;
		__u8 nexthdr = ip6->nexthdr;
		cur = ip6 + 1;
#pragma unroll
		for (int i = 0; i < RINGCAP_MAX_IPV6_EXT; i++) {
			if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
			    nexthdr == IPPROTO_DSTOPTS || nexthdr == 135 /* mobility */) {
				struct ipv6_opt_hdr_ *oh = cur;
				if ((void *)(oh + 1) > data_end)
					return;
				nexthdr = oh->nexthdr;
				cur += (oh->hdrlen + 1) * 8;
			} else if (nexthdr == IPPROTO_AH) {
				struct ipv6_opt_hdr_ *oh = cur;
				if ((void *)(oh + 1) > data_end)
					return;
				nexthdr = oh->nexthdr;
				cur += (oh->hdrlen + 2) * 4;
			} else if (nexthdr == IPPROTO_FRAGMENT) {
				struct frag_hdr_ *fh = cur;
				if ((void *)(fh + 1) > data_end)
					return;
				nexthdr = fh->nexthdr;
				cur = fh + 1;
				if (fh->frag_off & bpf_htons(0xFFF8)) {
					/* Non-first fragment: no transport header here. */
					m->family = RINGCAP_FAMILY_IPV6;
					m->protocol = nexthdr;
					__builtin_memcpy(m->src_addr, &ip6->saddr, 16);
					__builtin_memcpy(m->dst_addr, &ip6->daddr, 16);
					m->state = PARSE_OK;
					c->no_ports++;
					return;
				}
			} else {
				break;
			}
		}
		/* Still an extension header after the walk: the chain is too long. */
		if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
		    nexthdr == IPPROTO_DSTOPTS || nexthdr == 135 || nexthdr == IPPROTO_AH ||
		    nexthdr == IPPROTO_FRAGMENT)
			return;
		if (cur > data_end)
			return;
		m->family = RINGCAP_FAMILY_IPV6;
		m->protocol = nexthdr;
		__builtin_memcpy(m->src_addr, &ip6->saddr, 16);
		__builtin_memcpy(m->dst_addr, &ip6->daddr, 16);
		m->state = PARSE_OK;
		parse_ports(m, cur, data_end, c);
		return;
	}

	m->state = PARSE_NON_IP;
}

static __always_inline int addr_eq(const __u8 *a, const __u8 *b, __u8 family)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	if (family == RINGCAP_FAMILY_IPV4)
		return x[0] == y[0];
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int filter_match(const struct ringcap_filter *f, const struct pkt_meta *m)
{
	__u32 fields = f->fields;
	if (!fields)
		return 1;
	if (m->state != PARSE_OK)
		return 0;
	if ((fields & (RINGCAP_F_SRC_ADDR | RINGCAP_F_DST_ADDR)) && f->family != m->family)
		return 0;
	if ((fields & RINGCAP_F_SRC_ADDR) && !addr_eq(f->src_addr, m->src_addr, m->family))
		return 0;
	if ((fields & RINGCAP_F_DST_ADDR) && !addr_eq(f->dst_addr, m->dst_addr, m->family))
		return 0;
	if ((fields & RINGCAP_F_PROTOCOL) && f->protocol != m->protocol)
		return 0;
	if (fields & (RINGCAP_F_SRC_PORT | RINGCAP_F_DST_PORT)) {
		if (!m->has_ports)
			return 0;
		if ((fields & RINGCAP_F_SRC_PORT) && f->src_port != m->src_port)
			return 0;
		if ((fields & RINGCAP_F_DST_PORT) && f->dst_port != m->dst_port)
			return 0;
	}
	return 1;
}

/* An interface list of a slot: 0-terminated, ifs[0] == 0 for any interface. */
static __always_inline int iface_match(const __u32 *ifs, __u32 ifindex)
{
	if (!ifs[0])
		return 1;
#pragma unroll
	for (int i = 0; i < RINGCAP_MAX_SLOT_IFACES; i++) {
		if (!ifs[i])
			return 0;
		if (ifs[i] == ifindex)
			return 1;
	}
	return 0;
}

#define READ_ONCE_(x) (*(volatile typeof(x) *)&(x))

/*
 * Takes one packet of cap_len bytes from a lease; all or nothing. The owning CPU is the only
 * one that takes from its lease this way; others only collect positive amounts from it with
 * compare-and-swap, so an amount taken here was never counted anywhere else.
 */
static __always_inline int lease_take(struct ringcap_slot_lease *l, __s64 cap_len)
{
	if (READ_ONCE_(l->packets) < 1 || READ_ONCE_(l->bytes) < cap_len)
		return 0;
	if (__sync_fetch_and_add(&l->packets, -1) < 1) {
		__sync_fetch_and_add(&l->packets, 1);
		return 0;
	}
	if (__sync_fetch_and_add(&l->bytes, -cap_len) < cap_len) {
		__sync_fetch_and_add(&l->bytes, cap_len);
		__sync_fetch_and_add(&l->packets, 1);
		return 0;
	}
	return 1;
}

/* Gives a taken packet's budget back to the lease (ring full, copy failed). */
static __always_inline void lease_return(struct ringcap_slot_lease *l, __s64 cap_len)
{
	__sync_fetch_and_add(&l->packets, 1);
	__sync_fetch_and_add(&l->bytes, cap_len);
}

/*
 * Takes up to `want` (at least `need`) from a shared budget counter: a share of what is left,
 * so that the last of a budget is spread over the CPUs in ever smaller leases instead of
 * sitting in one CPU's lease. Returns what was taken, 0 if less than `need` was left.
 */
static __always_inline __s64 shared_take(__s64 *v, __s64 need, __s64 want)
{
	__s64 left = READ_ONCE_(*v);
	if (left < need)
		return 0;
	/* left >= need >= 1 here; unsigned division (BPF has no signed one before v4). */
	__s64 share = (__s64)((__u64)left / (2 * (__u64)nr_cpus));
	if (share < want)
		want = share;
	if (want < need)
		want = need;
	__s64 old = __sync_fetch_and_add(v, -want);
	if (old >= want)
		return want;
	/* Another CPU took some meanwhile: keep what there was, if enough; give back the rest. */
	__s64 got = old >= need ? old : 0;
	__sync_fetch_and_add(v, want - got);
	return got;
}

struct collect_ctx {
	__u32 slot;
	__u32 self;
	__s64 packets;
	__s64 bytes;
};

/* Moves whatever another CPU's lease of the slot holds to the caller. */
static long collect_one(__u64 cpu, void *arg)
{
	struct collect_ctx *x = arg;
	if (cpu == x->self)
		return 0;
	__u32 key = (__u32)cpu * RINGCAP_MAX_SLOTS + x->slot;
	struct ringcap_slot_lease *l = bpf_map_lookup_elem(&leases, &key);
	if (!l)
		return 1;
	__s64 v = READ_ONCE_(l->packets);
	if (v > 0 && __sync_val_compare_and_swap(&l->packets, v, 0) == v)
		x->packets += v;
	v = READ_ONCE_(l->bytes);
	if (v > 0 && __sync_val_compare_and_swap(&l->bytes, v, 0) == v)
		x->bytes += v;
	return 0;
}

/*
 * This CPU's lease could not pay for the packet: refill it from the shared budget and, when
 * that is spent too, collect the other CPUs' leases. Returns 1 with the packet's budget taken,
 * 0 when no budget is left for it anywhere (and notes that in the lease's spent_from).
 */
static __noinline int lease_refill_take(struct ringcap_slot_lease *l, struct ringcap_slot_budget *b,
					__u32 slot, __u32 cpu, __s64 cap_len)
{
	if (!l || !b)
		return 0;
	if (READ_ONCE_(l->packets) < 1) {
		__s64 got = shared_take(&b->packets_left, 1, RINGCAP_LEASE_PACKETS);
		if (got)
			__sync_fetch_and_add(&l->packets, got);
	}
	if (READ_ONCE_(l->bytes) < cap_len) {
		__s64 got = shared_take(&b->bytes_left, cap_len - READ_ONCE_(l->bytes),
					RINGCAP_LEASE_BYTES);
		if (got)
			__sync_fetch_and_add(&l->bytes, got);
	}
	if (lease_take(l, cap_len))
		return 1;
	/* A recent search found nothing for a packet this size. */
	if (l->skip_searches > 0 && cap_len >= l->spent_from) {
		l->skip_searches--;
		return 0;
	}

	struct collect_ctx x = {.slot = slot, .self = cpu};
	bpf_loop(nr_cpus, collect_one, &x, 0);
	if (x.packets)
		__sync_fetch_and_add(&l->packets, x.packets);
	if (x.bytes)
		__sync_fetch_and_add(&l->bytes, x.bytes);
	/* The shared budget once more: another CPU may have given some back meanwhile. */
	if (READ_ONCE_(l->packets) < 1) {
		__s64 got = shared_take(&b->packets_left, 1, 1);
		if (got)
			__sync_fetch_and_add(&l->packets, got);
	}
	if (READ_ONCE_(l->bytes) < cap_len) {
		__s64 got = shared_take(&b->bytes_left, cap_len - READ_ONCE_(l->bytes),
					cap_len - READ_ONCE_(l->bytes));
		if (got)
			__sync_fetch_and_add(&l->bytes, got);
	}
	if (lease_take(l, cap_len))
		return 1;
	/* Nothing left for a packet this size; what is left stays in this CPU's lease. */
	l->spent_from = READ_ONCE_(l->packets) < 1 ? 0 : cap_len;
	l->skip_searches = RINGCAP_SKIP_SEARCHES;
	return 0;
}

/*
 * Reserve a ring record of a size class that fits cap_len behind a header of N slot entries
 * (bpf_ringbuf_reserve needs a constant size, and the copy a constant offset), copy the
 * entries and the packet, submit. Returns 1 when the record was submitted, 0 when the ring
 * is full, -1 when the copy failed.
 */
#define TRY_CLASS(N, SZ)                                                                   \
	if (cap_len <= (SZ)) {                                                             \
		rec = bpf_ringbuf_reserve(ring, RECORD_HDR(N) + (SZ), 0);                  \
		if (!rec)                                                                  \
			return 0;                                                          \
		if (cap_len > 0 &&                                                         \
		    bpf_xdp_load_bytes(ctx, 0, (__u8 *)rec + RECORD_HDR(N), cap_len) < 0) { \
			bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);                        \
			return -1;                                                         \
		}                                                                          \
		__builtin_memcpy((__u8 *)rec + RINGCAP_RECORD_HDR_LEN, ent,                \
				 RINGCAP_RECORD_SLOT_LEN * (N));                           \
		rec_size = RECORD_HDR(N) + (SZ);                                           \
		goto fill;                                                                 \
	}

#define RECORD_HDR(N) (RINGCAP_RECORD_HDR_LEN + RINGCAP_RECORD_SLOT_LEN * (N))

#define TRY_CLASSES(N)                                                                     \
	case N:                                                                            \
		TRY_CLASS(N, 64)                                                           \
		TRY_CLASS(N, 96)                                                           \
		TRY_CLASS(N, 128)                                                          \
		TRY_CLASS(N, 192)                                                          \
		TRY_CLASS(N, 256)                                                          \
		TRY_CLASS(N, 384)                                                          \
		TRY_CLASS(N, 512)                                                          \
		TRY_CLASS(N, 768)                                                          \
		TRY_CLASS(N, 1024)                                                         \
		TRY_CLASS(N, 1280)                                                         \
		TRY_CLASS(N, 1536)                                                         \
		TRY_CLASS(N, 2048)                                                         \
		TRY_CLASS(N, 4096)                                                         \
		TRY_CLASS(N, 9216)                                                         \
		TRY_CLASS(N, 16384)                                                        \
		TRY_CLASS(N, 32768)                                                        \
		/* 65536: keeps records 8-byte aligned */                                  \
		TRY_CLASS(N, RINGCAP_MAX_SNAPLEN + 1)                                      \
		return -1;

/*
 * The slots that took a packet, gathered by take_slot() and written by emit_record(). It
 * lives on ringcap_xdp's stack and is only passed by pointer to global functions, which the
 * verifier checks once each: the caller's paths do not multiply with every slot's outcome.
 */
struct taken_slots {
	struct ringcap_record_slot ent[RINGCAP_MAX_SLOTS]; /* n entries, lowest slot first */
	__u8 slot[RINGCAP_MAX_SLOTS];                      /* the slot of each entry */
	__u32 mask;                                        /* bit i: slot i took the packet */
	__u32 n;                                           /* bits in mask */
	__u32 cap_len;                                     /* the largest of their cap_lens */
	__u32 pkt_len;                                     /* 0 until a slot needed it */
};

/*
 * One record for every slot that took the packet, into `ring`, waking the consumer at
 * `wakeup` pending bytes and, if `first`, at the first record into an empty ring. Returns 1
 * when the record was submitted, 0 when the ring is full,
 * -1 when the copy failed.
 */
static __always_inline int write_record(struct xdp_md *ctx, void *ring,
					const struct taken_slots *t, __u32 wakeup, __u32 first)
{
	struct ringcap_record *rec;
	__u64 rec_size;

	const struct ringcap_record_slot *ent = t->ent;
	__u32 cap_len = t->cap_len;
	if (cap_len > RINGCAP_MAX_SNAPLEN)
		return -1;
	switch (t->n) {
		TRY_CLASSES(1)
		TRY_CLASSES(2)
		TRY_CLASSES(3)
		TRY_CLASSES(4)
		TRY_CLASSES(5)
		TRY_CLASSES(6)
		TRY_CLASSES(7)
		TRY_CLASSES(8)
	}
	return -1;

fill:
	rec->tstamp_boot_ns = bpf_ktime_get_boot_ns();
	rec->ifindex = ctx->ingress_ifindex;
	rec->rx_queue = ctx->rx_queue_index;
	rec->pkt_len = t->pkt_len;
	rec->slot_mask = (__u16)t->mask;
	rec->flags = 0;
	/*
	 * Batched wake-ups: wake the consumer only when the pending data crosses
	 * wakeup_bytes, and (wake_first) when this record is the only one pending, so
	 * that the consumer learns that a trickle started and drains it within its
	 * bound. Otherwise userspace drains a trickle on a timer of its own.
	 */
	__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (avail >= wakeup && avail < (__u64)wakeup + rec_size + 8)
		flags = BPF_RB_FORCE_WAKEUP;
	else if (first && avail <= rec_size + 8)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
	return 1;
}

/*
 * Whether a slot wants the packet: its interfaces, its filter and its sampling (counted in
 * seen, matched and sampled_out). Inlined: a packet no slot wants makes no call.
 */
static __always_inline int slot_wants(struct xdp_md *ctx, __u32 slot, const struct pkt_meta *m,
				      struct ringcap_counters *c)
{
	struct ringcap_slot_counters *sc = &c->slot[slot & (RINGCAP_MAX_SLOTS - 1)];
	const struct ringcap_slot_config *cfg = &ringcap_config.slot[slot & (RINGCAP_MAX_SLOTS - 1)];
	if (!iface_match(cfg->ifindex, ctx->ingress_ifindex))
		return 0;
	sc->seen++;
	if (!filter_match(&cfg->filter, m))
		return 0;
	sc->matched++;
	__u32 rate = cfg->sample_rate;
	if (rate > 1 && bpf_get_prandom_u32() % rate != 0) {
		sc->sampled_out++;
		return 0;
	}
	return 1;
}

/*
 * Takes the budget of a packet that the slot wants from this CPU's lease (limit_reached if
 * none is left) and adds the slot to `t`. Returns 1 if the slot took the packet.
 */
__noinline int take_slot(struct xdp_md *ctx, __u32 slot, struct taken_slots *t)
{
	if (!ctx || !t)
		return 0;
	slot &= RINGCAP_MAX_SLOTS - 1;
	const struct ringcap_slot_config *cfg = &ringcap_config.slot[slot];
	if (!t->pkt_len)
		t->pkt_len = bpf_xdp_get_buff_len(ctx);
	__u32 pkt_len = t->pkt_len;
	__u32 cap_len = pkt_len < cfg->snaplen ? pkt_len : cfg->snaplen;
	if (cap_len > RINGCAP_MAX_SNAPLEN)
		cap_len = RINGCAP_MAX_SNAPLEN;

	__u32 cpu = bpf_get_smp_processor_id();
	__u32 key = cpu * RINGCAP_MAX_SLOTS + slot;
	struct ringcap_slot_lease *l = bpf_map_lookup_elem(&leases, &key);
	if (!l)
		return 0;
	if (!lease_take(l, cap_len)) {
		key = slot;
		struct ringcap_slot_budget *b = bpf_map_lookup_elem(&budgets, &key);
		if (!b || !lease_refill_take(l, b, slot, cpu, cap_len)) {
			__u32 zero = 0;
			struct ringcap_counters *c = bpf_map_lookup_elem(&counters, &zero);
			if (c)
				c->slot[slot].limit_reached++;
			return 0;
		}
	}
	__u32 k = t->n & (RINGCAP_MAX_SLOTS - 1);
	t->ent[k].cookie = cfg->cookie;
	t->ent[k].cap_len = cap_len;
	t->slot[k] = (__u8)slot;
	t->n = k + 1;
	t->mask |= 1u << slot;
	if (cap_len > t->cap_len)
		t->cap_len = cap_len;
	return 1;
}

/*
 * Writes the record of the slots in `t` and counts it for each of them: captured, or lost
 * with every slot's budget given back to its lease (ring_lost: the ring was full;
 * copy_failed: the copy failed).
 */
__noinline int emit_record(struct xdp_md *ctx, const struct taken_slots *t)
{
	__u32 zero = 0;
	struct ringcap_counters *c = bpf_map_lookup_elem(&counters, &zero);
	if (!ctx || !t || !c)
		return 0;
	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	int ret = ring ? write_record(ctx, ring, t, wakeup_bytes, wake_first) : 0;
	__u32 n = t->n;
	for (__u32 k = 0; k < RINGCAP_MAX_SLOTS && k < n; k++) {
		__u32 i = t->slot[k] & (RINGCAP_MAX_SLOTS - 1);
		struct ringcap_slot_counters *sc = &c->slot[i];
		__u32 cap_len = t->ent[k].cap_len;
		if (ret > 0) {
			sc->captured++;
			sc->bytes_captured += cap_len;
			continue;
		}
		__u32 key = cpu * RINGCAP_MAX_SLOTS + i;
		struct ringcap_slot_lease *l = bpf_map_lookup_elem(&leases, &key);
		if (l)
			lease_return(l, cap_len);
		if (ret == 0)
			sc->ring_lost++;
		else
			sc->copy_failed++;
	}
	return ret;
}

/*
 * The history slot's sampled packet: reloads this CPU's countdown, and if the packet came in
 * on one of the history's interfaces, writes its first snaplen bytes into the history ring
 * (counted in sampled, then emitted and bytes_emitted, or ring_full or copy_failed).
 */
__noinline int history_sample(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct ringcap_history_state *h = bpf_map_lookup_elem(&history_state, &zero);
	if (!ctx || !h)
		return 0;
	const struct ringcap_history_config *cfg = &ringcap_config.history;
	__u32 rate = cfg->sample_rate;
	h->countdown = rate > 1 ? 1 + bpf_get_prandom_u32() % (2 * rate - 1) : 1;
	if (!iface_match(cfg->ifindex, ctx->ingress_ifindex))
		return 0;
	h->sampled++;

	struct taken_slots t;
	t.pkt_len = bpf_xdp_get_buff_len(ctx);
	__u32 cap_len = t.pkt_len < cfg->snaplen ? t.pkt_len : cfg->snaplen;
	if (cap_len > RINGCAP_MAX_SNAPLEN)
		cap_len = RINGCAP_MAX_SNAPLEN;
	t.ent[0].cookie = cfg->cookie;
	t.ent[0].cap_len = cap_len;
	t.n = 1;
	t.mask = 1u << RINGCAP_HISTORY_RECORD_SLOT;
	t.cap_len = cap_len;
	void *ring = bpf_map_lookup_elem(&history_ring, &zero);
	int ret = ring ? write_record(ctx, ring, &t, cfg->wakeup_bytes, cfg->wake_first) : 0;
	if (ret > 0) {
		h->emitted++;
		h->bytes_emitted += cap_len;
	} else if (ret == 0) {
		h->ring_full++;
	} else {
		h->copy_failed++;
	}
	return ret;
}

/*
 * The history slot's part of every packet while it is armed: the sample decision first, a
 * per-CPU countdown (an inlined per-CPU map lookup, a load, a store), and nothing else for a
 * packet that is not sampled. A global function, verified once: inlined, its outcomes
 * multiplied the states the verifier walks through the jobs' path past its limit.
 */
__noinline int history_packet(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct ringcap_history_state *h = bpf_map_lookup_elem(&history_state, &zero);
	if (!ctx || !h)
		return 0;
	__u64 left = h->countdown;
	if (left > 1) {
		h->countdown = left - 1;
		return 0;
	}
	return history_sample(ctx);
}

SEC("xdp.frags")
int ringcap_xdp(struct xdp_md *ctx)
{
	__u32 mask = *(volatile __u32 *)&ringcap_config.active_mask;
	if (*(volatile __u32 *)&ringcap_config.history_armed)
		history_packet(ctx);
	if (!mask)
		return XDP_PASS;

	__u32 zero = 0;
	struct ringcap_counters *c = bpf_map_lookup_elem(&counters, &zero);
	if (!c)
		return XDP_PASS;
	c->packets++;

	struct pkt_meta m = {};
	parse_packet(ctx, &m, c);
	if (m.state == PARSE_NON_IP)
		c->non_ip++;
	else if (m.state == PARSE_BAD)
		c->malformed++;

	/*
	 * Every slot that takes the packet gets its budget from its own lease; then one record
	 * holds the packet for all of them, cut to the largest of their cap_lens.
	 */
	struct taken_slots t;
	int wanted = 0;
#pragma unroll
	for (__u32 i = 0; i < RINGCAP_MAX_SLOTS; i++) {
		if (!(mask & (1u << i)) || !slot_wants(ctx, i, &m, c))
			continue;
		if (!wanted) {
			/* ent and slot are written before they are read. */
			t.mask = t.n = t.cap_len = t.pkt_len = 0;
			wanted = 1;
		}
		take_slot(ctx, i, &t);
	}
	if (!wanted || !t.mask)
		return XDP_PASS;
	emit_record(ctx, &t);
	return XDP_PASS;
}
