package run

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// waitClient sends every write script (EVALSHA, EVAL) together with
// WAIT n on a dedicated connection, so that WAIT covers exactly that
// script's writes, and turns a reply acknowledged by fewer than n replicas
// into errNotReplicated (recorded as unknown: the write may be lost in a
// failover). The stores have no WAIT of their own; this is the durable
// mode's acknowledgement for them. Read-only scripts pass through.
type waitClient struct {
	rueidis.Client
	n       int64
	timeout time.Duration
}

func (w *waitClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	name := cmd.Commands()[0]
	if name != "EVALSHA" && name != "EVAL" {
		return w.Client.Do(ctx, cmd)
	}
	var res rueidis.RedisResult
	var werr error
	err := w.Client.Dedicated(func(dc rueidis.DedicatedClient) error {
		out := dc.DoMulti(ctx, cmd, dc.B().Wait().Numreplicas(w.n).Timeout(w.timeout.Milliseconds()).Build())
		res = out[0]
		if res.Error() != nil {
			return nil
		}
		// The script ran; whatever WAIT says (fewer replicas, an error
		// reply such as UNBLOCKED when a failover demotes the primary
		// during the WAIT, a broken connection) leaves it unacknowledged.
		n, err := out[1].AsInt64()
		if err != nil {
			werr = fmt.Errorf("%w: WAIT: %v", errNotReplicated, err)
		} else if n < w.n {
			werr = errNotReplicated
		}
		return nil
	})
	if err != nil {
		return rueidis.NewErrorResult(err)
	}
	if werr != nil {
		return rueidis.NewErrorResult(werr)
	}
	return res
}

func (w *waitClient) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	out := make([]rueidis.RedisResult, len(multi))
	for i, c := range multi {
		out[i] = w.Do(ctx, c)
	}
	return out
}
