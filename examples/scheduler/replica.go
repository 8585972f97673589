//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// replicaMain runs one replica: campaign, then as leader write the
// schedule every tick without looking at the lease first (as a busy
// scheduler would), with the term as the fencing token; when a write is
// refused, campaign again.
func replicaMain(name string) int {
	emit := func(e event) {
		e.Replica, e.At = name, time.Now().UnixNano()
		b, _ := json.Marshal(e)
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
	prefix := os.Getenv(envPrefix)
	ttlMs, _ := strconv.Atoi(os.Getenv(envTTL))
	ttl := time.Duration(ttlMs) * time.Millisecond
	e, err := election.New(client, electionName, election.Options{Lock: lock.Options{
		Prefix: prefix, Owner: name, TTL: ttl, RetryInterval: 50 * time.Millisecond,
	}})
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	store, err := statestore.New(client, statestore.Options{Prefix: prefix, TTL: time.Minute})
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	for {
		lead, err := e.Campaign(ctx, name)
		if err != nil {
			return fail(err)
		}
		term := lead.Term()
		emit(event{Ev: "leader", Term: uint64(term)})
		for tick := 1; ; tick++ {
			time.Sleep(tickEvery)
			data, _ := json.Marshal(map[string]any{"leader": name, "term": term, "tick": tick})
			_, err := store.Save(ctx, electionName, term, statestore.State{Status: statestore.StatusRunning, Data: data})
			if err != nil {
				emit(event{Ev: "refused", Term: uint64(term), Tick: tick, Fenced: errors.Is(err, fencing.ErrFenced), Err: err.Error()})
				break
			}
			emit(event{Ev: "wrote", Term: uint64(term), Tick: tick})
		}
		_ = lead.Resign(ctx)
	}
}
