package netns

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a process started in a namespace, with its output collected for
// the test that reads it: tests run daemons (`rampart tunnel run`,
// `rampart agent run`) this way and stop them by PID.
type Proc struct {
	Cmd *exec.Cmd
	Log *Log

	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// Start starts name with args in the namespace, its stdout and stderr going
// to Log.
func (n *NS) Start(name string, args ...string) (*Proc, error) {
	p := &Proc{Log: &Log{}, exited: make(chan struct{})}
	p.Cmd = n.Command(context.Background(), name, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed when the process has exited; Err is then its status.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit status once Exited is closed.
func (p *Proc) Err() error { return p.err }

// Stop sends SIGTERM (by PID) and waits up to timeout, then sends SIGKILL
// and says so. Stopping a process that has exited does nothing.
func (p *Proc) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		p.Cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("netns: %s did not stop on SIGTERM in %v; killed", p.Cmd.Path, timeout)
	}
}

// Kill ends the process at once with SIGKILL (by PID), as a crash would,
// and waits for it.
func (p *Proc) Kill() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.Cmd.Process.Kill(); err != nil {
		return err
	}
	<-p.exited
	return nil
}

// Log collects a process's output while a test reads it.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count is how many times s occurs in the log so far.
func (l *Log) Count(s string) int { return strings.Count(l.String(), s) }
