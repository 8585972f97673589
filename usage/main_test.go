package usage_test

import (
	"testing"

	"github.com/fencekit/fencekit/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
