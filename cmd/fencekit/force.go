package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/lock"
)

func init() {
	// Before doctor, in the usage text.
	commands = append(commands[:len(commands)-1], forceReleaseCmd, commands[len(commands)-1])
}

var forceReleaseCmd = &command{
	name:    "force-release",
	args:    "NAME",
	summary: "take a lock away, fencing out its holder (--reason)",
	nargs:   1,
	flags: func(fs *flag.FlagSet, a *app) {
		fs.StringVar(&a.reason, "reason", "", "why the lock is taken away (required; written to the session's event log)")
		fs.StringVar(&a.by, "by", "", "who asks (default $USER@hostname)")
		fs.DurationVar(&a.fenceTTL, "fence-ttl", 0, "keep the fence at least this long (default 24h; negative: forever); a fence kept longer, or forever, keeps its retention")
	},
	check: func(a *app) error {
		if a.reason == "" {
			return usageErr("force-release: --reason is required")
		}
		if a.by == "" {
			a.by = defaultBy(a.env)
		}
		if a.fenceTTL > 0 && a.fenceTTL < time.Millisecond {
			return usageErr("force-release: --fence-ttl %v is shorter than 1ms", a.fenceTTL)
		}
		return nil
	},
	run: runForceRelease,
}

// forceJSON is the output of force-release --json
// (schema/force-release.schema.json).
type forceJSON struct {
	Name     string `json:"name"`
	Released bool   `json:"released"`
	Owner    string `json:"owner,omitempty"`
	Token    string `json:"token,omitempty"`
	Fence    string `json:"fence"`
	Next     string `json:"next,omitempty"`
	Reason   string `json:"reason"`
	By       string `json:"by"`
}

func runForceRelease(ctx context.Context, a *app, args []string) error {
	name := args[0]
	ctx, cancel := a.reqCtx(ctx)
	defer cancel()
	res, err := lock.ForceRelease(ctx, a.client, name, lock.ForceOptions{Prefix: a.prefix, Reason: a.reason, By: a.by, EventLog: true, FenceTTL: a.fenceTTL})
	if err != nil {
		if errors.Is(err, lock.ErrInvalidOptions) || errors.Is(err, lock.ErrNoReason) {
			return usageErr("force-release: %v", err)
		}
		a.log.Error("force-release failed", "lock", name, "prefix", a.prefix, "by", a.by, "reason", a.reason, "err", err)
		return err
	}
	a.log.Warn("force-release", "lock", name, "prefix", a.prefix, "by", a.by, "reason", a.reason,
		"released", res.Released, "owner", res.Owner, "token", res.Token.String(), "fence", res.Fence.String(), "next", res.Next)
	if a.json {
		out := forceJSON{Name: name, Released: res.Released, Fence: res.Fence.String(), Next: res.Next, Reason: a.reason, By: a.by}
		if res.Released {
			out.Owner, out.Token = res.Owner, res.Token.String()
		}
		return a.writeJSON(out)
	}
	if res.Released {
		fmt.Fprintf(a.stdout, "released lock %q held by %s (token %s)\n", name, res.Owner, res.Token)
	} else {
		fmt.Fprintf(a.stdout, "lock %q was not held\n", name)
	}
	fmt.Fprintf(a.stdout, "fence is now %s: every write with an older token is refused\n", res.Fence)
	if res.Next != "" {
		fmt.Fprintf(a.stdout, "handed to waiter %s with token %s\n", res.Next, res.Fence)
	}
	return nil
}
