package schedule_test

import (
	"os"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }
