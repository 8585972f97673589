package lua_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2/server"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
)

// refuser makes a miniredis answer the next n script calls with reply
// instead of running them, and counts the calls it let through.
type refuser struct {
	mu        sync.Mutex
	n         int
	reply     string
	refused   int
	passedRun int
}

func (r *refuser) hook(c *server.Peer, cmd string, args ...string) bool {
	if !strings.HasPrefix(cmd, "EVAL") {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n > 0 {
		r.n--
		r.refused++
		c.WriteError(r.reply)
		return true
	}
	r.passedRun++
	return false
}

func (r *refuser) set(n int, reply string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n, r.reply, r.refused, r.passedRun = n, reply, 0, 0
}

func (r *refuser) counts() (refused, passed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused, r.passedRun
}

// TestExecRetriesRefusals: a script the server refused without running it
// (TRYAGAIN, CLUSTERDOWN, LOADING) is sent again, whatever its Retryable,
// until it runs, RefusalBudget passes or the context ends; any other error
// reply is returned at once.
func TestExecRetriesRefusals(t *testing.T) {
	s := redistest.NewMini(t)
	r := &refuser{}
	s.Mini.Server().SetPreHook(r.hook)
	c := s.NewClient(t)
	keys := []string{"{l}:lock", "{l}:fence", "{l}:queue"}
	ctx := context.Background()

	type call func(context.Context) error
	calls := map[string]call{
		"Exec": func(ctx context.Context) error { return lua.Inspect.Exec(ctx, c, keys, nil).Error() },
		"ExecWait": func(ctx context.Context) error {
			res, _, err := lua.Inspect.ExecWait(ctx, c, keys, nil, 0, time.Second)
			if err != nil {
				return err
			}
			return res.Error()
		},
	}
	for name, do := range calls {
		for _, reply := range []string{
			"TRYAGAIN Multiple keys request during rehashing of slot",
			"CLUSTERDOWN The cluster is down",
			"LOADING Redis is loading the dataset in memory",
		} {
			r.set(3, reply)
			if err := do(ctx); err != nil {
				t.Errorf("%s after 3 × %q: %v", name, reply, err)
			}
			if refused, passed := r.counts(); refused != 3 || passed < 1 {
				t.Errorf("%s %q: %d refused, %d run; want 3 refused, then run", name, reply, refused, passed)
			}
		}

		// Not a refusal: returned at once.
		r.set(1, "ERR something else")
		if err := do(ctx); err == nil || !strings.Contains(err.Error(), "something else") {
			t.Errorf("%s: error %v, want the ERR reply", name, err)
		}
		if refused, passed := r.counts(); refused != 1 || passed != 0 {
			t.Errorf("%s ERR: %d refused, %d run; want 1, 0 (no retry)", name, refused, passed)
		}

		// Refused for good: the refusal, after the budget.
		old := lua.RefusalBudget
		lua.RefusalBudget = 100 * time.Millisecond
		r.set(1<<30, "TRYAGAIN Multiple keys request during rehashing of slot")
		err := do(ctx)
		lua.RefusalBudget = old
		if err == nil || !strings.Contains(err.Error(), "TRYAGAIN") {
			t.Errorf("%s refused for good: error %v, want TRYAGAIN", name, err)
		}
		if refused, _ := r.counts(); refused < 3 {
			t.Errorf("%s refused for good: %d tries, want several", name, refused)
		}

		// ... or when the context ends first.
		r.set(1<<30, "TRYAGAIN Multiple keys request during rehashing of slot")
		cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		err = do(cctx)
		cancel()
		if err == nil {
			t.Errorf("%s with an ending context: no error", name)
		}
		r.set(0, "")
	}
}
