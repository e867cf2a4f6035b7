// Package containers tests secrets-sidecar under a real container engine:
// the scratch image built from the prebuilt binary
// (deployments/docker/Dockerfile.prebuilt) run as uid 65534 with a
// read-only root, and the Compose shapes of examples/compose in their test
// variant (examples/compose/test), against the repository's Vault dev
// server: the sidecar pattern with service_healthy, the init-container
// pattern with service_completed_successfully, a `signal` change action
// across containers (the sidecar in the app's PID namespace, one SIGHUP
// per rotation), and exec mode in an app image that copies the sidecar
// binary from the sidecar's image (restart on an environment change,
// SIGHUP on a file change, the child's exit code).
//
// The engine tests carry the build tag containers and run through
// `make test-containers` (scripts/test-containers.sh), which installs
// Docker, docker-compose and a static busybox when they are missing, starts
// the daemon without a bridge or NAT when none is running, and removes
// every container, volume and image labelled org.secrets-sidecar.test=containers
// before and after. Without the tag, the package only checks that the
// prebuilt Dockerfile's final stage is the main Dockerfile's.
package containers
