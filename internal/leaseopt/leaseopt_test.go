package leaseopt

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		o    Lease
		want string
	}{
		{Lease{}, ""},
		{Lease{Prefix: "a:b"}, "Prefix"},
		{Lease{Owner: "a b"}, "Owner"},
		{Lease{TTL: -1}, "TTL -1ns is negative"},
		{Lease{TTL: time.Millisecond}, "TTL 1ms is shorter than 10ms"},
		{Lease{TTL: 10*time.Millisecond + 1}, "not a whole number"},
		{Lease{RefreshInterval: -1}, "RefreshInterval -1ns is negative"},
		{Lease{RetryInterval: time.Microsecond}, "RetryInterval 1µs is shorter than 1ms"},
		{Lease{MinReplicas: -1}, "MinReplicas -1 is negative"},
		{Lease{ReplicaTimeout: -1}, "ReplicaTimeout -1ns is negative"},
		{Lease{FenceTTL: time.Microsecond}, "FenceTTL 1µs is shorter than 1ms"},
		{Lease{ReplicaTimeout: 500 * time.Microsecond}, "ReplicaTimeout 500µs is shorter than 1ms"},
		{Lease{CallTimeout: -1}, "CallTimeout -1ns is negative"},
		{Lease{TTL: time.Second, RefreshInterval: time.Second}, "RefreshInterval 1s is not shorter than TTL 1s"},
		{Lease{RefreshInterval: 10 * time.Second}, "not shorter than TTL 10s"},
		{Lease{TTL: time.Minute, FenceTTL: time.Second}, "FenceTTL 1s is shorter than TTL 1m0s"},
	} {
		err := c.o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.o, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want %q", c.o, err, c.want)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	o := Lease{}.WithDefaults(2 * time.Second)
	want := Lease{Prefix: DefaultPrefix, Owner: o.Owner, TTL: DefaultTTL, RefreshInterval: DefaultTTL / 3,
		RetryInterval: DefaultRetryInterval, FenceTTL: DefaultFenceTTL, CallTimeout: DefaultCallTimeout, ReplicaTimeout: DefaultReplicaWait}
	if o != want || o.Owner == "" {
		t.Errorf("defaults %+v, want %+v", o, want)
	}
	for _, c := range []struct {
		in      Lease
		minCall time.Duration
		call    time.Duration
		fence   time.Duration
	}{
		{Lease{TTL: 500 * time.Millisecond}, 2 * time.Second, 2 * time.Second, DefaultFenceTTL},
		{Lease{TTL: 500 * time.Millisecond}, time.Second, time.Second, DefaultFenceTTL},
		{Lease{TTL: 500 * time.Millisecond, MinReplicas: 1, ReplicaTimeout: 300 * time.Millisecond}, time.Second, 1600 * time.Millisecond, DefaultFenceTTL},
		{Lease{TTL: 48 * time.Hour}, time.Second, DefaultCallTimeout, 48 * time.Hour},
		{Lease{CallTimeout: time.Millisecond, FenceTTL: -1}, time.Second, time.Millisecond, -1},
	} {
		got := c.in.WithDefaults(c.minCall)
		if got.CallTimeout != c.call || got.FenceTTL != c.fence {
			t.Errorf("%+v (min %v): CallTimeout %v FenceTTL %v, want %v %v", c.in, c.minCall, got.CallTimeout, got.FenceTTL, c.call, c.fence)
		}
	}
}
