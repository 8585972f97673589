package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/lock"
)

func registerWatch(fs *flag.FlagSet, a *app) {
	fs.BoolVar(&a.watch, "watch", false, "keep running and print changes (holder, token, fence, waiters) until interrupted")
	fs.DurationVar(&a.interval, "interval", 500*time.Millisecond, "how often --watch polls")
}

var locksCmd = &command{
	name:    "locks",
	summary: "held locks: owner, token, acquired at, TTL",
	flags:   registerWatch,
	check:   checkWatch,
	run:     runLocks,
}

var lockCmd = &command{
	name:    "lock",
	args:    "NAME",
	summary: "one lock: holder, token, acquired at, TTL, fence, waiters",
	flags:   registerWatch,
	check:   checkWatch,
	nargs:   1,
	run:     runLock,
}

// lockJSON is a lock in --json output (schema/lock.schema.json).
type lockJSON struct {
	Name       string  `json:"name"`
	Held       bool    `json:"held"`
	Owner      string  `json:"owner,omitempty"`
	Token      string  `json:"token,omitempty"`
	AcquiredAt *string `json:"acquired_at,omitempty"`
	TTLMs      *int64  `json:"ttl_ms,omitempty"`
	Fence      string  `json:"fence"`
	Waiters    int64   `json:"waiters"`
}

func toLockJSON(in lock.Info) lockJSON {
	j := lockJSON{Name: in.Name, Held: in.Held, Fence: tokenStr(in.Fence), Waiters: in.Waiters}
	if in.Held {
		ttl := in.TTL.Milliseconds()
		j.Owner, j.Token, j.AcquiredAt, j.TTLMs = in.Owner, in.Token.String(), jsonTime(in.AcquiredAt), &ttl
	}
	return j
}

// locksJSON is the output of locks --json (schema/locks.schema.json).
type locksJSON struct {
	Prefix string     `json:"prefix"`
	Locks  []lockJSON `json:"locks"`
}

// scanLockNames returns the names of every lock key under the prefix,
// sorted. On a cluster it scans every node rueidis knows (replicas repeat
// their master's keys; names are deduplicated).
func (a *app) scanLockNames(ctx context.Context) ([]string, error) {
	pattern := escapeGlob(a.prefix) + ":{*}:lock"
	seen := map[string]bool{}
	nodes := map[string]rueidis.Client{"": a.client}
	if a.client.Mode() == rueidis.ClientModeCluster {
		nodes = a.client.Nodes()
	}
	for addr, n := range nodes {
		var cursor uint64
		for {
			e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Type("string").Build()).AsScanEntry()
			if err != nil {
				if addr != "" {
					return nil, fmt.Errorf("scan %s: %w", addr, err)
				}
				return nil, fmt.Errorf("scan: %w", err)
			}
			for _, k := range e.Elements {
				if name, ok := lockName(a.prefix, k); ok {
					seen[name] = true
				}
			}
			if e.Cursor == 0 {
				break
			}
			cursor = e.Cursor
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// lockName extracts the name from "<prefix>:{<name>}:lock".
func lockName(prefix, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefix+":{")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "}:lock")
	if !ok || name == "" || strings.ContainsAny(name, "{}") {
		return "", false
	}
	return name, true
}

// escapeGlob escapes the SCAN MATCH metacharacters in s.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// readLocks inspects every held lock under the prefix. Locks released
// between the scan and the inspection are left out.
func (a *app) readLocks(ctx context.Context, lk *lock.Locker) ([]lock.Info, error) {
	ctx, cancel := a.reqCtx(ctx)
	defer cancel()
	names, err := a.scanLockNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]lock.Info, 0, len(names))
	for _, n := range names {
		in, err := lk.Inspect(ctx, n)
		if err != nil {
			if errors.Is(err, lock.ErrInvalidName) {
				continue // a key fencekit did not write
			}
			return nil, err
		}
		if in.Held {
			out = append(out, in)
		}
	}
	return out, nil
}

func checkWatch(a *app) error {
	if a.watch && a.interval <= 0 {
		return usageErr("--interval must be positive")
	}
	return nil
}

func runLocks(ctx context.Context, a *app, _ []string) error {
	lk, err := a.newLocker()
	if err != nil {
		return err
	}
	defer lk.Close()
	infos, err := a.readLocks(ctx, lk)
	if err != nil {
		return err
	}
	if a.json {
		out := locksJSON{Prefix: a.prefix, Locks: make([]lockJSON, 0, len(infos))}
		for _, in := range infos {
			out.Locks = append(out.Locks, toLockJSON(in))
		}
		if err := a.writeJSON(out); err != nil {
			return err
		}
	} else {
		a.printLockTable(infos)
	}
	if !a.watch {
		return nil
	}
	return a.follow(ctx, func(ctx context.Context) ([]lock.Info, error) { return a.readLocks(ctx, lk) }, infos)
}

func (a *app) printLockTable(infos []lock.Info) {
	if len(infos) == 0 {
		fmt.Fprintf(a.stdout, "no locks held under prefix %q\n", a.prefix)
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tOWNER\tTOKEN\tACQUIRED AT\tTTL\tWAITERS")
	for _, in := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", in.Name, in.Owner, in.Token, fmtTime(in.AcquiredAt), fmtTTL(in.TTL), in.Waiters)
	}
	tw.Flush()
}

