package semaphore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Holder is one live grant of permits, as read by [Semaphore.Inspect].
type Holder struct {
	Owner      string
	Token      fencing.Token
	N          int64
	AcquiredAt time.Time     // server clock
	TTL        time.Duration // lease left on the server
}

// Waiter is one entry of the wait queue, in arrival order.
type Waiter struct {
	Owner string
	N     int64
	// Alive is false for an entry whose waiter stopped looking; it is
	// skipped and removed by the next grant.
	Alive bool
}

// Info describes a semaphore, as read by [Semaphore.Inspect].
type Info struct {
	Name string
	// Limit is the limit in effect: the stored one, else Options.Limit.
	Limit int64
	// Stored reports whether the limit was stored with SetLimit.
	Stored bool
	// Used counts the permits held by live leases.
	Used    int64
	Holders []Holder
	// Waiters lists the first 1000 queue entries.
	Waiters []Waiter
	// Fence is the highest token issued (0 if forgotten).
	Fence fencing.Token
}

// Inspect reads the state of the semaphore in one round trip. It returns
// an error matching [ErrCorrupt] when a key holds data fencekit did not
// write, and Redis or context errors ([fencing.ErrNoReply] without a
// reply).
func (s *Semaphore) Inspect(ctx context.Context) (Info, error) {
	info := Info{Name: s.name, Limit: s.opts.Limit}
	arr, err := lua.SemInspect.Exec(ctx, s.client, s.keyv(), nil).ToArray()
	if err != nil {
		return info, scriptError("inspect", s.name, err)
	}
	if len(arr) != 5 {
		return info, fmt.Errorf("%w: sem_inspect.lua returned %d elements", ErrProtocol, len(arr))
	}
	limit, err1 := arr[0].ToString()
	fence, err2 := arr[1].ToString()
	now, err3 := arr[2].AsInt64()
	hs, err4 := arr[3].ToArray()
	ws, err5 := arr[4].ToArray()
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return info, fmt.Errorf("%w: sem_inspect.lua: %v", ErrProtocol, err)
	}
	corrupt := func(what string) error { return fmt.Errorf("%w: semaphore %q: %s", ErrCorrupt, s.name, what) }
	if limit != "" {
		n, err := strconv.ParseInt(limit, 10, 64)
		if err != nil || n <= 0 {
			return info, corrupt("limit " + limit)
		}
		info.Limit, info.Stored = n, true
	}
	if fence != "" {
		if info.Fence, err = fencing.ParseToken(fence); err != nil {
			return info, corrupt("fence " + fence)
		}
	}
	for i := 0; i+2 < len(hs); i += 3 {
		h, _ := hs[i].ToString()
		v, _ := hs[i+1].ToString()
		end, _ := hs[i+2].AsFloat64()
		parts := strings.Split(v, "|")
		if len(parts) != 3 {
			return info, corrupt("holder " + h)
		}
		tok, err1 := fencing.ParseToken(parts[0])
		n, err2 := strconv.ParseInt(parts[1], 10, 64)
		at, err3 := strconv.ParseInt(parts[2], 10, 64)
		if errors.Join(err1, err2, err3) != nil {
			return info, corrupt("holder " + h)
		}
		info.Holders = append(info.Holders, Holder{Owner: ownerOf(h), Token: tok, N: n,
			AcquiredAt: time.UnixMilli(at), TTL: time.Duration(int64(end)-now) * time.Millisecond})
		info.Used += n
	}
	for i := 0; i+2 < len(ws); i += 3 {
		h, _ := ws[i].ToString()
		v, _ := ws[i+1].ToString()
		parts := strings.Split(v, "|")
		w := Waiter{Owner: ownerOf(h)}
		if len(parts) == 3 {
			alive, _ := strconv.ParseInt(parts[0], 10, 64)
			w.N, _ = strconv.ParseInt(parts[2], 10, 64)
			w.Alive = alive >= now
		}
		info.Waiters = append(info.Waiters, w)
	}
	return info, nil
}

// ownerOf returns the owner part of a holder "<owner>|<attempt>".
func ownerOf(h string) string {
	if i := strings.LastIndexByte(h, '|'); i >= 0 {
		return h[:i]
	}
	return h
}
