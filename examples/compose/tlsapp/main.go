// Command tlsapp is the example application of docker-compose.tls.yml: an
// HTTPS server whose certificate the sidecar issues from Vault's PKI and
// issues again before it expires. It loads one file, the set's bundle.pem
// (the private key, the certificate and its chain from one issuance), so it
// never pairs a certificate with another issuance's key, and loads it again
// on SIGHUP, which the sidecar sends after each new certificate. GET /
// answers with the serial of the certificate it serves.
//
//	-addr    TLSAPP_ADDR    where to listen (default 0.0.0.0:8443)
//	-bundle  TLSAPP_BUNDLE  the PEM bundle (default /secrets/tls/bundle.pem)
//
// It waits for the bundle at start, because with a shared PID namespace it
// starts before the sidecar. As PID 1 the kernel delivers it only the
// signals it handles: HUP reloads (a bundle that fails to load is logged,
// and the current certificate kept), TERM and INT end it with exit code 0.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		log.Printf("tlsapp: %v", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", env("TLSAPP_ADDR", "0.0.0.0:8443"), "address to serve HTTPS on")
	bundle := flag.String("bundle", env("TLSAPP_BUNDLE", "/secrets/tls/bundle.pem"), "PEM file with the key, the certificate and its chain")
	flag.Parse()
	log.SetFlags(0) // the container runtime stamps each line

	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	cert := wait(stop, *bundle)
	if cert == nil {
		log.Print("tlsapp: SIGTERM or SIGINT, exiting")
		return nil // stopped while waiting
	}
	var current atomic.Pointer[tls.Certificate]
	current.Store(cert)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "serial %s\n", serial(current.Load()))
		}),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return current.Load(), nil },
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := (&net.ListenConfig{}).Listen(stop, "tcp", *addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	log.Printf("tlsapp: serving serial %s on https://%s", serial(cert), *addr)

	for {
		select {
		case err := <-served:
			return err
		case <-hup:
			cert, err := load(*bundle)
			if err != nil {
				log.Printf("tlsapp: SIGHUP, keeping serial %s: %v", serial(current.Load()), err)
				continue
			}
			current.Store(cert)
			log.Printf("tlsapp: SIGHUP, serving serial %s", serial(cert))
		case <-stop.Done():
			log.Print("tlsapp: SIGTERM or SIGINT, exiting")
			shutdown(srv)
			return nil
		}
	}
}

// shutdown lets requests in flight finish, for up to 5 seconds.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Printf("tlsapp: shutdown: %v", err)
	}
}

// wait loads the bundle, trying once a second until it loads, or returns
// nil when stop ends first.
func wait(stop context.Context, path string) *tls.Certificate {
	said := ""
	for {
		cert, err := load(path)
		if err == nil {
			return cert
		}
		if msg := err.Error(); msg != said {
			log.Printf("tlsapp: waiting for %s: %v", path, err)
			said = msg
		}
		select {
		case <-stop.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// load parses the bundle: its CERTIFICATE blocks (the leaf first) and its
// private key, from the same bytes.
func load(path string) (*tls.Certificate, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(pem, pem)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cert.Leaf == nil {
		return nil, errors.New(path + ": no leaf certificate")
	}
	return &cert, nil
}

// serial is the leaf's serial number as Vault writes it: hex bytes
// separated by colons.
func serial(cert *tls.Certificate) string {
	b := cert.Leaf.SerialNumber.Bytes()
	hex := make([]string, len(b))
	for i, c := range b {
		hex[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(hex, ":")
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
