package policytest

// Cases ported from the conformance suite of sigs.k8s.io/network-policy-api
// v0.2.0 (conformance/tests/*.go, Apache License 2.0): one entry per
// ConformanceTest, one step per t.Run, in order, with the mutations each
// step makes to the policies before it probes (they accumulate, as
// upstream patches the live objects), and every PokeServer as a probe with
// upstream's expected answer. The policies are upstream's manifests
// (conformance/base) in testdata/conformance, and the cluster they run on
// is testdata/conformance/base/cluster.yaml.

var ConformanceCases = []ConformanceCase{
	{
		Name:     "CNPAdminTierEgressNamedPort",
		Manifest: "admin_tier/standard-egress-tcp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name:   "Should support an 'allow-egress' policy for named port",
				Mutate: []Mutation{namedPort("egress-tcp", "egress", 5, "web")},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "TCP", 8080, false},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierEgressNodePeers",
		Manifest: "admin_tier/experimental-egress-selector-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-egress' rule policy for egress-node-peer",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-1", "forbidden-forrest/centaur-1", "TCP", 34345, true},
				},
			},
			{
				Name: "Should support a 'pass-egress' rule policy for egress-node-peer",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-1", "forbidden-forrest/centaur-1", "UDP", 34347, true},
				},
			},
			{
				Name: "Should support a 'deny-egress' rule policy for egress-node-peer",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-1", "forbidden-forrest/centaur-1", "TCP", 34346, false},
					{"gryffindor/harry-potter-1", "forbidden-forrest/centaur-1", "UDP", 34349, false},
					{"gryffindor/harry-potter-1", "forbidden-forrest/centaur-1", "SCTP", 34351, false},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierIngressNamedPort",
		Manifest: "admin_tier/standard-ingress-udp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name:   "Should support an 'allow-ingress' policy for named port",
				Mutate: []Mutation{namedPort("ingress-udp", "ingress", 5, "dns")},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "UDP", 5353, false},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierEgressInlineCIDRPeers",
		Manifest: "admin_tier/standard-egress-inline-cidr-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support a 'deny-egress' rule policy for egress-cidr-peer",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "SCTP", 9003, true},
				},
			},
			{
				Name:   "Should support an 'allow-egress' rule policy for egress-cidr-peer",
				Mutate: []Mutation{prependNetworks("inline-cidr-as-peers-example", "ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-0")},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "SCTP", 9003, false},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierEgressSCTP",
		Manifest: "admin_tier/standard-egress-sctp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-egress' policy for SCTP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-0", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "SCTP", 9005, true},
				},
			},
			{
				Name: "Should support an 'allow-egress' policy for SCTP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-1", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-1", "hufflepuff/cedric-diggory-1", "SCTP", 9005, false},
				},
			},
			{
				Name:   "Should support an 'deny-egress' policy for SCTP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("egress-sctp", "egress", 0, 1)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-1", "SCTP", 9003, false},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "SCTP", 9005, false},
				},
			},
			{
				Name: "Should support a 'deny-egress' policy for SCTP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "slytherin/draco-malfoy-0", "SCTP", 9003, false},
					{"ravenclaw/luna-lovegood-1", "slytherin/draco-malfoy-0", "SCTP", 9005, true},
				},
			},
			{
				Name:   "Should support an 'pass-egress' policy for SCTP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("egress-sctp", "egress", 0, 2)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-1", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "SCTP", 9005, true},
				},
			},
			{
				Name:   "Should support a 'pass-egress' policy for SCTP protocol at the specified port",
				Mutate: []Mutation{swapRules("egress-sctp", "egress", 3, 4)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "slytherin/draco-malfoy-0", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-1", "slytherin/draco-malfoy-0", "SCTP", 9005, true},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierEgressTCP",
		Manifest: "admin_tier/standard-egress-tcp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-egress' policy for TCP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "TCP", 8080, true},
				},
			},
			{
				Name: "Should support an 'allow-egress' policy for TCP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "TCP", 8080, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "TCP", 80, false},
				},
			},
			{
				Name:   "Should support an 'deny-egress' policy for TCP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("egress-tcp", "egress", 0, 1)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "TCP", 8080, false},
				},
			},
			{
				Name: "Should support a 'deny-egress' policy for TCP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, true},
				},
			},
			{
				Name:   "Should support an 'pass-egress' policy for TCP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("egress-tcp", "egress", 0, 2)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "TCP", 8080, true},
				},
			},
			{
				Name:   "Should support a 'pass-egress' policy for TCP protocol at the specified port",
				Mutate: []Mutation{swapRules("egress-tcp", "egress", 3, 4)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, true},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierEgressUDP",
		Manifest: "admin_tier/standard-egress-udp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-egress' policy for UDP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "ravenclaw/luna-lovegood-0", "UDP", 53, true},
					{"hufflepuff/cedric-diggory-1", "ravenclaw/luna-lovegood-0", "UDP", 5353, true},
				},
			},
			{
				Name: "Should support an 'allow-egress' policy for UDP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "UDP", 53, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "UDP", 5353, false},
				},
			},
			{
				Name:   "Should support an 'deny-egress' policy for UDP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("egress-udp", "egress", 0, 1)},
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "ravenclaw/luna-lovegood-1", "UDP", 53, false},
					{"hufflepuff/cedric-diggory-1", "ravenclaw/luna-lovegood-1", "UDP", 5353, false},
				},
			},
			{
				Name: "Should support a 'deny-egress' policy for UDP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "slytherin/draco-malfoy-0", "UDP", 5353, false},
					{"hufflepuff/cedric-diggory-1", "slytherin/draco-malfoy-0", "UDP", 53, true},
				},
			},
			{
				Name:   "Should support an 'pass-egress' policy for UDP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("egress-udp", "egress", 0, 2)},
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "ravenclaw/luna-lovegood-1", "UDP", 5353, true},
					{"hufflepuff/cedric-diggory-1", "ravenclaw/luna-lovegood-1", "UDP", 53, true},
				},
			},
			{
				Name:   "Should support a 'pass-egress' policy for UDP protocol at the specified port",
				Mutate: []Mutation{swapRules("egress-udp", "egress", 3, 4)},
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "slytherin/draco-malfoy-0", "UDP", 5353, true},
					{"hufflepuff/cedric-diggory-1", "slytherin/draco-malfoy-0", "UDP", 53, true},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierGress",
		Manifest: "admin_tier/standard-gress-rules-combined.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-gress' policy across different protocols",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "UDP", 53, true},
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "UDP", 53, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "SCTP", 9003, true},
				},
			},
			{
				Name: "Should support an 'allow-gress' policy across different protocols at the specified ports",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "TCP", 8080, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "TCP", 80, false},
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "UDP", 5353, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "UDP", 53, false},
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "SCTP", 9005, false},
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "TCP", 80, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "TCP", 8080, false},
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "UDP", 5353, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "UDP", 53, false},
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "SCTP", 9003, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "SCTP", 9005, false},
				},
			},
			{
				Name:   "Should support an 'deny-gress' policy across different protocols",
				Mutate: []Mutation{swapRules("gress-rules", "egress", 0, 1), swapRules("gress-rules", "ingress", 0, 1)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "UDP", 53, false},
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "SCTP", 9003, false},
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-1", "TCP", 80, false},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "UDP", 53, false},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "SCTP", 9003, false},
				},
			},
			{
				Name: "Should support a 'deny-gress' policy across different protocols at the specified ports",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, true},
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "UDP", 5353, true},
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "SCTP", 9005, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "UDP", 53, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "UDP", 5353, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "SCTP", 9003, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "SCTP", 9005, true},
				},
			},
			{
				Name:   "Should support an 'pass-gress' policy across different protocols",
				Mutate: []Mutation{swapRules("gress-rules", "egress", 0, 2), swapRules("gress-rules", "ingress", 0, 2)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "TCP", 80, true},
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "UDP", 5353, true},
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "UDP", 53, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "SCTP", 9003, true},
				},
			},
			{
				Name:   "Should support a 'pass-gress' policy across different protocols at the specified ports",
				Mutate: []Mutation{swapRules("gress-rules", "egress", 3, 4), swapRules("gress-rules", "ingress", 3, 4)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, true},
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "UDP", 5353, true},
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "SCTP", 9005, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "UDP", 53, true},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "UDP", 5353, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "SCTP", 9003, true},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "SCTP", 9005, true},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierIngressSCTP",
		Manifest: "admin_tier/standard-ingress-sctp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-ingress' policy for SCTP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "SCTP", 9005, true},
				},
			},
			{
				Name: "Should support an 'allow-ingress' policy for SCTP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "ravenclaw/luna-lovegood-1", "SCTP", 9003, true},
					{"hufflepuff/cedric-diggory-1", "ravenclaw/luna-lovegood-1", "SCTP", 9005, false},
				},
			},
			{
				Name:   "Should support an 'deny-ingress' policy for SCTP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("ingress-sctp", "ingress", 0, 1)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "SCTP", 9005, false},
				},
			},
			{
				Name: "Should support a 'deny-ingress' policy for SCTP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "ravenclaw/luna-lovegood-0", "SCTP", 9003, false},
					{"slytherin/draco-malfoy-1", "ravenclaw/luna-lovegood-0", "SCTP", 9005, true},
				},
			},
			{
				Name:   "Should support an 'pass-ingress' policy for SCTP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("ingress-sctp", "ingress", 0, 2)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "SCTP", 9005, true},
				},
			},
			{
				Name:   "Should support a 'pass-ingress' policy for SCTP protocol at the specified port",
				Mutate: []Mutation{swapRules("ingress-sctp", "ingress", 3, 4)},
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "ravenclaw/luna-lovegood-0", "SCTP", 9003, true},
					{"slytherin/draco-malfoy-1", "ravenclaw/luna-lovegood-0", "SCTP", 9005, true},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierIngressTCP",
		Manifest: "admin_tier/standard-ingress-tcp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-ingress' policy for TCP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
				},
			},
			{
				Name: "Should support an 'allow-ingress' policy for TCP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "TCP", 80, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "TCP", 8080, false},
				},
			},
			{
				Name:   "Should support an 'deny-ingress' policy for TCP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("ingress-tcp", "ingress", 0, 1)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-1", "TCP", 80, false},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "TCP", 8080, false},
				},
			},
			{
				Name: "Should support a 'deny-ingress' policy for TCP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
				},
			},
			{
				Name:   "Should support an 'pass-ingress' policy for TCP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("ingress-tcp", "ingress", 0, 2)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
				},
			},
			{
				Name:   "Should support a 'pass-ingress' policy for TCP protocol at the specified port",
				Mutate: []Mutation{swapRules("ingress-tcp", "ingress", 3, 4)},
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierIngressUDP",
		Manifest: "admin_tier/standard-ingress-udp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-ingress' policy for UDP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-0", "UDP", 53, true},
					{"ravenclaw/luna-lovegood-1", "hufflepuff/cedric-diggory-0", "UDP", 5353, true},
				},
			},
			{
				Name: "Should support an 'allow-ingress' policy for UDP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "UDP", 5353, false},
				},
			},
			{
				Name:   "Should support an 'deny-ingress' policy for UDP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("ingress-udp", "ingress", 0, 1)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-1", "UDP", 53, false},
					{"ravenclaw/luna-lovegood-1", "hufflepuff/cedric-diggory-1", "UDP", 5353, false},
				},
			},
			{
				Name: "Should support a 'deny-ingress' policy for UDP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "hufflepuff/cedric-diggory-0", "UDP", 5353, false},
					{"slytherin/draco-malfoy-1", "hufflepuff/cedric-diggory-0", "UDP", 53, true},
				},
			},
			{
				Name:   "Should support an 'pass-ingress' policy for UDP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("ingress-udp", "ingress", 0, 2)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-1", "UDP", 5353, true},
					{"ravenclaw/luna-lovegood-1", "hufflepuff/cedric-diggory-1", "UDP", 53, true},
				},
			},
			{
				Name:   "Should support a 'pass-ingress' policy for UDP protocol at the specified port",
				Mutate: []Mutation{swapRules("ingress-udp", "ingress", 3, 4)},
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "hufflepuff/cedric-diggory-0", "UDP", 5353, true},
					{"slytherin/draco-malfoy-1", "hufflepuff/cedric-diggory-0", "UDP", 53, true},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierIntegration",
		Manifest: "api_integration/standard-anp-np-banp.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should Deny traffic from slytherin to gryffindor respecting admin CNP",
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, false},
				},
			},
			{
				Name: "Should Deny traffic to slytherin from gryffindor respecting admin CNP",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, false},
				},
			},
			{
				Name:   "Should support a 'pass-ingress' policy for admin CNP and respect the match for network policy",
				Mutate: []Mutation{setAction("pass-example", "ingress", 0, "Pass")},
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
				},
			},
			{
				Name:   "Should support a 'pass-egress' policy for admin CNP and respect the match for network policy",
				Mutate: []Mutation{setAction("pass-example", "egress", 0, "Pass")},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, true},
				},
			},
			{
				Name:   "Should support a 'pass-ingress' policy for admin CNP and respect the match for baseline cluster network policy",
				Mutate: []Mutation{deleteNetworkPolicy("gryffindor", "allow-gress-from-to-slytherin-to-gryffindor")},
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, false},
				},
			},
			{
				Name: "Should support a 'pass-egress' policy for admin CNP and respect the match for baseline cluster network policy",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, false},
				},
			},
		},
	},
	{
		Name:     "CNPAdminTierPriorityField",
		Manifest: "admin_tier/standard-priority-field.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should Deny traffic from slytherin to gryffindor respecting admin CNP",
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, false},
				},
			},
			{
				Name: "Should Deny traffic to slytherin from gryffindor respecting admin CNP",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, false},
				},
			},
			{
				Name:   "Should respect admin CNP priority field; thus passing both ingress and egress traffic over to baseline CNP",
				Mutate: []Mutation{setPriority("old-priority-60-new-priority-40-example", 40)},
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, true},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierEgressNamedPort",
		Manifest: "baseline_tier/standard-egress-udp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name:   "Should support an 'allow-egress' policy for named port",
				Mutate: []Mutation{namedPort("default", "egress", 3, "dns")},
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "UDP", 53, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "UDP", 5353, false},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierEgressNodePeers",
		Manifest: "baseline_tier/experimental-egress-selector-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-egress' rule policy for egress-node-peer",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "forbidden-forrest/centaur-1", "TCP", 34345, true},
					{"gryffindor/harry-potter-1", "forbidden-forrest/centaur-1", "TCP", 34346, true},
				},
			},
			{
				Name: "Should support a 'deny-egress' rule policy for egress-node-peer",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-1", "forbidden-forrest/centaur-1", "UDP", 34349, false},
					{"gryffindor/harry-potter-1", "forbidden-forrest/centaur-1", "SCTP", 34351, false},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierIngressNamedPort",
		Manifest: "baseline_tier/standard-ingress-tcp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name:   "Should support an 'allow-ingress' policy for named port",
				Mutate: []Mutation{namedPort("default", "ingress", 3, "web")},
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "TCP", 80, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "TCP", 8080, false},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierEgressInlineCIDRPeers",
		Manifest: "baseline_tier/standard-egress-inline-cidr-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support a 'deny-egress' rule policy for egress-cidr-peer",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "SCTP", 9003, true},
				},
			},
			{
				Name:   "Should support an 'allow-egress' rule policy for egress-cidr-peer",
				Mutate: []Mutation{prependNetworks("default", "ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-0")},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-0", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "SCTP", 9003, false},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierEgressSCTP",
		Manifest: "baseline_tier/standard-egress-sctp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-egress' policy for SCTP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-0", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "SCTP", 9005, true},
				},
			},
			{
				Name: "Should support an 'allow-egress' policy for SCTP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-1", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-1", "hufflepuff/cedric-diggory-1", "SCTP", 9005, false},
				},
			},
			{
				Name:   "Should support an 'deny-egress' policy for SCTP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("default", "egress", 0, 1)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-1", "SCTP", 9003, false},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "SCTP", 9005, false},
				},
			},
			{
				Name: "Should support a 'deny-egress' policy for SCTP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "slytherin/draco-malfoy-0", "SCTP", 9003, false},
					{"ravenclaw/luna-lovegood-1", "slytherin/draco-malfoy-0", "SCTP", 9005, true},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierEgressTCP",
		Manifest: "baseline_tier/standard-egress-tcp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-egress' policy for TCP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "TCP", 8080, true},
				},
			},
			{
				Name: "Should support an 'allow-egress' policy for TCP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "TCP", 8080, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "TCP", 80, false},
				},
			},
			{
				Name:   "Should support an 'deny-egress' policy for TCP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("default", "egress", 0, 1)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "TCP", 8080, false},
				},
			},
			{
				Name: "Should support a 'deny-egress' policy for TCP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, true},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierEgressUDP",
		Manifest: "baseline_tier/standard-egress-udp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-egress' policy for UDP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "ravenclaw/luna-lovegood-0", "UDP", 53, true},
					{"hufflepuff/cedric-diggory-1", "ravenclaw/luna-lovegood-0", "UDP", 5353, true},
				},
			},
			{
				Name: "Should support an 'allow-egress' policy for UDP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "UDP", 53, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "UDP", 5353, false},
				},
			},
			{
				Name:   "Should support an 'deny-egress' policy for UDP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("default", "egress", 0, 1)},
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "ravenclaw/luna-lovegood-1", "UDP", 53, false},
					{"hufflepuff/cedric-diggory-1", "ravenclaw/luna-lovegood-1", "UDP", 5353, false},
				},
			},
			{
				Name: "Should support a 'deny-egress' policy for UDP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "slytherin/draco-malfoy-0", "UDP", 5353, false},
					{"hufflepuff/cedric-diggory-1", "slytherin/draco-malfoy-0", "UDP", 53, true},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierGress",
		Manifest: "baseline_tier/standard-gress-rules-combined.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-gress' policy across different protocols",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "TCP", 80, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "UDP", 53, true},
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "SCTP", 9003, true},
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "UDP", 53, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "SCTP", 9003, true},
				},
			},
			{
				Name: "Should support an 'allow-gress' policy across different protocols at the specified ports",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "TCP", 8080, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "TCP", 80, false},
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "UDP", 5353, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "UDP", 53, false},
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "SCTP", 9005, false},
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "TCP", 80, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "TCP", 8080, false},
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "UDP", 5353, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "UDP", 53, false},
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "SCTP", 9003, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "SCTP", 9005, false},
				},
			},
			{
				Name:   "Should support an 'deny-gress' policy across different protocols",
				Mutate: []Mutation{swapRules("default", "egress", 0, 1), swapRules("default", "ingress", 0, 1)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "UDP", 53, false},
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "SCTP", 9003, false},
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-1", "TCP", 80, false},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "UDP", 53, false},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "SCTP", 9003, false},
				},
			},
			{
				Name: "Should support a 'deny-gress' policy across different protocols at the specified ports",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "TCP", 80, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "TCP", 8080, true},
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "UDP", 53, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "UDP", 5353, true},
					{"gryffindor/harry-potter-0", "slytherin/draco-malfoy-0", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "slytherin/draco-malfoy-0", "SCTP", 9005, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "UDP", 53, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "UDP", 5353, true},
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "SCTP", 9003, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "SCTP", 9005, true},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierIngressSCTP",
		Manifest: "baseline_tier/standard-ingress-sctp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-ingress' policy for SCTP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-0", "SCTP", 9003, true},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-0", "SCTP", 9005, true},
				},
			},
			{
				Name: "Should support an 'allow-ingress' policy for SCTP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "ravenclaw/luna-lovegood-1", "SCTP", 9003, true},
					{"hufflepuff/cedric-diggory-1", "ravenclaw/luna-lovegood-1", "SCTP", 9005, false},
				},
			},
			{
				Name:   "Should support an 'deny-ingress' policy for SCTP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("default", "ingress", 0, 1)},
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "ravenclaw/luna-lovegood-1", "SCTP", 9003, false},
					{"gryffindor/harry-potter-1", "ravenclaw/luna-lovegood-1", "SCTP", 9005, false},
				},
			},
			{
				Name: "Should support a 'deny-ingress' policy for SCTP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "ravenclaw/luna-lovegood-0", "SCTP", 9003, false},
					{"slytherin/draco-malfoy-1", "ravenclaw/luna-lovegood-0", "SCTP", 9005, true},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierIngressTCP",
		Manifest: "baseline_tier/standard-ingress-tcp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-ingress' policy for TCP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-0", "TCP", 80, true},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
				},
			},
			{
				Name: "Should support an 'allow-ingress' policy for TCP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"hufflepuff/cedric-diggory-0", "gryffindor/harry-potter-1", "TCP", 80, true},
					{"hufflepuff/cedric-diggory-1", "gryffindor/harry-potter-1", "TCP", 8080, false},
				},
			},
			{
				Name:   "Should support an 'deny-ingress' policy for TCP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("default", "ingress", 0, 1)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "gryffindor/harry-potter-1", "TCP", 80, false},
					{"ravenclaw/luna-lovegood-1", "gryffindor/harry-potter-1", "TCP", 8080, false},
				},
			},
			{
				Name: "Should support a 'deny-ingress' policy for TCP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "gryffindor/harry-potter-0", "TCP", 80, false},
					{"slytherin/draco-malfoy-1", "gryffindor/harry-potter-0", "TCP", 8080, true},
				},
			},
		},
	},
	{
		Name:     "CNPBaselineTierIngressUDP",
		Manifest: "baseline_tier/standard-ingress-udp-rules.yaml",
		Steps: []ConformanceStep{
			{
				Name: "Should support an 'allow-ingress' policy for UDP protocol; ensure rule ordering is respected",
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-0", "UDP", 53, true},
					{"ravenclaw/luna-lovegood-1", "hufflepuff/cedric-diggory-0", "UDP", 5353, true},
				},
			},
			{
				Name: "Should support an 'allow-ingress' policy for UDP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"gryffindor/harry-potter-0", "hufflepuff/cedric-diggory-1", "UDP", 53, true},
					{"gryffindor/harry-potter-1", "hufflepuff/cedric-diggory-1", "UDP", 5353, false},
				},
			},
			{
				Name:   "Should support an 'deny-ingress' policy for UDP protocol; ensure rule ordering is respected",
				Mutate: []Mutation{swapRules("default", "ingress", 0, 1)},
				Probes: []ConformanceProbe{
					{"ravenclaw/luna-lovegood-0", "hufflepuff/cedric-diggory-1", "UDP", 53, false},
					{"ravenclaw/luna-lovegood-1", "hufflepuff/cedric-diggory-1", "UDP", 5353, false},
				},
			},
			{
				Name: "Should support a 'deny-ingress' policy for UDP protocol at the specified port",
				Probes: []ConformanceProbe{
					{"slytherin/draco-malfoy-0", "hufflepuff/cedric-diggory-0", "UDP", 5353, false},
					{"slytherin/draco-malfoy-1", "hufflepuff/cedric-diggory-0", "UDP", 53, true},
				},
			},
		},
	},
}
