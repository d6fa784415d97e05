package kubetest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// proc is etcd or kube-apiserver, its output going to a file.
type proc struct {
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// startProc starts path with args, stdout and stderr appended to logPath.
// With killWithParent the process gets SIGKILL from the kernel when its
// parent dies; it is then forked on l's thread (see launcher).
func startProc(l *launcher, path, logPath string, killWithParent bool, args ...string) (*proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kubetest: log of %s: %w", filepath.Base(path), err)
	}
	p := &proc{cmd: exec.Command(path, args...), log: log, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if killWithParent {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	fmt.Fprintf(log, "kubetest: %s %s\n", path, strings.Join(args, " "))
	start := p.cmd.Start
	if l != nil {
		start = func() error { return l.do(p.cmd.Start) }
	}
	if err := start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("kubetest: start %s: %w", path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM (by PID), then SIGKILL after timeout, and waits for
// the exit. It reports a process that had already exited on its own (a
// crash the test should hear about) or that needed SIGKILL.
func (p *proc) stop(timeout time.Duration) error {
	name := filepath.Base(p.cmd.Path)
	select {
	case <-p.exited:
		return fmt.Errorf("kubetest: %s (pid %d) had exited before stop: %v; see %s", name, p.pid(), p.err, p.log.Name())
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
	}
	p.cmd.Process.Kill()
	select {
	case <-p.exited:
		return fmt.Errorf("kubetest: %s (pid %d) did not stop within %v of SIGTERM; killed", name, p.pid(), timeout)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("kubetest: %s (pid %d) survives SIGKILL", name, p.pid())
	}
}

// launcher forks processes from one OS thread that lives as long as the
// cluster. Pdeathsig fires when the thread that forked the child exits,
// not the whole process (prctl(2) PR_SET_PDEATHSIG; golang/go#27505), and
// the Go runtime ends a thread when a goroutine that locked it returns
// without unlocking, as namespace code does on purpose after a failed
// setns. Forking from a thread pinned here keeps the signal for the death
// of the test binary alone.
type launcher struct {
	req  chan func()
	done chan struct{}
}

func newLauncher() *launcher {
	l := &launcher{req: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for {
			select {
			case f := <-l.req:
				f()
			case <-l.done:
				return
			}
		}
	}()
	return l
}

// do runs f on the launcher's thread.
func (l *launcher) do(f func() error) error {
	errc := make(chan error, 1)
	select {
	case l.req <- func() { errc <- f() }:
		return <-errc
	case <-l.done:
		return errors.New("kubetest: launcher closed")
	}
}

// close ends the launcher's goroutine; call it once the processes are gone.
func (l *launcher) close() { close(l.done) }

// tailFile returns the last n lines of path with a heading, for an error
// message or a failed test's log.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	// The end of the file is enough for n lines of any sane log.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		f.Seek(fi.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("--- last %d lines of %s ---\n%s", len(lines), path, strings.Join(lines, "\n"))
}
