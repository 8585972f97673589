package stream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/stream"
)

// A reader that disconnects every few chunks (a fresh Follower, or a Read
// page, from its last Seq) while the writer keeps appending sees every
// chunk exactly once, in order.
func TestReconnectingReaderResumes(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{Block: 200 * time.Millisecond})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		const total = 300

		var wg sync.WaitGroup
		wg.Add(1)
		var werr error
		go func() {
			defer wg.Done()
			for i := range total {
				if _, err := e.streams.Append(ctx, "s1", lk.Token(), fmt.Appendf(nil, "c%d", i)); err != nil {
					werr = err
					return
				}
				if i%20 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			_, werr = e.streams.End(ctx, "s1", lk.Token())
		}()

		// Wait for the stream to exist.
		require.Eventually(t, func() bool {
			_, err := e.streams.Read(ctx, "s1", stream.Seq{}, 1)
			return err == nil
		}, 5*time.Second, 5*time.Millisecond)

		var got []string
		var last stream.Seq
		status := stream.StatusRunning
		for session := 0; !status.Done(); session++ {
			if session%2 == 1 {
				// A page read (SSE reconnect with Last-Event-ID).
				p, err := e.streams.Read(ctx, "s1", last, 7)
				require.NoError(t, err)
				require.Zero(t, p.Skipped)
				got = append(got, data(p.Chunks)...)
				last, status = p.Next, p.Status
				continue
			}
			// A follower that disconnects after 13 chunks.
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			f := e.streams.Follow("s1", last)
			for n := 0; n < 13 && f.Next(rctx); n++ {
				got = append(got, string(f.Chunk().Data))
			}
			cancel()
			require.NoError(t, f.Err())
			last, status = f.Last(), f.Status()
		}
		wg.Wait()
		require.NoError(t, werr)
		require.Equal(t, names(0, total), got, "gap or duplicate")
		require.EqualValues(t, total+1, last.N())
	})
}
