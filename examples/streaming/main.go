// Command streaming shows resumable output streams: an executor streams
// chunks of its output while a client follows them, disconnects twice (once
// mid-follow, once replaced by a page read, as an SSE client reconnecting
// with Last-Event-ID would) and resumes from the last sequence it saw. The
// client must receive every chunk exactly once, in order.
//
// It runs on an embedded miniredis unless REDIS_URL names a real server
// (for example redis://127.0.0.1:6379/0). It exits with status 1 on a gap
// or a duplicate, and 2 on any other failure.
//
//	go run ./examples/streaming
//	REDIS_URL=redis://127.0.0.1:6379 go run ./examples/streaming
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

const (
	chunks = 60
	// session is unique per run, so runs against a real server do not
	// find the ended stream of an earlier run.
	sessionPrefix = "stream-demo-"
)

// errGap reports a gap or duplicate in what the client received.
var errGap = errors.New("gap or duplicate")

func main() {
	err := run(os.Stdout)
	switch {
	case errors.Is(err, errGap):
		fmt.Println("FAIL:", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "streaming:", err)
		os.Exit(2)
	}
}

func run(out io.Writer) error {
	srv, err := embedded.Start()
	if err != nil {
		return err
	}
	defer srv.Close()
	client, err := srv.NewClient()
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	locker, err := lock.New(client, lock.Options{Owner: "executor-1", TTL: 10 * time.Second})
	if err != nil {
		return err
	}
	defer locker.Close()
	store, err := statestore.New(client, statestore.Options{})
	if err != nil {
		return err
	}
	streams, err := stream.NewWithOptions(store, stream.Options{Block: time.Second, FinishedTTL: time.Minute})
	if err != nil {
		return err
	}
	session := sessionPrefix + strconv.FormatInt(time.Now().UnixNano(), 36)

	// The executor: holds the session's lock and streams its output.
	lk, err := locker.Acquire(ctx, session)
	if err != nil {
		return err
	}
	defer lk.Release(context.Background())
	if _, err := streams.Append(ctx, session, lk.Token(), []byte("chunk-0")); err != nil {
		return err
	}
	werr := make(chan error, 1)
	go func() {
		for i := 1; i < chunks; i++ {
			if _, err := streams.Append(ctx, session, lk.Token(), fmt.Appendf(nil, "chunk-%d", i)); err != nil {
				werr <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		_, err := streams.End(ctx, session, lk.Token())
		werr <- err
	}()

	// The client.
	var got []string
	var last stream.Seq
	status := stream.StatusRunning
	for conn := 1; !status.Done(); conn++ {
		if conn > 1 {
			time.Sleep(40 * time.Millisecond) // disconnected; the executor goes on
		}
		if conn%2 == 0 {
			// Reconnect with Last-Event-ID: one page.
			p, err := streams.Read(ctx, session, last, 10)
			if err != nil {
				return err
			}
			got = append(got, strs(p.Chunks)...)
			fmt.Fprintf(out, "connection %d: read %d chunks after %s (page)\n", conn, len(p.Chunks), last)
			last, status = p.Next, p.Status
			continue
		}
		// Follow with blocking reads, disconnecting after 25 chunks.
		f := streams.Follow(session, last)
		n := 0
		for n < 25 && f.Next(ctx) {
			got = append(got, string(f.Chunk().Data))
			n++
		}
		if err := f.Err(); err != nil {
			return err
		}
		fmt.Fprintf(out, "connection %d: followed %d chunks after %s\n", conn, n, last)
		last, status = f.Last(), f.Status()
	}
	if err := <-werr; err != nil {
		return err
	}
	fmt.Fprintf(out, "stream %s after %d entries\n", status, last.N())

	for i, g := range got {
		if want := fmt.Sprintf("chunk-%d", i); g != want {
			return fmt.Errorf("%w: chunk %d is %q, want %q", errGap, i, g, want)
		}
	}
	if len(got) != chunks {
		return fmt.Errorf("%w: received %d chunks, want %d", errGap, len(got), chunks)
	}
	fmt.Fprintf(out, "received all %d chunks exactly once, in order\n", chunks)
	return nil
}

func strs(cs []stream.Chunk) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c.Data)
	}
	return out
}
