package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Defaults for Options.
const (
	DefaultStopSignal  = syscall.SIGTERM
	DefaultStopTimeout = 10 * time.Second
)

// killWait bounds the wait for a child after SIGKILL: only a process stuck
// in the kernel (uninterruptible I/O) survives that long.
const killWait = 5 * time.Second

var (
	// ErrNoChild is returned by Signal and Restart when no child is running
	// (not started yet, exited, or stopped).
	ErrNoChild = errors.New("no child process is running")
	// ErrStarted is returned by Start after Start or Stop.
	ErrStarted = errors.New("the supervisor was started or stopped before")
)

// Options configure a Supervisor. Only Argv is required.
type Options struct {
	// Argv is the command and its arguments. Argv[0] is looked up in the
	// PATH of Env when it has no slash.
	Argv []string
	// Env is the child's complete environment (see ScrubCredentials). nil means
	// the sidecar's environment through ScrubCredentials; an empty non-nil
	// slice is an empty environment.
	Env []string
	// Path is the PATH the command is looked up in, once, by New. Default
	// the sidecar's own ($PATH), never Env's: Env may hold a secret's PATH,
	// which must not choose the program the sidecar runs.
	Path string
	// StopSignal ends the child for Restart and Stop. Default SIGTERM.
	StopSignal syscall.Signal
	// StopTimeout is how long Restart and Stop wait after StopSignal
	// before they SIGKILL the child's process group. Default 10s.
	StopTimeout time.Duration
	// Log gets the child's starts, signals and exits (never its
	// environment or arguments). Default: no logging.
	Log *zap.Logger
	// Stdin, Stdout and Stderr are handed to every child as they are (the
	// child writes to the same file descriptors as the sidecar, without a
	// copy in between). Default os.Stdin, os.Stdout, os.Stderr.
	Stdin, Stdout, Stderr *os.File
}

type state int

const (
	idle state = iota
	running
	exited  // the child exited by itself
	stopped // Stop, or a failed Restart
)

// Supervisor runs one child process at a time. Its methods are safe for
// concurrent use; Start, Restart, Stop and Signal are serialised.
type Supervisor struct {
	o          Options
	path       string // the command, resolved by New
	log        *zap.Logger
	foreground bool // give the child's process group the terminal

	op sync.Mutex // serialises Start, Restart, Stop and Signal

	mu     sync.Mutex // guards the fields below
	cur    *child
	st     state
	code   int
	exited chan struct{}
}

// New checks o and returns a Supervisor whose child is not started yet.
// The command is resolved now, in o.Path: every start runs that file. The
// error wraps ErrNotFound or ErrNotExecutable when it cannot be.
func New(o Options) (*Supervisor, error) {
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return nil, errors.New("supervisor: no command to run")
	}
	o.Argv = append([]string(nil), o.Argv...)
	if o.Env == nil {
		o.Env = ScrubCredentials(os.Environ())
	}
	if o.StopSignal == 0 {
		o.StopSignal = DefaultStopSignal
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Path == "" {
		o.Path = os.Getenv("PATH")
	}
	path, err := lookPath(o.Argv[0], o.Path)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	return &Supervisor{
		o:          o,
		path:       path,
		log:        o.Log,
		foreground: foregroundTerminal(o.Stdin),
		code:       -1,
		exited:     make(chan struct{}),
	}, nil
}

// Start starts the child with Options.Env. It returns once the command has
// been executed (or failed to).
func (s *Supervisor) Start() error {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != idle {
		return ErrStarted
	}
	c, err := s.spawn(s.o.Env)
	if err != nil {
		return err
	}
	s.cur, s.st = c, running
	return nil
}

// Signal sends sig to the child process (not to its process group). While
// a Restart is in progress it waits for it and signals the new child. It
// returns ErrNoChild when no child runs.
func (s *Supervisor) Signal(sig syscall.Signal) error {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return ErrNoChild
	}
	return c.signal(sig)
}

