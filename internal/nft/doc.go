// Package nft enforces the Model's policy on one node with nftables: the
// tiers of cluster-wide policy (ClusterNetworkPolicy, AdminNetworkPolicy,
// BaselineAdminNetworkPolicy) and NetworkPolicy, in upstream's order. It is
// a pure compiler from the Model to a small typed IR (compiler.go, ir.go), a text
// renderer for golden files (render.go), an interpreter of the IR that
// tests and conntrack clean-up share (eval.go), and a thin applier on
// github.com/google/nftables (apply_linux.go).
//
// # The node it compiles for
//
// Routed, Calico-style IPv4, as internal/cni wires it: each local pod has a
// /32 and one host veth; the node routes the /32 to the veth and answers ARP
// for the pods' gateway 169.254.1.1 by proxy. Pod to pod on the node, pod to
// remote pod (out of the TUN device or another interface) and remote to
// local pod are FORWARDed; pod to node and node to pod go through INPUT and
// OUTPUT, which the table leaves alone: traffic between a pod and its own
// node is always allowed (the verdict engine's "node" evaluator), and a pod
// reaching itself never leaves its namespace ("loopback"). Any address of
// the node's namespace counts as the node (169.254.1.1 included), not only
// those the Node object lists.
//
// # The path of a packet through table inet rampart
//
//  1. prerouting, priority raw (before conntrack sees it): IPv6 from a pod
//     veth is dropped (pods are IPv4-only, and every later rule reads IPv4
//     headers). Anti-spoofing: a packet from a pod veth must carry that
//     pod's address (iifname . ip saddr @pod_src), and a local pod's
//     address may arrive from no other interface. After this, a local pod's
//     address is an identity that policy can trust. A pod veth (rmp*) that
//     is not in pod_ifaces yet, because the CNI plugin wired its pod before
//     the agent compiled it, passes nothing (fail closed).
//     Then chain l7 (prerouting, priority -151, after conntrack): a new
//     TCP connection to a local pod in l7_targets (the pods an
//     AuthorizationPolicy selects) is judged by the egress and ingress
//     chains (3 and 4) right away, because table inet rampart_l7 then
//     hands it to the node's L7 proxy (TPROXY, priority mangle) and it is
//     never forwarded. L3/L4 policy first, then the proxy's L7 decision.
//  2. forward, priority filter: IPv6 towards a pod veth is dropped; packets
//     of tracked connections pass (ct state established,related: replies of
//     allowed connections, and what the policy allowed when they began);
//     nothing goes to a pod veth that is not in pod_ifaces yet; a
//     TCP packet to or from a pod that is neither tracked nor a SYN is
//     dropped, so that a connection whose conntrack entry was deleted
//     cannot be picked up again from its other end.
//  3. egress, for every forwarded packet: if the source is a local pod
//     that a policy governs for egress, the destination must be allowed by
//     its profile, else drop.
//  4. ingress, the same for a destination that is a local pod governed
//     for ingress, with the source as the peer.
//
// A flow between two local pods passes both 3 and 4: the source's egress
// and the destination's ingress must both allow it, as in Model.Verdict.
// A flow between nodes passes 3 on the source's node and 4 on the
// destination's; each node enforces for its own pods only, which is
// enough since every pod is local to exactly one node.
//
// # The IR layout, and why
//
// Chains and rules are the same for every node and every Model (see
// chains in compiler.go). Everything that depends on pods and policies is
// a set element, so pod churn and policy changes never change a rule, and
// the cost per packet is a constant: at most nine map and set lookups per
// direction, whatever the number of policies, rules and pods.
//
//   - Profiles, for the subject of a decision: the local pods of one
//     namespace that the same NetworkPolicies isolate in a direction, that
//     the same cluster-wide policies select, and that have (for ingress)
//     the same named ports, decide alike. They share a profile, a 32-bit
//     number hashed from that key so that it stays put while other pods and
//     profiles come and go. Maps ingress_profile and egress_profile give a
//     local pod's profile; a pod that no policy governs in a direction is
//     not in the map, and that direction lets everything through (the
//     "default" evaluator).
//   - The tiers are compiled, not interpreted: for each profile and each
//     peer (a class of pods, or a range of addresses), the compiler walks
//     the Admin tier by priority, then NetworkPolicy, then the Baseline
//     tier, then the default, as the verdict engine does, over the space of
//     protocols and ports (a rule's first match decides what it matches and
//     nothing before it decided; a Pass hands it to the next tier). What is
//     left allowed becomes set elements. So the chains do not change with
//     tiers, priorities or actions, and a packet costs the same lookups
//     whatever the policies.
//   - Classes, for the peer (Cilium's identities; the verdict engine's
//     classes): pods of the cluster that no policy can tell apart as peers,
//     i.e. with the same namespace, labels, container ports and ipBlocks
//     around their addresses, share a class number, hashed from that key.
//     Map pod_class holds every pod address of the cluster and its class.
//   - Allow sets, two per direction, with ranges in every field (the
//     kernel's pipapo sets), keyed by a concatenation of map lookups and
//     packet fields. *_pods is profile . peer class . protocol . port: what
//     rules allow by pod (selector peers, and for egress the named ports,
//     which resolve against the destination's own container ports), one
//     element per class rather than per pod. *_nets is profile . address
//     range . protocol . port: what rules allow by address (ipBlocks minus
//     their exceptions, and rules without peers), cut into ranges that never
//     overlap; it holds no pod address. Ports are ranges: endPort; a
//     protocol alone is 0-65535; a rule without ports is every protocol
//     0-255 and every port, ICMP included. A pod address inside an ipBlock
//     is covered by the *_nets ranges, as Peer.MatchesEndpoint matches
//     ipBlocks against pod addresses too.
//   - Deny sets, one per direction, keyed as the *_pods sets: what a tier
//     denies a class of pods though their addresses lie in a range that
//     the *_nets set allows (an Admin Deny of a namespace inside an
//     accepted network, say). The chain asks them between the *_pods and
//     the *_nets sets. Where a profile's tiers deny most classes (a
//     Baseline Deny of every other namespace), it is cheaper to list the
//     classes it allows in *_pods and deny all others with one element
//     whose class field is the whole range 0x00000000-0xffffffff: the
//     compiler takes, per profile, whichever needs fewer elements. With
//     NetworkPolicy alone they are empty: it only allows.
//   - Anti-spoofing sets: pod_ifaces, pod_addrs and pod_src (veth .
//     address).
//
// So a pod that joins an existing class adds one element (its address in
// pod_class), plus, if it is local, its veth and address to the
// anti-spoofing sets and its profiles to the profile maps; a pod of a new
// class adds that class's elements to the *_pods sets. Nothing is removed
// and no rule changes (TestChurnAddsElementsOnly).
//
// The compiler reads the Model's rules directly and follows the verdict
// engine's code (Peer.MatchesEndpoint, Peer.MatchesAddr, Port.Matches); the
// tests hold the two together: the interpreter runs each compiled ruleset
// on every pair of interesting addresses and ports and compares with
// Model.Verdict (golden inputs and random clusters), and the privileged
// lab compares the kernel with Model.Verdict on real packets.
//
// # Applying
//
// Apply sends one batch: add the table (a no-op if it exists), delete it,
// add the new one whole. nf_tables commits a batch atomically or not at
// all, so a batch the kernel refuses leaves the previous rules in force,
// and no packet sees a half-built table. An Applier (what the agent uses)
// remembers the ruleset it committed and sends the next one, when only
// elements differ (diff.go), as one batch of element deletions and
// additions: as atomic, and as cheap as the change is small. It replaces
// the table whole on its first use, after any error, when the skeleton
// changes, when the table or a set is gone, and every DefaultResync. It
// also does when a change would delete many elements from the pipapo sets,
// which costs the kernel more than a whole table (maxIntervalDeletes); and
// elements whose profile no local pod has any more, which no packet can
// match, it leaves in place until the next whole table (Changes.Unreachable):
// so a pod that leaves the node costs a few deletions, not its profile's
// hundreds. The table has no owner flag: it
// outlives the agent, and a node whose agent stopped keeps enforcing its
// last rules (fail closed). After a commit, Apply deletes the conntrack
// entries of forwarded flows that the new rules would not let start
// (judged by the interpreter on the entry's original source and its reply
// source and port, so DNAT is seen as the forward hook sees it), so a
// policy change holds for established connections too. Apply is not safe
// to call concurrently for one namespace; the agent serializes changes.
//
// # Left out, on purpose
//
//   - IPv6 pods: IPv6 from and to pod veths is dropped.
//   - hostNetwork pods have no veth and are not isolated (as upstream).
//   - Services: the forward hook sees packets after kube-proxy's DNAT, so
//     policy applies to the backend pod's address and port, as upstream
//     specifies (the conntrack clean-up uses the reply tuple for the same
//     reason). Traffic that is SNATed to the node's address before it
//     reaches a pod is judged by that address.
//   - Domain names of cluster-wide policies: nothing resolves them, so a
//     domainNames peer matches no address, and traffic to those names is
//     decided by the rules after it (upstream allows domain names in
//     Accept rules only, so this never allows more than the policy says).
//     Ruleset.Unenforced says so, in words.
//   - Traffic between a pod and its own node, which every tier allows, as
//     the verdict engine does: it goes through INPUT and OUTPUT.
//   - Loading the table into a netns where conntrack was off drops the
//     untracked mid-stream TCP of connections that existed before (rule
//     2); on a node conntrack is on long before the agent starts.
package nft
