// Command rampart-cni is Rampart's CNI plugin: the container runtime runs
// it for ADD, DEL, CHECK and VERSION (CNI spec 1.0) with the network
// configuration on stdin. It only wires skel to internal/cni, where the
// logic and its documentation live.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/rampartnet/rampart/internal/cni"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	p := &cni.Plugin{}
	skel.PluginMainFuncs(skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check}, cni.VersionInfo, "Rampart CNI plugin rampart-cni "+version)
}
