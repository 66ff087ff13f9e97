// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The benchmark's packet generator: run with BPF_PROG_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES) on the generator's end of a veth pair, it sends every frame
 * out of that end with XDP_TX, so the peer receives it as real traffic. It is never attached
 * to an interface.
 *
 * Each frame is Ethernet/IPv4/UDP. The program rewrites the UDP destination port to
 * port_base + (n % port_spread), n counting the frames sent since userspace last reset
 * `frames`, so that a filter on port_base matches exactly one frame in port_spread. The UDP
 * checksum is 0 (none, allowed in IPv4), so nothing else changes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u16 port_base = 5000;
const volatile __u32 port_spread = 100;

/* Frames sent (XDP_TX) and frames refused because they were not IPv4/UDP. Live frames run
 * on the calling thread's CPU only, so plain increments are exact. */
__u64 frames = 0;
__u64 refused = 0;

SEC("xdp")
int xdp_bench_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP) {
		refused++;
		return XDP_DROP;
	}
	__u64 n = frames++;
	udp->dest = bpf_htons((__u16)(port_base + n % port_spread));
	return XDP_TX;
}
