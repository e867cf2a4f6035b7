module github.com/secrets-sidecar/secrets-sidecar/scripts/notices

go 1.25.0
