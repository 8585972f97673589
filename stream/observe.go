package stream

import (
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/obs"
)

// The operations of this package as spans and metrics (package telemetry).
var (
	opGroup     = obs.NewOp("stream.Group", fenced.Refused)
	opReadGroup = obs.NewOp("stream.ReadGroup", fenced.Refused)
	opAck       = obs.NewOp("stream.Ack", fenced.Refused)
	opClaim     = obs.NewOp("stream.Claim", fenced.Refused)
	opPending   = obs.NewOp("stream.Pending", fenced.Refused)
	opRead      = obs.NewOp("stream.Read", fenced.Refused)
	opAppend    = obs.NewOp("stream.Append", fenced.Refused)
	opEnd       = obs.NewOp("stream.End", fenced.Refused)
	opFail      = obs.NewOp("stream.Fail", fenced.Refused)
)
