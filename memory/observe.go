package memory

import (
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/obs"
)

// The operations of this package as spans and metrics (package telemetry).
var (
	opSearch     = obs.NewOp("memory.Search", fenced.Refused)
	opPut        = obs.NewOp("memory.Put", fenced.Refused)
	opDelete     = obs.NewOp("memory.Delete", fenced.Refused)
	opReset      = obs.NewOp("memory.Reset", fenced.Refused)
	opGet        = obs.NewOp("memory.Get", fenced.Refused)
	opGetMany    = obs.NewOp("memory.GetMany", fenced.Refused)
	opCount      = obs.NewOp("memory.Count", fenced.Refused)
	opScopes     = obs.NewOp("memory.Scopes", fenced.Refused)
	opCategories = obs.NewOp("memory.Categories", fenced.Refused)
	opList       = obs.NewOp("memory.List", fenced.Refused)
)
