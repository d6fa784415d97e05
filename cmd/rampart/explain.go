package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rampartnet/rampart/internal/authz"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
)

func newExplainCmd() *cobra.Command {
	var (
		in       inputFlags
		from, to string
		probe    string
		output   string
		httpReq  string
	)
	cmd := &cobra.Command{
		Use:   "explain [PATH...] --from NS/NAME|ADDRESS --to NS/NAME|ADDRESS --probe PORT/PROTOCOL",
		Short: "Say whether one connection is allowed, and which rules decide it",
		Long: `explain decides one connection and names what decided each side of it: the
source's egress and the destination's ingress, each decided by a tier in
order, as upstream evaluates them: the admin tier of cluster-wide policies
(ClusterNetworkPolicy, AdminNetworkPolicy; the first matching rule by
priority accepts, denies, or passes to the tiers below), NetworkPolicy (a
rule allows, or isolation with no matching rule denies), the baseline tier
(ClusterNetworkPolicy tier Baseline, BaselineAdminNetworkPolicy), then the
default, which allows. Each rule is named with its file:line. Built-in rules
come first: a pod reaches itself and its own node; hostNetwork pods and
addresses outside the cluster are not isolated.

When L3/L4 allow the connection and Istio AuthorizationPolicies select the
destination, its node's L7 proxy decides next, as the nodes do: with
--http METHOD:/path the request is decided in Istio's order (DENY, then
ALLOW; a workload with an ALLOW policy takes only what one allows), the
caller known by its workload identity (cluster.local/ns/NS/sa/SA); without
it, the connection carries no HTTP and is refused.

Exit status 0 means explain ran, whether the connection is allowed or not.` + sourceHelp + exitCodesHelp,
		Example: `  rampart explain examples/wordpress/hardened --from web/wordpress --to data/mysql --probe 3306/TCP
  rampart explain examples/wordpress/hardened --from web/wordpress --to 203.0.113.10 --probe 443/TCP -o json
  rampart explain examples/l7 --from prod/api-local --to prod/search --probe 8080/TCP --http POST:/query`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, paths []string) error {
			if err := outputFormat(output, "text", "json"); err != nil {
				return err
			}
			if from == "" || to == "" {
				return fmt.Errorf("explain needs --from and --to")
			}
			pr, err := policy.ParseProbe(probe)
			if err != nil {
				return err
			}
			req, err := parseHTTP(httpReq)
			if err != nil {
				return err
			}
			m, snap, err := in.loadAll(cmd.Context(), paths, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			view, ads := authzDiagnostics(snap, in.source.mesh)
			if cluster.HasErrors(ads) {
				printDiagnostics(cmd.ErrOrStderr(), ads, true)
				return findings("the input's AuthorizationPolicies have %d error(s)", countSeverity(ads, cluster.Error))
			}
			src, err := m.Party(from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			dst, err := m.Party(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			q := pr.Query(src, dst)
			r := m.Verdict(q)
			// L3/L4 first: the L7 proxy sees only what they allow.
			var l7d l7Decision
			if r.Allowed {
				l7d = view.decide(q, pr, r.Port, req)
			}
			if output == "json" {
				return writeExplainJSON(cmd.OutOrStdout(), q, pr, r, l7d)
			}
			writeExplainText(cmd.OutOrStdout(), q, pr, r, l7d, req)
			return nil
		},
	}
	in.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "source: namespace/name of a pod or workload, or an IP address")
	cmd.Flags().StringVar(&to, "to", "", "destination: namespace/name of a pod or workload, or an IP address")
	cmd.Flags().StringVar(&probe, "probe", "80/TCP", "destination PORT/PROTOCOL, e.g. 3306/TCP or http/TCP")
	cmd.Flags().StringVar(&httpReq, "http", "", "an HTTP request on the connection, METHOD:/path (e.g. POST:/api), for the AuthorizationPolicies")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func writeExplainText(w io.Writer, q policy.Query, pr policy.Probe, r policy.Result, l7d l7Decision, req *authz.HTTP) {
	verdict := "DENIED"
	if r.Allowed && (!l7d.Applies || l7d.Allowed) {
		verdict = "ALLOWED"
	}
	what := pr.String()
	if req != nil {
		what += ", " + req.Method + " " + req.Path
	}
	fmt.Fprintf(w, "%s -> %s on %s: %s\n", q.From, q.To, what, verdict)
	defer writeL7Text(w, l7d, req)
	side := func(name string, p policy.Party, d policy.Decision) {
		state := "denied"
		if d.Allowed {
			state = "allowed"
		}
		by := d.By
		if by == "admin" || by == "baseline" {
			by += " tier"
		}
		fmt.Fprintf(w, "  %s at %s: %s (%s)\n", name, p, state, by)
		if pass := d.PassedBy; pass != nil {
			// The Pass came first: say so before what decided after it.
			fmt.Fprintf(w, "    passed on by %s, %s%s\n", pass, pass.Path, at(pass.Pos))
		}
		fmt.Fprintf(w, "    %s\n", d.Reason)
		if r := d.ClusterRule; r != nil {
			fmt.Fprintf(w, "    - %s, %s%s\n", r, r.Path, at(r.Pos))
		}
		for _, rule := range d.Rules {
			fmt.Fprintf(w, "    - %s, %s%s\n", rule, rule.Path, at(rule.Pos))
		}
		for _, n := range d.Notes {
			fmt.Fprintf(w, "    note: %s\n", n)
		}
	}
	side("egress", q.From, r.Egress)
	side("ingress", q.To, r.Ingress)
}

func writeExplainJSON(w io.Writer, q policy.Query, pr policy.Probe, r policy.Result, l7d l7Decision) error {
	out := struct {
		From     string          `json:"from"`
		To       string          `json:"to"`
		Port     int32           `json:"port"`
		PortName string          `json:"portName,omitempty"`
		Protocol string          `json:"protocol"`
		Allowed  bool            `json:"allowed"`
		Egress   policy.Decision `json:"egress"`
		Ingress  policy.Decision `json:"ingress"`
		// L7 is the AuthorizationPolicy layer, when it applies.
		L7 *l7Decision `json:"l7,omitempty"`
	}{q.From.String(), q.To.String(), r.Port, pr.Name, string(pr.Protocol), r.Allowed && (!l7d.Applies || l7d.Allowed), r.Egress, r.Ingress, nil}
	if l7d.Applies {
		out.L7 = &l7d
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// at is " at file:line", or nothing when the position is not known.
func at(pos string) string {
	if pos == "" {
		return ""
	}
	return " at " + pos
}
