// Package supervisor runs one child process for the process-supervisor mode
// (`secrets-sidecar exec -- CMD ARGS...`, as Vault Agent's supervisor mode,
// envconsul and `doppler run --watch`): it starts the command with an
// environment the caller computes (see ScrubCredentials), passes stdin, stdout and
// stderr through, forwards the sidecar's signals, restarts or signals the
// command when secrets change, reports its exit code, and makes sure nothing
// it started outlives the sidecar. The package knows nothing of Vault, fx or
// the secret sync; the caller wires it:
//
//	sup, err := supervisor.New(supervisor.Options{Argv: argv, Env: env, Log: log})
//	reaper := supervisor.StartReaper(log) // active only when we are PID 1
//	defer reaper.Stop()
//	stopForwarding := supervisor.ForwardSignals(sup)
//	defer stopForwarding()
//	err = sup.Start() // then end the start-up phase's own shutdown on SIGTERM
//	for {
//		select {
//		case <-sup.Exited(): // the child exited by itself
//			return sup.ExitCode() // the sidecar exits with it
//		case <-changed: // a secret changed
//			sup.Signal(syscall.SIGHUP) // or sup.Restart(ctx, newEnv)
//		}
//	}
//
// Commands the sidecar runs itself and waits for (change actions) go
// through RunCommand or StartCommand, so the reaper leaves them alone.
//
// # The child
//
// Argv[0] is looked up once, by New, in Options.Path (the sidecar's own
// PATH by default), never in the child's environment, which may hold a
// secret's PATH; relative PATH entries are skipped, a name with a slash is
// used as is, and every start runs the file found. A command that does not
// exist is ErrNotFound (a shell's 127), one that cannot be run
// ErrNotExecutable (126). The child runs in a process group of its own, so that a terminal's
// Ctrl-C reaches it once (through the sidecar's forwarding), not twice, and
// so that whatever it starts can be killed with it. When stdin is a terminal
// whose foreground process group is the sidecar's, the child's group is
// made the foreground group instead, so an interactive child (`exec -- sh`)
// can read the terminal and gets Ctrl-C, Ctrl-\ and window-size changes from
// the terminal directly.
//
// # Signals
//
// Signal sends a signal to the child process only, not to its process group
// (tini's default): the child decides what its own children get; a reload
// signal sent to every nginx or postgres process would not mean the same. ForwardSignals forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and
// SIGQUIT that the sidecar receives; the sidecar itself does not stop on
// them: it goes on until the child exits. A signal that arrives while a
// Restart is in progress is delivered to the new child; one that arrives
// before Start has no child to go to and is only logged, so the caller's
// own shutdown on SIGTERM/SIGINT covers the phase before Start (the initial
// sync) and ends after it. (As PID 1 the kernel
// only delivers signals a process handles; forwarding handles these six.)
//
// # Exit
//
// When the child exits by itself, Exited is closed and ExitCode is its exit
// status, or 128+N if signal N killed it (143 for SIGTERM, 137 for SIGKILL),
// as a shell reports it. A child replaced by Restart or ended by Stop is not
// "exited". Whenever the child ends (by itself, Restart or Stop), what is
// left of its process group gets SIGKILL before the child is reaped.
//
// Restart and Stop send StopSignal (default SIGTERM) to the child, wait up to
// StopTimeout (default 10s, shortened by the context), then SIGKILL the
// child's process group, and wait for the child to be gone.
//
// # No orphans
//
// The child has the parent-death signal SIGKILL (PR_SET_PDEATHSIG): if the
// sidecar dies, even by SIGKILL or OOM kill, the kernel kills the child.
// That signal fires when the thread that forked the child exits, and the Go
// runtime retires threads, so each child is forked and waited for on a
// goroutine locked to its own OS thread for the child's whole life. (The
// child's own children get SIGKILL with the process group when the child
// ends, but not when the sidecar itself is killed, unless the child
// arranges it.) Processes that left the group (setsid, a daemon's double
// fork) are out of reach of the group kill; after StartSubreaper
// (PR_SET_CHILD_SUBREAPER) they are reparented to the sidecar when their
// parent dies, and whenever a child ends every live process the sidecar
// adopted that nobody owns (see Own), and what those started, gets SIGKILL
// before the child is reaped, so nothing piles up across restarts. The kernel clears the
// parent-death signal when the command is a set-user-ID or set-group-ID
// program or has file capabilities: such a command is not killed with the
// sidecar.
//
// # PID 1
//
// In a container without an init the sidecar is PID 1 and inherits every
// orphan; StartReaper reaps them. A blind wait4(-1) loop would steal the
// exit status of the supervised child and of every command the sidecar runs
// and waits for through os/exec. The reaper instead reaps only zombies whose
// parent is this process (found in /proc) and that nobody owns: processes
// started through Own, StartCommand or RunCommand are registered while they
// start (the reaper cannot look in between fork and registration) and are
// left to their owner; an unregistered zombie is reaped only after it has
// been seen as a zombie for a second, so even a child started directly
// through os/exec whose owner waits on it right away keeps its status.
package supervisor
