package supervisor

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// ForwardedSignals are the signals ForwardSignals forwards when given none.
var ForwardedSignals = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT,
}

// ForwardSignals catches sigs (ForwardedSignals when none) from now on and
// sends each to s's child; the sidecar no longer stops on them itself (it
// waits for the child's exit: Exited). Call it before Start, so that no
// signal takes its default action (ending the sidecar) once the child runs.
// A signal that arrives when no child runs (before Start, after the exit)
// is logged and dropped. stop ends the forwarding and restores the default
// action of those signals (unless caught elsewhere); it waits for a forward
// in progress.
func ForwardSignals(s *Supervisor, sigs ...os.Signal) (stop func()) {
	if len(sigs) == 0 {
		sigs = ForwardedSignals
	}
	ch := make(chan os.Signal, len(sigs))
	signal.Notify(ch, sigs...)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case sig := <-ch:
				s.forward(sig)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(quit)
			<-done
		})
	}
}

func (s *Supervisor) forward(sig os.Signal) {
	sysSig, ok := sig.(syscall.Signal)
	if !ok {
		return
	}
	name := unix.SignalName(sysSig)
	err := s.Signal(sysSig)
	switch {
	case errors.Is(err, ErrNoChild):
		s.log.Info("signal received, no child to forward it to", zap.String("signal", name))
	case err != nil:
		s.log.Warn("could not forward a signal to the child", zap.String("signal", name), zap.Error(err))
	default:
		s.log.Info("signal forwarded to the child", zap.String("signal", name), zap.Int("pid", s.PID()))
	}
}
