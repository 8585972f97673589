package scripterr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"
)

func TestParse(t *testing.T) {
	m := miniredis.RunT(t)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{m.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	reply := func(script string) error {
		return c.Do(ctx, c.B().Eval().Script(script).Numkeys(0).Build()).Error()
	}

	stale := reply("return redis.error_reply('FENCEKIT_STALE 10 12')")
	code, detail, ok := Parse(stale)
	if !ok || code != Stale || detail != "10 12" {
		t.Fatalf("Parse = %q %q %v", code, detail, ok)
	}
	if !IsRedis(stale) {
		t.Fatal("IsRedis false for a Redis error")
	}
	code, _, ok = Parse(reply("return redis.error_reply('FENCEKIT_BADARG')"))
	if !ok || code != BadArg {
		t.Fatalf("code without detail: %q %v", code, ok)
	}
	if _, _, ok := Parse(reply("return redis.error_reply('WRONGTYPE Operation')")); ok {
		t.Fatal("WRONGTYPE parsed as a fencekit code")
	}
	nilErr := c.Do(ctx, c.B().Get().Key("missing").Build()).Error()
	if !rueidis.IsRedisNil(nilErr) || IsRedis(nilErr) {
		t.Fatalf("nil reply: %v", nilErr)
	}
	for _, err := range []error{nil, errors.New("FENCEKIT_STALE 1 2"), context.Canceled, fmt.Errorf("wrapped: %w", stale)} {
		if _, _, ok := Parse(err); ok {
			t.Errorf("Parse(%v) accepted a non-reply (wrapped replies must be classified before wrapping)", err)
		}
	}
}
