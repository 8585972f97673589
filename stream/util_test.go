package stream_test

import (
	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/statestore"
)

const statestoreDefaultTTL = statestore.DefaultTTL

func newRelaxedStore(c rueidis.Client, prefix string) (*statestore.Store, error) {
	return statestore.New(c, statestore.Options{Prefix: prefix, Relaxed: true})
}
