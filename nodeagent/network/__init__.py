"""Cross-node application networks, the agent's half: routes, firewall, names.

The control plane gives every (application network, node) pair with containers a block of the
cluster's pod range and sends each node the networks it takes part in (`ccs.v1.NetworkMap`:
every block with its node's address, and each service name's ready addresses). The node's
application bridge already has its block as subnet (`Container.subnets`). This package makes
the blocks of one network one network across nodes, and nothing more:

1. Routes, host-gw style (flannel's host-gw backend): each other node's blocks are routed via
   that node's address, with ccs's own route protocol number so exactly ccs's routes are
   listed and removed (`routes`, pyroute2). Packets travel unencapsulated, at the speed of
   the host's own routing; the price is that nodes must share a link (one L2 segment), as
   with host-gw.
2. Source addresses kept: Docker masquerades what leaves a bridge; pod-to-pod traffic is
   exempted (a nat chain jumped to from the top of POSTROUTING), so the receiving node's
   firewall sees which container sent it.
3. Firewall in DOCKER-USER: replies, published ports (Docker's DNAT: routers and users reach
   containers as before) and traffic within one network's blocks pass; everything else into or
   out of this node's blocks is dropped; `internal` networks have no egress (`rules`, applied by
   `firewall` with ipset and iptables-restore, one transaction per table).
4. Names: a resolver on a link-local address (`--resolver-address`, default 169.254.20.53, on
   the link `ccs-dns0`) that every ccs container uses as DNS server; Docker's embedded DNS
   forwards it what it does not know from the container's own address, which names the
   container, and so the networks whose names are answered (`names`, `resolver`).
5. Containers on several networks: routes inside them, so that each network's blocks are
   reached from the address on that network (`endpoints`, planned in `plan`). The engine's network aliases are
   gone: a name has one source of truth, the map, and means the same on every node.

`plan`, `rules` and `names` are pure (tables of cases test them); `routes`, `firewall` and
`resolver` do the I/O; `fabric.NetworkFabric` ties them to the agent (apply when a map arrives,
again every 30 s and after an engine restart, and report failures in the node's status).
This package's `__init__` imports none of them, so importing a pure module (or the agent
with the fabric off, as hollow nodes run) loads neither pyroute2 nor the resolver.

Alternatives considered and rejected:
- VXLAN overlay through Docker Swarm mode (`docker network create -d overlay`): it needs every
  engine in one Swarm, i.e. a second control plane (Raft managers, its own scheduler and
  membership) beside ccs's, with its own failure modes and its own idea of which node is up;
  attachable overlays also hand out addresses from Swarm's IPAM, not from ccs's allocator.
- flannel or Calico as external daemons: both are built around a Kubernetes API or their own
  etcd schema for subnet leases and policy; running them means a second source of truth for
  blocks (ccs already allocates them) and another daemon per node to install, upgrade and
  watch. What ccs needs from them (host-gw routes, iptables policy) is a few dozen lines
  over netlink and iptables-restore, fed by the map ccs already sends.
- A userspace forwarder (a proxy per port, or a TUN device read by the agent): every packet
  crosses user space twice, UDP and arbitrary ports need per-flow state, and the agent would
  sit on the data path, so an agent restart would cut connections. Kernel routing does not
  care whether the agent runs.
- Engine aliases plus cross-node /etc/hosts entries (extra_hosts): names would be frozen at
  container creation, so a rescheduled container would stay unresolvable under its new address.
"""

#: NodeLocal DNSCache's choice: link-local, so no host network or pod range can hold it.
DEFAULT_RESOLVER_ADDRESS = "169.254.20.53"
