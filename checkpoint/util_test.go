package checkpoint_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/rueidis"
)

func mustInt(t *testing.T, m rueidis.RedisMessage) int64 {
	t.Helper()
	n, err := m.AsInt64()
	if err != nil {
		t.Fatalf("not an integer reply: %v", err)
	}
	return n
}

func itoa(i int) string { return strconv.Itoa(i) }

// cpidOf returns a well-formed checkpoint id of session id, distinct for
// every i.
func cpidOf(id string, i int) string {
	return fmt.Sprintf("cpv1-%s-s%d-t1700000000000-%06x", id, i, i)
}

// payload returns a well-formed payload of sequence seq without state,
// metadata or messages, as cp_save.lua writes it.
func payload(seq int) string {
	return fmt.Sprintf("cp1 %d 1700000000000 1 0 0 0 0\n", seq)
}

func mustString(t *testing.T, m rueidis.RedisMessage) string {
	t.Helper()
	v, err := m.ToString()
	if err != nil {
		t.Fatalf("not a string reply: %v", err)
	}
	return v
}
