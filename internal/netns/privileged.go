package netns

import (
	"os"
	"testing"
)

// RequirePrivilegedEnv names the environment variable that turns the skip
// of a privileged test into a failure when set to "1". CI sets it, so a
// runner that lost root (or the suite) cannot pass by skipping everything.
const RequirePrivilegedEnv = "RAMPART_REQUIRE_PRIVILEGED"

var geteuid = os.Geteuid // tests replace it

// RequirePrivileged skips t unless the process can make network namespaces
// (it runs as root). With RAMPART_REQUIRE_PRIVILEGED=1 it fails t instead of
// skipping it. Call it first in every TestPrivileged… test and benchmark.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if geteuid() == 0 {
		return
	}
	const why = "needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to make network namespaces; run as root, e.g. sudo -E go test"
	if os.Getenv(RequirePrivilegedEnv) == "1" {
		t.Fatalf("%s; %s=1 forbids skipping", why, RequirePrivilegedEnv)
		return
	}
	t.Skip(why)
}
