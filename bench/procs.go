package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the exact mode started: anvil, the official stack's server or a Payper
// gateway. It runs in its own process group, so stop ends whatever it started too, and on Linux
// the kernel kills it if the benchmark dies first (childAttrs).
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
	// grace is how long stop waits after SIGTERM before it kills.
	grace time.Duration

	mu   sync.Mutex
	tail []string // its last lines of output, for error messages
}

// childStartTimeout bounds how long a child may take to say it is ready.
const childStartTimeout = 2 * time.Minute

// startChild starts cmd and waits until a line of its output (stdout or stderr) makes ready
// return true; what ready returns with it (an address) is returned. With ready nil it returns
// at once. The process keeps running.
func startChild(ctx context.Context, name string, cmd *exec.Cmd, ready func(line string) (string, bool)) (*child, string, error) {
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), grace: 5 * time.Second}
	cmd.SysProcAttr = childAttrs()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	// A pipe on standard input closes when the benchmark exits, however it exits: the official
	// stack's server stops on that even where the kernel cannot be asked to kill it.
	if cmd.Stdin == nil {
		if _, err := cmd.StdinPipe(); err != nil {
			return nil, "", err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	found := make(chan string, 1)
	var scanners sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		scanners.Add(1)
		go func() {
			defer scanners.Done()
			c.scan(r, ready, found)
		}()
	}
	go func() {
		scanners.Wait() // the pipes must be drained before Wait closes them
		c.err = cmd.Wait()
		close(c.done)
	}()
	if ready == nil {
		return c, "", nil
	}
	timer := time.NewTimer(childStartTimeout)
	defer timer.Stop()
	select {
	case addr := <-found:
		return c, addr, nil
	case <-c.done:
		return nil, "", fmt.Errorf("%s exited before it was ready (%v): %s", name, c.err, c.lastLines())
	case <-timer.C:
		c.stop()
		return nil, "", fmt.Errorf("%s not ready after %s: %s", name, childStartTimeout, c.lastLines())
	case <-ctx.Done():
		c.stop()
		return nil, "", ctx.Err()
	}
}

// scan reads r line by line, keeps the last lines and reports the first one ready accepts.
func (c *child) scan(r io.Reader, ready func(string) (string, bool), found chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		if c.tail = append(c.tail, line); len(c.tail) > 20 {
			c.tail = c.tail[1:]
		}
		c.mu.Unlock()
		if ready == nil {
			continue
		}
		if addr, ok := ready(line); ok {
			select {
			case found <- addr:
			default:
			}
		}
	}
	io.Copy(io.Discard, r)
}

func (c *child) lastLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// stop ends the child's process group: SIGTERM, then, once the child has exited or its grace
// period is over, SIGKILL to whatever is left of the group. It returns once the child has
// exited (or has not within killWait of the SIGKILL, which should not happen) and is safe to
// call more than once.
func (c *child) stop() {
	if c == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	pgid := -c.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(c.grace):
	}
	syscall.Kill(pgid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(killWait):
	}
}

// killWait bounds the wait for a killed child's exit to be seen.
const killWait = 10 * time.Second

// exited reports the child's exit, or nil while it runs.
func (c *child) exited() error {
	select {
	case <-c.done:
		if c.err == nil {
			return fmt.Errorf("%s exited", c.name)
		}
		return fmt.Errorf("%s exited: %w: %s", c.name, c.err, c.lastLines())
	default:
		return nil
	}
}

// cpuTime is the user and system CPU time the child has used so far (Linux: /proc; ok is false
// elsewhere or once it has exited).
func (c *child) cpuTime() (time.Duration, bool) {
	if c == nil {
		return 0, false
	}
	return processCPUOf(c.cmd.Process.Pid)
}

// processCPUOf reads fields 14 and 15 (utime, stime) of /proc/<pid>/stat.
func processCPUOf(pid int) (time.Duration, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, false
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTick, true
}
