package main

import (
	"context"
	"fmt"
	"reflect"
	"text/tabwriter"
	"time"

	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/semaphore"
)

func init() {
	// Before doctor, which stays last.
	last := commands[len(commands)-1]
	commands = append(commands[:len(commands)-1], electionCmd, semaphoreCmd, last)
}

var electionCmd = &command{
	name:    "election",
	args:    "NAME",
	summary: "one election: leader, term, value, TTL, candidates waiting",
	flags:   registerWatch,
	check:   checkWatch,
	nargs:   1,
	run:     runElection,
}

var semaphoreCmd = &command{
	name:    "semaphore",
	args:    "NAME",
	summary: "one semaphore: limit, permits in use, holders with tokens, waiters",
	flags:   registerWatch,
	check:   checkWatch,
	nargs:   1,
	run:     runSemaphore,
}

// electionJSON is an election in --json output (schema/election.schema.json).
type electionJSON struct {
	Name       string `json:"name"`
	Held       bool   `json:"held"`
	Owner      string `json:"owner,omitempty"`
	Term       string `json:"term,omitempty"`
	Value      string `json:"value"`
	TTLMs      *int64 `json:"ttl_ms,omitempty"`
	Fence      string `json:"fence"`
	Candidates int64  `json:"candidates"`
}

