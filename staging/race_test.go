package staging_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// TestPromoteRacingDiscard: a Promote and a Discard of the same step start
// together, round after round. Exactly one takes effect: either every
// change of the round is in the document and Discard dropped none, or none
// is and Discard dropped them all. Never both, never a part.
func TestPromoteRacingDiscard(t *testing.T) {
	const rounds, perRound = 40, 3
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		other := e.second(t) // its own client: the two calls really overlap
		ctx := t.Context()
		const id = "race"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{}`)
		promoted, discarded := 0, 0
		// lag is about the time of a promote on this server (scripts
		// loaded).
		var lag time.Duration
		for range 2 {
			e.stage(t, id, 1000, tok, add("warm", "/warm", 0, ms(0)))
			begin := time.Now()
			_, err := e.stager.Promote(ctx, id, 1000, tok)
			require.NoError(t, err)
			lag = max(time.Since(begin), 50*time.Microsecond)
		}
		for r := range rounds {
			step := int64(r)
			for i := range perRound {
				e.stage(t, id, step, tok, add(fmt.Sprintf("c%d", i), fmt.Sprintf("/r%dc%d", r, i), i, ms(i)))
			}
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				res     staging.PromoteResult
				removed int
				perr    error
				derr    error
			)
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				res, perr = e.stager.Promote(ctx, id, step, tok)
			}()
			go func() {
				defer wg.Done()
				<-start
				// Promote needs two round trips to Discard's one: a jittered
				// head start lets either finish first.
				time.Sleep(time.Duration(rand.N(int64(lag))))
				removed, derr = other.stager.Discard(ctx, id, step, tok)
			}()
			close(start)
			wg.Wait()
			require.NoError(t, perr, "round %d", r)
			require.NoError(t, derr, "round %d", r)

			var doc map[string]any
			require.NoError(t, json.Unmarshal([]byte(e.data(t, id)), &doc))
			inDoc := 0
			for k := range doc {
				if strings.HasPrefix(k, fmt.Sprintf("r%dc", r)) {
					inDoc++
				}
			}
			switch {
			case len(res.Applied) == perRound && removed == 0 && inDoc == perRound:
				promoted++
			case len(res.Applied) == 0 && removed == perRound && inDoc == 0:
				discarded++
			default:
				t.Fatalf("round %d: promote applied %d, discard removed %d, document holds %d of %d changes",
					r, len(res.Applied), removed, inDoc, perRound)
			}
			list, err := e.stager.List(ctx, id)
			require.NoError(t, err)
			require.Empty(t, list, "round %d left changes staged", r)
		}
		t.Logf("%d rounds: promote won %d, discard won %d", rounds, promoted, discarded)
	})
}

// TestConcurrentPromotes: two promotes of the same step apply its changes
// once (an "add to the end of an array" applied twice would show).
func TestConcurrentPromotes(t *testing.T) {
	const rounds, perRound = 25, 3
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		other := e.second(t)
		ctx := t.Context()
		const id = "twice"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{"log":[]}`)
		for r := range rounds {
			step := int64(r)
			for i := range perRound {
				e.stage(t, id, step, tok, add(fmt.Sprintf("c%d", i), "/log/-", r, ms(i)))
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			applied := make([]int, 2)
			errs := make([]error, 2)
			for j, sg := range []*staging.Stager{e.stager, other.stager} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res, err := sg.Promote(ctx, id, step, tok)
					applied[j], errs[j] = len(res.Applied), err
				}()
			}
			close(start)
			wg.Wait()
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			assert.ElementsMatch(t, []int{0, perRound}, applied, "round %d", r)
		}
		var doc struct{ Log []int }
		require.NoError(t, json.Unmarshal([]byte(e.data(t, id)), &doc))
		assert.Len(t, doc.Log, rounds*perRound)
	})
}
