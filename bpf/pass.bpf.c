// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The empty XDP program: the cost baseline for benchmarks. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
