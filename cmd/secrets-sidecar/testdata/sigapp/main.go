// Command sigapp is the application the change-action tests run beside
// the sidecar: it records every signal it gets, one name per line, in
// $SIGAPP_LOG, writes its PID to $SIGAPP_PIDFILE (when set) and, when
// $SIGAPP_ENV names a variable, appends "pid=<pid> <name>=<value>" to
// $SIGAPP_LOG at start, with whether VAULT_TOKEN is set. SIGTERM ends it with exit code $SIGAPP_EXIT
// (default 0).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

var names = map[os.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
}

func main() {
	logFile := os.Getenv("SIGAPP_LOG")
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigapp:", err)
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	if name := os.Getenv("SIGAPP_ENV"); name != "" {
		_, token := os.LookupEnv("VAULT_TOKEN")
		fmt.Fprintf(f, "pid=%d %s=%s vault_token_set=%t\n", os.Getpid(), name, os.Getenv(name), token)
	}
	if p := os.Getenv("SIGAPP_PIDFILE"); p != "" {
		if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "sigapp:", err)
			os.Exit(2)
		}
	}
	fmt.Fprintf(f, "ready %d\n", os.Getpid())
	for s := range sigs {
		fmt.Fprintf(f, "%s\n", names[s])
		if s == syscall.SIGTERM {
			code, _ := strconv.Atoi(os.Getenv("SIGAPP_EXIT"))
			os.Exit(code)
		}
	}
}