func runLock(ctx context.Context, a *app, args []string) error {
	name := args[0]
	lk, err := a.newLocker()
	if err != nil {
		return err
	}
	defer lk.Close()
	read := func(ctx context.Context) ([]lock.Info, error) {
		ctx, cancel := a.reqCtx(ctx)
		defer cancel()
		in, err := lk.Inspect(ctx, name)
		if err != nil {
			return nil, err
		}
		if !in.Held && in.Fence == 0 && in.Waiters == 0 {
			return nil, nil
		}
		return []lock.Info{in}, nil
	}
	infos, err := read(ctx)
	if err != nil {
		return err
	}
	if len(infos) == 0 && !a.watch {
		return notFound("lock %q not found under prefix %q (never acquired, or its fence expired)", name, a.prefix)
	}
	in := lock.Info{Name: name}
	if len(infos) == 1 {
		in = infos[0]
	}
	if a.json {
		if err := a.writeJSON(toLockJSON(in)); err != nil {
			return err
		}
	} else {
		a.printLock(in)
	}
	if !a.watch {
		return nil
	}
	return a.follow(ctx, read, infos)
}

func (a *app) printLock(in lock.Info) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", in.Name)
	if in.Held {
		fmt.Fprintf(tw, "held:\tyes\n")
		fmt.Fprintf(tw, "owner:\t%s\n", in.Owner)
		fmt.Fprintf(tw, "token:\t%s\n", in.Token)
		fmt.Fprintf(tw, "acquired at:\t%s\n", fmtTime(in.AcquiredAt))
		fmt.Fprintf(tw, "ttl:\t%s\n", fmtTTL(in.TTL))
	} else {
		fmt.Fprintf(tw, "held:\tno\n")
	}
	fmt.Fprintf(tw, "fence:\t%s\t(highest token issued)\n", tokenStr(in.Fence))
	fmt.Fprintf(tw, "waiters:\t%d\n", in.Waiters)
	tw.Flush()
}

// lockEventJSON is one line of --watch --json output
// (schema/lock-event.schema.json).
type lockEventJSON struct {
	Time  string   `json:"time"`
	Event string   `json:"event"` // acquired, released, changed
	Lock  lockJSON `json:"lock"`
}

// sameLock reports whether two readings of a lock differ only in what
// changes by itself (the remaining TTL).
func sameLock(x, y lock.Info) bool {
	return x.Held == y.Held && x.Owner == y.Owner && x.Token == y.Token &&
		x.AcquiredAt.Equal(y.AcquiredAt) && x.Fence == y.Fence && x.Waiters == y.Waiters
}

// follow polls read every --interval until ctx ends and prints what changed
// since prev: a new holder or lock ("acquired"), a lock no longer held
// ("released"), and other changes of holder, token, fence or waiters
// ("changed"). The remaining TTL alone is not a change. A failed poll is
// reported and retried; the watch itself ends only with ctx (SIGINT).
func (a *app) follow(ctx context.Context, read func(context.Context) ([]lock.Info, error), prev []lock.Info) error {
	old := map[string]lock.Info{}
	for _, in := range prev {
		old[in.Name] = in
	}
	t := time.NewTicker(a.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		infos, err := read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				a.log.Warn("watch: poll failed; retrying", "err", err)
			}
			failing = true
			continue
		}
		failing = false
		now := map[string]lock.Info{}
		for _, in := range infos {
			now[in.Name] = in
		}
		var names []string
		for n := range now {
			names = append(names, n)
		}
		for n := range old {
			if _, ok := now[n]; !ok {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		for _, n := range names {
			o, hadOld := old[n]
			c, hasNew := now[n]
			var ev string
			switch {
			case hasNew && (!hadOld || !o.Held) && c.Held:
				ev = "acquired"
			case hadOld && o.Held && (!hasNew || !c.Held):
				ev = "released"
				if !hasNew {
					c = lock.Info{Name: n}
				}
			case hadOld && hasNew && !sameLock(o, c):
				ev = "changed"
			case !hadOld && hasNew:
				ev = "changed"
			default:
				continue
			}
			a.printEvent(ev, c)
		}
		old = now
	}
}

func (a *app) printEvent(ev string, in lock.Info) {
	ts := time.Now().UTC()
	if a.json {
		_ = a.writeJSONLine(lockEventJSON{Time: ts.Format(time.RFC3339Nano), Event: ev, Lock: toLockJSON(in)})
		return
	}
	switch ev {
	case "acquired", "changed":
		if in.Held {
			fmt.Fprintf(a.stdout, "%s %-8s %s owner=%s token=%s ttl=%s fence=%s waiters=%d\n",
				ts.Format("15:04:05.000"), ev, in.Name, in.Owner, in.Token, fmtTTL(in.TTL), tokenStr(in.Fence), in.Waiters)
			return
		}
		fmt.Fprintf(a.stdout, "%s %-8s %s free fence=%s waiters=%d\n", ts.Format("15:04:05.000"), ev, in.Name, tokenStr(in.Fence), in.Waiters)
	case "released":
		fmt.Fprintf(a.stdout, "%s %-8s %s fence=%s waiters=%d\n", ts.Format("15:04:05.000"), ev, in.Name, tokenStr(in.Fence), in.Waiters)
	}
}
