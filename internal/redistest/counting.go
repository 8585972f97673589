package redistest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// CountingClient is a rueidis.Client that counts the round trips its
// callers make: one per Do (and DoCache), one per DoMulti (and
// DoMultiCache) however many commands it pipelines. Commands run inside
// Dedicated or Dedicate are not counted. Tests use it to check that an
// operation costs the round trips it promises; warm the script cache first
// (a first EVALSHA falls back to EVAL, a second round trip).
type CountingClient struct {
	rueidis.Client
	trips atomic.Int64
}

// Counting wraps c.
func Counting(c rueidis.Client) *CountingClient { return &CountingClient{Client: c} }

// Trips returns the round trips counted so far.
func (c *CountingClient) Trips() int64 { return c.trips.Load() }

// Count returns the round trips fn makes.
func (c *CountingClient) Count(fn func()) int64 {
	before := c.trips.Load()
	fn()
	return c.trips.Load() - before
}

// Do implements rueidis.Client.
func (c *CountingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.trips.Add(1)
	return c.Client.Do(ctx, cmd)
}

// DoMulti implements rueidis.Client.
func (c *CountingClient) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	c.trips.Add(1)
	return c.Client.DoMulti(ctx, multi...)
}

// DoCache implements rueidis.Client.
func (c *CountingClient) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	c.trips.Add(1)
	return c.Client.DoCache(ctx, cmd, ttl)
}

// DoMultiCache implements rueidis.Client.
func (c *CountingClient) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	c.trips.Add(1)
	return c.Client.DoMultiCache(ctx, multi...)
}
