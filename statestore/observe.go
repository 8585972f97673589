package statestore

import (
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/obs"
)

// The operations of this package as spans and metrics (package telemetry).
var (
	opEvents               = obs.NewOp("statestore.Events", fenced.Refused)
	opCreate               = obs.NewOp("statestore.Create", fenced.Refused)
	opSave                 = obs.NewOp("statestore.Save", fenced.Refused)
	opLoad                 = obs.NewOp("statestore.Load", fenced.Refused)
	opDelete               = obs.NewOp("statestore.Delete", fenced.Refused)
	opUpdateStatus         = obs.NewOp("statestore.UpdateStatus", fenced.Refused)
	opCompareAndSetStatus  = obs.NewOp("statestore.CompareAndSetStatus", fenced.Refused)
	opIncrementResumeCount = obs.NewOp("statestore.IncrementResumeCount", fenced.Refused)
	opIncrementStep        = obs.NewOp("statestore.IncrementStep", fenced.Refused)
	opAppendMessages       = obs.NewOp("statestore.AppendMessages", fenced.Refused)
	opMessages             = obs.NewOp("statestore.Messages", fenced.Refused)
	opUpdate               = obs.NewOp("statestore.Update", fenced.Refused)
)
