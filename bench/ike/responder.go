package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"syscall"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
)

// runResponder runs Rampart's responder: one ike.Daemon with an esp.Table
// as its SA database on UDP 4500 of -addr, with one peer per identity.
//
// A Config has a single RemoteID, and the daemon picks the config for an
// IKE SA by the identity the initiator proves in IKE_AUTH among those that
// may answer its address (those at the address, then those at 0.0.0.0).
// So n identities are n configs at 0.0.0.0:0, each allowed its own /32;
// strongSwan does it with one connection and `id = %any`.
//
// It prints "ready peers=N" once listening, a memstats line at start, once
// configured and on SIGUSR1 (after a garbage collection), and exits on
// SIGTERM or SIGINT, writing the profiles asked for.
func runResponder(args []string) error {
	fs := flag.NewFlagSet("responder", flag.ContinueOnError)
	var c common
	c.flags(fs)
	addr := fs.String("addr", "", "address to answer on, UDP 4500 (required)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile (runtime/pprof) of the whole run to this file")
	memprofile := fs.String("memprofile", "", "write a heap profile to this file on exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	err := c.check()
	local, perr := netip.ParseAddr(*addr)
	if perr != nil {
		err = errors.Join(err, fmt.Errorf("-addr %q: %w", *addr, perr))
	}
	if err != nil {
		return err
	}

	var established, failed atomic.Int64
	memstats := func(stage string) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Printf("memstats stage=%s established=%d failed=%d heap-inuse=%d heap-alloc=%d heap-sys=%d stack-inuse=%d sys=%d gc-cycles=%d rss-kib=%d\n",
			stage, established.Load(), failed.Load(), m.HeapInuse, m.HeapAlloc, m.HeapSys, m.StackInuse, m.Sys, m.NumGC, rssKiB())
	}
	memstats("start")

	table := esp.NewTable(esp.TableOptions{})
	defer table.Close()
	ep, err := listen(local)
	if err != nil {
		return err
	}
	defer ep.conn.Close()
	// No COOKIEs, as charon is configured in run.sh: the benchmark's
	// window keeps fewer half-open IKE SAs than the default threshold
	// anyway, and a cookie round trip is not what it measures.
	d := ike.New(table, ep.send, ike.Options{Logger: c.logger, CookieThreshold: 1 << 30,
		OnEstablished: func(peer string, err error) {
			if err != nil {
				failed.Add(1)
				return
			}
			established.Add(1)
		}})
	for i := 1; i <= c.n; i++ {
		name := clientName(i)
		if err := d.AddPeer(ike.Config{Name: name, Remote: netip.AddrPortFrom(netip.IPv4Unspecified(), 0),
			LocalID: c.responderID, RemoteID: fqdn(name), PSK: c.psk,
			IKEProposals: c.ikeP, ESPProposals: c.espP,
			LocalTS: []netip.Prefix{c.respTS}, RemoteTS: []netip.Prefix{c.clientTS(i)}}); err != nil {
			return err
		}
	}
	clear(c.psk)
	memstats("configured")

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go ep.serve(d)
	fmt.Printf("ready peers=%d addr=%s\n", c.n, netip.AddrPortFrom(local, esp.NATTPort))
	for s := range sig {
		if s == syscall.SIGUSR1 {
			memstats("signal")
			continue
		}
		break
	}
	memstats("exit")
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		// The table and the daemon must still be live for the heap
		// profile to show what an IKE SA keeps.
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
		runtime.KeepAlive(d)
		runtime.KeepAlive(table)
	}
	return nil
}
