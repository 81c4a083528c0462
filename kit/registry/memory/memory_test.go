package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/registry"
	"github.com/redline-dev/redline/kit/registry/memory"
	"github.com/redline-dev/redline/kit/registry/registrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContract(t *testing.T) {
	registrytest.Run(t, func(*testing.T) registry.Registry { return memory.New() })
}
