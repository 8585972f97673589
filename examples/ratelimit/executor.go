//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/semaphore"
)

// executorMain runs one executor: calls times, each under one of the
// shared slots, reporting what it does as JSON lines.
func executorMain(name string) int {
	var mu sync.Mutex
	emit := func(e event) {
		e.Exec, e.At = name, time.Now().UnixNano()
		b, _ := json.Marshal(e)
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(string(b))
	}
	fail := func(err error) int {
		emit(event{Ev: "error", Err: err.Error()})
		return 2
	}
	opt, err := rueidis.ParseURL(os.Getenv(envURL))
	if err != nil {
		return fail(err)
	}
	if os.Getenv(envMini) == "1" {
		opt.DisableCache, opt.AlwaysRESP2, opt.ForceSingleClient = true, true, true
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return fail(err)
	}
	defer client.Close()
	slots, err := semaphore.New(client, slotsName, semaphore.Options{
		Prefix: os.Getenv(envPrefix), Limit: limit, TTL: ttl, AutoRefresh: true, RetryInterval: 50 * time.Millisecond,
	})
	if err != nil {
		return fail(err)
	}
	defer slots.Close()
	ctx := context.Background()
	for i := 0; i < calls; i++ {
		p, err := slots.Acquire(ctx, 1)
		if err != nil {
			return fail(err)
		}
		emit(event{Ev: "acquired", Token: uint64(p.Token()), Deadline: p.Deadline().UnixNano()})
		// The "LLM call", done under the lease: it reports the lease's
		// end as the watchdog moves it.
		call := time.After(time.Duration(100+rand.IntN(150)) * time.Millisecond)
		tick := time.NewTicker(50 * time.Millisecond)
	work:
		for {
			select {
			case <-call:
				break work
			case <-p.Done():
				tick.Stop()
				return fail(fmt.Errorf("slot lost during the call: %w", p.Err()))
			case <-tick.C:
				emit(event{Ev: "hold", Token: uint64(p.Token()), Deadline: p.Deadline().UnixNano()})
			}
		}
		tick.Stop()
		emit(event{Ev: "releasing", Token: uint64(p.Token())})
		if err := p.Release(ctx); err != nil {
			return fail(err)
		}
	}
	emit(event{Ev: "done"})
	return 0
}
