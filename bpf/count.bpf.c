// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A stand-in for a host's own XDP program (a DDoS filter, a load balancer): counts
 * every packet it sees and passes it on. Tests load it with xdp-loader next to
 * ringcap to check that both run through libxdp's dispatcher.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <xdp/xdp_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ringcap_count_pkts SEC(".maps");

struct {
	__uint(priority, 60);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(xdp_count);

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&ringcap_count_pkts, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_PASS;
}
