package checkpoint

import (
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/obs"
)

// The operations of this package as spans and metrics (package telemetry).
var (
	opSave    = obs.NewOp("checkpoint.Save", fenced.Refused)
	opGet     = obs.NewOp("checkpoint.Get", fenced.Refused)
	opLatest  = obs.NewOp("checkpoint.Latest", fenced.Refused)
	opRestore = obs.NewOp("checkpoint.Restore", fenced.Refused)
	opPrune   = obs.NewOp("checkpoint.Prune", fenced.Refused)
	opList    = obs.NewOp("checkpoint.List", fenced.Refused)
)