func runElection(ctx context.Context, a *app, args []string) error {
	name := args[0]
	e, err := election.New(a.client, name, election.Options{Lock: lock.Options{Prefix: a.prefix, Owner: "fencekit-cli"}})
	if err != nil {
		return err
	}
	defer e.Close()
	read := func(ctx context.Context) (electionJSON, error) {
		ctx, cancel := a.reqCtx(ctx)
		defer cancel()
		ld, err := e.Leader(ctx)
		if err != nil {
			return electionJSON{}, err
		}
		in, err := e.Locker().Inspect(ctx, name)
		if err != nil {
			return electionJSON{}, err
		}
		j := electionJSON{Name: name, Held: ld.Held, Value: ld.Value, Fence: tokenStr(in.Fence), Candidates: in.Waiters}
		if ld.Held {
			ttl := ld.TTL.Milliseconds()
			j.Owner, j.Term, j.TTLMs = ld.Owner, ld.Term.String(), &ttl
		}
		return j, nil
	}
	cur, err := read(ctx)
	if err != nil {
		return err
	}
	if !cur.Held && cur.Fence == "0" && cur.Candidates == 0 && !a.watch {
		return notFound("election %q not found under prefix %q (no leader ever, or its fence expired)", name, a.prefix)
	}
	print := func(j electionJSON, line bool) error {
		switch {
		case a.json && line:
			return a.writeJSONLine(j)
		case a.json:
			return a.writeJSON(j)
		}
		if line {
			fmt.Fprintf(a.stdout, "%s ", time.Now().UTC().Format("15:04:05.000"))
			if j.Held {
				fmt.Fprintf(a.stdout, "leader %s term=%s value=%q candidates=%d\n", j.Owner, j.Term, j.Value, j.Candidates)
			} else {
				fmt.Fprintf(a.stdout, "no leader (fence %s) candidates=%d\n", j.Fence, j.Candidates)
			}
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
		fmt.Fprintf(tw, "election:\t%s\n", j.Name)
		if j.Held {
			fmt.Fprintf(tw, "leader:\t%s\n", j.Owner)
			fmt.Fprintf(tw, "term:\t%s\n", j.Term)
			fmt.Fprintf(tw, "value:\t%q\n", j.Value)
			fmt.Fprintf(tw, "ttl:\t%s\n", fmtTTL(time.Duration(*j.TTLMs)*time.Millisecond))
		} else {
			fmt.Fprintf(tw, "leader:\tnone\n")
		}
		fmt.Fprintf(tw, "fence:\t%s\t(highest term issued)\n", j.Fence)
		fmt.Fprintf(tw, "candidates:\t%d\n", j.Candidates)
		return tw.Flush()
	}
	if err := print(cur, false); err != nil || !a.watch {
		return err
	}
	return watchChanges(ctx, a, cur, read, func(j electionJSON) error { return print(j, true) },
		func(x, y electionJSON) bool { x.TTLMs, y.TTLMs = nil, nil; return reflect.DeepEqual(x, y) })
}

// semaphoreJSON is a semaphore in --json output (schema/semaphore.schema.json).
type semaphoreJSON struct {
	Name        string       `json:"name"`
	Limit       int64        `json:"limit"`
	LimitStored bool         `json:"limit_stored"`
	Used        int64        `json:"used"`
	Fence       string       `json:"fence"`
	Holders     []holderJSON `json:"holders"`
	Waiters     []waiterJSON `json:"waiters"`
}

type holderJSON struct {
	Owner      string  `json:"owner"`
	Token      string  `json:"token"`
	Permits    int64   `json:"permits"`
	AcquiredAt *string `json:"acquired_at,omitempty"`
	TTLMs      int64   `json:"ttl_ms"`
}

type waiterJSON struct {
	Owner   string `json:"owner"`
	Permits int64  `json:"permits"`
	Alive   bool   `json:"alive"`
}

func runSemaphore(ctx context.Context, a *app, args []string) error {
	name := args[0]
	sem, err := semaphore.New(a.client, name, semaphore.Options{Prefix: a.prefix, Owner: "fencekit-cli"})
	if err != nil {
		return err
	}
	defer sem.Close()
	read := func(ctx context.Context) (semaphoreJSON, error) {
		ctx, cancel := a.reqCtx(ctx)
		defer cancel()
		in, err := sem.Inspect(ctx)
		if err != nil {
			return semaphoreJSON{}, err
		}
		j := semaphoreJSON{Name: name, Limit: in.Limit, LimitStored: in.Stored, Used: in.Used, Fence: tokenStr(in.Fence),
			Holders: []holderJSON{}, Waiters: []waiterJSON{}}
		if !in.Stored {
			j.Limit = 0 // each process's Options.Limit applies
		}
		for _, h := range in.Holders {
			j.Holders = append(j.Holders, holderJSON{Owner: h.Owner, Token: h.Token.String(), Permits: h.N, AcquiredAt: jsonTime(h.AcquiredAt), TTLMs: h.TTL.Milliseconds()})
		}
		for _, w := range in.Waiters {
			j.Waiters = append(j.Waiters, waiterJSON{Owner: w.Owner, Permits: w.N, Alive: w.Alive})
		}
		return j, nil
	}
	cur, err := read(ctx)
	if err != nil {
		return err
	}
	if !cur.LimitStored && cur.Fence == "0" && len(cur.Holders) == 0 && len(cur.Waiters) == 0 && !a.watch {
		return notFound("semaphore %q not found under prefix %q (never used, or its keys expired)", name, a.prefix)
	}
	limit := func(j semaphoreJSON) string {
		if j.LimitStored {
			return fmt.Sprint(j.Limit)
		}
		return "not stored (each process's Options.Limit)"
	}
	print := func(j semaphoreJSON, line bool) error {
		switch {
		case a.json && line:
			return a.writeJSONLine(j)
		case a.json:
			return a.writeJSON(j)
		}
		if line {
			fmt.Fprintf(a.stdout, "%s used=%d holders=%d waiters=%d limit=%s fence=%s\n", time.Now().UTC().Format("15:04:05.000"),
				j.Used, len(j.Holders), len(j.Waiters), limit(j), j.Fence)
			return nil
		}
		fmt.Fprintf(a.stdout, "semaphore: %s\nlimit:     %s\nused:      %d\nfence:     %s (highest token issued)\n", j.Name, limit(j), j.Used, j.Fence)
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		if len(j.Holders) > 0 {
			fmt.Fprintln(tw, "\nHOLDER\tTOKEN\tPERMITS\tACQUIRED AT\tTTL")
			for _, h := range j.Holders {
				at := "-"
				if h.AcquiredAt != nil {
					t, _ := time.Parse(time.RFC3339Nano, *h.AcquiredAt)
					at = fmtTime(t)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", h.Owner, h.Token, h.Permits, at, fmtTTL(time.Duration(h.TTLMs)*time.Millisecond))
			}
		}
		if len(j.Waiters) > 0 {
			fmt.Fprintln(tw, "\nWAITER\tPERMITS\tALIVE")
			for _, w := range j.Waiters {
				fmt.Fprintf(tw, "%s\t%d\t%v\n", w.Owner, w.Permits, w.Alive)
			}
		}
		return tw.Flush()
	}
	if err := print(cur, false); err != nil || !a.watch {
		return err
	}
	strip := func(j semaphoreJSON) semaphoreJSON {
		hs := make([]holderJSON, len(j.Holders))
		for i, h := range j.Holders {
			h.TTLMs = 0
			hs[i] = h
		}
		j.Holders = hs
		return j
	}
	return watchChanges(ctx, a, cur, read, func(j semaphoreJSON) error { return print(j, true) },
		func(x, y semaphoreJSON) bool { return reflect.DeepEqual(strip(x), strip(y)) })
}

// watchChanges polls read every --interval until ctx ends and prints each
// state that differs from the last one printed (TTLs left aside). Read
// errors are reported once per failing stretch on stderr.
func watchChanges[T any](ctx context.Context, a *app, cur T, read func(context.Context) (T, error), print func(T) error, same func(x, y T) bool) error {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		next, err := read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				fmt.Fprintf(a.stderr, "fencekit: %s\n", a.redact(err.Error()))
				failing = true
			}
			continue
		}
		failing = false
		if same(cur, next) {
			continue
		}
		cur = next
		if err := print(cur); err != nil {
			return err
		}
	}
}
