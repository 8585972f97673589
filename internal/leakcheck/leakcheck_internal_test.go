package leakcheck

import "testing"

func TestIsLeak(t *testing.T) {
	tests := []struct {
		name  string
		stack string
		want  bool
	}{
		{
			name: "module goroutine",
			stack: `goroutine 20 [select]:
github.com/fencekit/fencekit/lock.(*Lock).renew(0xc000123456)
	/src/lock/lock.go:120 +0x1a5
created by github.com/fencekit/fencekit/lock.(*Lock).start in goroutine 7
	/src/lock/lock.go:80 +0x66`,
			want: true,
		},
		{
			name: "external test package of leakcheck",
			stack: `goroutine 21 [chan receive]:
github.com/fencekit/fencekit/internal/leakcheck_test.parked(...)
	/src/internal/leakcheck/leakcheck_test.go:18
created by github.com/fencekit/fencekit/internal/leakcheck_test.TestX in goroutine 19
	/src/internal/leakcheck/leakcheck_test.go:22 +0x66`,
			want: true,
		},
		{
			name: "external test package of redistest",
			stack: `goroutine 21 [chan receive]:
github.com/fencekit/fencekit/internal/redistest_test.TestX.func1()
	/src/internal/redistest/redistest_test.go:18 +0x20
created by github.com/fencekit/fencekit/internal/redistest_test.TestX in goroutine 19
	/src/internal/redistest/redistest_test.go:22 +0x66`,
			want: true,
		},
		{
			name: "library goroutine started by module code",
			stack: `goroutine 22 [IO wait]:
internal/poll.runtime_pollWait(0x7f, 0x72)
	/usr/local/go/src/runtime/netpoll.go:351 +0x85
net.(*conn).Read(0xc0000a2000, {0xc000100000, 0x1000, 0x1000})
	/usr/local/go/src/net/net.go:194 +0x45
created by github.com/fencekit/fencekit/fencing.watch in goroutine 7
	/src/fencing/watch.go:12 +0x66`,
			want: true,
		},
		{
			name: "redistest helper",
			stack: `goroutine 23 [chan receive, locked to thread]:
github.com/fencekit/fencekit/internal/redistest.spawnLoop(0xc000010000)
	/src/internal/redistest/spawn_linux.go:40 +0x5d
created by github.com/fencekit/fencekit/internal/redistest.startCmd.func1 in goroutine 7
	/src/internal/redistest/spawn_linux.go:30 +0x66`,
			want: false,
		},
		{
			name: "rueidis goroutine",
			stack: `goroutine 24 [select]:
github.com/redis/rueidis.(*pipe)._background(0xc000200000)
	/mod/github.com/redis/rueidis@v1.0.79/pipe.go:400 +0x1a5
created by github.com/redis/rueidis.(*pipe).background.func1 in goroutine 7
	/mod/github.com/redis/rueidis@v1.0.79/pipe.go:380 +0x66`,
			want: false,
		},
		{
			name: "running test",
			stack: `goroutine 19 [chan receive]:
testing.(*T).Run(0xc000003380, {0x5d2f3c?, 0x0?}, 0x5e2a08)
	/usr/local/go/src/testing/testing.go:2109 +0x4e5
github.com/fencekit/fencekit/lock_test.TestLock(0xc000003380)
	/src/lock/lock_test.go:10 +0x25
testing.tRunner(0xc000003380, 0x5e2a00)
	/usr/local/go/src/testing/testing.go:2036 +0xea
created by testing.(*T).Run in goroutine 1
	/usr/local/go/src/testing/testing.go:2101 +0x4c5`,
			want: false,
		},
		{
			name: "main goroutine",
			stack: `goroutine 1 [chan receive]:
testing.(*M).Run(0xc0000a2000)
	/usr/local/go/src/testing/testing.go:2443 +0x6ac
github.com/fencekit/fencekit/internal/redistest.Main(0xc0000a2000)
	/src/internal/redistest/main.go:20 +0x25
github.com/fencekit/fencekit/lock_test.TestMain(0xc0000a2000)
	/src/lock/main_test.go:9 +0x25
main.main()
	_testmain.go:46 +0x9b`,
			want: false,
		},
		{
			name: "elided frames",
			stack: `goroutine 25 [running]:
github.com/redis/rueidis.deep(...)
	/mod/x.go:1
...additional frames elided...
created by github.com/redis/rueidis.start in goroutine 7
	/mod/x.go:2 +0x66`,
			want: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isLeak(tt.stack); got != tt.want {
				t.Errorf("isLeak() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGoroutineID(t *testing.T) {
	if got := goroutineID("goroutine 42 [chan receive, 2 minutes]:\nfoo()"); got != 42 {
		t.Errorf("goroutineID = %d, want 42", got)
	}
	if got := goroutineID("garbage"); got != -1 {
		t.Errorf("goroutineID(garbage) = %d, want -1", got)
	}
}
