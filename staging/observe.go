package staging

import (
	"context"

	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/obs"
)

// The operations of this package as spans and metrics (package telemetry).
var (
	opPromote             = obs.NewOp("staging.Promote", fenced.Refused)
	opSaveStateAndPromote = obs.NewOp("staging.SaveStateAndPromote", fenced.Refused)
	opStage               = obs.NewOp("staging.Stage", fenced.Refused)
	opDiscard             = obs.NewOp("staging.Discard", fenced.Refused)
	opList                = obs.NewOp("staging.List", fenced.Refused)
)

// countPromotion counts a promote that applied changes.
func (s *Stager) countPromotion(ctx context.Context, res *PromoteResult, err error) {
	if o := s.cfg.Obs; err == nil && len(res.Applied) > 0 && o != nil && o.Promotions.Enabled(ctx) {
		o.Promotions.Add(ctx, 1)
	}
}