// Restart stops the child as Stop does and starts it again with env (nil:
// the environment of the last start). The end of the old child is not an
// exit: Exited stays open. ctx bounds the wait after StopSignal (the group
// then gets SIGKILL at once); if ctx is done once the old child is gone, no
// new one is started. After an error other than ErrNoChild, no child runs
// and the Supervisor is stopped; ErrNoChild means the child had already
// exited (Exited is closed) or was stopped.
func (s *Supervisor) Restart(ctx context.Context, env []string) error {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	old := s.cur
	if old == nil {
		s.mu.Unlock()
		return ErrNoChild
	}
	s.cur = nil // from now on its end is ours, not an exit
	s.mu.Unlock()

	s.log.Info("restarting the child", zap.Int("pid", old.pid))
	if err := s.stopChild(ctx, old); err != nil {
		s.setStopped(old)
		return fmt.Errorf("restart: %w", err)
	}
	if err := ctx.Err(); err != nil {
		s.setStopped(old)
		return fmt.Errorf("restart: child stopped, not started again: %w", err)
	}
	if env == nil {
		env = old.cmd.Env
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.spawn(env)
	if err != nil {
		s.st, s.code = stopped, old.code
		return fmt.Errorf("restart: %w", err)
	}
	s.cur = c
	return nil
}

// Stop ends the child: StopSignal, up to StopTimeout (or until ctx is
// done), then SIGKILL to its process group; it returns once the child is
// gone, or with an error if it survived SIGKILL for 5s. Exited is not
// closed by Stop; ExitCode is then the stopped child's code. Stop is
// idempotent and also fine before Start (nothing will start afterwards).
func (s *Supervisor) Stop(ctx context.Context) error {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	c := s.cur
	s.cur = nil
	if s.st == idle || s.st == running {
		s.st = stopped
	}
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	err := s.stopChild(ctx, c)
	s.setStopped(c)
	return err
}

// Exited is closed when the child exits by itself (not when Restart or Stop
// ends it).
func (s *Supervisor) Exited() <-chan struct{} { return s.exited }

// ExitCode is the exit code of the child that exited by itself (or that
// Stop ended): its exit status, or 128+N if signal N killed it. It is -1
// while no child has ended that way.
func (s *Supervisor) ExitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

// PID is the running child's process id, 0 when none runs.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	return s.cur.pid
}

// spawn starts a child with env. Called with s.mu held, so that the child's
// exit (childExited, which takes s.mu) is judged after s.cur is set.
func (s *Supervisor) spawn(env []string) (*child, error) {
	path := s.path
	cmd := &exec.Cmd{
		Path:   path,
		Args:   s.o.Argv,
		Env:    append(make([]string, 0, len(env)), env...),
		Stdin:  s.o.Stdin,
		Stdout: s.o.Stdout,
		Stderr: s.o.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:    true,
			Pdeathsig:  syscall.SIGKILL,
			Foreground: s.foreground,
		},
	}
	if s.foreground {
		cmd.SysProcAttr.Ctty = int(s.o.Stdin.Fd())
	}
	c, err := startChild(cmd, s.log, s.childExited)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.o.Argv[0], err)
	}
	s.log.Info("child started", zap.Int("pid", c.pid), zap.String("command", path))
	return c, nil
}

// childExited runs once each child has been reaped.
func (s *Supervisor) childExited(c *child) {
	if c.waitErr != nil {
		s.log.Error("could not read the child's exit status", zap.Int("pid", c.pid), zap.Error(c.waitErr))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != c {
		return // Restart or Stop ended it and reports it
	}
	s.cur, s.st, s.code = nil, exited, c.code
	s.log.Info("child exited", zap.Int("pid", c.pid), zap.Int("exit_code", c.code))
	close(s.exited)
}

func (s *Supervisor) setStopped(c *child) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = stopped
	select {
	case <-c.done:
		s.code = c.code
	default:
	}
}

// stopChild sends StopSignal, waits up to StopTimeout (or ctx), then
// SIGKILLs the group and waits up to killWait for the child to be reaped.
func (s *Supervisor) stopChild(ctx context.Context, c *child) error {
	begin := time.Now()
	log := s.log.With(zap.Int("pid", c.pid))
	if err := c.signal(s.o.StopSignal); err == nil {
		log.Info("stopping the child", zap.String("signal", unix.SignalName(s.o.StopSignal)))
		t := time.NewTimer(s.o.StopTimeout)
		defer t.Stop()
		select {
		case <-c.done:
			log.Info("child stopped", zap.Int("exit_code", c.code), zap.Duration("took", time.Since(begin)))
			return nil
		case <-t.C:
			log.Warn("child did not stop in time; killing its process group",
				zap.Duration("stop_timeout", s.o.StopTimeout))
		case <-ctx.Done():
			log.Warn("no more time to stop the child gracefully; killing its process group")
		}
	}
	c.killGroup()
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-c.done:
		log.Info("child killed", zap.Int("exit_code", c.code), zap.Duration("took", time.Since(begin)))
		return nil
	case <-t.C:
		return fmt.Errorf("child %d still there %s after SIGKILL", c.pid, killWait)
	}
}

// foregroundTerminal reports whether f is a terminal whose foreground
// process group is ours, so the child's group should take it over.
func foregroundTerminal(f *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}
